//! `Idempotency-Key` on POST requests (IETF draft-ietf-httpapi-idempotency-key-header, with
//! Stripe's semantics).
//!
//! - The key is optional; without it a POST simply runs.
//! - The request's fingerprint is the SHA-256 of its method, path and query, and body. The same
//!   key with the same fingerprint replays the first answer (status and body, with
//!   `Idempotent-Replayed: true`); with another fingerprint it is 422
//!   `idempotency_key_reused`.
//! - The handler runs in a task of its own that owns the request
//!   ([`App::run_idempotent`]); the connection only waits for it. A client that hangs up (a
//!   timeout, a dropped connection) cancels nothing: the request runs to completion and
//!   stores its answer, which the client's retry then gets.
//! - A retry that arrives while the first request still runs waits for it (up to
//!   [`IdempotencyPolicy::wait`], 30 s by default) and answers with its result, replayed.
//!   Only past that wait is it 409 `idempotency_key_in_use`, with `Retry-After: 1`.
//! - The first request holds the key as a lease of a few seconds, which it renews while it
//!   runs. If its process dies (a crash, `kill -9`), the lease runs out and a waiting retry
//!   takes the key over and runs the request again. Nothing is done twice: handlers derive
//!   the ids of what they start or send from the key ([`App::derived_id`]), so the rerun finds
//!   the conversation already started and the send already made (the session answers a
//!   repeated message id with its first answer); see [`crate::app::idempotency`].
//! - Answers a retry may change are not kept, so the key can be retried: server errors
//!   (including timeouts), 429, 409s and requests rejected before they ran (400, 401, 413, 415
//!   and `validation_failed`). Every other answer, success or refusal, is kept for 24 h.
//! - Handlers see the key as an [`IdempotencyKey`] extension and derive the ids of what they
//!   create from it.
//!
//! [`IdempotencyPolicy::wait`]: convo_store::IdempotencyPolicy::wait

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use convo_store::StoredResponse;

use super::HttpState;
use crate::{
    app::{App, WorkspaceId, idempotency::Idempotent},
    error::{ApiError, ErrorCode},
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
        .and_then(|v| v["error"]["code"].as_str().and_then(ErrorCode::parse));
    App::idempotency_keeps(Some((status, code)))
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
        return ApiError::malformed("Idempotency-Key must be printable ASCII")
            .with_field("Idempotency-Key")
            .into_response();
    };
    let Some(ws) = req.extensions().get::<WorkspaceId>().cloned() else {
        return ApiError::internal("idempotency needs an authenticated workspace").into_response();
    };
    let (parts, body) = req.into_parts();
    let max = state.app.settings().max_body_bytes;
    let Ok(bytes) = to_bytes(body, max).await else {
        return ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
            .into_response();
    };
    let path = parts.uri.path_and_query().map_or(parts.uri.path(), |p| p.as_str());
    let print = fingerprint(&parts.method, path, &bytes);

    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(IdempotencyKey(key.clone()));
    // The handler and the reading of its answer, owned by the task `run_idempotent` spawns, so
    // the client hanging up does not cancel them.
    let work = async move {
        let (parts, body) = next.run(req).await.into_parts();
        // Our own handlers' bodies are small JSON documents; a failure to read one is a bug.
        let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
        let stored = keep(parts.status, &body).then(|| StoredResponse {
            status: parts.status.as_u16(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        ((parts, body), stored)
    };
    match state.app.run_idempotent(&ws, &key, &print, work).await {
        Ok(Idempotent::Ran((parts, body))) => Response::from_parts(parts, Body::from(body)),
        Ok(Idempotent::Replayed(stored)) => {
            state.metrics.idempotent_replay();
            replay(stored)
        }
        Err(e) => e.into_response(),
    }
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
