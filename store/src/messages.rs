//! The message log: every message in and out, with its provider status, and the delivery
//! status history of outbound messages.
//!
//! # Delivery statuses
//! An outbound message's current [`DeliveryStatus`] (`messages.delivery_status`) only moves
//! through [`convo_domain::delivery::transition`], applied with a compare-and-set on the row:
//! concurrent callbacks for one message serialise on it, a loser re-reads and decides again,
//! so `read` never goes back to `delivered` whatever order the callbacks commit in. Each move
//! adds one row to `message_statuses` (keyed by message and status, so a repeat adds nothing).

use convo_domain::{
    Channel, DeliveryStatus, Direction, HoldId, MessageId, Timestamp,
    delivery::{Transition, transition},
};
use serde::{Deserialize, Serialize};
use sqlx::{Row, any::AnyRow};

use super::{
    Result, Store, StoreError, error::missing_parent, from_json, json_param, now_ms, timestamp,
    timestamp_param, workspaces::parse_channel,
};

/// Where a message stands with its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Outbound, not yet answered by the provider.
    Queued,
    /// Outbound, accepted by the provider (it may still fail later, asynchronously).
    Accepted,
    /// Outbound, refused by the provider (synchronously or by a later status callback).
    Rejected,
    /// Inbound, received from the contact.
    Received,
}

impl MessageStatus {
    /// The stored name (`"queued"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Accepted => "accepted",
            MessageStatus::Rejected => "rejected",
            MessageStatus::Received => "received",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "queued" => Ok(MessageStatus::Queued),
            "accepted" => Ok(MessageStatus::Accepted),
            "rejected" => Ok(MessageStatus::Rejected),
            "received" => Ok(MessageStatus::Received),
            other => Err(StoreError::corrupt(format!("unknown message status {other:?}"))),
        }
    }
}

fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

fn parse_direction(s: &str) -> Result<Direction> {
    match s {
        "inbound" => Ok(Direction::Inbound),
        "outbound" => Ok(Direction::Outbound),
        other => Err(StoreError::corrupt(format!("unknown direction {other:?}"))),
    }
}

/// A message to log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// Its id: the provider's id for inbound messages, the idempotency key for outbound ones.
    pub id: MessageId,
    /// The workspace.
    pub workspace_id: String,
    /// The contact.
    pub contact_id: String,
    /// The channel.
    pub channel: Channel,
    /// Which way.
    pub direction: Direction,
    /// What it says (the domain's content, or a provider payload), as JSON.
    pub content: serde_json::Value,
    /// Its initial status.
    pub status: MessageStatus,
    /// The provider's id, if already known.
    pub provider_message_id: Option<String>,
    /// When it happened (the contact's send time for inbound messages); the store's clock if
    /// `None`.
    pub at: Option<Timestamp>,
}

/// A logged message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Its id.
    pub id: MessageId,
    /// The workspace.
    pub workspace_id: String,
    /// The contact.
    pub contact_id: String,
    /// The channel.
    pub channel: Channel,
    /// Which way.
    pub direction: Direction,
    /// What it says.
    pub content: serde_json::Value,
    /// Where it stands.
    pub status: MessageStatus,
    /// The provider's id.
    pub provider_message_id: Option<String>,
    /// The provider's error, for a rejected message.
    pub error: Option<String>,
    /// When it was sent or received.
    pub created_at: Timestamp,
    /// When its status last changed.
    pub updated_at: Timestamp,
    /// An outbound message's delivery status (`None` for inbound messages).
    #[serde(default)]
    pub delivery_status: Option<DeliveryStatus>,
}

const MESSAGE_COLUMNS: &str = "id, workspace_id, contact_id, channel, direction, content, \
                               status, provider_message_id, error, created_at, updated_at, \
                               delivery_status";

/// A delivery status as a provider (or the sandbox, or the send itself) reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The status.
    pub status: DeliveryStatus,
    /// The provider's error code, for `failed` (`131047`, `30003`).
    pub error_code: Option<String>,
    /// The provider's error text, for `failed`.
    pub error_message: Option<String>,
    /// Who reported it: `whatsapp`, `twilio`, `rbm`, `sandbox`, or `convo` for the send's own
    /// outcome.
    pub source: String,
    /// When the provider says it happened, if it says.
    pub provider_at: Option<Timestamp>,
}

/// One entry of a message's status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEvent {
    /// The status reached.
    pub status: DeliveryStatus,
    /// The provider's error code, for `failed`.
    pub error_code: Option<String>,
    /// The provider's error text, for `failed`.
    pub error_message: Option<String>,
    /// Who reported it ([`StatusReport::source`]).
    pub source: String,
    /// When the provider says it happened.
    pub provider_at: Option<Timestamp>,
    /// When convo recorded it.
    pub recorded_at: Timestamp,
}

/// What [`Store::apply_delivery_status`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusApplied {
    /// The message after the report.
    pub message: MessageRecord,
    /// Its status before the report.
    pub previous: DeliveryStatus,
    /// What the report did: only [`Transition::Advance`] changed anything.
    pub transition: Transition,
}

/// The billing session a message belongs to, as the ledger and the message log show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingSessionOf {
    /// The session's hold (placed by the session's first billed send, `hold:<message id>`).
    pub hold_id: HoldId,
    /// Whether any outbound message of that billing session reached the contact.
    pub any_delivered: bool,
}

fn delivery_from(row: &AnyRow) -> Result<Option<DeliveryStatus>> {
    let raw: Option<String> = row.try_get("delivery_status")?;
    raw.map(|s| {
        DeliveryStatus::parse(&s)
            .ok_or_else(|| StoreError::corrupt(format!("unknown delivery status {s:?}")))
    })
    .transpose()
}

fn message_from_row(row: &AnyRow) -> Result<MessageRecord> {
    Ok(MessageRecord {
        id: MessageId::new(row.try_get::<String, _>("id")?),
        workspace_id: row.try_get("workspace_id")?,
        contact_id: row.try_get("contact_id")?,
        channel: parse_channel(&row.try_get::<String, _>("channel")?)?,
        direction: parse_direction(&row.try_get::<String, _>("direction")?)?,
        content: from_json(&row.try_get::<String, _>("content")?, "message content")?,
        status: MessageStatus::parse(&row.try_get::<String, _>("status")?)?,
        provider_message_id: row.try_get("provider_message_id")?,
        error: row.try_get("error")?,
        created_at: timestamp(row.try_get("created_at")?),
        updated_at: timestamp(row.try_get("updated_at")?),
        delivery_status: delivery_from(row)?,
    })
}

impl Store {
    /// Logs a message. Idempotent on its id: logging the same id again returns the stored
    /// record unchanged (`false`: not created), so a retried activity logs once. The same id in
    /// another workspace is a [`StoreError::Conflict`].
    pub async fn record_message(&self, message: &NewMessage) -> Result<(MessageRecord, bool)> {
        if message.id.as_str().trim().is_empty() {
            return Err(StoreError::validation("id", "must not be empty"));
        }
        // The foreign key only knows contact ids; this also checks the contact's workspace.
        self.contact(&message.workspace_id, &message.contact_id).await?;
        let now = now_ms();
        let at = message.at.map(|t| timestamp_param(t, "at")).transpose()?.unwrap_or(now);
        let inserted = sqlx::query(
            "INSERT INTO messages (id, workspace_id, contact_id, channel, direction, content,
                                   status, provider_message_id, error, created_at, updated_at,
                                   delivery_status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, $11)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(message.id.as_str())
        .bind(&message.workspace_id)
        .bind(&message.contact_id)
        .bind(message.channel.as_str())
        .bind(direction_str(message.direction))
        .bind(json_param(&message.content, "content")?)
        .bind(message.status.as_str())
        .bind(message.provider_message_id.as_deref())
        .bind(at)
        .bind(now)
        .bind(initial_delivery(message).map(DeliveryStatus::as_str))
        .execute(self.pool())
        .await
        .map_err(missing_parent(
            "contact",
            format!("{}/{}", message.workspace_id, message.contact_id),
        ))?
        .rows_affected();
        let record = self.message(&message.id).await?;
        if record.workspace_id != message.workspace_id {
            return Err(StoreError::conflict(format!(
                "message {} belongs to another workspace",
                message.id
            )));
        }
        if inserted > 0
            && let Some(status) = initial_delivery(message)
        {
            self.insert_status_event(&message.id, status, None, None, "convo", None, at).await?;
        }
        Ok((record, inserted > 0))
    }

    /// Sets a message's status, and its provider id and error when given (a provider id once
    /// known is kept if a later update does not carry one).
    pub async fn set_message_status(
        &self,
        id: &MessageId,
        status: MessageStatus,
        provider_message_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<MessageRecord> {
        let updated = sqlx::query(
            "UPDATE messages
             SET status = $2, provider_message_id = COALESCE($3, provider_message_id),
                 error = $4, updated_at = $5
             WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(status.as_str())
        .bind(provider_message_id)
        .bind(error)
        .bind(now_ms())
        .execute(self.pool())
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::not_found("message", id.as_str()));
        }
        let record = self.message(id).await?;
        // The send's own outcome is a delivery status too: accepted is `sent`, refused is
        // `failed`; a callback that already moved the message further wins.
        let reported = match status {
            MessageStatus::Accepted => Some(DeliveryStatus::Sent),
            MessageStatus::Rejected => Some(DeliveryStatus::Failed),
            MessageStatus::Queued | MessageStatus::Received => None,
        };
        match reported {
            Some(status) if record.direction == Direction::Outbound => {
                let report = StatusReport {
                    status,
                    error_code: None,
                    error_message: error.map(str::to_owned),
                    source: "convo".to_owned(),
                    provider_at: None,
                };
                Ok(self.apply_delivery_status(id, &report).await?.message)
            }
            _ => Ok(record),
        }
    }

    /// Applies a reported delivery status to outbound message `id` through the domain's
    /// ordering rule; see the module docs. A `failed` report also marks the message
    /// `rejected` with the provider's error, and any later status `accepted`. Idempotent:
    /// the same report again is a [`Transition::Duplicate`] and changes nothing.
    pub async fn apply_delivery_status(
        &self,
        id: &MessageId,
        report: &StatusReport,
    ) -> Result<StatusApplied> {
        let provider_at =
            report.provider_at.map(|t| timestamp_param(t, "provider_at")).transpose()?;
        // A compare-and-set loses only to another report that committed in between, and
        // every win moves the status forward, so this ends after at most five rounds.
        for _ in 0..8 {
            let message = self.message(id).await?;
            if message.direction != Direction::Outbound {
                return Err(StoreError::validation(
                    "message_id",
                    "only outbound messages have delivery statuses",
                ));
            }
            let previous = message.delivery_status.unwrap_or(DeliveryStatus::Queued);
            let decided = transition(previous, report.status);
            if decided != Transition::Advance {
                return Ok(StatusApplied { message, previous, transition: decided });
            }
            let (status, error) = match report.status {
                DeliveryStatus::Failed => (
                    MessageStatus::Rejected,
                    Some(describe_error(report).unwrap_or_else(|| "failed".to_owned())),
                ),
                DeliveryStatus::Queued => (message.status, message.error.clone()),
                _ => (MessageStatus::Accepted, None),
            };
            let now = now_ms();
            let mut tx = self.pool().begin().await?;
            let moved = sqlx::query(
                "UPDATE messages SET delivery_status = $2, status = $3, error = $4, updated_at = $5
                 WHERE id = $1 AND COALESCE(delivery_status, 'queued') = $6",
            )
            .bind(id.as_str())
            .bind(report.status.as_str())
            .bind(status.as_str())
            .bind(error.as_deref())
            .bind(now)
            .bind(previous.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved == 0 {
                tx.rollback().await?;
                continue;
            }
            sqlx::query(
                "INSERT INTO message_statuses
                    (message_id, status, error_code, error_message, source, provider_at,
                     recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (message_id, status) DO NOTHING",
            )
            .bind(id.as_str())
            .bind(report.status.as_str())
            .bind(report.error_code.as_deref())
            .bind(report.error_message.as_deref())
            .bind(&report.source)
            .bind(provider_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            let message = self.message(id).await?;
            return Ok(StatusApplied { message, previous, transition: Transition::Advance });
        }
        Err(StoreError::conflict(format!("message {id}: its status kept changing")))
    }

    /// The status history of message `id`, in the order convo recorded it.
    pub async fn status_history(&self, id: &MessageId) -> Result<Vec<StatusEvent>> {
        let rows = sqlx::query(
            "SELECT status, error_code, error_message, source, provider_at, recorded_at
             FROM message_statuses WHERE message_id = $1",
        )
        .bind(id.as_str())
        .fetch_all(self.pool())
        .await?;
        let mut events = rows
            .iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                Ok(StatusEvent {
                    status: DeliveryStatus::parse(&status).ok_or_else(|| {
                        StoreError::corrupt(format!("unknown delivery status {status:?}"))
                    })?,
                    error_code: row.try_get("error_code")?,
                    error_message: row.try_get("error_message")?,
                    source: row.try_get("source")?,
                    provider_at: row.try_get::<Option<i64>, _>("provider_at")?.map(timestamp),
                    recorded_at: timestamp(row.try_get("recorded_at")?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // Statuses only move forward, so their order is the order they were reached in (the
        // clock may tie within a millisecond).
        let position = |s: DeliveryStatus| DeliveryStatus::ALL.iter().position(|x| *x == s);
        events.sort_by_key(|e| (e.recorded_at, position(e.status)));
        Ok(events)
    }

    /// The billing session outbound message `id` belongs to: the latest hold placed by a send
    /// to the same contact on the same channel at or before it, and whether any outbound
    /// message from that send on (up to the next hold's send) reached the contact. `None`
    /// when no hold covers it (a per-message template before any session).
    pub async fn billing_session_of(&self, id: &MessageId) -> Result<Option<BillingSessionOf>> {
        let message = self.message(id).await?;
        let created = timestamp_param(message.created_at, "created_at")?;
        let hold: Option<(String, i64)> = sqlx::query_as(
            "SELECT h.hold_id, m.created_at FROM holds h
             JOIN messages m ON h.hold_id = 'hold:' || m.id
             WHERE h.workspace_id = $1 AND m.workspace_id = $1 AND m.contact_id = $2
               AND m.channel = $3 AND m.direction = 'outbound' AND m.created_at <= $4
             ORDER BY m.created_at DESC, m.id DESC LIMIT 1",
        )
        .bind(&message.workspace_id)
        .bind(&message.contact_id)
        .bind(message.channel.as_str())
        .bind(created)
        .fetch_optional(self.pool())
        .await?;
        let Some((hold_id, start)) = hold else { return Ok(None) };
        let next: Option<(i64,)> = sqlx::query_as(
            "SELECT m.created_at FROM holds h
             JOIN messages m ON h.hold_id = 'hold:' || m.id
             WHERE h.workspace_id = $1 AND m.workspace_id = $1 AND m.contact_id = $2
               AND m.channel = $3 AND m.direction = 'outbound' AND m.created_at > $4
             ORDER BY m.created_at LIMIT 1",
        )
        .bind(&message.workspace_id)
        .bind(&message.contact_id)
        .bind(message.channel.as_str())
        .bind(start)
        .fetch_optional(self.pool())
        .await?;
        let end = next.map_or(i64::MAX, |(t,)| t);
        let (delivered,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM messages
             WHERE workspace_id = $1 AND contact_id = $2 AND channel = $3
               AND direction = 'outbound' AND created_at >= $4 AND created_at < $5
               AND delivery_status IN ('delivered', 'read')",
        )
        .bind(&message.workspace_id)
        .bind(&message.contact_id)
        .bind(message.channel.as_str())
        .bind(start)
        .bind(end)
        .fetch_one(self.pool())
        .await?;
        Ok(Some(BillingSessionOf { hold_id: HoldId::new(hold_id), any_delivered: delivered > 0 }))
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_status_event(
        &self,
        id: &MessageId,
        status: DeliveryStatus,
        error_code: Option<&str>,
        error_message: Option<&str>,
        source: &str,
        provider_at: Option<i64>,
        recorded_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO message_statuses
                (message_id, status, error_code, error_message, source, provider_at, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (message_id, status) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(status.as_str())
        .bind(error_code)
        .bind(error_message)
        .bind(source)
        .bind(provider_at)
        .bind(recorded_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The message `id`.
    pub async fn message(&self, id: &MessageId) -> Result<MessageRecord> {
        let row = sqlx::query(&format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::not_found("message", id.as_str()))?;
        message_from_row(&row)
    }

    /// How many messages the workspace sent on `channel` from `since` on: the volume its
    /// rate card's tiers are measured by.
    pub async fn outbound_volume(
        &self,
        workspace_id: &str,
        channel: Channel,
        since: Timestamp,
    ) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE workspace_id = $1 AND channel = $2
             AND direction = 'outbound' AND created_at >= $3",
        )
        .bind(workspace_id)
        .bind(channel.as_str())
        .bind(timestamp_param(since, "since")?)
        .fetch_one(self.pool())
        .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Which of `ids` are messages of the workspace: at most a few hundred ids per query, so
    /// any number may be asked about.
    pub async fn messages_of_workspace(
        &self,
        workspace_id: &str,
        ids: &[&str],
    ) -> Result<std::collections::HashSet<String>> {
        const CHUNK: usize = 500;
        let mut owned = std::collections::HashSet::new();
        for chunk in ids.chunks(CHUNK) {
            let placeholders =
                (2..chunk.len() + 2).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT id FROM messages WHERE workspace_id = $1 AND id IN ({placeholders})"
            );
            let mut query = sqlx::query_scalar::<_, String>(&sql).bind(workspace_id);
            for id in chunk {
                query = query.bind(*id);
            }
            owned.extend(query.fetch_all(self.pool()).await?);
        }
        Ok(owned)
    }

    /// The conversation with a contact, oldest first.
    pub async fn messages(
        &self,
        workspace_id: &str,
        contact_id: &str,
    ) -> Result<Vec<MessageRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE workspace_id = $1 AND contact_id = $2
             ORDER BY created_at, id"
        ))
        .bind(workspace_id)
        .bind(contact_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(message_from_row).collect()
    }
}

/// The delivery status an outbound message is logged with.
fn initial_delivery(message: &NewMessage) -> Option<DeliveryStatus> {
    match (message.direction, message.status) {
        (Direction::Outbound, MessageStatus::Queued) => Some(DeliveryStatus::Queued),
        (Direction::Outbound, MessageStatus::Accepted) => Some(DeliveryStatus::Sent),
        (Direction::Outbound, MessageStatus::Rejected) => Some(DeliveryStatus::Failed),
        _ => None,
    }
}

/// `"<code>: <message>"`, or whichever of the two the report has.
fn describe_error(report: &StatusReport) -> Option<String> {
    match (report.error_code.as_deref(), report.error_message.as_deref()) {
        (Some(c), Some(m)) if !m.is_empty() => Some(format!("{c}: {m}")),
        (Some(c), _) => Some(c.to_owned()),
        (None, Some(m)) => Some(m.to_owned()),
        (None, None) => None,
    }
}
