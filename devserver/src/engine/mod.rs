//! The server's state machine: executions, task queues, timers and the virtual clock.
//!
//! Every RPC becomes one call of [`Engine::with_state`]: take the lock, read the virtual clock
//! once (so all events of a batch share a timestamp), mutate, then settle: recount in-flight
//! work for time skipping, hand new events to the [`Store`], and wake the pollers, history
//! long-polls and the timer pump that the change concerns. The lock is never held across an
//! `.await`; long polls wait on [`Notify`]s armed before they look at the state, so no wakeup
//! is lost between looking and sleeping.
//!
//! This module is the facade the service calls ([`Engine`]); `state` holds the state and the
//! transition machinery that runs under the lock, and one module per area (workflows,
//! workflow tasks, activities, children, interactions, operator calls) its transitions.

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
mod state;
mod util;
pub(crate) mod visibility;
mod workflow;
mod workflow_task;

use std::{
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
use ids::{Current, Intern, Names};
pub(crate) use interaction::{QueryOutcome, UpdateStatus, UpdateWithStart};
pub(crate) use ops::{ActivityOp, ActivitySelector, ResetRequest};
use runs::Runs;
pub(crate) use state::*;
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
    store::{Loaded, Store},
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

    /// The engine's state. A transition that panicked may have left it half-applied, so a
    /// poisoned lock breaks the engine: the service refuses every call from then on
    /// (UNAVAILABLE, like a store that fails), while the calls already running finish on the
    /// state as it is, and the server can be stopped cleanly.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|poisoned| {
            if self.inner.broken.why().is_none() {
                self.inner.broken.set("a state transition panicked; see the server's log".into());
            }
            poisoned.into_inner()
        })
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
                let (&(due, _), _) = st.ctx.timers.first_key_value()?;
                if due <= now {
                    let (_, task) = st.ctx.timers.pop_first()?;
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

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use temporalio_protos::temporal::api::workflowservice::v1::{
        GetSystemInfoRequest, workflow_service_client::WorkflowServiceClient,
    };

    use crate::{DevServer, DevServerConfig};

    /// A transition that panics leaves the state possibly half-applied: the lock it poisoned
    /// breaks the engine, and the service refuses calls with UNAVAILABLE instead of serving
    /// from that state.
    #[tokio::test]
    async fn a_panicking_transition_breaks_the_engine() {
        let server = DevServer::start(DevServerConfig::ephemeral()).await.unwrap();
        let mut client = WorkflowServiceClient::connect(server.url()).await.unwrap();
        client.get_system_info(GetSystemInfoRequest::default()).await.expect("healthy at first");

        let engine = server.engine();
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            engine.with_state(|_| panic!("a bug in a transition"));
        }));
        assert!(panicked.is_err());
        assert!(engine.broken().why().is_none(), "nothing has taken the lock since");
        let _ = engine.stats();
        assert!(engine.broken().why().is_some_and(|why| why.contains("panicked")));

        let refused = client
            .get_system_info(GetSystemInfoRequest::default())
            .await
            .expect_err("a broken engine serves nothing");
        assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    }
}
