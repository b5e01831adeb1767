//! The persisted form of an execution's mutable state, and recovery from it.
//!
//! History events are stored as they are; everything else about a run (pending task,
//! activities, timers, updates) is one snapshot message rewritten on each change. Timer
//! tasks and task-queue entries are *not* stored: they are derived again from the snapshot
//! on recovery, so the two can never disagree. A task that was only scheduled is queued
//! again; a task that was started keeps its start time, so its timeout still holds.

use std::collections::{BTreeMap, HashSet};

use prost::Message;
use temporalio_protos::temporal::api::{
    common::v1::{Header, Memo, Payloads, RetryPolicy, SearchAttributes},
    enums::v1::WorkflowExecutionStatus,
    failure::v1::Failure,
    history::v1::HistoryEvent,
    update::v1::{Outcome, Request},
};

use super::{
    ActRef, ActivityTimer, Ctx, RunId, TimerTask, WftRef,
    execution::{Activity, ActivityState, Execution, UpdateEntry, UpdateStage, Wft, WftStarted},
    ids::Intern,
};

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ExecutionSnapshot {
    #[prost(string, tag = "1")]
    namespace: String,
    #[prost(string, tag = "2")]
    workflow_id: String,
    #[prost(string, tag = "3")]
    run_id: String,
    #[prost(string, tag = "4")]
    first_run_id: String,
    #[prost(string, tag = "5")]
    workflow_type: String,
    #[prost(string, tag = "6")]
    task_queue: String,
    #[prost(string, tag = "7")]
    start_request_id: String,
    #[prost(int64, tag = "8")]
    task_timeout: i64,
    #[prost(int64, optional, tag = "9")]
    run_timeout: Option<i64>,
    #[prost(int64, optional, tag = "10")]
    execution_timeout: Option<i64>,
    #[prost(int32, tag = "11")]
    status: i32,
    #[prost(int64, tag = "12")]
    start_time: i64,
    #[prost(int64, optional, tag = "13")]
    close_time: Option<i64>,
    #[prost(message, optional, tag = "14")]
    memo: Option<Memo>,
    #[prost(message, optional, tag = "15")]
    search_attributes: Option<SearchAttributes>,
    #[prost(message, repeated, tag = "16")]
    buffered: Vec<HistoryEvent>,
    #[prost(message, optional, tag = "17")]
    wft: Option<WftSnapshot>,
    #[prost(int64, tag = "18")]
    last_completed_started_id: i64,
    #[prost(message, repeated, tag = "19")]
    activities: Vec<ActivitySnapshot>,
    #[prost(message, repeated, tag = "20")]
    timers: Vec<TimerSnapshot>,
    #[prost(bool, tag = "21")]
    cancel_requested: bool,
    #[prost(string, repeated, tag = "22")]
    request_ids: Vec<String>,
    #[prost(message, repeated, tag = "23")]
    updates: Vec<UpdateSnapshot>,
    #[prost(int64, optional, tag = "24")]
    first_task_at: Option<i64>,
    #[prost(message, optional, tag = "25")]
    retry_policy: Option<RetryPolicy>,
    #[prost(int32, tag = "26")]
    attempt: i32,
    #[prost(message, optional, tag = "27")]
    user_metadata: Option<temporalio_protos::temporal::api::sdk::v1::UserMetadata>,
    #[prost(message, optional, tag = "28")]
    parent: Option<super::children::ParentLink>,
    #[prost(message, repeated, tag = "29")]
    children: Vec<super::children::ChildLink>,
    #[prost(message, optional, tag = "30")]
    closed_wft: Option<temporalio_protos::temporal::api::workflow::v1::PendingWorkflowTaskInfo>,
}

#[derive(Clone, PartialEq, Message)]
struct WftSnapshot {
    #[prost(int64, tag = "1")]
    scheduled_event_id: i64,
    #[prost(int32, tag = "2")]
    attempt: i32,
    #[prost(int64, tag = "3")]
    scheduled_time: i64,
    #[prost(int64, tag = "4")]
    original_scheduled_time: i64,
    #[prost(bool, tag = "5")]
    started: bool,
    #[prost(int64, tag = "6")]
    started_event_id: i64,
    #[prost(int64, tag = "7")]
    started_time: i64,
    #[prost(string, tag = "8")]
    identity: String,
    #[prost(string, tag = "9")]
    request_id: String,
    #[prost(bool, tag = "10")]
    speculative: bool,
}

#[derive(Clone, PartialEq, Message)]
struct ActivitySnapshot {
    #[prost(int64, tag = "1")]
    scheduled_event_id: i64,
    #[prost(string, tag = "2")]
    activity_id: String,
    #[prost(string, tag = "3")]
    activity_type: String,
    #[prost(string, tag = "4")]
    task_queue: String,
    #[prost(message, optional, tag = "5")]
    header: Option<Header>,
    #[prost(message, optional, tag = "6")]
    input: Option<Payloads>,
    #[prost(int64, optional, tag = "7")]
    schedule_to_close: Option<i64>,
    #[prost(int64, optional, tag = "8")]
    schedule_to_start: Option<i64>,
    #[prost(int64, tag = "9")]
    start_to_close: i64,
    #[prost(int64, optional, tag = "10")]
    heartbeat: Option<i64>,
    #[prost(message, optional, tag = "11")]
    retry: Option<RetryPolicy>,
    #[prost(int32, tag = "12")]
    attempt: i32,
    #[prost(int32, tag = "13")]
    state: i32,
    #[prost(int64, tag = "14")]
    first_scheduled_time: i64,
    #[prost(int64, tag = "15")]
    attempt_scheduled_time: i64,
    #[prost(int64, optional, tag = "16")]
    started_time: Option<i64>,
    #[prost(string, tag = "17")]
    started_identity: String,
    #[prost(string, tag = "18")]
    started_request_id: String,
    #[prost(message, optional, tag = "19")]
    last_failure: Option<Failure>,
    #[prost(string, tag = "20")]
    last_worker_identity: String,
    #[prost(message, optional, tag = "21")]
    heartbeat_details: Option<Payloads>,
    #[prost(int64, optional, tag = "22")]
    last_heartbeat_time: Option<i64>,
    #[prost(int64, optional, tag = "23")]
    last_attempt_complete_time: Option<i64>,
    #[prost(int64, optional, tag = "24")]
    next_attempt_time: Option<i64>,
    #[prost(int64, optional, tag = "25")]
    current_retry_interval: Option<i64>,
    #[prost(int64, optional, tag = "26")]
    cancel_requested_event_id: Option<i64>,
    #[prost(bool, tag = "27")]
    paused: bool,
    #[prost(message, optional, tag = "28")]
    priority: Option<temporalio_protos::temporal::api::common::v1::Priority>,
    #[prost(int64, optional, tag = "29")]
    pause_time: Option<i64>,
    #[prost(string, tag = "30")]
    pause_identity: String,
    #[prost(string, tag = "31")]
    pause_reason: String,
    #[prost(string, tag = "32")]
    pause_request_id: String,
    #[prost(bool, tag = "33")]
    reset_requested: bool,
}

#[derive(Clone, PartialEq, Message)]
struct TimerSnapshot {
    #[prost(string, tag = "1")]
    timer_id: String,
    #[prost(int64, tag = "2")]
    started_event_id: i64,
    #[prost(int64, tag = "3")]
    fire_at: i64,
}

#[derive(Clone, PartialEq, Message)]
struct UpdateSnapshot {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(message, optional, tag = "2")]
    request: Option<Request>,
    #[prost(int32, tag = "3")]
    stage: i32,
    #[prost(int64, tag = "4")]
    accepted_event_id: i64,
    #[prost(message, optional, tag = "5")]
    outcome: Option<Outcome>,
}

const STATE_SCHEDULED: i32 = 0;
const STATE_STARTED: i32 = 1;
const STATE_BACKOFF: i32 = 2;

impl Execution {
    /// The execution's mutable state (everything but its history), encoded.
    pub(crate) fn snapshot(&self) -> Vec<u8> {
        ExecutionSnapshot {
            namespace: self.namespace.to_string(),
            workflow_id: self.workflow_id.to_string(),
            run_id: self.run_id.to_string(),
            first_run_id: self.first_run_id.to_string(),
            workflow_type: self.workflow_type.to_string(),
            task_queue: self.task_queue.to_string(),
            start_request_id: self.start_request_id.to_string(),
            task_timeout: self.task_timeout,
            run_timeout: self.run_timeout,
            execution_timeout: self.execution_timeout,
            status: self.status as i32,
            start_time: self.start_time,
            close_time: self.close_time,
            memo: self.memo.as_deref().cloned(),
            search_attributes: self.search_attributes.as_deref().cloned(),
            buffered: self
                .buffered
                .iter()
                .map(|a| HistoryEvent { attributes: Some(a.clone()), ..Default::default() })
                .collect(),
            wft: self.wft.as_ref().map(|w| WftSnapshot {
                scheduled_event_id: w.scheduled_event_id,
                attempt: w.attempt,
                scheduled_time: w.scheduled_time,
                original_scheduled_time: w.original_scheduled_time,
                started: w.started.is_some(),
                started_event_id: w.started.as_ref().map_or(0, |s| s.event_id),
                started_time: w.started.as_ref().map_or(0, |s| s.time),
                identity: w.started.as_ref().map(|s| s.identity.clone()).unwrap_or_default(),
                request_id: w.started.as_ref().map(|s| s.request_id.clone()).unwrap_or_default(),
                speculative: w.speculative,
            }),
            last_completed_started_id: self.last_completed_started_id,
            activities: self
                .activities
                .iter()
                .map(|(&id, a)| ActivitySnapshot {
                    scheduled_event_id: id,
                    activity_id: a.activity_id.clone(),
                    activity_type: a.activity_type.clone(),
                    task_queue: a.task_queue.clone(),
                    header: a.header.clone(),
                    input: a.input.clone(),
                    schedule_to_close: a.schedule_to_close,
                    schedule_to_start: a.schedule_to_start,
                    start_to_close: a.start_to_close,
                    heartbeat: a.heartbeat,
                    retry: Some(a.retry.clone()),
                    attempt: a.attempt,
                    state: match a.state {
                        ActivityState::Scheduled => STATE_SCHEDULED,
                        ActivityState::Started => STATE_STARTED,
                        ActivityState::Backoff => STATE_BACKOFF,
                    },
                    first_scheduled_time: a.first_scheduled_time,
                    attempt_scheduled_time: a.attempt_scheduled_time,
                    started_time: a.started_time,
                    started_identity: a.started_identity.clone(),
                    started_request_id: a.started_request_id.clone(),
                    last_failure: a.last_failure.clone(),
                    last_worker_identity: a.last_worker_identity.clone(),
                    heartbeat_details: a.heartbeat_details.clone(),
                    last_heartbeat_time: a.last_heartbeat_time,
                    last_attempt_complete_time: a.last_attempt_complete_time,
                    next_attempt_time: a.next_attempt_time,
                    current_retry_interval: a.current_retry_interval,
                    cancel_requested_event_id: a.cancel_requested_event_id,
                    paused: a.paused,
                    priority: a.priority.clone(),
                    pause_time: a.pause.as_ref().map(|p| p.time),
                    pause_identity: a
                        .pause
                        .as_ref()
                        .map(|p| p.identity.clone())
                        .unwrap_or_default(),
                    pause_reason: a.pause.as_ref().map(|p| p.reason.clone()).unwrap_or_default(),
                    pause_request_id: a
                        .pause
                        .as_ref()
                        .map(|p| p.request_id.clone())
                        .unwrap_or_default(),
                    reset_requested: a.reset_requested,
                })
                .collect(),
            timers: self
                .timers
                .iter()
                .map(|(id, (started_event_id, fire_at))| TimerSnapshot {
                    timer_id: id.to_owned(),
                    started_event_id,
                    fire_at,
                })
                .collect(),
            cancel_requested: self.cancel_requested,
            // Sorted: a set's order differs between copies, and the same state must encode to
            // the same bytes (frozen runs and the store compare and compress them).
            request_ids: {
                let mut ids: Vec<String> = self.request_ids.iter().cloned().collect();
                ids.sort_unstable();
                ids
            },
            updates: self
                .updates
                .iter()
                .map(|u| UpdateSnapshot {
                    id: u.id.clone(),
                    request: Some(u.request.clone()),
                    stage: u.stage as i32,
                    accepted_event_id: u.accepted_event_id,
                    outcome: u.outcome.clone(),
                })
                .collect(),
            first_task_at: self.first_task_at,
            retry_policy: self.retry_policy.as_deref().cloned(),
            attempt: self.attempt,
            user_metadata: self.user_metadata.as_deref().cloned(),
            parent: self.parent.as_deref().cloned(),
            children: self.children.clone(),
            closed_wft: self.closed_wft.as_deref().cloned(),
        }
        .encode_to_vec()
    }

    /// Rebuilds an execution from its snapshot and history.
    /// `names` shares namespaces, types and queues with other runs; `workflow_ids` shares
    /// the workflow id with the id's other runs.
    pub(crate) fn restore(
        snapshot: &[u8],
        history: super::event_log::EventLog,
        names: &mut impl Intern,
        workflow_ids: &mut impl Intern,
    ) -> Result<Self, prost::DecodeError> {
        let s = ExecutionSnapshot::decode(snapshot)?;
        // The server writes only UUID run ids; anything else means the file is not ours.
        #[allow(deprecated)]
        let run_id = |s: &str| {
            RunId::parse(s)
                .ok_or_else(|| prost::DecodeError::new(format!("run id {s:?} is not a UUID")))
        };
        let mut e = Execution::new(
            names.intern(&s.namespace),
            workflow_ids.intern(&s.workflow_id),
            run_id(&s.run_id)?,
            names.intern(&s.workflow_type),
            names.intern(&s.task_queue),
            s.start_request_id,
            s.task_timeout,
            s.start_time,
        );
        e.first_run_id = run_id(&s.first_run_id)?;
        e.run_timeout = s.run_timeout;
        e.execution_timeout = s.execution_timeout;
        e.status =
            WorkflowExecutionStatus::try_from(s.status).unwrap_or(WorkflowExecutionStatus::Running);
        e.close_time = s.close_time;
        e.memo = s.memo.map(Box::new);
        e.search_attributes = s.search_attributes.map(Box::new);
        e.persisted = history.len();
        e.history = history;
        e.buffered = s.buffered.into_iter().filter_map(|ev| ev.attributes).collect();
        e.wft = s.wft.map(|w| {
            Box::new(Wft {
                scheduled_event_id: w.scheduled_event_id,
                attempt: w.attempt,
                scheduled_time: w.scheduled_time,
                original_scheduled_time: w.original_scheduled_time,
                started: w.started.then_some(WftStarted {
                    event_id: w.started_event_id,
                    time: w.started_time,
                    timeout: None,
                    identity: w.identity,
                    request_id: w.request_id,
                }),
                queries: Vec::new(),
                speculative: w.speculative,
            })
        });
        e.last_completed_started_id = s.last_completed_started_id;
        e.activities = s
            .activities
            .into_iter()
            .map(|a| {
                let act = Activity {
                    activity_id: a.activity_id,
                    activity_type: a.activity_type,
                    task_queue: a.task_queue,
                    header: a.header,
                    input: a.input,
                    schedule_to_close: a.schedule_to_close,
                    schedule_to_start: a.schedule_to_start,
                    start_to_close: a.start_to_close,
                    heartbeat: a.heartbeat,
                    retry: a.retry.unwrap_or_default(),
                    attempt: a.attempt,
                    state: match a.state {
                        STATE_STARTED => ActivityState::Started,
                        STATE_BACKOFF => ActivityState::Backoff,
                        _ => ActivityState::Scheduled,
                    },
                    first_scheduled_time: a.first_scheduled_time,
                    attempt_scheduled_time: a.attempt_scheduled_time,
                    started_time: a.started_time,
                    started_identity: a.started_identity,
                    started_request_id: a.started_request_id,
                    last_failure: a.last_failure,
                    last_worker_identity: a.last_worker_identity,
                    heartbeat_details: a.heartbeat_details,
                    last_heartbeat_time: a.last_heartbeat_time,
                    last_attempt_complete_time: a.last_attempt_complete_time,
                    next_attempt_time: a.next_attempt_time,
                    current_retry_interval: a.current_retry_interval,
                    cancel_requested_event_id: a.cancel_requested_event_id,
                    paused: a.paused,
                    priority: a.priority,
                    pause: a.pause_time.map(|time| {
                        Box::new(super::execution::Pause {
                            time,
                            identity: a.pause_identity,
                            reason: a.pause_reason,
                            request_id: a.pause_request_id,
                        })
                    }),
                    reset_requested: a.reset_requested,
                };
                (a.scheduled_event_id, act)
            })
            .collect::<BTreeMap<_, _>>();
        e.timers =
            s.timers.into_iter().map(|t| (t.timer_id, (t.started_event_id, t.fire_at))).collect();
        e.cancel_requested = s.cancel_requested;
        e.request_ids = s.request_ids.into_iter().collect::<HashSet<_>>();
        e.updates = s
            .updates
            .into_iter()
            .map(|u| UpdateEntry {
                id: u.id,
                request: u.request.unwrap_or_default(),
                stage: UpdateStage::try_from(u.stage).unwrap_or(UpdateStage::Admitted),
                // Whatever was shown to a worker before the crash is shown again.
                sent: false,
                accepted_event_id: u.accepted_event_id,
                outcome: u.outcome,
            })
            .collect();
        e.first_task_at = s.first_task_at;
        e.retry_policy = s.retry_policy.map(Box::new);
        e.attempt = s.attempt.max(1);
        e.user_metadata = s.user_metadata.map(Box::new);
        e.parent = s.parent.map(Box::new);
        e.children = s.children;
        e.closed_wft = s.closed_wft.map(Box::new);
        // Setting fields allocated the run's `Extra`; an idle run does without it.
        e.compact();
        Ok(e)
    }

    /// Derives the timer tasks and queue entries this run needs after a restart. Deadlines
    /// that passed while the server was down fire as soon as the timer pump runs.
    pub(crate) fn rearm(&mut self, ctx: &mut Ctx) {
        if !self.is_running() {
            return;
        }
        let run_id = self.run_id;
        let mut started_timeout = None;
        for (_, (started_event_id, fire_at)) in self.timers.iter() {
            ctx.schedule_timer(fire_at, TimerTask::User { run_id, started_event_id });
        }
        if let Some(at) = self.first_task_at {
            ctx.schedule_timer(at, TimerTask::FirstWorkflowTask { run_id });
        }
        self.arm_run_timeout(ctx);
        if let Some(w) = &self.wft {
            match &w.started {
                None => ctx.push_workflow_task(
                    &self.namespace,
                    &self.task_queue,
                    WftRef { run_id: run_id.to_string(), scheduled_event_id: w.scheduled_event_id },
                ),
                Some(s) => {
                    let key = ctx.schedule_timer(
                        s.time + self.task_timeout,
                        TimerTask::WorkflowTaskTimeout {
                            run_id,
                            scheduled_event_id: w.scheduled_event_id,
                            attempt: w.attempt,
                        },
                    );
                    started_timeout = Some(key);
                }
            }
        }
        for (&id, a) in self.activities.iter() {
            let timer = |kind| TimerTask::Activity {
                run_id,
                scheduled_event_id: id,
                attempt: a.attempt,
                kind,
            };
            if let Some(limit) = a.schedule_to_close {
                ctx.schedule_timer(
                    a.first_scheduled_time + limit,
                    TimerTask::Activity {
                        run_id,
                        scheduled_event_id: id,
                        attempt: 0,
                        kind: ActivityTimer::ScheduleToClose,
                    },
                );
            }
            match a.state {
                ActivityState::Scheduled => {
                    if let Some(limit) = a.schedule_to_start {
                        ctx.schedule_timer(
                            a.attempt_scheduled_time + limit,
                            timer(ActivityTimer::ScheduleToStart),
                        );
                    }
                    ctx.push_activity_task(
                        &self.namespace,
                        &a.task_queue,
                        ActRef {
                            run_id: run_id.to_string(),
                            scheduled_event_id: id,
                            attempt: a.attempt,
                        },
                    );
                }
                ActivityState::Started => {
                    let started = a.started_time.unwrap_or(ctx.now);
                    ctx.schedule_timer(
                        started + a.start_to_close,
                        timer(ActivityTimer::StartToClose),
                    );
                    if let Some(hb) = a.heartbeat {
                        ctx.schedule_timer(
                            a.last_heartbeat_time.unwrap_or(started) + hb,
                            timer(ActivityTimer::Heartbeat),
                        );
                    }
                }
                ActivityState::Backoff => {
                    ctx.schedule_timer(
                        a.next_attempt_time.unwrap_or(ctx.now),
                        timer(ActivityTimer::RetryBackoff),
                    );
                }
            }
        }
        if let (Some(key), Some(s)) =
            (started_timeout, self.wft.as_mut().and_then(|w| w.started.as_mut()))
        {
            s.timeout = Some(key);
        }
    }
}
