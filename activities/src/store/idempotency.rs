//! Idempotency records for the API's `Idempotency-Key` header (IETF
//! draft-ietf-httpapi-idempotency-key-header, with Stripe's semantics).
//!
//! A request claims its key by inserting an `in_flight` row; the insert is the atomic step, so
//! of two concurrent requests with one key exactly one runs. The winner stores its response
//! (`completed`), which later requests with the same fingerprint get replayed; a different
//! fingerprint is a reuse of the key for another request. Records older than the retention
//! period are ignored and replaced, and an `in_flight` row whose lock ran out (its process
//! died) may be taken over by a request with the same fingerprint.

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
    /// The request with this key is still running.
    InFlight,
    /// The key was used for a request with another fingerprint.
    Mismatch,
}

/// How long keys are kept and in-flight claims are honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyPolicy {
    /// Records older than this are forgotten (IETF draft and Stripe: at least 24 h).
    pub retention: Duration,
    /// An `in_flight` claim older than this is presumed dead and may be taken over.
    pub lock: Duration,
}

impl Default for IdempotencyPolicy {
    fn default() -> Self {
        Self { retention: Duration::from_secs(24 * 3600), lock: Duration::from_secs(120) }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A claim can lose a race to a concurrent claim or expiry; more rounds than this mean
/// something else is wrong.
const CLAIM_ATTEMPTS: usize = 4;

impl Store {
    /// Claims `key` of the workspace for a request with `fingerprint`; see [`IdempotencyClaim`].
    pub async fn claim_idempotency_key(
        &self,
        workspace_id: &str,
        key: &str,
        fingerprint: &str,
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
                    (workspace_id, idempotency_key, fingerprint, status, created_at, locked_until)
                 VALUES ($1, $2, $3, 'in_flight', $4, $5)
                 ON CONFLICT (workspace_id, idempotency_key) DO NOTHING",
            )
            .bind(workspace_id)
            .bind(key)
            .bind(fingerprint)
            .bind(now)
            .bind(now.saturating_add(ms(policy.lock)))
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
            // The owner's lock ran out: take the claim over, unless someone else just did.
            let taken = sqlx::query(
                "UPDATE idempotency_keys SET locked_until = $4
                 WHERE workspace_id = $1 AND idempotency_key = $2 AND status = 'in_flight'
                   AND locked_until < $3",
            )
            .bind(workspace_id)
            .bind(key)
            .bind(now)
            .bind(now.saturating_add(ms(policy.lock)))
            .execute(self.pool())
            .await?
            .rows_affected();
            if taken == 1 {
                return Ok(IdempotencyClaim::Claimed);
            }
        }
        Err(StoreError::conflict(format!("idempotency key {key:?} kept changing while claimed")))
    }

    /// Stores the response of a claimed key, for replay.
    pub async fn complete_idempotency_key(
        &self,
        workspace_id: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE idempotency_keys
             SET status = 'completed', response_status = $3, response_body = $4, completed_at = $5
             WHERE workspace_id = $1 AND idempotency_key = $2",
        )
        .bind(workspace_id)
        .bind(key)
        .bind(i64::from(response.status))
        .bind(&response.body)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Gives up a claimed key without a response (the request failed in a way a retry may
    /// fix), so the next request with it runs afresh.
    pub async fn release_idempotency_key(&self, workspace_id: &str, key: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys
             WHERE workspace_id = $1 AND idempotency_key = $2 AND status = 'in_flight'",
        )
        .bind(workspace_id)
        .bind(key)
        .execute(self.pool())
        .await?;
        Ok(())
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
