//! Idempotency records for the API's `Idempotency-Key` header (IETF
//! draft-ietf-httpapi-idempotency-key-header, with Stripe's semantics).
//!
//! A request claims its key by inserting an `in_flight` row; the insert is the atomic step, so
//! of two concurrent requests with one key exactly one runs. The winner stores its response
//! (`completed`), which later requests with the same fingerprint get replayed; a different
//! fingerprint is a reuse of the key for another request. Records older than the retention
//! period are ignored and replaced.
//!
//! An `in_flight` row is a lease held by one live request: it names its owner (a random id the
//! request chose) and runs out a few seconds after its last renewal
//! ([`Store::renew_idempotency_key`]), which the running request repeats well within
//! [`IdempotencyPolicy::lease`]. A row whose lease ran out belongs to a request whose process
//! died; the next claim with the same fingerprint takes it over and becomes the owner. Only the
//! owner renews, completes or releases a claim, so a request that lost its lease (it stalled
//! past the lease and was taken over) cannot overwrite or free its successor's claim.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Result, Store, StoreError, now_ms};

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body (JSON text).
    pub body: String,
}

/// The answer to [`Store::claim_idempotency_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The caller owns the key now and must complete or release it.
    Claimed,
    /// The request already ran: answer this.
    Replay(StoredResponse),
    /// The request with this key is still running (its lease has not run out).
    InFlight,
    /// The key was used for a request with another fingerprint.
    Mismatch,
}

/// How long keys are kept, how long an in-flight claim's lease runs, and how long a retry
/// waits for the request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyPolicy {
    /// Records older than this are forgotten (IETF draft and Stripe: at least 24 h).
    pub retention: Duration,
    /// How far out a claim's lease runs from its last renewal. The running request renews it
    /// every third of this; a claim not renewed for this long is presumed dead (its process
    /// crashed) and may be taken over.
    pub lease: Duration,
    /// How long a retry that finds its key in flight waits for the first request's answer
    /// (or for a dead claim's lease to run out) before it gives up with
    /// `idempotency_key_in_use`. The store does not use it; the API's transports do.
    pub wait: Duration,
}

impl Default for IdempotencyPolicy {
    /// 24 h retention, a 5 s lease, and a 30 s wait: the API's default send timeout, so a
    /// retry normally gets the first request's answer, and longer than the lease, so a retry
    /// after a crash takes the claim over within one call, a few seconds after the crash. The
    /// lease is renewed every 1.7 s: one short write per request that runs that long.
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(5),
            wait: Duration::from_secs(30),
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A claim can lose a race to a concurrent claim or expiry; more rounds than this mean
/// something else is wrong.
const CLAIM_ATTEMPTS: usize = 4;

impl Store {
    /// Claims `key` of the workspace for a request with `fingerprint`, as `owner` (an id unique
    /// to the request), with a lease of `policy.lease`; see [`IdempotencyClaim`]. A live claim
    /// is [`IdempotencyClaim::InFlight`] whoever asks, its owner included.
    pub async fn claim_idempotency_key(
        &self,
        workspace_id: &str,
        key: &str,
        fingerprint: &str,
        owner: &str,
        policy: IdempotencyPolicy,
    ) -> Result<IdempotencyClaim> {
        if key.is_empty() || key.len() > 255 {
            return Err(StoreError::validation("idempotency_key", "must be 1 to 255 bytes"));
        }
        for _ in 0..CLAIM_ATTEMPTS {
            let now = now_ms();
            // Forget an expired record first, so the insert below can claim the key afresh.
            sqlx::query(
                "DELETE FROM idempotency_keys
                 WHERE workspace_id = $1 AND idempotency_key = $2 AND created_at < $3",
            )
            .bind(workspace_id)
            .bind(key)
            .bind(now.saturating_sub(ms(policy.retention)))
            .execute(self.pool())
            .await?;
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys
                    (workspace_id, idempotency_key, fingerprint, status, created_at, locked_until,
                     lease_owner)
                 VALUES ($1, $2, $3, 'in_flight', $4, $5, $6)
                 ON CONFLICT (workspace_id, idempotency_key) DO NOTHING",
            )
            .bind(workspace_id)
            .bind(key)
            .bind(fingerprint)
            .bind(now)
            .bind(now.saturating_add(ms(policy.lease)))
            .bind(owner)
            .execute(self.pool())
            .await?
            .rows_affected();
            if inserted == 1 {
                return Ok(IdempotencyClaim::Claimed);
            }
            let row = sqlx::query(
                "SELECT fingerprint, status, response_status, response_body, locked_until
                 FROM idempotency_keys WHERE workspace_id = $1 AND idempotency_key = $2",
            )
            .bind(workspace_id)
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
            // Deleted between the insert and the read (expired, or released): claim again.
            let Some(row) = row else { continue };
            if row.try_get::<String, _>("fingerprint")? != fingerprint {
                return Ok(IdempotencyClaim::Mismatch);
            }
            if row.try_get::<String, _>("status")? == "completed" {
                let status = row.try_get::<Option<i64>, _>("response_status")?.unwrap_or(500);
                return Ok(IdempotencyClaim::Replay(StoredResponse {
                    status: u16::try_from(status).unwrap_or(500),
                    body: row.try_get::<Option<String>, _>("response_body")?.unwrap_or_default(),
                }));
            }
            if row.try_get::<i64, _>("locked_until")? >= now {
                return Ok(IdempotencyClaim::InFlight);
            }
            // The owner's lease ran out (its process died): take the claim over, unless someone
            // else just did or the owner renewed it in between.
            let taken = sqlx::query(
                "UPDATE idempotency_keys SET locked_until = $4, lease_owner = $5
                 WHERE workspace_id = $1 AND idempotency_key = $2 AND status = 'in_flight'
                   AND locked_until < $3",
            )
            .bind(workspace_id)
            .bind(key)
            .bind(now)
            .bind(now.saturating_add(ms(policy.lease)))
            .bind(owner)
            .execute(self.pool())
            .await?
            .rows_affected();
            if taken == 1 {
                return Ok(IdempotencyClaim::Claimed);
            }
        }
        Err(StoreError::conflict(format!("idempotency key {key:?} kept changing while claimed")))
    }

    /// Extends `owner`'s lease on `key` to `policy.lease` from now. `false`: the claim is no
    /// longer `owner`'s (it was taken over, completed or released), so there is nothing to
    /// renew. A lease that ran out but was not taken over yet is still the owner's.
    pub async fn renew_idempotency_key(
        &self,
        workspace_id: &str,
        key: &str,
        owner: &str,
        policy: IdempotencyPolicy,
    ) -> Result<bool> {
        let renewed = sqlx::query(
            "UPDATE idempotency_keys SET locked_until = $4
             WHERE workspace_id = $1 AND idempotency_key = $2 AND status = 'in_flight'
               AND lease_owner = $3",
        )
        .bind(workspace_id)
        .bind(key)
        .bind(owner)
        .bind(now_ms().saturating_add(ms(policy.lease)))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(renewed == 1)
    }

    /// Stores the response of `owner`'s claim on `key`, for replay. `false`: the claim is not
    /// `owner`'s any more (another request took it over and will store its own answer), so
    /// nothing was stored.
    pub async fn complete_idempotency_key(
        &self,
        workspace_id: &str,
        key: &str,
        owner: &str,
        response: &StoredResponse,
    ) -> Result<bool> {
        let completed = sqlx::query(
            "UPDATE idempotency_keys
             SET status = 'completed', response_status = $4, response_body = $5, completed_at = $6
             WHERE workspace_id = $1 AND idempotency_key = $2 AND status = 'in_flight'
               AND lease_owner = $3",
        )
        .bind(workspace_id)
        .bind(key)
        .bind(owner)
        .bind(i64::from(response.status))
        .bind(&response.body)
        .bind(now_ms())
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(completed == 1)
    }

    /// Gives up `owner`'s claim on `key` without a response (the request failed in a way a
    /// retry may fix), so the next request with it runs afresh. `false`: the claim was not
    /// `owner`'s any more, and is left alone.
    pub async fn release_idempotency_key(
        &self,
        workspace_id: &str,
        key: &str,
        owner: &str,
    ) -> Result<bool> {
        let released = sqlx::query(
            "DELETE FROM idempotency_keys
             WHERE workspace_id = $1 AND idempotency_key = $2 AND status = 'in_flight'
               AND lease_owner = $3",
        )
        .bind(workspace_id)
        .bind(key)
        .bind(owner)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(released == 1)
    }

    /// Deletes every record older than `retention`; returns how many. Claims ignore expired
    /// records anyway, so this only bounds the table's size.
    pub async fn prune_idempotency_keys(&self, retention: Duration) -> Result<u64> {
        let cutoff = now_ms().saturating_sub(ms(retention));
        let deleted = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(cutoff)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(deleted)
    }
}
