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
            Error::FailedPrecondition(_) => Status::failed_precondition(message),
            Error::ResourceExhausted(_) => Status::resource_exhausted(message),
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

/// An ExecuteMultiOperation error: the failing operation's status at its index, the other
/// operation aborted, as clients decode it (`MultiOperationExecutionFailure`).
pub(crate) fn multi_operation_failure(index: usize, cause: Status) -> Status {
    use temporalio_protos::temporal::api::errordetails::v1::{
        MultiOperationExecutionFailure, multi_operation_execution_failure::OperationStatus,
    };
    let cause_details = RpcStatus::decode(cause.details()).map(|s| s.details).unwrap_or_default();
    let statuses = (0..2)
        .map(|i| {
            if i == index {
                OperationStatus {
                    code: cause.code() as i32,
                    message: cause.message().to_owned(),
                    details: cause_details.clone(),
                }
            } else {
                OperationStatus {
                    code: Code::Aborted as i32,
                    message: "Operation was aborted.".into(),
                    details: vec![prost_wkt_types::Any {
                        type_url: "type.googleapis.com/temporal.api.errordetails.v1.MultiOperationExecutionAborted".into(),
                        value: Vec::new(),
                    }],
                }
            }
        })
        .collect();
    with_detail(
        cause.code(),
        format!("Update-with-Start could not be executed: {}", cause.message()),
        "temporal.api.errordetails.v1.MultiOperationExecutionFailure",
        &MultiOperationExecutionFailure { statuses },
    )
}
