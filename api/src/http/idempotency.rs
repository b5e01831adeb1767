//! `Idempotency-Key` on POST requests (IETF draft-ietf-httpapi-idempotency-key-header, with
//! Stripe's semantics).
//!
//! - The key is optional; without it a POST simply runs.
//! - The request's fingerprint is the SHA-256 of its method, path and query, and body. The same
//!   key with the same fingerprint replays the first answer (status and body, with
//!   `Idempotent-Replayed: true`); with another fingerprint it is 422
//!   `idempotency_key_reused`; while the first request still runs it is 409
//!   `idempotency_key_in_use`.
//! - Answers a retry may change are not kept, so the key can be retried: server errors
//!   (including timeouts), 429, 409s and requests rejected before they ran (400, 401, 413, 415
//!   and `validation_failed`). Every other answer, success or refusal, is kept for 24 h.
//! - Handlers see the key as an [`IdempotencyKey`] extension and derive the ids of what they
//!   create from it.

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use convo_activities::store::StoredResponse;

use super::HttpState;
use crate::{
    app::{App, WorkspaceId},
    error::{ApiError, codes},
};

/// The request's Idempotency-Key, for handlers that derive ids from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(pub String);

const HEADER: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";

fn fingerprint(method: &Method, path: &str, body: &[u8]) -> String {
    App::idempotency_fingerprint(&[method.as_str().as_bytes(), path.as_bytes(), body])
}

/// Whether an answer is final for its request, and so replayed to a retry
/// ([`App::idempotency_keeps`] decides, from the status and the error's code).
fn keep(status: StatusCode, body: &[u8]) -> bool {
    if status.is_success() {
        return App::idempotency_keeps(None);
    }
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
    App::idempotency_keeps(Some((status, code.as_deref())))
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

pub(super) async fn middleware(
    State(state): State<HttpState>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(value) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let Ok(key) = value.to_str().map(str::to_owned) else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::VALIDATION_FAILED,
            "Idempotency-Key must be printable ASCII",
        )
        .with_field("Idempotency-Key")
        .into_response();
    };
    let Some(ws) = req.extensions().get::<WorkspaceId>().cloned() else {
        return ApiError::internal("idempotency needs an authenticated workspace").into_response();
    };
    let (parts, body) = req.into_parts();
    let max = state.app.settings().max_body_bytes;
    let Ok(bytes) = to_bytes(body, max).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        )
        .into_response();
    };
    let path = parts.uri.path_and_query().map_or(parts.uri.path(), |p| p.as_str());
    let print = fingerprint(&parts.method, path, &bytes);
    match state.app.claim_idempotency(&ws, &key, &print).await {
        Ok(Some(stored)) => {
            state.metrics.idempotent_replay();
            return replay(stored);
        }
        Ok(None) => {}
        Err(e) => return e.into_response(),
    }

    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(IdempotencyKey(key.clone()));
    let response = next.run(req).await;

    let (parts, body) = response.into_parts();
    // Our own handlers' bodies are small JSON documents; a failure to read one is a bug.
    let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let outcome = if keep(parts.status, &body) {
        let stored = StoredResponse {
            status: parts.status.as_u16(),
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        state.app.complete_idempotency(&ws, &key, &stored).await
    } else {
        state.app.release_idempotency(&ws, &key).await
    };
    if let Err(e) = outcome {
        // The answer stands; the key will be claimable again once its lock runs out.
        tracing::warn!(error = %e, "could not record the idempotency outcome");
    }
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_final_answers_are_kept() {
        assert!(keep(StatusCode::ACCEPTED, b"{}"));
        let refusal = br#"{"error":{"code":"no_active_session","message":"x"}}"#;
        assert!(keep(StatusCode::UNPROCESSABLE_ENTITY, refusal));
        let invalid = br#"{"error":{"code":"validation_failed","message":"x"}}"#;
        assert!(!keep(StatusCode::UNPROCESSABLE_ENTITY, invalid));
        assert!(!keep(StatusCode::SERVICE_UNAVAILABLE, b"{}"));
        assert!(!keep(StatusCode::CONFLICT, b"{}"));
    }

    #[test]
    fn fingerprints_cover_method_path_and_body() {
        let a = fingerprint(&Method::POST, "/v1/messages", b"{}");
        assert_eq!(a, fingerprint(&Method::POST, "/v1/messages", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/v1/messages", b"{ }"));
        assert_ne!(a, fingerprint(&Method::POST, "/v1/conversations/compose", b"{}"));
    }
}
