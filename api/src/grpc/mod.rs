//! The gRPC transport: `convo.v1`'s ConversationService, MessageService, WindowService,
//! InboundService, WorkspaceService and TemplateService over the same application functions as
//! [`crate::http`], plus server reflection (`grpc.reflection.v1` and `v1alpha`) and
//! `grpc.health.v1.Health`.
//!
//! - **Auth**: metadata `authorization: Bearer <key>` or `x-api-key: <key>`
//!   ([`App::authenticate_caller`]); a missing, unknown or revoked key is `UNAUTHENTICATED`,
//!   and a key whose scope does not cover the method is `PERMISSION_DENIED`
//!   ([`crate::Caller::authorize`]). Another workspace's resources are `NOT_FOUND`.
//! - **Idempotency**: metadata `idempotency-key` on every RPC that sends or starts something
//!   (Compose, Proactive, SendConversationMessage, TakeOver, Resolve, SendMessage,
//!   CloseWindow, Receive) or creates something (TopUp, CreateTemplate), with the HTTP
//!   semantics: the same key and request replay the first answer (response metadata
//!   `idempotent-replayed: true`); another request under the key is `idempotency_key_reused`;
//!   a key still in flight is `idempotency_key_in_use`. Keys share the workspace's key space
//!   with HTTP, but a request's fingerprint includes the transport and method, so a key first
//!   used over HTTP is "reused" over gRPC.
//! - **Errors**: one mapping from [`crate::ApiError`] (see [`status`] for the table), with a
//!   `google.rpc.ErrorInfo` (`reason` = the stable code, `domain` = `convo`, metadata
//!   `field`).
//! - Requests larger than [`crate::AppSettings::max_body_bytes`] are refused by tonic with
//!   `RESOURCE_EXHAUSTED`.
//! - **Metrics**: every call is counted by service, method and code, with its latency
//!   ([`metrics`]), on the HTTP API's `/metrics`.
//!
//! ```no_run
//! # async fn run(app: convo_api::App) -> Result<(), tonic::transport::Error> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await.expect("bind");
//! convo_api::grpc::serve(listener, app, std::future::pending()).await
//! # }
//! ```

mod convert;
pub mod metrics;
mod services;
pub mod status;
mod workspace;

use std::future::Future;

use convo_proto::v1::{
    conversation_service_server::ConversationServiceServer,
    inbound_service_server::InboundServiceServer, message_service_server::MessageServiceServer,
    template_service_server::TemplateServiceServer, window_service_server::WindowServiceServer,
    workspace_service_server::WorkspaceServiceServer,
};
use futures::FutureExt as _;
use tokio_stream::StreamExt as _;
use tonic::{server::NamedService, service::Routes};
use tonic_health::{ServingStatus, server::HealthReporter};

pub use status::{ERROR_DOMAIN, grpc_code};

use crate::app::App;

/// The names of the services convo serves (for health checks and reflection).
pub const SERVICES: [&str; 6] = [
    <ConversationServiceServer<services::Api> as NamedService>::NAME,
    <MessageServiceServer<services::Api> as NamedService>::NAME,
    <WindowServiceServer<services::Api> as NamedService>::NAME,
    <InboundServiceServer<services::Api> as NamedService>::NAME,
    <WorkspaceServiceServer<services::Api> as NamedService>::NAME,
    <TemplateServiceServer<services::Api> as NamedService>::NAME,
];

/// Every service: the six convo services, reflection and health. Embed it in a
/// `tonic::transport::Server` with `add_routes` (and `.layer(metrics::MetricsLayer)` for the
/// call metrics), or serve it with [`serve`].
pub fn routes(app: App) -> Routes {
    build(app).0
}

/// The routes and the reporter of their health statuses.
fn build(app: App) -> (Routes, HealthReporter) {
    let max = app.settings().max_body_bytes;
    let api = services::Api::new(app);
    let (reporter, health) = tonic_health::server::health_reporter();
    for service in SERVICES {
        // A fresh reporter's lock is free, so this completes at once.
        let set = reporter.set_service_status(service, ServingStatus::Serving);
        if set.now_or_never().is_none() {
            tracing::warn!(service, "could not mark the service as serving");
        }
    }
    let mut routes = Routes::new(health)
        .add_service(ConversationServiceServer::new(api.clone()).max_decoding_message_size(max))
        .add_service(MessageServiceServer::new(api.clone()).max_decoding_message_size(max))
        .add_service(WindowServiceServer::new(api.clone()).max_decoding_message_size(max))
        .add_service(InboundServiceServer::new(api.clone()).max_decoding_message_size(max))
        .add_service(WorkspaceServiceServer::new(api.clone()).max_decoding_message_size(max))
        .add_service(TemplateServiceServer::new(api).max_decoding_message_size(max));
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(convo_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    match (reflection().build_v1(), reflection().build_v1alpha()) {
        (Ok(v1), Ok(v1alpha)) => routes = routes.add_service(v1).add_service(v1alpha),
        // The descriptor sets are compiled in; a failure here is a build defect, not a reason
        // to refuse to serve the API.
        (Err(e), _) | (_, Err(e)) => tracing::error!(error = %e, "gRPC reflection unavailable"),
    }
    (routes, reporter)
}

/// Serves [`routes`] on `listener` until `shutdown` completes. Health turns `NOT_SERVING`
/// when shutdown begins; RPCs in flight finish before this returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (routes, reporter) = build(app);
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|stream| {
        let stream = stream?;
        // Small request/response pairs: don't let Nagle wait for delayed ACKs.
        stream.set_nodelay(true)?;
        Ok::<_, std::io::Error>(stream)
    });
    let shutdown = async move {
        shutdown.await;
        for service in SERVICES.into_iter().chain([""]) {
            reporter.set_service_status(service, ServingStatus::NotServing).await;
        }
    };
    tonic::transport::Server::builder()
        .layer(metrics::MetricsLayer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
