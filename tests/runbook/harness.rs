//! What every runbook test stands on: `convo serve` (the [`Stack`]) on the real Temporal dev
//! server, its HTTP API, a webhook endpoint that verifies every signature, and the `temporal`
//! CLI running RUNBOOK.md's commands.

use std::{
    future::Future,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};
use convo::{ServeConfig, Stack, serve::ExternalTemporal};
use convo_activities::{testing::WebhookReceiver, webhooks::DispatcherConfig};
use convo_tests::{Backend, BackendKind, eventually, skipped, within};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::doc::Runbook;

/// How long a condition may take to become true.
pub(crate) const WAIT: Duration = Duration::from_secs(30);
/// How long one CLI command may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// The stack on the real dev server, its API, a webhook endpoint and the CLI; private to one
/// test.
pub(crate) struct Ops {
    pub(crate) stack: Stack,
    pub(crate) api: Api,
    pub(crate) receiver: WebhookReceiver,
    pub(crate) cli: Cli,
    backend: Backend,
}

impl Ops {
    /// The stack on a real dev server of its own; `None` (a recorded skip) on any other
    /// backend: the runbook's commands need the real server's reset, pause and visibility.
    pub(crate) async fn start(test: &str) -> anyhow::Result<Option<Ops>> {
        Ops::start_with(test, &[]).await
    }

    /// [`Ops::start`] with dynamic config values for the server.
    pub(crate) async fn start_with(
        test: &str,
        dynamic_config: &[(&str, &str)],
    ) -> anyhow::Result<Option<Ops>> {
        let kind = BackendKind::from_env()?;
        if kind != BackendKind::Temporal {
            let reason = "RUNBOOK.md is run with the `temporal` CLI against the real dev server \
                          (CONVO_TEST_BACKEND=temporal): activity pause and reset, workflow reset \
                          and the visibility queries it uses are real-server features";
            skipped(kind, test, reason);
            return Ok(None);
        }
        let backend = Backend::start_with(
            kind,
            convo_devserver::DevServerConfig::ephemeral(),
            dynamic_config,
        )
        .await?;
        let config = ServeConfig {
            temporal: Some(ExternalTemporal {
                url: backend.url().clone(),
                namespace: "default".into(),
            }),
            webhooks: DispatcherConfig {
                retry_schedule: vec![Duration::from_millis(50); 3],
                poll_interval: Duration::from_millis(100),
                ..DispatcherConfig::default()
            },
            ..ServeConfig::ephemeral()
        };
        // Windows keep their real length (24 h on WhatsApp): no step waits for an expiry, and a
        // window must not close under a send that the test keeps failing for a while.
        let stack = Stack::start(config).await?;
        let api = Api::new(&stack);
        let receiver = WebhookReceiver::start().await?;
        let (status, endpoint) =
            api.post("/v1/webhook-endpoints", json!({"url": receiver.url()})).await?;
        anyhow::ensure!(status == StatusCode::CREATED, "webhook endpoint: {status} {endpoint}");
        receiver.set_secret(endpoint["secret"].as_str().context("endpoint secret")?);
        let cli = Cli::new(backend.address())?;
        Ok(Some(Ops { stack, api, receiver, cli, backend }))
    }

    /// A contact writes in on WhatsApp; answers its session's workflow id once the window is
    /// open.
    pub(crate) async fn open_window(&self, phone: &str, text: &str) -> anyhow::Result<String> {
        self.api.inbound(phone, text).await?;
        let window = self.api.window_until(phone, "open", |w| w["open"] == true).await?;
        let contact = window["contact_id"].as_str().context("contact id")?;
        Ok(session_id(contact))
    }

    /// The webhooks delivered so far, in order, every one verified.
    pub(crate) fn webhooks(&self) -> Vec<Delivered> {
        let received = self.receiver.received();
        assert!(received.iter().all(|w| w.verified), "every delivery verifies: {received:?}");
        received
            .iter()
            .map(|w| {
                let body = w.json();
                let kind = body["type"].as_str().unwrap_or_default().to_owned();
                Delivered { id: w.id.clone(), kind, data: body["data"].clone() }
            })
            .collect()
    }

    /// Waits until `check` holds for the delivered webhooks.
    pub(crate) async fn webhooks_until(
        &self,
        what: &str,
        check: impl Fn(&[Delivered]) -> bool,
    ) -> anyhow::Result<Vec<Delivered>> {
        eventually(WAIT, || async {
            let got = self.webhooks();
            let kinds: Vec<&str> = got.iter().map(|w| w.kind.as_str()).collect();
            anyhow::ensure!(check(&got), "{what}: webhooks so far {kinds:?}");
            Ok(got)
        })
        .await
    }

    /// Stops the stack, then the server.
    pub(crate) async fn shutdown(self) -> anyhow::Result<()> {
        self.stack.shutdown().await?;
        self.backend.shutdown().await;
        Ok(())
    }
}

/// One webhook delivery.
#[derive(Debug, Clone)]
pub(crate) struct Delivered {
    /// `webhook-id`: the logical event's id.
    pub(crate) id: String,
    /// `type`, e.g. `conversation.ended`.
    pub(crate) kind: String,
    /// `data`.
    pub(crate) data: Value,
}

/// The dev workspace's session of `contact`.
pub(crate) fn session_id(contact: &str) -> String {
    convo_workflows::contracts::session_workflow_id(convo::serve::DEV_WORKSPACE, contact)
}

/// A client for the stack's HTTP API, with the dev workspace's key.
pub(crate) struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    fn new(stack: &Stack) -> Api {
        Api {
            base: format!("http://{}", stack.http_addr),
            key: stack.dev_api_key.clone(),
            http: reqwest::Client::new(),
        }
    }

    /// A request; the body parsed as JSON (`Null` when it is not).
    pub(crate) fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> impl Future<Output = anyhow::Result<(StatusCode, Value)>> + Send + 'static {
        let mut req =
            self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let path = path.to_owned();
        async move {
            // A send waits up to the API's 30 s send timeout before it answers 503.
            let resp = within(Duration::from_secs(60), &path, req.send()).await??;
            let status = resp.status();
            let text = resp.text().await?;
            Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
        }
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        self.call(reqwest::Method::GET, path, None, None).await
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        body: Value,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.call(reqwest::Method::POST, path, Some(body), None).await
    }

    /// The id of the dev workspace's channel of `kind` (`whatsapp`, …).
    pub(crate) async fn channel(&self, kind: &str) -> anyhow::Result<String> {
        let (_, list) = self.get("/v1/channels").await?;
        list["data"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["kind"] == kind))
            .and_then(|c| c["id"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("no {kind} channel in {list}"))
    }

    /// The contact writes in through the sandbox provider's inbound endpoint.
    pub(crate) async fn inbound(&self, from: &str, text: &str) -> anyhow::Result<()> {
        let body = json!({"from": from, "channel": "whatsapp", "text": text});
        let (status, body) = self.post("/v1/inbound/sandbox", body).await?;
        anyhow::ensure!(status.is_success(), "inbound: {status} {body}");
        Ok(())
    }

    /// A free-form WhatsApp send under `key`: the request, to await now or in a task.
    pub(crate) fn send(
        &self,
        to: &str,
        text: &str,
        key: &str,
    ) -> impl Future<Output = anyhow::Result<(StatusCode, Value)>> + Send + 'static {
        let body = json!({"to": to, "channel": "whatsapp", "message_type": "CONVERSATION",
            "content": {"text": text}, "traffic_type": "transactional"});
        self.call(reqwest::Method::POST, "/v1/messages", Some(body), Some(key))
    }

    /// `GET /v1/windows/{contact}` until `check` holds.
    pub(crate) async fn window_until(
        &self,
        contact: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        eventually(WAIT, || async {
            let (status, w) = self.get(&format!("/v1/windows/{contact}")).await?;
            anyhow::ensure!(check(&w), "{what}: window is {status} {w}");
            Ok(w)
        })
        .await
    }

    /// The dev workspace's balance: `free`, `reserved`, `total`.
    pub(crate) async fn balance(&self) -> anyhow::Result<Value> {
        let (status, balance) = self.get("/v1/workspace/balance").await?;
        anyhow::ensure!(status.is_success(), "balance: {status} {balance}");
        Ok(balance)
    }
}

/// The real `temporal` CLI, pointed at the test's server through `TEMPORAL_ADDRESS`, running
/// RUNBOOK.md's commands with bash exactly as an operator would paste them.
pub(crate) struct Cli {
    runbook: Runbook,
    /// Holds `temporal`, a link to `$TEMPORAL_CLI`, first on the commands' `PATH`.
    bin: tempfile::TempDir,
    address: String,
}

impl Cli {
    fn new(address: String) -> anyhow::Result<Cli> {
        let binary = std::env::var_os("TEMPORAL_CLI")
            .map(PathBuf::from)
            .context("$TEMPORAL_CLI (run `eval \"$(scripts/temporal-servers)\"`)")?;
        let bin = tempfile::tempdir()?;
        std::os::unix::fs::symlink(&binary, bin.path().join("temporal"))?;
        Ok(Cli { runbook: Runbook::load()?, bin, address })
    }

    /// RUNBOOK.md, as the steps run it.
    pub(crate) fn runbook(&self) -> &Runbook {
        &self.runbook
    }

    /// Runs RUNBOOK.md's block of `step` with `vars` set; what it printed. Fails unless it
    /// exits 0.
    pub(crate) async fn step(&self, step: &str, vars: &[(&str, &str)]) -> anyhow::Result<String> {
        let block = self.runbook.block(step)?.to_owned();
        self.bash(step, &block, vars).await
    }

    /// [`Cli::step`] for a command printing JSON (`-o json`); its output parsed.
    pub(crate) async fn step_json(
        &self,
        step: &str,
        vars: &[(&str, &str)],
    ) -> anyhow::Result<Value> {
        let out = self.step(step, vars).await?;
        serde_json::from_str(&out).with_context(|| format!("step {step} printed no JSON: {out}"))
    }

    /// A `temporal` command that is no runbook step: what a test does to make something go
    /// wrong.
    pub(crate) async fn temporal(&self, args: &[&str]) -> anyhow::Result<String> {
        let quoted: Vec<String> =
            args.iter().map(|a| format!("'{}'", a.replace('\'', r"'\''"))).collect();
        self.bash("temporal", &format!("temporal {}", quoted.join(" ")), &[]).await
    }

    async fn bash(
        &self,
        what: &str,
        script: &str,
        vars: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        let path = match std::env::var_os("PATH") {
            Some(path) => {
                let mut dirs = vec![self.bin.path().to_path_buf()];
                dirs.extend(std::env::split_paths(&path));
                std::env::join_paths(dirs)?
            }
            None => self.bin.path().as_os_str().to_owned(),
        };
        let mut command = Command::new("bash");
        command
            .args(["-euo", "pipefail", "-c", script])
            .env("PATH", path)
            .env("TEMPORAL_ADDRESS", &self.address)
            .env("TEMPORAL_NAMESPACE", "default")
            .stdin(Stdio::null());
        for (name, value) in vars {
            command.env(name, value);
        }
        let run = tokio::task::spawn_blocking(move || command.output());
        let output = within(CLI_TIMEOUT, what, run).await???;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            bail!("`{script}` ({what}) exited {}:\n{stdout}\n{stderr}", output.status);
        }
        Ok(stdout)
    }
}

/// The pending activity of type `activity_type` in a `describe -o json` answer.
pub(crate) fn pending_activity<'a>(describe: &'a Value, activity_type: &str) -> Option<&'a Value> {
    describe["pendingActivities"]
        .as_array()?
        .iter()
        .find(|a| a["activityType"]["name"] == activity_type)
}

/// A proto-JSON integer (int64s are strings, int32s numbers).
pub(crate) fn int(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

/// The workflow ids in a `workflow list -o json` answer.
pub(crate) fn listed_ids(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["execution"]["workflowId"].as_str().map(str::to_owned))
        .collect()
}
