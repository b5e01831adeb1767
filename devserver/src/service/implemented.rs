//! Routes only the implemented methods of a generated service; everything else gets an
//! UNIMPLEMENTED status that names the method, so a client learns exactly what is missing
//! instead of tonic's generic "Not yet implemented".

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::{body::Body, server::NamedService};
use tower::Service;

use crate::engine::Broken;

pub(crate) const WORKFLOW_SERVICE: &[&str] = &[
    "GetSystemInfo",
    "DescribeNamespace",
    "StartWorkflowExecution",
    "SignalWorkflowExecution",
    "SignalWithStartWorkflowExecution",
    "PollWorkflowTaskQueue",
    "RespondWorkflowTaskCompleted",
    "RespondWorkflowTaskFailed",
    "PollActivityTaskQueue",
    "RespondActivityTaskCompleted",
    "RespondActivityTaskFailed",
    "RespondActivityTaskCanceled",
    "RecordActivityTaskHeartbeat",
    "GetWorkflowExecutionHistory",
    "DescribeWorkflowExecution",
    "TerminateWorkflowExecution",
    "RequestCancelWorkflowExecution",
    "ShutdownWorker",
    "QueryWorkflow",
    "RespondQueryTaskCompleted",
    "UpdateWorkflowExecution",
    "PollWorkflowExecutionUpdate",
    "ListWorkflowExecutions",
    "CountWorkflowExecutions",
    "GetClusterInfo",
    "ResetWorkflowExecution",
    "PauseActivity",
    "UnpauseActivity",
    "ResetActivity",
    "ExecuteMultiOperation",
    "ListNamespaces",
    "GetWorkflowExecutionHistoryReverse",
    "RespondActivityTaskCompletedById",
    "RespondActivityTaskFailedById",
    "RespondActivityTaskCanceledById",
    "RecordActivityTaskHeartbeatById",
    "RegisterNamespace",
    "ListOpenWorkflowExecutions",
    "ListClosedWorkflowExecutions",
    "ResetStickyTaskQueue",
];

pub(crate) const OPERATOR_SERVICE: &[&str] =
    &["AddSearchAttributes", "RemoveSearchAttributes", "ListSearchAttributes"];

pub(crate) const TEST_SERVICE: &[&str] = &[
    "LockTimeSkipping",
    "UnlockTimeSkipping",
    "Sleep",
    "SleepUntil",
    "UnlockTimeSkippingWithSleep",
    "GetCurrentTime",
];

pub(crate) const HEALTH: &[&str] = &["Check"];

#[derive(Clone)]
pub(crate) struct Only<S> {
    inner: S,
    methods: &'static [&'static str],
    broken: Broken,
}

/// `inner`'s `methods`, refused with UNAVAILABLE once `broken` is set (the store failed to read
/// back a committed history: the server must not go on without it).
pub(crate) fn only<S>(inner: S, methods: &'static [&'static str], broken: Broken) -> Only<S> {
    Only { inner, methods, broken }
}

impl<S: NamedService> NamedService for Only<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Only<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + NamedService,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let method = req.uri().path().rsplit('/').next().unwrap_or_default();
        if let Some(why) = self.broken.why() {
            let status = tonic::Status::unavailable(format!("the convo devserver stopped: {why}"));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        if self.methods.contains(&method) {
            return Box::pin(self.inner.call(req));
        }
        let status = tonic::Status::unimplemented(format!(
            "{}/{method} is not implemented by the convo devserver",
            S::NAME
        ));
        Box::pin(async move { Ok(status.into_http()) })
    }
}
