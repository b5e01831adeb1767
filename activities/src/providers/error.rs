//! [`ProviderError`]: every send failure, classified once, at the adapter.

use std::time::Duration;

use temporalio_common::error::ApplicationFailure;
use temporalio_sdk::activities::ActivityError;

/// Stable `ApplicationFailure` type names of send failures. Workflows and retry policies match
/// on these strings (never on messages), so they never change once published.
pub mod error_types {
    /// Retryable: network error, timeout, rate limit (HTTP 429, Meta 130429/131048/131056,
    /// Twilio 20429), provider 5xx, SMTP 4xx.
    pub const PROVIDER_TRANSIENT: &str = "ProviderTransient";
    /// The provider refused the message for a reason not covered below (a 4xx it explained).
    pub const PROVIDER_REJECTED: &str = "ProviderRejected";
    /// Credentials are wrong, expired or lack permission (Meta 190, Twilio 20003, HTTP 401/403,
    /// SMTP 535).
    pub const PROVIDER_AUTH: &str = "ProviderAuth";
    /// The channel configuration itself is unusable (bad sender, bad TLS settings, unknown
    /// account).
    pub const PROVIDER_MISCONFIGURED: &str = "ProviderMisconfigured";
    /// The recipient address is invalid or unreachable (Twilio 21211, Meta 131026, SMTP 550).
    pub const INVALID_RECIPIENT: &str = "InvalidRecipient";
    /// The recipient cannot receive this channel (RBM 404: not RCS-capable); another channel may
    /// work.
    pub const RECIPIENT_NOT_CAPABLE: &str = "RecipientNotCapable";
    /// The recipient unsubscribed at the provider (Twilio 21610).
    pub const RECIPIENT_OPTED_OUT: &str = "RecipientOptedOut";
    /// Free-form message outside the customer-service window (Meta 131047).
    pub const OUTSIDE_WINDOW: &str = "OutsideWindow";
    /// The content is invalid for the channel (free-form e-mail without subject, unknown
    /// template, bad template parameters).
    pub const INVALID_CONTENT: &str = "InvalidContent";

    /// Every type name, for documentation and tests.
    pub const ALL: [&str; 9] = [
        PROVIDER_TRANSIENT,
        PROVIDER_REJECTED,
        PROVIDER_AUTH,
        PROVIDER_MISCONFIGURED,
        INVALID_RECIPIENT,
        RECIPIENT_NOT_CAPABLE,
        RECIPIENT_OPTED_OUT,
        OUTSIDE_WINDOW,
        INVALID_CONTENT,
    ];
}

/// Why a provider refused a message for good. Each maps to one [`error_types`] string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// [`error_types::PROVIDER_REJECTED`].
    Rejected,
    /// [`error_types::PROVIDER_AUTH`].
    Auth,
    /// [`error_types::PROVIDER_MISCONFIGURED`].
    Misconfigured,
    /// [`error_types::INVALID_RECIPIENT`].
    InvalidRecipient,
    /// [`error_types::RECIPIENT_NOT_CAPABLE`].
    NotCapable,
    /// [`error_types::RECIPIENT_OPTED_OUT`].
    OptedOut,
    /// [`error_types::OUTSIDE_WINDOW`].
    OutsideWindow,
    /// [`error_types::INVALID_CONTENT`].
    InvalidContent,
}

impl Rejection {
    /// The stable type name.
    pub const fn error_type(self) -> &'static str {
        match self {
            Rejection::Rejected => error_types::PROVIDER_REJECTED,
            Rejection::Auth => error_types::PROVIDER_AUTH,
            Rejection::Misconfigured => error_types::PROVIDER_MISCONFIGURED,
            Rejection::InvalidRecipient => error_types::INVALID_RECIPIENT,
            Rejection::NotCapable => error_types::RECIPIENT_NOT_CAPABLE,
            Rejection::OptedOut => error_types::RECIPIENT_OPTED_OUT,
            Rejection::OutsideWindow => error_types::OUTSIDE_WINDOW,
            Rejection::InvalidContent => error_types::INVALID_CONTENT,
        }
    }

    /// The rejection whose type name is `error_type`, if any (the native protocol carries it).
    pub fn from_error_type(error_type: &str) -> Option<Self> {
        [
            Rejection::Rejected,
            Rejection::Auth,
            Rejection::Misconfigured,
            Rejection::InvalidRecipient,
            Rejection::NotCapable,
            Rejection::OptedOut,
            Rejection::OutsideWindow,
            Rejection::InvalidContent,
        ]
        .into_iter()
        .find(|r| r.error_type() == error_type)
    }
}

/// A failed send. `code` is the provider's own code (`"131047"`, `"21211"`, `"NOT_FOUND"`,
/// `"451"`, or an adapter code such as `"timeout"`), kept for logs and support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Retrying later may succeed; nothing was accepted.
    #[error("transient provider error {code}: {message}")]
    Transient {
        /// Provider or adapter code.
        code: String,
        /// Human-readable detail.
        message: String,
        /// How long the provider asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// Retrying the same request cannot succeed.
    #[error("{} {code}: {message}", kind.error_type())]
    Permanent {
        /// What kind of refusal.
        kind: Rejection,
        /// Provider or adapter code.
        code: String,
        /// Human-readable detail.
        message: String,
    },
}

impl ProviderError {
    /// A transient error without a retry hint.
    pub fn transient(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Transient { code: code.into(), message: message.into(), retry_after: None }
    }

    /// A permanent error.
    pub fn permanent(kind: Rejection, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Permanent { kind, code: code.into(), message: message.into() }
    }

    /// The stable type name (see [`error_types`]).
    pub fn error_type(&self) -> &'static str {
        match self {
            ProviderError::Transient { .. } => error_types::PROVIDER_TRANSIENT,
            ProviderError::Permanent { kind, .. } => kind.error_type(),
        }
    }

    /// Whether Temporal should retry the activity.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ProviderError::Transient { .. })
    }

    /// The provider's code.
    pub fn code(&self) -> &str {
        match self {
            ProviderError::Transient { code, .. } | ProviderError::Permanent { code, .. } => code,
        }
    }

    /// The provider's retry hint, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Transient { retry_after, .. } => *retry_after,
            ProviderError::Permanent { .. } => None,
        }
    }

    /// Converts to the SDK error with an explicit retryability decision and the provider's retry
    /// hint as the next retry delay.
    ///
    /// A method rather than `?`: the SDK's blanket `From` would make every error retryable.
    pub fn into_activity_error(self) -> ActivityError {
        let type_name = self.error_type().to_owned();
        let non_retryable = !self.is_retryable();
        let delay = self.retry_after();
        ActivityError::application(
            ApplicationFailure::builder(self)
                .type_name(type_name)
                .non_retryable(non_retryable)
                .maybe_next_retry_delay(delay)
                .build(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_round_trips_through_its_type_name() {
        let names: Vec<_> = error_types::ALL.iter().skip(1).copied().collect();
        for name in &names {
            let kind = Rejection::from_error_type(name).expect(name);
            assert_eq!(kind.error_type(), *name);
        }
        assert_eq!(Rejection::from_error_type(error_types::PROVIDER_TRANSIENT), None);
        let mut unique = error_types::ALL.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), error_types::ALL.len());
    }

    #[test]
    fn retryability_follows_the_class() {
        let t = ProviderError::Transient {
            code: "429".into(),
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert!(t.is_retryable());
        assert_eq!(t.error_type(), "ProviderTransient");
        assert_eq!(t.retry_after(), Some(Duration::from_secs(2)));
        let p = ProviderError::permanent(Rejection::OutsideWindow, "131047", "re-engagement");
        assert!(!p.is_retryable());
        assert_eq!(p.error_type(), "OutsideWindow");
        assert_eq!(p.code(), "131047");
        assert_eq!(p.to_string(), "OutsideWindow 131047: re-engagement");
    }
}
