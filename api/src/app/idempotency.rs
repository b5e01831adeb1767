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
//! | lost its client (HTTP: the connection closed) | the same as if the client had stayed: over HTTP the request runs on in a task of its own ([`App::run_idempotent`]) and stores its answer |
//! | died with its process (a crash, `kill -9`) | its lease runs out within [`IdempotencyPolicy::lease`]; a waiting retry then takes the claim over and runs the request again |
//! | was cancelled in process (a gRPC call its client cancelled) | the claim is released at once, so the retry runs the request again |
//!
//! The same key with another request (another method, path or body) is 422
//! `idempotency_key_reused`, whatever the first request's state.
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
use http::StatusCode;
use tracing::Instrument as _;

use super::{App, WorkspaceId, hex};
use crate::error::{ApiError, ErrorCode};

/// The shortest and longest pause between two looks at a key whose request is in flight.
const POLL_MIN: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(250);
/// The `Retry-After` (seconds) of an `idempotency_key_in_use` answer.
pub(crate) const IN_USE_RETRY_AFTER_SECS: u64 = 1;

/// What claiming an Idempotency-Key gave ([`App::claim_idempotency`]).
#[derive(Debug)]
pub enum Claim {
    /// Run the request under this lease, then [`IdempotencyLease::finish`] it.
    Run(IdempotencyLease),
    /// The request already ran: answer this, marked replayed.
    Replay(StoredResponse),
}

/// The answer of [`App::run_idempotent`].
#[derive(Debug)]
pub enum Idempotent<T> {
    /// This request ran the work; its output.
    Ran(T),
    /// The request had already run (or a request with the same key ran while this one waited):
    /// the stored answer, to replay.
    Replayed(StoredResponse),
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
    /// hex) of its parts joined by newlines. HTTP fingerprints method, path and body; gRPC the
    /// transport, the full method name and the encoded request.
    pub fn idempotency_fingerprint(parts: &[&[u8]]) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                ctx.update(b"\n");
            }
            ctx.update(part);
        }
        hex(ctx.finish().as_ref())
    }

    /// Whether the answer to a request that claimed an Idempotency-Key is final, and so kept
    /// for replay rather than released ([`IdempotencyLease::finish`]). `error` is `None` for a
    /// success, else the error's HTTP status and code.
    ///
    /// Answers a retry may change are not kept: server errors (including timeouts), 429, 409,
    /// and requests rejected before they ran (400, 401, 413, 415 and `validation_failed`).
    /// Every other answer, success or refusal (`no_active_session`, `not_found`, ...), is.
    pub fn idempotency_keeps(error: Option<(StatusCode, Option<ErrorCode>)>) -> bool {
        let Some((status, code)) = error else { return true };
        if status.is_success() {
            return true;
        }
        if status.is_server_error()
            || matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS
                    | StatusCode::CONFLICT
                    | StatusCode::BAD_REQUEST
                    | StatusCode::UNAUTHORIZED
                    | StatusCode::PAYLOAD_TOO_LARGE
                    | StatusCode::UNSUPPORTED_MEDIA_TYPE
            )
        {
            return false;
        }
        code != Some(ErrorCode::ValidationFailed)
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
                .with_field("Idempotency-Key"));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    /// Runs `work` under an Idempotency-Key ([`App::claim_idempotency`]) in a task of its own
    /// that owns it, so the work runs to completion and records its answer even if the caller
    /// stops waiting (an HTTP client that hangs up drops only the wait for the task). `work`
    /// yields its output and the answer to store for replay (`None`: release the key).
    pub async fn run_idempotent<T, W>(
        &self,
        ws: &WorkspaceId,
        key: &str,
        fingerprint: &str,
        work: W,
    ) -> Result<Idempotent<T>, ApiError>
    where
        T: Send + 'static,
        W: Future<Output = (T, Option<StoredResponse>)> + Send + 'static,
    {
        let lease = match self.claim_idempotency(ws, key, fingerprint).await? {
            Claim::Replay(response) => return Ok(Idempotent::Replayed(response)),
            Claim::Run(lease) => lease,
        };
        let task = tokio::spawn(
            async move {
                let (output, answer) = lease.hold(work).await;
                lease.finish(answer.as_ref()).await;
                output
            }
            .instrument(tracing::Span::current()),
        );
        match task.await {
            Ok(output) => Ok(Idempotent::Ran(output)),
            // The lease was dropped unfinished while unwinding, which released the key.
            Err(e) => Err(ApiError::internal(format!("the request failed: {e}"))),
        }
    }
}

/// Idempotency keys are 1 to 255 printable ASCII characters (Stripe's limit; the IETF draft
/// leaves the format to the server).
fn validate_idempotency_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::malformed(
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
        )
        .with_field("Idempotency-Key"));
    }
    Ok(())
}
