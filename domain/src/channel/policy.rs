//! [`WindowPolicy`], its parts and workspace overrides.

use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// One hour in seconds.
pub const HOUR_SECS: u64 = 60 * 60;
/// One day in seconds: the 24 h most windows and billing sessions last.
pub const DAY_SECS: u64 = 24 * HOUR_SECS;

/// Whether free-form business sends need an open window.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Free-form only while a window is open (WhatsApp, Messenger, Instagram, RCS).
    Window,
    /// Like [`Gate::Window`] until the contact has opted in, then never gated (SMS).
    UntilOptIn,
    /// Never gated (e-mail).
    Never,
}

impl Gate {
    /// Whether a free-form send needs an open window, given the contact's opt-in.
    pub const fn applies(self, opted_in: bool) -> bool {
        match self {
            Gate::Window => true,
            Gate::UntilOptIn => !opted_in,
            Gate::Never => false,
        }
    }
}

/// Whether inbound user messages move the window's end. Business messages never do.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowMode {
    /// The window ends `window_secs` after it opened; later user messages do not extend it
    /// (RCS sessions; Sent-style conservative gating).
    Fixed,
    /// The window ends `window_secs` after the latest user message (WhatsApp, Messenger).
    Sliding,
}

/// How a channel's window behaves. Plain data, so it travels in workflow inputs unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WindowPolicy {
    /// Whether free-form sends are gated by the window.
    pub gate: Gate,
    /// Length of the window in seconds, measured per [`WindowPolicy::mode`].
    pub window_secs: u64,
    /// Fixed or sliding.
    pub mode: WindowMode,
    /// Length of a billing session in seconds. Always fixed from its start: later traffic never
    /// extends it.
    pub billing_session_secs: u64,
    /// How long after the window's anchor a *human agent* may still send free-form (Meta's
    /// `HUMAN_AGENT` tag, 7 days on Messenger and Instagram); 0 when there is no allowance.
    /// Measured like the window (from the latest user message when sliding).
    pub human_agent_secs: u64,
}

impl WindowPolicy {
    /// Checks the values make sense: positive lengths, and a human-agent allowance (if any) at
    /// least as long as the window it extends.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |field: &str, reason: &str| {
            Err(Error::ValidationFailed { field: field.to_owned(), reason: reason.to_owned() })
        };
        if self.window_secs == 0 {
            return invalid("window_secs", "must be positive");
        }
        if self.billing_session_secs == 0 {
            return invalid("billing_session_secs", "must be positive");
        }
        if self.human_agent_secs != 0 && self.human_agent_secs < self.window_secs {
            return invalid("human_agent_secs", "must be 0 or at least window_secs");
        }
        Ok(())
    }

    /// This policy with every field `overrides` sets replaced, validated.
    pub fn with_overrides(self, overrides: &PolicyOverrides) -> Result<Self, Error> {
        let policy = WindowPolicy {
            gate: overrides.gate.unwrap_or(self.gate),
            window_secs: overrides.window_secs.unwrap_or(self.window_secs),
            mode: overrides.mode.unwrap_or(self.mode),
            billing_session_secs: overrides
                .billing_session_secs
                .unwrap_or(self.billing_session_secs),
            human_agent_secs: overrides.human_agent_secs.unwrap_or(self.human_agent_secs),
        };
        policy.validate()?;
        Ok(policy)
    }
}

/// A workspace's changes to a channel's default policy; `None` keeps the default.
///
/// For example `mode: Some(Fixed)` gives Sent-style conservative gating on WhatsApp, and
/// `human_agent_secs: Some(0)` turns the Messenger allowance off for a workspace whose app has
/// no `HUMAN_AGENT` approval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyOverrides {
    /// Replaces [`WindowPolicy::gate`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
    /// Replaces [`WindowPolicy::window_secs`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<u64>,
    /// Replaces [`WindowPolicy::mode`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<WindowMode>,
    /// Replaces [`WindowPolicy::billing_session_secs`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_session_secs: Option<u64>,
    /// Replaces [`WindowPolicy::human_agent_secs`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub human_agent_secs: Option<u64>,
}

/// Errors building a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Error {
    /// A field has a value no channel can work with.
    #[error("invalid window policy: {field} {reason}")]
    ValidationFailed {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// The stable machine-readable code (`validation_failed`).
    pub const fn code(&self) -> ErrorCode {
        match self {
            Error::ValidationFailed { .. } => ErrorCode::ValidationFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Channel;

    #[test]
    fn overrides_replace_only_what_they_set() {
        let fixed = PolicyOverrides { mode: Some(WindowMode::Fixed), ..Default::default() };
        let p = Channel::Whatsapp.default_policy().with_overrides(&fixed).unwrap();
        assert_eq!(
            p,
            WindowPolicy { mode: WindowMode::Fixed, ..Channel::Whatsapp.default_policy() }
        );
        let none = PolicyOverrides::default();
        assert_eq!(
            Channel::Sms.default_policy().with_overrides(&none),
            Ok(Channel::Sms.default_policy())
        );
    }

    #[test]
    fn invalid_overrides_are_refused() {
        let base = Channel::Messenger.default_policy();
        let cases = [
            (PolicyOverrides { window_secs: Some(0), ..Default::default() }, "window_secs"),
            (
                PolicyOverrides { billing_session_secs: Some(0), ..Default::default() },
                "billing_session_secs",
            ),
            (
                PolicyOverrides { human_agent_secs: Some(60), ..Default::default() },
                "human_agent_secs",
            ),
        ];
        for (overrides, field) in cases {
            let err = base.with_overrides(&overrides).unwrap_err();
            assert_eq!(err.code(), "validation_failed");
            assert!(
                matches!(&err, Error::ValidationFailed { field: f, .. } if f == field),
                "{err}"
            );
        }
    }

    #[test]
    fn gate_follows_opt_in() {
        assert!(Gate::Window.applies(true));
        assert!(Gate::UntilOptIn.applies(false));
        assert!(!Gate::UntilOptIn.applies(true));
        assert!(!Gate::Never.applies(false));
    }

    #[test]
    fn overrides_serialize_sparsely() {
        let o = PolicyOverrides { mode: Some(WindowMode::Fixed), ..Default::default() };
        assert_eq!(serde_json::to_string(&o).unwrap(), r#"{"mode":"fixed"}"#);
        assert_eq!(
            serde_json::from_str::<PolicyOverrides>("{}").unwrap(),
            PolicyOverrides::default()
        );
    }
}
