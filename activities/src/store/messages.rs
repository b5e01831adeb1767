//! The message log: every message in and out, with its provider status.

use convo_domain::{Channel, Direction, MessageId, Timestamp};
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
}

const MESSAGE_COLUMNS: &str = "id, workspace_id, contact_id, channel, direction, content, \
                               status, provider_message_id, error, created_at, updated_at";

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
                                   status, provider_message_id, error, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10)
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
        self.message(id).await
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
