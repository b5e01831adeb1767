//! Both transports of one [`App`], served together until stopped: what `convo serve`,
//! `convo api` and the test stacks run.

use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::App;

/// A transport stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The HTTP server failed.
    #[error("the HTTP API stopped with an error")]
    Http(#[source] std::io::Error),
    /// The gRPC server failed.
    #[error("the gRPC API stopped with an error")]
    Grpc(#[source] tonic::transport::Error),
    /// A server's task panicked.
    #[error("the {0} API's task panicked")]
    Panicked(&'static str),
}

/// The HTTP and gRPC APIs of one [`App`], each on its own listener. Dropped without
/// [`Transports::shutdown`], both stop at once, in-flight requests included.
#[derive(Debug)]
pub struct Transports {
    stop: watch::Sender<bool>,
    http: Option<JoinHandle<std::io::Result<()>>>,
    grpc: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl Transports {
    /// Serves `app` over HTTP on `http` ([`crate::http::serve`]) and over gRPC on `grpc`
    /// ([`crate::grpc::serve`]), on the current Tokio runtime.
    pub fn spawn(app: App, http: TcpListener, grpc: TcpListener) -> Self {
        let (stop, _) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let http = tokio::spawn(crate::http::serve(http, app.clone(), stopped(stop.subscribe())));
        let grpc = tokio::spawn(crate::grpc::serve(grpc, app, stopped(stop.subscribe())));
        Self { stop, http: Some(http), grpc: Some(grpc) }
    }

    /// Stops accepting requests and waits for those in flight; the first error either
    /// transport stopped with.
    pub async fn shutdown(mut self) -> Result<(), TransportError> {
        let _ = self.stop.send(true);
        let http = match self.http.take() {
            Some(task) => task.await.map_err(|_| TransportError::Panicked("HTTP"))?,
            None => Ok(()),
        };
        let grpc = match self.grpc.take() {
            Some(task) => task.await.map_err(|_| TransportError::Panicked("gRPC"))?,
            None => Ok(()),
        };
        http.map_err(TransportError::Http)?;
        grpc.map_err(TransportError::Grpc)
    }
}

impl Drop for Transports {
    fn drop(&mut self) {
        for task in
            [self.http.take().map(|t| t.abort_handle()), self.grpc.take().map(|t| t.abort_handle())]
                .into_iter()
                .flatten()
        {
            task.abort();
        }
    }
}
