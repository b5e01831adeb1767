//! API benchmark: `cargo bench --bench api`.
//!
//! Starts the whole `convo serve` stack in this process ([`Stack::start`] on port 0: embedded
//! devserver, in-memory SQLite store, sandbox provider, worker with its webhook dispatcher,
//! HTTP API) and drives it over HTTP on loopback, the way a backend and a channel provider
//! would. It prints:
//!
//! - **compose throughput**: conversations accepted (202) per second by
//!   `POST /v1/conversations/compose` at 1, 16 and 128 concurrent clients, with how many of
//!   those conversations' first messages (the template) reached the sandbox provider within
//!   the measured window, so "composed" means accepted and started;
//! - **inbound → `conversation.started` delivered**: from sending `POST /v1/inbound/sandbox`
//!   for a new contact to the arrival of that contact's signed webhook at a loopback receiver
//!   run by the bench (p50, p99, max);
//! - **CONVERSATION send → provider**: from sending `POST /v1/messages` (free-form, inside the
//!   window the inbound opened) to the sandbox recording the message (p50, p99, max);
//! - the devserver's **raw workflow rate** on the same stack's Temporal port, as the baseline
//!   the compose rate is divided by: a timer-then-activity workflow driven over raw gRPC at 16
//!   concurrent workflows, measured at the start and again after the compose rows.
//!
//! Environment: `CONVO_BENCH_SECS` (measured seconds per throughput row, default 5),
//! `CONVO_BENCH_CONTACTS` (contacts per latency row, default 200), `CONVO_BENCH_CLIENTS`
//! (the compose rows' client counts, default `1,16,128`), `CONVO_BENCH_LOG` (a
//! tracing filter such as `warn`; the stack logs to stderr, silent by default).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use axum::{Router, body::Bytes, extract::State, routing::post};
use convo::serve::{DEV_WORKSPACE, ServeConfig, Stack};
use convo_activities::{sandbox::SandboxHandle, webhooks::DispatcherConfig};
use convo_domain::Money;
use reqwest::StatusCode;
use serde_json::{Value, json};
use temporalio_protos::temporal::api::{
    command::v1::{
        Command, CompleteWorkflowExecutionCommandAttributes, ScheduleActivityTaskCommandAttributes,
        StartTimerCommandAttributes, command::Attributes,
    },
    common::v1::{ActivityType, WorkflowType},
    enums::v1::{CommandType, EventType, TaskQueueKind},
    history::v1::HistoryEvent,
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{
        PollActivityTaskQueueRequest, PollWorkflowTaskQueueRequest,
        RespondActivityTaskCompletedRequest, RespondWorkflowTaskCompletedRequest,
        StartWorkflowExecutionRequest, workflow_service_client::WorkflowServiceClient,
    },
};
use tokio::{
    sync::{Semaphore, watch},
    task::JoinSet,
};

/// Concurrent HTTP clients of the compose rows (`CONVO_BENCH_CLIENTS` overrides).
const COMPOSE_CLIENTS: [usize; 3] = [1, 16, 128];
/// Concurrent contacts of the latency rows (inbound, then send).
const LATENCY_CONCURRENCY: [usize; 2] = [1, 8];
/// Concurrent workflows of the raw baseline (the devserver bench's middle row).
const RAW_CONCURRENCY: usize = 16;
/// Before each measured window: connections, pools and the allocator settle.
const WARMUP: Duration = Duration::from_secs(1);
/// The longest the bench waits for an HTTP answer, one webhook or provider send, or a compose
/// backlog.
const WAIT: Duration = Duration::from_secs(30);
/// A latency row stops starting requests after this many failures.
const GIVE_UP_AFTER: u64 = 3;
/// The webhook dispatcher's idle poll. An enqueue through the same store wakes it at once, so
/// this only bounds the delay of a missed wake-up.
const DISPATCHER_POLL: Duration = Duration::from_millis(50);
/// Temporal namespace of the raw baseline (the stack's worker uses it too).
const NAMESPACE: &str = "default";

struct Settings {
    /// Measured window of each throughput row.
    measure: Duration,
    /// Contacts per latency row.
    contacts: usize,
    /// Concurrent clients of each compose row.
    clients: Vec<usize>,
}

fn main() -> anyhow::Result<()> {
    let settings = Settings {
        measure: Duration::from_secs_f64(env_num("CONVO_BENCH_SECS", 5.0).max(0.5)),
        contacts: (env_num("CONVO_BENCH_CONTACTS", 200.0) as usize).max(1),
        clients: std::env::var("CONVO_BENCH_CLIENTS")
            .ok()
            .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect::<Vec<_>>())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| COMPOSE_CLIENTS.to_vec()),
    };
    if let Ok(filter) = std::env::var("CONVO_BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    print_machine();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(&settings))
}

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn run(settings: &Settings) -> anyhow::Result<()> {
    let begun = Instant::now();
    let webhooks =
        DispatcherConfig { poll_interval: DISPATCHER_POLL, ..DispatcherConfig::default() };
    let stack = Stack::start(ServeConfig { webhooks, ..ServeConfig::ephemeral() })
        .await
        .context("starting the serve stack")?;
    // The dev workspace's opening balance covers a demo, not thousands of composes and holds.
    stack
        .store
        .credit(DEV_WORKSPACE, Money::from_minor(1_000_000_000_000), "api-bench-credit")
        .await
        .context("crediting the dev workspace")?;
    println!(
        "stack: HTTP {}, Temporal {} (in memory); webhook dispatcher poll {} ms",
        stack.http_addr,
        stack.temporal_addr,
        DISPATCHER_POLL.as_millis()
    );
    println!();

    let api = Arc::new(Api::new(&stack)?);
    let channel_id = api.channel_id("whatsapp").await?;
    let temporal = format!("http://{}", stack.temporal_addr);

    eprintln!("raw devserver rate (baseline, before everything else)…");
    let raw_before = raw_rate(&temporal, "api-bench-raw-before", settings.measure).await?;

    // Latency rows first, on a fresh stack: nothing else runs, so each figure is one request's
    // path through the stack, and the compose rows' open conversations do not weigh on it.
    let receiver = WebhookReceiver::start().await?;
    let endpoint = api
        .post(
            "/v1/webhook-endpoints",
            &json!({"url": receiver.url, "event_types": ["conversation.started"]}),
        )
        .await?;
    ensure!(endpoint.0.is_success(), "creating the webhook endpoint: {endpoint:?}");

    let mut inbound_rows = Vec::new();
    let mut next_contact = 0u64;
    for concurrency in LATENCY_CONCURRENCY {
        eprintln!("inbound ×{concurrency}…");
        let first = next_contact;
        next_contact += settings.contacts as u64;
        let samples = run_pool(concurrency, settings.contacts, {
            let (api, arrivals) = (api.clone(), receiver.arrivals.clone());
            move |i| inbound_one(api.clone(), arrivals.clone(), first + i as u64)
        })
        .await;
        inbound_rows.push(LatencyRow::new(concurrency, settings.contacts, samples));
    }
    print_latency(
        "Inbound → conversation.started delivered",
        "POST /v1/inbound/sandbox from a new contact (opens a WhatsApp window) until the \
         contact's conversation.started webhook reaches a loopback receiver",
        &inbound_rows,
    );

    stack.sandbox.clear_sends();
    let sends = SendWatcher::start(stack.sandbox.clone());
    let mut send_rows = Vec::new();
    for (concurrency, inbound) in LATENCY_CONCURRENCY.into_iter().zip(&inbound_rows) {
        eprintln!("CONVERSATION send ×{concurrency}…");
        let phones: Arc<Vec<String>> = Arc::new(inbound.ok.iter().map(|s| s.key.clone()).collect());
        let samples = run_pool(concurrency, phones.len(), {
            let (api, arrivals, phones) = (api.clone(), sends.arrivals.clone(), phones.clone());
            move |i| send_one(api.clone(), arrivals.clone(), phones[i].clone())
        })
        .await;
        send_rows.push(LatencyRow::new(concurrency, phones.len(), samples));
    }
    print_latency(
        "CONVERSATION send → provider receives",
        "POST /v1/messages (message_type CONVERSATION, free-form in the open window) until the \
         sandbox provider records the message",
        &send_rows,
    );

    sends.task.abort();
    receiver.task.abort();
    stack.sandbox.clear_sends();

    let mut rows = Vec::new();
    let phones = Arc::new(AtomicU64::new(0));
    for &clients in &settings.clients {
        eprintln!("compose ×{clients}…");
        let row = compose_row(&stack, &api, &channel_id, clients, settings.measure, &phones).await;
        eprintln!("  {:.1} composed/s", row.rate());
        rows.push(row);
    }
    eprintln!("raw devserver rate (after the compose rows)…");
    let raw_after = raw_rate(&temporal, "api-bench-raw-after", settings.measure).await?;
    print_raw(&raw_before, &raw_after);
    print_compose(&rows, (raw_before.rate() + raw_after.rate()) / 2.0);

    stack.shutdown().await?;
    println!("total bench time {:.0} s", begun.elapsed().as_secs_f64());
    Ok(())
}

// ---- machine -------------------------------------------------------------------------------

fn print_machine() {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let build = if cfg!(debug_assertions) {
        "debug (unoptimised: figures are not meaningful)"
    } else {
        "release (optimised)"
    };
    println!("convo API benchmark: the `convo serve` stack in process, driven over HTTP");
    println!("  build     {build}");
    println!("  cpus      {cpus} × {model}");
    println!("  load avg  {} (at start; the bench shares the machine)", load.join(" "));
    println!("  note      clients, server, worker and devserver all share these cpus");
}

/// CPU seconds used by this process (the stack and the clients together).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the parenthesised name: state is the first field, utime and stime the 12th and
    // 13th; both in clock ticks, which are 1/100 s on Linux.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<f64>().ok())
        .sum::<f64>()
        / 100.0
}

// ---- HTTP client ---------------------------------------------------------------------------

/// The dev workspace's view of the HTTP API.
struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn new(stack: &Stack) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(WAIT)
            .build()
            .context("HTTP client")?;
        Ok(Self {
            http,
            base: format!("http://{}", stack.http_addr),
            key: stack.dev_api_key.clone(),
        })
    }

    /// A POST with a fresh Idempotency-Key.
    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(StatusCode, Value)> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .json(body)
            .send()
            .await?;
        let status = res.status();
        let bytes = res.bytes().await?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// The public id of the dev workspace's channel of `kind`.
    async fn channel_id(&self, kind: &str) -> anyhow::Result<String> {
        let res = self
            .http
            .get(format!("{}/v1/channels", self.base))
            .bearer_auth(&self.key)
            .send()
            .await?
            .error_for_status()?;
        let list: Value = res.json().await?;
        list["data"]
            .as_array()
            .and_then(|d| d.iter().find(|c| c["kind"] == kind))
            .and_then(|c| c["id"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("no {kind} channel in {list}"))
    }
}

/// The digits of a phone number, so `+1…` and `1…` match.
fn digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

// ---- statistics ----------------------------------------------------------------------------

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

// ---- compose throughput --------------------------------------------------------------------

/// One compose request as a client saw it.
struct Attempt {
    done: Instant,
    took: Duration,
    /// 0 when the request failed below HTTP.
    status: u16,
    phone: String,
    error: Option<String>,
}

struct ComposeRow {
    clients: usize,
    secs: f64,
    /// 202s answered inside the measured window.
    accepted: usize,
    /// Other answers inside the window.
    refused: usize,
    first_error: Option<String>,
    /// Of the window's 202s, conversations whose first message the sandbox had recorded by the
    /// window's end.
    started: usize,
    /// Sends the sandbox recorded during the window (any conversation, warm-up's included).
    sends_in_window: usize,
    latency: (Duration, Duration),
    /// CPU of the whole process over the window, in cores.
    cores: f64,
    /// From the window's end until every accepted conversation's first message had arrived,
    /// or, if that took longer than [`WAIT`], how many of them had arrived by then.
    backlog: Result<Duration, (usize, usize)>,
}

impl ComposeRow {
    fn rate(&self) -> f64 {
        self.accepted as f64 / self.secs
    }
}

async fn compose_client(
    api: Arc<Api>,
    channel_id: String,
    stop: Arc<AtomicBool>,
    phones: Arc<AtomicU64>,
) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let phone = format!("+1212{:07}", 2_000_000 + phones.fetch_add(1, Ordering::Relaxed));
        let body = json!({
            "channel_id": channel_id,
            "contact_phone": phone,
            "content": "Your order shipped",
            "template": {"name": "order_update", "variables": {"1": "bench"}},
        });
        let sent = Instant::now();
        let answer = api.post("/v1/conversations/compose", &body).await;
        let done = Instant::now();
        let (status, error) = match answer {
            Ok((status, _)) if status == StatusCode::ACCEPTED => (status.as_u16(), None),
            Ok((status, body)) => (status.as_u16(), Some(format!("{status}: {body}"))),
            Err(e) => (0, Some(e.to_string())),
        };
        let failed = error.is_some();
        attempts.push(Attempt { done, took: done - sent, status, phone: digits(&phone), error });
        if failed {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    attempts
}

async fn compose_row(
    stack: &Stack,
    api: &Arc<Api>,
    channel_id: &str,
    clients: usize,
    measure: Duration,
    phones: &Arc<AtomicU64>,
) -> ComposeRow {
    stack.sandbox.clear_sends();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        tasks.spawn(compose_client(
            api.clone(),
            channel_id.to_owned(),
            stop.clone(),
            phones.clone(),
        ));
    }
    tokio::time::sleep(WARMUP).await;
    let (start, sends_before, cpu) = (Instant::now(), stack.sandbox.sends().len(), cpu_seconds());
    tokio::time::sleep(measure).await;
    let end = Instant::now();
    let at_end = stack.sandbox.sends();
    let cores = (cpu_seconds() - cpu) / (end - start).as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let attempts: Vec<Attempt> = tasks.join_all().await.into_iter().flatten().collect();

    let window: Vec<&Attempt> =
        attempts.iter().filter(|a| a.done >= start && a.done < end).collect();
    let ok: Vec<&Attempt> = window.iter().copied().filter(|a| a.status == 202).collect();
    let ok_phones: HashSet<&str> = ok.iter().map(|a| a.phone.as_str()).collect();
    let started = at_end.iter().filter(|s| ok_phones.contains(digits(&s.to).as_str())).count();
    let mut took: Vec<Duration> = window.iter().map(|a| a.took).collect();
    took.sort();

    let all_ok = attempts.iter().filter(|a| a.status == 202).count();
    let backlog = match stack.sandbox.wait_for_sends(all_ok, WAIT).await {
        Ok(_) => Ok(end.elapsed()),
        Err(timeout) => Err((timeout.seen, all_ok)),
    };
    ComposeRow {
        clients,
        secs: (end - start).as_secs_f64(),
        accepted: ok.len(),
        refused: window.len() - ok.len(),
        first_error: attempts.iter().find_map(|a| a.error.clone()),
        started,
        sends_in_window: at_end.len().saturating_sub(sends_before),
        latency: (percentile(&took, 50.0), percentile(&took, 99.0)),
        cores,
        backlog,
    }
}

fn print_compose(rows: &[ComposeRow], raw: f64) {
    println!("Compose throughput: POST /v1/conversations/compose, 202s per second");
    println!(
        "  each client loops: a fresh contact phone, a fresh Idempotency-Key, WhatsApp with a \
         template (no window, so the template is the first message)"
    );
    println!(
        "  started by end: of the window's 202s, first messages the sandbox had recorded when \
         the window closed; first msgs/s: first messages the sandbox recorded per second of the \
         window (any conversation's); drained: window end → every 202's first message recorded"
    );
    println!("  ÷ raw: composed/s ÷ the raw devserver wf/s (mean of the two raw runs)");
    println!();
    println!(
        "{:>7} {:>8} {:>5} {:>11} {:>15} {:>12} {:>10} {:>10} {:>5} {:>9} {:>6}",
        "clients",
        "202s",
        "secs",
        "composed/s",
        "started by end",
        "first msgs/s",
        "HTTP p50",
        "HTTP p99",
        "CPU",
        "drained",
        "÷ raw"
    );
    for r in rows {
        println!(
            "{:>7} {:>8} {:>5.2} {:>11.1} {:>15} {:>12.1} {:>10} {:>10} {:>4.0}% {:>9} {:>6.2}",
            r.clients,
            r.accepted,
            r.secs,
            r.rate(),
            format!("{} ({:.0}%)", r.started, pct(r.started, r.accepted)),
            r.sends_in_window as f64 / r.secs,
            ms(r.latency.0),
            ms(r.latency.1),
            r.cores * 100.0,
            match r.backlog {
                Ok(d) => format!("{:.1} s", d.as_secs_f64()),
                Err(_) => format!("> {} s", WAIT.as_secs()),
            },
            r.rate() / raw
        );
    }
    for r in rows {
        if let Err((seen, all)) = r.backlog {
            println!(
                "  ! ×{}: {seen} of the row's {all} accepted conversations had sent their first \
                 message {} s after the window",
                r.clients,
                WAIT.as_secs()
            );
        }
    }
    for r in rows.iter().filter(|r| r.refused > 0 || r.first_error.is_some()) {
        println!(
            "  ! ×{}: {} non-202 answers in the window; first: {}",
            r.clients,
            r.refused,
            r.first_error.as_deref().unwrap_or("none")
        );
    }
    println!();
}

fn pct(part: usize, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}

// ---- latency rows --------------------------------------------------------------------------

/// One request's path through the stack.
struct Sample {
    /// The contact's phone (inbound) or the recipient (send).
    key: String,
    /// Request sent → its HTTP answer.
    http: Duration,
    /// Request sent → the webhook or the provider send arrived.
    end_to_end: Duration,
}

struct LatencyRow {
    concurrency: usize,
    ok: Vec<Sample>,
    failed: usize,
    /// Not attempted: the row gave up after [`GIVE_UP_AFTER`] failures.
    skipped: usize,
    first_error: Option<String>,
    secs: f64,
}

impl LatencyRow {
    fn new(concurrency: usize, n: usize, run: (Vec<anyhow::Result<Sample>>, Duration)) -> Self {
        let (results, took) = run;
        let skipped = n.saturating_sub(results.len());
        let mut ok = Vec::new();
        let (mut failed, mut first_error) = (0, None);
        for r in results {
            match r {
                Ok(s) => ok.push(s),
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }
        Self { concurrency, ok, failed, skipped, first_error, secs: took.as_secs_f64() }
    }
}

/// Runs `f(0..n)` with at most `concurrency` in flight; returns the results and the wall time.
async fn run_pool<F, Fut>(
    concurrency: usize,
    n: usize,
    f: F,
) -> (Vec<anyhow::Result<Sample>>, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<Sample>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        if failures.load(Ordering::Relaxed) >= GIVE_UP_AFTER {
            break; // a broken stack would otherwise cost WAIT per remaining request
        }
        let (job, failures) = (f(i), failures.clone());
        tasks.spawn(async move {
            let result = job.await;
            if result.is_err() {
                failures.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
            result
        });
    }
    let results = tasks.join_all().await;
    (results, started.elapsed())
}

fn print_latency(title: &str, what: &str, rows: &[LatencyRow]) {
    println!("{title}");
    println!("  {what}");
    println!();
    println!(
        "{:>5} {:>6} {:>10} {:>10} {:>10} {:>12} {:>12} {:>7}",
        "conc", "n", "p50", "p99", "max", "HTTP 2xx p50", "HTTP 2xx p99", "per s"
    );
    for r in rows {
        let mut e2e: Vec<Duration> = r.ok.iter().map(|s| s.end_to_end).collect();
        let mut http: Vec<Duration> = r.ok.iter().map(|s| s.http).collect();
        e2e.sort();
        http.sort();
        println!(
            "{:>5} {:>6} {:>10} {:>10} {:>10} {:>12} {:>12} {:>7.1}",
            r.concurrency,
            r.ok.len(),
            ms(percentile(&e2e, 50.0)),
            ms(percentile(&e2e, 99.0)),
            ms(e2e.last().copied().unwrap_or_default()),
            ms(percentile(&http, 50.0)),
            ms(percentile(&http, 99.0)),
            r.ok.len() as f64 / r.secs
        );
    }
    for r in rows.iter().filter(|r| r.failed > 0) {
        println!(
            "  ! ×{}: {} failed, {} not attempted; first: {}",
            r.concurrency,
            r.failed,
            r.skipped,
            r.first_error.as_deref().unwrap_or("none")
        );
    }
    println!();
}

/// Arrival times by key, written by a listener and awaited by the requests.
type Arrivals = watch::Receiver<HashMap<String, Instant>>;

async fn arrival(mut arrivals: Arrivals, key: &str) -> anyhow::Result<Instant> {
    let seen = tokio::time::timeout(WAIT, arrivals.wait_for(|m| m.contains_key(key)))
        .await
        .with_context(|| format!("nothing arrived for {key} within {WAIT:?}"))??;
    Ok(seen[key])
}

/// Loopback receiver of the dev workspace's webhooks: records when each contact's
/// `conversation.started` arrives (the first one wins). It checks no signature.
struct WebhookReceiver {
    url: String,
    arrivals: Arrivals,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    async fn start() -> anyhow::Result<Self> {
        let (tx, arrivals) = watch::channel(HashMap::new());
        let app = Router::new().route("/hook", post(receive)).with_state(Arc::new(tx));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, arrivals, task })
    }
}

async fn receive(
    State(tx): State<Arc<watch::Sender<HashMap<String, Instant>>>>,
    body: Bytes,
) -> StatusCode {
    let now = Instant::now();
    if let Ok(event) = serde_json::from_slice::<Value>(&body)
        && event["type"] == "conversation.started"
        && let Some(contact) = event["data"]["contact_id"].as_str()
    {
        tx.send_modify(|m| {
            m.entry(contact.to_owned()).or_insert(now);
        });
    }
    StatusCode::NO_CONTENT
}

/// Records when the sandbox provider receives each recipient's first send (by phone digits).
struct SendWatcher {
    arrivals: Arrivals,
    task: tokio::task::JoinHandle<()>,
}

impl SendWatcher {
    /// Starts from an empty outbox ([`SandboxHandle::clear_sends`] before).
    fn start(sandbox: Arc<SandboxHandle>) -> Self {
        let (tx, arrivals) = watch::channel(HashMap::new());
        let task = tokio::spawn(async move {
            let mut seen = 0;
            loop {
                // Wakes on each recorded send.
                let Ok(sends) = sandbox.wait_for_sends(seen + 1, Duration::from_secs(3600)).await
                else {
                    continue;
                };
                let now = Instant::now();
                tx.send_modify(|m| {
                    for s in sends.iter().skip(seen) {
                        m.entry(digits(&s.to)).or_insert(now);
                    }
                });
                seen = sends.len();
            }
        });
        Self { arrivals, task }
    }
}

async fn inbound_one(api: Arc<Api>, arrivals: Arrivals, n: u64) -> anyhow::Result<Sample> {
    let phone = format!("+1646{:07}", 2_000_000 + n);
    let body = json!({
        "from": phone,
        "channel": "whatsapp",
        "text": "hello, where is my order?",
        "provider_message_id": format!("wamid.bench-{n}"),
    });
    let sent = Instant::now();
    let (status, answer) = api.post("/v1/inbound/sandbox", &body).await?;
    let http = sent.elapsed();
    if !status.is_success() {
        bail!("inbound answered {status}: {answer}");
    }
    let contact =
        answer["contact_ids"][0].as_str().with_context(|| format!("no contact id in {answer}"))?;
    let at = arrival(arrivals, contact).await?;
    Ok(Sample { key: phone, http, end_to_end: at.saturating_duration_since(sent) })
}

async fn send_one(api: Arc<Api>, arrivals: Arrivals, phone: String) -> anyhow::Result<Sample> {
    let body = json!({
        "to": phone,
        "channel": "whatsapp",
        "message_type": "CONVERSATION",
        "content": {"text": "It arrives tomorrow."},
        "traffic_type": "transactional",
    });
    let sent = Instant::now();
    let (status, answer) = api.post("/v1/messages", &body).await?;
    let http = sent.elapsed();
    if !status.is_success() {
        bail!("send answered {status}: {answer}");
    }
    let at = arrival(arrivals, &digits(&phone)).await?;
    Ok(Sample { key: phone, http, end_to_end: at.saturating_duration_since(sent) })
}

// ---- raw devserver baseline ----------------------------------------------------------------

type Grpc = WorkflowServiceClient<tonic::transport::Channel>;

struct RawRun {
    completed: u64,
    secs: f64,
    errors: u64,
    cores: f64,
}

impl RawRun {
    fn rate(&self) -> f64 {
        self.completed as f64 / self.secs
    }
}

/// What the raw clients share.
struct RawLoad {
    queue: String,
    /// One permit per workflow allowed open; the worker that completes one gives it back.
    open: Semaphore,
    next: AtomicU64,
    completed: AtomicU64,
    errors: AtomicU64,
}

impl RawLoad {
    fn task_queue(&self) -> Option<TaskQueue> {
        Some(TaskQueue {
            name: self.queue.clone(),
            kind: TaskQueueKind::Normal as i32,
            normal_name: String::new(),
        })
    }
}

fn proto_duration(d: Duration) -> Option<prost_wkt_types::Duration> {
    Some(prost_wkt_types::Duration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 })
}

/// The baseline workflow: a 1 ms timer, then one activity, then completion; like a replaying
/// SDK it picks the next command from the whole history.
fn next_command(load: &RawLoad, history: &[HistoryEvent]) -> Option<Command> {
    let saw = |t: EventType| history.iter().any(|e| e.event_type == t as i32);
    let (command_type, attributes) = if saw(EventType::ActivityTaskCompleted) {
        (
            CommandType::CompleteWorkflowExecution,
            Attributes::CompleteWorkflowExecutionCommandAttributes(
                CompleteWorkflowExecutionCommandAttributes::default(),
            ),
        )
    } else if saw(EventType::TimerFired) {
        if saw(EventType::ActivityTaskScheduled) {
            return None;
        }
        (
            CommandType::ScheduleActivityTask,
            Attributes::ScheduleActivityTaskCommandAttributes(
                ScheduleActivityTaskCommandAttributes {
                    activity_id: "1".into(),
                    activity_type: Some(ActivityType { name: "raw-activity".into() }),
                    task_queue: load.task_queue(),
                    start_to_close_timeout: proto_duration(Duration::from_secs(30)),
                    ..Default::default()
                },
            ),
        )
    } else if saw(EventType::TimerStarted) {
        return None;
    } else {
        (
            CommandType::StartTimer,
            Attributes::StartTimerCommandAttributes(StartTimerCommandAttributes {
                timer_id: "1".into(),
                start_to_fire_timeout: proto_duration(Duration::from_millis(1)),
            }),
        )
    };
    Some(Command {
        command_type: command_type as i32,
        attributes: Some(attributes),
        ..Default::default()
    })
}

async fn raw_starter(mut client: Grpc, load: Arc<RawLoad>) {
    loop {
        load.open.acquire().await.expect("never closed").forget();
        let id = format!("{}-{}", load.queue, load.next.fetch_add(1, Ordering::Relaxed));
        let request = StartWorkflowExecutionRequest {
            namespace: NAMESPACE.into(),
            request_id: id.clone(),
            workflow_id: id,
            workflow_type: Some(WorkflowType { name: "RawBenchWorkflow".into() }),
            task_queue: load.task_queue(),
            identity: "api-bench-starter".into(),
            ..Default::default()
        };
        if client.start_workflow_execution(request).await.is_err() {
            load.errors.fetch_add(1, Ordering::Relaxed);
            load.open.add_permits(1);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn raw_workflow_poller(mut client: Grpc, load: Arc<RawLoad>) {
    // Answers run beside the poll loop, as an SDK's task slots do.
    let mut answers = JoinSet::new();
    loop {
        while answers.try_join_next().is_some() {}
        let poll = PollWorkflowTaskQueueRequest {
            namespace: NAMESPACE.into(),
            task_queue: load.task_queue(),
            identity: "api-bench-worker".into(),
            ..Default::default()
        };
        let task = match client.poll_workflow_task_queue(poll).await {
            Ok(task) => task.into_inner(),
            Err(_) => {
                load.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if task.task_token.is_empty() {
            continue;
        }
        let (mut client, load) = (client.clone(), load.clone());
        answers.spawn(async move {
            let events = task.history.map(|h| h.events).unwrap_or_default();
            let command = next_command(&load, &events);
            let completes = command
                .as_ref()
                .is_some_and(|c| c.command_type == CommandType::CompleteWorkflowExecution as i32);
            let answer = RespondWorkflowTaskCompletedRequest {
                namespace: NAMESPACE.into(),
                task_token: task.task_token,
                commands: command.into_iter().collect(),
                identity: "api-bench-worker".into(),
                ..Default::default()
            };
            match client.respond_workflow_task_completed(answer).await {
                Ok(_) if completes => {
                    load.completed.fetch_add(1, Ordering::Relaxed);
                    load.open.add_permits(1);
                }
                Ok(_) => {}
                Err(_) => {
                    load.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

async fn raw_activity_poller(mut client: Grpc, load: Arc<RawLoad>) {
    let mut answers = JoinSet::new();
    loop {
        while answers.try_join_next().is_some() {}
        let poll = PollActivityTaskQueueRequest {
            namespace: NAMESPACE.into(),
            task_queue: load.task_queue(),
            identity: "api-bench-worker".into(),
            ..Default::default()
        };
        let task = match client.poll_activity_task_queue(poll).await {
            Ok(task) => task.into_inner(),
            Err(_) => {
                load.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if task.task_token.is_empty() {
            continue;
        }
        let (mut client, load) = (client.clone(), load.clone());
        answers.spawn(async move {
            let answer = RespondActivityTaskCompletedRequest {
                namespace: NAMESPACE.into(),
                task_token: task.task_token,
                identity: "api-bench-worker".into(),
                ..Default::default()
            };
            if client.respond_activity_task_completed(answer).await.is_err() {
                load.errors.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// Completed baseline workflows per second at [`RAW_CONCURRENCY`], on its own task queue.
async fn raw_rate(url: &str, queue: &str, measure: Duration) -> anyhow::Result<RawRun> {
    let load = Arc::new(RawLoad {
        queue: format!("{queue}-{}", uuid::Uuid::new_v4().simple()),
        open: Semaphore::new(RAW_CONCURRENCY),
        next: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    // One connection per role, as a client process and a worker process would each have.
    let mut connections = Vec::new();
    for _ in 0..3 {
        connections.push(Grpc::connect(url.to_owned()).await.context("connecting over gRPC")?);
    }
    let mut tasks = JoinSet::new();
    for _ in 0..RAW_CONCURRENCY {
        tasks.spawn(raw_starter(connections[0].clone(), load.clone()));
        tasks.spawn(raw_workflow_poller(connections[1].clone(), load.clone()));
        tasks.spawn(raw_activity_poller(connections[2].clone(), load.clone()));
    }
    tokio::time::sleep(WARMUP).await;
    let (first, start, cpu) =
        (load.completed.load(Ordering::Relaxed), Instant::now(), cpu_seconds());
    tokio::time::sleep(measure).await;
    let completed = load.completed.load(Ordering::Relaxed) - first;
    let secs = start.elapsed().as_secs_f64();
    let cores = (cpu_seconds() - cpu) / secs;
    tasks.shutdown().await;
    Ok(RawRun { completed, secs, errors: load.errors.load(Ordering::Relaxed), cores })
}

fn print_raw(before: &RawRun, after: &RawRun) {
    println!(
        "Raw devserver rate (baseline): start → 1 ms timer → activity → complete (10 RPCs), \
         raw gRPC on the stack's Temporal port, {RAW_CONCURRENCY} concurrent workflows"
    );
    println!();
    println!(
        "{:<22} {:>9} {:>6} {:>9} {:>5} {:>7}",
        "when", "measured", "secs", "wf/s", "CPU", "errors"
    );
    for (when, r) in [("at start", before), ("after compose rows", after)] {
        println!(
            "{:<22} {:>9} {:>6.2} {:>9.1} {:>4.0}% {:>7}",
            when,
            r.completed,
            r.secs,
            r.rate(),
            r.cores * 100.0,
            r.errors
        );
    }
    println!();
}
