//! Per-workspace API keys.
//!
//! A key is shown once, when it is created; the store keeps only its SHA-256 (hex) and a short
//! clear prefix for telling keys apart in listings. Authentication hashes the presented key and
//! looks the hash up, so no stored value can be replayed as a key. A plain hash (no salt, no
//! slow KDF) is enough because keys are 192 random bits, not passwords.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use convo_domain::Timestamp;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use sqlx::{Row, any::AnyRow};

use super::{
    Result, Store, StoreError,
    error::{is_unique_violation, missing_parent},
    new_id, now_ms, sha256_hex, timestamp,
    workspaces::validate_id,
};

/// Every generated key starts with this, so leaked keys are easy to grep for.
pub const API_KEY_PREFIX: &str = "cvk_";
/// How many leading characters of a key are stored (and listed) in clear.
const VISIBLE_PREFIX_LEN: usize = 12;
/// `last_used_at` is refreshed at most this often, so authentication is a read, not a write,
/// on almost every request.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

/// What a key may do. Each scope includes the ones before it: `admin` ⊇ `send` ⊇ `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyScope {
    /// Reads only: windows, conversations, messages, contacts, settings, deliveries.
    Read,
    /// Reads, and sends: messages, composes and campaigns, conversation actions, closing
    /// windows.
    Send,
    /// Everything: also the workspace's settings, rates, balance top-ups, webhook endpoints
    /// and templates.
    Admin,
}

impl ApiKeyScope {
    /// Every scope, narrowest first.
    pub const ALL: [ApiKeyScope; 3] = [ApiKeyScope::Read, ApiKeyScope::Send, ApiKeyScope::Admin];

    /// The name it is stored and shown under.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyScope::Read => "read",
            ApiKeyScope::Send => "send",
            ApiKeyScope::Admin => "admin",
        }
    }

    /// The scope called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether a key of this scope may do what `needed` guards.
    pub fn allows(self, needed: ApiKeyScope) -> bool {
        self >= needed
    }
}

impl std::fmt::Display for ApiKeyScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Opaque id (`key_...`), used to revoke it.
    pub id: String,
    /// The workspace the key acts for.
    pub workspace_id: String,
    /// A label chosen at creation.
    pub name: String,
    /// The key's first characters, e.g. `cvk_Ab3dE6gH`.
    pub prefix: String,
    /// What it may do.
    pub scope: ApiKeyScope,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last authenticated a request (to the minute).
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked; revoked keys authenticate nothing.
    pub revoked_at: Option<Timestamp>,
}

/// A key just created: the only time its plaintext exists outside the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    /// The stored record.
    pub key: ApiKey,
    /// The key to hand to the client (`cvk_...`).
    pub secret: String,
}

/// A fresh random key: [`API_KEY_PREFIX`] + 32 URL-safe base64 characters (192 bits).
pub fn generate_api_key() -> String {
    let mut bytes = [0u8; 24];
    // The OS random source failing is not something a caller could handle.
    SystemRandom::new().fill(&mut bytes).expect("the OS random source is available");
    format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn validate_secret(secret: &str) -> Result<()> {
    if secret.len() < 16 || secret.len() > 200 {
        return Err(StoreError::validation("key", "must be 16 to 200 characters"));
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StoreError::validation("key", "must be printable ASCII without spaces"));
    }
    Ok(())
}

const KEY_COLUMNS: &str =
    "id, workspace_id, name, prefix, scope, created_at, last_used_at, revoked_at";

fn key_from_row(row: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        scope: {
            let name: String = row.try_get("scope")?;
            ApiKeyScope::parse(&name)
                .ok_or_else(|| StoreError::corrupt(format!("api key scope {name:?}")))?
        },
        created_at: timestamp(row.try_get("created_at")?),
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(timestamp),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(timestamp),
    })
}

impl Store {
    /// Creates a random key for the workspace and returns it with its plaintext, which is not
    /// stored and cannot be shown again.
    pub async fn create_api_key(&self, workspace_id: &str, name: &str) -> Result<CreatedApiKey> {
        self.create_scoped_api_key(workspace_id, name, ApiKeyScope::Admin).await
    }

    /// Like [`Store::create_api_key`], for a key that may do only what `scope` allows.
    pub async fn create_scoped_api_key(
        &self,
        workspace_id: &str,
        name: &str,
        scope: ApiKeyScope,
    ) -> Result<CreatedApiKey> {
        self.insert_api_key(workspace_id, name, &generate_api_key(), scope).await
    }

    /// Makes `secret` a key of the workspace (for operator-chosen keys such as
    /// `CONVO_DEV_API_KEY`). Idempotent: if the workspace already has this key, unrevoked, it
    /// is returned; a key of another workspace, or a revoked one, is a conflict.
    pub async fn ensure_api_key(
        &self,
        workspace_id: &str,
        name: &str,
        secret: &str,
    ) -> Result<CreatedApiKey> {
        validate_secret(secret)?;
        if let Some(existing) = self.api_key_by_hash(&sha256_hex(secret.as_bytes())).await? {
            if existing.workspace_id != workspace_id || existing.revoked_at.is_some() {
                return Err(StoreError::conflict(
                    "this key is revoked or belongs to another workspace",
                ));
            }
            return Ok(CreatedApiKey { key: existing, secret: secret.to_owned() });
        }
        self.insert_api_key(workspace_id, name, secret, ApiKeyScope::Admin).await
    }

    async fn insert_api_key(
        &self,
        workspace_id: &str,
        name: &str,
        secret: &str,
        scope: ApiKeyScope,
    ) -> Result<CreatedApiKey> {
        validate_id("workspace_id", workspace_id)?;
        validate_secret(secret)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(StoreError::validation("name", "must be 1 to 100 characters"));
        }
        let id = new_id("key");
        let prefix: String = secret.chars().take(VISIBLE_PREFIX_LEN).collect();
        sqlx::query(
            "INSERT INTO api_keys (id, workspace_id, name, prefix, hash, created_at, scope)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(workspace_id)
        .bind(name)
        .bind(&prefix)
        .bind(sha256_hex(secret.as_bytes()))
        .bind(now_ms())
        .bind(scope.as_str())
        .execute(self.pool())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::conflict("this key already exists")
            } else {
                missing_parent("workspace", workspace_id)(e)
            }
        })?;
        let key = self.api_key(workspace_id, &id).await?;
        Ok(CreatedApiKey { key, secret: secret.to_owned() })
    }

    /// The key `id` of the workspace.
    pub async fn api_key(&self, workspace_id: &str, id: &str) -> Result<ApiKey> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::not_found("api key", id))?;
        key_from_row(&row)
    }

    /// The workspace's keys, oldest first, revoked ones included.
    pub async fn api_keys(&self, workspace_id: &str) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace_id = $1 ORDER BY created_at, id"
        ))
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Revokes the key (idempotent: the first revocation time is kept).
    pub async fn revoke_api_key(&self, workspace_id: &str, id: &str) -> Result<ApiKey> {
        sqlx::query(
            "UPDATE api_keys SET revoked_at = $3
             WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(workspace_id)
        .bind(id)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        self.api_key(workspace_id, id).await
    }

    /// The unrevoked key whose plaintext is `secret`, or `None`.
    pub async fn authenticate_api_key(&self, secret: &str) -> Result<Option<ApiKey>> {
        if secret.is_empty() || secret.len() > 200 {
            return Ok(None);
        }
        let Some(key) = self.api_key_by_hash(&sha256_hex(secret.as_bytes())).await? else {
            return Ok(None);
        };
        if key.revoked_at.is_some() {
            return Ok(None);
        }
        let now = now_ms();
        let stale = key.last_used_at.is_none_or(|t| {
            i64::try_from(t.as_epoch_millis()).unwrap_or(0) + LAST_USED_GRANULARITY_MS < now
        });
        if stale {
            sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                .bind(&key.id)
                .bind(now)
                .execute(self.pool())
                .await?;
        }
        Ok(Some(key))
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = $1"))
            .bind(hash)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }
}
