//! [`ApiError`]: the one error type of the application layer, and its single mapping onto HTTP.
//!
//! Every failure a client can see carries a stable machine-readable `code`; messages are for
//! people and may change. The codes are shared with the gRPC transport, which maps the same
//! [`ApiError`] onto a gRPC status, so a code means the same thing on both.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use convo_client::GatewayError;
use convo_store::StoreError;
use convo_workflows::contracts::SendError;
use schemars::JsonSchema;
use serde::Serialize;

/// The stable error codes. Clients match on these strings, so they never change meaning.
pub mod codes {
    /// Free-form send with no open window (never silently downgraded to a template).
    pub const NO_ACTIVE_SESSION: &str = "no_active_session";
    /// The contact opted out; nothing business-initiated may be sent.
    pub const CONTACT_OPTED_OUT: &str = "contact_opted_out";
    /// The workspace's free balance cannot cover the hold.
    pub const INSUFFICIENT_BALANCE: &str = "insufficient_balance";
    /// The request is malformed; `field` names the culprit when one can be named.
    pub const VALIDATION_FAILED: &str = "validation_failed";
    /// No such resource in the caller's workspace (another workspace's resources included).
    pub const NOT_FOUND: &str = "not_found";
    /// No valid API key, or a bad provider signature.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// The API key is valid, but its scope does not cover the operation.
    pub const FORBIDDEN: &str = "forbidden";
    /// The Idempotency-Key was used before for a different request.
    pub const IDEMPOTENCY_KEY_REUSED: &str = "idempotency_key_reused";
    /// The first request with this Idempotency-Key is still running.
    pub const IDEMPOTENCY_KEY_IN_USE: &str = "idempotency_key_in_use";
    /// Too many requests.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The contact's window runs on another channel.
    pub const CHANNEL_MISMATCH: &str = "channel_mismatch";
    /// The channel provider refused the message for good.
    pub const PROVIDER_REJECTED: &str = "provider_rejected";
    /// The request contradicts the resource's state.
    pub const CONFLICT: &str = "conflict";
    /// The conversation no longer takes messages or agent actions.
    pub const CONVERSATION_CLOSED: &str = "conversation_closed";
    /// A dependency (Temporal, the database) is unreachable; retrying later may succeed.
    pub const UNAVAILABLE: &str = "unavailable";
    /// The request body exceeds the size limit.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// The request body is not JSON (or not the form the endpoint takes).
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    /// The route exists but not with this method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// The workspace has no usable configuration for the channel.
    pub const CHANNEL_NOT_CONFIGURED: &str = "channel_not_configured";
    /// A bug or corrupt data on our side.
    pub const INTERNAL: &str = "internal";

    /// Every code above, in order: the `code` enum of the OpenAPI document's error schema.
    pub const ALL: &[&str] = &[
        NO_ACTIVE_SESSION,
        CONTACT_OPTED_OUT,
        INSUFFICIENT_BALANCE,
        VALIDATION_FAILED,
        NOT_FOUND,
        UNAUTHORIZED,
        FORBIDDEN,
        IDEMPOTENCY_KEY_REUSED,
        IDEMPOTENCY_KEY_IN_USE,
        RATE_LIMITED,
        CHANNEL_MISMATCH,
        PROVIDER_REJECTED,
        CONFLICT,
        CONVERSATION_CLOSED,
        UNAVAILABLE,
        PAYLOAD_TOO_LARGE,
        UNSUPPORTED_MEDIA_TYPE,
        METHOD_NOT_ALLOWED,
        CHANNEL_NOT_CONFIGURED,
        INTERNAL,
    ];
}

/// An error as every transport shows it: a status, a stable code, a message, and the input
/// field at fault when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status (the gRPC transport derives its status from it and the code).
    pub status: StatusCode,
    /// One of [`codes`].
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// The input field at fault, as a dotted path (`content.text`, `recipients[2]`).
    pub field: Option<String>,
}

impl ApiError {
    /// An error with no field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None }
    }

    /// Names the input field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 422 `validation_failed` naming `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, codes::VALIDATION_FAILED, message)
            .with_field(field)
    }

    /// 400 `validation_failed`: the body could not be read as JSON at all.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::VALIDATION_FAILED, message)
    }

    /// 404 `not_found`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, what)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, codes::FORBIDDEN, message)
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, codes::CONFLICT, message)
    }

    /// 503 `unavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE, message)
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, message)
    }

    /// Whether a client retrying the same request later may succeed: how idempotency decides
    /// not to keep the answer.
    pub fn is_retryable(&self) -> bool {
        self.status.is_server_error() || self.status == StatusCode::TOO_MANY_REQUESTS
    }

    /// The JSON body: `{"error": {"code", "message", "field"?}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(ErrorBody {
            error: ErrorDetail { code: self.code, message: &self.message, field: &self.field },
        })
        .unwrap_or_else(|_| serde_json::json!({"error": {"code": self.code}}))
    }
}

/// The body of every error response (its schema is the OpenAPI document's `Error`).
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Error")]
pub(crate) struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

/// What went wrong.
#[derive(Serialize, JsonSchema)]
struct ErrorDetail<'a> {
    /// A stable, machine-readable code; clients match on it.
    #[schemars(schema_with = "code_schema")]
    code: &'a str,
    /// What went wrong, for a person (may change).
    message: &'a str,
    /// The input field at fault, as a dotted path (`content.text`, `recipients[2]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: &'a Option<String>,
}

fn code_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": codes::ALL})
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "request failed");
        }
        let mut response = (self.status, Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        }
        if self.code == codes::IDEMPOTENCY_KEY_IN_USE {
            // The retry already waited for the request in flight; it may ask again shortly.
            let after = crate::app::idempotency::IN_USE_RETRY_AFTER_SECS;
            response.headers_mut().insert(header::RETRY_AFTER, after.into());
        }
        response
    }
}

impl From<SendError> for ApiError {
    /// A session's or conversation's refusal. Unknown codes keep their code's spelling out of
    /// the API (they become `provider_rejected` or `conflict`), so clients only ever see the
    /// documented set.
    fn from(e: SendError) -> Self {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        match e.code.as_str() {
            "no_active_session" => Self::new(unprocessable, codes::NO_ACTIVE_SESSION, e.message),
            // A window being torn down takes no free-form sends either.
            "session_closing" => Self::new(
                unprocessable,
                codes::NO_ACTIVE_SESSION,
                format!("the window is closing: {}", e.message),
            ),
            "contact_opted_out" => Self::new(unprocessable, codes::CONTACT_OPTED_OUT, e.message),
            "insufficient_balance" => {
                Self::new(StatusCode::PAYMENT_REQUIRED, codes::INSUFFICIENT_BALANCE, e.message)
            }
            "channel_mismatch" => Self::new(unprocessable, codes::CHANNEL_MISMATCH, e.message),
            "validation_failed" => Self::new(unprocessable, codes::VALIDATION_FAILED, e.message),
            "conversation_closed" => {
                Self::new(StatusCode::CONFLICT, codes::CONVERSATION_CLOSED, e.message)
            }
            "not_found" => Self::not_found(e.message),
            "channel_not_configured" => {
                Self::new(unprocessable, codes::CHANNEL_NOT_CONFIGURED, e.message)
            }
            _ => Self::new(
                unprocessable,
                codes::PROVIDER_REJECTED,
                format!("{}: {}", e.code, e.message),
            ),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotFound { .. } => Self::not_found(e.to_string()),
            StoreError::Validation { field, message } => Self::validation(*field, message.clone()),
            StoreError::InsufficientBalance { .. } => {
                Self::new(StatusCode::PAYMENT_REQUIRED, codes::INSUFFICIENT_BALANCE, e.to_string())
            }
            StoreError::Conflict { message } => Self::conflict(message.clone()),
            StoreError::Db(_) | StoreError::Migrate(_) => {
                tracing::warn!(error = ?e, "store unavailable");
                Self::unavailable("the database is unavailable")
            }
            _ => {
                tracing::error!(error = ?e, "store failure");
                Self::internal("stored data could not be read")
            }
        }
    }
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::Store(e) => e.into(),
            GatewayError::Config { channel, message } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                codes::CHANNEL_NOT_CONFIGURED,
                format!("{channel}: {message}"),
            ),
            GatewayError::Temporal(message) => {
                tracing::warn!(%message, "temporal unavailable");
                Self::unavailable("the workflow service is unavailable")
            }
            GatewayError::ConversationExists(id) => {
                Self::conflict(format!("conversation {id} already exists"))
            }
            other => Self::internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_names_the_field_only_when_known() {
        let e = ApiError::validation("content.text", "must not be empty");
        assert_eq!(
            e.body(),
            serde_json::json!({"error": {"code": "validation_failed", "message": "must not be empty", "field": "content.text"}})
        );
        let e = ApiError::not_found("conversation cv_1 not found");
        assert!(e.body()["error"].get("field").is_none());
    }

    #[test]
    fn send_errors_map_onto_stable_codes() {
        let e = |code: &str| {
            ApiError::from(SendError { code: code.to_owned(), message: "m".to_owned() })
        };
        assert_eq!(e("no_active_session").status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e("session_closing").code, codes::NO_ACTIVE_SESSION);
        assert_eq!(e("insufficient_balance").status, StatusCode::PAYMENT_REQUIRED);
        assert_eq!(e("whatever_else").code, codes::PROVIDER_REJECTED);
    }
}
