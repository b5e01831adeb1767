//! Workspaces and their channel senders.

use convo_domain::{Channel, Timestamp, WorkspaceSettings};
use serde::{Deserialize, Serialize};
use sqlx::{Row, any::AnyRow};

use super::{
    Result, Store, StoreError, error::missing_parent, from_json, json_param, new_id, now_ms,
    timestamp,
};

/// A tenant and its settings (policy overrides, rates, compliance texts, inactivity ping).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// Its id, chosen by the caller.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Everything the workspace configures.
    pub settings: WorkspaceSettings,
    /// When it was first stored.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// How a workspace reaches its contacts on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelConfig {
    /// The channel's public id (`ch_...`), unique across workspaces, so an API caller can name
    /// a channel and a foreign one is recognised as such. Assigned by the store on first
    /// upsert (leave it empty); an upsert never changes it.
    #[serde(default)]
    pub id: String,
    /// The workspace.
    pub workspace_id: String,
    /// The channel.
    pub channel: Channel,
    /// Which provider carries it (`"meta"`, `"twilio"`, `"smtp"`, ...).
    pub provider: String,
    /// Provider settings (credentials references, API versions). Opaque to the store.
    pub config: serde_json::Value,
    /// The business's address on the channel: a WhatsApp phone number id, an SMS from-number,
    /// a from e-mail address.
    pub sender: String,
    /// Disabled channels are kept for history but must not be sent on.
    pub enabled: bool,
}

pub(super) fn validate_id(field: &'static str, id: &str) -> Result<()> {
    if id.trim().is_empty() {
        return Err(StoreError::validation(field, "must not be empty"));
    }
    if id.len() > 200 {
        return Err(StoreError::validation(field, "must be at most 200 bytes"));
    }
    Ok(())
}

pub(super) fn parse_channel(s: &str) -> Result<Channel> {
    Channel::ALL
        .into_iter()
        .find(|c| c.as_str() == s)
        .ok_or_else(|| StoreError::corrupt(format!("unknown channel {s:?}")))
}

fn workspace_from_row(row: &AnyRow) -> Result<Workspace> {
    Ok(Workspace {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        settings: from_json(&row.try_get::<String, _>("settings")?, "workspace settings")?,
        created_at: timestamp(row.try_get("created_at")?),
        updated_at: timestamp(row.try_get("updated_at")?),
    })
}

fn channel_from_row(row: &AnyRow) -> Result<ChannelConfig> {
    Ok(ChannelConfig {
        id: row.try_get::<Option<String>, _>("id")?.unwrap_or_default(),
        workspace_id: row.try_get("workspace_id")?,
        channel: parse_channel(&row.try_get::<String, _>("channel")?)?,
        provider: row.try_get("provider")?,
        config: from_json(&row.try_get::<String, _>("config")?, "channel config")?,
        sender: row.try_get("sender")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
    })
}

const CHANNEL_COLUMNS: &str = "id, workspace_id, channel, provider, config, sender, enabled";

impl Store {
    /// Creates the workspace or replaces its name and settings.
    pub async fn upsert_workspace(
        &self,
        id: &str,
        name: &str,
        settings: &WorkspaceSettings,
    ) -> Result<Workspace> {
        validate_id("workspace_id", id)?;
        if name.trim().is_empty() {
            return Err(StoreError::validation("name", "must not be empty"));
        }
        let now = now_ms();
        sqlx::query(
            "INSERT INTO workspaces (id, name, settings, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (id) DO UPDATE
             SET name = excluded.name, settings = excluded.settings, updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(name.trim())
        .bind(json_param(settings, "settings")?)
        .bind(now)
        .execute(self.pool())
        .await?;
        self.workspace(id).await
    }

    /// Changes the workspace's settings with `change`, atomically: concurrent changes (say, the
    /// rates of two channels) both land. Sessions read the settings when they open, so a
    /// change reaches sessions that open afterwards; running ones keep their configuration.
    pub async fn update_workspace_settings<F>(&self, id: &str, change: F) -> Result<Workspace>
    where
        F: FnOnce(&mut WorkspaceSettings) + Send,
    {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        // A write first: it takes SQLite's write lock and Postgres's row lock before the read.
        let touched = sqlx::query("UPDATE workspaces SET updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if touched == 0 {
            return Err(StoreError::not_found("workspace", id));
        }
        let (text,): (String,) = sqlx::query_as("SELECT settings FROM workspaces WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let mut settings: WorkspaceSettings = from_json(&text, "workspace settings")?;
        change(&mut settings);
        sqlx::query("UPDATE workspaces SET settings = $2 WHERE id = $1")
            .bind(id)
            .bind(json_param(&settings, "settings")?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.workspace(id).await
    }

    /// The workspace `id`.
    pub async fn workspace(&self, id: &str) -> Result<Workspace> {
        let row = sqlx::query(
            "SELECT id, name, settings, created_at, updated_at FROM workspaces WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::not_found("workspace", id))?;
        workspace_from_row(&row)
    }

    /// Every workspace, by id.
    pub async fn workspaces(&self) -> Result<Vec<Workspace>> {
        let rows = sqlx::query(
            "SELECT id, name, settings, created_at, updated_at FROM workspaces ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(workspace_from_row).collect()
    }

    /// Creates or replaces the workspace's configuration of `config.channel`.
    pub async fn upsert_channel(&self, config: &ChannelConfig) -> Result<ChannelConfig> {
        validate_id("workspace_id", &config.workspace_id)?;
        if config.provider.trim().is_empty() {
            return Err(StoreError::validation("provider", "must not be empty"));
        }
        if config.sender.trim().is_empty() {
            return Err(StoreError::validation("sender", "must not be empty"));
        }
        let now = now_ms();
        sqlx::query(
            "INSERT INTO channels
                (workspace_id, channel, provider, config, sender, enabled, created_at, updated_at,
                 id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)
             ON CONFLICT (workspace_id, channel) DO UPDATE
             SET provider = excluded.provider, config = excluded.config,
                 sender = excluded.sender, enabled = excluded.enabled,
                 updated_at = excluded.updated_at",
        )
        .bind(&config.workspace_id)
        .bind(config.channel.as_str())
        .bind(config.provider.trim())
        .bind(json_param(&config.config, "config")?)
        .bind(config.sender.trim())
        .bind(i64::from(config.enabled))
        .bind(now)
        .bind(new_id("ch"))
        .execute(self.pool())
        .await
        .map_err(missing_parent("workspace", config.workspace_id.clone()))?;
        self.channel(&config.workspace_id, config.channel).await
    }

    /// The workspace's configuration of `channel`.
    pub async fn channel(&self, workspace_id: &str, channel: Channel) -> Result<ChannelConfig> {
        let row = sqlx::query(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE workspace_id = $1 AND channel = $2"
        ))
        .bind(workspace_id)
        .bind(channel.as_str())
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::not_found("channel", format!("{workspace_id}/{channel}")))?;
        channel_from_row(&row)
    }

    /// Every channel the workspace configured, in channel-name order.
    pub async fn channels(&self, workspace_id: &str) -> Result<Vec<ChannelConfig>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE workspace_id = $1 ORDER BY channel"
        ))
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(channel_from_row).collect()
    }

    /// The channel whose public id is `id`, in whichever workspace it is; callers compare
    /// its `workspace_id` to tell a foreign channel from an unknown one.
    pub async fn channel_by_id(&self, id: &str) -> Result<ChannelConfig> {
        let row = sqlx::query(&format!("SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::not_found("channel", id))?;
        channel_from_row(&row)
    }

    /// Every workspace's channels of kind `channel`: how an inbound provider webhook, which
    /// names the receiving address but not the workspace, finds where it belongs.
    pub async fn channels_of_kind(&self, channel: Channel) -> Result<Vec<ChannelConfig>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE channel = $1 ORDER BY workspace_id"
        ))
        .bind(channel.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(channel_from_row).collect()
    }
}
