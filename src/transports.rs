//! The API transports of a stack: HTTP (axum) and gRPC (tonic), both over one `convo_api::App`.

use std::sync::Arc;

use convo_activities::{Sessions, sandbox::SandboxHandle, store::Store};
use convo_api::{App, AppSettings};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

/// The bound listeners.
pub(crate) struct Transports {
    pub(crate) http: TcpListener,
    pub(crate) grpc: TcpListener,
}

/// Serves both transports until `stop` turns true; in-flight requests finish first.
pub(crate) fn spawn(
    listeners: Transports,
    sessions: Sessions,
    _store: Store,
    sandbox: Arc<SandboxHandle>,
    settings: AppSettings,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let app = App::new(sessions, settings).with_sandbox(sandbox);
    let until_stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let http = {
        let app = app.clone();
        let stop = until_stopped(stop.clone());
        tokio::spawn(async move {
            if let Err(e) = convo_api::serve(listeners.http, app, stop).await {
                tracing::error!(error = %e, "HTTP API stopped with an error");
            }
        })
    };
    let grpc = {
        let stop = until_stopped(stop);
        tokio::spawn(async move {
            if let Err(e) = convo_api::grpc::serve(listeners.grpc, app, stop).await {
                tracing::error!(error = %e, "gRPC API stopped with an error");
            }
        })
    };
    Ok(vec![http, grpc])
}
