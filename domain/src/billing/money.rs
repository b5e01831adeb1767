//! Money in integer minor units, message types and rate cards.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Channel;

/// An amount in the workspace currency's minor units (cents). Never a float, never negative.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(u64);

impl Money {
    /// Nothing.
    pub const ZERO: Money = Money(0);

    /// `minor` minor units.
    pub const fn from_minor(minor: u64) -> Self {
        Self(minor)
    }

    /// The amount in minor units.
    pub const fn minor(self) -> u64 {
        self.0
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, or `None` on overflow.
    pub const fn checked_add(self, other: Money) -> Option<Money> {
        match self.0.checked_add(other.0) {
            Some(v) => Some(Money(v)),
            None => None,
        }
    }

    /// `self - other`, or `None` if that would go below zero.
    pub const fn checked_sub(self, other: Money) -> Option<Money> {
        match self.0.checked_sub(other.0) {
            Some(v) => Some(Money(v)),
            None => None,
        }
    }

    /// `self + other`, saturating (for statistics, never for balances).
    pub const fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} minor units", self.0)
    }
}

/// How a business message is billed (Arowana's `message_type`).
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageType {
    /// Business-initiated, billed per message (templates; free-form on ungated channels with no
    /// window open).
    Message,
    /// Free-form inside a window, billed by the conversation unit of its billing session.
    Conversation,
    /// Broadcast content, billed per message at the newsletter price.
    Newsletter,
}

/// One channel's prices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RateCard {
    /// The hold a billing session's first free-form send places.
    pub conversation_unit: Money,
    /// Price per `MESSAGE`.
    pub message: Money,
    /// Price per `NEWSLETTER`.
    pub newsletter: Money,
}

impl RateCard {
    /// The per-message price of `message_type`. `CONVERSATION` messages have none: the
    /// conversation unit pays for every message of the session.
    pub const fn price(&self, message_type: MessageType) -> Money {
        match message_type {
            MessageType::Message => self.message,
            MessageType::Conversation => Money::ZERO,
            MessageType::Newsletter => self.newsletter,
        }
    }
}

/// A workspace's rate cards, per channel. A channel without a card is free.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RateTable(BTreeMap<Channel, RateCard>);

impl RateTable {
    /// The same card on every channel.
    pub fn uniform(card: RateCard) -> Self {
        Channel::ALL.into_iter().fold(Self::default(), |t, c| t.with(c, card))
    }

    /// A table with `card` for `channel` added (or replaced).
    #[must_use]
    pub fn with(mut self, channel: Channel, card: RateCard) -> Self {
        self.0.insert(channel, card);
        self
    }

    /// The card for `channel` (all zero if none was set).
    pub fn for_channel(&self, channel: Channel) -> RateCard {
        self.0.get(&channel).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_by_message_type() {
        let card = RateCard {
            conversation_unit: Money::from_minor(50),
            message: Money::from_minor(7),
            newsletter: Money::from_minor(2),
        };
        assert_eq!(card.price(MessageType::Message), Money::from_minor(7));
        assert_eq!(card.price(MessageType::Conversation), Money::ZERO);
        assert_eq!(card.price(MessageType::Newsletter), Money::from_minor(2));
        let table = RateTable::default().with(Channel::Rcs, card);
        assert_eq!(table.for_channel(Channel::Rcs), card);
        assert_eq!(table.for_channel(Channel::Sms), RateCard::default());
        let json = serde_json::to_string(&table).unwrap();
        assert_eq!(json, r#"{"rcs":{"conversation_unit":50,"message":7,"newsletter":2}}"#);
        assert_eq!(serde_json::from_str::<RateTable>(&json).unwrap(), table);
    }

    #[test]
    fn money_arithmetic_is_checked() {
        let (a, b) = (Money::from_minor(5), Money::from_minor(7));
        assert_eq!(a.checked_add(b), Some(Money::from_minor(12)));
        assert_eq!(a.checked_sub(b), None);
        assert_eq!(Money::from_minor(u64::MAX).checked_add(a), None);
        assert_eq!(Money::from_minor(u64::MAX).saturating_add(a).minor(), u64::MAX);
        assert_eq!(serde_json::to_string(&MessageType::Conversation).unwrap(), r#""CONVERSATION""#);
    }
}
