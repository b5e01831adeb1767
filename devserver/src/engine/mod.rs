//! The server's state machine: executions, task queues, timers and the virtual clock.
//!
//! Every RPC becomes one call of [`Engine::with_state`]: take the lock, read the virtual clock
//! once (so all events of a batch share a timestamp), mutate, then settle: recount in-flight
//! work for time skipping, hand new events to the [`Store`], and wake the pollers, history
//! long-polls and the timer pump that the change concerns. The lock is never held across an
//! `.await`; long polls wait on [`Notify`]s armed before they look at the state, so no wakeup
//! is lost between looking and sleeping.

mod activity;
mod children;
mod cold;
mod event_log;
mod execution;
mod external;
mod ids;
mod interaction;
mod ops;
mod runs;
mod snapshot;
mod util;
pub(crate) mod visibility;
mod workflow;
mod workflow_task;

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap, VecDeque},
    pin::pin,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

use temporalio_protos::temporal::api::enums::v1::IndexedValueType;
use tokio::sync::{Notify, oneshot, watch};

pub(crate) use activity::ActivityResponse;
use event_log::EventLog;
pub(crate) use execution::Execution;
pub(crate) use ids::RunId;
use ids::{Current, Intern, Names, RunKey};
pub(crate) use interaction::{QueryOutcome, UpdateStatus, UpdateWithStart};
pub(crate) use ops::{ActivityOp, ActivitySelector, ResetRequest};
use runs::Runs;
pub(crate) use util::{dur_nanos, ts as ts_of, ts_nanos};
pub(crate) use workflow::{HistoryRequest, SignalParams, StartParams};
pub(crate) use workflow_task::Completion;

/// The two kinds of task queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueKind {
    Workflow,
    Activity,
}

use crate::{
    DEFAULT_NAMESPACE, DevServerConfig,
    clock::{self, Clock, Nanos, UnbalancedUnlock},
    store::{Batch, Loaded, RunWrite, Store},
};

/// Errors the engine reports; `service` maps each to the gRPC status real Temporal uses.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("Namespace {0} is not found.")]
    NamespaceNotFound(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{message}")]
    AlreadyStarted {
        message: String,
        start_request_id: String,
        run_id: String,
        first_run_id: String,
    },
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct QueueKey {
    namespace: String,
    name: String,
}

#[derive(Debug, Clone)]
pub(crate) struct WftRef {
    run_id: String,
    scheduled_event_id: i64,
}

/// What a workflow task queue holds: workflow tasks and legacy query tasks.
#[derive(Debug, Clone)]
pub(crate) enum WfItem {
    Task(WftRef),
    Query { run_id: String, id: u64 },
}

#[derive(Debug, Clone)]
pub(crate) struct ActRef {
    run_id: String,
    scheduled_event_id: i64,
    attempt: i32,
}

#[derive(Debug)]
pub(crate) struct Queue<T> {
    items: VecDeque<T>,
    notify: Arc<Notify>,
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
    clock: Clock,
    timers: BTreeMap<(Nanos, u64), TimerTask>,
    seq: u64,
    task_id: i64,
    wf_queues: HashMap<QueueKey, Queue<WfItem>>,
    act_queues: HashMap<QueueKey, Queue<ActRef>>,
    namespaces: BTreeMap<String, String>,
    client_locks: u32,
    inflight: i64,
    sleepers: HashMap<u64, oneshot::Sender<()>>,
    queries: HashMap<u64, interaction::PendingQuery>,
    updates_changed: bool,
    wake: Vec<Arc<Notify>>,
    history_changed: bool,
    closed: bool,
    /// Runs closed by the current transition, for their parents and children.
    closed_runs: Vec<RunId>,
    touched: Vec<RunId>,
    /// Namespaces, workflow types and task queues, shared by the runs that name them.
    pub(crate) names: Names,
    /// (events, bytes) past which `suggest_continue_as_new` is set.
    pub(crate) suggest_can: (usize, i64),
    /// Custom search attributes per namespace.
    pub(crate) registry: visibility::Registry,
    registry_dirty: bool,
    /// Descriptions of namespaces registered at run time (RegisterNamespace).
    pub(crate) registered_namespaces: BTreeMap<String, crate::store::NamespaceRecord>,
    namespaces_dirty: bool,
}

impl Ctx {
    /// How long `namespace` keeps closed runs, in seconds: as registered, or the default for
    /// the built-in ones.
    pub(crate) fn retention_secs(&self, namespace: &str) -> i64 {
        self.registered_namespaces.get(namespace).map_or(RETENTION_SECS, |r| r.retention_secs)
    }

    fn next_task_id(&mut self) -> i64 {
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

    fn push_workflow_task(&mut self, namespace: &str, queue: &str, task: WftRef) {
        self.push_workflow_item(namespace, queue, WfItem::Task(task));
    }

    fn push_workflow_item(&mut self, namespace: &str, queue: &str, task: WfItem) {
        let key = QueueKey { namespace: namespace.to_owned(), name: queue.to_owned() };
        let q = self.wf_queues.entry(key).or_default();
        q.items.push_back(task);
        self.wake.push(q.notify.clone());
    }

    fn push_activity_task(&mut self, namespace: &str, queue: &str, task: ActRef) {
        let key = QueueKey { namespace: namespace.to_owned(), name: queue.to_owned() };
        let q = self.act_queues.entry(key).or_default();
        q.items.push_back(task);
        self.wake.push(q.notify.clone());
    }

    /// Decodes a task token of `kind`, checking it belongs to `namespace` (when the request
    /// names one) and that the namespace exists.
    fn task_token(
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

    fn check_namespace(&self, namespace: &str) -> Result<()> {
        if self.namespaces.contains_key(namespace) {
            Ok(())
        } else {
            Err(Error::NamespaceNotFound(namespace.to_owned()))
        }
    }

    fn can_skip_time(&self) -> bool {
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
    last_seq: u64,
    store: Arc<dyn Store>,
    /// Set when the store failed to read back a committed history: the server then refuses
    /// every RPC with UNAVAILABLE (`service::implemented`) rather than go on without it.
    broken: Broken,
    /// Idle runs written by batch `seq`, oldest first: once the batch is durable, a run not
    /// written since keeps its history only in the store (when the store can read it back).
    evictable: VecDeque<(u64, RunId)>,
}

impl State {
    /// The execution and the shared context, borrowed together; marks the run touched.
    /// Every change to a run goes through here, so a history the store holds is read back
    /// before anything is appended to it.
    ///
    /// `None` if there is no such run, or if its history could not be read back (the engine
    /// is then [`Broken`]); callers that need the run answer [`unreadable`].
    fn exec_mut(&mut self, run_id: impl RunKey) -> Option<(&mut Execution, &mut Ctx)> {
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
    fn history_of<'a>(&self, exec: &'a Execution) -> Result<Cow<'a, EventLog>> {
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
    fn evict_durable(&mut self, durable: u64) {
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
                self.execs.live_mut(run_id).expect("not frozen, so live").history.evict();
            }
        }
    }

    /// Resolves (workflow id, optional run id) to a run id.
    fn resolve(&self, namespace: &str, workflow_id: &str, run_id: &str) -> Result<String> {
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
            return self
                .current
                .get(namespace, workflow_id)
                .map(|id| id.to_string())
                .ok_or_else(not_found);
        }
        match self.execs.get(run_id) {
            Some(e) if *e.namespace == *namespace && *e.workflow_id == *workflow_id => {
                Ok(run_id.to_owned())
            }
            _ => Err(not_found()),
        }
    }

    fn settle(&mut self, store: &dyn Store) {
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

struct Inner {
    state: Mutex<State>,
    /// Wakes the timer pump after any change.
    pump: Notify,
    /// Wakes history long-polls.
    history: Notify,
    /// Wakes callers waiting on an update's stage.
    updates: Notify,
    store: Arc<dyn Store>,
    broken: Broken,
    long_poll: Duration,
    stop: watch::Sender<bool>,
}

/// A snapshot of what the engine holds, for tests, ops and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Runs, open and closed.
    pub executions: usize,
    /// Runs still open.
    pub running: usize,
    /// Timer tasks queued (user timers, timeouts, retries, sleeps).
    pub timers: usize,
    /// Queries waiting for a worker's answer.
    pub pending_queries: usize,
    /// Work that holds time skipping (tasks scheduled or started, activities running).
    pub inflight: i64,
    /// Client time-skipping locks held.
    pub time_locks: u32,
    /// Runs whose history is in memory (frozen or not); with a SQLite file, idle runs keep
    /// theirs only there.
    pub resident_histories: usize,
    /// Idle runs held frozen, as one compressed blob each.
    pub frozen: usize,
    /// Bytes of those blobs, and of the per-type dictionaries they are compressed against.
    pub frozen_bytes: (usize, usize),
}

/// The devserver's engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// An engine over `store`, holding whatever `loaded` recovered from it.
    pub(crate) fn new(
        config: &DevServerConfig,
        store: Arc<dyn Store>,
        loaded: Loaded,
    ) -> std::result::Result<Self, prost::DecodeError> {
        let mut clock = Clock::starting_now();
        if let Some(t) = loaded.clock {
            // Virtual time skipped ahead before the restart stays ahead.
            clock.advance_to(t);
        }
        let mut namespaces = BTreeMap::new();
        for ns in
            std::iter::once(DEFAULT_NAMESPACE).chain(config.namespaces.iter().map(String::as_str))
        {
            namespaces.insert(
                ns.to_owned(),
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, ns.as_bytes()).to_string(),
            );
        }
        let mut ctx = Ctx {
            now: clock.now(),
            clock,
            timers: BTreeMap::new(),
            seq: 0,
            task_id: 0,
            wf_queues: HashMap::new(),
            act_queues: HashMap::new(),
            namespaces,
            client_locks: u32::from(config.time_skipping_locked),
            inflight: 0,
            sleepers: HashMap::new(),
            queries: HashMap::new(),
            updates_changed: false,
            wake: Vec::new(),
            history_changed: false,
            closed: false,
            closed_runs: Vec::new(),
            touched: Vec::new(),
            names: Names::default(),
            suggest_can: (
                config.suggest_continue_as_new_events,
                config.suggest_continue_as_new_bytes,
            ),
            registry: visibility::Registry::new(),
            registry_dirty: false,
            registered_namespaces: BTreeMap::new(),
            namespaces_dirty: false,
        };
        for record in loaded.namespaces {
            let name = record.name.clone();
            ctx.namespaces.entry(name.clone()).or_insert_with(|| {
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
            });
            ctx.registered_namespaces.insert(name, record);
        }
        for (ns, name, ty) in loaded.search_attributes {
            if let Ok(ty) = IndexedValueType::try_from(ty) {
                ctx.registry.entry(ns).or_default().insert(name, ty);
            }
        }
        for ns in ctx.namespaces.keys() {
            for (name, ty) in &config.search_attributes {
                ctx.registry.entry(ns.clone()).or_default().insert(name.clone(), *ty);
            }
        }
        let mut execs = Runs::with_capacity(loaded.runs.len());
        let mut workflow_ids = Names::default();
        let broken = Broken::default();
        for run in loaded.runs {
            let events = EventLog::evicted(run.event_count, run.event_bytes);
            // The last event is decoded anyway (for task ids); it also proves the bytes are ours.
            let last = match &run.last_event {
                Some(bytes) => Some(<temporalio_protos::temporal::api::history::v1::HistoryEvent as prost::Message>::decode(bytes.as_slice())?),
                None => None,
            };
            let mut exec =
                Execution::restore(&run.snapshot, events, &mut ctx.names, &mut workflow_ids)?;
            // Namespaces a previous run of the server registered stay registered.
            ctx.namespaces.entry(exec.namespace.to_string()).or_insert_with(|| {
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, exec.namespace.as_bytes())
                    .to_string()
            });
            exec.rearm(&mut ctx);
            // Everything loaded is durable: an idle run's history can stay in the file.
            if exec.wft.is_some() {
                match read_back(&*store, &exec) {
                    Ok(history) => exec.history = history,
                    Err(e) => broken.set(e),
                }
            }
            exec.counted_inflight = exec.inflight();
            ctx.inflight += exec.counted_inflight;
            ctx.task_id = ctx.task_id.max(last.map_or(0, |e| e.task_id));
            let run_id = exec.run_id;
            execs.insert(exec);
            execs.freeze(run_id, false, ctx.now);
        }
        let mut current = Current::default();
        for (ns, wf, run) in loaded.current {
            if let Some(run) = RunId::parse(&run) {
                current.insert(&ctx.names.intern(&ns), &workflow_ids.intern(&wf), run);
            }
        }
        let state = State {
            execs,
            current,
            ctx,
            last_seq: 0,
            store: store.clone(),
            broken: broken.clone(),
            evictable: VecDeque::new(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                pump: Notify::new(),
                history: Notify::new(),
                updates: Notify::new(),
                store,
                broken,
                long_poll: config.long_poll_timeout,
                stop: watch::channel(false).0,
            }),
        })
    }

    /// Waits until every change made so far is durable. Every RPC calls this before it
    /// answers, so nothing a client was told about can be lost in a crash.
    pub(crate) async fn sync(&self) -> Result<()> {
        let target = self.lock().last_seq;
        let store = &self.inner.store;
        let mut durable = store.durable();
        loop {
            if store.failed() {
                return Err(Error::Unavailable(
                    "the devserver can no longer persist changes".into(),
                ));
            }
            let now_durable = *durable.borrow_and_update();
            if now_durable >= target {
                if store.reads_history() {
                    let mut st = self.lock();
                    if st.evictable.front().is_some_and(|&(seq, _)| seq <= now_durable) {
                        st.evict_durable(now_durable);
                    }
                }
                return Ok(());
            }
            if durable.changed().await.is_err() {
                return Err(Error::Unavailable("the devserver store stopped".into()));
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in a handler must not take the whole server down with a poisoned lock.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one state transition and then wakes whoever it concerns.
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let out = self.transition(f);
        self.inner.pump.notify_one();
        out
    }

    /// A transition without waking the pump (the pump's own steps).
    fn transition<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.lock();
        if !st.evictable.is_empty() {
            let durable = *self.inner.store.durable().borrow();
            st.evict_durable(durable);
        }
        st.ctx.now = st.ctx.clock.now();
        let out = f(&mut st);
        st.propagate_closes();
        st.settle(&*self.inner.store);
        let wake = std::mem::take(&mut st.ctx.wake);
        let history =
            std::mem::take(&mut st.ctx.history_changed) | std::mem::take(&mut st.ctx.closed);
        let updates = std::mem::take(&mut st.ctx.updates_changed);
        drop(st);
        if updates {
            self.inner.updates.notify_waiters();
        }
        for n in wake {
            n.notify_waiters();
        }
        if history {
            self.inner.history.notify_waiters();
        }
        out
    }

    /// Stops long polls; used on shutdown.
    pub(crate) fn stop(&self) {
        self.inner.stop.send_replace(true);
        self.inner.pump.notify_one();
    }

    /// Flushes and closes the store (after the server has stopped serving).
    pub(crate) fn close_store(&self) {
        self.inner.store.close();
    }

    /// Set once the store failed to read back a committed history ([`Broken`]).
    pub(crate) fn broken(&self) -> Broken {
        self.inner.broken.clone()
    }

    pub(crate) fn stop_signal(&self) -> watch::Receiver<bool> {
        self.inner.stop.subscribe()
    }

    pub(crate) fn long_poll(&self) -> Duration {
        self.inner.long_poll
    }

    pub(crate) fn check_namespace(&self, namespace: &str) -> Result<()> {
        self.lock().ctx.check_namespace(namespace)
    }

    /// DescribeNamespace looks a namespace up by name, or by id when no name is given.
    pub(crate) fn find_namespace(&self, name: &str, id: &str) -> Result<(String, String)> {
        let st = self.lock();
        let found = if name.is_empty() {
            st.ctx.namespaces.iter().find(|(_, i)| i.as_str() == id)
        } else {
            st.ctx.namespaces.get_key_value(name)
        };
        found.map(|(n, i)| (n.clone(), i.clone())).ok_or_else(|| {
            Error::NamespaceNotFound(if name.is_empty() { id.to_owned() } else { name.to_owned() })
        })
    }

    /// RegisterNamespace.
    pub(crate) fn register_namespace(
        &self,
        name: &str,
        description: &str,
        retention_secs: Option<i64>,
    ) -> Result<()> {
        if name.trim().is_empty() {
            return Err(Error::InvalidArgument("Namespace is not set on request.".into()));
        }
        self.with_state(|st| {
            if st.ctx.namespaces.contains_key(name) {
                return Err(Error::AlreadyExists("Namespace already exists.".into()));
            }
            let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string();
            st.ctx.namespaces.insert(name.to_owned(), id);
            let record = crate::store::NamespaceRecord {
                name: name.to_owned(),
                description: description.to_owned(),
                retention_secs: retention_secs.unwrap_or(RETENTION_SECS),
            };
            st.ctx.registered_namespaces.insert(name.to_owned(), record);
            st.ctx.namespaces_dirty = true;
            Ok(())
        })
    }

    /// A namespace's description and retention in seconds.
    pub(crate) fn namespace_settings(&self, name: &str) -> (String, i64) {
        let st = self.lock();
        let description = st.ctx.registered_namespaces.get(name).map(|r| r.description.clone());
        (description.unwrap_or_default(), st.ctx.retention_secs(name))
    }

    /// The notifier pollers of a queue wait on.
    pub(crate) fn queue_notify(&self, kind: QueueKind, namespace: &str, name: &str) -> Arc<Notify> {
        let mut st = self.lock();
        let key = QueueKey { namespace: namespace.to_owned(), name: name.to_owned() };
        match kind {
            QueueKind::Workflow => st.ctx.wf_queues.entry(key).or_default().notify.clone(),
            QueueKind::Activity => st.ctx.act_queues.entry(key).or_default().notify.clone(),
        }
    }

    /// Holds a poll that can never be answered until its long poll ends or the server stops.
    pub(crate) async fn park(&self, timeout: Duration) {
        let mut stop = self.stop_signal();
        tokio::select! {
            _ = tokio::time::sleep(timeout) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }

    /// What the engine holds right now.
    pub fn stats(&self) -> Stats {
        let st = self.lock();
        Stats {
            executions: st.execs.len(),
            running: st.execs.values().filter(|e| e.is_running()).count(),
            timers: st.ctx.timers.len(),
            pending_queries: st.ctx.queries.len(),
            inflight: st.ctx.inflight,
            time_locks: st.ctx.client_locks,
            resident_histories: st.execs.values().filter(|e| e.history.is_resident()).count(),
            frozen: st.execs.counts().1,
            frozen_bytes: st.execs.frozen_bytes(),
        }
    }

    // ---- time -------------------------------------------------------------------------

    /// The current virtual time.
    pub fn now(&self) -> SystemTime {
        clock::to_system_time(self.lock().ctx.clock.now())
    }

    pub(crate) fn now_nanos(&self) -> Nanos {
        self.lock().ctx.clock.now()
    }

    pub(crate) fn pump_notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.pump.notified()
    }

    /// Fires what is due, skips idle time where allowed, and says how long (in real time) the
    /// pump may sleep before the next timer is due.
    pub(crate) fn pump_step(&self) -> Option<Duration> {
        self.transition(|st| {
            loop {
                let now = st.ctx.clock.now();
                let (&(due, seq), _) = st.ctx.timers.first_key_value()?;
                if due <= now {
                    let task = st.ctx.timers.remove(&(due, seq)).expect("peeked");
                    st.ctx.now = now;
                    st.fire(task);
                    // Recount in-flight work before deciding whether to skip further.
                    st.settle_inflight();
                    continue;
                }
                if st.ctx.can_skip_time() {
                    st.ctx.clock.advance_to(due);
                    continue;
                }
                return Some(Duration::from_nanos((due - now) as u64));
            }
        })
    }

    pub(crate) fn lock_time_skipping(&self) {
        self.with_state(|st| st.ctx.client_locks += 1);
    }

    pub(crate) fn unlock_time_skipping(&self) -> std::result::Result<(), UnbalancedUnlock> {
        self.with_state(|st| {
            if st.ctx.client_locks == 0 {
                return Err(UnbalancedUnlock);
            }
            st.ctx.client_locks -= 1;
            Ok(())
        })
    }

    /// UnlockTimeSkippingWithSleep: the Java server unlocks, schedules a callback at now + d
    /// that takes the lock again, and returns when it has fired.
    pub(crate) async fn unlock_with_sleep(&self, d: Duration) {
        let rx = self.with_state(|st| {
            st.ctx.client_locks = st.ctx.client_locks.saturating_sub(1);
            st.add_sleeper(d, true)
        });
        self.await_sleeper(rx).await;
    }

    /// Sleep in virtual time without touching the locks.
    pub(crate) async fn sleep(&self, d: Duration) {
        let rx = self.with_state(|st| st.add_sleeper(d, false));
        self.await_sleeper(rx).await;
    }

    /// Sleep until an absolute virtual time.
    pub(crate) async fn sleep_until(&self, t: Nanos) {
        let rx = self.with_state(|st| {
            let d = Duration::from_nanos((t - st.ctx.now).max(0) as u64);
            st.add_sleeper(d, false)
        });
        self.await_sleeper(rx).await;
    }

    async fn await_sleeper(&self, rx: oneshot::Receiver<()>) {
        let mut stop = self.stop_signal();
        tokio::select! {
            _ = rx => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }

    /// Waits for `notify` (armed before `check` runs) until `check` yields, the long poll
    /// expires, or the server stops.
    pub(crate) async fn long_poll_on<T>(
        &self,
        notify: &Notify,
        timeout: Duration,
        mut check: impl FnMut(&Self) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut stop = self.stop_signal();
        loop {
            let mut woken = pin!(notify.notified());
            woken.as_mut().enable();
            if let Some(v) = check(self)? {
                return Ok(Some(v));
            }
            if *stop.borrow() {
                return Ok(None);
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(None),
                _ = stop.changed() => return Ok(None),
            }
        }
    }

    pub(crate) fn history_notify(&self) -> &Notify {
        &self.inner.history
    }

    pub(crate) fn updates_notify(&self) -> &Notify {
        &self.inner.updates
    }
}

/// Reads an evicted history back. Its events were durable when it was evicted, so failing
/// to read them means the file is broken under a running server: the error says how.
fn read_back(store: &dyn Store, exec: &Execution) -> std::result::Result<EventLog, String> {
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

/// Whether the engine's store failed to read back a committed history, and why: shared by the
/// engine's state and the service, which refuses every call once it is set.
#[derive(Debug, Clone, Default)]
pub(crate) struct Broken(Arc<std::sync::OnceLock<String>>);

impl Broken {
    /// Records the first failure (later ones are only logged).
    pub(crate) fn set(&self, why: String) {
        tracing::error!(error = %why, "devserver store failure: refusing every call from now on");
        let _ = self.0.set(why);
    }

    /// Why the engine is broken, if it is.
    pub(crate) fn why(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

impl State {
    fn add_sleeper(&mut self, d: Duration, relock: bool) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.ctx.seq += 1;
        let id = self.ctx.seq;
        self.ctx.sleepers.insert(id, tx);
        let at = self.ctx.now + d.as_nanos() as Nanos;
        self.ctx.schedule_timer(at, TimerTask::Waker { id, relock });
        rx
    }

    fn settle_inflight(&mut self) {
        for run_id in &self.ctx.touched {
            if let Some(exec) = self.execs.live_mut(run_id) {
                let now_inflight = exec.inflight();
                self.ctx.inflight += now_inflight - exec.counted_inflight;
                exec.counted_inflight = now_inflight;
            }
        }
    }

    /// Fires one timer task, if it still applies.
    fn fire(&mut self, task: TimerTask) {
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
