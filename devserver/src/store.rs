//! The persistence seam.
//!
//! The engine keeps every execution's mutable state in memory (as Temporal's history service
//! keeps its mutable-state cache) and reports each committed change to a [`Store`]. A durable
//! store appends the new history events and rewrites the execution row in one transaction per
//! batch; on start it hands the rows back through [`Store::load`] so the engine can rebuild
//! timers and task queues. [`MemoryStore`] keeps nothing beyond the engine's own state, which
//! is what `temporal server start-dev` does without `--db-filename`.

use temporalio_protos::temporal::api::history::v1::HistoryEvent;

/// One committed change to one execution.
#[derive(Debug)]
pub struct ExecutionChange<'a> {
    /// Namespace of the execution.
    pub namespace: &'a str,
    /// Workflow id.
    pub workflow_id: &'a str,
    /// Run id.
    pub run_id: &'a str,
    /// Events appended by this change, in order.
    pub new_events: &'a [HistoryEvent],
    /// Whether the run is still open after the change.
    pub running: bool,
}

/// Where committed state goes.
pub trait Store: Send + Sync + 'static {
    /// Records a batch of changes. Called with the engine lock held, in commit order; an
    /// implementation must not block for long (group commits belong behind this call).
    fn commit(&self, changes: &[ExecutionChange<'_>]);

    /// A short name for logs.
    fn name(&self) -> &'static str;
}

/// Keeps nothing: state lives and dies with the process.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryStore;

impl Store for MemoryStore {
    fn commit(&self, _changes: &[ExecutionChange<'_>]) {}

    fn name(&self) -> &'static str {
        "memory"
    }
}
