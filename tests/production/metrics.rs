//! The metrics an operator scrapes, from the real processes: `convo worker --metrics-address`
//! serves the Temporal SDK's worker and client metrics next to convo's own (sends by provider
//! and outcome, webhook attempts per endpoint, the backlog and age of an endpoint that cannot
//! be reached, open windows, holds), and `convo api`'s `/metrics` counts its HTTP requests and
//! gRPC calls. On Postgres when `DATABASE_URL` names one, else on a SQLite file both processes
//! share; on the Temporal backend `CONVO_TEST_BACKEND` selects.

use std::{collections::BTreeMap, ops::RangeInclusive};

use anyhow::{Context, bail};
use convo_activities::{sandbox::Sandbox, testing::WebhookReceiver};
use convo_domain::Channel;
use convo_proto::v1::{GetWindowRequest, window_service_client::WindowServiceClient};
use convo_testkit::{Backend, BackendKind, free_port, provider_signatures};
use reqwest::StatusCode;
use serde_json::json;

use super::{APP_SECRET, Api, Proc, Schema, WAIT, cli, sends, spawn};

const CONTACT: &str = "+14155550177";
const NUMBER: &str = "+12125550122";

/// One sample of the text exposition format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a scrape (comments skipped). Label values here never contain `,` or `"`.
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.to_owned(), v.trim_matches('"').to_owned()))
                })
                .collect();
            Some(Sample { name: name.to_owned(), labels, value: value.parse().ok()? })
        })
        .collect()
}

/// The value of the first sample named `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// What the scrape must show: a sample `(name, labels)` whose value is in the range.
type Expectation<'a> = (&'a str, Vec<(&'a str, &'a str)>, RangeInclusive<f64>);

/// At least one (a counter that moved, a gauge that counts something).
const SOME: RangeInclusive<f64> = 1.0..=f64::MAX;

/// Scrapes `url` until every expectation holds; the last scrape is in the error.
async fn scrape_until(
    http: &reqwest::Client,
    url: &str,
    expected: &[Expectation<'_>],
) -> anyhow::Result<Vec<Sample>> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let response = http.get(url).send().await?;
        anyhow::ensure!(response.status() == StatusCode::OK, "{url}: {}", response.status());
        let content_type = response.headers().get("content-type").cloned();
        let text = response.text().await?;
        let samples = parse(&text);
        let missing: Vec<_> = expected
            .iter()
            .filter(|(name, labels, range)| {
                value(&samples, name, labels).is_none_or(|v| !range.contains(&v))
            })
            .collect();
        if missing.is_empty() {
            let content_type = content_type.context("no content-type")?;
            anyhow::ensure!(content_type.to_str()?.starts_with("text/plain; version=0.0.4"));
            return Ok(samples);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{url} still lacks {missing:?}:\n{text}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_serves_sdk_and_convo_metrics_and_the_api_counts_http_and_grpc()
-> anyhow::Result<()> {
    let backend = BackendKind::from_env()?;
    let temporal = Backend::start(backend, convo_devserver::DevServerConfig::ephemeral()).await?;
    let dir = tempfile::tempdir()?;
    let schema = match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => Some(Schema::create(&url)?),
        _ => None,
    };
    let database_url = match &schema {
        Some(schema) => schema.url.clone(),
        None => format!("sqlite://{}?mode=rwc", dir.path().join("convo.db").display()),
    };
    let providers = Sandbox::start(([127, 0, 0, 1], 0).into()).await?;
    let receiver = WebhookReceiver::start().await?;

    let (http_port, grpc_port, metrics_port) = (free_port()?, free_port()?, free_port()?);
    let base = format!("http://127.0.0.1:{http_port}");
    let task_queue = format!("convo-metrics-{}", uuid::Uuid::new_v4().simple());
    let env: Vec<(&str, String)> = vec![
        ("DATABASE_URL", database_url),
        ("TEMPORAL_ADDRESS", temporal.address()),
        ("CONVO_TASK_QUEUE", task_queue.clone()),
        ("CONVO_HTTP_ADDR", format!("127.0.0.1:{http_port}")),
        ("CONVO_GRPC_ADDR", format!("127.0.0.1:{grpc_port}")),
        ("CONVO_PUBLIC_BASE_URL", base.clone()),
        // The test's receivers are on loopback over plain http, which production refuses
        // unless the operator allows it.
        ("CONVO_WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS", "true".into()),
        ("CONVO_WEBHOOKS_ALLOW_HTTP", "true".into()),
        ("RUST_LOG", "info".into()),
    ];
    cli(dir.path(), &env, &["workspace", "create", "acme", "--name", "Acme"])?;
    let mut whatsapp = serde_json::to_value(providers.provider_config(Channel::Whatsapp))?;
    whatsapp["app_secret"] = json!(APP_SECRET);
    let phone_number_id =
        whatsapp["phone_number_id"].as_str().context("phone_number_id")?.to_owned();
    let config = whatsapp.to_string();
    cli(
        dir.path(),
        &env,
        &[
            "channel",
            "add",
            "--workspace",
            "acme",
            "--kind",
            "whatsapp",
            "--sender",
            NUMBER,
            "--provider-config",
            &config,
        ],
    )?;
    cli(
        dir.path(),
        &env,
        &[
            "workspace",
            "set-rates",
            "--workspace",
            "acme",
            "--channel",
            "whatsapp",
            "--conversation-unit",
            "50",
            "--message",
            "5",
            "--newsletter",
            "2",
        ],
    )?;
    cli(
        dir.path(),
        &env,
        &[
            "workspace",
            "top-up",
            "--workspace",
            "acme",
            "--amount",
            "10000",
            "--reason",
            "opening balance",
            "--by",
            "ops",
        ],
    )?;
    let created = cli(dir.path(), &env, &["api-key", "create", "--workspace", "acme"])?;
    let key = created
        .lines()
        .find_map(|l| l.strip_prefix("api key "))
        .and_then(|l| l.split_whitespace().next())
        .context("the printed API key")?
        .to_owned();

    let metrics_address = format!("127.0.0.1:{metrics_port}");
    let worker =
        spawn("worker", dir.path(), &env, &["worker", "--metrics-address", &metrics_address])?;
    let api_proc = spawn("api", dir.path(), &env, &["api"])?;
    let http = reqwest::Client::new();
    let api = Api { base: base.clone(), key, http: http.clone() };
    let ready = async {
        loop {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    if tokio::time::timeout(WAIT, ready).await.is_err() {
        bail!("convo api not ready\n{}\n{}", api_proc.log(), worker.log());
    }
    let walked = walk(
        &api,
        &providers,
        &receiver,
        &phone_number_id,
        &format!("http://{metrics_address}/metrics"),
        &task_queue,
        grpc_port,
    )
    .await;
    if let Err(e) = walked {
        bail!("{e:?}\n{}\n{}", api_proc.log(), worker.log());
    }
    drop::<(Proc, Proc)>((api_proc, worker));
    temporal.shutdown().await;
    drop(schema);
    Ok(())
}

async fn walk(
    api: &Api,
    providers: &convo_activities::sandbox::SandboxHandle,
    receiver: &WebhookReceiver,
    phone_number_id: &str,
    worker_metrics: &str,
    task_queue: &str,
    grpc_port: u16,
) -> anyhow::Result<()> {
    // Two endpoints: one that answers, one nobody listens on (its first attempt fails at once
    // and the next one is five seconds away, so its delivery stays pending).
    let (status, good) = api.post("/v1/webhook-endpoints", json!({"url": receiver.url()})).await?;
    anyhow::ensure!(status == StatusCode::CREATED, "webhook endpoint: {status} {good}");
    receiver.set_secret(good["secret"].as_str().context("secret")?);
    let dead = format!("http://127.0.0.1:{}/hooks", free_port()?);
    let (status, bad) = api.post("/v1/webhook-endpoints", json!({"url": dead})).await?;
    anyhow::ensure!(status == StatusCode::CREATED, "webhook endpoint: {status} {bad}");
    let good = good["id"].as_str().context("endpoint id")?.to_owned();
    let bad = bad["id"].as_str().context("endpoint id")?.to_owned();

    // The contact writes on WhatsApp (Meta's signed webhook): a window opens, its hold is
    // placed, conversation.started goes to both endpoints.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let wa_id = CONTACT.trim_start_matches('+');
    let body = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "waba-1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": NUMBER.trim_start_matches('+'), "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": "Grace"}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": "wamid.metrics1", "timestamp": now.to_string(), "type": "text", "text": {"body": "Hello?"}}]
        }}]}]
    }))?;
    let r = api
        .http
        .post(format!("{}/v1/inbound/whatsapp", api.base))
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", provider_signatures::meta(APP_SECRET, &body))
        .body(body)
        .send()
        .await?;
    let status = r.status();
    anyhow::ensure!(status == StatusCode::OK, "inbound: {status} {}", r.text().await?);
    let window_path = format!("/v1/windows/{}", CONTACT.replace('+', "%2B"));
    api.until(&window_path, "open", |w| w["open"] == true).await?;
    let (status, receipt) = api.send(CONTACT, "whatsapp", "Hello, Grace.").await?;
    anyhow::ensure!(status == StatusCode::ACCEPTED, "send: {status} {receipt}");
    sends(providers, 1).await?;

    let tq = ("task_queue", task_queue);
    let good_ep = ("endpoint", good.as_str());
    let bad_ep = ("endpoint", bad.as_str());
    let ws = ("workspace", "acme");
    let expected: Vec<Expectation<'_>> = vec![
        // The SDK's worker metrics, labelled with this worker's task queue.
        ("temporal_worker_task_slots_available", vec![tq, ("worker_type", "WorkflowWorker")], SOME),
        ("temporal_workflow_task_schedule_to_start_latency_count", vec![tq], SOME),
        ("temporal_workflow_task_execution_latency_count", vec![tq], SOME),
        (
            "temporal_activity_execution_latency_count",
            vec![("activity_type", "send_message")],
            SOME,
        ),
        ("temporal_workflow_task_queue_poll_succeed", vec![tq], SOME),
        // The SDK client's request counters.
        ("temporal_long_request", vec![("operation", "PollWorkflowTaskQueue")], SOME),
        ("temporal_request", vec![("operation", "RespondWorkflowTaskCompleted")], SOME),
        // convo's counters where things happen.
        (
            "convo_sends_total",
            vec![("channel", "whatsapp"), ("provider", "whatsapp_cloud"), ("outcome", "accepted")],
            SOME,
        ),
        ("convo_webhook_attempts_total", vec![ws, good_ep, ("result", "2xx")], SOME),
        ("convo_webhook_deliveries_total", vec![ws, good_ep, ("outcome", "delivered")], SOME),
        ("convo_webhook_attempts_total", vec![ws, bad_ep, ("result", "transport")], SOME),
        // convo's gauges, read from the store on the scrape.
        ("convo_webhook_backlog", vec![ws, bad_ep], SOME),
        ("convo_webhook_oldest_pending_age_seconds", vec![ws, bad_ep], 0.001..=3600.0),
        ("convo_open_windows", vec![("channel", "whatsapp")], SOME),
        ("convo_holds_open", vec![], SOME),
        ("convo_holds_reserved_minor_units", vec![], 50.0..=f64::MAX),
        // The reachable endpoint has nothing waiting (once the send's webhook is delivered).
        ("convo_webhook_backlog", vec![ws, good_ep], 0.0..=0.0),
    ];
    let samples = scrape_until(&api.http, worker_metrics, &expected).await?;
    // Histograms have buckets, in seconds.
    assert!(
        samples.iter().any(|s| s.name == "temporal_workflow_task_schedule_to_start_latency_bucket"
            && s.labels.get("le").map(String::as_str) == Some("0.1")),
        "no 0.1 s bucket"
    );

    // The API: its HTTP requests, and gRPC calls by service, method and code.
    let grpc = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{grpc_port}"))?
        .connect()
        .await?;
    let mut windows = WindowServiceClient::new(grpc);
    let mut request = tonic::Request::new(GetWindowRequest { contact: CONTACT.to_owned() });
    request.metadata_mut().insert("authorization", format!("Bearer {}", api.key).parse()?);
    let window = windows.get_window(request).await?.into_inner();
    anyhow::ensure!(window.open, "{window:?}");
    let refused =
        windows.get_window(GetWindowRequest { contact: CONTACT.to_owned() }).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let method = [("service", "convo.v1.WindowService"), ("method", "GetWindow")];
    let api_expected: Vec<Expectation<'_>> = vec![
        ("convo_grpc_requests_total", [&method[..], &[("code", "OK")]].concat(), SOME),
        ("convo_grpc_requests_total", [&method[..], &[("code", "Unauthenticated")]].concat(), SOME),
        ("convo_grpc_request_duration_seconds_count", method.to_vec(), 2.0..=f64::MAX),
        (
            "convo_http_requests_total",
            vec![("method", "POST"), ("path", "/v1/messages"), ("status", "202")],
            SOME,
        ),
        ("convo_http_request_duration_seconds_count", vec![("path", "/v1/messages")], SOME),
        // The API's Temporal client is instrumented too.
        ("temporal_request", vec![("service_name", "temporal-core-sdk")], SOME),
    ];
    scrape_until(&api.http, &format!("{}/metrics", api.base), &api_expected).await?;
    Ok(())
}
