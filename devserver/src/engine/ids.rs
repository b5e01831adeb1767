//! Compact identities for runs and the names they share.
//!
//! A server holding many idle runs pays for every per-run string several times over: as the
//! key of the run map, in the run itself, in the current-run map and in each timer task. Run
//! ids are UUIDs the server made, so they are kept as 16 bytes; namespaces, workflow types and
//! task queues repeat across runs, so each distinct one is allocated once and shared.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::Arc,
};

/// A run id: always a UUID the server generated, written in the canonical lowercase form.
/// Kept as bytes rather than a `u128` so it is byte-aligned: a `u128` would align every
/// timer task and map entry that holds one to 16 bytes. Bytes order as the text does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RunId([u8; 16]);

impl RunId {
    /// A new run id: a UUIDv7, as the Temporal server issues (SDKs check the version).
    pub(crate) fn random() -> Self {
        Self(uuid::Uuid::now_v7().into_bytes())
    }

    /// The run id `s` names, if it is one this server could have issued. Other spellings of
    /// the same UUID (upper case, braces, no hyphens) name no run, as in Temporal, where run
    /// ids are compared as strings.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        if s.len() != 36 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        uuid::Uuid::try_parse(s).ok().map(|u| Self(u.into_bytes()))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&uuid::Uuid::from_bytes(self.0).hyphenated(), f)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<RunId> for String {
    fn from(id: RunId) -> Self {
        id.to_string()
    }
}

impl PartialEq<str> for RunId {
    fn eq(&self, other: &str) -> bool {
        Self::parse(other) == Some(*self)
    }
}

impl PartialEq<&str> for RunId {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl PartialEq<String> for RunId {
    fn eq(&self, other: &String) -> bool {
        *self == **other
    }
}

/// Anything a run can be looked up by.
pub(crate) trait RunKey {
    fn run_id(&self) -> Option<RunId>;
}

impl RunKey for RunId {
    fn run_id(&self) -> Option<RunId> {
        Some(*self)
    }
}

impl RunKey for str {
    fn run_id(&self) -> Option<RunId> {
        RunId::parse(self)
    }
}

impl RunKey for String {
    fn run_id(&self) -> Option<RunId> {
        RunId::parse(self)
    }
}

impl<T: RunKey + ?Sized> RunKey for &T {
    fn run_id(&self) -> Option<RunId> {
        (**self).run_id()
    }
}

/// (namespace, workflow id) → the workflow id's latest run. Keyed per namespace so a lookup
/// borrows the request's strings instead of building a key; the workflow id is the same
/// allocation the runs hold.
#[derive(Default)]
pub(crate) struct Current(HashMap<Arc<str>, HashMap<Arc<str>, RunId>>);

impl Current {
    pub(crate) fn get(&self, namespace: &str, workflow_id: &str) -> Option<RunId> {
        self.0.get(namespace)?.get(workflow_id).copied()
    }

    /// The shared workflow id string, if the workflow id has a run.
    pub(crate) fn workflow_id(&self, namespace: &str, workflow_id: &str) -> Option<Arc<str>> {
        self.0.get(namespace)?.get_key_value(workflow_id).map(|(k, _)| k.clone())
    }

    pub(crate) fn insert(&mut self, namespace: &Arc<str>, workflow_id: &Arc<str>, run: RunId) {
        self.0.entry(namespace.clone()).or_default().insert(workflow_id.clone(), run);
    }
}

/// Strings many runs repeat (namespaces, workflow types, task queues), each allocated once.
/// Never pruned: there are few of them.
#[derive(Default)]
pub(crate) struct Names(HashSet<Arc<str>>);

/// Where a restored run gets its shared strings.
pub(crate) trait Intern {
    fn intern(&mut self, s: &str) -> Arc<str>;
}

impl Intern for Names {
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(name) = self.0.get(s) {
            return name.clone();
        }
        let name: Arc<str> = s.into();
        self.0.insert(name.clone());
        name
    }
}

/// Shares the strings a table already has and allocates the others without keeping them:
/// for copies of runs that are read and dropped.
pub(crate) struct Lookup<'a>(pub(crate) &'a Names);

impl Intern for Lookup<'_> {
    fn intern(&mut self, s: &str) -> Arc<str> {
        self.0.0.get(s).cloned().unwrap_or_else(|| s.into())
    }
}

/// Allocates every string: for strings only one run has (workflow ids).
pub(crate) struct Unshared;

impl Intern for Unshared {
    fn intern(&mut self, s: &str) -> Arc<str> {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_round_trip_and_reject_other_spellings() {
        let id = RunId::random();
        let s = id.to_string();
        assert_eq!(RunId::parse(&s), Some(id));
        assert_eq!(id, s);
        assert_eq!(RunId::parse(&s.to_uppercase()), None);
        assert_eq!(RunId::parse(&s.replace('-', "")), None);
        assert_eq!(RunId::parse("not-a-run"), None);
        assert_eq!(RunId::parse(""), None);
    }

    #[test]
    fn run_ids_order_as_their_text() {
        let mut ids: Vec<RunId> = (0..500).map(|_| RunId::random()).collect();
        let mut texts: Vec<String> = ids.iter().map(RunId::to_string).collect();
        ids.sort_unstable();
        texts.sort_unstable();
        assert_eq!(ids.iter().map(RunId::to_string).collect::<Vec<_>>(), texts);
    }

    /// Every queued timer task holds a run id; a 16-byte-aligned id would pad each to 48.
    #[test]
    fn timer_tasks_stay_small() {
        assert_eq!(std::mem::align_of::<RunId>(), 1);
        assert!(std::mem::size_of::<super::super::TimerTask>() <= 32);
    }
}
