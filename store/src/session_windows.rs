//! Windows reported open and not yet reported ended, for the reconciler
//! (`convo_activities::reconcile`): the one place that notices a session run that ended without
//! ending its window (terminated, failed, timed out).

use convo_domain::{Channel, HoldId, Money, Timestamp};
use sqlx::Row;

use super::{Result, Store, error::missing_parent, now_ms, timestamp, workspaces::parse_channel};

/// A window reported open (`conversation.started`) and not yet ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenWindow {
    /// The session (the first run of its chain).
    pub session_id: String,
    /// The window's ordinal within the session.
    pub conversation: u32,
    /// The workspace.
    pub workspace_id: String,
    /// The contact.
    pub contact_id: String,
    /// The channel.
    pub channel: Channel,
    /// When it opened.
    pub opened_at: Timestamp,
}

impl Store {
    /// Records that the session's `conversation`th window opened. Idempotent.
    pub async fn window_opened(&self, window: &OpenWindow) -> Result<()> {
        sqlx::query(
            "INSERT INTO session_windows
                 (session_id, conversation, workspace_id, contact_id, channel, opened_at, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (session_id, conversation) DO NOTHING",
        )
        .bind(&window.session_id)
        .bind(i64::from(window.conversation))
        .bind(&window.workspace_id)
        .bind(&window.contact_id)
        .bind(window.channel.as_str())
        .bind(i64::try_from(window.opened_at.as_epoch_millis()).unwrap_or(i64::MAX))
        .bind(now_ms())
        .execute(self.pool())
        .await
        .map_err(missing_parent("workspace", &window.workspace_id))?;
        Ok(())
    }

    /// Records that the window ended (its `conversation.ended` is queued). Idempotent.
    pub async fn window_ended(&self, session_id: &str, conversation: u32) -> Result<()> {
        sqlx::query("DELETE FROM session_windows WHERE session_id = $1 AND conversation = $2")
            .bind(session_id)
            .bind(i64::from(conversation))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Up to `limit` windows still open that were recorded before `before`, oldest first.
    pub async fn open_windows(&self, before: Timestamp, limit: u32) -> Result<Vec<OpenWindow>> {
        let rows = sqlx::query(
            "SELECT session_id, conversation, workspace_id, contact_id, channel, opened_at
             FROM session_windows WHERE recorded_at < $1 ORDER BY recorded_at LIMIT $2",
        )
        .bind(i64::try_from(before.as_epoch_millis()).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(OpenWindow {
                    session_id: row.try_get("session_id")?,
                    conversation: u32::try_from(row.try_get::<i64, _>("conversation")?)
                        .unwrap_or(u32::MAX),
                    workspace_id: row.try_get("workspace_id")?,
                    contact_id: row.try_get("contact_id")?,
                    channel: parse_channel(&row.try_get::<String, _>("channel")?)?,
                    opened_at: timestamp(row.try_get("opened_at")?),
                })
            })
            .collect()
    }

    /// The contact's open holds placed before `before`: holds are keyed by the message they
    /// bill (`hold:{message_id}`), and messages by contact.
    pub async fn open_holds_of_contact(
        &self,
        workspace_id: &str,
        contact_id: &str,
        before: Timestamp,
    ) -> Result<Vec<(HoldId, Money)>> {
        let rows = sqlx::query(
            "SELECT h.hold_id, h.amount FROM holds h
             JOIN messages m ON h.hold_id = 'hold:' || m.id
             WHERE h.workspace_id = $1 AND h.status = 'open' AND m.contact_id = $2
               AND h.created_at <= $3
             ORDER BY h.created_at",
        )
        .bind(workspace_id)
        .bind(contact_id)
        .bind(i64::try_from(before.as_epoch_millis()).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("hold_id")?;
                let amount: i64 = row.try_get("amount")?;
                Ok((
                    HoldId::from(id.as_str()),
                    Money::from_minor(u64::try_from(amount).unwrap_or(0)),
                ))
            })
            .collect()
    }
}
