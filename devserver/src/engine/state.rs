//! The engine's state and its transition machinery: the executions, the task queues, the
//! timers and what one transition does before the lock is released ([`State::settle`]).
//! [`super::Engine`] is the facade the service calls; everything here runs under its lock.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use tokio::sync::{Notify, oneshot};

use super::{
    Error, Execution, Result, RunId,
    event_log::EventLog,
    ids::{Current, Names, RunKey},
    interaction,
    runs::{self, Runs},
    visibility,
};
use crate::{
    clock::{Clock, Nanos},
    store::{Batch, RunWrite, Store},
};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct QueueKey {
    pub(super) namespace: String,
    pub(super) name: String,
}

#[derive(Debug, Clone)]
pub(crate) struct WftRef {
    pub(super) run_id: String,
    pub(super) scheduled_event_id: i64,
}

/// What a workflow task queue holds: workflow tasks and legacy query tasks.
#[derive(Debug, Clone)]
pub(crate) enum WfItem {
    Task(WftRef),
    Query { run_id: String, id: u64 },
}

#[derive(Debug, Clone)]
pub(crate) struct ActRef {
    pub(super) run_id: String,
    pub(super) scheduled_event_id: i64,
    pub(super) attempt: i32,
}

#[derive(Debug)]
pub(crate) struct Queue<T> {
    pub(super) items: VecDeque<T>,
    pub(super) notify: Arc<Notify>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self { items: VecDeque::new(), notify: Arc::new(Notify::new()) }
    }
}

/// Identifies a queued timer task.
pub(crate) type TimerKey = (Nanos, u64);

/// How long a namespace keeps a closed run, as `DescribeNamespace` reports it.
pub(crate) const RETENTION_SECS: i64 = 86_400;

/// Which activity clock a timer task belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActivityTimer {
    ScheduleToStart,
    StartToClose,
    Heartbeat,
    ScheduleToClose,
    RetryBackoff,
}

/// Everything that happens at a point in virtual time. Each is checked against current state
/// when it fires, so tasks made stale by later changes are skipped instead of cancelled.
#[derive(Debug)]
pub(crate) enum TimerTask {
    /// The timer's id is looked up by its started event, not kept twice.
    User {
        run_id: RunId,
        started_event_id: i64,
    },
    WorkflowTaskTimeout {
        run_id: RunId,
        scheduled_event_id: i64,
        attempt: i32,
    },
    Activity {
        run_id: RunId,
        scheduled_event_id: i64,
        attempt: i32,
        kind: ActivityTimer,
    },
    RunTimeout {
        run_id: RunId,
    },
    /// A run's first workflow task after a start delay or continue-as-new backoff.
    FirstWorkflowTask {
        run_id: RunId,
    },
    /// A TestService sleep ends; `relock` for UnlockTimeSkippingWithSleep.
    Waker {
        id: u64,
        relock: bool,
    },
}

/// State shared by all executions.
pub(crate) struct Ctx {
    /// Virtual time of the current batch.
    pub(crate) now: Nanos,
    pub(super) clock: Clock,
    pub(super) timers: BTreeMap<(Nanos, u64), TimerTask>,
    pub(super) seq: u64,
    pub(super) task_id: i64,
    pub(super) wf_queues: HashMap<QueueKey, Queue<WfItem>>,
    pub(super) act_queues: HashMap<QueueKey, Queue<ActRef>>,
    pub(super) namespaces: BTreeMap<String, String>,
    pub(super) client_locks: u32,
    pub(super) inflight: i64,
    pub(super) sleepers: HashMap<u64, oneshot::Sender<()>>,
    pub(super) queries: HashMap<u64, interaction::PendingQuery>,
    pub(super) updates_changed: bool,
    pub(super) wake: Vec<Arc<Notify>>,
    pub(super) history_changed: bool,
    pub(super) closed: bool,
    /// Runs closed by the current transition, for their parents and children.
    pub(super) closed_runs: Vec<RunId>,
    pub(super) touched: Vec<RunId>,
    /// Namespaces, workflow types and task queues, shared by the runs that name them.
    pub(crate) names: Names,
    /// (events, bytes) past which `suggest_continue_as_new` is set.
    pub(crate) suggest_can: (usize, i64),
    /// Custom search attributes per namespace.
    pub(crate) registry: visibility::Registry,
    pub(super) registry_dirty: bool,
    /// Descriptions of namespaces registered at run time (RegisterNamespace).
    pub(crate) registered_namespaces: BTreeMap<String, crate::store::NamespaceRecord>,
    pub(super) namespaces_dirty: bool,
}

impl Ctx {
    /// How long `namespace` keeps closed runs, in seconds: as registered, or the default for
    /// the built-in ones.
    pub(crate) fn retention_secs(&self, namespace: &str) -> i64 {
        self.registered_namespaces.get(namespace).map_or(RETENTION_SECS, |r| r.retention_secs)
    }

    pub(super) fn next_task_id(&mut self) -> i64 {
        self.task_id += 1;
        self.task_id
    }

    pub(crate) fn schedule_timer(&mut self, at: Nanos, task: TimerTask) -> TimerKey {
        self.seq += 1;
        self.timers.insert((at, self.seq), task);
        (at, self.seq)
    }

    /// Drops a timer that no longer matters, rather than letting it fire as a no-op.
    pub(crate) fn cancel_timer(&mut self, key: TimerKey) {
        self.timers.remove(&key);
    }

    pub(super) fn push_workflow_task(&mut self, namespace: &str, queue: &str, task: WftRef) {
        self.push_workflow_item(namespace, queue, WfItem::Task(task));
    }

    pub(super) fn push_workflow_item(&mut self, namespace: &str, queue: &str, task: WfItem) {
        let key = QueueKey { namespace: namespace.to_owned(), name: queue.to_owned() };
        let q = self.wf_queues.entry(key).or_default();
        q.items.push_back(task);
        self.wake.push(q.notify.clone());
    }

    pub(super) fn push_activity_task(&mut self, namespace: &str, queue: &str, task: ActRef) {
        let key = QueueKey { namespace: namespace.to_owned(), name: queue.to_owned() };
        let q = self.act_queues.entry(key).or_default();
        q.items.push_back(task);
        self.wake.push(q.notify.clone());
    }

    /// Decodes a task token of `kind`, checking it belongs to `namespace` (when the request
    /// names one) and that the namespace exists.
    pub(super) fn task_token(
        &self,
        token: &[u8],
        namespace: &str,
        kind: crate::token::TokenKind,
    ) -> Result<crate::token::TaskToken> {
        let token = crate::token::TaskToken::decode_bytes(token, kind)
            .ok_or_else(|| Error::InvalidArgument("Error deserializing task token.".into()))?;
        if !namespace.is_empty() && namespace != token.namespace {
            return Err(Error::InvalidArgument(
                "Operation requested with a token from a different namespace.".into(),
            ));
        }
        self.check_namespace(&token.namespace)?;
        Ok(token)
    }

    pub(super) fn check_namespace(&self, namespace: &str) -> Result<()> {
        if self.namespaces.contains_key(namespace) {
            Ok(())
        } else {
            Err(Error::NamespaceNotFound(namespace.to_owned()))
        }
    }

    pub(super) fn can_skip_time(&self) -> bool {
        self.client_locks == 0 && self.inflight == 0
    }
}

pub(crate) struct State {
    /// Every run, by run id.
    pub(crate) execs: Runs,
    /// (namespace, workflow id) → the latest run.
    pub(crate) current: Current,
    pub(crate) ctx: Ctx,
    /// Sequence number of the last batch submitted to the store.
    pub(super) last_seq: u64,
    pub(super) store: Arc<dyn Store>,
    /// Set when the store failed to read back a committed history: the server then refuses
    /// every RPC with UNAVAILABLE (`service::implemented`) rather than go on without it.
    pub(super) broken: Broken,
    /// Idle runs written by batch `seq`, oldest first: once the batch is durable, a run not
    /// written since keeps its history only in the store (when the store can read it back).
    pub(super) evictable: VecDeque<(u64, RunId)>,
}

impl State {
    /// The execution and the shared context, borrowed together; marks the run touched.
    /// Every change to a run goes through here, so a history the store holds is read back
    /// before anything is appended to it.
    ///
    /// `None` if there is no such run, or if its history could not be read back (the engine
    /// is then [`Broken`]); callers that need the run answer [`unreadable`].
    pub(super) fn exec_mut(&mut self, run_id: impl RunKey) -> Option<(&mut Execution, &mut Ctx)> {
        let exec = self.execs.get_mut(run_id)?;
        if !exec.history.is_resident() {
            match read_back(&*self.store, exec) {
                Ok(history) => exec.history = history,
                Err(e) => {
                    self.broken.set(e);
                    return None;
                }
            }
        }
        self.ctx.touched.push(exec.run_id);
        Some((exec, &mut self.ctx))
    }

    /// A run's history for reading: the one in memory, or a copy read from the store, which
    /// leaves an idle run idle.
    pub(super) fn history_of<'a>(&self, exec: &'a Execution) -> Result<Cow<'a, EventLog>> {
        if exec.history.is_resident() {
            return Ok(Cow::Borrowed(&exec.history));
        }
        match read_back(&*self.store, exec) {
            Ok(history) => Ok(Cow::Owned(history)),
            Err(e) => {
                self.broken.set(e);
                Err(unreadable())
            }
        }
    }

    /// Freezes the idle runs whose last write is durable, leaving their histories to the
    /// store, and drops from memory the histories of the others with no workflow task.
    pub(super) fn evict_durable(&mut self, durable: u64) {
        while let Some(&(seq, run_id)) = self.evictable.front() {
            if seq > durable {
                break;
            }
            self.evictable.pop_front();
            let Some(exec) = self.execs.live_mut(run_id) else { continue };
            let idle_and_durable = exec.written_seq <= durable
                && exec.wft.is_none()
                && exec.persisted == exec.history.len();
            if idle_and_durable && !self.execs.freeze(run_id, false, self.ctx.now) {
                // Not freezable (yet): keep the run live but drop its resident history.
                if let Some(exec) = self.execs.live_mut(run_id) {
                    exec.history.evict();
                }
            }
        }
    }

    /// Resolves (workflow id, optional run id) to a run id.
    pub(super) fn resolve(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<String> {
        self.resolve_run(namespace, workflow_id, run_id).map(|(id, _)| id)
    }

    /// The run a request names (the workflow's current run when `run_id` is empty): its id,
    /// and the run itself, which the look-up found.
    pub(super) fn resolve_run(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<(String, runs::RunRef<'_>)> {
        self.ctx.check_namespace(namespace)?;
        let not_found = || {
            Error::NotFound(format!(
                "workflow execution not found for workflow ID \"{workflow_id}\" and run ID \"{run_id}\""
            ))
        };
        if workflow_id.is_empty() {
            return Err(Error::InvalidArgument("WorkflowId is not set on request.".into()));
        }
        if run_id.is_empty() {
            let current = self.current.get(namespace, workflow_id).ok_or_else(not_found)?;
            let exec = self.execs.get(current).ok_or_else(not_found)?;
            return Ok((current.to_string(), exec));
        }
        match self.execs.get(run_id) {
            Some(e) if *e.namespace == *namespace && *e.workflow_id == *workflow_id => {
                Ok((run_id.to_owned(), e))
            }
            _ => Err(not_found()),
        }
    }

    pub(super) fn settle(&mut self, store: &dyn Store) {
        let mut touched = std::mem::take(&mut self.ctx.touched);
        touched.sort_unstable();
        touched.dedup();
        for run_id in &touched {
            let Some(exec) = self.execs.live_mut(run_id) else { continue };
            let now_inflight = exec.inflight();
            self.ctx.inflight += now_inflight - exec.counted_inflight;
            exec.counted_inflight = now_inflight;
        }
        if !store.persistent() {
            // Nothing is written anywhere, so an idle run is frozen with its history.
            for run_id in &touched {
                if let Some(exec) = self.execs.live_mut(run_id) {
                    exec.compact();
                    self.execs.freeze(*run_id, true, self.ctx.now);
                }
            }
            return;
        }
        let mut runs = Vec::with_capacity(touched.len());
        let mut written = Vec::with_capacity(touched.len());
        for run_id in &touched {
            let Some(exec) = self.execs.live_mut(run_id) else { continue };
            written.push(*run_id);
            let current = self.current.get(&exec.namespace, &exec.workflow_id) == Some(*run_id);
            runs.push(RunWrite {
                namespace: exec.namespace.to_string(),
                workflow_id: exec.workflow_id.to_string(),
                run_id: exec.run_id.to_string(),
                running: exec.is_running(),
                current,
                snapshot: exec.snapshot(),
                first_new_event_id: exec.persisted as i64 + 1,
                new_events: (exec.persisted..exec.history.len())
                    .map(|i| exec.history.encoded(i).to_vec())
                    .collect(),
            });
            exec.persisted = exec.history.len();
            exec.compact();
        }
        let search_attributes = std::mem::take(&mut self.ctx.registry_dirty).then(|| {
            self.ctx
                .registry
                .iter()
                .flat_map(|(ns, attrs)| {
                    attrs.iter().map(move |(n, t)| (ns.clone(), n.clone(), *t as i32))
                })
                .collect()
        });
        let namespaces = std::mem::take(&mut self.ctx.namespaces_dirty)
            .then(|| self.ctx.registered_namespaces.values().cloned().collect());
        if !runs.is_empty() || search_attributes.is_some() || namespaces.is_some() {
            self.last_seq = store.submit(Batch {
                runs,
                clock: self.ctx.clock.now(),
                search_attributes,
                namespaces,
            });
            let evicts = store.reads_history();
            for run_id in written {
                let Some(exec) = self.execs.live_mut(run_id) else { continue };
                exec.written_seq = self.last_seq;
                if evicts && exec.wft.is_none() {
                    self.evictable.push_back((self.last_seq, run_id));
                }
            }
        }
    }
}

/// Reads an evicted history back. Its events were durable when it was evicted, so failing
/// to read them means the file is broken under a running server: the error says how.
pub(super) fn read_back(
    store: &dyn Store,
    exec: &Execution,
) -> std::result::Result<EventLog, String> {
    let run = exec.run_id;
    let events = store
        .history(&run.to_string())
        .map_err(|e| format!("run {run}: reading its history from the store failed: {e}"))?
        .ok_or_else(|| format!("run {run}: the store keeps no history to read back"))?;
    exec.history.reloaded(&events).ok_or_else(|| {
        format!("run {run}: the store holds {} events, not the history it committed", events.len())
    })
}

/// The error of a call that needed a history the store could not read back (the log and
/// every later call say why).
pub(crate) fn unreadable() -> Error {
    Error::Unavailable(
        "the devserver's store could not read back a committed history; see the server's log"
            .to_owned(),
    )
}

/// An engine invariant that does not hold (a bug): the call fails instead of panicking under
/// the engine's lock.
pub(crate) fn inconsistent(what: String) -> Error {
    tracing::error!(%what, "devserver state is inconsistent");
    Error::Unavailable(format!("the devserver's state is inconsistent: {what}"))
}

/// Whether the engine's store failed to read back a committed history, and why: shared by the
/// engine's state and the service, which refuses every call once it is set.
#[derive(Debug, Clone, Default)]
pub(crate) struct Broken(Arc<std::sync::OnceLock<String>>);

impl Broken {
    /// Records the first failure (later ones are only logged).
    pub(crate) fn set(&self, why: String) {
        tracing::error!(error = %why, "the devserver is broken: refusing every call from now on");
        let _ = self.0.set(why);
    }

    /// Why the engine is broken, if it is.
    pub(crate) fn why(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

impl State {
    pub(super) fn add_sleeper(&mut self, d: Duration, relock: bool) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.ctx.seq += 1;
        let id = self.ctx.seq;
        self.ctx.sleepers.insert(id, tx);
        let at = self.ctx.now + d.as_nanos() as Nanos;
        self.ctx.schedule_timer(at, TimerTask::Waker { id, relock });
        rx
    }

    pub(super) fn settle_inflight(&mut self) {
        for run_id in &self.ctx.touched {
            if let Some(exec) = self.execs.live_mut(run_id) {
                let now_inflight = exec.inflight();
                self.ctx.inflight += now_inflight - exec.counted_inflight;
                exec.counted_inflight = now_inflight;
            }
        }
    }

    /// Fires one timer task, if it still applies.
    pub(super) fn fire(&mut self, task: TimerTask) {
        match task {
            TimerTask::Waker { id, relock } => {
                if relock {
                    self.ctx.client_locks += 1;
                }
                if let Some(tx) = self.ctx.sleepers.remove(&id) {
                    let _ = tx.send(());
                }
            }
            TimerTask::User { run_id, started_event_id } => {
                self.fire_user_timer(&run_id.to_string(), started_event_id)
            }
            TimerTask::WorkflowTaskTimeout { run_id, scheduled_event_id, attempt } => {
                self.workflow_task_timed_out(&run_id.to_string(), scheduled_event_id, attempt)
            }
            TimerTask::Activity { run_id, scheduled_event_id, attempt, kind } => {
                self.activity_timer(&run_id.to_string(), scheduled_event_id, attempt, kind)
            }
            TimerTask::RunTimeout { run_id } => self.run_timed_out(&run_id.to_string()),
            TimerTask::FirstWorkflowTask { run_id } => {
                if let Some((exec, ctx)) = self.exec_mut(run_id)
                    && exec.is_running()
                    && exec.wft.is_none()
                    && exec.first_task_at.take().is_some()
                {
                    exec.schedule_wft(ctx, 1);
                }
            }
        }
    }
}
