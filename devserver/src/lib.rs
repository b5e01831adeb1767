//! `convo-devserver`: an embedded, Temporal-compatible dev and test server.
//!
//! It serves the real `temporal.api.workflowservice.v1.WorkflowService` (and the Java test
//! server's `temporal.api.testservice.v1.TestService`) over gRPC, so the official SDKs can run
//! workers and clients against it with no Temporal installation. It owns a virtual clock that
//! follows real time by default and can skip ahead, so a 24 h timer fires in milliseconds.
//!
//! It is a dev and test backend held to Temporal's semantics, never a production replacement.
//!
//! # Layout
//! - [`clock`]: the virtual clock, the time-skipping lock counter and the timer queue.
//! - `engine`: mutable state of every execution, history building, task dispatch, retries and
//!   timeouts. All state sits behind one mutex that is never held across an `.await`.
//! - [`store`]: the persistence seam; the in-memory store is the default.
//! - `service`: gRPC handlers that translate requests to engine calls and errors to statuses.

pub mod clock;
mod engine;
pub mod fuzzing;
pub mod launch;
mod pb;
mod service;
pub mod store;
mod token;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::{net::TcpListener, task::JoinHandle};

pub use engine::{Engine, Stats};

/// The namespace that always exists.
pub const DEFAULT_NAMESPACE: &str = "default";

/// How the server is started.
#[derive(Debug, Clone)]
pub struct DevServerConfig {
    /// Interface to bind.
    pub ip: IpAddr,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Namespaces registered besides `default`.
    pub namespaces: Vec<String>,
    /// Start with time skipping locked (the clock follows real time until a client unlocks it).
    /// This is the default, as in the Java test server's standalone binary.
    pub time_skipping_locked: bool,
    /// How long a task poll is held open before it answers empty.
    pub long_poll_timeout: Duration,
    /// History length past which workflow tasks carry `suggest_continue_as_new`
    /// (Temporal's `limit.historyCount.suggestContinueAsNew`).
    pub suggest_continue_as_new_events: usize,
    /// History size in bytes past which the same suggestion is made
    /// (`limit.historySize.suggestContinueAsNew`).
    pub suggest_continue_as_new_bytes: i64,
    /// SQLite file to persist to (`--db-filename`); `None` keeps everything in memory.
    pub db_filename: Option<PathBuf>,
    /// How the SQLite store commits.
    pub commit_mode: store::CommitMode,
    /// Custom search attributes registered in every namespace (`--search-attribute`).
    pub search_attributes:
        Vec<(String, temporalio_protos::temporal::api::enums::v1::IndexedValueType)>,
}

impl Default for DevServerConfig {
    fn default() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 7233,
            namespaces: Vec::new(),
            time_skipping_locked: true,
            long_poll_timeout: Duration::from_secs(60),
            suggest_continue_as_new_events: 4 * 1024,
            suggest_continue_as_new_bytes: 4 * 1024 * 1024,
            db_filename: None,
            commit_mode: store::CommitMode::Group,
            search_attributes: Vec::new(),
        }
    }
}

impl DevServerConfig {
    /// A config on 127.0.0.1 with an OS-assigned port, as tests want.
    pub fn ephemeral() -> Self {
        Self { port: 0, ..Self::default() }
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The address could not be bound.
    #[error("cannot bind {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or loaded.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The database holds state this server cannot read.
    #[error("the database holds state this server cannot decode: {0}")]
    Corrupt(#[from] prost::DecodeError),
}

/// Entry point: `DevServer::start(config).await?` gives a running server.
pub struct DevServer;

impl DevServer {
    /// Binds the listener and starts serving in the background.
    pub async fn start(config: DevServerConfig) -> Result<DevServerHandle, StartError> {
        let addr = SocketAddr::new(config.ip, config.port);
        let listener =
            TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
        let (store, loaded): (Arc<dyn store::Store>, store::Loaded) = match &config.db_filename {
            Some(path) => {
                let (s, loaded) = store::SqliteStore::open(path, config.commit_mode)?;
                (Arc::new(s), loaded)
            }
            None => (Arc::new(store::MemoryStore::default()), store::Loaded::default()),
        };
        let recovered = loaded.runs.len();
        let engine = Engine::new(&config, store, loaded)?;
        if recovered > 0 {
            tracing::info!(runs = recovered, "devserver recovered its executions");
        }
        let pump = tokio::spawn(clock::run_pump(engine.clone(), engine.stop_signal()));
        let server = tokio::spawn(service::serve(engine.clone(), listener));
        tracing::info!(%local, "devserver listening");
        Ok(DevServerHandle { addr: local, engine, tasks: vec![pump, server] })
    }
}

/// A running server. Dropping it does not stop it; call [`DevServerHandle::shutdown`].
pub struct DevServerHandle {
    addr: SocketAddr,
    engine: Engine,
    tasks: Vec<JoinHandle<()>>,
}

impl DevServerHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ip:port`, the form SDK clients take.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// In-process control of the virtual clock.
    pub fn time(&self) -> TimeControl {
        TimeControl { engine: self.engine.clone() }
    }

    /// The engine, for in-process inspection.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Stops serving: open long polls end, then the listener closes.
    pub async fn shutdown(self) {
        self.engine.stop();
        for t in self.tasks {
            let _ = t.await;
        }
        let engine = self.engine.clone();
        let _ = tokio::task::spawn_blocking(move || engine.close_store()).await;
    }

    /// Resolves when the server has stopped (for `convo devserver` to run until Ctrl-C).
    pub async fn wait(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// In-process handle on the virtual clock, with the Java test server's lock semantics.
#[derive(Clone)]
pub struct TimeControl {
    engine: Engine,
}

impl TimeControl {
    /// The server's current (virtual) time.
    pub fn now(&self) -> SystemTime {
        self.engine.now()
    }

    /// Adds a client lock: time follows the wall clock.
    pub fn lock(&self) {
        self.engine.lock_time_skipping();
    }

    /// Removes a client lock. Unbalanced unlocks are an error, as in the Java server.
    pub fn unlock(&self) -> Result<(), clock::UnbalancedUnlock> {
        self.engine.unlock_time_skipping()
    }

    /// `UnlockTimeSkippingWithSleep`: unlocks, lets virtual time run (jumping over idle gaps,
    /// firing timers on the way) until `duration` has passed, then locks again.
    pub async fn skip(&self, duration: Duration) {
        self.engine.unlock_with_sleep(duration).await;
    }

    /// Waits until `duration` of virtual time has passed without touching the locks.
    pub async fn sleep(&self, duration: Duration) {
        self.engine.sleep(duration).await;
    }
}
