//! The one mapping of [`ApiError`] onto a gRPC [`Status`].
//!
//! The status code is chosen by the stable error code; the code itself travels as the
//! `reason` of a `google.rpc.ErrorInfo` detail (domain [`ERROR_DOMAIN`]), with metadata
//! `field` naming the input field at fault when there is one. Validation errors also carry a
//! `google.rpc.BadRequest` with that field, which generic gRPC tooling displays, and
//! an error that says when to retry (`idempotency_key_in_use`, `rate_limited`) a
//! `google.rpc.RetryInfo` (HTTP's `Retry-After`).
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

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::{ApiError, ErrorCode};

/// The `domain` of every `google.rpc.ErrorInfo` convo sends.
pub const ERROR_DOMAIN: &str = "convo";

/// The gRPC code of each stable error code: the one table (see the module's).
pub fn grpc_code(code: ErrorCode) -> Code {
    match code {
        ErrorCode::ValidationFailed | ErrorCode::UnsupportedMediaType => Code::InvalidArgument,
        ErrorCode::NoActiveSession
        | ErrorCode::ContactOptedOut
        | ErrorCode::InsufficientBalance
        | ErrorCode::ChannelMismatch
        | ErrorCode::ChannelNotConfigured
        | ErrorCode::ConversationClosed
        | ErrorCode::ProviderRejected
        | ErrorCode::IdempotencyKeyReused
        | ErrorCode::SessionClosing
        | ErrorCode::ReplyTimeout
        | ErrorCode::WindowExpired
        | ErrorCode::SendFailed => Code::FailedPrecondition,
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::Unauthorized => Code::Unauthenticated,
        ErrorCode::Forbidden => Code::PermissionDenied,
        ErrorCode::IdempotencyKeyInUse | ErrorCode::Conflict => Code::Aborted,
        ErrorCode::RateLimited | ErrorCode::PayloadTooLarge => Code::ResourceExhausted,
        ErrorCode::Unavailable => Code::Unavailable,
        ErrorCode::Internal | ErrorCode::Corrupt => Code::Internal,
        ErrorCode::MethodNotAllowed => Code::Unimplemented,
    }
}

/// A status for an error given by its parts: how [`ApiError`]s and replayed error answers
/// (stored as the HTTP JSON body) become statuses.
pub(crate) fn status_of(
    code: ErrorCode,
    message: &str,
    field: Option<&str>,
    retry_after: Option<std::time::Duration>,
) -> Status {
    let grpc = grpc_code(code);
    if matches!(grpc, Code::Internal | Code::Unavailable | Code::Unknown) {
        tracing::warn!(%code, message, "gRPC call failed");
    }
    let metadata: HashMap<String, String> =
        field.map(|f| ("field".to_owned(), f.to_owned())).into_iter().collect();
    let mut details = ErrorDetails::with_error_info(code.as_str(), ERROR_DOMAIN, metadata);
    if let Some(field) = field
        && grpc == Code::InvalidArgument
    {
        details.add_bad_request_violation(field, message);
    }
    if let Some(wait) = retry_after {
        details.set_retry_info(Some(wait));
    }
    Status::with_error_details(grpc, message, details)
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        status_of(e.code, &e.message, e.field.as_deref(), e.retry_after())
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

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
            (
                ErrorCode::NoActiveSession,
                StatusCode::UNPROCESSABLE_ENTITY,
                Code::FailedPrecondition,
            ),
            (
                ErrorCode::ContactOptedOut,
                StatusCode::UNPROCESSABLE_ENTITY,
                Code::FailedPrecondition,
            ),
            (
                ErrorCode::InsufficientBalance,
                StatusCode::PAYMENT_REQUIRED,
                Code::FailedPrecondition,
            ),
            (ErrorCode::IdempotencyKeyInUse, StatusCode::CONFLICT, Code::Aborted),
            (
                ErrorCode::IdempotencyKeyReused,
                StatusCode::UNPROCESSABLE_ENTITY,
                Code::FailedPrecondition,
            ),
            (ErrorCode::RateLimited, StatusCode::TOO_MANY_REQUESTS, Code::ResourceExhausted),
            (ErrorCode::Unavailable, StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable),
        ] {
            let e = ApiError::new(code, "m");
            assert_eq!(e.status(), http, "{code}");
            assert_eq!(Status::from(e).code(), grpc, "{code}");
        }
        // Every code has both mappings, and a stored code this build does not know replays
        // as internal.
        for &code in ErrorCode::ALL {
            let _ = (grpc_code(code), crate::error::http_status(code, false));
        }
        let unknown = r#"{"error":{"code":"something_new","message":"m"}}"#;
        assert_eq!(Status::from(ApiError::from_stored(unknown)).code(), Code::Internal);
    }

    #[test]
    fn stored_errors_replay_as_the_same_status() {
        let e = ApiError::validation("to", "bad number");
        let replayed = Status::from(ApiError::from_stored(&e.body().to_string()));
        let live = Status::from(e);
        assert_eq!(reason(&replayed), reason(&live));
        assert_eq!(replayed.message(), live.message());
        assert_eq!(Status::from(ApiError::from_stored("not json")).code(), Code::Internal);
    }

    #[test]
    fn a_rate_limited_call_says_when_to_retry() {
        let wait = std::time::Duration::from_millis(1_500);
        let e = ApiError::new(ErrorCode::RateLimited, "over the rate").with_retry_after(wait);
        let status = Status::from(e);
        assert_eq!(reason(&status).0, Code::ResourceExhausted);
        let retry = status.get_error_details().retry_info().and_then(|r| r.retry_delay);
        assert_eq!(retry, Some(wait));
    }
}
