//! Idempotency-Key runs, shared by both transports: Stripe's semantics with its recovery points.
//!
//! A request with a key first claims it ([`App::claim_idempotency`]). The claim is a lease in
//! the store, held by this request alone (a random owner id) and renewed while the request runs
//! ([`IdempotencyLease::hold`]); the request's final answer is stored for replay, and an answer
//! a retry may change releases the key ([`IdempotencyLease::finish`]).
//!
//! What a retry with the same key and the same request gets:
//!
//! | The first request | The retry gets |
//! |---|---|
//! | finished with a final answer | that answer again (same status and body), marked replayed |
//! | finished with an answer a retry may change (5xx, 429, 409, 400, 401, 413, 415, `validation_failed`) | a fresh run |
//! | still runs | the retry waits for it (up to [`IdempotencyPolicy::wait`]) and answers with its result; past the wait, 409 `idempotency_key_in_use` with `Retry-After` |
//! | lost its client (HTTP: the connection closed) | the same as if the client had stayed: over HTTP the request runs on in a task of its own ([`App::idempotent_detached`]) and stores its answer |
//! | died with its process (a crash, `kill -9`) | its lease runs out within [`IdempotencyPolicy::lease`]; a waiting retry then takes the claim over and runs the request again |
//! | was cancelled in process (a gRPC call its client cancelled) | the claim is released at once, so the retry runs the request again |
//!
//! The request is what the application layer is asked to do, not how it was asked: its
//! fingerprint ([`App::request_fingerprint`]) is the operation, the resource it acts on and
//! its typed input, so the same key over HTTP and over gRPC is the same request, and a retry
//! that spells its JSON differently (spacing, key order) is too. The same key with another
//! request (another operation, resource or input) is 422 `idempotency_key_reused`, whatever
//! the first request's state. A request that cannot be read never claims the key.
//!
//! The stored answer is the application's: the operation's output as JSON, or the error's
//! body. Each transport renders a replay as it renders a fresh answer (HTTP with the
//! operation's own success status), marked replayed.
//!
//! Running a request again is safe because what it starts or sends takes its id from the key
//! ([`App::derived_id`]): a compose's conversation id, a proactive recipient's conversation id,
//! a send's message id. Temporal refuses a second workflow with a conversation's id, and the
//! session answers a repeated message id with its first answer (or, once the session that
//! answered has ended, refuses it); the provider never sees a message twice, since the message
//! id is also its idempotency key. The rerun's answer is its own (a send's `created_at` is the
//! rerun's time). Creating a webhook endpoint derives nothing from the key, so a request run
//! again after a crash can leave a second endpoint.

use std::{convert::Infallible, future::Future, time::Duration};

use convo_store::{IdempotencyClaim, IdempotencyPolicy, Store, StoredResponse};
use serde::{Serialize, de::DeserializeOwned};
use tracing::Instrument as _;

use super::{App, WorkspaceId, hex};
use crate::error::{ApiError, ErrorCode};

/// The shortest and longest pause between two looks at a key whose request is in flight.
const POLL_MIN: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(250);
/// How long an `idempotency_key_in_use` answer tells the client to wait (the retry already
/// waited for the request in flight; it may ask again shortly).
const IN_USE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The idempotent operations, as the request fingerprint names them: one name per
/// application operation, whichever transport asked for it.
pub mod operation {
    /// `POST /v1/conversations/compose`, `ConversationService.Compose`.
    pub const COMPOSE: &str = "compose";
    /// `POST /v1/conversations/proactive`, `ConversationService.Proactive`.
    pub const PROACTIVE: &str = "proactive";
    /// `POST /v1/conversations/{id}/messages`, `ConversationService.SendConversationMessage`.
    pub const CONVERSATION_MESSAGE: &str = "conversation_message";
    /// `POST /v1/conversations/{id}/take-over`, `ConversationService.TakeOver`.
    pub const TAKE_OVER: &str = "take_over";
    /// `POST /v1/conversations/{id}/resolve`, `ConversationService.Resolve`.
    pub const RESOLVE: &str = "resolve";
    /// `POST /v1/messages`, `MessageService.SendMessage`.
    pub const SEND_MESSAGE: &str = "send_message";
    /// `POST /v1/windows/{contact}/close`, `WindowService.CloseWindow`.
    pub const CLOSE_WINDOW: &str = "close_window";
    /// `POST /v1/webhook-endpoints`.
    pub const CREATE_WEBHOOK_ENDPOINT: &str = "create_webhook_endpoint";
    /// `POST /v1/workspace/balance/top-ups`, `WorkspaceService.TopUp`.
    pub const TOP_UP: &str = "top_up";
    /// `POST /v1/templates`, `TemplateService.CreateTemplate`.
    pub const CREATE_TEMPLATE: &str = "create_template";
    /// `POST /v1/inbound/sandbox`, `InboundService.Receive`.
    pub const INBOUND_SANDBOX: &str = "inbound_sandbox";
    /// `POST /v1/inbound/sandbox/statuses`.
    pub const SANDBOX_STATUS: &str = "sandbox_status";
}

/// An operation's answer under an Idempotency-Key: its result, fresh or replayed. A replayed
/// refusal is a replay too (`replayed` is set on errors read back from the store).
#[derive(Debug)]
pub struct Answer<T> {
    /// The operation's output, or its error.
    pub result: Result<T, ApiError>,
    /// The answer was stored by an earlier request with the same key.
    pub replayed: bool,
}

impl<T> Answer<T> {
    fn fresh(result: Result<T, ApiError>) -> Self {
        Self { result, replayed: false }
    }
}

impl<T: DeserializeOwned> Answer<T> {
    /// A stored answer, read back: a success's JSON output, or an error's body.
    fn replayed(stored: &StoredResponse) -> Self {
        let result = if (200..300).contains(&stored.status) {
            serde_json::from_str(&stored.body)
                .map_err(|e| ApiError::internal(format!("the stored answer is unreadable: {e}")))
        } else {
            Err(ApiError::from_stored(&stored.body))
        };
        Self { result, replayed: true }
    }
}

/// What to store of a result for replay: a success's output as JSON, a final error's body, or
/// nothing (release the key) for an answer a retry may change ([`keeps`]).
fn stored<T: Serialize>(result: &Result<T, ApiError>) -> Option<StoredResponse> {
    match result {
        Ok(value) => {
            serde_json::to_string(value).ok().map(|body| StoredResponse { status: 200, body })
        }
        Err(e) if keeps(e) => {
            Some(StoredResponse { status: e.status().as_u16(), body: e.body().to_string() })
        }
        Err(_) => None,
    }
}

/// Whether an error is a final answer to its request, and so kept for replay rather than
/// released ([`IdempotencyLease::finish`]).
///
/// Answers a retry may change are not kept: server errors (including timeouts), 429, 409,
/// and requests rejected before they ran (400, 401, 413, 415 and `validation_failed`).
/// Every other answer, success or refusal (`no_active_session`, `not_found`, ...), is.
fn keeps(error: &ApiError) -> bool {
    use http::StatusCode;
    let status = error.status();
    let may_change = status.is_server_error()
        || matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS
                | StatusCode::CONFLICT
                | StatusCode::BAD_REQUEST
                | StatusCode::UNAUTHORIZED
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    !may_change && error.code != ErrorCode::ValidationFailed
}

/// What claiming an Idempotency-Key gave ([`App::claim_idempotency`]).
#[derive(Debug)]
pub enum Claim {
    /// Run the request under this lease, then [`IdempotencyLease::finish`] it.
    Run(IdempotencyLease),
    /// The request already ran: answer this, marked replayed.
    Replay(StoredResponse),
}

/// This request's claim on an Idempotency-Key: renewed while [`IdempotencyLease::hold`] runs,
/// and given up at once (released) if dropped unfinished, so a cancelled request leaves no
/// claim behind for a retry to wait out.
#[derive(Debug)]
pub struct IdempotencyLease {
    store: Store,
    workspace: String,
    key: String,
    owner: String,
    policy: IdempotencyPolicy,
    finished: bool,
}

impl IdempotencyLease {
    /// Runs the request `work` under the lease and records its answer
    /// ([`IdempotencyLease::finish`] with what [`stored`] keeps of it).
    async fn run<T: Serialize>(
        self,
        work: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let result = self.hold(work).await;
        self.finish(stored(&result).as_ref()).await;
        result
    }

    /// Runs `work` while renewing the lease every third of its length, so that no other
    /// request takes the claim over while this one is alive.
    pub async fn hold<F: Future>(&self, work: F) -> F::Output {
        tokio::select! {
            output = work => output,
            never = self.renew() => match never {},
        }
    }

    async fn renew(&self) -> Infallible {
        let every = (self.policy.lease / 3).max(Duration::from_millis(10));
        let mut owned = true;
        loop {
            tokio::time::sleep(every).await;
            if !owned {
                continue;
            }
            let renewed = self
                .store
                .renew_idempotency_key(&self.workspace, &self.key, &self.owner, self.policy)
                .await;
            match renewed {
                Ok(true) => {}
                Ok(false) => {
                    // Stalled past the lease and taken over: the other request answers for the
                    // key. This one still finishes (its effects are keyed on the same ids).
                    tracing::warn!(key = %self.key, "lost the Idempotency-Key lease to a retry");
                    owned = false;
                }
                // The next renewal may get through before the lease runs out.
                Err(e) => tracing::warn!(error = %e, "could not renew an Idempotency-Key lease"),
            }
        }
    }

    /// Stores `response` for replay, or releases the key when there is none (an answer a
    /// retry may change). A failure to record is logged: the answer stands, and the key is
    /// claimable again once its lease runs out.
    pub async fn finish(mut self, response: Option<&StoredResponse>) {
        self.finished = true;
        let (ws, key, owner) = (&self.workspace, &self.key, &self.owner);
        let outcome = match response {
            Some(response) => self.store.complete_idempotency_key(ws, key, owner, response).await,
            None => self.store.release_idempotency_key(ws, key, owner).await,
        };
        match outcome {
            Ok(true) => {}
            Ok(false) => tracing::warn!(key = %key, "the Idempotency-Key was taken over meanwhile"),
            Err(e) => tracing::warn!(error = %e, "could not record the idempotency outcome"),
        }
    }
}

impl Drop for IdempotencyLease {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Cancelled (or panicked) before an answer: free the key now rather than when the lease
        // runs out. Without a runtime (shutting down) the lease simply runs out.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let store = self.store.clone();
        let (ws, key, owner) =
            (self.workspace.clone(), self.key.clone(), std::mem::take(&mut self.owner));
        runtime.spawn(async move {
            if let Err(e) = store.release_idempotency_key(&ws, &key, &owner).await {
                tracing::warn!(error = %e, "could not release an abandoned Idempotency-Key");
            }
        });
    }
}

impl App {
    /// The fingerprint of a request for [`App::claim_idempotency`]: the SHA-256 (lower-case
    /// hex) of the operation ([`operation`]), the resource it acts on (a conversation id, a
    /// contact; empty when none) and the canonical JSON of its typed input (object keys
    /// sorted), joined by newlines. No transport takes part in it.
    pub fn request_fingerprint(
        operation: &str,
        target: &str,
        input: &impl Serialize,
    ) -> Result<String, ApiError> {
        // A `Value`'s objects are ordered maps, so the same input always has the same bytes.
        let canonical = serde_json::to_value(input)
            .and_then(|value| serde_json::to_vec(&value))
            .map_err(|e| ApiError::internal(format!("the request cannot be fingerprinted: {e}")))?;
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for (i, part) in [operation.as_bytes(), target.as_bytes(), &canonical].iter().enumerate() {
            if i > 0 {
                ctx.update(b"\n");
            }
            ctx.update(part);
        }
        Ok(hex(ctx.finish().as_ref()))
    }

    /// Runs `run` under `key`, if there is one, in the caller's task: the same key and
    /// request get the first final answer again; a call its caller cancels (a gRPC client
    /// that gives up) releases the key at once ([`IdempotencyLease`]), so its retry runs the
    /// request again. `run` gets the key to derive ids from ([`App::derived_id`]).
    pub async fn idempotent<T, F, Fut>(
        &self,
        ws: &WorkspaceId,
        key: Option<&str>,
        fingerprint: &str,
        run: F,
    ) -> Answer<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(Option<String>) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let Some(key) = key else { return Answer::fresh(run(None).await) };
        match self.lease(ws, key, fingerprint).await {
            Ok(lease) => Answer::fresh(lease.run(run(Some(key.to_owned()))).await),
            Err(answer) => answer,
        }
    }

    /// [`App::idempotent`], with the request run in a task of its own that owns the key: the
    /// request runs to completion and stores its answer even if the caller stops waiting (an
    /// HTTP client that hangs up drops only the wait), and the client's retry gets it.
    pub async fn idempotent_detached<T, F, Fut>(
        &self,
        ws: &WorkspaceId,
        key: Option<&str>,
        fingerprint: &str,
        run: F,
    ) -> Answer<T>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(Option<String>) -> Fut,
        Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
    {
        let Some(key) = key else { return Answer::fresh(run(None).await) };
        let lease = match self.lease(ws, key, fingerprint).await {
            Ok(lease) => lease,
            Err(answer) => return answer,
        };
        let work = run(Some(key.to_owned()));
        let task = tokio::spawn(lease.run(work).instrument(tracing::Span::current()));
        Answer::fresh(task.await.unwrap_or_else(|e| {
            // The lease was dropped unfinished while unwinding, which released the key.
            Err(ApiError::internal(format!("the request failed: {e}")))
        }))
    }

    /// The lease to run a request under, or the answer to give instead: the stored one
    /// (replayed), or why the key could not be claimed.
    async fn lease<T: DeserializeOwned>(
        &self,
        ws: &WorkspaceId,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotencyLease, Answer<T>> {
        match self.claim_idempotency(ws, key, fingerprint).await {
            Ok(Claim::Run(lease)) => Ok(lease),
            Ok(Claim::Replay(stored)) => Err(Answer::replayed(&stored)),
            Err(e) => Err(Answer::fresh(Err(e))),
        }
    }

    /// Claims an Idempotency-Key for a request whose fingerprint is `fingerprint`: a lease to
    /// run the request under, or the stored answer to replay. A key whose request is in flight
    /// is looked at again, more slowly each time, until that request answers (its answer is
    /// replayed, or, if it was released, this request claims the key and runs), its lease runs
    /// out (this request takes the claim over), or [`IdempotencyPolicy::wait`] passes: then
    /// 409 `idempotency_key_in_use`. Another fingerprint is 422 `idempotency_key_reused`.
    pub async fn claim_idempotency(
        &self,
        ws: &WorkspaceId,
        key: &str,
        fingerprint: &str,
    ) -> Result<Claim, ApiError> {
        validate_idempotency_key(key)?;
        let policy = self.settings().idempotency;
        let owner = uuid::Uuid::new_v4().simple().to_string();
        let deadline = tokio::time::Instant::now() + policy.wait;
        let mut pause = POLL_MIN;
        loop {
            let claim = self
                .store()
                .claim_idempotency_key(ws.as_str(), key, fingerprint, &owner, policy)
                .await?;
            match claim {
                IdempotencyClaim::Claimed => {
                    return Ok(Claim::Run(IdempotencyLease {
                        store: self.store().clone(),
                        workspace: ws.as_str().to_owned(),
                        key: key.to_owned(),
                        owner,
                        policy,
                        finished: false,
                    }));
                }
                IdempotencyClaim::Replay(response) => return Ok(Claim::Replay(response)),
                IdempotencyClaim::Mismatch => {
                    return Err(ApiError::new(
                        ErrorCode::IdempotencyKeyReused,
                        "this Idempotency-Key was used for a different request",
                    )
                    .with_field("Idempotency-Key"));
                }
                IdempotencyClaim::InFlight => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(ApiError::new(
                    ErrorCode::IdempotencyKeyInUse,
                    "a request with this Idempotency-Key is still being processed; retry later",
                )
                .with_field("Idempotency-Key")
                .with_retry_after(IN_USE_RETRY_AFTER));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }
}

/// An Idempotency-Key as a transport received it (a header's or metadata's bytes), checked:
/// 1 to 255 printable ASCII characters (Stripe's limit; the IETF draft leaves the format to
/// the server). Both transports read the key with this before anything else, so a bad key is
/// 400 whatever the request.
pub fn idempotency_key(raw: &[u8]) -> Result<String, ApiError> {
    // Printable ASCII is UTF-8, so bytes that are not UTF-8 fail the same check.
    let key = String::from_utf8_lossy(raw);
    validate_idempotency_key(&key)?;
    Ok(key.into_owned())
}

fn validate_idempotency_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::malformed(
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
        )
        .with_field("Idempotency-Key"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::types::SendMessageRequest;

    fn send(json: &str) -> SendMessageRequest {
        serde_json::from_str(json).expect("a send request")
    }

    #[test]
    fn the_fingerprint_is_the_application_request_not_its_spelling() {
        let print = |op: &str, target: &str, json: &str| {
            App::request_fingerprint(op, target, &send(json)).expect("fingerprinted")
        };
        let body = r#"{"to":"+14155550100","message_type":"MESSAGE","content":{"text":"hi"}}"#;
        let respelled = r#"{ "content": { "text": "hi" }, "message_type": "MESSAGE",
            "to": "+14155550100", "channel": null }"#;
        let first = print(operation::SEND_MESSAGE, "", body);
        assert_eq!(first, print(operation::SEND_MESSAGE, "", respelled));
        let changed = r#"{"to":"+14155550100","message_type":"MESSAGE","content":{"text":"ho"}}"#;
        assert_ne!(first, print(operation::SEND_MESSAGE, "", changed));
        assert_ne!(first, print(operation::COMPOSE, "", body));
        assert_ne!(first, print(operation::SEND_MESSAGE, "conv_1", body));
    }

    #[test]
    fn only_final_answers_are_kept() {
        let ok: Result<u8, ApiError> = Ok(1);
        assert_eq!(stored(&ok).map(|s| (s.status, s.body)), Some((200, "1".to_owned())));
        let refusal = ApiError::new(ErrorCode::NoActiveSession, "no window");
        let kept = stored::<u8>(&Err(refusal.clone())).expect("a refusal is final");
        assert_eq!(kept.status, 422);
        let replayed = Answer::<u8>::replayed(&kept);
        assert_eq!((replayed.result, replayed.replayed), (Err(refusal), true));
        for retryable in [
            ApiError::validation("to", "bad"),
            ApiError::malformed("not JSON"),
            ApiError::unavailable("down"),
            ApiError::conflict("busy"),
            ApiError::new(ErrorCode::RateLimited, "slow down"),
        ] {
            assert!(stored::<u8>(&Err(retryable.clone())).is_none(), "{retryable:?}");
        }
    }
}
