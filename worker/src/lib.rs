//! `convo-worker`: the composition root of convo's Temporal worker, as a library.
//!
//! `convo worker` (the binary) and the end-to-end tests build the same worker through this crate:
//! connect a client, register the workflows and activities, pin the build id, run.
//!
//! Two ways to run it, because `temporalio_sdk::Worker::run()` returns a `!Send` future (all
//! workflow code of a worker shares one thread):
//! - [`build`] then [`ConvoWorker::run`], awaited on the main task (`#[tokio::main]`), inside a
//!   `tokio::task::LocalSet`, or joined with other futures via `tokio::join!`;
//! - [`spawn`], which runs it on a dedicated OS thread with its own Tokio runtime and returns a
//!   [`WorkerThread`] that is `Send` and can be shut down from anywhere (what tests use).
//!
//! # Layout
//! - [`Settings`] and [`Dependencies`]: everything the worker is built from (tests construct
//!   them in code: port 0, a unique task queue, an in-memory event sink).
//! - [`connect`], [`worker_options`], [`build`]: the composition steps.
//! - [`spawn`] / [`WorkerThread`]: a worker on its own thread.
//! - [`search_attributes`]: convo's search attributes, registered (or checked) before polling.
//! - [`Error`]: what can go wrong, with the cause chain preserved.
//! - [`metrics`]: the SDK's metrics bridged onto convo's Prometheus recorder, and the
//!   `/metrics` endpoint ([`Settings::metrics_address`]).

pub mod search_attributes;

pub mod metrics;
mod task_guard;

use std::{net::SocketAddr, time::Duration};

use convo_activities::{
    ConversationActivitiesImpl, SessionActivitiesImpl,
    reconcile::{Reconciler, ReconcilerConfig, ReconcilerHandle},
    webhooks::{DispatcherConfig, DispatcherHandle, WebhookDispatcher},
};
use convo_client::{ClientSettings, ConnectError, Sessions};
use convo_metrics::StoreRegistration;
use convo_store::Store;
use convo_workflows::{
    OutboundConversationWorkflow, SessionWindowWorkflow,
    contracts::{TASK_QUEUE, io_task_queue},
};
use temporalio_client::{Client, Url};
use temporalio_common::worker::WorkerDeploymentOptions;
use temporalio_sdk::{
    Runtime, RuntimeError, Worker, WorkerCreateError, WorkerOptions, WorkerRunError,
    WorkflowRegistrationError, runtime::RuntimeOptions,
};
use tokio::sync::oneshot;

/// Temporal-side settings of the worker.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Frontend address, e.g. `http://127.0.0.1:7233`.
    pub address: Url,
    /// Namespace to poll.
    pub namespace: String,
    /// Task queue for both workflows and activities.
    pub task_queue: String,
    /// Build id reported to the server. Set explicitly: the SDK's default is a CRC32 of the
    /// whole executable, read synchronously when the options are built.
    pub build_id: String,
    /// Worker identity; `None` lets the SDK use `pid@hostname`.
    pub identity: Option<String>,
    /// After shutdown starts, cancel still-running activities after this long (`None`: wait).
    pub graceful_shutdown_period: Option<Duration>,
    /// API key for Temporal Cloud or a server that requires one (sent as a bearer token).
    pub api_key: Option<String>,
    /// Serve Prometheus metrics (the SDK's and convo's) on `http://{address}/metrics`; port 0
    /// picks a free one ([`WorkerThread::metrics_addr`]). `None`: no endpoint (the metrics are
    /// still recorded, and a `convo serve` API renders them).
    pub metrics_address: Option<SocketAddr>,
    /// TLS to the frontend; `None` is plaintext (the devserver, a local cluster).
    pub tls: Option<TlsSettings>,
    /// Register convo's search attributes at start-up, or only check them.
    pub search_attributes: search_attributes::Mode,
}

pub use convo_client::TlsSettings;

impl Settings {
    /// What a client of these settings connects to, and as whom.
    pub fn client(&self) -> ClientSettings {
        ClientSettings {
            address: self.address.clone(),
            namespace: self.namespace.clone(),
            identity: self.identity.clone(),
            api_key: self.api_key.clone(),
            tls: self.tls.clone(),
        }
    }

    /// Defaults for `address`: namespace `default`, task queue [`TASK_QUEUE`], build id
    /// [`default_build_id`].
    pub fn new(address: Url) -> Self {
        Self {
            address,
            namespace: "default".to_owned(),
            task_queue: TASK_QUEUE.to_owned(),
            build_id: default_build_id(),
            identity: None,
            graceful_shutdown_period: None,
            api_key: None,
            metrics_address: None,
            tls: None,
            search_attributes: search_attributes::Mode::Register,
        }
    }
}

/// `convo-worker@<crate version>`.
pub fn default_build_id() -> String {
    format!("convo-worker@{}", env!("CARGO_PKG_VERSION"))
}

/// What activities use.
#[derive(Clone)]
pub struct Dependencies {
    /// The store: workspaces, contacts, consent, ledger, message log, webhooks.
    pub store: Store,
    /// Run a webhook dispatcher in the worker process with this configuration (`None`: another
    /// process delivers).
    pub webhooks: Option<DispatcherConfig>,
    /// Run the reconciler (windows of session runs that were terminated, failed or timed out)
    /// in the worker process (`None`: not here).
    pub reconciler: Option<ReconcilerConfig>,
}

impl Dependencies {
    /// The store, with a dispatcher on the Svix-like production schedule.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            webhooks: Some(DispatcherConfig::default()),
            reconciler: Some(ReconcilerConfig::default()),
        }
    }
}

/// Errors building or running the worker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The webhook dispatcher could not start (its HTTP client could not be built).
    #[error("cannot start the webhook dispatcher")]
    Dispatcher(#[source] reqwest::Error),
    /// The client could not be made (address, TLS, the frontend unreachable).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A workflow could not be registered (duplicate type, ...).
    #[error("cannot register workflows")]
    Registration(#[from] WorkflowRegistrationError),
    /// The SDK runtime could not be created.
    #[error("cannot create the Temporal SDK runtime")]
    Runtime(#[from] RuntimeError),
    /// The worker could not be created from the options.
    #[error("cannot create the worker")]
    Create(#[from] WorkerCreateError),
    /// The worker stopped with an error.
    #[error("worker stopped with an error")]
    Run(#[from] WorkerRunError),
    /// The worker thread or its Tokio runtime could not be started.
    #[error("cannot start the worker thread")]
    Thread(#[source] std::io::Error),
    /// The metrics endpoint could not bind its address.
    #[error("cannot serve metrics on {address}")]
    Metrics {
        /// The address tried.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The SDK runtime's options were rejected.
    #[error("invalid SDK runtime options: {0}")]
    RuntimeOptions(String),
    /// The worker thread ended without reporting (it panicked).
    #[error("worker thread ended without reporting a result")]
    ThreadGone,
    /// convo's search attributes are not (and could not be made) available in the namespace.
    #[error(transparent)]
    SearchAttributes(#[from] search_attributes::SearchAttributeError),
}

/// Connects a client to `settings.address` / `settings.namespace` for a worker: every call
/// goes through the task guard's channel (TLS is set up there), so that a query task never
/// runs a workflow forward and an update is run where replay puts it (see `task_guard`).
pub async fn connect(settings: &Settings) -> Result<Client, Error> {
    Ok(convo_client::connect_through(&settings.client(), task_guard::service).await?)
}

/// Worker options with convo's workflows and activities registered and the build id pinned.
///
/// Callers may register more (tests add fixtures) through `WorkerOptions::register_*`.
pub fn worker_options(settings: &Settings, sessions: Sessions) -> Result<WorkerOptions, Error> {
    let options = WorkerOptions::new(settings.task_queue.clone())
        .deployment_options(WorkerDeploymentOptions::from_build_id(settings.build_id.clone()))
        .maybe_graceful_shutdown_period(settings.graceful_shutdown_period)
        .register_workflow::<SessionWindowWorkflow>()?
        .register_workflow::<OutboundConversationWorkflow>()?
        .register_activities(ConversationActivitiesImpl::new(sessions))
        .build();
    Ok(options)
}

/// Options of the second worker, on [`io_task_queue`]: the session window's activities, which
/// never wait on a workflow, in a slot pool of their own (see [`io_task_queue`] for the
/// deadlock one shared pool allows).
///
/// `client` is how the send activity tells a session its provider is failing.
pub fn io_worker_options(
    settings: &Settings,
    deps: &Dependencies,
    client: &Client,
) -> WorkerOptions {
    WorkerOptions::new(io_task_queue(&settings.task_queue))
        .deployment_options(WorkerDeploymentOptions::from_build_id(settings.build_id.clone()))
        .maybe_graceful_shutdown_period(settings.graceful_shutdown_period)
        .register_activities(
            SessionActivitiesImpl::new(deps.store.clone()).reporting_to(client.clone()),
        )
        .build()
}

/// Hook to register extra workflows/activities on top of convo's (used by tests).
pub type Customize =
    Box<dyn FnOnce(&mut WorkerOptions) -> Result<(), WorkflowRegistrationError> + Send>;

/// A built worker and the SDK runtime it was created with.
pub struct ConvoWorker {
    // Field order matters: the worker drops before the runtime it was created with.
    worker: Worker,
    io_worker: Worker,
    _runtime: Runtime,
    dispatcher: Option<DispatcherHandle>,
    reconciler: Option<ReconcilerHandle>,
    metrics: Option<metrics::MetricsServer>,
    _store_gauges: StoreRegistration,
}

impl ConvoWorker {
    /// Where the metrics endpoint listens, if [`Settings::metrics_address`] asked for one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(metrics::MetricsServer::addr)
    }

    /// The task queue polled.
    pub fn task_queue(&self) -> &str {
        self.worker.task_queue()
    }

    /// A `Send` handle that starts a graceful shutdown; `run` then returns.
    pub fn shutdown_handle(&self) -> impl Fn() + Send + Sync + 'static {
        let (main, io) = (self.worker.shutdown_handle(), self.io_worker.shutdown_handle());
        move || {
            main();
            io();
        }
    }

    /// Polls until shut down. The future is `!Send`: await it on the main task, in a
    /// `LocalSet`, or use [`spawn`].
    pub async fn run(mut self) -> Result<(), Error> {
        let (main, io) = futures::join!(self.worker.run(), self.io_worker.run());
        let result = main.and(io);
        if let Some(dispatcher) = self.dispatcher.take() {
            dispatcher.shutdown().await;
        }
        if let Some(reconciler) = self.reconciler.take() {
            reconciler.shutdown().await;
        }
        if let Some(metrics) = self.metrics.take() {
            metrics.shutdown().await;
        }
        result?;
        Ok(())
    }
}

/// Connects and builds the worker on the current Tokio runtime.
pub async fn build(
    settings: &Settings,
    deps: &Dependencies,
    customize: Option<Customize>,
) -> Result<ConvoWorker, Error> {
    let runtime_options = RuntimeOptions::builder()
        .telemetry_options(metrics::telemetry_options())
        .build()
        .map_err(Error::RuntimeOptions)?;
    let runtime = Runtime::from_current_tokio(runtime_options)?;
    let client = connect(settings).await?;
    search_attributes::ensure(&client, &settings.namespace, settings.search_attributes).await?;
    let sessions = Sessions::new(client.clone(), deps.store.clone(), settings.task_queue.clone());
    let mut options = worker_options(settings, sessions)?;
    if let Some(customize) = customize {
        customize(&mut options)?;
    }
    let reconciler = deps
        .reconciler
        .clone()
        .map(|config| Reconciler::new(client.clone(), deps.store.clone(), config).spawn());
    let io_worker =
        Worker::new(&runtime, client.clone(), io_worker_options(settings, deps, &client))?;
    let worker = Worker::new(&runtime, client, options)?;
    tracing::info!(
        task_queue = %settings.task_queue,
        namespace = %settings.namespace,
        build_id = %settings.build_id,
        "worker built"
    );
    let dispatcher = match &deps.webhooks {
        Some(config) => Some(
            WebhookDispatcher::spawn(deps.store.clone(), config.clone())
                .map_err(Error::Dispatcher)?,
        ),
        None => None,
    };
    let metrics = match settings.metrics_address {
        Some(address) => Some(
            metrics::MetricsServer::start(address)
                .await
                .map_err(|source| Error::Metrics { address, source })?,
        ),
        None => None,
    };
    Ok(ConvoWorker {
        worker,
        io_worker,
        _runtime: runtime,
        dispatcher,
        reconciler,
        metrics,
        _store_gauges: convo_metrics::watch_store(deps.store.clone()),
    })
}

/// A worker running on its own OS thread and Tokio runtime.
///
/// Dropping it starts a shutdown without waiting; call [`WorkerThread::shutdown`] to wait.
pub struct WorkerThread {
    task_queue: String,
    metrics_addr: Option<SocketAddr>,
    shutdown: Box<dyn Fn() + Send + Sync>,
    done: Option<oneshot::Receiver<Result<(), Error>>>,
}

impl WorkerThread {
    /// The task queue polled.
    pub fn task_queue(&self) -> &str {
        &self.task_queue
    }

    /// Where the metrics endpoint listens, if [`Settings::metrics_address`] asked for one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Starts a graceful shutdown and waits until the worker has stopped.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        (self.shutdown)();
        match self.done.take() {
            Some(done) => done.await.unwrap_or(Err(Error::ThreadGone)),
            None => Ok(()),
        }
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        if self.done.is_some() {
            (self.shutdown)();
        }
    }
}

/// Builds the worker on a dedicated thread (with a 2-thread Tokio runtime for activities and
/// the SDK's background tasks) and starts polling. Returns once the worker is built, or with the
/// error that prevented it.
pub async fn spawn(
    settings: Settings,
    deps: Dependencies,
    customize: Option<Customize>,
) -> Result<WorkerThread, Error> {
    type Ready = Result<(Box<dyn Fn() + Send + Sync>, Option<SocketAddr>), Error>;
    let (ready_tx, ready_rx) = oneshot::channel::<Ready>();
    let (done_tx, done_rx) = oneshot::channel();
    let task_queue = settings.task_queue.clone();
    std::thread::Builder::new()
        .name(format!("convo-worker-{}", settings.task_queue))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("convo-worker-rt")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(Error::Thread(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                let worker = match build(&settings, &deps, customize).await {
                    Ok(worker) => worker,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let metrics_addr = worker.metrics_addr();
                let _ = ready_tx.send(Ok((Box::new(worker.shutdown_handle()), metrics_addr)));
                let result = worker.run().await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, "worker stopped with an error");
                }
                let _ = done_tx.send(result);
            });
        })
        .map_err(Error::Thread)?;
    let (shutdown, metrics_addr) = ready_rx.await.map_err(|_| Error::ThreadGone)??;
    Ok(WorkerThread { task_queue, metrics_addr, shutdown, done: Some(done_rx) })
}
