//! [`Node`]: the one composition root. `convo serve`, `convo worker`, `convo api` and both
//! test stacks (`convo-tests`' `TestEnv`, `convo-api`'s test `Stack`) build their process
//! here, each choosing its parts: a worker or none, the APIs or none, the sandbox or none. The
//! Temporal they talk to (the embedded devserver, a test backend, a cluster) and the store
//! (SQLite or Postgres) are the caller's, handed in ready.
//!
//! The order is fixed here too: the worker first (its registration checks the namespace's
//! search attributes), then the client the application uses, then the transports; shutdown
//! runs it backwards, letting in-flight requests finish before the worker drains.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use convo_activities::{reconcile::ReconcilerConfig, webhooks::DispatcherConfig};
use convo_api::{App, AppSettings, Transports};
use convo_client::Sessions;
use convo_store::Store;
use convo_wire::sandbox::Outbox;
use convo_worker::{Customize, Dependencies, Settings, WorkerThread};
use temporalio_client::Client;
use tokio::net::TcpListener;

/// What a process runs.
pub struct NodeParts {
    /// Where Temporal is, the task queue, and who this process is.
    pub temporal: Settings,
    /// The store, connected.
    pub store: Store,
    /// Run workflows and activities here (`None`: another process does).
    pub worker: Option<WorkerParts>,
    /// Serve the HTTP and gRPC APIs here (`None`: another process does).
    pub api: Option<ApiParts>,
}

/// The worker's part.
pub struct WorkerParts {
    /// Deliver webhooks from this process (`None`: another process does).
    pub webhooks: Option<DispatcherConfig>,
    /// Run the reconciler here (`None`: not here).
    pub reconciler: Option<ReconcilerConfig>,
    /// Extra workflows and activities to register (test fixtures).
    pub customize: Option<Customize>,
}

impl std::fmt::Debug for WorkerParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerParts")
            .field("webhooks", &self.webhooks)
            .field("reconciler", &self.reconciler)
            .field("customize", &self.customize.is_some())
            .finish()
    }
}

/// The APIs' part.
#[derive(Debug)]
pub struct ApiParts {
    /// The application's settings.
    pub settings: AppSettings,
    /// Where the HTTP API listens (bound).
    pub http: TcpListener,
    /// Where the gRPC API listens (bound).
    pub grpc: TcpListener,
    /// The sandbox provider whose outbox and simulations the APIs serve (`None`: the
    /// production API, with no sandbox route).
    pub sandbox: Option<Arc<dyn Outbox>>,
}

/// A running process: its worker, its client and sessions, its APIs.
pub struct Node {
    client: Client,
    sessions: Sessions,
    worker: Option<WorkerThread>,
    transports: Option<Transports>,
    http_addr: Option<SocketAddr>,
    grpc_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("worker", &self.worker.is_some())
            .field("http_addr", &self.http_addr)
            .field("grpc_addr", &self.grpc_addr)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Starts the parts `parts` names.
    pub async fn start(parts: NodeParts) -> anyhow::Result<Node> {
        let NodeParts { temporal, store, worker, api } = parts;
        let worker = match worker {
            Some(w) => {
                let deps = Dependencies {
                    store: store.clone(),
                    webhooks: w.webhooks,
                    reconciler: w.reconciler,
                };
                let spawned = convo_worker::spawn(temporal.clone(), deps, w.customize);
                Some(spawned.await.context("starting the worker")?)
            }
            None => None,
        };
        let client =
            convo_client::connect(&temporal.client()).await.context("connecting to Temporal")?;
        let sessions = Sessions::new(client.clone(), store, temporal.task_queue.clone());
        let (transports, http_addr, grpc_addr) = match api {
            Some(api) => {
                let (http_addr, grpc_addr) = (api.http.local_addr()?, api.grpc.local_addr()?);
                let mut app = App::new(sessions.clone(), api.settings);
                if let Some(sandbox) = api.sandbox {
                    app = app.with_sandbox(sandbox);
                }
                (Some(Transports::spawn(app, api.http, api.grpc)), Some(http_addr), Some(grpc_addr))
            }
            None => (None, None, None),
        };
        Ok(Node { client, sessions, worker, transports, http_addr, grpc_addr })
    }

    /// The Temporal client the application uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The application's door to the workflows.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The HTTP API's address, when this node serves the APIs.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The gRPC API's address, when this node serves the APIs.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// The worker's metrics endpoint, when it runs one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.worker.as_ref().and_then(WorkerThread::metrics_addr)
    }

    /// Stops the APIs at once, requests in flight included (tests that end abruptly).
    pub fn abort_apis(&mut self) {
        self.transports.take();
    }

    /// Stops accepting requests and lets those in flight finish, then drains the worker.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(transports) = self.transports.take() {
            transports.shutdown().await.context("stopping the APIs")?;
        }
        if let Some(worker) = self.worker.take() {
            worker.shutdown().await.context("stopping the worker")?;
        }
        Ok(())
    }
}
