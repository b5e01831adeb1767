//! The window's clock: when free-form is allowed until, and what moves that end.
//!
//! [`expiry`] is the whole rule as one total function; [`Window`] applies it message by message,
//! so callers keep a small value instead of recomputing from history.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Error, Sender};
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
    anchor(policy, opened_at, last_inbound_at).plus_secs(policy.window_secs)
}

/// Until when a human agent may still send free-form (Meta's `HUMAN_AGENT` tag), measured like
/// [`expiry`]; `None` when the policy grants no allowance.
pub fn human_agent_expiry(
    policy: &WindowPolicy,
    opened_at: Timestamp,
    last_inbound_at: Timestamp,
) -> Option<Timestamp> {
    (policy.human_agent_secs > 0)
        .then(|| anchor(policy, opened_at, last_inbound_at).plus_secs(policy.human_agent_secs))
}

fn anchor(policy: &WindowPolicy, opened_at: Timestamp, last_inbound_at: Timestamp) -> Timestamp {
    match policy.mode {
        WindowMode::Fixed => opened_at,
        WindowMode::Sliding => opened_at.max(last_inbound_at),
    }
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

/// One open window and the facts its end depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    policy: WindowPolicy,
    opened_at: Timestamp,
    last_inbound_at: Timestamp,
    expires_at: Timestamp,
    human_agent_expires_at: Option<Timestamp>,
}

impl Window {
    /// Opens a window at `at` (the contact's message that opened it).
    pub fn open(policy: WindowPolicy, at: Timestamp) -> Self {
        Self {
            policy,
            opened_at: at,
            last_inbound_at: at,
            expires_at: expiry(&policy, at, at),
            human_agent_expires_at: human_agent_expiry(&policy, at, at),
        }
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

    /// Until when free-form is allowed (exclusive): the `conversation_expires_at` of sends.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// Until when a human agent may still send free-form, if the policy grants an allowance.
    pub fn human_agent_expires_at(&self) -> Option<Timestamp> {
        self.human_agent_expires_at
    }

    /// When the window is over for everyone: the later of the two ends above.
    pub fn closes_at(&self) -> Timestamp {
        self.human_agent_expires_at.map_or(self.expires_at, |h| h.max(self.expires_at))
    }

    /// Whether the window is still open at `now` (for someone).
    pub fn is_open_at(&self, now: Timestamp) -> bool {
        now < self.closes_at()
    }

    /// Whether `sender` may send free-form at `now`, and whether that send needs the
    /// `HUMAN_AGENT` tag: `Some(false)` inside the standard window, `Some(true)` for a human
    /// agent in the allowance after it, `None` when not allowed.
    pub fn allows(&self, sender: Sender, now: Timestamp) -> Option<bool> {
        if now < self.expires_at {
            return Some(false);
        }
        let allowance = self.human_agent_expires_at.is_some_and(|h| now < h);
        (sender == Sender::HumanAgent && allowance).then_some(true)
    }

    /// Time left at `now` for automated free-form sends (zero once expired).
    pub fn remaining_at(&self, now: Timestamp) -> Duration {
        self.expires_at.saturating_since(now)
    }

    /// Applies a message sent at `at`.
    ///
    /// Inbound messages move `last_inbound_at` forward (never back) and, on a sliding policy,
    /// both ends with it. Outbound (business) messages never change the window. Either kind at
    /// or after [`Window::closes_at`] is [`Error::NoActiveSession`] and leaves the window as is.
    pub fn record(&mut self, direction: Direction, at: Timestamp) -> Result<Recorded, Error> {
        if !self.is_open_at(at) {
            return Err(Error::NoActiveSession { expired_at: Some(self.closes_at()) });
        }
        if direction == Direction::Outbound {
            return Ok(Recorded::Unchanged);
        }
        self.last_inbound_at = self.last_inbound_at.max(at);
        let from = self.expires_at;
        // Both ends are monotone in `last_inbound_at`, so they never move back; `max` keeps
        // that obvious.
        self.expires_at = from.max(expiry(&self.policy, self.opened_at, self.last_inbound_at));
        self.human_agent_expires_at =
            human_agent_expiry(&self.policy, self.opened_at, self.last_inbound_at)
                .max(self.human_agent_expires_at);
        Ok(if self.expires_at > from {
            Recorded::Extended { from, to: self.expires_at }
        } else {
            Recorded::Unchanged
        })
    }
}

#[cfg(test)]
#[path = "clock_tests.rs"]
mod tests;
