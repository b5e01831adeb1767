//! The `conversation.ended` event and where it goes.

use std::sync::{Arc, Mutex, PoisonError};

use convo_domain::CloseReason;
use futures::future::{self, BoxFuture};
use serde::{Deserialize, Serialize};

/// A conversation's window closed. This is what webhooks will carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationEndedEvent {
    /// Deterministic id, see [`event_id`].
    pub event_id: String,
    /// The session workflow that produced it.
    pub workflow_id: String,
    /// The workflow run that produced it.
    pub run_id: String,
    /// Workspace that owns the conversation.
    pub workspace_id: String,
    /// The contact.
    pub contact_id: String,
    /// Why the window closed.
    pub reason: CloseReason,
    /// Inbound messages received while the window was open.
    pub inbound_messages: u32,
}

/// The id of the `conversation.ended` event of one workflow run.
///
/// A pure function of (workflow id, run id, reason), so every retry of the activity produces the
/// same id and sinks can de-duplicate on it. The hash is 128-bit FNV-1a over length-prefixed
/// fields: stable across processes, platforms and Rust versions (unlike `DefaultHasher`), and
/// unambiguous however the fields are split.
pub fn event_id(workflow_id: &str, run_id: &str, reason: CloseReason) -> String {
    const OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut hash = OFFSET_BASIS;
    for field in [workflow_id, run_id, reason.as_str()] {
        let len = u64::try_from(field.len()).unwrap_or(u64::MAX).to_be_bytes();
        for byte in len.iter().chain(field.as_bytes()) {
            hash ^= u128::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("evt_{hash:032x}")
}

/// Errors a sink reports. The variant decides retryability.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// Temporarily unavailable (network, 5xx, timeouts): worth retrying.
    #[error("event sink unavailable: {0}")]
    Unavailable(String),
    /// Refused for good (4xx, validation): retrying cannot help.
    #[error("event rejected by sink: {0}")]
    Rejected(String),
}

/// Where `conversation.ended` events go.
///
/// Implementations must be idempotent on [`ConversationEndedEvent::event_id`]: the activity may
/// publish the same event more than once (a retry after a lost acknowledgement).
pub trait EventSink: Send + Sync + 'static {
    /// Publishes one event.
    fn publish<'a>(
        &'a self,
        event: &'a ConversationEndedEvent,
    ) -> BoxFuture<'a, Result<(), SinkError>>;
}

/// An in-memory sink for tests and the dev server: keeps each distinct event once.
#[derive(Debug, Default, Clone)]
pub struct MemoryEventSink {
    events: Arc<Mutex<Vec<ConversationEndedEvent>>>,
}

impl MemoryEventSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The distinct events published so far, in publication order.
    pub fn events(&self) -> Vec<ConversationEndedEvent> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl EventSink for MemoryEventSink {
    fn publish<'a>(
        &'a self,
        event: &'a ConversationEndedEvent,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if !events.iter().any(|e| e.event_id == event.event_id) {
            events.push(event.clone());
        }
        Box::pin(future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> ConversationEndedEvent {
        ConversationEndedEvent {
            event_id: id.to_owned(),
            workflow_id: "session/ws/c".to_owned(),
            run_id: "run-1".to_owned(),
            workspace_id: "ws".to_owned(),
            contact_id: "c".to_owned(),
            reason: CloseReason::Expired,
            inbound_messages: 1,
        }
    }

    #[test]
    fn event_id_is_deterministic_and_sensitive_to_every_field() {
        let id = event_id("session/ws/c", "run-1", CloseReason::Expired);
        assert_eq!(id, event_id("session/ws/c", "run-1", CloseReason::Expired));
        assert!(id.starts_with("evt_") && id.len() == 4 + 32, "{id}");
        assert_ne!(id, event_id("session/ws/c", "run-2", CloseReason::Expired));
        assert_ne!(id, event_id("session/ws/d", "run-1", CloseReason::Expired));
        assert_ne!(id, event_id("session/ws/c", "run-1", CloseReason::Explicit));
        // Length prefixes keep field boundaries significant.
        assert_ne!(
            event_id("ab", "c", CloseReason::Expired),
            event_id("a", "bc", CloseReason::Expired)
        );
    }

    #[test]
    fn event_id_is_stable_across_releases() {
        // Sinks de-duplicate on this value; changing the function would re-send old events.
        // Golden value computed independently (Python, same FNV-1a-128 over length-prefixed fields).
        assert_eq!(
            event_id(
                "session/ws_1/c_1",
                "00000000-0000-0000-0000-000000000000",
                CloseReason::Expired
            ),
            "evt_42cc872a007069c2cdaf5f5b98ee24da"
        );
    }

    #[test]
    fn memory_sink_keeps_each_event_once() {
        let sink = MemoryEventSink::new();
        futures::executor::block_on(async {
            sink.publish(&event("evt_1")).await.unwrap();
            sink.publish(&event("evt_1")).await.unwrap();
            sink.publish(&event("evt_2")).await.unwrap();
        });
        let ids: Vec<_> = sink.events().into_iter().map(|e| e.event_id).collect();
        assert_eq!(ids, ["evt_1", "evt_2"]);
    }
}
