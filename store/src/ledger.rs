//! The billing ledger: a balance per workspace, holds, credits and an entry per movement.
//!
//! The operations mirror `convo_domain::Ledger` and keep its invariants in the database:
//! `free + reserved == total` and no counter below zero (a `CHECK` on the balance row), and
//! `reserved` equal to the sum of the open holds (every change of a hold's status and of the
//! balance happens in one transaction). Each operation is idempotent, because activities are
//! retried: credits on their idempotency key, holds on their id.
//!
//! A *top-up* is a credit that records who made it ([`Actor`]) and why; the API and
//! `convo workspace top-up` write them, [`Store::top_ups`] lists every credit with its author
//! (none for opening balances written by [`Store::credit`]).

use convo_domain::{Balance, HoldId, Money, Timestamp};
use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyConnection, Executor, Row, any::AnyRow};

use super::{
    Result, Store, StoreError, error::missing_parent, money, money_param, new_id, now_ms, timestamp,
};

/// Where a hold stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    /// Reserved; counts in `reserved`.
    Open,
    /// The amount left the balance.
    Charged,
    /// The amount went back to `free`.
    Released,
}

impl HoldStatus {
    fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Open => "open",
            HoldStatus::Charged => "charged",
            HoldStatus::Released => "released",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "open" => Ok(HoldStatus::Open),
            "charged" => Ok(HoldStatus::Charged),
            "released" => Ok(HoldStatus::Released),
            other => Err(StoreError::corrupt(format!("unknown hold status {other:?}"))),
        }
    }
}

/// One hold as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRecord {
    /// Its id.
    pub hold_id: HoldId,
    /// How much it reserves (or reserved).
    pub amount: Money,
    /// Where it stands.
    pub status: HoldStatus,
    /// When it was placed.
    pub created_at: Timestamp,
    /// When it was charged or released.
    pub resolved_at: Option<Timestamp>,
    /// Why it was released, when that was not the session's own decision (a late delivery
    /// failure); see [`Store::release_hold_because`].
    #[serde(default)]
    pub release_reason: Option<String>,
}

/// Who topped a balance up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// An API key, by its id (`key_...`).
    ApiKey(String),
    /// An operator at the CLI, by the name they gave.
    Operator(String),
}

impl Actor {
    /// `"api_key"` or `"operator"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::ApiKey(_) => "api_key",
            Actor::Operator(_) => "operator",
        }
    }

    /// The key id or the operator's name.
    pub fn id(&self) -> &str {
        match self {
            Actor::ApiKey(id) | Actor::Operator(id) => id,
        }
    }

    fn parse(kind: &str, id: String) -> Result<Self> {
        match kind {
            "api_key" => Ok(Actor::ApiKey(id)),
            "operator" => Ok(Actor::Operator(id)),
            other => Err(StoreError::corrupt(format!("unknown credit actor kind {other:?}"))),
        }
    }
}

/// A top-up to apply: [`Store::top_up`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTopUp {
    /// Its id, which is also the credit's idempotency key: applying the same id again credits
    /// nothing.
    pub id: String,
    /// How much (positive).
    pub amount: Money,
    /// Who.
    pub by: Actor,
    /// Why (not empty).
    pub reason: String,
}

/// A credit as the ledger recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUp {
    /// Its id (the credit's idempotency key).
    pub id: String,
    /// How much was credited.
    pub amount: Money,
    /// Who, for top-ups (not for opening balances).
    pub by: Option<Actor>,
    /// Why, for top-ups.
    pub reason: Option<String>,
    /// When.
    pub created_at: Timestamp,
    /// The balance right after it.
    pub balance_after: Option<Balance>,
}

async fn read_balance<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    workspace_id: &str,
) -> Result<Option<Balance>> {
    let row: Option<(i64, i64, i64)> =
        sqlx::query_as("SELECT free, reserved, total FROM balances WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_optional(executor)
            .await?;
    row.map(|(free, reserved, total)| {
        Ok(Balance { free: money(free)?, reserved: money(reserved)?, total: money(total)? })
    })
    .transpose()
}

/// Creates the workspace's zero balance if it has none. Every ledger transaction runs this
/// first: it is the write that takes SQLite's write lock before anything is read, and a missing
/// workspace surfaces here as a foreign-key violation.
async fn ensure_balance(conn: &mut AnyConnection, workspace_id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO balances (workspace_id, free, reserved, total, updated_at)
         VALUES ($1, 0, 0, 0, $2) ON CONFLICT (workspace_id) DO NOTHING",
    )
    .bind(workspace_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(missing_parent("workspace", workspace_id))?;
    Ok(())
}

async fn current_balance(conn: &mut AnyConnection, workspace_id: &str) -> Result<Balance> {
    read_balance(&mut *conn, workspace_id)
        .await?
        .ok_or_else(|| StoreError::not_found("workspace", workspace_id))
}

/// Appends a ledger entry carrying the balance after the movement, so the entries alone tell
/// the balance's history.
async fn append_entry(
    conn: &mut AnyConnection,
    workspace_id: &str,
    kind: &str,
    amount: i64,
    reference: &str,
    now: i64,
) -> Result<Balance> {
    let balance = current_balance(conn, workspace_id).await?;
    sqlx::query(
        "INSERT INTO ledger_entries
            (id, workspace_id, kind, amount, reference, free, reserved, total, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new_id("le"))
    .bind(workspace_id)
    .bind(kind)
    .bind(amount)
    .bind(reference)
    .bind(money_param(balance.free, "free")?)
    .bind(money_param(balance.reserved, "reserved")?)
    .bind(money_param(balance.total, "total")?)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(balance)
}

/// The longest reason a top-up may give.
const MAX_REASON_CHARS: usize = 500;

/// A credit with its ledger entry (the balance after it).
const TOP_UP_SELECT: &str = "SELECT c.idempotency_key, c.amount, c.actor_kind, c.actor, c.reason,
        c.created_at, e.free, e.reserved, e.total
    FROM credits c
    LEFT JOIN ledger_entries e ON e.workspace_id = c.workspace_id AND e.kind = 'credit'
        AND e.reference = c.idempotency_key";

fn top_up_from_row(row: &AnyRow) -> Result<TopUp> {
    let by = match (row.try_get::<Option<String>, _>("actor_kind")?, row.try_get("actor")?) {
        (Some(kind), Some(id)) => Some(Actor::parse(&kind, id)?),
        _ => None,
    };
    let balance_after = match (
        row.try_get::<Option<i64>, _>("free")?,
        row.try_get::<Option<i64>, _>("reserved")?,
        row.try_get::<Option<i64>, _>("total")?,
    ) {
        (Some(free), Some(reserved), Some(total)) => {
            Some(Balance { free: money(free)?, reserved: money(reserved)?, total: money(total)? })
        }
        _ => None,
    };
    Ok(TopUp {
        id: row.try_get("idempotency_key")?,
        amount: money(row.try_get("amount")?)?,
        by,
        reason: row.try_get("reason")?,
        created_at: timestamp(row.try_get("created_at")?),
        balance_after,
    })
}

fn validate_key(field: &'static str, key: &str) -> Result<()> {
    if key.trim().is_empty() {
        return Err(StoreError::validation(field, "must not be empty"));
    }
    if key.len() > 255 {
        return Err(StoreError::validation(field, "must be at most 255 bytes"));
    }
    Ok(())
}

impl Store {
    /// The workspace's balance (all zero if it never had a movement).
    pub async fn balance(&self, workspace_id: &str) -> Result<Balance> {
        match read_balance(self.pool(), workspace_id).await? {
            Some(balance) => Ok(balance),
            None => {
                self.workspace(workspace_id).await?;
                Ok(Balance::default())
            }
        }
    }

    /// Adds `amount` to the balance (a top-up). Idempotent on `idempotency_key`: a repeat with
    /// the same amount returns the current balance and adds nothing; a repeat with another
    /// amount is a [`StoreError::Conflict`].
    pub async fn credit(
        &self,
        workspace_id: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<Balance> {
        self.apply_credit(workspace_id, amount, idempotency_key, None).await
    }

    /// Credits a top-up, recording who made it and why. Idempotent on its id: applying it
    /// again credits nothing and answers the top-up as first recorded; the same id with another
    /// amount or reason is a [`StoreError::Conflict`].
    pub async fn top_up(&self, workspace_id: &str, top_up: &NewTopUp) -> Result<TopUp> {
        if top_up.amount.is_zero() {
            return Err(StoreError::validation("amount", "must be positive"));
        }
        if top_up.reason.trim().is_empty() {
            return Err(StoreError::validation("reason", "must not be empty"));
        }
        if top_up.by.id().trim().is_empty() {
            return Err(StoreError::validation("by", "must not be empty"));
        }
        self.apply_credit(
            workspace_id,
            top_up.amount,
            &top_up.id,
            Some((&top_up.by, &top_up.reason)),
        )
        .await?;
        self.top_up_record(workspace_id, &top_up.id).await
    }

    /// The workspace's credits (top-ups and opening balances), newest first, at most `limit`.
    pub async fn top_ups(&self, workspace_id: &str, limit: u32) -> Result<Vec<TopUp>> {
        let rows = sqlx::query(&format!(
            "{TOP_UP_SELECT} WHERE c.workspace_id = $1
             ORDER BY c.created_at DESC, c.idempotency_key DESC LIMIT $2"
        ))
        .bind(workspace_id)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(top_up_from_row).collect()
    }

    async fn top_up_record(&self, workspace_id: &str, id: &str) -> Result<TopUp> {
        let row = sqlx::query(&format!(
            "{TOP_UP_SELECT} WHERE c.workspace_id = $1 AND c.idempotency_key = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::not_found("top-up", id))?;
        top_up_from_row(&row)
    }

    async fn apply_credit(
        &self,
        workspace_id: &str,
        amount: Money,
        idempotency_key: &str,
        top_up: Option<(&Actor, &str)>,
    ) -> Result<Balance> {
        validate_key("idempotency_key", idempotency_key)?;
        let amount_i = money_param(amount, "amount")?;
        let reason = top_up.map(|(_, reason)| reason.trim());
        if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
            return Err(StoreError::validation("reason", "must be at most 500 characters"));
        }
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        ensure_balance(&mut tx, workspace_id, now).await?;
        let inserted = sqlx::query(
            "INSERT INTO credits
                (workspace_id, idempotency_key, amount, created_at, actor_kind, actor, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (workspace_id, idempotency_key) DO NOTHING",
        )
        .bind(workspace_id)
        .bind(idempotency_key)
        .bind(amount_i)
        .bind(now)
        .bind(top_up.map(|(by, _)| by.kind()))
        .bind(top_up.map(|(by, _)| by.id().to_owned()))
        .bind(reason)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            let (existing, existing_reason): (i64, Option<String>) = sqlx::query_as(
                "SELECT amount, reason FROM credits WHERE workspace_id = $1 AND idempotency_key = $2",
            )
            .bind(workspace_id)
            .bind(idempotency_key)
            .fetch_one(&mut *tx)
            .await?;
            if existing != amount_i {
                return Err(StoreError::conflict(format!(
                    "credit {idempotency_key} was already applied with amount {existing}"
                )));
            }
            if reason.is_some() && existing_reason.as_deref() != reason {
                return Err(StoreError::conflict(format!(
                    "credit {idempotency_key} was already applied for another reason"
                )));
            }
            return current_balance(&mut tx, workspace_id).await;
        }
        // Guarded against overflow in SQL so the check and the update see the same row.
        let updated = sqlx::query(
            "UPDATE balances SET free = free + $2, total = total + $2, updated_at = $3
             WHERE workspace_id = $1 AND total <= $4 - $2",
        )
        .bind(workspace_id)
        .bind(amount_i)
        .bind(now)
        .bind(i64::MAX)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::validation("amount", "the balance would overflow"));
        }
        let balance =
            append_entry(&mut tx, workspace_id, "credit", amount_i, idempotency_key, now).await?;
        tx.commit().await?;
        Ok(balance)
    }

    /// Reserves `amount` under `hold_id`. Refused with [`StoreError::InsufficientBalance`]
    /// (reserving nothing) when `free` cannot cover it. Placing the same hold again returns the
    /// current balance without reserving twice; the same id with another amount, or for a hold
    /// already resolved, is a [`StoreError::Conflict`].
    pub async fn place_hold(
        &self,
        workspace_id: &str,
        hold_id: HoldId,
        amount: Money,
    ) -> Result<Balance> {
        validate_key("hold_id", hold_id.as_str())?;
        let amount_i = money_param(amount, "amount")?;
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        ensure_balance(&mut tx, workspace_id, now).await?;
        let inserted = sqlx::query(
            "INSERT INTO holds (workspace_id, hold_id, amount, status, created_at)
             VALUES ($1, $2, $3, 'open', $4) ON CONFLICT (workspace_id, hold_id) DO NOTHING",
        )
        .bind(workspace_id)
        .bind(hold_id.as_str())
        .bind(amount_i)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            let (existing, status): (i64, String) = sqlx::query_as(
                "SELECT amount, status FROM holds WHERE workspace_id = $1 AND hold_id = $2",
            )
            .bind(workspace_id)
            .bind(hold_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
            let status = HoldStatus::parse(&status)?;
            if status != HoldStatus::Open {
                return Err(StoreError::conflict(format!(
                    "hold {hold_id} was already {}",
                    status.as_str()
                )));
            }
            if existing != amount_i {
                return Err(StoreError::conflict(format!(
                    "hold {hold_id} already exists for amount {existing}"
                )));
            }
            return current_balance(&mut tx, workspace_id).await;
        }
        // The balance condition is part of the UPDATE, so a concurrent hold that committed
        // first is taken into account (Postgres re-checks the WHERE against the row it waited
        // for; SQLite runs one writer at a time).
        let updated = sqlx::query(
            "UPDATE balances SET free = free - $2, reserved = reserved + $2, updated_at = $3
             WHERE workspace_id = $1 AND free >= $2",
        )
        .bind(workspace_id)
        .bind(amount_i)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            let balance = current_balance(&mut tx, workspace_id).await?;
            tx.rollback().await?;
            return Err(StoreError::InsufficientBalance { required: amount, balance });
        }
        let balance =
            append_entry(&mut tx, workspace_id, "hold", amount_i, hold_id.as_str(), now).await?;
        tx.commit().await?;
        Ok(balance)
    }

    /// Charges the open hold: its amount leaves `reserved` and `total`. Charging a charged hold
    /// again is a no-op; charging a released one is a [`StoreError::Conflict`].
    ///
    /// A hold released early with a reason ([`Store::release_hold_because`], a late delivery
    /// failure) stays released: charging it is a no-op that returns the current balance, so
    /// the session's own charge at close neither fails nor takes the money anyway.
    pub async fn charge_hold(&self, workspace_id: &str, hold_id: &HoldId) -> Result<Balance> {
        self.resolve_hold(workspace_id, hold_id, HoldStatus::Charged, None).await
    }

    /// Releases the open hold: its amount goes back to `free`. Releasing a released hold again
    /// is a no-op; releasing a charged one is a [`StoreError::Conflict`].
    pub async fn release_hold(&self, workspace_id: &str, hold_id: &HoldId) -> Result<Balance> {
        self.resolve_hold(workspace_id, hold_id, HoldStatus::Released, None).await
    }

    /// Releases the open hold outside the session's own decision, recording `reason` on the
    /// hold and on its ledger entry (a late delivery failure: `delivery_failed: ...`).
    /// Returns the hold as it now stands: `released` (by this call or an earlier one; the
    /// first reason is kept), or `charged` when the session charged it first, which this
    /// leaves charged (a refund would be a credit).
    pub async fn release_hold_because(
        &self,
        workspace_id: &str,
        hold_id: &HoldId,
        reason: &str,
    ) -> Result<HoldRecord> {
        if reason.trim().is_empty() {
            return Err(StoreError::validation("reason", "must not be empty"));
        }
        match self.resolve_hold(workspace_id, hold_id, HoldStatus::Released, Some(reason)).await {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        self.hold(workspace_id, hold_id).await
    }

    async fn resolve_hold(
        &self,
        workspace_id: &str,
        hold_id: &HoldId,
        to: HoldStatus,
        reason: Option<&str>,
    ) -> Result<Balance> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        ensure_balance(&mut tx, workspace_id, now).await?;
        let resolved: Option<(i64,)> = sqlx::query_as(
            "UPDATE holds SET status = $3, resolved_at = $4, release_reason = $5
             WHERE workspace_id = $1 AND hold_id = $2 AND status = 'open'
             RETURNING amount",
        )
        .bind(workspace_id)
        .bind(hold_id.as_str())
        .bind(to.as_str())
        .bind(now)
        .bind(reason)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((amount,)) = resolved else {
            let status: Option<(String, Option<String>)> = sqlx::query_as(
                "SELECT status, release_reason FROM holds WHERE workspace_id = $1 AND hold_id = $2",
            )
            .bind(workspace_id)
            .bind(hold_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            return match status {
                None => Err(StoreError::not_found("hold", hold_id.as_str())),
                Some((s, _)) if HoldStatus::parse(&s)? == to => {
                    current_balance(&mut tx, workspace_id).await
                }
                // Released early for a reason (a late delivery failure): the session's charge
                // at close finds it released and leaves it so.
                Some((s, Some(_)))
                    if to == HoldStatus::Charged
                        && HoldStatus::parse(&s)? == HoldStatus::Released =>
                {
                    current_balance(&mut tx, workspace_id).await
                }
                Some((s, _)) => {
                    Err(StoreError::conflict(format!("hold {hold_id} was already {s}")))
                }
            };
        };
        let update = match to {
            HoldStatus::Charged => {
                "UPDATE balances SET reserved = reserved - $2, total = total - $2, updated_at = $3
                 WHERE workspace_id = $1"
            }
            _ => {
                "UPDATE balances SET reserved = reserved - $2, free = free + $2, updated_at = $3
                 WHERE workspace_id = $1"
            }
        };
        sqlx::query(update).bind(workspace_id).bind(amount).bind(now).execute(&mut *tx).await?;
        let kind = if to == HoldStatus::Charged { "charge" } else { "release" };
        let balance =
            append_entry(&mut tx, workspace_id, kind, amount, hold_id.as_str(), now).await?;
        if let Some(reason) = reason {
            sqlx::query(
                "UPDATE ledger_entries SET reason = $3
                 WHERE workspace_id = $1 AND reference = $2 AND kind = 'release'",
            )
            .bind(workspace_id)
            .bind(hold_id.as_str())
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(balance)
    }

    /// The hold `hold_id` of the workspace.
    pub async fn hold(&self, workspace_id: &str, hold_id: &HoldId) -> Result<HoldRecord> {
        type HoldRow = (i64, String, i64, Option<i64>, Option<String>);
        let row: Option<HoldRow> = sqlx::query_as(
            "SELECT amount, status, created_at, resolved_at, release_reason FROM holds
             WHERE workspace_id = $1 AND hold_id = $2",
        )
        .bind(workspace_id)
        .bind(hold_id.as_str())
        .fetch_optional(self.pool())
        .await?;
        let (amount, status, created_at, resolved_at, release_reason) =
            row.ok_or_else(|| StoreError::not_found("hold", hold_id.as_str()))?;
        Ok(HoldRecord {
            hold_id: hold_id.clone(),
            amount: money(amount)?,
            status: HoldStatus::parse(&status)?,
            created_at: timestamp(created_at),
            resolved_at: resolved_at.map(timestamp),
            release_reason,
        })
    }

    /// The sum of the workspace's open holds; equals the balance's `reserved` whenever no
    /// transaction is in flight (a check for tests and audits).
    pub async fn open_holds_total(&self, workspace_id: &str) -> Result<Money> {
        let (sum,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM holds
             WHERE workspace_id = $1 AND status = 'open'",
        )
        .bind(workspace_id)
        .fetch_one(self.pool())
        .await?;
        money(sum)
    }
}
