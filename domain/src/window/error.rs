//! `window::Error`: why a send was refused.

use serde::{Deserialize, Serialize};

use crate::{ErrorCode, Timestamp, billing, billing::Money, channel, compliance};

/// Why the session refused a business send. Serialized with the stable [`Error::code`] as its
/// `code` tag, so the same value travels in workflow payloads and API errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Error {
    /// Free-form is gated on this channel and no window is open (for this sender). Never
    /// silently downgraded to a template or dropped.
    #[error("no active session{}", expired_at.map(|t| format!(" (expired at {t})")).unwrap_or_default())]
    NoActiveSession {
        /// When the last window's free-form period ended, if there is one.
        expired_at: Option<Timestamp>,
    },
    /// The contact opted out; only the opt-out confirmation may still be sent.
    #[error("contact opted out at {since}")]
    ContactOptedOut {
        /// When the contact opted out.
        since: Timestamp,
    },
    /// The workspace balance cannot cover the hold this send needs; nothing was sent.
    #[error("insufficient balance: {required} required, {free} free")]
    InsufficientBalance {
        /// What the send needed held.
        required: Money,
        /// What was free.
        free: Money,
    },
    /// The request itself is malformed.
    #[error("validation failed: {reason}")]
    ValidationFailed {
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// The stable machine-readable code: `no_active_session`, `contact_opted_out`,
    /// `insufficient_balance` or `validation_failed`.
    pub const fn code(&self) -> ErrorCode {
        match self {
            Error::NoActiveSession { .. } => ErrorCode::NoActiveSession,
            Error::ContactOptedOut { .. } => ErrorCode::ContactOptedOut,
            Error::InsufficientBalance { .. } => ErrorCode::InsufficientBalance,
            Error::ValidationFailed { .. } => ErrorCode::ValidationFailed,
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Error::ValidationFailed { reason: reason.into() }
    }
}

impl From<compliance::Error> for Error {
    fn from(e: compliance::Error) -> Self {
        match e {
            compliance::Error::ContactOptedOut { since } => Error::ContactOptedOut { since },
        }
    }
}

impl From<billing::Error> for Error {
    fn from(e: billing::Error) -> Self {
        match e {
            billing::Error::InsufficientBalance { required, free } => {
                Error::InsufficientBalance { required, free }
            }
            other => Error::invalid(other.to_string()),
        }
    }
}

impl From<channel::Error> for Error {
    fn from(e: channel::Error) -> Self {
        Error::invalid(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HoldId;

    #[test]
    fn serde_tag_is_the_code() {
        let t = Timestamp::from_epoch_millis(9);
        let errors = [
            Error::NoActiveSession { expired_at: Some(t) },
            Error::NoActiveSession { expired_at: None },
            Error::ContactOptedOut { since: t },
            Error::InsufficientBalance { required: Money::from_minor(5), free: Money::ZERO },
            Error::invalid("empty text"),
        ];
        for e in errors {
            let json = serde_json::to_value(&e).unwrap();
            assert_eq!(json["code"], e.code().as_str(), "{e}");
            assert_eq!(serde_json::from_value::<Error>(json).unwrap(), e);
        }
        assert_eq!(Error::NoActiveSession { expired_at: None }.to_string(), "no active session");
        assert_eq!(
            Error::NoActiveSession { expired_at: Some(t) }.to_string(),
            "no active session (expired at 1970-01-01T00:00:00.009Z)"
        );
    }

    #[test]
    fn module_errors_convert_with_their_codes() {
        let t = Timestamp::from_epoch_millis(1);
        let opted: Error = compliance::Error::ContactOptedOut { since: t }.into();
        assert_eq!(opted.code().as_str(), "contact_opted_out");
        let insufficient: Error = billing::Error::InsufficientBalance {
            required: Money::from_minor(2),
            free: Money::ZERO,
        }
        .into();
        assert_eq!(insufficient.code().as_str(), "insufficient_balance");
        let unknown: Error = billing::Error::UnknownHold { hold_id: HoldId::from("h") }.into();
        assert_eq!(unknown.code().as_str(), "validation_failed");
        let policy: Error = channel::Error::ValidationFailed {
            field: "window_secs".to_owned(),
            reason: "must be positive".to_owned(),
        }
        .into();
        assert_eq!(policy.code().as_str(), "validation_failed");
    }
}
