//! The one mapping of [`ApiError`] onto a gRPC [`Status`].
//!
//! The status code is chosen by the stable error code; the code itself travels as the
//! `reason` of a `google.rpc.ErrorInfo` detail (domain [`ERROR_DOMAIN`]), with metadata
//! `field` naming the input field at fault when there is one. Validation errors also carry a
//! `google.rpc.BadRequest` with that field, which generic gRPC tooling displays, and
//! `idempotency_key_in_use` a `google.rpc.RetryInfo` (HTTP's `Retry-After`).
//!
//! | stable code | gRPC code |
//! |---|---|
//! | `validation_failed` | `INVALID_ARGUMENT` |
//! | `no_active_session`, `contact_opted_out`, `insufficient_balance`, `channel_mismatch`, `channel_not_configured`, `conversation_closed`, `provider_rejected` | `FAILED_PRECONDITION` |
//! | `idempotency_key_reused` | `FAILED_PRECONDITION` |
//! | `not_found` | `NOT_FOUND` |
//! | `unauthorized` | `UNAUTHENTICATED` |
//! | `idempotency_key_in_use`, `conflict` | `ABORTED` |
//! | `rate_limited`, `payload_too_large` | `RESOURCE_EXHAUSTED` |
//! | `unavailable` | `UNAVAILABLE` |
//! | `internal` | `INTERNAL` |
//!
//! `INVALID_ARGUMENT` means the request itself is wrong and must be changed;
//! `FAILED_PRECONDITION` means the request is well formed but the state of the world refuses
//! it (no open window, an opted-out contact, a key already spent on another request), so the
//! same request may succeed once that state changes; `ABORTED` means retrying (the whole
//! operation, later) is the fix.

use std::collections::HashMap;

use http::StatusCode;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::{ApiError, codes};

/// The `domain` of every `google.rpc.ErrorInfo` convo sends.
pub const ERROR_DOMAIN: &str = "convo";

/// The gRPC code for a stable error code, falling back on the HTTP status for codes this
/// table does not name.
pub fn grpc_code(code: &str, status: StatusCode) -> Code {
    match code {
        codes::VALIDATION_FAILED | codes::UNSUPPORTED_MEDIA_TYPE => Code::InvalidArgument,
        codes::NO_ACTIVE_SESSION
        | codes::CONTACT_OPTED_OUT
        | codes::INSUFFICIENT_BALANCE
        | codes::CHANNEL_MISMATCH
        | codes::CHANNEL_NOT_CONFIGURED
        | codes::CONVERSATION_CLOSED
        | codes::PROVIDER_REJECTED
        | codes::IDEMPOTENCY_KEY_REUSED => Code::FailedPrecondition,
        codes::NOT_FOUND => Code::NotFound,
        codes::UNAUTHORIZED => Code::Unauthenticated,
        codes::FORBIDDEN => Code::PermissionDenied,
        codes::IDEMPOTENCY_KEY_IN_USE | codes::CONFLICT => Code::Aborted,
        codes::RATE_LIMITED | codes::PAYLOAD_TOO_LARGE => Code::ResourceExhausted,
        codes::UNAVAILABLE => Code::Unavailable,
        codes::INTERNAL => Code::Internal,
        codes::METHOD_NOT_ALLOWED => Code::Unimplemented,
        _ => match status {
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => Code::InvalidArgument,
            StatusCode::UNAUTHORIZED => Code::Unauthenticated,
            StatusCode::FORBIDDEN => Code::PermissionDenied,
            StatusCode::NOT_FOUND => Code::NotFound,
            StatusCode::CONFLICT => Code::Aborted,
            StatusCode::PAYMENT_REQUIRED | StatusCode::PRECONDITION_FAILED => {
                Code::FailedPrecondition
            }
            StatusCode::TOO_MANY_REQUESTS | StatusCode::PAYLOAD_TOO_LARGE => {
                Code::ResourceExhausted
            }
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => Code::Unavailable,
            s if s.is_server_error() => Code::Internal,
            _ => Code::Unknown,
        },
    }
}

/// A status for an error given by its parts: how [`ApiError`]s and replayed error answers
/// (stored as the HTTP JSON body) become statuses.
pub(crate) fn status_of(
    code: &str,
    status: StatusCode,
    message: &str,
    field: Option<&str>,
) -> Status {
    let grpc = grpc_code(code, status);
    if matches!(grpc, Code::Internal | Code::Unavailable | Code::Unknown) {
        tracing::warn!(code, message, "gRPC call failed");
    }
    let metadata: HashMap<String, String> =
        field.map(|f| ("field".to_owned(), f.to_owned())).into_iter().collect();
    let mut details = ErrorDetails::with_error_info(code, ERROR_DOMAIN, metadata);
    if let Some(field) = field
        && grpc == Code::InvalidArgument
    {
        details.add_bad_request_violation(field, message);
    }
    if code == codes::IDEMPOTENCY_KEY_IN_USE {
        let after = crate::app::idempotency::IN_USE_RETRY_AFTER_SECS;
        details.set_retry_info(Some(std::time::Duration::from_secs(after)));
    }
    Status::with_error_details(grpc, message, details)
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        status_of(e.code, e.status, &e.message, e.field.as_deref())
    }
}

/// The status a stored error answer (`{"error": {"code", "message", "field"?}}` with its
/// HTTP status) replays as.
pub(crate) fn stored_error(status: u16, body: &str) -> Status {
    let http = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let error = &value["error"];
    let code = error["code"].as_str().unwrap_or(codes::INTERNAL);
    let message = error["message"].as_str().unwrap_or("the stored answer could not be read");
    status_of(code, http, message, error["field"].as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(status: &Status) -> (Code, String, Option<String>) {
        let details = status.get_error_details();
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(info.domain, ERROR_DOMAIN);
        (status.code(), info.reason.clone(), info.metadata.get("field").cloned())
    }

    #[test]
    fn stable_codes_map_onto_grpc_codes_with_error_info() {
        let s = Status::from(ApiError::validation("content.text", "must not be empty"));
        assert_eq!(
            reason(&s),
            (Code::InvalidArgument, "validation_failed".to_owned(), Some("content.text".into()))
        );
        assert_eq!(s.message(), "must not be empty");
        let bad = s.get_error_details();
        assert_eq!(bad.bad_request().map(|b| b.field_violations.len()), Some(1));

        let s = Status::from(ApiError::not_found("conversation cv_1 not found"));
        assert_eq!(reason(&s), (Code::NotFound, "not_found".to_owned(), None));
        assert_eq!(Status::from(ApiError::unauthorized("no key")).code(), Code::Unauthenticated);
        for (code, http, grpc) in [
            (codes::NO_ACTIVE_SESSION, StatusCode::UNPROCESSABLE_ENTITY, Code::FailedPrecondition),
            (codes::CONTACT_OPTED_OUT, StatusCode::UNPROCESSABLE_ENTITY, Code::FailedPrecondition),
            (codes::INSUFFICIENT_BALANCE, StatusCode::PAYMENT_REQUIRED, Code::FailedPrecondition),
            (codes::IDEMPOTENCY_KEY_IN_USE, StatusCode::CONFLICT, Code::Aborted),
            (
                codes::IDEMPOTENCY_KEY_REUSED,
                StatusCode::UNPROCESSABLE_ENTITY,
                Code::FailedPrecondition,
            ),
            (codes::RATE_LIMITED, StatusCode::TOO_MANY_REQUESTS, Code::ResourceExhausted),
            (codes::UNAVAILABLE, StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable),
            ("something_new", StatusCode::NOT_FOUND, Code::NotFound),
        ] {
            assert_eq!(Status::from(ApiError::new(http, code, "m")).code(), grpc, "{code}");
        }
    }

    #[test]
    fn stored_errors_replay_as_the_same_status() {
        let e = ApiError::validation("to", "bad number");
        let replayed = stored_error(e.status.as_u16(), &e.body().to_string());
        let live = Status::from(e);
        assert_eq!(reason(&replayed), reason(&live));
        assert_eq!(replayed.message(), live.message());
        assert_eq!(stored_error(500, "not json").code(), Code::Internal);
    }
}
