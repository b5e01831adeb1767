//! gRPC metrics: a tower layer on the tonic server that counts every call by service, method
//! and status code, and records its latency, into the process's Prometheus recorder (rendered
//! by the HTTP API's `/metrics`).
//!
//! The status of a call is in the response headers when it failed before answering (tonic's
//! trailers-only responses), otherwise in the trailers after the body; a call whose body is
//! dropped before its trailers (the client went away) counts as `Canceled`. A call is recorded
//! when its response body is dropped, so the latency includes sending the answer. Paths that
//! name no method convo serves are labelled `unknown`, so the label sets stay bounded.

use std::{
    collections::HashMap,
    sync::OnceLock,
    task::{Context, Poll},
    time::Instant,
};

use convo_metrics::{GRPC_REQUEST_DURATION, GRPC_REQUESTS, install};
use futures::future::BoxFuture;
use http_body_util::BodyExt as _;
use metrics::{counter, histogram};
use prost::Message as _;
use tonic::{Code, body::Body};
use tower::{Layer, Service};

/// The layer: `tonic::transport::Server::builder().layer(MetricsLayer)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsLayer;

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        install();
        MetricsService { inner }
    }
}

/// The service [`MetricsLayer`] wraps around the routes.
#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
}

impl<S, ReqBody> Service<http::Request<ReqBody>> for MetricsService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let (service, method) = rpc_labels(req.uri().path());
        let started = Instant::now();
        let call = self.inner.call(req);
        Box::pin(async move {
            let response = call.await?;
            let mut call = Call { service, method, started, code: status_of(response.headers()) };
            let (parts, body) = response.into_parts();
            // The closure owns the whole `Call` (not just a copy of its code), so the call is
            // recorded when the body is dropped.
            let body = body.map_frame(move |frame| {
                let call = &mut call;
                if let Some(code) = frame.trailers_ref().and_then(status_of) {
                    call.code = Some(code);
                }
                frame
            });
            Ok(http::Response::from_parts(parts, Body::new(body)))
        })
    }
}

/// One call in flight; recorded when dropped (with the response body).
struct Call {
    service: &'static str,
    method: &'static str,
    started: Instant,
    code: Option<Code>,
}

impl Drop for Call {
    fn drop(&mut self) {
        let code = code_name(self.code.unwrap_or(Code::Cancelled));
        counter!(GRPC_REQUESTS, "service" => self.service, "method" => self.method, "code" => code)
            .increment(1);
        histogram!(GRPC_REQUEST_DURATION, "service" => self.service, "method" => self.method)
            .record(self.started.elapsed().as_secs_f64());
    }
}

fn status_of(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    value.parse::<i32>().ok().map(Code::from_i32)
}

/// Go's names for the codes, as Prometheus' gRPC middlewares label them (`OK`, `NotFound`).
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// `(service, method)` of a request path `/package.Service/Method`, if convo serves it; else
/// `("unknown", "unknown")`.
fn rpc_labels(path: &str) -> (&'static str, &'static str) {
    known_methods().get(path).copied().unwrap_or(("unknown", "unknown"))
}

/// Every method convo serves, by path: its own services (from the compiled descriptor set),
/// health and reflection.
fn known_methods() -> &'static HashMap<String, (&'static str, &'static str)> {
    static KNOWN: OnceLock<HashMap<String, (&'static str, &'static str)>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut methods: Vec<(String, String)> = [
            ("grpc.health.v1.Health", "Check"),
            ("grpc.health.v1.Health", "Watch"),
            ("grpc.reflection.v1.ServerReflection", "ServerReflectionInfo"),
            ("grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo"),
        ]
        .into_iter()
        .map(|(s, m)| (s.to_owned(), m.to_owned()))
        .collect();
        match prost_types::FileDescriptorSet::decode(convo_proto::FILE_DESCRIPTOR_SET) {
            Ok(set) => {
                for file in set.file {
                    for service in &file.service {
                        let name = format!("{}.{}", file.package(), service.name());
                        for method in &service.method {
                            methods.push((name.clone(), method.name().to_owned()));
                        }
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the gRPC descriptor set"),
        }
        methods
            .into_iter()
            .map(|(service, method)| {
                (format!("/{service}/{method}"), (leak(service), leak(method)))
            })
            .collect()
    })
}

/// The names live as long as the process (built once, a few dozen short strings).
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_labelled_by_service_and_method_when_served() {
        assert_eq!(
            rpc_labels("/convo.v1.WindowService/GetWindow"),
            ("convo.v1.WindowService", "GetWindow")
        );
        assert_eq!(rpc_labels("/grpc.health.v1.Health/Check"), ("grpc.health.v1.Health", "Check"));
        for unknown in ["/convo.v1.WindowService/Nope", "/x.Y/Z", "/", "", "/a"] {
            assert_eq!(rpc_labels(unknown), ("unknown", "unknown"), "{unknown}");
        }
    }

    #[test]
    fn codes_use_the_go_names() {
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::Cancelled), "Canceled");
        assert_eq!(code_name(Code::from_i32(16)), "Unauthenticated");
    }
}
