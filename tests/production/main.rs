//! The production split, run as an operator runs it (README, "Production"): the real `convo`
//! binary as two processes, `convo worker` and `convo api`, on Postgres and on a Temporal
//! server (the backend `CONVO_TEST_BACKEND` selects: the real dev server in CI), with channels
//! on the WhatsApp Cloud and Twilio adapters talking to fake Meta and Twilio APIs (real HTTP
//! servers on loopback that answer as those APIs do), and webhooks checked with an independent
//! Standard Webhooks verifier.
//!
//! The workspace is provisioned with the CLI, exactly as the README says. Then, over HTTP:
//! Meta's subscribe handshake, a compose (the template goes out), a signed WhatsApp inbound,
//! a CONVERSATION send, close, the 422; a signed Twilio inbound, STOP, the opt-out 422; and
//! the signed `conversation.*` webhooks.
//!
//! Needs Postgres (`DATABASE_URL`): without it the test records why it did not run.

mod metrics;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};
use convo_activities::{
    sandbox::{RecordedSend, Sandbox, SandboxHandle},
    testing::WebhookReceiver,
};
use convo_domain::{Channel, window::Content};
use convo_testkit::{Backend, BackendKind, free_port, provider_signatures, skipped};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const BIN: &str = env!("CARGO_BIN_EXE_convo");
const VERIFY_TOKEN: &str = "meta-verify-token";
const APP_SECRET: &str = "meta-app-secret";
const CUSTOMER: &str = "+14155550123";
const SMS_CUSTOMER: &str = "+14155550188";

/// A child process of the test, killed and reaped when dropped (a failing test included).
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn log(&self) -> String {
        format!(
            "--- {} log ---\n{}",
            self.name,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh Postgres schema, dropped afterwards.
struct Schema {
    admin_url: String,
    name: String,
    url: String,
}

impl Schema {
    fn create(admin_url: &str) -> anyhow::Result<Schema> {
        let name = format!("prod_{}", uuid::Uuid::new_v4().simple());
        psql(admin_url, &format!("CREATE SCHEMA {name}"))?;
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{sep}options=-c%20search_path%3D{name}");
        Ok(Schema { admin_url: admin_url.to_owned(), name, url })
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = psql(&self.admin_url, &format!("DROP SCHEMA {} CASCADE", self.name));
    }
}

/// Runs one statement through the store's own driver.
fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let url = url.to_owned();
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&url).await?;
            sqlx::query(&sql).execute(&mut c).await?;
            c.close().await?;
            anyhow::Ok(())
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("psql thread panicked"))?
}

/// `convo <args>` with `env`, to completion; its stdout.
fn cli(dir: &Path, env: &[(&str, String)], args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .output()
        .with_context(|| format!("running convo {args:?}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "convo {args:?} failed: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// Starts `convo <args>` in the background.
fn spawn(
    name: &'static str,
    dir: &Path,
    env: &[(&str, String)],
    args: &[&str],
) -> anyhow::Result<Proc> {
    let log = dir.join(format!("{name}.log"));
    let file = std::fs::File::create(&log)?;
    let child = Command::new(BIN)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("spawning convo {args:?}"))?;
    Ok(Proc { name, child, log })
}

struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut req =
            self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.header("Idempotency-Key", uuid::Uuid::new_v4().to_string()).json(&body);
        }
        let resp = tokio::time::timeout(WAIT, req.send()).await??;
        let status = resp.status();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<(StatusCode, Value)> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn until(
        &self,
        path: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, body) = self.get(path).await?;
            if check(&body) {
                return Ok(body);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("{what}: still {body}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn send(
        &self,
        to: &str,
        channel: &str,
        text: &str,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let body = json!({"to": to, "channel": channel, "message_type": "CONVERSATION",
            "content": {"text": text}, "traffic_type": "transactional"});
        self.post("/v1/messages", body).await
    }
}

async fn sends(sandbox: &SandboxHandle, n: usize) -> anyhow::Result<Vec<RecordedSend>> {
    Ok(sandbox.wait_for_sends(n, WAIT).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_and_api_on_postgres_and_temporal_as_the_readme_runs_them() -> anyhow::Result<()> {
    let backend = BackendKind::from_env()?;
    let Some(admin_url) = std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres"))
    else {
        let reason = "needs Postgres: set DATABASE_URL=postgres://…";
        skipped(backend, "worker_and_api_on_postgres_and_temporal_as_the_readme_runs_them", reason);
        return Ok(());
    };
    let temporal = Backend::start(backend, convo_devserver::DevServerConfig::ephemeral()).await?;
    let schema = Schema::create(&admin_url)?;
    let dir = tempfile::tempdir()?;
    // The fake Meta Graph and Twilio REST APIs (and nothing else of the sandbox is used: the
    // channels below run on the production adapters).
    let providers = Sandbox::start(([127, 0, 0, 1], 0).into()).await?;
    let receiver = WebhookReceiver::start().await?;

    let http_port = free_port()?;
    let grpc_port = free_port()?;
    let base = format!("http://127.0.0.1:{http_port}");
    let task_queue = format!("convo-prod-{}", uuid::Uuid::new_v4().simple());
    let env: Vec<(&str, String)> = vec![
        ("DATABASE_URL", schema.url.clone()),
        ("TEMPORAL_ADDRESS", temporal.address()),
        ("TEMPORAL_NAMESPACE", "default".into()),
        ("CONVO_TASK_QUEUE", task_queue),
        ("CONVO_HTTP_ADDR", format!("127.0.0.1:{http_port}")),
        ("CONVO_GRPC_ADDR", format!("127.0.0.1:{grpc_port}")),
        ("CONVO_WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN.into()),
        ("CONVO_PUBLIC_BASE_URL", base.clone()),
        // The test's receivers are on loopback over plain http, which production refuses
        // unless the operator allows it.
        ("CONVO_WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS", "true".into()),
        ("CONVO_WEBHOOKS_ALLOW_HTTP", "true".into()),
        ("RUST_LOG", "info".into()),
    ];

    // Provisioning, as the README's "Managing workspaces" tells an operator.
    cli(dir.path(), &env, &["workspace", "create", "acme", "--name", "Acme"])?;
    let mut whatsapp = serde_json::to_value(providers.provider_config(Channel::Whatsapp))?;
    whatsapp["app_secret"] = json!(APP_SECRET);
    let phone_number_id =
        whatsapp["phone_number_id"].as_str().context("phone_number_id")?.to_owned();
    let twilio = serde_json::to_value(providers.provider_config(Channel::Sms))?;
    let twilio_token = twilio["auth_token"].as_str().context("auth_token")?.to_owned();
    let number = "+12125550121";
    for (kind, config) in [("whatsapp", &whatsapp), ("sms", &twilio)] {
        let config = config.to_string();
        cli(
            dir.path(),
            &env,
            &[
                "channel",
                "add",
                "--workspace",
                "acme",
                "--kind",
                kind,
                "--sender",
                number,
                "--provider-config",
                &config,
            ],
        )?;
    }
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
            "ops@acme",
        ],
    )?;
    let created = cli(dir.path(), &env, &["api-key", "create", "--workspace", "acme"])?;
    let key = created
        .lines()
        .find_map(|l| l.strip_prefix("api key "))
        .and_then(|l| l.split_whitespace().next())
        .context("the printed API key")?
        .to_owned();

    let worker = spawn("worker", dir.path(), &env, &["worker"])?;
    let api_proc = spawn("api", dir.path(), &env, &["api"])?;
    let http = reqwest::Client::new();
    let api = Api { base: base.clone(), key, http: http.clone() };
    if !ready(&api).await {
        bail!("convo api not ready\n{}\n{}", api_proc.log(), worker.log());
    }
    let outcome = walk(&api, &providers, &receiver, &phone_number_id, &twilio_token, number).await;
    if let Err(e) = outcome {
        bail!("{e:?}\n{}\n{}", api_proc.log(), worker.log());
    }
    let log = api_proc.log();
    let restart = || spawn("api", dir.path(), &env, &["api"]);
    let api_proc = match crash_mid_request(&api, &providers, api_proc, restart).await {
        Ok(restarted) => restarted,
        Err(e) => bail!("{e:?}\n{log}\n{}", worker.log()),
    };
    drop((api_proc, worker));
    temporal.shutdown().await;
    Ok(())
}

/// Whether `convo api` answers `/readyz` within [`WAIT`].
async fn ready(api: &Api) -> bool {
    let poll = async {
        loop {
            if let Ok(r) = api.http.get(format!("{}/readyz", api.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(WAIT, poll).await.is_ok()
}

/// `kill -9` of `convo api` while a send it started is with the provider (issue 17 §1). The
/// request's Idempotency-Key claim dies with the process as a lease nobody renews; the client's
/// retry with the same key, to the restarted API, waits the lease out, takes the claim over and
/// runs the request again, which the message id derived from the key makes safe: it answers
/// within seconds (not the two-minute lock-out of a fixed claim) and the provider sees one send.
async fn crash_mid_request(
    api: &Api,
    providers: &SandboxHandle,
    victim: Proc,
    restart: impl FnOnce() -> anyhow::Result<Proc>,
) -> anyhow::Result<Proc> {
    const TO: &str = "+14155550901";
    const KEY: &str = "k-crash-mid-request";
    let body = json!({"to": TO, "channel": "whatsapp", "message_type": "MESSAGE",
        "content": {"template": {"name": "order_shipped"}}});
    let request = || {
        api.http
            .post(format!("{}/v1/messages", api.base))
            .bearer_auth(&api.key)
            .header("Idempotency-Key", KEY)
            .json(&body)
            .send()
    };
    // The provider holds every send for 3 s: the request is surely in flight when it dies.
    providers.set_latency(Duration::from_secs(3));
    let in_flight = tokio::spawn(request());
    let contact = format!("/v1/contacts/{}", TO.replace('+', "%2B"));
    api.until(&contact, "the request runs", |c| c["contact_id"].is_string()).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = std::time::Instant::now();
    drop(victim);
    let lost = in_flight.await?;
    anyhow::ensure!(lost.is_err(), "the request finished before the crash: {lost:?}");

    let restarted = restart()?;
    anyhow::ensure!(ready(api).await, "convo api not ready after the crash\n{}", restarted.log());
    let retry = tokio::time::timeout(WAIT, request()).await??;
    let status = retry.status();
    let answer: Value = retry.json().await?;
    let after = killed.elapsed();
    providers.set_latency(Duration::ZERO);
    anyhow::ensure!(status == StatusCode::ACCEPTED, "the retry: {status} {answer}");
    // The fixed claim this replaces locked the key for about 125 s.
    anyhow::ensure!(
        after < Duration::from_secs(20),
        "the retry answered {after:?} after the crash"
    );
    println!("kill -9 mid-request: the retry answered {status} {after:?} after the crash");

    // Give a second send (there must be none) the time to arrive.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let sent: Vec<RecordedSend> = providers.sends().into_iter().filter(|s| s.to == TO).collect();
    anyhow::ensure!(sent.len() == 1, "one provider send, not {}: {sent:?}", sent.len());
    anyhow::ensure!(
        sent[0].idempotency_key.as_deref() == answer["message_id"].as_str(),
        "the send carries the answered message id: {sent:?} {answer}"
    );
    Ok(restarted)
}

async fn walk(
    api: &Api,
    providers: &SandboxHandle,
    receiver: &WebhookReceiver,
    phone_number_id: &str,
    twilio_token: &str,
    number: &str,
) -> anyhow::Result<()> {
    // The production API serves no sandbox route: nobody injects a contact's messages (STOP
    // included) onto real channels, or reads another tenant's sends.
    let inject = json!({"channel": "sms", "from": SMS_CUSTOMER, "text": "STOP"});
    for (path, body) in [("/v1/inbound/sandbox", Some(inject)), ("/v1/sandbox/outbox", None)] {
        let (status, answer) = match body {
            Some(body) => api.post(path, body).await?,
            None => api.get(path).await?,
        };
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
    }
    // Webhook endpoints: the operator allowed loopback and plain http here (the receiver is
    // on this machine), never the cloud metadata service.
    let (status, refused) = api
        .post("/v1/webhook-endpoints", json!({"url": "http://169.254.169.254/latest/meta-data"}))
        .await?;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("url")),
        "{refused}"
    );
    let (status, endpoint) =
        api.post("/v1/webhook-endpoints", json!({"url": receiver.url()})).await?;
    anyhow::ensure!(status == StatusCode::CREATED, "webhook endpoint: {status} {endpoint}");
    let secret = endpoint["secret"].as_str().context("secret")?.to_owned();
    receiver.set_secret(&secret);

    // Meta's subscribe handshake.
    let url = format!(
        "{}/v1/inbound/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444",
        api.base
    );
    let r = api.http.get(&url).send().await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await?, "1158201444");

    // Compose to a new number: no window, so the template goes out through the Graph API.
    let (_, channels) = api.get("/v1/channels").await?;
    let whatsapp = channels["data"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["kind"] == "whatsapp"))
        .and_then(|c| c["id"].as_str())
        .context("whatsapp channel")?
        .to_owned();
    let compose = json!({"channel_id": whatsapp, "contact_phone": CUSTOMER, "contact_name": "Ada",
        "content": "Hi Ada, your order shipped", "template": {"name": "order_shipped", "variables": {}}});
    let (status, composed) = api.post("/v1/conversations/compose", compose).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{composed}");
    let sent = sends(providers, 1).await?;
    assert_eq!(sent[0].to, CUSTOMER);
    assert!(matches!(sent[0].content, Content::Template { .. }), "{:?}", sent[0]);

    // The contact answers on WhatsApp: Meta's webhook, signed with the app secret.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let wa_id = CUSTOMER.trim_start_matches('+');
    let body = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "waba-1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": number.trim_start_matches('+'), "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": "Ada"}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": "wamid.HBgL1", "timestamp": now.to_string(), "type": "text", "text": {"body": "Where is it?"}}]
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
    assert_eq!(status, StatusCode::OK, "{}", r.text().await?);
    let window_path = format!("/v1/windows/{}", CUSTOMER.replace('+', "%2B"));
    api.until(&window_path, "open", |w| w["open"] == true).await?;

    // A CONVERSATION send in the window, with its billing block; then close; then 422.
    let (status, receipt) = api.send(CUSTOMER, "whatsapp", "It arrives tomorrow.").await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{receipt}");
    assert_eq!(receipt["billing"]["hold_amount"], 0.5, "{receipt}");
    let sent = sends(providers, 2).await?;
    assert_eq!(
        sent[1].content,
        Content::Text { body: "It arrives tomorrow.".into(), subject: None }
    );
    let (status, closed) = api.post(&format!("{window_path}/close"), json!({})).await?;
    assert!(status.is_success(), "{closed}");
    let (status, refused) = api.send(CUSTOMER, "whatsapp", "One more thing").await?;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_active_session")),
        "{refused}"
    );
    assert_eq!(providers.sends().len(), 2, "the refused send reached no provider");

    // SMS: Twilio's webhook, signed over the public URL and the sorted form parameters.
    let twilio_url = format!("{}/v1/inbound/twilio", api.base);
    let post_twilio = |sid: &'static str, text: &'static str| {
        let params = [
            ("To", number),
            ("From", SMS_CUSTOMER),
            ("Body", text),
            ("MessageSid", sid),
            ("AccountSid", "AC00000000000000000000000000000000"),
        ];
        let signature = provider_signatures::twilio(twilio_token, &twilio_url, &params);
        let form: Vec<(String, String)> =
            params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        api.http.post(&twilio_url).header("X-Twilio-Signature", signature).form(&form).send()
    };
    let r = post_twilio("SM0001", "hello from sms").await?;
    let status = r.status();
    assert!(status.is_success(), "twilio inbound: {status} {}", r.text().await?);
    let sms_path = format!("/v1/windows/{}", SMS_CUSTOMER.replace('+', "%2B"));
    api.until(&sms_path, "sms window", |w| w["open"] == true).await?;
    let (status, receipt) = api.send(SMS_CUSTOMER, "sms", "Thanks for writing").await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{receipt}");

    // STOP: the window closes COMPLIANCE_STOP and the next send is refused as opted out.
    let r = post_twilio("SM0002", "STOP").await?;
    assert!(r.status().is_success());
    let w = api.until(&sms_path, "stopped", |w| w["open"] == false).await?;
    assert_eq!(w["close_reason"], "COMPLIANCE_STOP", "{w}");
    let (status, refused) = api.send(SMS_CUSTOMER, "sms", "come back").await?;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("contact_opted_out")),
        "{refused}"
    );

    // Every webhook (conversation.* and message.status_updated) verifies with an independent
    // Standard Webhooks verifier.
    let verifier = standardwebhooks::Webhook::new(&secret)?;
    let deadline = std::time::Instant::now() + WAIT;
    let got = loop {
        let got = receiver.received();
        let kinds: Vec<String> =
            got.iter().map(|w| w.json()["type"].as_str().unwrap_or_default().to_owned()).collect();
        let ended = kinds.iter().any(|k| k == "conversation.ended");
        if ended && got.len() >= 6 {
            break got;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "webhooks so far: {kinds:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let mut types = Vec::new();
    for w in &got {
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", w.id.parse()?);
        headers.insert("webhook-timestamp", w.timestamp.to_string().parse()?);
        headers.insert("webhook-signature", w.signature.parse()?);
        verifier.verify(w.body.as_bytes(), &headers).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        types.push(w.json()["type"].as_str().unwrap_or_default().to_owned());
    }
    for t in ["conversation.started", "conversation.message_exchanged", "conversation.ended"] {
        assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
    }
    assert!(receiver.rejected().is_empty());
    Ok(())
}
