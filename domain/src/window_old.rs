//! The customer-service window: when it ends, what moves that end, and why it closed.
//!
//! [`expiry`] is the whole rule as one total function; [`Window`] applies it message by message
//! so callers (the session workflow, later the API) keep a small state value instead of
//! recomputing from history.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    channel::{WindowMode, WindowPolicy},
    time::Timestamp,
};

/// When a window that opened at `opened_at` and last heard from the contact at
/// `last_inbound_at` ends under `policy`.
///
/// - Fixed: `opened_at + window`, whatever arrives later.
/// - Sliding: `max(opened_at, last_inbound_at) + window`; an inbound timestamp earlier than the
///   opening (clock skew between providers) never shortens the window.
pub fn expiry(
    policy: &WindowPolicy,
    opened_at: Timestamp,
    last_inbound_at: Timestamp,
) -> Timestamp {
    let anchor = match policy.mode {
        WindowMode::Fixed => opened_at,
        WindowMode::Sliding => opened_at.max(last_inbound_at),
    };
    anchor.plus_secs(policy.window_secs)
}

/// Who sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the contact to the business. May extend a sliding window.
    Inbound,
    /// From the business to the contact. Never extends a window.
    Outbound,
}

/// Why a window closed. Serialized as the stable upper-case names webhooks and the API expose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CloseReason {
    /// The window's end passed without a further inbound message that extended it.
    Expired,
    /// Someone closed it on purpose (an operator or the API).
    Explicit,
}

impl CloseReason {
    /// The wire name (`"EXPIRED"`, `"EXPLICIT"`), identical to the serde form.
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseReason::Expired => "EXPIRED",
            CloseReason::Explicit => "EXPLICIT",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What recording a message did to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The window now ends later than before.
    Extended {
        /// The previous end.
        from: Timestamp,
        /// The new end.
        to: Timestamp,
    },
    /// The window's end did not move.
    Unchanged,
}

/// Errors applying a message to a window.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The message arrived at or after the window's end; a new window has to open instead.
    #[error("window expired at {expired_at}, message at {at}")]
    Expired {
        /// When the message arrived.
        at: Timestamp,
        /// When the window ended.
        expired_at: Timestamp,
    },
}

/// One open window and the facts its end depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    policy: WindowPolicy,
    opened_at: Timestamp,
    last_inbound_at: Timestamp,
    expires_at: Timestamp,
}

impl Window {
    /// Opens a window at `at` (the contact's first inbound message).
    pub fn open(policy: WindowPolicy, at: Timestamp) -> Self {
        Self { policy, opened_at: at, last_inbound_at: at, expires_at: expiry(&policy, at, at) }
    }

    /// The policy this window follows.
    pub fn policy(&self) -> &WindowPolicy {
        &self.policy
    }

    /// When the window opened.
    pub fn opened_at(&self) -> Timestamp {
        self.opened_at
    }

    /// The latest inbound message seen (the opening counts as one).
    pub fn last_inbound_at(&self) -> Timestamp {
        self.last_inbound_at
    }

    /// When the window ends; it is open strictly before this instant.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// Whether the window is open at `now`.
    pub fn is_open_at(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }

    /// Time left at `now` (zero once expired).
    pub fn remaining_at(&self, now: Timestamp) -> Duration {
        self.expires_at.saturating_since(now)
    }

    /// Applies a message sent at `at`.
    ///
    /// Inbound messages move `last_inbound_at` forward (never back) and, on a sliding policy,
    /// the end with it. Outbound (business) messages never change the window. Either kind at or
    /// after the end is an [`Error::Expired`] and leaves the window untouched.
    pub fn record(&mut self, direction: Direction, at: Timestamp) -> Result<Recorded, Error> {
        if !self.is_open_at(at) {
            return Err(Error::Expired { at, expired_at: self.expires_at });
        }
        if direction == Direction::Outbound {
            return Ok(Recorded::Unchanged);
        }
        self.last_inbound_at = self.last_inbound_at.max(at);
        let from = self.expires_at;
        let to = expiry(&self.policy, self.opened_at, self.last_inbound_at);
        // `expiry` is monotone in `last_inbound_at`, so `to >= from`; `max` keeps that obvious.
        self.expires_at = from.max(to);
        Ok(if self.expires_at > from {
            Recorded::Extended { from, to: self.expires_at }
        } else {
            Recorded::Unchanged
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::channel::Channel;

    const DAY: u64 = 24 * 60 * 60;

    fn ts(secs: u64) -> Timestamp {
        Timestamp::from_epoch_secs(secs)
    }

    #[test]
    fn whatsapp_inbound_restarts_the_24h_window() {
        let mut w = Window::open(Channel::Whatsapp.default_policy(), ts(1_000));
        assert_eq!(w.expires_at(), ts(1_000 + DAY));
        let r = w.record(Direction::Inbound, ts(5_000)).unwrap();
        assert_eq!(r, Recorded::Extended { from: ts(1_000 + DAY), to: ts(5_000 + DAY) });
        assert!(w.is_open_at(ts(5_000 + DAY - 1)));
        assert!(!w.is_open_at(ts(5_000 + DAY)));
    }

    #[test]
    fn a_reply_within_the_same_second_still_slides() {
        let opened = Timestamp::from_epoch_millis(1_000_000);
        let mut w = Window::open(Channel::Whatsapp.default_policy(), opened);
        let reply = Timestamp::from_epoch_millis(1_000_250);
        assert!(matches!(w.record(Direction::Inbound, reply), Ok(Recorded::Extended { .. })));
        assert_eq!(w.expires_at(), reply.plus_secs(DAY));
    }

    #[test]
    fn rcs_inbound_does_not_extend() {
        let mut w = Window::open(Channel::Rcs.default_policy(), ts(1_000));
        assert_eq!(w.record(Direction::Inbound, ts(5_000)), Ok(Recorded::Unchanged));
        assert_eq!(w.expires_at(), ts(1_000 + DAY));
        assert_eq!(w.last_inbound_at(), ts(5_000));
    }

    #[test]
    fn business_message_does_not_extend() {
        let mut w = Window::open(Channel::Whatsapp.default_policy(), ts(0));
        assert_eq!(w.record(Direction::Outbound, ts(DAY - 1)), Ok(Recorded::Unchanged));
        assert_eq!(w.expires_at(), ts(DAY));
    }

    #[test]
    fn messages_at_or_after_the_end_are_rejected() {
        let mut w = Window::open(Channel::Whatsapp.default_policy(), ts(0));
        let err = w.record(Direction::Inbound, ts(DAY)).unwrap_err();
        assert_eq!(err, Error::Expired { at: ts(DAY), expired_at: ts(DAY) });
        assert_eq!(w.expires_at(), ts(DAY));
    }

    #[test]
    fn late_inbound_timestamp_never_shortens() {
        let mut w = Window::open(Channel::Whatsapp.default_policy(), ts(10_000));
        w.record(Direction::Inbound, ts(20_000)).unwrap();
        assert_eq!(w.record(Direction::Inbound, ts(15_000)), Ok(Recorded::Unchanged));
        assert_eq!(w.expires_at(), ts(20_000 + DAY));
    }

    #[test]
    fn remaining_counts_down_to_zero() {
        let w = Window::open(Channel::Sms.default_policy(), ts(0));
        assert_eq!(w.remaining_at(ts(0)), Duration::from_secs(DAY));
        assert_eq!(w.remaining_at(ts(DAY + 5)), Duration::ZERO);
    }

    #[test]
    fn close_reason_wire_names() {
        assert_eq!(serde_json::to_string(&CloseReason::Expired).unwrap(), r#""EXPIRED""#);
        assert_eq!(serde_json::to_string(&CloseReason::Explicit).unwrap(), r#""EXPLICIT""#);
        assert_eq!(CloseReason::Explicit.to_string(), "EXPLICIT");
    }

    fn policy() -> impl Strategy<Value = WindowPolicy> {
        (
            any::<bool>(),
            1u64..=7 * DAY,
            prop_oneof![Just(WindowMode::Fixed), Just(WindowMode::Sliding)],
        )
            .prop_map(|(gated, window_secs, mode)| WindowPolicy {
                gated,
                window_secs,
                mode,
                billing_session_secs: 0,
            })
    }

    fn direction() -> impl Strategy<Value = Direction> {
        prop_oneof![Just(Direction::Inbound), Just(Direction::Outbound)]
    }

    proptest! {
        #[test]
        fn sliding_expiry_is_never_earlier_than_fixed(
            window_secs in 0u64..=30 * DAY,
            opened in 0u64..=4_000_000_000,
            inbound in 0u64..=4_000_000_000,
        ) {
            let sliding = WindowPolicy { gated: true, window_secs, mode: WindowMode::Sliding, billing_session_secs: 0 };
            let fixed = WindowPolicy { mode: WindowMode::Fixed, ..sliding };
            prop_assert!(expiry(&sliding, ts(opened), ts(inbound)) >= expiry(&fixed, ts(opened), ts(inbound)));
        }

        #[test]
        fn business_messages_never_extend(
            policy in policy(),
            opened in 0u64..=4_000_000_000,
            steps in prop::collection::vec((direction(), 0u64..=2 * DAY * 1000), 0..20),
        ) {
            let mut w = Window::open(policy, ts(opened));
            let mut now = ts(opened);
            for (dir, delta_ms) in steps {
                now = Timestamp::from_epoch_millis(now.as_epoch_millis() + delta_ms);
                let before = w;
                let result = w.record(dir, now);
                if dir == Direction::Outbound || result.is_err() {
                    prop_assert_eq!(w, before);
                }
            }
        }

        #[test]
        fn expiry_never_moves_backwards_and_follows_the_mode(
            policy in policy(),
            opened in 0u64..=4_000_000_000,
            steps in prop::collection::vec((direction(), 0u64..=2 * DAY * 1000), 0..20),
        ) {
            let mut w = Window::open(policy, ts(opened));
            let mut now = ts(opened);
            for (dir, delta_ms) in steps {
                now = Timestamp::from_epoch_millis(now.as_epoch_millis() + delta_ms);
                let before = w.expires_at();
                let recorded = w.record(dir, now);
                prop_assert!(w.expires_at() >= before);
                match (policy.mode, dir, recorded) {
                    (WindowMode::Fixed, _, _) => {
                        prop_assert_eq!(w.expires_at(), ts(opened).plus_secs(policy.window_secs));
                    }
                    (WindowMode::Sliding, Direction::Inbound, Ok(_)) => {
                        prop_assert_eq!(w.expires_at(), now.plus_secs(policy.window_secs));
                    }
                    _ => {}
                }
            }
        }
    }
}
