//! Every run, with idle ones frozen.
//!
//! Most of a long-lived server's runs are idle: waiting on a timer of hours (a conversation
//! window), or closed and kept for visibility. A live [`Execution`] costs some 350 bytes inline
//! plus its history, request id and timers in allocations of their own: about 1.1 KiB, and
//! 1.45 KiB of resident memory once the allocator's slack is counted. A frozen run is one
//! allocation: the snapshot that recovery already reads back, then (unless the store can read
//! it back) the run's encoded history, compressed with LZ4 against a dictionary. The
//! dictionary is the first run of the same workflow type that was frozen, followed by this
//! run's own id. Runs of one type share nearly all their bytes (field tags, type and queue
//! names, identities, timeouts), and a run's id recurs in its snapshot and its first event,
//! so what is left is what makes the run itself: its workflow id, its times, its request ids.
//!
//! Only a run with nothing in flight is frozen, and only state the snapshot holds may be set
//! (see [`Execution::freezable`]). Any change thaws the run first ([`Runs::get_mut`]); a read
//! thaws a copy and leaves the run frozen ([`Runs::get`]).

use std::{collections::HashMap, ops::Deref, sync::Arc};

use prost::encoding::{decode_varint, encode_varint, encoded_len_varint};

use crate::clock::Nanos;

use super::{
    event_log::EventLog,
    execution::Execution,
    ids::{Intern, Lookup, Names, RunId, RunKey, Unshared},
};

/// The longest dictionary kept per workflow type; a run frozen first with a huge history
/// must not pin it whole.
const MAX_DICTIONARY: usize = 16 * 1024;

/// Runs by id: live ones boxed, idle ones frozen.
#[derive(Default)]
pub(crate) struct Runs {
    hot: HashMap<RunId, Box<Execution>>,
    frozen: HashMap<RunId, Box<[u8]>>,
    dictionaries: Dictionaries,
    /// Namespaces, types and queues of thawed runs, shared as in the engine's own table.
    names: Names,
}

/// A run to read: the live one, or a copy thawed from its frozen form.
pub(crate) enum RunRef<'a> {
    Hot(&'a Execution),
    Thawed(Box<Execution>),
}

impl Deref for RunRef<'_> {
    type Target = Execution;

    fn deref(&self) -> &Execution {
        match self {
            RunRef::Hot(e) => e,
            RunRef::Thawed(e) => e,
        }
    }
}

impl Runs {
    /// Room for `n` runs, sized for the frozen table: recovery freezes every idle run it
    /// loads, and a live table sized for all of them would keep that room for good.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self { frozen: HashMap::with_capacity(n), ..Self::default() }
    }

    /// The run, for reading. A frozen run stays frozen; the copy costs a decompression.
    pub(crate) fn get(&self, id: impl RunKey) -> Option<RunRef<'_>> {
        let id = id.run_id()?;
        if let Some(e) = self.hot.get(&id) {
            return Some(RunRef::Hot(e));
        }
        let blob = self.frozen.get(&id)?;
        Some(RunRef::Thawed(Box::new(thaw(id, blob, &self.dictionaries, &mut Lookup(&self.names)))))
    }

    /// The run, for changing: a frozen run is thawed and stays live until frozen again.
    pub(crate) fn get_mut(&mut self, id: impl RunKey) -> Option<&mut Execution> {
        let id = id.run_id()?;
        if let Some(blob) = self.frozen.remove(&id) {
            let exec = thaw(id, &blob, &self.dictionaries, &mut self.names);
            self.hot.insert(id, Box::new(exec));
        }
        self.hot.get_mut(&id).map(|b| &mut **b)
    }

    /// The run if it is live; a frozen run is left alone (nothing to do for it).
    pub(crate) fn live_mut(&mut self, id: impl RunKey) -> Option<&mut Execution> {
        self.hot.get_mut(&id.run_id()?).map(|b| &mut **b)
    }

    pub(crate) fn insert(&mut self, exec: Execution) {
        self.frozen.remove(&exec.run_id);
        self.hot.insert(exec.run_id, Box::new(exec));
    }

    /// Freezes the run if it is live and idle at `now`. With `keep_history` false the history
    /// is left to the store, which must hold every event durably and read them back on demand.
    /// Returns whether the run is frozen now.
    pub(crate) fn freeze(&mut self, id: RunId, keep_history: bool, now: Nanos) -> bool {
        let Some(exec) = self.hot.get(&id) else { return self.frozen.contains_key(&id) };
        if !exec.freezable(now) {
            return false;
        }
        let blob = freeze(exec, keep_history, &mut self.dictionaries);
        self.hot.remove(&id);
        self.frozen.insert(id, blob);
        true
    }

    /// Every run, frozen ones thawed one at a time.
    pub(crate) fn values(&self) -> impl Iterator<Item = RunRef<'_>> {
        self.hot.values().map(|e| RunRef::Hot(e)).chain(self.frozen.iter().map(|(id, blob)| {
            RunRef::Thawed(Box::new(thaw(*id, blob, &self.dictionaries, &mut Lookup(&self.names))))
        }))
    }

    pub(crate) fn len(&self) -> usize {
        self.hot.len() + self.frozen.len()
    }

    /// (live, frozen) run counts.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.hot.len(), self.frozen.len())
    }

    /// Bytes the frozen runs' blobs take, and the dictionaries they share.
    pub(crate) fn frozen_bytes(&self) -> (usize, usize) {
        (
            self.frozen.values().map(|b| b.len()).sum(),
            self.dictionaries.dictionaries.iter().map(|d| d.len()).sum(),
        )
    }
}

/// One dictionary per workflow type: the raw frozen form of the first run of that type.
#[derive(Default)]
struct Dictionaries {
    by_type: HashMap<Arc<str>, u32>,
    dictionaries: Vec<Box<[u8]>>,
}

impl Dictionaries {
    fn for_type(&mut self, workflow_type: &Arc<str>, raw: &[u8]) -> u32 {
        if let Some(&id) = self.by_type.get(workflow_type) {
            return id;
        }
        let id = self.dictionaries.len() as u32;
        self.dictionaries.push(raw[..raw.len().min(MAX_DICTIONARY)].into());
        self.by_type.insert(workflow_type.clone(), id);
        id
    }

    /// The dictionary a run is compressed against: its type's, then its own run id.
    fn with_run(&self, id: u32, run_id: RunId) -> Vec<u8> {
        let base = &self.dictionaries[id as usize];
        let run = run_id.to_string();
        let mut dict = Vec::with_capacity(base.len() + run.len());
        dict.extend_from_slice(base);
        dict.extend_from_slice(run.as_bytes());
        dict
    }
}

/// How the history follows the snapshot in a frozen run.
const HISTORY_KEPT: u64 = 0;
const HISTORY_IN_STORE: u64 = 1;

/// The raw frozen form: snapshot, then the history or where it is.
fn encode(exec: &Execution, keep_history: bool) -> Vec<u8> {
    let snapshot = exec.snapshot();
    let history = &exec.history;
    let mut raw = Vec::with_capacity(snapshot.len() + history.bytes() as usize + 32);
    encode_varint(snapshot.len() as u64, &mut raw);
    raw.extend_from_slice(&snapshot);
    if keep_history && history.is_resident() {
        encode_varint(HISTORY_KEPT, &mut raw);
        encode_varint(history.len() as u64, &mut raw);
        for i in 0..history.len() {
            let event = history.encoded(i);
            encode_varint(event.len() as u64, &mut raw);
            raw.extend_from_slice(event);
        }
    } else {
        encode_varint(HISTORY_IN_STORE, &mut raw);
        encode_varint(history.len() as u64, &mut raw);
        encode_varint(history.bytes() as u64, &mut raw);
    }
    raw
}

fn freeze(exec: &Execution, keep_history: bool, dictionaries: &mut Dictionaries) -> Box<[u8]> {
    let raw = encode(exec, keep_history);
    let dictionary = dictionaries.for_type(&exec.workflow_type, &raw);
    let compressed =
        lz4_flex::block::compress_with_dict(&raw, &dictionaries.with_run(dictionary, exec.run_id));
    let mut blob = Vec::with_capacity(
        encoded_len_varint(u64::from(dictionary))
            + encoded_len_varint(raw.len() as u64)
            + compressed.len(),
    );
    encode_varint(u64::from(dictionary), &mut blob);
    encode_varint(raw.len() as u64, &mut blob);
    blob.extend_from_slice(&compressed);
    blob.into_boxed_slice()
}

/// The run a blob holds. The blob was written by [`freeze`] in this process, so any failure
/// to read it back is a bug, not bad input.
fn thaw(
    run_id: RunId,
    blob: &[u8],
    dictionaries: &Dictionaries,
    names: &mut impl Intern,
) -> Execution {
    let fail = |what: &str| -> ! { panic!("run {run_id}: frozen form unreadable: {what}") };
    let mut rest = blob;
    let dictionary = decode_varint(&mut rest).unwrap_or_else(|_| fail("dictionary"));
    let raw_len = decode_varint(&mut rest).unwrap_or_else(|_| fail("length")) as usize;
    let raw = lz4_flex::block::decompress_with_dict(
        rest,
        raw_len,
        &dictionaries.with_run(dictionary as u32, run_id),
    )
    .unwrap_or_else(|e| fail(&e.to_string()));
    let mut rest = raw.as_slice();
    let snapshot_len = decode_varint(&mut rest).unwrap_or_else(|_| fail("snapshot")) as usize;
    let (snapshot, mut rest) = rest.split_at(snapshot_len);
    let history = match decode_varint(&mut rest) {
        Ok(HISTORY_KEPT) => {
            let count = decode_varint(&mut rest).unwrap_or_else(|_| fail("events")) as usize;
            let mut events = Vec::with_capacity(count);
            for _ in 0..count {
                let len = decode_varint(&mut rest).unwrap_or_else(|_| fail("event")) as usize;
                let (event, tail) = rest.split_at(len);
                events.push(event);
                rest = tail;
            }
            EventLog::from_encoded(&events)
        }
        Ok(HISTORY_IN_STORE) => {
            let count = decode_varint(&mut rest).unwrap_or_else(|_| fail("events")) as usize;
            let bytes = decode_varint(&mut rest).unwrap_or_else(|_| fail("bytes")) as usize;
            EventLog::evicted(count, bytes)
        }
        _ => fail("history"),
    };
    let mut exec = Execution::restore(snapshot, history, names, &mut Unshared)
        .unwrap_or_else(|e| fail(&e.to_string()));
    exec.counted_inflight = exec.inflight();
    exec
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use temporalio_protos::temporal::api::{
        common::v1::{Memo, Payload, WorkflowType},
        history::v1::{
            HistoryEvent, TimerStartedEventAttributes, WorkflowExecutionStartedEventAttributes,
            history_event::Attributes,
        },
    };

    use super::*;
    use crate::engine::execution::Activity;

    const DAY: i64 = 86_400_000_000_000;

    /// A run like a conversation window: started, then waiting on a 24 h timer, with a signal
    /// request id remembered and a memo.
    fn idle_run(names: &mut Names, workflow_id: &str, start: i64) -> Execution {
        let run_id = RunId::random();
        let mut e = Execution::new(
            names.intern("default"),
            workflow_id.into(),
            run_id,
            names.intern("SessionWindow"),
            names.intern("convo"),
            format!("request-{workflow_id}"),
            10_000_000_000,
            start,
        );
        e.history.push(&HistoryEvent {
            event_id: 1,
            event_time: crate::engine::ts_of(start),
            event_type: 1,
            attributes: Some(Attributes::WorkflowExecutionStartedEventAttributes(
                WorkflowExecutionStartedEventAttributes {
                    workflow_type: Some(WorkflowType { name: "SessionWindow".into() }),
                    original_execution_run_id: run_id.to_string(),
                    first_execution_run_id: run_id.to_string(),
                    workflow_id: workflow_id.into(),
                    identity: "worker@host".into(),
                    attempt: 1,
                    ..Default::default()
                },
            )),
            ..Default::default()
        });
        e.history.push(&HistoryEvent {
            event_id: 2,
            event_time: crate::engine::ts_of(start + 1_000_000),
            event_type: 17,
            attributes: Some(Attributes::TimerStartedEventAttributes(
                TimerStartedEventAttributes {
                    timer_id: "window".into(),
                    workflow_task_completed_event_id: 1,
                    ..Default::default()
                },
            )),
            ..Default::default()
        });
        e.timers.insert("window".into(), (2, start + DAY));
        e.request_ids.insert(format!("signal-{workflow_id}"));
        e.memo = Some(Box::new(Memo {
            fields: [(
                "contact".to_owned(),
                Payload { data: b"+4915100000100".to_vec(), ..Default::default() },
            )]
            .into_iter()
            .collect(),
        }));
        e
    }

    fn history_bytes(e: &Execution) -> Vec<Vec<u8>> {
        (0..e.history.len()).map(|i| e.history.encoded(i).to_vec()).collect()
    }

    #[test]
    fn a_frozen_run_reads_back_exactly_and_thaws_on_change() {
        let mut names = Names::default();
        let mut runs = Runs::default();
        let run = idle_run(&mut names, "window-1", 1_000);
        let (id, snapshot, history) = (run.run_id, run.snapshot(), history_bytes(&run));
        runs.insert(run);
        assert!(runs.freeze(id, true, 0));
        assert_eq!(runs.counts(), (0, 1));

        // A read leaves it frozen.
        let read = runs.get(id).expect("frozen run is found");
        assert!(matches!(read, RunRef::Thawed(_)));
        assert_eq!(read.snapshot(), snapshot);
        assert_eq!(history_bytes(&read), history);
        assert_eq!(read.timers.iter().collect::<Vec<_>>(), [("window", (2, 1_000 + DAY))]);
        drop(read);
        assert_eq!(runs.counts(), (0, 1));
        assert_eq!(runs.values().count(), 1);

        // A change thaws it for good, until it is frozen again.
        let live = runs.get_mut(id.to_string()).expect("thawed");
        assert_eq!(live.snapshot(), snapshot);
        live.timers.remove("window");
        assert_eq!(runs.counts(), (1, 0));
        assert!(runs.freeze(id, true, 0));
        assert!(runs.get(id).expect("found").timers.iter().next().is_none());
    }

    #[test]
    fn runs_with_work_in_flight_stay_live() {
        let mut names = Names::default();
        let mut runs = Runs::default();
        let mut busy = idle_run(&mut names, "busy", 0);
        let scheduled = Default::default();
        busy.activities.insert(3, Activity::scheduled(&scheduled, 0));
        let id = busy.run_id;
        runs.insert(busy);
        assert!(!runs.freeze(id, true, 0));
        assert_eq!(runs.counts(), (1, 0));
        runs.get_mut(id).expect("live").activities.clear();
        assert!(runs.freeze(id, true, 0));

        // A run about to wake is not worth freezing, nor one whose timer is overdue.
        let mut soon = idle_run(&mut names, "soon", 0);
        soon.timers.insert("tick".into(), (3, 500_000_000));
        let id = soon.run_id;
        runs.insert(soon);
        assert!(!runs.freeze(id, true, 0));
        assert!(!runs.freeze(id, true, 600_000_000));
        runs.get_mut(id).expect("live").timers.remove("tick");
        assert!(runs.freeze(id, true, 600_000_000));
    }

    /// Runs of one type compress against the first one frozen: what is left is mostly what
    /// makes each run itself.
    #[test]
    fn later_runs_of_a_type_compress_against_the_first() {
        let mut names = Names::default();
        let mut runs = Runs::default();
        let mut raw = BTreeMap::new();
        for i in 0..50 {
            let run = idle_run(&mut names, &format!("window-{i}"), 1_000 + i * 7_919);
            raw.insert(run.run_id, encode(&run, true).len());
            let id = run.run_id;
            runs.insert(run);
            assert!(runs.freeze(id, true, 0));
        }
        let (blobs, dictionary) = runs.frozen_bytes();
        let raw: usize = raw.values().sum();
        assert!(blobs * 2 < raw, "frozen {blobs} bytes of {raw} raw");
        assert!(dictionary <= raw / 50 + 1);
        for e in runs.values() {
            assert!(e.workflow_id.starts_with("window-"));
            assert_eq!(e.history.len(), 2);
        }
    }

    proptest::proptest! {
        /// Whatever an idle run holds (timers, request ids, memo, history of any size and
        /// content), freezing and thawing gives back the same snapshot and the same bytes, and
        /// so does a run frozen against another run's dictionary.
        #[test]
        fn freezing_round_trips_any_idle_run(
            workflow_id in "[a-z0-9-]{1,40}",
            start in 0i64..4_000_000_000_000_000_000,
            timers in proptest::collection::btree_map("[a-z]{1,12}", (1i64..1_000, 0i64..i64::MAX / 2), 0..5),
            request_ids in proptest::collection::hash_set("[a-f0-9-]{1,36}", 0..4),
            events in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..12),
            keep_history in proptest::bool::ANY,
        ) {
            let mut names = Names::default();
            let mut runs = Runs::default();
            // A first run of the type fixes the dictionary the next one compresses against.
            let first = idle_run(&mut names, "first", 0);
            let first_id = first.run_id;
            runs.insert(first);
            proptest::prop_assert!(runs.freeze(first_id, true, 0));

            let mut e = idle_run(&mut names, &workflow_id, start);
            e.timers.clear();
            for (id, v) in &timers {
                e.timers.insert(id.clone(), *v);
            }
            e.request_ids.extend(request_ids);
            let log = EventLog::from_encoded(&events);
            e.persisted = log.len();
            e.history = log;
            let (id, snapshot, history) = (e.run_id, e.snapshot(), history_bytes(&e));
            runs.insert(e);
            proptest::prop_assert!(runs.freeze(id, keep_history, 0));
            let read = runs.get(id).expect("frozen run is found");
            proptest::prop_assert_eq!(read.snapshot(), snapshot);
            proptest::prop_assert_eq!(read.history.len(), history.len());
            if keep_history {
                proptest::prop_assert_eq!(history_bytes(&read), history);
            } else {
                proptest::prop_assert!(!read.history.is_resident());
                proptest::prop_assert_eq!(
                    read.history.bytes() as usize,
                    history.iter().map(Vec::len).sum::<usize>()
                );
            }
        }
    }
}
