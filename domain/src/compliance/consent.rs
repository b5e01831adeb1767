//! The contact's consent and the error a withdrawn consent produces.

use serde::{Deserialize, Serialize};

use crate::{ErrorCode, Timestamp};

/// A contact's consent to business messages, within one workspace, on every channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Consent {
    /// Nothing recorded: the contact neither opted in nor out.
    #[default]
    Unknown,
    /// Opted in (START/UNSTOP/YES, or recorded consent).
    OptedIn {
        /// When.
        at: Timestamp,
    },
    /// Opted out: every business-initiated send is refused, except the one confirmation.
    OptedOut {
        /// When.
        at: Timestamp,
    },
}

impl Consent {
    /// Whether the contact has opted out.
    pub const fn is_opted_out(&self) -> bool {
        matches!(self, Consent::OptedOut { .. })
    }

    /// Whether the contact has explicitly opted in.
    pub const fn is_opted_in(&self) -> bool {
        matches!(self, Consent::OptedIn { .. })
    }

    /// `Err(ContactOptedOut)` when business-initiated sends are blocked.
    pub const fn check_business_send(&self) -> Result<(), Error> {
        match *self {
            Consent::OptedOut { at } => Err(Error::ContactOptedOut { since: at }),
            Consent::Unknown | Consent::OptedIn { .. } => Ok(()),
        }
    }
}

/// Errors of the compliance rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Error {
    /// The contact opted out; business-initiated sends are refused.
    #[error("contact opted out at {since}")]
    ContactOptedOut {
        /// When the contact opted out.
        since: Timestamp,
    },
}

impl Error {
    /// The stable machine-readable code (`contact_opted_out`).
    pub const fn code(&self) -> ErrorCode {
        match self {
            Error::ContactOptedOut { .. } => ErrorCode::ContactOptedOut,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_opted_out_blocks() {
        let at = Timestamp::from_epoch_secs(5);
        assert_eq!(Consent::Unknown.check_business_send(), Ok(()));
        assert_eq!(Consent::OptedIn { at }.check_business_send(), Ok(()));
        let err = Consent::OptedOut { at }.check_business_send().unwrap_err();
        assert_eq!(err, Error::ContactOptedOut { since: at });
        assert_eq!(err.code(), "contact_opted_out");
        assert!(Consent::OptedIn { at }.is_opted_in() && !Consent::Unknown.is_opted_in());
    }

    #[test]
    fn wire_forms() {
        let out = Consent::OptedOut { at: Timestamp::from_epoch_millis(7) };
        assert_eq!(serde_json::to_string(&out).unwrap(), r#"{"status":"opted_out","at":7}"#);
        assert_eq!(serde_json::to_string(&Consent::Unknown).unwrap(), r#"{"status":"unknown"}"#);
        let err = Error::ContactOptedOut { since: Timestamp::from_epoch_millis(7) };
        assert_eq!(
            serde_json::to_string(&err).unwrap(),
            r#"{"code":"contact_opted_out","since":7}"#
        );
    }
}
