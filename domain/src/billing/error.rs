//! `billing::Error`.

use serde::{Deserialize, Serialize};

use super::{Money, Resolution};
use crate::{ErrorCode, HoldId};

/// Errors of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Error {
    /// The free balance cannot cover the hold; nothing was reserved.
    #[error("insufficient balance: {required} required, {free} free")]
    InsufficientBalance {
        /// What the hold needed.
        required: Money,
        /// What was free.
        free: Money,
    },
    /// No open or resolved hold has this id.
    #[error("unknown hold {hold_id}")]
    UnknownHold {
        /// The id.
        hold_id: HoldId,
    },
    /// A hold with this id exists with a different amount.
    #[error("hold {hold_id} already exists for a different amount")]
    HoldConflict {
        /// The id.
        hold_id: HoldId,
    },
    /// The hold was already resolved the other way (charged vs released).
    #[error("hold {hold_id} was already {resolution:?}")]
    AlreadyResolved {
        /// The id.
        hold_id: HoldId,
        /// How it was resolved.
        resolution: Resolution,
    },
    /// The amount does not fit the ledger's counters.
    #[error("amount overflows the balance")]
    Overflow,
}

impl Error {
    /// The stable machine-readable code: `insufficient_balance` for a refused hold,
    /// `validation_failed` for requests that can never succeed.
    pub const fn code(&self) -> ErrorCode {
        match self {
            Error::InsufficientBalance { .. } => ErrorCode::InsufficientBalance,
            Error::UnknownHold { .. }
            | Error::HoldConflict { .. }
            | Error::AlreadyResolved { .. }
            | Error::Overflow => ErrorCode::ValidationFailed,
        }
    }
}
