//! [`StoreError`], the one error type of the store.

use convo_domain::{Balance, ErrorCode, Money};

/// What can go wrong in the store. The variant decides retryability (see
/// [`StoreError::is_retryable`]): only [`StoreError::Db`] is worth retrying, everything else is
/// a fact about the request or the data that a retry cannot change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The row the request refers to does not exist.
    #[error("{entity} {id} not found")]
    NotFound {
        /// What kind of row (`"workspace"`, `"contact"`, `"hold"`, ...).
        entity: &'static str,
        /// Its id.
        id: String,
    },
    /// The request is malformed; `field` names the offending input.
    #[error("invalid {field}: {message}")]
    Validation {
        /// The input field (`"phone"`, `"email"`, `"amount"`, ...).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The free balance cannot cover a hold; nothing was reserved.
    #[error("insufficient balance: {required} required, {} free", balance.free)]
    InsufficientBalance {
        /// What the hold needed.
        required: Money,
        /// The balance when the hold was refused.
        balance: Balance,
    },
    /// The request contradicts what is stored: an id reused with different data, or a hold
    /// resolved the other way.
    #[error("conflict: {message}")]
    Conflict {
        /// What conflicts.
        message: String,
    },
    /// Stored data could not be decoded (a bug or a hand-edited database).
    #[error("corrupt stored data: {message}")]
    Corrupt {
        /// What could not be decoded.
        message: String,
    },
    /// The database failed or could not be reached.
    #[error("database error")]
    Db(#[source] sqlx::Error),
    /// The schema migrations failed.
    #[error("migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether retrying the same call may succeed (a database outage), as opposed to an answer
    /// about the request itself.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Db(_))
    }

    /// A stable machine-readable code, aligned with the domain's codes.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::NotFound { .. } => ErrorCode::NotFound,
            StoreError::Validation { .. } => ErrorCode::ValidationFailed,
            StoreError::InsufficientBalance { .. } => ErrorCode::InsufficientBalance,
            StoreError::Conflict { .. } => ErrorCode::Conflict,
            StoreError::Corrupt { .. } => ErrorCode::Corrupt,
            StoreError::Db(_) | StoreError::Migrate(_) => ErrorCode::Unavailable,
        }
    }

    pub(crate) fn validation(field: &'static str, message: impl Into<String>) -> Self {
        StoreError::Validation { field, message: message.into() }
    }

    pub(crate) fn not_found(entity: &'static str, id: impl Into<String>) -> Self {
        StoreError::NotFound { entity, id: id.into() }
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        StoreError::Conflict { message: message.into() }
    }

    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        StoreError::Corrupt { message: message.into() }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Db(e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e)
    }
}

/// Whether `e` is a unique-constraint violation, the signal that a concurrent writer won a race.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Whether `e` is a foreign-key violation (the referenced workspace or contact is missing).
pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

/// For `map_err` on a write that refers to another row: a foreign-key violation means that row
/// (`entity` `id`) is missing, and becomes `NotFound` for it; any other error passes through.
pub(crate) fn missing_parent(
    entity: &'static str,
    id: impl Into<String>,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| {
        if is_foreign_key_violation(&e) { StoreError::not_found(entity, id) } else { e.into() }
    }
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
