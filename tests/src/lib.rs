//! `convo-tests`: the end-to-end harness. The tests themselves live in `e2e/`.
//!
//! Every test gets its own [`TestEnv`]: a Temporal server of its own (the embedded
//! `convo-devserver` by default; `CONVO_TEST_BACKEND` picks sdk-java's test server or the real
//! dev server, see `convo_testkit`), a real SDK worker (built by `convo_worker`, on its own thread) on a unique task queue
//! `{test}-{uuid}`, and a real SDK client. Nothing is shared between tests, so they run in
//! parallel.
//!
//! Tests never sleep to synchronise: they wait on observable conditions with [`eventually`]
//! (for example "the history contains a second `TimerStarted`"), and move time with
//! [`TestEnv::skip`]. Durations are written in model time (a 24 h window): on the real dev
//! server, which cannot skip, the workspace's windows, pings and timeouts are scaled to one
//! second per model hour ([`TestEnv::scale`]) and a skip sleeps for real.
//!
//! Set `TEST_LOG=1` (and optionally `RUST_LOG`) to see tracing output.
//!
//! # Layout
//! - [`TestEnv`]: start / shutdown, ids and start options.
//! - [`eventually`]: bounded polling for a condition.
//! - [`history`], [`event_types`], [`history_event_types`], [`wait_for_event`]: read histories
//!   back through `GetWorkflowExecutionHistory`.

use std::{future::Future, sync::Once, time::Duration};

use anyhow::{Context, anyhow};
use convo_activities::{
    reconcile::ReconcilerConfig,
    sandbox::{Sandbox, SandboxHandle},
    testing::WebhookReceiver,
    webhooks::DispatcherConfig,
};
use convo_client::Sessions;
use convo_devserver::DevServerConfig;
use convo_domain::{Channel, Money, RateCard, RateTable, WorkspaceSettings};
use convo_store::{Store, webhooks::Destinations};
pub use convo_testkit::{Backend, BackendKind, Clock, scale_settings, skipped};
use convo_worker::{Customize, Settings};
use temporalio_client::{
    Client, Url, WorkflowFetchHistoryOptions, WorkflowHandle, WorkflowStartOptions,
};
use temporalio_common::{
    HasWorkflowDefinition,
    protos::temporal::api::{enums::v1::EventType, history::v1::HistoryEvent},
};
use uuid::Uuid;

pub use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;

/// How often [`eventually`] re-checks its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Upper bound for stopping the worker and the server at the end of a test.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound for a time skip, beyond the real time it takes.
const SKIP_TIMEOUT: Duration = Duration::from_secs(20);

/// A devserver, a worker and a client, private to one test.
pub struct TestEnv {
    /// Client connected to the server (namespace `default`).
    pub client: Client,
    /// The unique task queue the worker polls.
    pub task_queue: String,
    /// The store the worker's activities use (a fresh SQLite file).
    pub store: Store,
    /// The channel provider every channel of the test workspace points at.
    pub sandbox: SandboxHandle,
    /// The workspace's webhook endpoint: verifies every signature.
    pub receiver: WebhookReceiver,
    /// Inbound messages, sends, closes and composes, as the API makes them.
    pub sessions: Sessions,
    /// The workspace's id.
    pub workspace_id: String,
    /// How time moves on this backend.
    pub clock: Clock,
    _db_dir: tempfile::TempDir,
    backend: Option<Backend>,
    node: Option<convo::Node>,
}

impl TestEnv {
    /// Starts a server and a worker with convo's workflows and activities.
    pub async fn start(test_name: &str) -> anyhow::Result<Self> {
        Self::start_with(test_name, None).await
    }

    /// Like [`TestEnv::start`], registering extra (test-only) workflows and activities too.
    pub async fn start_with(test_name: &str, customize: Option<Customize>) -> anyhow::Result<Self> {
        Self::build(test_name, customize, Options::default()).await
    }

    /// A server, a worker, the sandbox provider, a webhook receiver and a seeded workspace.
    pub async fn build(
        test_name: &str,
        customize: Option<Customize>,
        options: Options,
    ) -> anyhow::Result<Self> {
        init_tracing();
        let mut config = DevServerConfig::ephemeral();
        if let Some(events) = options.suggest_continue_as_new_events {
            config.suggest_continue_as_new_events = events;
        }
        let backend = Backend::start(BackendKind::from_env()?, config).await?;
        let clock = backend.clock();
        let address: Url = backend.url().clone();
        let task_queue = format!("{test_name}-{}", Uuid::new_v4());

        let db_dir = tempfile::tempdir().context("temp dir for the store")?;
        let store = Store::open_sqlite(db_dir.path().join("convo.db")).await.context("store")?;
        let sandbox = Sandbox::start("127.0.0.1:0".parse()?).await.context("sandbox")?;
        let receiver = WebhookReceiver::start().await.context("webhook receiver")?;
        let workspace_id = format!("ws-{}", Uuid::new_v4());
        let settings = scale_settings(&clock, options.settings)?;
        seed_workspace(&store, &workspace_id, &sandbox, &receiver, settings).await?;
        if options.balance > 0 {
            store.credit(&workspace_id, Money::from_minor(options.balance), "opening").await?;
        }

        let settings = Settings {
            task_queue: task_queue.clone(),
            build_id: "convo-tests".to_owned(),
            identity: Some(format!("convo-tests@{task_queue}")),
            // Activities still running at shutdown (the timeout fixture) are cancelled promptly.
            graceful_shutdown_period: Some(Duration::from_secs(1)),
            ..Settings::new(address)
        };
        let webhooks = DispatcherConfig {
            // Real-time retries, scaled down from the production schedule.
            retry_schedule: vec![Duration::from_millis(50); 3],
            poll_interval: Duration::from_millis(100),
            destinations: Destinations::DEVELOPMENT,
            ..DispatcherConfig::default()
        };
        let node = convo::Node::start(convo::NodeParts {
            temporal: settings,
            store: store.clone(),
            worker: Some(convo::WorkerParts {
                webhooks: Some(webhooks),
                reconciler: Some(ReconcilerConfig {
                    interval: Duration::from_millis(200),
                    grace: Duration::ZERO,
                    batch: 100,
                }),
                customize,
            }),
            api: None,
        })
        .await?;
        let client = node.client().clone();
        let sessions = node.sessions().clone();
        Ok(Self {
            client,
            task_queue,
            store,
            sandbox,
            receiver,
            sessions,
            workspace_id,
            clock,
            _db_dir: db_dir,
            backend: Some(backend),
            node: Some(node),
        })
    }

    /// The Temporal frontend, `http://127.0.0.1:port`.
    pub fn temporal_url(&self) -> &Url {
        self.backend.as_ref().expect("server runs until shutdown").url()
    }

    /// Which Temporal server this test runs on.
    pub fn backend(&self) -> BackendKind {
        self.backend.as_ref().expect("server runs until shutdown").kind()
    }

    /// `model` time as this backend runs it (see the module docs).
    pub fn scale(&self, model: Duration) -> Duration {
        self.clock.scale(model)
    }

    /// [`TestEnv::scale`] in whole seconds (at least one), for durations kept in seconds.
    pub fn scale_secs(&self, model_secs: u64) -> u64 {
        self.clock.scale_secs(model_secs)
    }

    /// Lets `model` time pass (a skip, or a scaled real sleep); bounded so that a broken
    /// server fails the test instead of hanging it.
    pub async fn skip(&self, model: Duration) -> anyhow::Result<()> {
        let bound = SKIP_TIMEOUT + self.clock.scale(model);
        within(bound, &format!("skip {model:?}"), self.clock.skip(model)).await?
    }

    /// Start options for a workflow on this environment's task queue.
    pub fn start_options(&self, workflow_id: impl Into<String>) -> WorkflowStartOptions {
        WorkflowStartOptions::new(self.task_queue.clone(), workflow_id.into()).build()
    }

    /// A workflow id unique to this run: `{prefix}-{uuid}`.
    pub fn unique_id(prefix: &str) -> String {
        format!("{prefix}-{}", Uuid::new_v4())
    }

    /// Stops the worker (gracefully) and then the server.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(node) = self.node.take() {
            tokio::time::timeout(SHUTDOWN_TIMEOUT, node.shutdown())
                .await
                .map_err(|_| anyhow!("worker did not stop within {SHUTDOWN_TIMEOUT:?}"))?
                .context("worker stopped with an error")?;
        }
        if let Some(backend) = self.backend.take() {
            tokio::time::timeout(SHUTDOWN_TIMEOUT, backend.shutdown())
                .await
                .map_err(|_| anyhow!("the server did not stop within {SHUTDOWN_TIMEOUT:?}"))?;
        }
        Ok(())
    }
}

/// What a [`TestEnv`] is built with.
#[derive(Debug, Clone)]
pub struct Options {
    /// The workspace's settings (policy overrides, rates, compliance texts, inactivity ping).
    pub settings: WorkspaceSettings,
    /// Opening balance, in minor units.
    pub balance: u64,
    /// The devserver's `limit.historyCount.suggestContinueAsNew`.
    pub suggest_continue_as_new_events: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Self { settings: default_settings(), balance: 1_000, suggest_continue_as_new_events: None }
    }
}

/// Rates on every channel: a conversation unit of 100, messages at 5, newsletters at 2.
pub fn default_settings() -> WorkspaceSettings {
    let rates = RateTable::uniform(RateCard {
        conversation_unit: Money::from_minor(100),
        message: Money::from_minor(5),
        newsletter: Money::from_minor(2),
    });
    WorkspaceSettings { rates, ..WorkspaceSettings::default() }
}

async fn seed_workspace(
    store: &Store,
    workspace_id: &str,
    sandbox: &SandboxHandle,
    receiver: &WebhookReceiver,
    settings: WorkspaceSettings,
) -> anyhow::Result<()> {
    store.upsert_workspace(workspace_id, "Test workspace", &settings).await?;
    for channel in Channel::ALL {
        let sender = match channel {
            Channel::Email => "support@convo.test".to_owned(),
            _ => "+12125550110".to_owned(),
        };
        store.upsert_channel(&sandbox.channel_config(workspace_id, channel, sender)).await?;
    }
    let endpoint = store.add_webhook_endpoint(workspace_id, &receiver.url(), Vec::new()).await?;
    receiver.set_secret(&endpoint.secret);
    Ok(())
}

/// Re-runs `check` until it returns `Ok`, for at most `timeout`; then fails with its last error.
///
/// ```ignore
/// eventually(Duration::from_secs(10), || async {
///     let n = count_events(&handle, EventType::TimerStarted).await?;
///     anyhow::ensure!(n == 2, "{n} timers so far");
///     Ok(())
/// }).await?;
/// ```
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let err = match check().await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(err.context(format!("condition still false after {timeout:?}")));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The workflow run's full history, read through `GetWorkflowExecutionHistory` (all pages).
pub async fn history<W>(handle: &WorkflowHandle<Client, W>) -> anyhow::Result<Vec<HistoryEvent>>
where
    W: HasWorkflowDefinition,
{
    handle
        .fetch_history(WorkflowFetchHistoryOptions::builder().build())
        .into_events()
        .await
        .context("GetWorkflowExecutionHistory")
}

/// The event types of `events`, in order.
pub fn event_types(events: &[HistoryEvent]) -> Vec<EventType> {
    events.iter().map(HistoryEvent::event_type).collect()
}

/// The event types of the run's full history, read through `GetWorkflowExecutionHistory`.
pub async fn history_event_types<W>(
    handle: &WorkflowHandle<Client, W>,
) -> anyhow::Result<Vec<EventType>>
where
    W: HasWorkflowDefinition,
{
    Ok(event_types(&history(handle).await?))
}

/// Waits until the history holds at least `count` events of type `event_type`; returns it.
pub async fn wait_for_event<W>(
    handle: &WorkflowHandle<Client, W>,
    event_type: EventType,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<HistoryEvent>>
where
    W: HasWorkflowDefinition,
{
    eventually(timeout, || async {
        let events = history(handle).await?;
        let seen = events.iter().filter(|e| e.event_type() == event_type).count();
        anyhow::ensure!(
            seen >= count,
            "{seen}/{count} {event_type:?} events; history so far: {:?}",
            event_types(&events)
        );
        Ok(events)
    })
    .await
}

/// `types` as far as every backend agrees on them.
///
/// The devserver and the real server write the same histories event for event, and these
/// tests pin that exact shape. sdk-java's test server places workflow tasks differently (the
/// first task is scheduled before a signal-with-start's signal, activity events land between
/// other tasks, a rejected update leaves its speculative workflow task in the history, and an
/// activity that times out has no `ActivityTaskStarted`). On it only the events that carry
/// convo's own commands and their outcomes are compared: workflow-task events and
/// `ActivityTaskStarted` are left out.
pub fn comparable(backend: BackendKind, types: &[EventType]) -> Vec<EventType> {
    types
        .iter()
        .copied()
        .filter(|t| {
            backend != BackendKind::TestServer
                || !matches!(
                    t,
                    EventType::WorkflowTaskScheduled
                        | EventType::WorkflowTaskStarted
                        | EventType::WorkflowTaskCompleted
                        | EventType::ActivityTaskStarted
                )
        })
        .collect()
}

/// Awaits `fut` for at most `timeout` (so a broken server fails a test instead of hanging it).
pub async fn within<T>(
    timeout: Duration,
    what: &str,
    fut: impl Future<Output = T>,
) -> anyhow::Result<T> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow!("{what}: no answer within {timeout:?}"))
}

fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
    });
}
