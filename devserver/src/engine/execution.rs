//! One workflow run's mutable state and the rules for writing its history.
//!
//! Three rules from Temporal's history service shape everything here:
//! - An event that arrives while a workflow task is *started* is buffered, gets no id, and is
//!   flushed after the task's completion events, completions last.
//! - An event that arrives while a task is only *scheduled* is appended at once, between
//!   `WorkflowTaskScheduled` and `WorkflowTaskStarted`; the pending task will carry it.
//! - Otherwise the event is appended and a new workflow task is scheduled.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

use temporalio_protos::temporal::api::{
    common::v1::{Memo, Payloads, RetryPolicy, SearchAttributes},
    enums::v1::{TaskQueueKind, WorkflowExecutionStatus, WorkflowTaskFailedCause},
    failure::v1::Failure,
    history::v1::{
        HistoryEvent, WorkflowTaskFailedEventAttributes, WorkflowTaskScheduledEventAttributes,
        WorkflowTaskStartedEventAttributes, history_event::Attributes,
    },
    taskqueue::v1::TaskQueue,
};

use super::{Ctx, TimerTask, WftRef, cold::Lazy, ids::RunId, util};
use crate::clock::Nanos;

/// A started-event id not known yet: wired to the transient `ActivityTaskStarted` written in
/// the same batch when ids are assigned.
pub(crate) const STARTED_ID_PENDING: i64 = -1;

#[derive(Debug, Clone)]
pub(crate) struct Wft {
    pub(crate) scheduled_event_id: i64,
    pub(crate) attempt: i32,
    pub(crate) scheduled_time: Nanos,
    pub(crate) original_scheduled_time: Nanos,
    pub(crate) started: Option<WftStarted>,
    /// Query ids answered by this task (`queries` in its poll response).
    pub(crate) queries: Vec<u64>,
    /// Scheduled only to carry updates: nothing is written unless the completion has
    /// something to record, so a rejected update leaves no trace (Temporal's speculative task).
    pub(crate) speculative: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct WftStarted {
    pub(crate) event_id: i64,
    pub(crate) time: Nanos,
    /// The start-to-close timeout's timer, removed when the task ends first.
    pub(crate) timeout: Option<super::TimerKey>,
    pub(crate) identity: String,
    pub(crate) request_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActivityState {
    Scheduled,
    Started,
    /// Waiting out a retry backoff; not in-flight work for time skipping.
    Backoff,
}

#[derive(Debug, Clone)]
pub(crate) struct Activity {
    pub(crate) activity_id: String,
    pub(crate) activity_type: String,
    pub(crate) task_queue: String,
    pub(crate) header: Option<temporalio_protos::temporal::api::common::v1::Header>,
    pub(crate) input: Option<Payloads>,
    pub(crate) schedule_to_close: Option<Nanos>,
    pub(crate) schedule_to_start: Option<Nanos>,
    pub(crate) start_to_close: Nanos,
    pub(crate) heartbeat: Option<Nanos>,
    pub(crate) retry: RetryPolicy,
    pub(crate) attempt: i32,
    pub(crate) state: ActivityState,
    pub(crate) first_scheduled_time: Nanos,
    pub(crate) attempt_scheduled_time: Nanos,
    pub(crate) started_time: Option<Nanos>,
    pub(crate) started_identity: String,
    pub(crate) started_request_id: String,
    pub(crate) last_failure: Option<Failure>,
    pub(crate) last_worker_identity: String,
    pub(crate) heartbeat_details: Option<Payloads>,
    pub(crate) last_heartbeat_time: Option<Nanos>,
    pub(crate) last_attempt_complete_time: Option<Nanos>,
    pub(crate) next_attempt_time: Option<Nanos>,
    pub(crate) current_retry_interval: Option<Nanos>,
    pub(crate) cancel_requested_event_id: Option<i64>,
    /// Paused by an operator: no further attempts are dispatched until unpaused.
    pub(crate) paused: bool,
    /// Who paused it, when and why (set while `paused`).
    pub(crate) pause: Option<Box<Pause>>,
    /// Reset by an operator while its attempt runs: its heartbeats say so until the next
    /// attempt.
    pub(crate) reset_requested: bool,
    /// The scheduling command's priority, handed to the worker with each attempt.
    pub(crate) priority: Option<temporalio_protos::temporal::api::common::v1::Priority>,
}

/// An operator's pause of an activity.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pause {
    pub(crate) time: Nanos,
    pub(crate) identity: String,
    pub(crate) reason: String,
    pub(crate) request_id: String,
}

/// Pending user timers: id → (started event id, fire time). A run rarely has more than a
/// few, and most idle runs have exactly one, so they are packed into one exact-size buffer
/// (started id, fire time, id length, id bytes per timer) rather than a vector of entries
/// that each own a separately allocated id.
#[derive(Debug, Default, Clone)]
pub(crate) struct Timers(Vec<u8>);

/// Bytes before a timer's id: started event id, fire time, id length.
const TIMER_HEADER: usize = 8 + 8 + 4;

impl Timers {
    /// (offset of the entry, id, (started event id, fire time)) of each timer.
    fn entries(&self) -> impl Iterator<Item = (usize, &str, (i64, Nanos))> {
        let buf = &self.0;
        let mut at = 0;
        std::iter::from_fn(move || {
            let header = buf.get(at..at + TIMER_HEADER)?;
            let started = i64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
            let fire_at = i64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
            let len = u32::from_le_bytes(header[16..20].try_into().expect("4 bytes")) as usize;
            let id = std::str::from_utf8(&buf[at + TIMER_HEADER..at + TIMER_HEADER + len])
                .expect("written from a str");
            let entry = (at, id, (started, fire_at));
            at += TIMER_HEADER + len;
            Some(entry)
        })
    }

    /// The id of the timer started by event `started_event_id`, if it is still pending.
    pub(crate) fn started_by(&self, started_event_id: i64) -> Option<&str> {
        self.entries().find(|(_, _, (s, _))| *s == started_event_id).map(|(_, id, _)| id)
    }

    pub(crate) fn insert(&mut self, id: String, v: (i64, Nanos)) {
        let found = self.entries().find(|(_, k, _)| **k == *id).map(|(at, _, _)| at);
        if let Some(at) = found {
            self.0[at..at + 8].copy_from_slice(&v.0.to_le_bytes());
            self.0[at + 8..at + 16].copy_from_slice(&v.1.to_le_bytes());
            return;
        }
        self.0.reserve_exact(TIMER_HEADER + id.len());
        self.0.extend_from_slice(&v.0.to_le_bytes());
        self.0.extend_from_slice(&v.1.to_le_bytes());
        self.0.extend_from_slice(&(id.len() as u32).to_le_bytes());
        self.0.extend_from_slice(id.as_bytes());
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<(i64, Nanos)> {
        let (at, len, v) =
            self.entries().find(|(_, k, _)| *k == id).map(|(at, k, v)| (at, k.len(), v))?;
        self.0.drain(at..at + TIMER_HEADER + len);
        self.0.shrink_to_fit();
        Some(v)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries().map(|(_, id, _)| id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, (i64, Nanos))> {
        self.entries().map(|(_, id, v)| (id, v))
    }

    pub(crate) fn clear(&mut self) {
        self.0 = Vec::new();
    }
}

impl FromIterator<(String, (i64, Nanos))> for Timers {
    fn from_iter<I: IntoIterator<Item = (String, (i64, Nanos))>>(iter: I) -> Self {
        let mut timers = Self::default();
        for (id, v) in iter {
            timers.insert(id, v);
        }
        timers
    }
}

/// A command's user metadata and event-group markers, copied onto the event it writes.
pub(crate) type EventMeta = (
    Option<temporalio_protos::temporal::api::sdk::v1::UserMetadata>,
    Vec<temporalio_protos::temporal::api::sdk::v1::EventGroupMarker>,
);

/// An update's progress through the protocol.
#[derive(Debug, Clone)]
pub(crate) struct UpdateEntry {
    pub(crate) id: String,
    pub(crate) request: temporalio_protos::temporal::api::update::v1::Request,
    pub(crate) stage: UpdateStage,
    /// Delivered in the poll response of a task that has not finished yet.
    pub(crate) sent: bool,
    pub(crate) accepted_event_id: i64,
    pub(crate) outcome: Option<temporalio_protos::temporal::api::update::v1::Outcome>,
}

pub(crate) use temporalio_protos::temporal::api::enums::v1::UpdateWorkflowExecutionLifecycleStage as UpdateStage;
use temporalio_protos::temporal::api::workflow::v1::PendingWorkflowTaskInfo;

/// The stage of an update its run aborted by closing before accepting it (no lifecycle stage
/// of the API: its caller gets an error instead).
pub(crate) const ABORTED: UpdateStage = UpdateStage::Unspecified;

impl Activity {
    /// A first attempt, as its `ActivityTaskScheduled` event describes it (the server has
    /// already filled in the task queue, timeouts and retry policy there).
    pub(crate) fn scheduled(
        a: &temporalio_protos::temporal::api::history::v1::ActivityTaskScheduledEventAttributes,
        at: Nanos,
    ) -> Self {
        let schedule_to_close = util::dur_nanos(a.schedule_to_close_timeout.as_ref());
        Activity {
            activity_id: a.activity_id.clone(),
            activity_type: a.activity_type.clone().unwrap_or_default().name,
            task_queue: a.task_queue.as_ref().map(|q| q.name.clone()).unwrap_or_default(),
            header: a.header.clone(),
            input: a.input.clone(),
            schedule_to_close,
            schedule_to_start: util::dur_nanos(a.schedule_to_start_timeout.as_ref()),
            start_to_close: util::dur_nanos(a.start_to_close_timeout.as_ref())
                .or(schedule_to_close)
                .unwrap_or(util::secs(10)),
            heartbeat: util::dur_nanos(a.heartbeat_timeout.as_ref()),
            retry: super::activity::retry_policy_with_defaults(a.retry_policy.clone()),
            attempt: 1,
            state: ActivityState::Scheduled,
            first_scheduled_time: at,
            attempt_scheduled_time: at,
            started_time: None,
            started_identity: String::new(),
            started_request_id: String::new(),
            last_failure: None,
            last_worker_identity: String::new(),
            heartbeat_details: None,
            last_heartbeat_time: None,
            last_attempt_complete_time: None,
            next_attempt_time: None,
            current_retry_interval: None,
            cancel_requested_event_id: None,
            paused: false,
            pause: None,
            reset_requested: false,
            priority: a.priority.clone(),
        }
    }
}

/// A run whose next timer is due sooner than this is left live rather than frozen.
pub(crate) const FREEZE_HORIZON: Nanos = 1_000_000_000;

/// One run of a workflow.
#[derive(Debug)]
pub(crate) struct Execution {
    pub(crate) namespace: Arc<str>,
    /// Shared with the current-run map and the workflow id's other runs.
    pub(crate) workflow_id: Arc<str>,
    pub(crate) run_id: RunId,
    pub(crate) first_run_id: RunId,
    pub(crate) workflow_type: Arc<str>,
    pub(crate) task_queue: Arc<str>,
    pub(crate) start_request_id: Box<str>,
    pub(crate) task_timeout: Nanos,
    pub(crate) run_timeout: Option<Nanos>,
    pub(crate) execution_timeout: Option<Nanos>,
    pub(crate) status: WorkflowExecutionStatus,
    pub(crate) start_time: Nanos,
    pub(crate) close_time: Option<Nanos>,
    pub(crate) memo: Option<Box<Memo>>,
    pub(crate) search_attributes: Option<Box<SearchAttributes>>,
    pub(crate) history: super::event_log::EventLog,
    /// How many events the store has been told about.
    pub(crate) persisted: usize,
    /// Sequence number of the last store batch that wrote this run.
    pub(crate) written_seq: u64,
    pub(crate) wft: Option<Box<Wft>>,
    pub(crate) last_completed_started_id: i64,
    /// Pending user timers: id → (started event id, fire time).
    pub(crate) timers: Timers,
    /// The workflow retry policy from the start request, and this run's attempt.
    pub(crate) retry_policy: Option<Box<RetryPolicy>>,
    pub(crate) attempt: i32,
    /// The start request's static summary and details.
    pub(crate) user_metadata: Option<Box<temporalio_protos::temporal::api::sdk::v1::UserMetadata>>,
    /// In-flight work last reported to the clock (see `clock` module docs).
    pub(crate) counted_inflight: i64,
    /// Read and written as if its fields were the run's own (through `Deref`).
    extra: Lazy<Extra>,
}

/// What a run holds only while something is in progress (activities, updates, buffered
/// events, queries, a start delay) or after something rare happened to it (signals with
/// request ids, a cancel request). An idle run has none of it, and a [`Lazy`] costs it one
/// pointer instead of some 200 bytes. `Execution` derefs to it so the engine reads
/// `exec.activities` whichever struct holds the field; a write allocates it, and
/// [`Execution::compact`] frees it once it is empty again.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    pub(crate) buffered: Vec<Attributes>,
    pub(crate) activities: BTreeMap<i64, Activity>,
    /// When the first workflow task is due, while a start delay or backoff runs.
    pub(crate) first_task_at: Option<Nanos>,
    pub(crate) cancel_requested: bool,
    pub(crate) request_ids: HashSet<String>,
    pub(crate) updates: Vec<UpdateEntry>,
    /// Queries that arrived while a task was started; they ride the next task.
    pub(crate) waiting_queries: Vec<u64>,
    /// Legacy query tasks outstanding; they hold time skipping like any in-flight work.
    pub(crate) legacy_queries: i64,
    /// Scheduled id → id of the transient started event written for it in this batch.
    started_ids: HashMap<i64, i64>,
    /// A command's user metadata and event-group markers, for the next event appended.
    pub(crate) next_event_meta: Option<Box<EventMeta>>,
    /// Deliveries to other workflows owed by commands of the task being completed.
    pub(crate) owed_external: Vec<super::external::External>,
    /// Set by a ContinueAsNew command: the run to create once this one is closed.
    pub(crate) continue_as_new: Option<Box<super::workflow::NewRun>>,
    /// The parent, for a child workflow's run.
    pub(crate) parent: Option<Box<super::children::ParentLink>>,
    /// Children started by this run whose end it has not been told of.
    pub(crate) children: Vec<super::children::ChildLink>,
    /// The workflow task that was pending when the run was closed from outside (terminated,
    /// timed out), which describe still reports, as the Temporal server does.
    pub(crate) closed_wft: Option<Box<PendingWorkflowTaskInfo>>,
}

impl super::cold::Cold for Extra {
    fn empty() -> &'static Self {
        static EMPTY: std::sync::LazyLock<Extra> = std::sync::LazyLock::new(Extra::default);
        &EMPTY
    }

    fn is_empty(&self) -> bool {
        let Extra {
            buffered,
            activities,
            first_task_at,
            cancel_requested,
            request_ids,
            updates,
            waiting_queries,
            legacy_queries,
            started_ids,
            next_event_meta,
            owed_external,
            continue_as_new,
            parent,
            children,
            closed_wft,
        } = self;
        buffered.is_empty()
            && activities.is_empty()
            && first_task_at.is_none()
            && !cancel_requested
            && request_ids.is_empty()
            && updates.is_empty()
            && waiting_queries.is_empty()
            && *legacy_queries == 0
            && started_ids.is_empty()
            && next_event_meta.is_none()
            && owed_external.is_empty()
            && continue_as_new.is_none()
            && parent.is_none()
            && children.is_empty()
            && closed_wft.is_none()
    }
}

impl std::ops::Deref for Execution {
    type Target = Extra;

    fn deref(&self) -> &Extra {
        &self.extra
    }
}

impl std::ops::DerefMut for Execution {
    fn deref_mut(&mut self) -> &mut Extra {
        &mut self.extra
    }
}

impl Execution {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        namespace: Arc<str>,
        workflow_id: Arc<str>,
        run_id: RunId,
        workflow_type: Arc<str>,
        task_queue: Arc<str>,
        start_request_id: String,
        task_timeout: Nanos,
        now: Nanos,
    ) -> Self {
        Self {
            namespace,
            workflow_id,
            first_run_id: run_id,
            run_id,
            workflow_type,
            task_queue,
            start_request_id: start_request_id.into_boxed_str(),
            task_timeout,
            run_timeout: None,
            execution_timeout: None,
            status: WorkflowExecutionStatus::Running,
            start_time: now,
            close_time: None,
            memo: None,
            search_attributes: None,
            history: Default::default(),
            persisted: 0,
            written_seq: 0,
            wft: None,
            last_completed_started_id: 0,
            timers: Timers::default(),
            user_metadata: None,
            retry_policy: None,
            attempt: 1,
            counted_inflight: 0,
            extra: Lazy::default(),
        }
    }

    /// Frees what a run holds only while something is in progress; called after each
    /// transition that touched it.
    pub(crate) fn compact(&mut self) {
        self.extra.compact();
        if self.wft.is_none() {
            self.history.shrink();
        }
    }

    /// Whether the run is worth freezing at `now` (see the `runs` module): nothing in flight,
    /// nothing set that its snapshot and history do not hold, and no timer or delayed first
    /// task due within [`FREEZE_HORIZON`], since it would only be thawed again at once.
    pub(crate) fn freezable(&self, now: Nanos) -> bool {
        let Extra {
            buffered,
            activities,
            first_task_at,
            cancel_requested: _,
            request_ids: _,
            updates,
            waiting_queries,
            legacy_queries,
            started_ids,
            next_event_meta,
            owed_external,
            continue_as_new,
            parent: _,
            children: _,
            closed_wft: _,
        } = &*self.extra;
        let soon = |at: Nanos| at.saturating_sub(now) < FREEZE_HORIZON;
        self.wft.is_none()
            && self.counted_inflight == 0
            && !self.timers.iter().any(|(_, (_, at))| soon(at))
            && !first_task_at.is_some_and(soon)
            && buffered.is_empty()
            && activities.is_empty()
            && updates.iter().all(|u| !u.sent)
            && waiting_queries.is_empty()
            && *legacy_queries == 0
            && started_ids.is_empty()
            && next_event_meta.is_none()
            && owed_external.is_empty()
            && continue_as_new.is_none()
    }

    pub(crate) fn is_running(&self) -> bool {
        self.status == WorkflowExecutionStatus::Running
    }

    pub(crate) fn wft_started(&self) -> bool {
        self.wft.as_ref().is_some_and(|w| w.started.is_some())
    }

    pub(crate) fn next_event_id(&self) -> i64 {
        self.history.len() as i64 + 1
    }

    /// Work that holds time skipping: a pending workflow task, and each activity that is
    /// scheduled or running.
    pub(crate) fn inflight(&self) -> i64 {
        if !self.is_running() {
            return self.legacy_queries;
        }
        let acts = self.activities.values().filter(|a| a.state != ActivityState::Backoff).count();
        i64::from(self.wft.is_some()) + acts as i64 + self.legacy_queries
    }

    /// Appends one event now, assigning its id.
    pub(crate) fn append(&mut self, ctx: &mut Ctx, attrs: Attributes) -> i64 {
        let now = ctx.now;
        self.append_at(ctx, attrs, now)
    }

    /// Appends one event stamped with `time` (a speculative task's events keep the times
    /// they happened at).
    pub(crate) fn append_at(&mut self, ctx: &mut Ctx, mut attrs: Attributes, time: Nanos) -> i64 {
        let event_id = self.next_event_id();
        self.wire_started_id(event_id, &mut attrs);
        let (user_metadata, event_group_markers) =
            self.next_event_meta.take().map(|m| *m).unwrap_or_default();
        let event = HistoryEvent {
            event_id,
            event_time: util::ts(time),
            event_type: util::event_type_of(&attrs) as i32,
            task_id: ctx.next_task_id(),
            user_metadata,
            event_group_markers,
            attributes: Some(attrs),
            ..Default::default()
        };
        self.history.push(&event);
        ctx.history_changed = true;
        event_id
    }

    fn wire_started_id(&mut self, event_id: i64, attrs: &mut Attributes) {
        let slot = match attrs {
            Attributes::ActivityTaskStartedEventAttributes(a) => {
                self.started_ids.insert(a.scheduled_event_id, event_id);
                return;
            }
            Attributes::ActivityTaskCompletedEventAttributes(a) => {
                Some((a.scheduled_event_id, &mut a.started_event_id))
            }
            Attributes::ActivityTaskFailedEventAttributes(a) => {
                Some((a.scheduled_event_id, &mut a.started_event_id))
            }
            Attributes::ActivityTaskTimedOutEventAttributes(a) => {
                Some((a.scheduled_event_id, &mut a.started_event_id))
            }
            Attributes::ActivityTaskCanceledEventAttributes(a) => {
                Some((a.scheduled_event_id, &mut a.started_event_id))
            }
            _ => None,
        };
        if let Some((scheduled, started)) = slot
            && *started == STARTED_ID_PENDING
        {
            *started = self.started_ids.remove(&scheduled).unwrap_or(0);
        }
    }

    /// Delivers events from outside the workflow (signals, timer fires, activity results,
    /// cancel requests): buffered while a task is started, otherwise appended, and a workflow
    /// task is scheduled if none is pending.
    pub(crate) fn deliver(&mut self, ctx: &mut Ctx, events: Vec<Attributes>) {
        if self.wft_started() {
            self.buffered.extend(events);
            return;
        }
        // New events turn a speculative task into a normal one.
        self.materialize_speculative(ctx);
        for attrs in events {
            self.append(ctx, attrs);
        }
        if self.wft.is_none() {
            self.schedule_wft(ctx, 1);
        }
    }

    /// Appends buffered events, completions last. Returns whether there were any.
    pub(crate) fn flush_buffer(&mut self, ctx: &mut Ctx) -> bool {
        if self.buffered.is_empty() {
            return false;
        }
        let (last, first): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.buffered).into_iter().partition(util::reordered_last);
        for attrs in first.into_iter().chain(last) {
            self.append(ctx, attrs);
        }
        true
    }

    /// Ends the current workflow task (it completed or failed, or the run closed).
    pub(crate) fn end_wft(&mut self, ctx: &mut Ctx) {
        if let Some(key) = self.wft.take().and_then(|w| w.started).and_then(|s| s.timeout) {
            ctx.cancel_timer(key);
        }
    }

    pub(crate) fn schedule_wft(&mut self, ctx: &mut Ctx, attempt: i32) {
        if let Some(key) =
            self.wft.as_ref().and_then(|w| w.started.as_ref()).and_then(|s| s.timeout)
        {
            ctx.cancel_timer(key);
        }
        let original = self.wft.as_ref().map(|w| w.original_scheduled_time).unwrap_or(ctx.now);
        let queries = self.take_queries();
        let scheduled_event_id = self.append(ctx, self.wft_scheduled_event(attempt));
        self.wft = Some(Box::new(Wft {
            scheduled_event_id,
            attempt,
            scheduled_time: ctx.now,
            original_scheduled_time: if attempt > 1 { original } else { ctx.now },
            started: None,
            queries,
            speculative: false,
        }));
        ctx.push_workflow_task(
            &self.namespace,
            &self.task_queue,
            WftRef { run_id: self.run_id.to_string(), scheduled_event_id },
        );
    }

    /// Queries of the current task and those waiting for the next, taken to move them on.
    pub(crate) fn take_queries(&mut self) -> Vec<u64> {
        let mut queries =
            self.wft.as_mut().map(|w| std::mem::take(&mut w.queries)).unwrap_or_default();
        queries.append(&mut self.waiting_queries);
        queries
    }

    /// Schedules a task that carries only update requests; see [`Wft::speculative`].
    pub(crate) fn schedule_speculative_wft(&mut self, ctx: &mut Ctx) {
        let queries = self.take_queries();
        let scheduled_event_id = self.next_event_id();
        self.wft = Some(Box::new(Wft {
            scheduled_event_id,
            attempt: 1,
            scheduled_time: ctx.now,
            original_scheduled_time: ctx.now,
            started: None,
            queries,
            speculative: true,
        }));
        ctx.push_workflow_task(
            &self.namespace,
            &self.task_queue,
            WftRef { run_id: self.run_id.to_string(), scheduled_event_id },
        );
    }

    /// Writes a speculative task's scheduled (and started) events, at the ids and times the
    /// worker was shown, making it a normal task.
    pub(crate) fn materialize_speculative(&mut self, ctx: &mut Ctx) {
        let Some(wft) = self.wft.clone().filter(|w| w.speculative) else { return };
        self.append_at(ctx, self.wft_scheduled_event(1), wft.scheduled_time);
        if let Some(started) = &wft.started {
            let attrs = self.wft_started_event(
                wft.scheduled_event_id,
                &started.identity,
                &started.request_id,
            );
            self.append_at(ctx, attrs, started.time);
        }
        if let Some(w) = self.wft.as_mut() {
            w.speculative = false;
        }
    }

    pub(crate) fn wft_scheduled_event(&self, attempt: i32) -> Attributes {
        Attributes::WorkflowTaskScheduledEventAttributes(WorkflowTaskScheduledEventAttributes {
            task_queue: Some(TaskQueue {
                name: self.task_queue.to_string(),
                kind: TaskQueueKind::Normal as i32,
                normal_name: String::new(),
            }),
            start_to_close_timeout: util::dur(self.task_timeout),
            attempt,
        })
    }

    pub(crate) fn wft_started_event(
        &self,
        scheduled_event_id: i64,
        identity: &str,
        request_id: &str,
    ) -> Attributes {
        Attributes::WorkflowTaskStartedEventAttributes(WorkflowTaskStartedEventAttributes {
            scheduled_event_id,
            identity: identity.to_owned(),
            request_id: request_id.to_owned(),
            history_size_bytes: self.history.bytes(),
            ..Default::default()
        })
    }

    /// Records a failed workflow task and schedules the next attempt.
    pub(crate) fn fail_wft(
        &mut self,
        ctx: &mut Ctx,
        cause: WorkflowTaskFailedCause,
        failure: Option<Failure>,
        identity: String,
        next_attempt: i32,
    ) {
        self.materialize_speculative(ctx);
        let Some(wft) = self.wft.clone() else { return };
        let Some(started) = wft.started else { return };
        self.unsend_updates();
        self.append(
            ctx,
            Attributes::WorkflowTaskFailedEventAttributes(WorkflowTaskFailedEventAttributes {
                scheduled_event_id: wft.scheduled_event_id,
                started_event_id: started.event_id,
                cause: cause as i32,
                failure,
                identity,
                ..Default::default()
            }),
        );
        self.flush_buffer(ctx);
        if self.is_running() {
            self.schedule_wft(ctx, next_attempt);
        } else {
            self.end_wft(ctx);
        }
    }

    /// Marks the run closed and drops everything pending; stale tasks and timers that still
    /// name it are recognised and skipped when they come up.
    pub(crate) fn close(&mut self, ctx: &mut Ctx, status: WorkflowExecutionStatus) {
        // Queries still waiting are answered from the closed history by a legacy query task.
        for id in self.take_queries() {
            self.dispatch_legacy_query(ctx, id);
        }
        // As the Temporal server: an accepted update fails with the closing run; one the run
        // never accepted is aborted, and its caller gets an error (see `update_status_of`).
        for u in self.updates.iter_mut().filter(|u| u.stage != UpdateStage::Completed) {
            ctx.updates_changed = true;
            u.sent = false;
            if u.accepted_event_id > 0 {
                u.stage = UpdateStage::Completed;
                u.outcome = Some(super::interaction::accepted_update_completed_workflow());
            } else {
                u.stage = ABORTED;
            }
        }
        self.closed_wft = self.wft.as_ref().map(|w| Box::new(w.pending_info()));
        self.status = status;
        self.close_time = Some(ctx.now);
        ctx.closed_runs.push(self.run_id);
        self.end_wft(ctx);
        self.activities.clear();
        self.timers.clear();
        self.buffered.clear();
        ctx.closed = true;
    }

    /// The execution's run timeout, if any, as a timer task.
    pub(crate) fn arm_run_timeout(&self, ctx: &mut Ctx) {
        let limit = match (self.run_timeout, self.execution_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(limit) = limit {
            ctx.schedule_timer(
                self.start_time + limit,
                TimerTask::RunTimeout { run_id: self.run_id },
            );
        }
    }
}

#[cfg(test)]
mod size_tests {
    /// Idle runs are the bulk of a server's memory (issue 3: under 1 KiB per idle workflow,
    /// everything included), and this struct is most of an idle run. It was 1944 bytes with
    /// an unboxed continue-as-new payload and 904 before the cold state moved to `Extra`.
    #[test]
    fn execution_stays_small() {
        assert!(
            std::mem::size_of::<super::Execution>() <= 360,
            "{}",
            std::mem::size_of::<super::Execution>()
        );
    }
}

#[cfg(test)]
mod timer_tests {
    use super::Timers;

    #[test]
    fn timers_pack_insert_replace_and_remove() {
        let mut t = Timers::default();
        t.insert("1".into(), (5, 100));
        t.insert("long timer id ✓".into(), (7, 200));
        t.insert("1".into(), (9, 300));
        assert_eq!(t.iter().collect::<Vec<_>>(), [("1", (9, 300)), ("long timer id ✓", (7, 200))]);
        assert_eq!(t.started_by(7), Some("long timer id ✓"));
        assert_eq!(t.started_by(5), None);
        assert_eq!(t.remove("1"), Some((9, 300)));
        assert_eq!(t.remove("1"), None);
        assert_eq!(t.keys().collect::<Vec<_>>(), ["long timer id ✓"]);
        t.clear();
        assert_eq!(t.iter().count(), 0);
    }
}

impl Wft {
    /// The task as describe reports it.
    pub(crate) fn pending_info(&self) -> PendingWorkflowTaskInfo {
        use temporalio_protos::temporal::api::enums::v1::PendingWorkflowTaskState;
        PendingWorkflowTaskInfo {
            state: if self.started.is_some() {
                PendingWorkflowTaskState::Started
            } else {
                PendingWorkflowTaskState::Scheduled
            } as i32,
            scheduled_time: util::ts(self.scheduled_time),
            original_scheduled_time: util::ts(self.original_scheduled_time),
            started_time: self.started.as_ref().and_then(|s| util::ts(s.time)),
            attempt: self.attempt,
        }
    }
}
