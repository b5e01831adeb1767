//! Faults the sandbox injects on demand, in-process or through `POST /_sandbox/faults`.

use convo_domain::Channel;
use serde::{Deserialize, Serialize};

/// How an injected failure looks on the wire. Each channel answers it in its own shape (see the
/// module docs of [`super`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Temporarily down: HTTP 503, SMTP `451 4.3.0`.
    Unavailable,
    /// Throttled: HTTP 429 with `Retry-After` and the channel's rate-limit code (Meta 130429,
    /// Twilio 20429, RBM `RESOURCE_EXHAUSTED`), SMTP `451 4.7.1`.
    RateLimited {
        /// The `Retry-After` the sandbox announces, in seconds.
        #[serde(default)]
        retry_after_secs: u64,
    },
    /// A refusal with the provider's own code: a Meta error code (`"131047"`), a Twilio code
    /// (`"21211"`), an RBM status (`"NOT_FOUND"`), an SMTP reply code (`"550"`), or an error
    /// type for the native endpoint (`"OutsideWindow"`). The HTTP status follows the code.
    Reject {
        /// The provider code.
        code: String,
        /// Error text; a generic one when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}

impl Fault {
    /// A refusal with `code` and the default text.
    pub fn reject(code: impl Into<String>) -> Self {
        Fault::Reject { code: code.into(), message: None }
    }

    /// The error text to send.
    pub(crate) fn message(&self) -> String {
        match self {
            Fault::Unavailable => "Service temporarily unavailable (sandbox fault)".to_owned(),
            Fault::RateLimited { .. } => "Rate limit hit (sandbox fault)".to_owned(),
            Fault::Reject { code, message } => {
                message.clone().unwrap_or_else(|| format!("Rejected with {code} (sandbox fault)"))
            }
        }
    }
}

/// When a [`Fault`] applies: which channel and recipient, and for how many sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// What to answer.
    pub fault: Fault,
    /// Only sends on this channel; every channel when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// Only sends to this address (e.g. "this number is invalid"); everyone when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// How many matching sends fail; until cleared (an outage) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

impl FaultRule {
    /// `fault` for every send until cleared; narrow it with the builder methods.
    pub fn new(fault: Fault) -> Self {
        Self { fault, channel: None, to: None, times: None }
    }

    /// Only on `channel`.
    pub fn on(mut self, channel: Channel) -> Self {
        self.channel = Some(channel);
        self
    }

    /// Only for recipient `to`.
    pub fn to(mut self, to: impl Into<String>) -> Self {
        self.to = Some(to.into());
        self
    }

    /// Only the next `n` matching sends.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    pub(crate) fn matches(&self, channel: Channel, to: &str) -> bool {
        self.channel.is_none_or(|c| c == channel)
            && self.to.as_deref().is_none_or(|t| t.trim() == to.trim())
            && self.times != Some(0)
    }
}
