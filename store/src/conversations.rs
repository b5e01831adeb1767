//! The registry of composed conversations, and the read-only lookups the API makes by
//! address: a contact by phone or e-mail, a message by its provider id.

use convo_domain::{Channel, MessageId, Timestamp};
use serde::{Deserialize, Serialize};
use sqlx::{Row, any::AnyRow};

use super::{
    Contact, MessageRecord, Result, Store, StoreError, error::missing_parent, normalize_email,
    normalize_phone, now_ms, timestamp, workspaces::parse_channel, workspaces::validate_id,
};

/// A composed conversation: which workspace it belongs to and the channel it runs on. The
/// conversation's state lives in its workflow; this row only makes ownership checkable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationRecord {
    /// The conversation id (its workflow id is `conversation/{id}`).
    pub id: String,
    /// The workspace.
    pub workspace_id: String,
    /// The channel.
    pub channel: Channel,
    /// The channel's public id.
    pub channel_id: String,
    /// When it was composed.
    pub created_at: Timestamp,
}

fn conversation_from_row(row: &AnyRow) -> Result<ConversationRecord> {
    Ok(ConversationRecord {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        channel: parse_channel(&row.try_get::<String, _>("channel")?)?,
        channel_id: row.try_get("channel_id")?,
        created_at: timestamp(row.try_get("created_at")?),
    })
}

impl Store {
    /// Registers a conversation. Idempotent on its id: registering it again returns the stored
    /// row (`false`: not created); the same id in another workspace is a conflict.
    pub async fn record_conversation(
        &self,
        id: &str,
        workspace_id: &str,
        channel: Channel,
        channel_id: &str,
    ) -> Result<(ConversationRecord, bool)> {
        validate_id("conversation_id", id)?;
        let inserted = sqlx::query(
            "INSERT INTO conversations (id, workspace_id, channel, channel_id, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(workspace_id)
        .bind(channel.as_str())
        .bind(channel_id)
        .bind(now_ms())
        .execute(self.pool())
        .await
        .map_err(missing_parent("workspace", workspace_id))?
        .rows_affected();
        let row = sqlx::query("SELECT * FROM conversations WHERE id = $1")
            .bind(id)
            .fetch_one(self.pool())
            .await?;
        let record = conversation_from_row(&row)?;
        if record.workspace_id != workspace_id {
            return Err(StoreError::conflict(format!(
                "conversation {id} belongs to another workspace"
            )));
        }
        Ok((record, inserted == 1))
    }

    /// The workspace's conversation `id`; another workspace's is [`StoreError::NotFound`].
    pub async fn conversation(&self, workspace_id: &str, id: &str) -> Result<ConversationRecord> {
        let row = sqlx::query(
            "SELECT id, workspace_id, channel, channel_id, created_at FROM conversations
             WHERE workspace_id = $1 AND id = $2",
        )
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::not_found("conversation", id))?;
        conversation_from_row(&row)
    }

    /// The workspace's contact with this address: an E.164 phone number (anything starting
    /// with `+` or `00`) or an e-mail address (anything with `@`), normalised first. `None` if
    /// no contact has it; a malformed address is a validation error naming `field`.
    pub async fn contact_by_address(
        &self,
        workspace_id: &str,
        address: &str,
    ) -> Result<Option<Contact>> {
        let (column, value) = if address.contains('@') {
            ("email", normalize_email(address)?)
        } else {
            ("phone", normalize_phone(address)?)
        };
        let id: Option<String> = sqlx::query(&format!(
            "SELECT id FROM contacts WHERE workspace_id = $1 AND {column} = $2"
        ))
        .bind(workspace_id)
        .bind(&value)
        .fetch_optional(self.pool())
        .await?
        .map(|row| row.try_get("id"))
        .transpose()?;
        match id {
            Some(id) => self.contact(workspace_id, &id).await.map(Some),
            None => Ok(None),
        }
    }

    /// The workspace's message the provider knows as `provider_message_id` (how delivery
    /// status callbacks name it), if any.
    pub async fn message_by_provider_id(
        &self,
        workspace_id: &str,
        provider_message_id: &str,
    ) -> Result<Option<MessageRecord>> {
        let id: Option<String> = sqlx::query(
            "SELECT id FROM messages WHERE workspace_id = $1 AND provider_message_id = $2
             ORDER BY created_at LIMIT 1",
        )
        .bind(workspace_id)
        .bind(provider_message_id)
        .fetch_optional(self.pool())
        .await?
        .map(|row| row.try_get("id"))
        .transpose()?;
        match id {
            Some(id) => self.message(&MessageId::new(id)).await.map(Some),
            None => Ok(None),
        }
    }
}
