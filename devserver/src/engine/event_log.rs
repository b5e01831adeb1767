//! A run's history, kept encoded.
//!
//! A decoded `HistoryEvent` is about 2 KiB inline (its attributes oneof holds the largest
//! variant), while the same event encoded is tens of bytes. Runs mostly sit idle waiting on a
//! timer, and their history is read only when a workflow task or a history page is served, so
//! the log keeps the protobuf bytes back to back and decodes on demand. The store receives the
//! same bytes. A store that can read histories back lets an idle run's log be evicted: it then
//! keeps only its length and size, and the engine reads the events back when it needs them.

use prost::Message;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;

/// Encoded events with their end offsets.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct EventLog {
    buf: Vec<u8>,
    ends: Vec<u32>,
    /// (events, bytes) while the events live only in the store; see [`EventLog::evict`].
    evicted: Option<(u32, u32)>,
}

impl EventLog {
    pub(crate) fn len(&self) -> usize {
        match self.evicted {
            Some((n, _)) => n as usize,
            None => self.ends.len(),
        }
    }

    /// Whether the events are in memory (always, unless the store holds them durably).
    pub(crate) fn is_resident(&self) -> bool {
        self.evicted.is_none()
    }

    /// Drops the events from memory, keeping their count and size. Only for a log whose every
    /// event is durable in the store, which reads them back on demand.
    pub(crate) fn evict(&mut self) {
        if self.evicted.is_none() {
            self.evicted = Some((self.ends.len() as u32, self.buf.len() as u32));
            self.buf = Vec::new();
            self.ends = Vec::new();
        }
    }

    /// A log whose `len` events (`bytes` in all) only the store holds.
    pub(crate) fn evicted(len: usize, bytes: usize) -> Self {
        Self { evicted: Some((len as u32, bytes as u32)), ..Self::default() }
    }

    /// The events read back from the store, checked against what was evicted.
    pub(crate) fn reloaded(&self, events: &[Vec<u8>]) -> Option<Self> {
        let log = Self::from_encoded(events);
        (self.evicted == Some((log.len() as u32, log.buf.len() as u32))).then_some(log)
    }

    pub(crate) fn push(&mut self, event: &HistoryEvent) {
        assert!(self.evicted.is_none(), "history appended while only the store holds it");
        event.encode(&mut self.buf).expect("Vec grows");
        self.ends.push(self.buf.len() as u32);
    }

    /// A log of already encoded events (from the store), allocated at its exact size.
    pub(crate) fn from_encoded<E: AsRef<[u8]>>(events: &[E]) -> Self {
        let mut log = Self {
            buf: Vec::with_capacity(events.iter().map(|e| e.as_ref().len()).sum()),
            ends: Vec::with_capacity(events.len()),
            evicted: None,
        };
        for e in events {
            log.push_encoded(e.as_ref());
        }
        log
    }

    /// Appends an already encoded event.
    pub(crate) fn push_encoded(&mut self, bytes: &[u8]) {
        assert!(self.evicted.is_none(), "history appended while only the store holds it");
        self.buf.extend_from_slice(bytes);
        self.ends.push(self.buf.len() as u32);
    }

    /// The encoded bytes of event `i` (0-based).
    pub(crate) fn encoded(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.buf[start..self.ends[i] as usize]
    }

    pub(crate) fn get(&self, i: usize) -> Option<HistoryEvent> {
        (i < self.len()).then(|| HistoryEvent::decode(self.encoded(i)).expect("encoded by us"))
    }

    pub(crate) fn first(&self) -> Option<HistoryEvent> {
        self.get(0)
    }

    pub(crate) fn last(&self) -> Option<HistoryEvent> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// Decodes events `from..` (0-based), at most `limit` of them.
    pub(crate) fn decode_range(&self, from: usize, limit: usize) -> Vec<HistoryEvent> {
        (from..self.len().min(from.saturating_add(limit))).filter_map(|i| self.get(i)).collect()
    }

    pub(crate) fn to_vec(&self) -> Vec<HistoryEvent> {
        self.decode_range(0, usize::MAX)
    }

    /// Total encoded size.
    pub(crate) fn bytes(&self) -> i64 {
        self.evicted.map_or(self.buf.len() as i64, |(_, b)| i64::from(b))
    }

    /// Drops spare capacity; called when a run goes idle.
    pub(crate) fn shrink(&mut self) {
        self.buf.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_events_in_order() {
        let mut log = EventLog::default();
        for id in 1..=5 {
            log.push(&HistoryEvent { event_id: id, event_type: id as i32, ..Default::default() });
        }
        assert_eq!(log.len(), 5);
        assert_eq!(log.first().unwrap().event_id, 1);
        assert_eq!(log.last().unwrap().event_id, 5);
        assert_eq!(log.decode_range(1, 2).iter().map(|e| e.event_id).collect::<Vec<_>>(), [2, 3]);
        let mut copy = EventLog::default();
        for i in 0..log.len() {
            copy.push_encoded(log.encoded(i));
        }
        assert_eq!(copy, log);
        assert!(log.get(5).is_none());
    }
}
