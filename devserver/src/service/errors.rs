//! Engine errors → the gRPC statuses (and error details) real Temporal returns.

use prost::Message;
use temporalio_protos::{
    google::rpc::Status as RpcStatus,
    temporal::api::errordetails::v1::{
        NamespaceNotFoundFailure, WorkflowExecutionAlreadyStartedFailure,
    },
};
use tonic::{Code, Status};

use crate::engine::Error;

fn with_detail<M: Message>(code: Code, message: String, type_name: &str, detail: &M) -> Status {
    let details = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: vec![prost_wkt_types::Any {
            type_url: format!("type.googleapis.com/{type_name}"),
            value: detail.encode_to_vec(),
        }],
    };
    Status::with_details(code, message, details.encode_to_vec().into())
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::NamespaceNotFound(namespace) => with_detail(
                Code::NotFound,
                message,
                "temporal.api.errordetails.v1.NamespaceNotFoundFailure",
                &NamespaceNotFoundFailure { namespace },
            ),
            Error::NotFound(_) => Status::not_found(message),
            Error::InvalidArgument(_) => Status::invalid_argument(message),
            Error::DeadlineExceeded(_) => Status::deadline_exceeded(message),
            Error::Unavailable(_) => Status::unavailable(message),
            Error::AlreadyExists(_) => Status::already_exists(message),
            Error::AlreadyStarted { start_request_id, run_id, first_run_id, .. } => with_detail(
                Code::AlreadyExists,
                message,
                "temporal.api.errordetails.v1.WorkflowExecutionAlreadyStartedFailure",
                &WorkflowExecutionAlreadyStartedFailure {
                    start_request_id,
                    run_id,
                    first_execution_run_id: first_run_id,
                },
            ),
        }
    }
}
