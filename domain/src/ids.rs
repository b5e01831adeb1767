//! Identifiers the domain correlates on.
//!
//! The domain never invents randomness: ids of business sends come from the caller (the workflow
//! derives them from the update id, so a retried update reuses them), and ids of the replies the
//! domain sends on its own (compliance confirmations, the inactivity ping) are derived from the
//! inbound message they answer. Either way a retried activity carries the same id and a provider
//! or ledger can de-duplicate on it.

use serde::{Deserialize, Serialize};

/// The id of one message, inbound (the provider's id) or outbound (the caller's idempotency key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(String);

impl MessageId {
    /// Wraps an id as given.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the compliance reply (confirmation or help text) to `inbound`: at most one
    /// reply per inbound message, so deriving it from that message keeps it unique and stable.
    pub fn reply_to(inbound: &MessageId) -> Self {
        Self(format!("reply:{}", inbound.0))
    }

    /// The id of the inactivity ping sent after the silence that followed `inbound`: at most
    /// one ping per silence, so the last user message identifies it.
    pub fn ping_after(inbound: &MessageId) -> Self {
        Self(format!("ping:{}", inbound.0))
    }
}

impl From<&str> for MessageId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of one billing hold in the workspace ledger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HoldId(String);

impl HoldId {
    /// Wraps an id as given.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The hold a send places: each send places at most one, so its message id names it.
    pub fn for_message(message: &MessageId) -> Self {
        Self(format!("hold:{}", message.0))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for HoldId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl std::fmt::Display for HoldId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let inbound = MessageId::new("wamid.1");
        assert_eq!(MessageId::reply_to(&inbound).as_str(), "reply:wamid.1");
        assert_eq!(MessageId::ping_after(&inbound).as_str(), "ping:wamid.1");
        assert_eq!(HoldId::for_message(&inbound).as_str(), "hold:wamid.1");
        assert_ne!(MessageId::reply_to(&inbound), MessageId::ping_after(&inbound));
    }

    #[test]
    fn ids_serialize_as_bare_strings() {
        assert_eq!(serde_json::to_string(&MessageId::from("m-1")).unwrap(), r#""m-1""#);
        assert_eq!(serde_json::to_string(&HoldId::from("h-1")).unwrap(), r#""h-1""#);
        assert_eq!(serde_json::from_str::<MessageId>(r#""x""#).unwrap(), MessageId::from("x"));
        assert_eq!(MessageId::from("a").to_string(), "a");
        assert_eq!(HoldId::from("b").to_string(), "b");
    }
}
