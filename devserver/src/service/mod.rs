//! gRPC surface: translate requests into engine calls, engine errors into the statuses real
//! Temporal returns, and answer every RPC the devserver does not implement with an
//! UNIMPLEMENTED status that names it.

mod errors;
mod implemented;
mod operator_service;
mod test_service;
mod workflow_service;

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::{StreamExt, wrappers::TcpListenerStream};
use tonic::codec::CompressionEncoding;

use crate::{
    engine::Engine,
    pb::{
        health::health_server::{Health, HealthServer},
        operatorservice::operator_service_server::OperatorServiceServer,
        testservice::test_service_server::TestServiceServer,
        workflowservice::workflow_service_server::WorkflowServiceServer,
    },
};

/// sdk-core decodes messages up to 128 MiB; tonic's 4 MiB default would cut long histories.
const MAX_MESSAGE_BYTES: usize = 128 * 1024 * 1024;

pub(crate) async fn serve(engine: Engine, listener: TcpListener) {
    let mut stop = engine.stop_signal();
    let broken = engine.broken();
    let workflow = WorkflowServiceServer::new(workflow_service::Svc::new(engine.clone()))
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let test = TestServiceServer::new(test_service::Svc::new(engine.clone()))
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let operator = OperatorServiceServer::new(operator_service::Svc::new(engine.clone()))
        .accept_compressed(CompressionEncoding::Gzip);
    let health = HealthServer::new(HealthSvc);
    // Every RPC is a small request answered by a small response: with Nagle's algorithm on,
    // a response written in two parts waits for the client's delayed ACK (about 40 ms).
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        if let Ok(stream) = &conn
            && let Err(e) = stream.set_nodelay(true)
        {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        conn
    });
    let result = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(implemented::only(workflow, implemented::WORKFLOW_SERVICE, broken.clone()))
        .add_service(implemented::only(test, implemented::TEST_SERVICE, broken.clone()))
        .add_service(implemented::only(operator, implemented::OPERATOR_SERVICE, broken.clone()))
        .add_service(implemented::only(health, implemented::HEALTH, broken))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "devserver gRPC server stopped with an error");
    }
}

/// `grpc.health.v1.Health`: the server is serving for as long as it runs.
struct HealthSvc;

#[tonic::async_trait]
impl Health for HealthSvc {
    async fn check(
        &self,
        _request: tonic::Request<temporalio_protos::grpc::health::v1::HealthCheckRequest>,
    ) -> Result<
        tonic::Response<temporalio_protos::grpc::health::v1::HealthCheckResponse>,
        tonic::Status,
    > {
        Ok(tonic::Response::new(temporalio_protos::grpc::health::v1::HealthCheckResponse {
            status:
                temporalio_protos::grpc::health::v1::health_check_response::ServingStatus::Serving
                    as i32,
        }))
    }
}
