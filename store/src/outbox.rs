//! Webhook endpoints and the delivery outbox.
//!
//! An event is stored once with its final, signed-as-is body; enqueueing fans it out into one
//! delivery row per matching endpoint. The dispatcher claims due rows with a lease (a token and
//! an expiry written by one conditional `UPDATE`), so several dispatchers never send the same
//! attempt, and a dispatcher that dies mid-request leaves a row that becomes due again when its
//! lease runs out.

use std::time::Duration;

use convo_domain::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::{Row, any::AnyRow};

use super::{
    Result, Store, StoreError, error::missing_parent, from_json, json_param, new_id, now_ms,
    timestamp, workspaces::validate_id,
};
use crate::webhooks::{event_body, signing::generate_secret};

/// A URL a workspace receives webhooks on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    /// Opaque id (`ep_...`).
    pub id: String,
    /// The workspace.
    pub workspace_id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The signing secret, `whsec_` + base64. Shown to the workspace once, at creation.
    pub secret: String,
    /// The event types it wants (`conversation.ended`, or a prefix such as `conversation.*`);
    /// empty means every type.
    pub event_types: Vec<String>,
    /// Disabled endpoints receive nothing.
    pub enabled: bool,
    /// Why it was disabled (`HTTP 410 Gone`, an operator's note).
    pub disabled_reason: Option<String>,
    /// When it was added.
    pub created_at: Timestamp,
}

impl WebhookEndpoint {
    /// Whether the endpoint wants events of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        type_matches(&self.event_types, event_type)
    }
}

fn type_matches(filter: &[String], event_type: &str) -> bool {
    filter.is_empty()
        || filter.iter().any(|f| {
            f == "*"
                || f == event_type
                || f.strip_suffix('*')
                    .is_some_and(|prefix| prefix.ends_with('.') && event_type.starts_with(prefix))
        })
}

/// Where one delivery (one event to one endpoint) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed, or the endpoint answered 410 Gone.
    Failed,
    /// Stopped because its endpoint was disabled.
    Cancelled,
}

impl DeliveryStatus {
    /// The stored name (`"pending"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            "cancelled" => Ok(DeliveryStatus::Cancelled),
            other => Err(StoreError::corrupt(format!("unknown delivery status {other:?}"))),
        }
    }
}

/// One event's delivery to one endpoint, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Opaque id (`dlv_...`).
    pub id: String,
    /// The event, which is also the `webhook-id` of every attempt.
    pub event_id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// The workspace.
    pub workspace_id: String,
    /// The event's type.
    pub event_type: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<Timestamp>,
    /// The HTTP status of the last attempt, if it got an answer.
    pub last_status: Option<u16>,
    /// The transport error of the last attempt, if it got none.
    pub last_error: Option<String>,
    /// When the last attempt started.
    pub last_attempt_at: Option<Timestamp>,
    /// When the event was enqueued.
    pub created_at: Timestamp,
}

/// Which deliveries [`Store::webhook_deliveries`] returns; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryFilter {
    /// Only this status.
    pub status: Option<DeliveryStatus>,
    /// Only this endpoint.
    pub endpoint_id: Option<String>,
    /// Only this event.
    pub event_id: Option<String>,
    /// At most this many (newest first); 100 if `None`.
    pub limit: Option<u32>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// The delivery.
    pub delivery_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// How long it took, until the answer or the error.
    pub duration: Duration,
    /// The endpoint's HTTP status, if it answered.
    pub http_status: Option<u16>,
    /// The transport error (connect, timeout, ...), if it did not.
    pub error: Option<String>,
}

/// A delivery the dispatcher holds the lease of.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// The delivery's id (`dlv_...`).
    pub id: String,
    /// The event's id, sent as `webhook-id`.
    pub event_id: String,
    /// The endpoint it goes to.
    pub endpoint_id: String,
    /// The endpoint's workspace.
    pub workspace_id: String,
    /// Where it is POSTed.
    pub url: String,
    /// The endpoint's signing secret.
    pub secret: String,
    /// The signed body.
    pub body: String,
    /// Proves the lease when the attempt is recorded.
    pub lease_token: String,
}

/// What one attempt got back.
#[derive(Debug, Clone)]
pub enum AttemptResult {
    /// The endpoint answered with this status.
    Http(u16),
    /// No answer: connect error, timeout, ...
    Transport(String),
}

const ENDPOINT_COLUMNS: &str =
    "id, workspace_id, url, secret, event_types, enabled, disabled_reason, created_at";

const DELIVERY_COLUMNS: &str = "id, event_id, endpoint_id, workspace_id, event_type, status, \
                                attempts, next_attempt_at, last_status, last_error, \
                                last_attempt_at, created_at";

fn endpoint_from_row(row: &AnyRow) -> Result<WebhookEndpoint> {
    Ok(WebhookEndpoint {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        url: row.try_get("url")?,
        secret: row.try_get("secret")?,
        event_types: from_json(&row.try_get::<String, _>("event_types")?, "event types")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        disabled_reason: row.try_get("disabled_reason")?,
        created_at: timestamp(row.try_get("created_at")?),
    })
}

/// `(attempt, started_at, duration_ms, http_status, error)`.
type AttemptRow = (i64, i64, i64, Option<i64>, Option<String>);

fn count(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn http_status(v: Option<i64>) -> Option<u16> {
    v.and_then(|s| u16::try_from(s).ok())
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery> {
    Ok(Delivery {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        endpoint_id: row.try_get("endpoint_id")?,
        workspace_id: row.try_get("workspace_id")?,
        event_type: row.try_get("event_type")?,
        status: DeliveryStatus::parse(&row.try_get::<String, _>("status")?)?,
        attempts: count(row.try_get("attempts")?),
        next_attempt_at: row.try_get::<Option<i64>, _>("next_attempt_at")?.map(timestamp),
        last_status: http_status(row.try_get("last_status")?),
        last_error: row.try_get("last_error")?,
        last_attempt_at: row.try_get::<Option<i64>, _>("last_attempt_at")?.map(timestamp),
        created_at: timestamp(row.try_get("created_at")?),
    })
}

fn validate_url(url: &str) -> Result<()> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| StoreError::validation("url", e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(StoreError::validation("url", "must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(StoreError::validation("url", "must have a host"));
    }
    Ok(())
}

fn validate_event_type(event_type: &str) -> Result<()> {
    if event_type.is_empty() || event_type.len() > 100 || event_type.trim() != event_type {
        return Err(StoreError::validation(
            "event_type",
            "must be 1 to 100 bytes without surrounding spaces",
        ));
    }
    Ok(())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Adds an endpoint receiving the `event_types` (empty: all) of the workspace, with a fresh
    /// signing secret.
    pub async fn add_webhook_endpoint(
        &self,
        workspace_id: &str,
        url: &str,
        event_types: Vec<String>,
    ) -> Result<WebhookEndpoint> {
        validate_url(url)?;
        for t in &event_types {
            validate_event_type(t)?;
        }
        let id = new_id("ep");
        let now = now_ms();
        sqlx::query(
            "INSERT INTO webhook_endpoints
                (id, workspace_id, url, secret, event_types, enabled, disabled_reason,
                 created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 1, NULL, $6, $6)",
        )
        .bind(&id)
        .bind(workspace_id)
        .bind(url)
        .bind(generate_secret())
        .bind(json_param(&event_types, "event_types")?)
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(missing_parent("workspace", workspace_id))?;
        self.webhook_endpoint(&id).await
    }

    /// The endpoint `id`.
    pub async fn webhook_endpoint(&self, id: &str) -> Result<WebhookEndpoint> {
        let row =
            sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?
                .ok_or_else(|| StoreError::not_found("webhook endpoint", id))?;
        endpoint_from_row(&row)
    }

    /// The workspace's endpoints, oldest first, enabled or not.
    pub async fn webhook_endpoints(&self, workspace_id: &str) -> Result<Vec<WebhookEndpoint>> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE workspace_id = $1
             ORDER BY created_at, id"
        ))
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    /// Disables the endpoint, recording why, and cancels its pending deliveries. Disabling a
    /// disabled endpoint keeps the first reason.
    pub async fn disable_webhook_endpoint(
        &self,
        id: &str,
        reason: &str,
    ) -> Result<WebhookEndpoint> {
        let mut tx = self.pool().begin().await?;
        disable_endpoint(&mut tx, id, reason, now_ms()).await?;
        tx.commit().await?;
        self.webhook_endpoint(id).await
    }

    /// Enqueues event `event_id` for every enabled endpoint of the workspace that wants
    /// `event_type`, and returns the deliveries' ids. The body is fixed here (`type`,
    /// `timestamp` = now, `data`), so retries send the same bytes.
    ///
    /// Idempotent on `event_id`: the fan-out happens once, and enqueueing the same event again
    /// returns the same deliveries and creates nothing (the same id with another workspace or
    /// type is a [`StoreError::Conflict`]). One short transaction; the dispatchers of this
    /// store are woken at once.
    pub async fn enqueue_webhook(
        &self,
        workspace_id: &str,
        event_id: &str,
        event_type: &str,
        data: serde_json::Value,
    ) -> Result<Vec<String>> {
        self.enqueue_webhook_at(workspace_id, event_id, event_type, data, None).await
    }

    /// [`Store::enqueue_webhook`] of an event that occurred at `occurred_at` (the envelope's
    /// `timestamp`; the session passes its workflow clock, so the envelope agrees with the
    /// window's times even under time skipping). `None` is the store's clock. The outbox's own
    /// bookkeeping (due times, `created_at` of deliveries) stays on the store's clock, and
    /// every attempt's `webhook-timestamp` is its wall-clock send time.
    pub async fn enqueue_webhook_at(
        &self,
        workspace_id: &str,
        event_id: &str,
        event_type: &str,
        data: serde_json::Value,
        occurred_at: Option<Timestamp>,
    ) -> Result<Vec<String>> {
        validate_id("event_id", event_id)?;
        validate_event_type(event_type)?;
        let now = now_ms();
        let body = event_body(event_type, occurred_at.unwrap_or(timestamp(now)), &data);
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO webhook_events (id, workspace_id, event_type, body, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(event_id)
        .bind(workspace_id)
        .bind(event_type)
        .bind(&body)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(missing_parent("workspace", workspace_id))?
        .rows_affected();
        if inserted == 0 {
            let (ws, ty): (String, String) =
                sqlx::query_as("SELECT workspace_id, event_type FROM webhook_events WHERE id = $1")
                    .bind(event_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if ws != workspace_id || ty != event_type {
                return Err(StoreError::conflict(format!(
                    "event {event_id} was already enqueued as {ty} of workspace {ws}"
                )));
            }
            let ids: Vec<(String,)> =
                sqlx::query_as("SELECT id FROM webhook_deliveries WHERE event_id = $1 ORDER BY id")
                    .bind(event_id)
                    .fetch_all(&mut *tx)
                    .await?;
            return Ok(ids.into_iter().map(|(id,)| id).collect());
        }
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
             WHERE workspace_id = $1 AND enabled = 1 ORDER BY id"
        ))
        .bind(workspace_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut ids = Vec::new();
        for row in &rows {
            let endpoint = endpoint_from_row(row)?;
            if !endpoint.wants(event_type) {
                continue;
            }
            let id = new_id("dlv");
            sqlx::query(
                "INSERT INTO webhook_deliveries
                    (id, event_id, endpoint_id, workspace_id, event_type, status, attempts,
                     next_attempt_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $6)
                 ON CONFLICT (event_id, endpoint_id) DO NOTHING",
            )
            .bind(&id)
            .bind(event_id)
            .bind(&endpoint.id)
            .bind(workspace_id)
            .bind(event_type)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        ids.sort();
        if !ids.is_empty() {
            self.wake_webhooks();
        }
        Ok(ids)
    }

    /// The `data` of the stored event `event_id` of the workspace, if it was enqueued.
    pub async fn webhook_event_data(
        &self,
        workspace_id: &str,
        event_id: &str,
    ) -> Result<Option<serde_json::Value>> {
        let body: Option<(String,)> =
            sqlx::query_as("SELECT body FROM webhook_events WHERE id = $1 AND workspace_id = $2")
                .bind(event_id)
                .bind(workspace_id)
                .fetch_optional(self.pool())
                .await?;
        let Some((body,)) = body else { return Ok(None) };
        let mut envelope: serde_json::Value = from_json(&body, "webhook event")?;
        Ok(Some(envelope["data"].take()))
    }

    /// The workspace's delivery log, newest first.
    pub async fn webhook_deliveries(
        &self,
        workspace_id: &str,
        filter: &DeliveryFilter,
    ) -> Result<Vec<Delivery>> {
        let mut sql =
            format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE workspace_id = $1");
        let mut binds: Vec<&str> = vec![workspace_id];
        let conditions = [
            ("status", filter.status.map(DeliveryStatus::as_str)),
            ("endpoint_id", filter.endpoint_id.as_deref()),
            ("event_id", filter.event_id.as_deref()),
        ];
        for (column, value) in conditions {
            if let Some(value) = value {
                binds.push(value);
                sql.push_str(&format!(" AND {column} = ${}", binds.len()));
            }
        }
        sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT ${}", binds.len() + 1));
        let mut query = sqlx::query(&sql);
        for value in binds {
            query = query.bind(value);
        }
        let rows =
            query.bind(i64::from(filter.limit.unwrap_or(100))).fetch_all(self.pool()).await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// The delivery `id`.
    pub async fn webhook_delivery(&self, id: &str) -> Result<Delivery> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::not_found("webhook delivery", id))?;
        delivery_from_row(&row)
    }

    /// Every attempt of the delivery, first first.
    pub async fn webhook_attempts(&self, delivery_id: &str) -> Result<Vec<DeliveryAttempt>> {
        let rows: Vec<AttemptRow> = sqlx::query_as(
            "SELECT attempt, started_at, duration_ms, http_status, error FROM webhook_attempts
             WHERE delivery_id = $1 ORDER BY attempt",
        )
        .bind(delivery_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(attempt, started_at, duration_ms, status, error)| DeliveryAttempt {
                delivery_id: delivery_id.to_owned(),
                attempt: count(attempt),
                started_at: timestamp(started_at),
                duration: Duration::from_millis(u64::try_from(duration_ms).unwrap_or(0)),
                http_status: http_status(status),
                error,
            })
            .collect())
    }

    /// Leases up to `limit` due deliveries for `lease`, and returns them with what sending
    /// needs. The claim is one conditional `UPDATE`: its conditions are repeated outside the
    /// sub-select so that Postgres, re-checking a row another dispatcher just leased, skips it.
    pub async fn claim_webhook_deliveries(
        &self,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        let now = now_ms();
        let token = new_id("lease");
        let claimed = sqlx::query(
            "UPDATE webhook_deliveries SET lease_until = $1, lease_token = $2, updated_at = $3
             WHERE id IN (
                 SELECT id FROM webhook_deliveries
                 WHERE status = 'pending' AND next_attempt_at <= $3
                   AND (lease_until IS NULL OR lease_until <= $3)
                 ORDER BY next_attempt_at LIMIT $4)
               AND status = 'pending' AND next_attempt_at <= $3
               AND (lease_until IS NULL OR lease_until <= $3)",
        )
        .bind(now.saturating_add(millis(lease)))
        .bind(&token)
        .bind(now)
        .bind(i64::from(limit))
        .execute(self.pool())
        .await?
        .rows_affected();
        if claimed == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT d.id, d.event_id, d.endpoint_id, d.workspace_id, e.body, p.url, p.secret
             FROM webhook_deliveries d
             JOIN webhook_events e ON e.id = d.event_id
             JOIN webhook_endpoints p ON p.id = d.endpoint_id
             WHERE d.lease_token = $1 ORDER BY d.next_attempt_at, d.id",
        )
        .bind(&token)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ClaimedDelivery {
                    id: row.try_get("id")?,
                    event_id: row.try_get("event_id")?,
                    endpoint_id: row.try_get("endpoint_id")?,
                    workspace_id: row.try_get("workspace_id")?,
                    url: row.try_get("url")?,
                    secret: row.try_get("secret")?,
                    body: row.try_get("body")?,
                    lease_token: token.clone(),
                })
            })
            .collect()
    }

    /// Records one attempt and moves the delivery on: delivered on 2xx; on 410 Gone the
    /// endpoint is disabled and its pending deliveries cancelled; otherwise retried after
    /// `retry_schedule[n - 1]` (`n` = attempts so far) or failed once the schedule is used up.
    /// An attempt made under a lease that expired meanwhile is logged, and still counts as a
    /// success, but leaves the retry decision to the lease's new holder.
    pub async fn record_webhook_attempt(
        &self,
        claimed: &ClaimedDelivery,
        started_at: i64,
        duration: Duration,
        result: &AttemptResult,
        retry_schedule: &[Duration],
    ) -> Result<DeliveryStatus> {
        let now = now_ms();
        let (last_status, last_error) = match result {
            AttemptResult::Http(status) => (Some(i64::from(*status)), None),
            AttemptResult::Transport(error) => (None, Some(error.as_str())),
        };
        let mut tx = self.pool().begin().await?;
        let (attempts, status, lease_token): (i64, String, Option<String>) = sqlx::query_as(
            "UPDATE webhook_deliveries
             SET attempts = attempts + 1, last_status = $2, last_error = $3,
                 last_attempt_at = $4, updated_at = $5
             WHERE id = $1
             RETURNING attempts, status, lease_token",
        )
        .bind(&claimed.id)
        .bind(last_status)
        .bind(last_error)
        .bind(started_at)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO webhook_attempts
                (delivery_id, attempt, started_at, duration_ms, http_status, error)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&claimed.id)
        .bind(attempts)
        .bind(started_at)
        .bind(millis(duration))
        .bind(last_status)
        .bind(last_error)
        .execute(&mut *tx)
        .await?;
        let status = DeliveryStatus::parse(&status)?;
        let ours = lease_token.as_deref() == Some(claimed.lease_token.as_str());
        let outcome = match result {
            _ if status != DeliveryStatus::Pending => status,
            AttemptResult::Http(200..=299) => {
                finish(&mut tx, &claimed.id, DeliveryStatus::Delivered, None, now).await?;
                DeliveryStatus::Delivered
            }
            _ if !ours => status,
            AttemptResult::Http(410) => {
                finish(&mut tx, &claimed.id, DeliveryStatus::Failed, None, now).await?;
                disable_endpoint(&mut tx, &claimed.endpoint_id, "endpoint answered 410 Gone", now)
                    .await?;
                DeliveryStatus::Failed
            }
            _ => match usize::try_from(attempts)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| retry_schedule.get(i))
            {
                Some(delay) => {
                    let next = now.saturating_add(millis(*delay));
                    finish(&mut tx, &claimed.id, DeliveryStatus::Pending, Some(next), now).await?;
                    DeliveryStatus::Pending
                }
                None => {
                    finish(&mut tx, &claimed.id, DeliveryStatus::Failed, None, now).await?;
                    DeliveryStatus::Failed
                }
            },
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// When the earliest pending delivery becomes claimable (its due time, or its lease's
    /// expiry if it is leased), in epoch milliseconds.
    pub async fn next_webhook_due(&self) -> Result<Option<i64>> {
        let (due,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at
                             THEN lease_until ELSE next_attempt_at END)
             FROM webhook_deliveries WHERE status = 'pending'",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(due)
    }
}

async fn finish(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    status: DeliveryStatus,
    next_attempt_at: Option<i64>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE webhook_deliveries
         SET status = $2, next_attempt_at = $3, lease_until = NULL, lease_token = NULL,
             updated_at = $4
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(next_attempt_at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn disable_endpoint(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<()> {
    let updated = sqlx::query(
        "UPDATE webhook_endpoints
         SET enabled = 0, disabled_reason = COALESCE(disabled_reason, $2), updated_at = $3
         WHERE id = $1",
    )
    .bind(id)
    .bind(reason)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(StoreError::not_found("webhook endpoint", id));
    }
    sqlx::query(
        "UPDATE webhook_deliveries
         SET status = 'cancelled', next_attempt_at = NULL, lease_until = NULL,
             lease_token = NULL, updated_at = $2
         WHERE endpoint_id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
