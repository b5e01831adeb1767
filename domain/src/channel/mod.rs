//! Messaging channels and the window policy each one imposes by default.
//!
//! A *window* is the period after a contact's inbound message during which the business may send
//! free-form (non-template) messages. Channels differ in how that gate works, captured by
//! [`WindowPolicy`]: whether free-form sends are gated at all ([`Gate`]), how long the window
//! lasts, whether an inbound *user* message restarts it ([`WindowMode::Sliding`]) or not
//! ([`WindowMode::Fixed`]), the length of the (always fixed) billing session, and the
//! Messenger/Instagram human-agent allowance. A workspace overrides any field with
//! [`PolicyOverrides`].

mod policy;

use serde::{Deserialize, Serialize};

pub use policy::{DAY_SECS, Error, Gate, HOUR_SECS, PolicyOverrides, WindowMode, WindowPolicy};

/// A messaging channel convo delivers on.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// WhatsApp Business Platform.
    Whatsapp,
    /// SMS.
    Sms,
    /// RCS Business Messaging.
    Rcs,
    /// Facebook Messenger.
    Messenger,
    /// Instagram messaging.
    Instagram,
    /// E-mail.
    Email,
}

impl Channel {
    /// Every channel, in declaration order (handy for table-driven tests).
    pub const ALL: [Channel; 6] = [
        Channel::Whatsapp,
        Channel::Sms,
        Channel::Rcs,
        Channel::Messenger,
        Channel::Instagram,
        Channel::Email,
    ];

    /// The wire name (`"whatsapp"`, …), identical to the serde form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Whatsapp => "whatsapp",
            Channel::Sms => "sms",
            Channel::Rcs => "rcs",
            Channel::Messenger => "messenger",
            Channel::Instagram => "instagram",
            Channel::Email => "email",
        }
    }

    /// The policy convo applies to this channel unless a workspace overrides it. Every channel
    /// bills in fixed 24 h sessions; the gate and window follow the platforms:
    ///
    /// - WhatsApp: customer-service window of 24 h, restarted by every user message (Meta's CSW).
    /// - Messenger and Instagram: 24 h standard messaging window, sliding, plus the 7-day
    ///   `HUMAN_AGENT` allowance for replies written by a person.
    /// - RCS: free-form only inside the 24 h session a user reply opens; the session is fixed
    ///   (RBM conversational billing), so later replies do not extend it.
    /// - SMS: gated like a window (a reply to the contact's own message) until the contact has
    ///   opted in; after that there is no window. The 24 h sliding window still delimits the
    ///   conversation for webhooks and billing.
    /// - E-mail: never gated; the window only delimits the conversation.
    pub const fn default_policy(self) -> WindowPolicy {
        let base = WindowPolicy {
            gate: Gate::Window,
            window_secs: DAY_SECS,
            mode: WindowMode::Sliding,
            billing_session_secs: DAY_SECS,
            human_agent_secs: 0,
        };
        match self {
            Channel::Whatsapp => base,
            Channel::Messenger | Channel::Instagram => {
                WindowPolicy { human_agent_secs: 7 * DAY_SECS, ..base }
            }
            Channel::Rcs => WindowPolicy { mode: WindowMode::Fixed, ..base },
            Channel::Sms => WindowPolicy { gate: Gate::UntilOptIn, ..base },
            Channel::Email => WindowPolicy { gate: Gate::Never, ..base },
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policies_match_the_channel_rules() {
        use {Gate::*, WindowMode::*};
        let table = [
            (Channel::Whatsapp, Window, Sliding, DAY_SECS, DAY_SECS, 0),
            (Channel::Messenger, Window, Sliding, DAY_SECS, DAY_SECS, 7 * DAY_SECS),
            (Channel::Instagram, Window, Sliding, DAY_SECS, DAY_SECS, 7 * DAY_SECS),
            (Channel::Rcs, Window, Fixed, DAY_SECS, DAY_SECS, 0),
            (Channel::Sms, UntilOptIn, Sliding, DAY_SECS, DAY_SECS, 0),
            (Channel::Email, Never, Sliding, DAY_SECS, DAY_SECS, 0),
        ];
        for (channel, gate, mode, window, billing, human) in table {
            let p = channel.default_policy();
            assert_eq!(
                (p.gate, p.mode, p.window_secs, p.billing_session_secs, p.human_agent_secs),
                (gate, mode, window, billing, human),
                "{channel}"
            );
            assert_eq!(p.validate(), Ok(()), "{channel}");
        }
    }

    #[test]
    fn channels_serialize_snake_case() {
        for channel in Channel::ALL {
            let json = serde_json::to_string(&channel).unwrap();
            assert_eq!(json, format!("\"{}\"", channel.as_str()));
            assert_eq!(serde_json::from_str::<Channel>(&json).unwrap(), channel);
        }
    }

    #[test]
    fn policy_round_trips_through_json() {
        let p = Channel::Messenger.default_policy();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"gate":"window","window_secs":86400,"mode":"sliding","billing_session_secs":86400,"human_agent_secs":604800}"#
        );
        assert_eq!(serde_json::from_str::<WindowPolicy>(&json).unwrap(), p);
    }
}
