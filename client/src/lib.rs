//! `convo-client`: the application's side of Temporal. [`Sessions`] is the one door to the
//! workflows for everything that is not a worker (the API's handlers, and the outbound
//! conversation's activities, which start and signal sessions); [`connect`] makes the client it
//! runs on. The API holds it as a [`Gateway`], the trait of what it asks of the workflows, so
//! its handlers can also run over a fake.
//!
//! It links `temporalio-client` and the workflows' contracts, never the worker SDK: the API
//! depends on this crate, the store and the contracts, and on no activity code.

mod connect;
mod gateway;
mod port;

use temporalio_common::protos::temporal::api::enums::v1::WorkflowExecutionStatus;

pub use connect::{ClientSettings, ConnectError, TlsSettings, connect, connect_through, unary};
pub use gateway::{GatewayError, Inbound, InboundAccepted, Sessions, contact_card};
pub use port::{Gateway, UpdateError};

/// The reason `conversation.ended` gives for a run that ended without closing its window:
/// `TERMINATED`, `FAILED`, `TIMED_OUT` or `CANCELED`; `None` for a run that runs, completed or
/// continued as new. One table for the reconciler and for the API's window read.
pub fn abnormal_end(status: WorkflowExecutionStatus) -> Option<&'static str> {
    match status {
        WorkflowExecutionStatus::Terminated => Some("TERMINATED"),
        WorkflowExecutionStatus::Failed => Some("FAILED"),
        WorkflowExecutionStatus::TimedOut => Some("TIMED_OUT"),
        WorkflowExecutionStatus::Canceled => Some("CANCELED"),
        _ => None,
    }
}
