//! The durable store: workspaces, channels, contacts, consent, the billing ledger (with its
//! top-ups), message templates, the message log and the webhook outbox, in SQLite (embedded
//! default) or Postgres.
//!
//! # One code path for both engines
//! Every query goes through sqlx's `Any` driver with `$N` placeholders, which sqlx-sqlite binds
//! by number just as Postgres does. The price is a narrow type vocabulary (`i64`, `String`), so
//! times are epoch milliseconds, money is minor units and flags are `0`/`1`; the schema in
//! `store/migrations` uses only `TEXT` and `BIGINT` and runs unchanged on both.
//!
//! # Concurrency without engine-specific locking
//! Every transaction that writes starts with a write (an `INSERT .. ON CONFLICT DO NOTHING` or a
//! conditional `UPDATE`). On SQLite that takes the database's write lock up front, so a
//! transaction never has to upgrade a read snapshot (which fails with `SQLITE_BUSY` instead of
//! waiting); on Postgres the first write takes the row lock that serialises competing writers.
//! Balance checks are conditions of the `UPDATE` itself (`WHERE free >= amount`), which both
//! engines re-evaluate against the latest committed row, so concurrent holds cannot overdraw.

mod api_keys;
mod consent;
mod contacts;
mod conversations;
mod error;
mod gauges;
mod idempotency;
mod ledger;
mod messages;
mod migrations;
mod outbox;
mod session_windows;
mod templates;
pub mod webhooks;
mod workspaces;

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use convo_domain::{Money, Timestamp};
use sqlx::{
    AnyPool, Executor,
    any::{AnyPoolOptions, install_default_drivers},
};
use tokio::sync::watch;

pub use api_keys::{API_KEY_PREFIX, ApiKey, ApiKeyScope, CreatedApiKey, generate_api_key};
pub use contacts::{
    Contact, ContactLookup, normalize_delivered_phone, normalize_email, normalize_phone,
};
pub use conversations::ConversationRecord;
pub use error::{Result, StoreError};
pub use gauges::{EndpointBacklog, StoreGauges};
pub use idempotency::{IdempotencyClaim, IdempotencyPolicy, StoredResponse};
pub use ledger::{Actor, HoldRecord, HoldStatus, NewTopUp, TopUp};
pub use messages::{
    BillingSessionOf, MessageRecord, MessageStatus, NewMessage, StatusApplied, StatusEvent,
    StatusReport,
};
pub use outbox::{
    AttemptResult, ClaimedDelivery, Delivery, DeliveryAttempt, DeliveryFilter, DeliveryStatus,
    WebhookEndpoint,
};
pub use session_windows::OpenWindow;
pub use templates::{
    NewTemplate, Template, TemplateButton, TemplateButtonKind, TemplateCard, TemplateCategory,
    TemplateComponents, TemplateStatus, fill, placeholder_names,
};
pub use workspaces::{ChannelConfig, Workspace};

/// The database engine behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, embedded (a file or memory).
    Sqlite,
    /// Postgres.
    Postgres,
}

impl Backend {
    /// `"sqlite"` or `"postgres"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    fn of_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::validation("database_url", "expected a sqlite: or postgres:// URL"))
        }
    }
}

/// A handle on the store. Cheap to clone; every clone shares one connection pool and one
/// webhook wake-up signal, so a webhook dispatcher (`convo_activities::webhooks`) spawned on a clone
/// notices enqueues made through any other clone at once.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: AnyPool,
    backend: Backend,
    webhook_wakeup: watch::Sender<u64>,
}

/// SQLite waits this long for another connection's write lock before reporting `SQLITE_BUSY`.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 10_000;

impl Store {
    /// Connects to `url` and brings the schema up to date.
    ///
    /// `sqlite://path?mode=rwc` opens (creating) a file, `sqlite::memory:` a private in-memory
    /// database, `postgres://user@host/db` a Postgres database (add
    /// `?options=-c%20search_path%3Dname` to use a schema other than `public`).
    pub async fn connect(url: &str) -> Result<Store> {
        install_default_drivers();
        let backend = Backend::of_url(url)?;
        let in_memory =
            backend == Backend::Sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        options = match backend {
            // Every connection to `sqlite::memory:` opens its own empty database, so the pool
            // must keep exactly one connection alive for the store's whole life.
            Backend::Sqlite if in_memory => {
                options.max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None)
            }
            Backend::Sqlite => options.max_connections(4),
            Backend::Postgres => options.max_connections(8),
        };
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers proceed while one writer commits. FULL sync fsyncs every
                    // commit: an enqueued webhook or a placed hold is acknowledged to Temporal
                    // as done, so it must survive a power loss, not only a process crash.
                    conn.execute(
                        format!(
                            "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = \
                             {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; PRAGMA \
                             synchronous = FULL;"
                        )
                        .as_str(),
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(url).await?;
        let store = Store {
            inner: Arc::new(Inner { pool, backend, webhook_wakeup: watch::Sender::new(0) }),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Connects to `DATABASE_URL` when it is set and not empty, otherwise to `fallback` (for
    /// example `sqlite://convo.db?mode=rwc` or `sqlite::memory:`).
    pub async fn connect_default(fallback: &str) -> Result<Store> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Store::connect(url.trim()).await,
            _ => Store::connect(fallback).await,
        }
    }

    /// Opens (creating if needed) the SQLite file at `path`.
    pub async fn open_sqlite(path: impl AsRef<std::path::Path>) -> Result<Store> {
        let path = path.as_ref().to_str().ok_or_else(|| {
            StoreError::validation("database_url", "the SQLite path is not valid UTF-8")
        })?;
        Store::connect(&format!("sqlite://{path}?mode=rwc")).await
    }

    /// Applies any schema migrations not applied yet. [`Store::connect`] already did; this is
    /// for callers that manage the schema explicitly. Safe to run concurrently (the migrator
    /// takes a database lock) and repeatedly.
    pub async fn migrate(&self) -> Result<()> {
        migrations::migrator().await?.run(&self.inner.pool).await?;
        Ok(())
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.inner.backend.as_str()
    }

    /// The engine behind this store.
    pub fn backend_kind(&self) -> Backend {
        self.inner.backend
    }

    /// The connection pool, for callers that need a query the store does not offer.
    pub fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// Runs a trivial query: a readiness check that the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    /// A receiver that changes whenever a webhook delivery is enqueued through this store.
    pub fn webhook_wakeups(&self) -> watch::Receiver<u64> {
        self.inner.webhook_wakeup.subscribe()
    }

    fn wake_webhooks(&self) {
        self.inner.webhook_wakeup.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The wall clock in epoch milliseconds; stored times all use this scale.
pub fn now_ms() -> i64 {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    i64::try_from(millis).unwrap_or(i64::MAX)
}

/// A fresh opaque id, `prefix_` + 32 hex digits.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Lower-case hex of the SHA-256 of `data`: how API keys are stored.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    digest.as_ref().iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub(crate) fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from_epoch_millis(u64::try_from(ms).unwrap_or(0))
}

pub(crate) fn timestamp_param(t: Timestamp, field: &'static str) -> Result<i64> {
    i64::try_from(t.as_epoch_millis())
        .map_err(|_| StoreError::validation(field, "timestamp out of range"))
}

pub(crate) fn money(v: i64) -> Result<Money> {
    u64::try_from(v)
        .map(Money::from_minor)
        .map_err(|_| StoreError::corrupt(format!("negative amount {v} in the ledger")))
}

pub(crate) fn money_param(m: Money, field: &'static str) -> Result<i64> {
    i64::try_from(m.minor())
        .map_err(|_| StoreError::validation(field, "amount exceeds the ledger's range"))
}

pub(crate) fn json_param<T: serde::Serialize>(value: &T, field: &'static str) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::validation(field, e.to_string()))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}
