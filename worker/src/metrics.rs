//! The worker's `/metrics` endpoint: everything the process records ([`convo_metrics`]), the
//! SDK's worker and client metrics included, with the store-backed gauges refreshed on each
//! scrape.

use std::net::SocketAddr;

use axum::{
    Router,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

pub use convo_metrics::{MetricsMeter, client_meter, telemetry_options};

/// The `/metrics` endpoint of a worker: everything the process records, the store-backed
/// gauges refreshed on each scrape.
pub fn router() -> Router {
    Router::new().route(
        "/metrics",
        get(|| async {
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                convo_metrics::render().await,
            )
                .into_response()
        }),
    )
}

/// A running metrics endpoint; stops when [`MetricsServer::shutdown`] is called or it is
/// dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks one) and serves [`router`] on the current Tokio runtime.
    pub async fn start(addr: SocketAddr) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let until = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, router()).with_graceful_shutdown(until).await {
                tracing::error!(error = %e, "the metrics endpoint stopped with an error");
            }
        });
        tracing::info!(%addr, "serving metrics on /metrics");
        Ok(MetricsServer { addr, stop, task: Some(task) })
    }

    /// The address bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting scrapes and waits for the one in flight.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
