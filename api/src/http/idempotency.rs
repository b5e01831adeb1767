//! `Idempotency-Key` on POST requests (IETF draft-ietf-httpapi-idempotency-key-header, with
//! Stripe's semantics), as the HTTP transport shows the application's protocol
//! ([`crate::app::idempotency`]).
//!
//! - The key is optional; without it a POST simply runs.
//! - The request's fingerprint is the application operation, the resource it acts on and its
//!   typed input ([`App::request_fingerprint`]), not the bytes of the body: the same key with
//!   the same request replays the first answer, over HTTP or gRPC alike (with
//!   `Idempotent-Replayed: true`, and the operation's own success status); with another
//!   request it is 422 `idempotency_key_reused`. A body that cannot be read is refused
//!   before the key is looked at.
//! - The operation runs in a task of its own that owns the request
//!   ([`App::idempotent_detached`]); the connection only waits for it. A client that hangs up
//!   (a timeout, a dropped connection) cancels nothing: the request runs to completion and
//!   stores its answer, which the client's retry then gets.
//! - A retry that arrives while the first request still runs waits for it (up to
//!   [`IdempotencyPolicy::wait`], 30 s by default) and answers with its result, replayed.
//!   Only past that wait is it 409 `idempotency_key_in_use`, with `Retry-After: 1`.
//! - The first request holds the key as a lease of a few seconds, which it renews while it
//!   runs. If its process dies (a crash, `kill -9`), the lease runs out and a waiting retry
//!   takes the key over and runs the request again. Nothing is done twice: operations derive
//!   the ids of what they start or send from the key ([`App::derived_id`]), so the rerun finds
//!   the conversation already started and the send already made.
//! - Answers a retry may change are not kept, so the key can be retried: server errors
//!   (including timeouts), 429, 409s and requests rejected before they ran (400, 401, 413, 415
//!   and `validation_failed`). Every other answer, success or refusal, is kept for 24 h.
//!
//! [`IdempotencyPolicy::wait`]: convo_store::IdempotencyPolicy::wait

use std::future::Future;

use axum::{
    extract::FromRequestParts,
    http::{HeaderValue, StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};

use super::{HttpState, handlers::json};
use crate::{
    app::{App, WorkspaceId},
    error::ApiError,
};

/// The request's `Idempotency-Key` header, if it has one. A malformed key is refused (400,
/// naming the header) before the body is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdempotencyKey(pub Option<String>);

const HEADER: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(HEADER) else { return Ok(Self(None)) };
        Ok(Self(Some(crate::app::idempotency::idempotency_key(value.as_bytes())?)))
    }
}

impl HttpState {
    /// Runs one application operation under the request's Idempotency-Key and renders its
    /// answer: `status` and the output as JSON, or the error; a replay is marked
    /// `Idempotent-Replayed: true` and counted. `operation`, `target` and `input` make the
    /// request's fingerprint; `run` gets the app, the workspace, the input and the key.
    #[allow(clippy::too_many_arguments)] // each is one part of the request, named at the call
    pub(super) async fn idempotent<I, T, F, Fut>(
        &self,
        ws: &WorkspaceId,
        key: IdempotencyKey,
        operation: &str,
        target: &str,
        input: I,
        status: StatusCode,
        run: F,
    ) -> Response
    where
        I: Serialize,
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(App, WorkspaceId, I, Option<String>) -> Fut,
        Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
    {
        let print = match App::request_fingerprint(operation, target, &input) {
            Ok(print) => print,
            Err(e) => return e.into_response(),
        };
        let (app, owner) = (self.app.clone(), ws.clone());
        let answer = self
            .app
            .idempotent_detached(ws, key.0.as_deref(), &print, move |key| {
                run(app, owner, input, key)
            })
            .await;
        let mut response = match answer.result {
            Ok(output) => json(status, output),
            Err(e) => e.into_response(),
        };
        if answer.replayed {
            self.metrics.idempotent_replay();
            response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
        }
        response
    }
}
