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

pub use convo_domain::ErrorCode;

/// An error as every transport shows it: a stable code, a message, and the input field at
/// fault when there is one. The HTTP status ([`ApiError::status`]) and the gRPC code
/// (`grpc::grpc_code`) are both chosen from the code, at the transport edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The stable code (one of [`ErrorCode::API`]).
    pub code: ErrorCode,
    /// What went wrong, for a person.
    pub message: String,
    /// The input field at fault, as a dotted path (`content.text`, `recipients[2]`).
    pub field: Option<String>,
    /// The request could not be read at all (a body that is not JSON, a header that is not
    /// ASCII): `validation_failed` answered 400 rather than 422.
    malformed: bool,
    /// How long the client should wait before retrying (`rate_limited`,
    /// `idempotency_key_in_use`): `Retry-After` over HTTP, a `google.rpc.RetryInfo` over gRPC.
    retry_after: Option<std::time::Duration>,
}

/// The HTTP status of each code: the one table. `malformed` marks a `validation_failed` for a
/// request that could not be read at all (400); a readable request with a bad field is 422.
pub fn http_status(code: ErrorCode, malformed: bool) -> StatusCode {
    match code {
        ErrorCode::ValidationFailed if malformed => StatusCode::BAD_REQUEST,
        ErrorCode::NoActiveSession
        | ErrorCode::ContactOptedOut
        | ErrorCode::ValidationFailed
        | ErrorCode::IdempotencyKeyReused
        | ErrorCode::ChannelMismatch
        | ErrorCode::ProviderRejected
        | ErrorCode::ChannelNotConfigured
        | ErrorCode::SessionClosing
        | ErrorCode::ReplyTimeout
        | ErrorCode::WindowExpired
        | ErrorCode::SendFailed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::InsufficientBalance => StatusCode::PAYMENT_REQUIRED,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::IdempotencyKeyInUse | ErrorCode::Conflict | ErrorCode::ConversationClosed => {
            StatusCode::CONFLICT
        }
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Internal | ErrorCode::Corrupt => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// An error with no field.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), field: None, malformed: false, retry_after: None }
    }

    /// The HTTP status ([`http_status`]).
    pub fn status(&self) -> StatusCode {
        http_status(self.code, self.malformed)
    }

    /// Tells the client how long to wait before it retries.
    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// How long the client should wait before it retries, if the error says.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// Names the input field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 422 `validation_failed` naming `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message).with_field(field)
    }

    /// 400 `validation_failed`: the request could not be read at all (a body that is not
    /// JSON, a header that is not ASCII).
    pub fn malformed(message: impl Into<String>) -> Self {
        Self { malformed: true, ..Self::new(ErrorCode::ValidationFailed, message) }
    }

    /// 404 `not_found`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, what)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// 503 `unavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// Whether a client retrying the same request later may succeed: a server error or a rate
    /// limit. (An Idempotency-Key keeps fewer answers still: see `app::idempotency`.)
    pub fn is_retryable(&self) -> bool {
        self.status().is_server_error() || self.code == ErrorCode::RateLimited
    }

    /// The error a stored answer's JSON body ([`ApiError::body`]) holds, as a replay gives it
    /// back; a body this build cannot read is `internal`.
    pub fn from_stored(body: &str) -> Self {
        let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let error = &value["error"];
        let code = error["code"].as_str().and_then(ErrorCode::parse).unwrap_or(ErrorCode::Internal);
        let message = error["message"].as_str().unwrap_or("the stored answer could not be read");
        let stored = Self::new(code, message);
        match error["field"].as_str() {
            Some(field) => stored.with_field(field),
            None => stored,
        }
    }

    /// The JSON body: `{"error": {"code", "message", "field"?}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(ErrorBody {
            error: ErrorDetail { code: self.code, message: &self.message, field: &self.field },
        })
        .unwrap_or_else(|_| serde_json::json!({"error": {"code": self.code.as_str()}}))
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
    code: ErrorCode,
    /// What went wrong, for a person (may change).
    message: &'a str,
    /// The input field at fault, as a dotted path (`content.text`, `recipients[2]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: &'a Option<String>,
}

fn code_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let codes: Vec<&str> = ErrorCode::API.iter().map(|c| c.as_str()).collect();
    schemars::json_schema!({"type": "string", "enum": codes})
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(code = %self.code, message = %self.message, "request failed");
        }
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        }
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up: a client that waits that long is let through.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.headers_mut().insert(header::RETRY_AFTER, secs.max(1).into());
        }
        response
    }
}

impl From<SendError> for ApiError {
    /// A session's or conversation's refusal. Codes that are no API answer keep their
    /// spelling out of the API (they become `provider_rejected`), so clients only ever see
    /// the documented set.
    fn from(e: SendError) -> Self {
        match e.code {
            ErrorCode::NoActiveSession
            | ErrorCode::ContactOptedOut
            | ErrorCode::InsufficientBalance
            | ErrorCode::ChannelMismatch
            | ErrorCode::ValidationFailed
            | ErrorCode::ConversationClosed
            | ErrorCode::NotFound
            | ErrorCode::ChannelNotConfigured => Self::new(e.code, e.message),
            // A window being torn down takes no free-form sends either.
            ErrorCode::SessionClosing => Self::new(
                ErrorCode::NoActiveSession,
                format!("the window is closing: {}", e.message),
            ),
            other => Self::new(ErrorCode::ProviderRejected, format!("{other}: {}", e.message)),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotFound { .. } => Self::not_found(e.to_string()),
            StoreError::Validation { field, message } => Self::validation(*field, message.clone()),
            StoreError::InsufficientBalance { .. } => {
                Self::new(ErrorCode::InsufficientBalance, e.to_string())
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
            GatewayError::Config { channel, message } => {
                Self::new(ErrorCode::ChannelNotConfigured, format!("{channel}: {message}"))
            }
            GatewayError::Temporal(source) => {
                tracing::warn!(error = %source, "temporal unavailable");
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
            let code = ErrorCode::parse(code).expect("a code");
            ApiError::from(SendError { code, message: "m".to_owned() })
        };
        assert_eq!(e("no_active_session").status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e("session_closing").code, ErrorCode::NoActiveSession);
        assert_eq!(e("insufficient_balance").status(), StatusCode::PAYMENT_REQUIRED);
        assert_eq!(e("send_failed").code, ErrorCode::ProviderRejected);
        assert_eq!(e("reply_timeout").code, ErrorCode::ProviderRejected);
    }
}
