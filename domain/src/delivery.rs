//! Delivery statuses of an outbound message: `queued → sent → delivered → read`, or `failed`.
//!
//! Providers report statuses asynchronously, at least once and in no guaranteed order: a
//! `read` may arrive before its `delivered`, and any callback may be repeated. [`transition`]
//! is the ordering rule every report goes through, so the status a message shows only ever
//! moves forward:
//!
//! - the same status again is a [`Transition::Duplicate`];
//! - a status behind the current one (`delivered` after `read`) is [`Transition::Stale`];
//! - `failed` ends a message that was `queued` or `sent`; once the contact's device has the
//!   message (`delivered`, `read`) a later `failed` is stale, and nothing moves a failed message.
//!
//! The provider's words map onto these statuses with [`DeliveryStatus::from_whatsapp`],
//! [`DeliveryStatus::from_twilio`] and [`DeliveryStatus::from_rbm`].

use serde::{Deserialize, Serialize};

/// Where an outbound message stands with the provider and the contact's device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum DeliveryStatus {
    /// Logged by convo, not yet accepted by the provider.
    Queued,
    /// Accepted by the provider.
    Sent,
    /// On the contact's device.
    Delivered,
    /// Seen by the contact.
    Read,
    /// Not delivered, for good (the provider's error code says why).
    Failed,
}

impl DeliveryStatus {
    /// Every status, in the order a message moves through them (`failed` last).
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Queued,
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
        DeliveryStatus::Read,
        DeliveryStatus::Failed,
    ];

    /// The wire name (`"delivered"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The status named `name` (its wire name), if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the contact's device has the message (`delivered` or `read`).
    pub const fn reached_contact(self) -> bool {
        matches!(self, DeliveryStatus::Delivered | DeliveryStatus::Read)
    }

    /// Position on the happy path; `failed` has none.
    const fn rank(self) -> Option<u8> {
        match self {
            DeliveryStatus::Queued => Some(0),
            DeliveryStatus::Sent => Some(1),
            DeliveryStatus::Delivered => Some(2),
            DeliveryStatus::Read => Some(3),
            DeliveryStatus::Failed => None,
        }
    }

    /// A WhatsApp Cloud API `statuses[].status` (`sent`, `delivered`, `read`, `failed`);
    /// `None` for the ones that say nothing about delivery (`deleted`, `warning`, ...).
    pub fn from_whatsapp(status: &str) -> Option<Self> {
        match status.trim().to_ascii_lowercase().as_str() {
            "sent" => Some(DeliveryStatus::Sent),
            "delivered" => Some(DeliveryStatus::Delivered),
            "read" => Some(DeliveryStatus::Read),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }

    /// A Twilio `MessageStatus`: `accepted`/`scheduled`/`queued` are still queued,
    /// `sending`/`sent` sent, `undelivered`/`failed` failed; `None` for `canceled`,
    /// `receiving`, `received` and anything unknown.
    pub fn from_twilio(status: &str) -> Option<Self> {
        match status.trim().to_ascii_lowercase().as_str() {
            "accepted" | "scheduled" | "queued" => Some(DeliveryStatus::Queued),
            "sending" | "sent" => Some(DeliveryStatus::Sent),
            "delivered" => Some(DeliveryStatus::Delivered),
            "read" => Some(DeliveryStatus::Read),
            "undelivered" | "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }

    /// An RBM agent event's `eventType` (`DELIVERED`, `READ`); `None` for `IS_TYPING` and
    /// the rest.
    pub fn from_rbm(event_type: &str) -> Option<Self> {
        match event_type.trim().to_ascii_uppercase().as_str() {
            "DELIVERED" => Some(DeliveryStatus::Delivered),
            "READ" => Some(DeliveryStatus::Read),
            _ => None,
        }
    }
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a reported status does to a message's current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// The message moves to the reported status.
    Advance,
    /// The message already has the reported status.
    Duplicate,
    /// The message is past the reported status (or failed): nothing changes.
    Stale,
}

/// The ordering rule: what reporting `reported` does to a message that is `current`. A total
/// function; see the module docs.
pub fn transition(current: DeliveryStatus, reported: DeliveryStatus) -> Transition {
    if current == reported {
        return Transition::Duplicate;
    }
    match (current.rank(), reported.rank()) {
        // Nothing moves a failed message.
        (None, _) => Transition::Stale,
        // A failure ends a message the contact's device does not have yet.
        (Some(c), None) => {
            if c <= 1 {
                Transition::Advance
            } else {
                Transition::Stale
            }
        }
        (Some(c), Some(r)) => {
            if r > c {
                Transition::Advance
            } else {
                Transition::Stale
            }
        }
    }
}

/// The status after applying `reports` in order to a message that was `initial`.
pub fn fold(
    initial: DeliveryStatus,
    reports: impl IntoIterator<Item = DeliveryStatus>,
) -> DeliveryStatus {
    reports.into_iter().fold(initial, |current, reported| match transition(current, reported) {
        Transition::Advance => reported,
        Transition::Duplicate | Transition::Stale => current,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use DeliveryStatus::*;

    fn status() -> impl Strategy<Value = DeliveryStatus> {
        prop::sample::select(DeliveryStatus::ALL.to_vec())
    }

    #[test]
    fn the_happy_path_moves_forward_and_read_never_goes_back() {
        assert_eq!(fold(Queued, [Sent, Delivered, Read]), Read);
        assert_eq!(transition(Read, Delivered), Transition::Stale);
        assert_eq!(transition(Read, Read), Transition::Duplicate);
        assert_eq!(fold(Queued, [Read, Delivered, Sent]), Read, "out of order");
        assert_eq!(transition(Sent, Failed), Transition::Advance);
        assert_eq!(transition(Queued, Failed), Transition::Advance);
        assert_eq!(transition(Delivered, Failed), Transition::Stale);
        assert_eq!(transition(Failed, Delivered), Transition::Stale);
        assert_eq!(transition(Failed, Failed), Transition::Duplicate);
    }

    #[test]
    fn provider_words_map_onto_statuses() {
        assert_eq!(DeliveryStatus::from_whatsapp("read"), Some(Read));
        assert_eq!(DeliveryStatus::from_whatsapp("deleted"), None);
        assert_eq!(DeliveryStatus::from_twilio("undelivered"), Some(Failed));
        assert_eq!(DeliveryStatus::from_twilio("sending"), Some(Sent));
        assert_eq!(DeliveryStatus::from_twilio("canceled"), None);
        assert_eq!(DeliveryStatus::from_rbm("DELIVERED"), Some(Delivered));
        assert_eq!(DeliveryStatus::from_rbm("IS_TYPING"), None);
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    proptest! {
        /// Whatever order reports arrive in, and however often, the status never moves
        /// backwards on the happy path, and a message the contact's device has never fails.
        #[test]
        fn statuses_only_move_forward(reports in prop::collection::vec(status(), 0..24)) {
            let mut current = Queued;
            for reported in reports {
                let next = fold(current, [reported]);
                match (current.rank(), next.rank()) {
                    (Some(c), Some(n)) => prop_assert!(n >= c, "{current} -> {next}"),
                    (None, _) => prop_assert_eq!(next, Failed, "failed is final"),
                    (Some(_), None) => prop_assert!(!current.reached_contact()),
                }
                current = next;
            }
        }

        /// Duplicates change nothing: applying a sequence with every report repeated gives
        /// the same status as applying it once.
        #[test]
        fn duplicates_are_harmless(reports in prop::collection::vec(status(), 0..16)) {
            let doubled: Vec<_> = reports.iter().flat_map(|&s| [s, s]).collect();
            prop_assert_eq!(fold(Queued, doubled), fold(Queued, reports.clone()));
            let once = fold(Queued, reports.clone());
            prop_assert_ne!(transition(once, once), Transition::Advance);
        }

        /// Without failures the order does not matter: the furthest status wins.
        #[test]
        fn without_failures_order_does_not_matter(
            reports in prop::collection::vec(prop::sample::select(vec![Queued, Sent, Delivered, Read]), 0..16),
            seed in any::<u64>(),
        ) {
            let mut shuffled = reports.clone();
            // A deterministic shuffle from the seed.
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let furthest = reports.iter().copied().max_by_key(|s| s.rank()).unwrap_or(Queued);
            prop_assert_eq!(fold(Queued, reports), furthest);
            prop_assert_eq!(fold(Queued, shuffled), furthest);
        }
    }
}
