//! Messaging channels and the window policy each one imposes.
//!
//! A *window* is the period after a contact's inbound message during which the business may send
//! free-form (non-template) messages. Channels differ in three ways, captured by
//! [`WindowPolicy`]: whether sends are gated by the window at all, how long it lasts, and whether
//! a new inbound message restarts it (sliding) or not (fixed).

use serde::{Deserialize, Serialize};

/// One hour in seconds.
const HOUR_SECS: u64 = 60 * 60;
/// The 24 h window most channels use.
const DAY_SECS: u64 = 24 * HOUR_SECS;

/// A messaging channel convo delivers on.
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

    /// The policy convo applies to this channel unless a workspace overrides it.
    ///
    /// - WhatsApp: 24 h customer-service window, restarted by every inbound message, gated; a
    ///   24 h billing session.
    /// - Messenger and Instagram: 24 h standard messaging window, sliding, gated; no billing
    ///   session.
    /// - RCS: 24 h from the session's first inbound message (fixed), gated; a 24 h billing
    ///   session.
    /// - SMS and e-mail: not gated; a 24 h sliding inactivity window still ends the conversation.
    pub const fn default_policy(self) -> WindowPolicy {
        match self {
            Channel::Whatsapp => WindowPolicy {
                gated: true,
                window_secs: DAY_SECS,
                mode: WindowMode::Sliding,
                billing_session_secs: DAY_SECS,
            },
            Channel::Messenger | Channel::Instagram => WindowPolicy {
                gated: true,
                window_secs: DAY_SECS,
                mode: WindowMode::Sliding,
                billing_session_secs: 0,
            },
            Channel::Rcs => WindowPolicy {
                gated: true,
                window_secs: DAY_SECS,
                mode: WindowMode::Fixed,
                billing_session_secs: DAY_SECS,
            },
            Channel::Sms | Channel::Email => WindowPolicy {
                gated: false,
                window_secs: DAY_SECS,
                mode: WindowMode::Sliding,
                billing_session_secs: 0,
            },
        }
    }
}

/// Whether inbound messages move the window's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowMode {
    /// The window ends `window_secs` after it opened; later inbound messages do not extend it.
    Fixed,
    /// The window ends `window_secs` after the latest inbound message.
    Sliding,
}

/// How a channel's window behaves. Plain data, so it travels in workflow inputs unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WindowPolicy {
    /// Free-form business sends are only allowed while the window is open.
    pub gated: bool,
    /// Length of the window in seconds.
    pub window_secs: u64,
    /// Fixed or sliding.
    pub mode: WindowMode,
    /// Length of a billing session in seconds; 0 means the channel bills per message.
    pub billing_session_secs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policies_match_the_channel_rules() {
        let table = [
            (Channel::Whatsapp, true, WindowMode::Sliding, DAY_SECS),
            (Channel::Messenger, true, WindowMode::Sliding, DAY_SECS),
            (Channel::Instagram, true, WindowMode::Sliding, DAY_SECS),
            (Channel::Rcs, true, WindowMode::Fixed, DAY_SECS),
            (Channel::Sms, false, WindowMode::Sliding, DAY_SECS),
            (Channel::Email, false, WindowMode::Sliding, DAY_SECS),
        ];
        for (channel, gated, mode, window_secs) in table {
            let p = channel.default_policy();
            assert_eq!((p.gated, p.mode, p.window_secs), (gated, mode, window_secs), "{channel:?}");
        }
    }

    #[test]
    fn channels_serialize_snake_case() {
        let names: Vec<String> =
            Channel::ALL.iter().map(|c| serde_json::to_string(c).unwrap()).collect();
        assert_eq!(
            names,
            [
                r#""whatsapp""#,
                r#""sms""#,
                r#""rcs""#,
                r#""messenger""#,
                r#""instagram""#,
                r#""email""#
            ]
        );
        let back: Channel = serde_json::from_str(r#""instagram""#).unwrap();
        assert_eq!(back, Channel::Instagram);
    }

    #[test]
    fn policy_round_trips_through_json() {
        let p = Channel::Whatsapp.default_policy();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"gated":true,"window_secs":86400,"mode":"sliding","billing_session_secs":86400}"#
        );
        assert_eq!(serde_json::from_str::<WindowPolicy>(&json).unwrap(), p);
    }
}
