//! Chaos bench: `cargo bench --bench chaos` (issue 17 §3).
//!
//! Drives a load of conversations through the real `convo` binary while it kills that binary
//! with `kill -9` at random points, restarts it on the same data, and then counts what a crash
//! must never do. Everything is on loopback: the fake WhatsApp Cloud API (the sandbox's Graph
//! API, run by this bench so that it outlives every crash) receives the sends, and a webhook
//! receiver run by the bench verifies and records every delivery.
//!
//! Two runs:
//!
//! 1. **serve**: `convo serve` (embedded devserver, SQLite), killed at random.
//! 2. **split**: `convo worker` and `convo api` on the real Temporal dev server and Postgres,
//!    each killed at random in turn (needs `DATABASE_URL` and `TEMPORAL_CLI`:
//!    `eval "$(scripts/temporal-servers)"`; without them the run says why it did not happen).
//!
//! Each contact: a compose (its first message goes out: the template, or its text if the reply
//! below opened the window first), a signed WhatsApp reply that opens the window, a free-form CONVERSATION send in it, then a STOP (one contact in five), a close
//! (one in five), or nothing. Every request is retried the way a careful client retries: the
//! same Idempotency-Key (or, for the provider's webhooks, the same message id) until it gets
//! an answer. After the load, every window still open is closed, and the bench prints:
//! lost windows, duplicate and lost provider sends, logical webhooks under more than one id,
//! lost webhooks, stranded holds, requests locked out (409 `idempotency_key_in_use`), the
//! longest a request took to get through a crash, and the time back to ready after each
//! restart. Every figure but the times must be 0; the bench fails otherwise.
//!
//! Environment: `CHAOS_CONVERSATIONS` (per run, default 1000), `CHAOS_CONCURRENCY` (contacts in
//! flight, default 16), `CHAOS_KILLS` (kills per run, default 6), `CHAOS_SEED`, `CHAOS_RUNS`
//! (`serve,split`), `CHAOS_LOG_LEVEL` (the convo processes' log filter, default
//! `warn,convo_worker=info`), `CHAOS_HOLD` (after a split run that found something, keep its
//! Temporal dev server, worker and API up for 15 minutes and print the server's address, to
//! read the histories).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use convo_activities::{
    sandbox::{Sandbox, SandboxHandle},
    testing::WebhookReceiver,
};
use convo_domain::Channel;
use convo_testkit::{Backend, BackendKind, free_port, provider_signatures};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{sync::Semaphore, task::JoinSet};

const BIN: &str = env!("CARGO_BIN_EXE_convo");
const APP_SECRET: &str = "chaos-app-secret";
const NUMBER: &str = "+12125550122";
const WORKSPACE: &str = "chaos";
/// The conversation unit the workspace holds per billing session, in minor units.
const UNIT: u64 = 50;
/// A request that has not got through by then is a failure of the bench, not a slow answer.
const REQUEST_DEADLINE: Duration = Duration::from_secs(120);
/// The longest the bench waits for the system to settle after the load.
const SETTLE: Duration = Duration::from_secs(120);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A small deterministic generator (xorshift), so that a seed replays a run's kill times.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = (hi - lo).as_millis() as u64;
        lo + Duration::from_millis(self.next() % span.max(1))
    }
}

/// A `convo` process of the bench, killed with SIGKILL and reaped when dropped.
struct Proc {
    child: Child,
}

impl Proc {
    fn spawn(
        dir: &Path,
        name: &str,
        env: &[(&str, String)],
        args: &[&str],
    ) -> anyhow::Result<Proc> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{name}.log")))?;
        let child = Command::new(BIN)
            .args(args)
            // Only what the run sets: `convo serve` on the bench's shell's DATABASE_URL would
            // share a store (and its idempotency keys) with earlier runs.
            .env_remove("DATABASE_URL")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning convo {args:?}"))?;
        Ok(Proc { child })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `convo <args>` to completion; its stdout.
fn cli(dir: &Path, env: &[(&str, String)], args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("DATABASE_URL")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .output()?;
    ensure!(out.status.success(), "convo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs one statement on Postgres.
async fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await?;
    sqlx::query(sql).execute(&mut c).await?;
    c.close().await?;
    Ok(())
}

/// What the clients saw, across the run.
#[derive(Default)]
struct Seen {
    /// Answers of 409 `idempotency_key_in_use`.
    locked_out: AtomicU64,
    /// Attempts that met a dead or restarting process (connection refused, reset, 5xx).
    failed_attempts: AtomicU64,
    /// The longest a request took from its first attempt to its answer, in ms.
    longest_ms: AtomicU64,
    /// Message ids of the accepted sends, per contact.
    accepted: Mutex<HashMap<String, Vec<String>>>,
    /// The composed conversation, per contact.
    composed: Mutex<HashMap<String, String>>,
}

struct Client {
    base: String,
    key: String,
    http: reqwest::Client,
    seen: Arc<Seen>,
}

impl Client {
    /// Sends one request until it gets an answer that is not a crash's: the same body and
    /// the same Idempotency-Key each time.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(&self.key)
                .timeout(Duration::from_secs(40));
            if let Some(key) = key {
                req = req.header("Idempotency-Key", key);
            }
            if let Some(body) = body {
                req = req.json(body);
            }
            match req.send().await {
                Ok(resp) if !resp.status().is_server_error() => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    if status == StatusCode::CONFLICT
                        && value["error"]["code"] == "idempotency_key_in_use"
                    {
                        self.seen.locked_out.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let ms = started.elapsed().as_millis() as u64;
                        self.seen.longest_ms.fetch_max(ms, Ordering::Relaxed);
                        return Ok((status, value));
                    }
                }
                Ok(resp) => {
                    self.seen.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    last = format!("{} {}", resp.status(), resp.text().await.unwrap_or_default());
                }
                Err(e) => {
                    self.seen.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    last = e.to_string();
                }
            }
            ensure!(
                started.elapsed() < REQUEST_DEADLINE,
                "{method} {path}: no answer in {REQUEST_DEADLINE:?}; the last: {last}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn post(
        &self,
        path: &str,
        key: &str,
        body: Value,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.call(reqwest::Method::POST, path, Some(key), Some(&body)).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let (status, body) = self.call(reqwest::Method::GET, path, None, None).await?;
        ensure!(status.is_success(), "GET {path}: {status} {body}");
        Ok(body)
    }

    /// Meta's webhook for one message from `from`, signed; retried as Meta retries, with the
    /// same message id.
    async fn whatsapp(
        &self,
        phone_number_id: &str,
        from: &str,
        id: &str,
        text: &str,
    ) -> anyhow::Result<()> {
        let wa_id = from.trim_start_matches('+');
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let body = serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "waba-chaos", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": NUMBER.trim_start_matches('+'), "phone_number_id": phone_number_id},
                "contacts": [{"profile": {"name": "Chaos"}, "wa_id": wa_id}],
                "messages": [{"from": wa_id, "id": id, "timestamp": now.to_string(), "type": "text", "text": {"body": text}}]
            }}]}]
        }))?;
        let signature = provider_signatures::meta(APP_SECRET, &body);
        let started = Instant::now();
        loop {
            let sent = self
                .http
                .post(format!("{}/v1/inbound/whatsapp", self.base))
                .header("content-type", "application/json")
                .header("X-Hub-Signature-256", &signature)
                .body(body.clone())
                .timeout(Duration::from_secs(40))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().is_client_error() => bail!("inbound {id}: {}", r.status()),
                _ => {
                    self.seen.failed_attempts.fetch_add(1, Ordering::Relaxed);
                }
            }
            ensure!(started.elapsed() < REQUEST_DEADLINE, "inbound {id}: no answer");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn window(&self, phone: &str) -> anyhow::Result<Value> {
        self.get(&format!("/v1/windows/{}", phone.replace('+', "%2B"))).await
    }

    async fn window_until(
        &self,
        phone: &str,
        check: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let started = Instant::now();
        loop {
            let w = self.window(phone).await?;
            if check(&w) {
                return Ok(w);
            }
            ensure!(started.elapsed() < SETTLE, "{phone}: window still {w}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// What one contact does; what it ends as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    Stop,
    Close,
    Open,
}

fn ending(i: usize) -> Ending {
    match i % 5 {
        0 => Ending::Stop,
        1 => Ending::Close,
        _ => Ending::Open,
    }
}

fn phone(run: &str, i: usize) -> String {
    let base = if run == "serve" { 2_000_000 } else { 3_000_000 };
    format!("+1415{:07}", base + i)
}

async fn contact(
    client: &Client,
    run: &str,
    phone_number_id: &str,
    channel_id: &str,
    i: usize,
) -> anyhow::Result<()> {
    let to = phone(run, i);
    let (status, composed) = client
        .post(
            "/v1/conversations/compose",
            &format!("{run}-compose-{i}"),
            json!({"channel_id": channel_id, "contact_phone": to, "content": format!("Hello {i}"),
                "template": {"name": "order_shipped", "variables": {"1": format!("#{i}")}}}),
        )
        .await?;
    ensure!(status == StatusCode::ACCEPTED, "compose {to}: {status} {composed}");
    let conversation = composed["conversation_id"].as_str().context("conversation_id")?;
    client.seen.composed.lock().unwrap().insert(to.clone(), conversation.to_owned());
    client.whatsapp(phone_number_id, &to, &format!("wamid.{run}.in.{i}"), "where is it?").await?;
    client.window_until(&to, |w| w["open"] == true).await?;
    let (status, sent) = client
        .post(
            "/v1/messages",
            &format!("{run}-send-{i}"),
            json!({"to": to, "channel": "whatsapp", "message_type": "CONVERSATION",
                "content": {"text": format!("It arrives tomorrow, {i}")}, "traffic_type": "transactional"}),
        )
        .await?;
    ensure!(status == StatusCode::ACCEPTED, "send {to}: {status} {sent}");
    let id = sent["message_id"].as_str().context("message_id")?.to_owned();
    client.seen.accepted.lock().unwrap().entry(to.clone()).or_default().push(id);
    match ending(i) {
        Ending::Stop => {
            client.whatsapp(phone_number_id, &to, &format!("wamid.{run}.stop.{i}"), "STOP").await?
        }
        Ending::Close => {
            let path = format!("/v1/windows/{}/close", to.replace('+', "%2B"));
            let (status, body) = client.post(&path, &format!("{run}-close-{i}"), json!({})).await?;
            ensure!(status.is_success(), "close {to}: {status} {body}");
        }
        Ending::Open => {}
    }
    Ok(())
}

/// How one run's processes are started, and which of them the killer picks from.
trait Target: Send {
    /// The processes that can be killed, by name.
    fn victims(&self) -> &'static [&'static str];
    /// Kills `victim` with SIGKILL and starts it again; the time until it is ready again.
    fn crash(
        &mut self,
        victim: &'static str,
    ) -> impl std::future::Future<Output = anyhow::Result<Duration>> + Send;
}

/// Waits for `/readyz` to answer 200; the time it took.
async fn ready(http: &reqwest::Client, base: &str, since: Instant) -> anyhow::Result<Duration> {
    loop {
        if let Ok(r) =
            http.get(format!("{base}/readyz")).timeout(Duration::from_secs(2)).send().await
            && r.status().is_success()
        {
            return Ok(since.elapsed());
        }
        ensure!(since.elapsed() < Duration::from_secs(120), "{base} not ready in 120 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Serve {
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
    base: String,
    http: reqwest::Client,
    proc: Option<Proc>,
}

impl Serve {
    fn start(&mut self) -> anyhow::Result<()> {
        self.proc = Some(Proc::spawn(&self.dir, "serve", &self.env, &["serve"])?);
        Ok(())
    }
}

impl Target for Serve {
    fn victims(&self) -> &'static [&'static str] {
        &["convo serve"]
    }

    async fn crash(&mut self, _: &'static str) -> anyhow::Result<Duration> {
        self.proc = None;
        let restarted = Instant::now();
        self.start()?;
        ready(&self.http, &self.base, restarted).await
    }
}

struct Split {
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
    base: String,
    http: reqwest::Client,
    worker: Option<Proc>,
    api: Option<Proc>,
}

impl Target for Split {
    fn victims(&self) -> &'static [&'static str] {
        &["convo worker", "convo api"]
    }

    async fn crash(&mut self, victim: &'static str) -> anyhow::Result<Duration> {
        let restarted = Instant::now();
        if victim == "convo worker" {
            self.worker = None;
            let log = self.dir.join("worker.log");
            let built = |log: &Path| {
                std::fs::read_to_string(log).unwrap_or_default().matches("worker built").count()
            };
            let before = built(&log);
            self.worker = Some(Proc::spawn(&self.dir, "worker", &self.env, &["worker"])?);
            // The worker has no HTTP port: it is back once it has connected and built its
            // pollers, which it logs.
            while built(&log) == before {
                ensure!(
                    restarted.elapsed() < Duration::from_secs(120),
                    "convo worker not back in 120 s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(restarted.elapsed())
        } else {
            self.api = None;
            self.api = Some(Proc::spawn(&self.dir, "api", &self.env, &["api"])?);
            ready(&self.http, &self.base, restarted).await
        }
    }
}

/// Provisions the chaos workspace with the CLI: a WhatsApp channel on the bench's fake Graph
/// API, rates, a balance, a webhook-capable API key. Returns the key and the phone number id.
fn provision(
    dir: &Path,
    env: &[(&str, String)],
    providers: &SandboxHandle,
) -> anyhow::Result<(String, String)> {
    cli(dir, env, &["workspace", "create", WORKSPACE, "--name", "Chaos"])?;
    let mut whatsapp = serde_json::to_value(providers.provider_config(Channel::Whatsapp))?;
    whatsapp["app_secret"] = json!(APP_SECRET);
    let phone_number_id =
        whatsapp["phone_number_id"].as_str().context("phone_number_id")?.to_owned();
    let config = whatsapp.to_string();
    cli(
        dir,
        env,
        &[
            "channel",
            "add",
            "--workspace",
            WORKSPACE,
            "--kind",
            "whatsapp",
            "--sender",
            NUMBER,
            "--provider-config",
            &config,
        ],
    )?;
    let unit = UNIT.to_string();
    cli(
        dir,
        env,
        &[
            "workspace",
            "set-rates",
            "--workspace",
            WORKSPACE,
            "--channel",
            "whatsapp",
            "--conversation-unit",
            &unit,
            "--message",
            "5",
            "--newsletter",
            "2",
        ],
    )?;
    cli(
        dir,
        env,
        &[
            "workspace",
            "top-up",
            "--workspace",
            WORKSPACE,
            "--amount",
            "100000000",
            "--reason",
            "chaos",
            "--by",
            "bench",
        ],
    )?;
    let created = cli(dir, env, &["api-key", "create", "--workspace", WORKSPACE])?;
    let key = created
        .lines()
        .find_map(|l| l.strip_prefix("api key "))
        .and_then(|l| l.split_whitespace().next())
        .context("the printed API key")?
        .to_owned();
    Ok((key, phone_number_id))
}

/// One run's figures.
#[derive(Default)]
struct Report {
    conversations: usize,
    kills: BTreeMap<&'static str, usize>,
    ready: Vec<Duration>,
    lost_windows: usize,
    duplicate_sends: usize,
    lost_sends: usize,
    webhooks_multi_id: usize,
    lost_webhooks: usize,
    stranded_holds: u64,
    locked_out: u64,
    failed_attempts: u64,
    longest: Duration,
    wall: Duration,
}

impl Report {
    fn print(&self, run: &str) {
        let mut ready = self.ready.clone();
        ready.sort();
        let max = ready.last().copied().unwrap_or_default();
        let median = ready.get(ready.len() / 2).copied().unwrap_or_default();
        let kills: Vec<String> = self.kills.iter().map(|(k, n)| format!("{n} × {k}")).collect();
        println!(
            "\n== chaos: {run} ({} conversations, kill -9: {}; {:.1?})",
            self.conversations,
            kills.join(", "),
            self.wall
        );
        println!("lost windows                        {}", self.lost_windows);
        println!("duplicate provider sends            {}", self.duplicate_sends);
        println!("lost provider sends                 {}", self.lost_sends);
        println!("logical webhooks under >1 id        {}", self.webhooks_multi_id);
        println!("lost webhooks                       {}", self.lost_webhooks);
        println!("stranded holds                      {}", self.stranded_holds);
        println!("requests locked out (409 in_use)    {}", self.locked_out);
        println!("attempts that met a crash           {}", self.failed_attempts);
        println!("longest request through a crash     {:.1?}", self.longest);
        println!("back to ready after a kill          median {median:.0?}, max {max:.0?}");
    }

    fn clean(&self) -> bool {
        self.lost_windows == 0
            && self.duplicate_sends == 0
            && self.lost_sends == 0
            && self.webhooks_multi_id == 0
            && self.lost_webhooks == 0
            && self.stranded_holds == 0
            && self.locked_out == 0
    }
}

/// Drives the load against `target` while killing its processes at random, then settles and
/// counts.
async fn drive<T: Target>(
    run: &'static str,
    target: &mut T,
    client: Arc<Client>,
    providers: &SandboxHandle,
    receiver: &WebhookReceiver,
    phone_number_id: &str,
    rng: &mut Rng,
) -> anyhow::Result<Report> {
    let conversations = env_or("CHAOS_CONVERSATIONS", 1000usize);
    let concurrency = env_or("CHAOS_CONCURRENCY", 16usize);
    let kills = env_or("CHAOS_KILLS", 6usize);
    let started = Instant::now();
    let channels = client.get("/v1/channels").await?;
    let channel_id = channels["data"][0]["id"].as_str().context("the channel")?.to_owned();

    let done = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let load = {
        let client = client.clone();
        let done = done.clone();
        let progress = progress.clone();
        let phone_number_id = phone_number_id.to_owned();
        tokio::spawn(async move {
            let gate = Arc::new(Semaphore::new(concurrency));
            let mut tasks = JoinSet::new();
            for i in 0..conversations {
                let permit = gate.clone().acquire_owned().await?;
                let client = client.clone();
                let (pid, ch, progress) =
                    (phone_number_id.clone(), channel_id.clone(), progress.clone());
                tasks.spawn(async move {
                    let outcome = contact(&client, run, &pid, &ch, i).await;
                    progress.fetch_add(1, Ordering::Relaxed);
                    drop(permit);
                    outcome
                });
            }
            let mut first_error = None;
            while let Some(outcome) = tasks.join_next().await {
                if let Err(e) = outcome? {
                    first_error.get_or_insert(e);
                }
            }
            done.store(true, Ordering::Relaxed);
            first_error.map_or(Ok(()), Err)
        })
    };

    // The killer: spread the kills over the load, each at a random point of its stretch.
    let mut report = Report { conversations, ..Report::default() };
    for k in 0..kills {
        let target_progress = (conversations as u64 * (k as u64 + 1)) / (kills as u64 + 1);
        while progress.load(Ordering::Relaxed) < target_progress && !done.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if done.load(Ordering::Relaxed) {
            break;
        }
        tokio::time::sleep(rng.between(Duration::ZERO, Duration::from_millis(700))).await;
        let victims = target.victims();
        let victim = victims[rng.next() as usize % victims.len()];
        report.ready.push(target.crash(victim).await?);
        *report.kills.entry(victim).or_default() += 1;
    }
    load.await??;

    // Settle: every window still open is closed, so that every hold must be settled.
    let accepted = client.seen.accepted.lock().unwrap().clone();
    for i in 0..conversations {
        let to = phone(run, i);
        let w = match ending(i) {
            Ending::Stop => client.window_until(&to, |w| w["open"] == false).await?,
            Ending::Close => client.window_until(&to, |w| w["open"] == false).await?,
            Ending::Open => {
                let w = client.window(&to).await?;
                if w["open"] != true {
                    report.lost_windows += 1;
                    continue;
                }
                let path = format!("/v1/windows/{}/close", to.replace('+', "%2B"));
                client.post(&path, &format!("{run}-final-close-{i}"), json!({})).await?;
                client.window_until(&to, |w| w["open"] == false).await?
            }
        };
        let want = match ending(i) {
            Ending::Stop => "COMPLIANCE_STOP",
            Ending::Close | Ending::Open => "EXPLICIT",
        };
        // A compose whose first message a crash held back past the window's end sends it
        // later, as a template, in a run of its own that opens no window; the window's end is
        // then in the `conversation.ended` webhook the contact's window sent.
        let ended_by_webhook = || {
            receiver.received().iter().any(|r| {
                let body = r.json();
                body["type"] == "conversation.ended"
                    && body["data"]["contact"]["address"] == to.as_str()
                    && body["data"]["reason"] == want
            })
        };
        let replaced = w["opened_at"].is_null() && w["close_reason"].is_null();
        if w["close_reason"] != want && !(replaced && ended_by_webhook()) {
            report.lost_windows += 1;
            eprintln!("{to}: window {w}, expected closed {want}");
        }
    }

    // Holds: every session has resolved, so nothing may stay reserved.
    let settle = Instant::now();
    loop {
        let balance = client.get("/v1/workspace/balance").await?;
        let reserved = balance["reserved"].as_u64().unwrap_or(u64::MAX);
        report.stranded_holds = reserved.div_ceil(UNIT);
        if reserved == 0 || settle.elapsed() > SETTLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Provider sends: per contact, its first message and its accepted send, each exactly once.
    let prefix = if run == "serve" { "+14152" } else { "+14153" };
    let settle = Instant::now();
    loop {
        let sends: Vec<_> =
            providers.sends().into_iter().filter(|s| s.to.starts_with(prefix)).collect();
        let mut per: HashMap<(String, String), usize> = HashMap::new();
        for s in &sends {
            *per.entry((s.to.clone(), format!("{:?}", s.content))).or_default() += 1;
        }
        report.duplicate_sends = per.values().map(|n| n - 1).sum();
        let keys: HashSet<&str> =
            sends.iter().filter_map(|s| s.idempotency_key.as_deref()).collect();
        // The compose's first message: its template, or its text when the contact's answer
        // opened the window before the conversation sent it.
        let templates: HashSet<&str> = sends
            .iter()
            .filter(|s| match &s.content {
                convo_domain::window::Content::Template { .. } => true,
                convo_domain::window::Content::Text { body, .. } => body.starts_with("Hello "),
                convo_domain::window::Content::Rich(_) => false,
            })
            .map(|s| s.to.as_str())
            .collect();
        // A contact whose STOP came before the conversation could send was owed nothing: the
        // conversation fails `contact_opted_out` and sends no first message.
        let composed = client.seen.composed.lock().unwrap().clone();
        let mut untemplated = Vec::new();
        for i in 0..conversations {
            let p = phone(run, i);
            if templates.contains(p.as_str()) {
                continue;
            }
            if !matches!(ending(i), Ending::Stop) {
                untemplated.push(p);
                continue;
            }
            let conversation = composed.get(&p).context("a compose per contact")?;
            let view = client.get(&format!("/v1/conversations/{conversation}")).await?;
            if view["error"]["code"] != "contact_opted_out" {
                untemplated.push(p);
            }
        }
        let missing: Vec<&String> =
            accepted.values().flatten().filter(|id| !keys.contains(id.as_str())).collect();
        report.lost_sends = missing.len() + untemplated.len();
        if report.lost_sends == 0 || settle.elapsed() > SETTLE {
            let missing = &missing[..missing.len().min(3)];
            let untemplated = &untemplated[..untemplated.len().min(3)];
            if report.lost_sends > 0 {
                eprintln!(
                    "lost sends, e.g. accepted {missing:?}; no first message to {untemplated:?}"
                );
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Webhooks: one id per logical event; a started and an ended per contact's window.
    let settle = Instant::now();
    loop {
        let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
        let mut started_for = HashSet::new();
        let mut ended_for = HashSet::new();
        for w in receiver.received() {
            let body = w.json();
            let data = &body["data"];
            let address = data["contact"]["address"].as_str().unwrap_or_default().to_owned();
            if !address.starts_with(prefix) {
                continue;
            }
            let kind = body["type"].as_str().unwrap_or_default().to_owned();
            let logical = format!(
                "{kind}|{}|{}|{}|{}",
                data["window"]["id"], data["message"]["id"], data["message_id"], data["status"]
            );
            ids.entry(logical).or_default().insert(w.id.clone());
            match kind.as_str() {
                "conversation.started" => started_for.insert(address),
                "conversation.ended" => ended_for.insert(address),
                _ => false,
            };
        }
        report.webhooks_multi_id = ids.values().filter(|v| v.len() > 1).count();
        report.lost_webhooks = (0..conversations)
            .map(|i| phone(run, i))
            .map(|p| usize::from(!started_for.contains(&p)) + usize::from(!ended_for.contains(&p)))
            .sum();
        if report.lost_webhooks == 0 || settle.elapsed() > SETTLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ensure!(receiver.rejected().is_empty(), "webhooks failed verification");

    report.locked_out = client.seen.locked_out.swap(0, Ordering::Relaxed);
    report.failed_attempts = client.seen.failed_attempts.swap(0, Ordering::Relaxed);
    report.longest = Duration::from_millis(client.seen.longest_ms.swap(0, Ordering::Relaxed));
    report.wall = started.elapsed();
    Ok(report)
}

/// A run's directory (its data and the processes' logs), `target/chaos/<run>`, emptied first
/// and kept afterwards for a look at the logs.
fn run_dir(run: &str) -> anyhow::Result<RunDir> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/chaos").join(run);
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path)?;
    Ok(RunDir(path))
}

struct RunDir(PathBuf);

impl RunDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

fn common_env(http_port: u16, grpc_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("CONVO_HTTP_ADDR", format!("127.0.0.1:{http_port}")),
        ("CONVO_GRPC_ADDR", format!("127.0.0.1:{grpc_port}")),
        ("CONVO_PUBLIC_BASE_URL", format!("http://127.0.0.1:{http_port}")),
        ("CONVO_WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS", "true".into()),
        ("CONVO_WEBHOOKS_ALLOW_HTTP", "true".into()),
        (
            "CONVO_LOG_LEVEL",
            std::env::var("CHAOS_LOG_LEVEL").unwrap_or_else(|_| "warn,convo_worker=info".into()),
        ),
    ]
}

async fn webhook_endpoint(
    client: &Client,
    receiver: &WebhookReceiver,
    run: &str,
) -> anyhow::Result<()> {
    let (status, endpoint) = client
        .post("/v1/webhook-endpoints", &format!("{run}-endpoint"), json!({"url": receiver.url()}))
        .await?;
    ensure!(status == StatusCode::CREATED, "webhook endpoint: {status} {endpoint}");
    receiver.set_secret(endpoint["secret"].as_str().context("secret")?);
    Ok(())
}

async fn run_serve(providers: &SandboxHandle, rng: &mut Rng) -> anyhow::Result<Report> {
    let dir = run_dir("serve")?;
    let (http_port, grpc_port, temporal_port) = (free_port()?, free_port()?, free_port()?);
    let mut env = common_env(http_port, grpc_port);
    env.push(("CONVO_DATA_DIR", dir.path().join("data").display().to_string()));
    env.push(("CONVO_TEMPORAL_PORT", temporal_port.to_string()));
    let (key, phone_number_id) = provision(dir.path(), &env, providers)?;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{http_port}");
    let mut serve = Serve {
        dir: dir.path().to_owned(),
        env,
        base: base.clone(),
        http: http.clone(),
        proc: None,
    };
    serve.start()?;
    ready(&http, &base, Instant::now()).await?;
    let receiver = WebhookReceiver::start().await?;
    let client = Arc::new(Client { base, key, http, seen: Arc::default() });
    webhook_endpoint(&client, &receiver, "serve").await?;
    drive("serve", &mut serve, client, providers, &receiver, &phone_number_id, rng).await
}

async fn run_split(providers: &SandboxHandle, rng: &mut Rng) -> anyhow::Result<Option<Report>> {
    let Some(admin_url) = std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres"))
    else {
        println!("\n== chaos: split not run: it needs Postgres (DATABASE_URL=postgres://…)");
        return Ok(None);
    };
    if std::env::var_os("TEMPORAL_CLI").is_none() {
        println!(
            "\n== chaos: split not run: it needs the real Temporal dev server (eval \"$(scripts/temporal-servers)\")"
        );
        return Ok(None);
    }
    let temporal =
        Backend::start(BackendKind::Temporal, convo_devserver::DevServerConfig::ephemeral())
            .await?;
    let schema = format!("chaos_{}", uuid::Uuid::new_v4().simple());
    psql(&admin_url, &format!("CREATE SCHEMA {schema}")).await?;
    let sep = if admin_url.contains('?') { '&' } else { '?' };
    let url = format!("{admin_url}{sep}options=-c%20search_path%3D{schema}");
    let outcome = async {
        let dir = run_dir("split")?;
        let (http_port, grpc_port) = (free_port()?, free_port()?);
        let mut env = common_env(http_port, grpc_port);
        env.push(("DATABASE_URL", url.clone()));
        env.push(("TEMPORAL_ADDRESS", temporal.address()));
        env.push(("TEMPORAL_NAMESPACE", "default".into()));
        env.push(("CONVO_TASK_QUEUE", format!("convo-chaos-{}", uuid::Uuid::new_v4().simple())));
        let (key, phone_number_id) = provision(dir.path(), &env, providers)?;
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{http_port}");
        let worker = Proc::spawn(dir.path(), "worker", &env, &["worker"])?;
        let api = Proc::spawn(dir.path(), "api", &env, &["api"])?;
        let mut split = Split {
            dir: dir.path().to_owned(),
            env,
            base: base.clone(),
            http: http.clone(),
            worker: Some(worker),
            api: Some(api),
        };
        ready(&http, &base, Instant::now()).await?;
        let receiver = WebhookReceiver::start().await?;
        let client = Arc::new(Client { base, key, http, seen: Arc::default() });
        webhook_endpoint(&client, &receiver, "split").await?;
        let report =
            drive("split", &mut split, client, providers, &receiver, &phone_number_id, rng).await;
        if report.as_ref().map_or(true, |r| !r.clean()) && std::env::var_os("CHAOS_HOLD").is_some()
        {
            eprintln!("HOLD temporal at {}", temporal.address());
            tokio::time::sleep(Duration::from_secs(900)).await;
        }
        drop(split);
        report
    }
    .await;
    temporal.shutdown().await;
    let _ = psql(&admin_url, &format!("DROP SCHEMA {schema} CASCADE")).await;
    outcome.map(Some)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seed = env_or("CHAOS_SEED", 0x5eed_c4a0_u64);
    let runs = std::env::var("CHAOS_RUNS").unwrap_or_else(|_| "serve,split".into());
    println!("chaos bench: seed {seed}, runs {runs}");
    let mut rng = Rng(seed | 1);
    let providers = Sandbox::start(([127, 0, 0, 1], 0).into()).await?;
    let mut clean = true;
    if runs.split(',').any(|r| r == "serve") {
        let report = run_serve(&providers, &mut rng).await?;
        report.print("convo serve (embedded devserver, SQLite)");
        clean &= report.clean();
    }
    if runs.split(',').any(|r| r == "split")
        && let Some(report) = run_split(&providers, &mut rng).await?
    {
        report.print("convo worker + convo api (Temporal dev server, Postgres)");
        clean &= report.clean();
    }
    if !clean {
        bail!("a crash lost, duplicated or locked out something (figures above)");
    }
    Ok(())
}
