//! Client operations on executions: start (with id reuse and conflict policies), signal,
//! signal-with-start, cancel, terminate, describe and history reads.

use std::time::Duration;

use temporalio_protos::temporal::api::{
    common::v1::{
        Header, Memo, Payloads, RetryPolicy, SearchAttributes, WorkflowExecution, WorkflowType,
    },
    enums::v1::{
        HistoryEventFilterType, IndexedValueType, PendingActivityState, RetryState, TaskQueueKind,
        WorkflowExecutionStatus, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
        WorkflowTaskFailedCause,
    },
    history::v1::{
        History, HistoryEvent, TimerFiredEventAttributes,
        WorkflowExecutionCancelRequestedEventAttributes, WorkflowExecutionSignaledEventAttributes,
        WorkflowExecutionStartedEventAttributes, WorkflowExecutionTerminatedEventAttributes,
        WorkflowExecutionTimedOutEventAttributes, history_event::Attributes,
    },
    taskqueue::v1::TaskQueue,
    workflow::v1::{
        PendingActivityInfo, PendingChildExecutionInfo, RequestIdInfo, ResetPointInfo, ResetPoints,
        WorkflowExecutionConfig, WorkflowExecutionExtendedInfo, WorkflowExecutionInfo,
    },
    workflowservice::v1::DescribeWorkflowExecutionResponse,
};

use super::{
    Engine, Error, Execution, Result, RunId, State, children::ParentLink, ids::Intern, util,
};
use crate::clock::Nanos;

/// Default workflow task start-to-close timeout, and the server's cap on it.
const DEFAULT_TASK_TIMEOUT_SECS: i64 = 10;
const MAX_TASK_TIMEOUT_SECS: i64 = 120;
/// History long polls answer empty after this long; clients poll again.
const HISTORY_LONG_POLL: Duration = Duration::from_secs(20);
/// Page size when the request does not set one.
const DEFAULT_PAGE_SIZE: usize = 1000;

/// What a start (or signal-with-start) asks for.
#[derive(Debug, Default)]
pub(crate) struct StartParams {
    pub(crate) namespace: String,
    pub(crate) workflow_id: String,
    pub(crate) workflow_type: String,
    pub(crate) task_queue: String,
    pub(crate) input: Option<Payloads>,
    pub(crate) execution_timeout: Option<Nanos>,
    pub(crate) run_timeout: Option<Nanos>,
    pub(crate) task_timeout: Option<Nanos>,
    pub(crate) identity: String,
    pub(crate) request_id: String,
    pub(crate) reuse_policy: WorkflowIdReusePolicy,
    pub(crate) conflict_policy: WorkflowIdConflictPolicy,
    pub(crate) retry_policy: Option<RetryPolicy>,
    pub(crate) memo: Option<Memo>,
    pub(crate) search_attributes: Option<SearchAttributes>,
    pub(crate) header: Option<Header>,
    /// Delay before the first workflow task (`workflow_start_delay`).
    pub(crate) start_delay: Option<Nanos>,
    /// Static summary and details.
    pub(crate) user_metadata: Option<temporalio_protos::temporal::api::sdk::v1::UserMetadata>,
    /// The parent, when a StartChildWorkflowExecution command starts the run.
    pub(crate) parent: Option<super::children::ParentLink>,
    pub(crate) priority: Option<temporalio_protos::temporal::api::common::v1::Priority>,
}

/// Where a continued run comes from.
#[derive(Debug)]
pub(crate) struct Continued {
    pub(crate) from_run_id: String,
    pub(crate) initiator: i32,
    pub(crate) last_completion_result: Option<Payloads>,
    pub(crate) failure: Option<temporalio_protos::temporal::api::failure::v1::Failure>,
    /// The chain's reset points so far, which the new run's started event carries.
    pub(crate) reset_points: Option<ResetPoints>,
}

/// Everything needed to create a run.
#[derive(Debug)]
pub(crate) struct NewRun {
    pub(crate) run_id: RunId,
    pub(crate) first_run_id: RunId,
    pub(crate) request_id: String,
    pub(crate) params: StartParams,
    pub(crate) signal: Option<SignalParams>,
    pub(crate) continued: Option<Continued>,
    pub(crate) first_task_delay: Option<Nanos>,
    /// 1 for a fresh start or continue-as-new; the retry count for a retry.
    pub(crate) attempt: i32,
}

/// A signal as delivered by signal or signal-with-start.
#[derive(Debug, Default)]
pub(crate) struct SignalParams {
    pub(crate) signal_name: String,
    pub(crate) input: Option<Payloads>,
    pub(crate) identity: String,
    pub(crate) request_id: String,
    pub(crate) header: Option<Header>,
}

/// The outcome of a start.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) run_id: String,
    /// The first run of the run's chain (itself, unless it continued another).
    pub(crate) first_run_id: String,
    pub(crate) started: bool,
}

impl StartParams {
    fn validate(&self) -> Result<()> {
        let missing =
            |what: &str| Err(Error::InvalidArgument(format!("{what} is not set on request.")));
        if self.workflow_id.is_empty() {
            return missing("WorkflowId");
        }
        if self.workflow_type.is_empty() {
            return missing("WorkflowType");
        }
        if self.task_queue.is_empty() {
            return missing("TaskQueue");
        }
        if self.workflow_id.len() > 1000 {
            return Err(Error::InvalidArgument("WorkflowId exceeds length limit.".into()));
        }
        Ok(())
    }
}

fn already_started(exec: &Execution, running: bool) -> Error {
    let message = if running {
        format!(
            "Workflow execution is already running. WorkflowId: {}, RunId: {}.",
            exec.workflow_id, exec.run_id
        )
    } else {
        format!(
            "Workflow execution already finished and the workflow id reuse policy does not allow \
             a new run. WorkflowId: {}, RunId: {}.",
            exec.workflow_id, exec.run_id
        )
    };
    Error::AlreadyStarted {
        message,
        start_request_id: exec.start_request_id.to_string(),
        run_id: exec.run_id.to_string(),
        first_run_id: exec.first_run_id.to_string(),
    }
}

impl State {
    pub(crate) fn start_workflow(
        &mut self,
        p: StartParams,
        signal: Option<SignalParams>,
    ) -> Result<Started> {
        self.ctx.check_namespace(&p.namespace)?;
        p.validate()?;
        super::visibility::validate(&self.ctx.registry, &p.namespace, p.search_attributes.as_ref())
            .map_err(Error::InvalidArgument)?;
        if let Some(current_id) = self.current.get(&p.namespace, &p.workflow_id) {
            let current = current_id.to_string();
            let exec = self.execs.get(current_id).ok_or_else(|| {
                super::inconsistent(format!("the current run {current} of a workflow is missing"))
            })?;
            let first_run_id = exec.first_run_id.to_string();
            if exec.is_running() {
                if !p.request_id.is_empty() && *exec.start_request_id == *p.request_id {
                    // A retried start: same answer as the first time.
                    return Ok(Started { run_id: current, first_run_id, started: true });
                }
                #[allow(deprecated)] // TERMINATE_IF_RUNNING still arrives from older clients
                let terminate = p.conflict_policy == WorkflowIdConflictPolicy::TerminateExisting
                    || p.reuse_policy == WorkflowIdReusePolicy::TerminateIfRunning;
                if let Some(signal) = signal.as_ref().filter(|_| !terminate) {
                    self.deliver_signal(&current, signal)?;
                    return Ok(Started { run_id: current, first_run_id, started: false });
                }
                match p.conflict_policy {
                    WorkflowIdConflictPolicy::UseExisting => {
                        return Ok(Started { run_id: current, first_run_id, started: false });
                    }
                    _ if terminate => {
                        self.terminate_run(
                            &current,
                            "terminated by a new start (id conflict policy)".into(),
                            None,
                            p.identity.clone(),
                        );
                    }
                    _ => return Err(already_started(&exec, true)),
                }
            } else {
                let allowed = match p.reuse_policy {
                    WorkflowIdReusePolicy::RejectDuplicate => false,
                    WorkflowIdReusePolicy::AllowDuplicateFailedOnly => {
                        exec.status != WorkflowExecutionStatus::Completed
                    }
                    _ => true,
                };
                if !allowed {
                    return Err(already_started(&exec, false));
                }
            }
        }

        let run_id = RunId::random();
        let request_id = if p.request_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            p.request_id.clone()
        };
        let first_task_delay = p.start_delay;
        self.create_run(NewRun {
            run_id,
            first_run_id: run_id,
            request_id,
            params: p,
            signal,
            continued: None,
            first_task_delay,
            attempt: 1,
        });
        Ok(Started { run_id: run_id.to_string(), first_run_id: run_id.to_string(), started: true })
    }

    /// Writes a new run's first events and puts it in place as the workflow id's current run.
    pub(crate) fn create_run(&mut self, new: NewRun) {
        let NewRun {
            run_id,
            first_run_id,
            request_id,
            params: p,
            signal,
            continued,
            first_task_delay,
            attempt,
        } = new;
        let task_timeout = p
            .task_timeout
            .unwrap_or(util::secs(DEFAULT_TASK_TIMEOUT_SECS))
            .min(util::secs(MAX_TASK_TIMEOUT_SECS));
        let namespace = self.ctx.names.intern(&p.namespace);
        let workflow_id = self
            .current
            .workflow_id(&p.namespace, &p.workflow_id)
            .unwrap_or_else(|| p.workflow_id.as_str().into());
        let mut exec = Execution::new(
            namespace.clone(),
            workflow_id.clone(),
            run_id,
            self.ctx.names.intern(&p.workflow_type),
            self.ctx.names.intern(&p.task_queue),
            request_id,
            task_timeout,
            self.ctx.now,
        );
        exec.first_run_id = first_run_id;
        exec.run_timeout = p.run_timeout;
        exec.execution_timeout = p.execution_timeout;
        exec.memo = p.memo.clone().map(Box::new);
        exec.search_attributes = p.search_attributes.clone().map(Box::new);
        exec.retry_policy = p.retry_policy.clone().map(Box::new);
        exec.attempt = attempt;
        exec.user_metadata = p.user_metadata.clone().map(Box::new);
        exec.next_event_meta = Some(Box::new((p.user_metadata.clone(), Vec::new())));
        let parent = p.parent.clone();
        exec.parent = p.parent.map(Box::new);
        let ctx = &mut self.ctx;
        let parent_namespace_id = parent
            .as_ref()
            .and_then(|l| ctx.namespaces.get(&l.namespace).cloned())
            .unwrap_or_default();
        let (
            continued_execution_run_id,
            initiator,
            last_completion_result,
            continued_failure,
            prev_auto_reset_points,
        ) = match continued {
            Some(c) => {
                (c.from_run_id, c.initiator, c.last_completion_result, c.failure, c.reset_points)
            }
            None => (String::new(), 0, None, None, None),
        };
        exec.append(
            ctx,
            Attributes::WorkflowExecutionStartedEventAttributes(
                WorkflowExecutionStartedEventAttributes {
                    workflow_type: Some(WorkflowType { name: p.workflow_type }),
                    task_queue: Some(TaskQueue {
                        name: p.task_queue,
                        kind: TaskQueueKind::Normal as i32,
                        normal_name: String::new(),
                    }),
                    input: p.input,
                    workflow_execution_timeout: p.execution_timeout.and_then(util::dur),
                    // A continued run states "none" as zero, as the Temporal server does.
                    workflow_run_timeout: match (&continued_execution_run_id[..], p.run_timeout) {
                        ("", timeout) => timeout.and_then(util::dur),
                        (_, timeout) => util::dur(timeout.unwrap_or(0)),
                    },
                    workflow_task_timeout: util::dur(task_timeout),
                    continued_execution_run_id,
                    initiator,
                    continued_failure,
                    last_completion_result,
                    prev_auto_reset_points,
                    original_execution_run_id: run_id.to_string(),
                    identity: p.identity,
                    first_execution_run_id: first_run_id.to_string(),
                    retry_policy: p.retry_policy,
                    attempt,
                    workflow_execution_expiration_time: p
                        .execution_timeout
                        .and_then(|t| util::ts(ctx.now + t)),
                    first_workflow_task_backoff: util::dur(first_task_delay.unwrap_or(0)),
                    memo: p.memo,
                    search_attributes: p.search_attributes,
                    header: p.header,
                    workflow_id: p.workflow_id,
                    parent_workflow_namespace_id: parent_namespace_id,
                    parent_initiated_event_id: parent.as_ref().map_or(0, |l| l.initiated_event_id),
                    root_workflow_execution: parent.as_ref().map(ParentLink::root_execution),
                    parent_workflow_execution: parent.as_ref().map(ParentLink::execution),
                    parent_workflow_namespace: parent.map(|l| l.namespace).unwrap_or_default(),
                    priority: p.priority,
                    ..Default::default()
                },
            ),
        );
        if let Some(signal) = signal {
            exec.request_ids.insert(signal.request_id.clone());
            exec.append(ctx, signal_event(signal));
        }
        match first_task_delay {
            Some(delay) => {
                exec.first_task_at = Some(ctx.now + delay);
                ctx.schedule_timer(ctx.now + delay, super::TimerTask::FirstWorkflowTask { run_id });
            }
            None => exec.schedule_wft(ctx, 1),
        }
        exec.arm_run_timeout(ctx);
        ctx.touched.push(run_id);
        self.execs.insert(exec);
        self.current.insert(&namespace, &workflow_id, run_id);
    }

    pub(crate) fn signal(
        &mut self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        signal: SignalParams,
    ) -> Result<String> {
        if signal.signal_name.is_empty() {
            return Err(Error::InvalidArgument("SignalName is not set on request.".into()));
        }
        let run_id = self.resolve(namespace, workflow_id, run_id)?;
        self.deliver_signal(&run_id, &signal)?;
        Ok(run_id.to_string())
    }

    pub(super) fn deliver_signal(&mut self, run_id: &str, signal: &SignalParams) -> Result<()> {
        let (exec, ctx) = self.exec_mut(run_id).ok_or_else(super::unreadable)?;
        if !exec.is_running() {
            return Err(Error::NotFound("workflow execution already completed".into()));
        }
        if !signal.request_id.is_empty() && !exec.request_ids.insert(signal.request_id.clone()) {
            return Ok(()); // duplicate delivery of the same request
        }
        let event = signal_event(SignalParams {
            signal_name: signal.signal_name.clone(),
            input: signal.input.clone(),
            identity: signal.identity.clone(),
            request_id: signal.request_id.clone(),
            header: signal.header.clone(),
        });
        exec.deliver(ctx, vec![event]);
        Ok(())
    }

    pub(crate) fn request_cancel(
        &mut self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        reason: String,
        identity: String,
        request_id: String,
    ) -> Result<()> {
        let run_id = self.resolve(namespace, workflow_id, run_id)?;
        let (exec, ctx) = self.exec_mut(&run_id).ok_or_else(super::unreadable)?;
        if !exec.is_running() {
            return Err(Error::NotFound("workflow execution already completed".into()));
        }
        if exec.cancel_requested {
            return Ok(()); // idempotent, as in Temporal
        }
        if !request_id.is_empty() {
            exec.request_ids.insert(request_id);
        }
        exec.cancel_requested = true;
        exec.deliver(
            ctx,
            vec![Attributes::WorkflowExecutionCancelRequestedEventAttributes(
                WorkflowExecutionCancelRequestedEventAttributes {
                    cause: reason,
                    identity,
                    ..Default::default()
                },
            )],
        );
        Ok(())
    }

    pub(crate) fn terminate(
        &mut self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        reason: String,
        details: Option<Payloads>,
        identity: String,
    ) -> Result<()> {
        let (run_id, run) = self.resolve_run(namespace, workflow_id, run_id)?;
        if !run.is_running() {
            return Err(Error::NotFound("workflow execution already completed".into()));
        }
        self.terminate_run(&run_id, reason, details, identity);
        Ok(())
    }

    /// Temporal fails a started workflow task (FORCE_CLOSE_COMMAND), flushes the buffer, then
    /// writes `WorkflowExecutionTerminated`; the worker's late reply gets NOT_FOUND.
    pub(super) fn terminate_run(
        &mut self,
        run_id: &str,
        reason: String,
        details: Option<Payloads>,
        identity: String,
    ) {
        let Some((exec, ctx)) = self.exec_mut(run_id) else { return };
        exec.status = WorkflowExecutionStatus::Terminated;
        exec.fail_wft(ctx, WorkflowTaskFailedCause::ForceCloseCommand, None, identity.clone(), 1);
        exec.flush_buffer(ctx);
        exec.append(
            ctx,
            Attributes::WorkflowExecutionTerminatedEventAttributes(
                WorkflowExecutionTerminatedEventAttributes { reason, details, identity },
            ),
        );
        exec.close(ctx, WorkflowExecutionStatus::Terminated);
    }

    pub(super) fn fire_user_timer(&mut self, run_id: &str, started_event_id: i64) {
        let Some((exec, ctx)) = self.exec_mut(run_id) else { return };
        if !exec.is_running() {
            return;
        }
        let Some(timer_id) = exec.timers.started_by(started_event_id).map(str::to_owned) else {
            return; // cancelled
        };
        exec.timers.remove(&timer_id);
        exec.deliver(
            ctx,
            vec![Attributes::TimerFiredEventAttributes(TimerFiredEventAttributes {
                timer_id,
                started_event_id,
            })],
        );
    }

    pub(super) fn run_timed_out(&mut self, run_id: &str) {
        let Some((exec, ctx)) = self.exec_mut(run_id) else { return };
        if !exec.is_running() {
            return;
        }
        exec.flush_buffer(ctx);
        let next = exec.retry_backoff(None, ctx.now).map(|b| exec.retry_run(None, b, ctx));
        exec.append(
            ctx,
            Attributes::WorkflowExecutionTimedOutEventAttributes(
                WorkflowExecutionTimedOutEventAttributes {
                    retry_state: exec.retry_state(next.as_ref(), None) as i32,
                    new_execution_run_id: next
                        .as_ref()
                        .map(|n| n.run_id.to_string())
                        .unwrap_or_default(),
                },
            ),
        );
        exec.close(ctx, WorkflowExecutionStatus::TimedOut);
        if let Some(next) = next {
            self.create_run(next);
        }
    }

    pub(crate) fn describe(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<DescribeWorkflowExecutionResponse> {
        let run_id = self.resolve(namespace, workflow_id, run_id)?;
        let e = self.execs.get(&run_id).expect("run exists");
        let task_queue = TaskQueue {
            name: e.task_queue.to_string(),
            kind: TaskQueueKind::Normal as i32,
            normal_name: String::new(),
        };
        let pending_activities = e
            .activities
            .values()
            .map(|a| PendingActivityInfo {
                activity_id: a.activity_id.clone(),
                activity_type: Some(temporalio_protos::temporal::api::common::v1::ActivityType {
                    name: a.activity_type.clone(),
                }),
                state: match (a.state, a.cancel_requested_event_id, a.paused) {
                    (_, Some(_), _) => PendingActivityState::CancelRequested,
                    // Paused while its attempt runs: the worker has yet to stop it.
                    (super::execution::ActivityState::Started, None, true) => {
                        PendingActivityState::PauseRequested
                    }
                    (_, None, true) => PendingActivityState::Paused,
                    (super::execution::ActivityState::Started, None, false) => {
                        PendingActivityState::Started
                    }
                    _ => PendingActivityState::Scheduled,
                } as i32,
                pause_info: a.pause.as_ref().filter(|_| a.paused).map(|p| {
                    use temporalio_protos::temporal::api::workflow::v1::pending_activity_info::{
                        PauseInfo,
                        pause_info::{Manual, PausedBy},
                    };
                    PauseInfo {
                        pause_time: util::ts(p.time),
                        paused_by: Some(PausedBy::Manual(Manual {
                            identity: p.identity.clone(),
                            reason: p.reason.clone(),
                        })),
                    }
                }),
                // What the activity runs with now, as the Temporal server reports it (zero
                // for an unset timeout).
                activity_options: Some(
                    temporalio_protos::temporal::api::activity::v1::ActivityOptions {
                        task_queue: Some(TaskQueue {
                            name: a.task_queue.clone(),
                            kind: TaskQueueKind::Unspecified as i32,
                            normal_name: a.task_queue.clone(),
                        }),
                        schedule_to_close_timeout: util::dur(a.schedule_to_close.unwrap_or(0)),
                        schedule_to_start_timeout: util::dur(a.schedule_to_start.unwrap_or(0)),
                        start_to_close_timeout: util::dur(a.start_to_close),
                        heartbeat_timeout: util::dur(a.heartbeat.unwrap_or(0)),
                        retry_policy: Some(
                            temporalio_protos::temporal::api::common::v1::RetryPolicy {
                                initial_interval: a.retry.initial_interval,
                                backoff_coefficient: a.retry.backoff_coefficient,
                                maximum_interval: a.retry.maximum_interval,
                                maximum_attempts: a.retry.maximum_attempts,
                                ..Default::default()
                            },
                        ),
                        priority: a.priority.clone(),
                        start_delay: None,
                    },
                ),
                heartbeat_details: a.heartbeat_details.clone(),
                last_heartbeat_time: a.last_heartbeat_time.and_then(util::ts),
                last_started_time: a.started_time.and_then(util::ts),
                attempt: a.attempt,
                maximum_attempts: a.retry.maximum_attempts,
                scheduled_time: util::ts(a.attempt_scheduled_time),
                expiration_time: a
                    .schedule_to_close
                    .and_then(|d| util::ts(a.first_scheduled_time + d)),
                last_failure: a.last_failure.clone(),
                last_worker_identity: a.last_worker_identity.clone(),
                current_retry_interval: a.current_retry_interval.and_then(util::dur),
                last_attempt_complete_time: a.last_attempt_complete_time.and_then(util::ts),
                next_attempt_schedule_time: a.next_attempt_time.and_then(util::ts),
                paused: a.paused,
                ..Default::default()
            })
            .collect();
        let pending_workflow_task = match e.wft.as_ref().filter(|_| e.is_running()) {
            Some(w) => Some(w.pending_info()),
            None => e.closed_wft.as_deref().cloned(),
        };
        Ok(DescribeWorkflowExecutionResponse {
            execution_config: Some(WorkflowExecutionConfig {
                task_queue: Some(task_queue),
                workflow_execution_timeout: e.execution_timeout.and_then(util::dur),
                workflow_run_timeout: e.run_timeout.and_then(util::dur),
                default_workflow_task_timeout: util::dur(e.task_timeout),
                user_metadata: e.user_metadata.as_deref().cloned(),
            }),
            workflow_execution_info: Some(WorkflowExecutionInfo {
                auto_reset_points: Some(reset_points(&*self.history_of(&e)?, &e)),
                ..execution_info(&e)
            }),
            workflow_extended_info: Some(extended_info(&e)),
            pending_activities,
            pending_workflow_task,
            pending_children: e
                .children
                .iter()
                .map(|c| PendingChildExecutionInfo {
                    workflow_id: c.workflow_id.clone(),
                    run_id: c.run_id.clone(),
                    workflow_type_name: c.workflow_type.clone(),
                    initiated_id: c.initiated_event_id,
                    parent_close_policy: c.parent_close_policy,
                })
                .collect(),
            ..Default::default()
        })
    }

    /// One page of history (or, for CLOSE_EVENT, the close event if there is one yet).
    fn history_page(
        &self,
        run_id: &str,
        from: i64,
        page_size: usize,
        close_only: bool,
    ) -> Result<(Vec<HistoryEvent>, bool)> {
        let e = self.execs.get(run_id).expect("run exists");
        let start = (from.max(1) - 1) as usize;
        // Long polls ask again on every history change anywhere; a run with nothing new for
        // them is answered without reading its history back from the store.
        if (close_only && e.is_running()) || (!close_only && start >= e.history.len()) {
            return Ok((Vec::new(), false));
        }
        let history = self.history_of(&e)?;
        if close_only {
            return Ok((history.last().into_iter().collect(), false));
        }
        let events = history.decode_range(start, page_size);
        let more = start + events.len() < history.len();
        Ok((events, more))
    }
}

/// Search attribute names with their types.
pub(crate) type AttributeList = Vec<(String, IndexedValueType)>;

/// The summary visibility and describe report for a run.
pub(crate) fn execution_info(e: &Execution) -> WorkflowExecutionInfo {
    WorkflowExecutionInfo {
        execution: Some(WorkflowExecution {
            workflow_id: e.workflow_id.to_string(),
            run_id: e.run_id.to_string(),
        }),
        r#type: Some(WorkflowType { name: e.workflow_type.to_string() }),
        start_time: util::ts(e.start_time),
        close_time: e.close_time.and_then(util::ts),
        status: e.status as i32,
        history_length: e.history.len() as i64,
        execution_time: util::ts(e.start_time),
        // None set reads as empty, not absent, as on the Temporal server.
        memo: Some(e.memo.as_deref().cloned().unwrap_or_default()),
        search_attributes: Some(e.search_attributes.as_deref().cloned().unwrap_or_default()),
        task_queue: e.task_queue.to_string(),
        state_transition_count: e.history.len() as i64,
        history_size_bytes: e.history.bytes(),
        execution_duration: e.close_time.and_then(|c| util::dur(c - e.start_time)),
        first_run_id: e.first_run_id.to_string(),
        parent_execution: e.parent.as_deref().map(ParentLink::execution),
        // A top-level run is its own root.
        root_execution: Some(e.parent.as_deref().map_or_else(
            || WorkflowExecution {
                workflow_id: e.workflow_id.to_string(),
                run_id: e.run_id.to_string(),
            },
            ParentLink::root_execution,
        )),
        ..Default::default()
    }
}

/// A run as a visibility listing shows it: as the Temporal server's visibility records it,
/// no first run id, and a running run's history counted only once it closes.
fn visibility_info(e: &Execution) -> WorkflowExecutionInfo {
    let info = execution_info(e);
    let running = e.is_running();
    WorkflowExecutionInfo {
        first_run_id: String::new(),
        history_length: if running { 0 } else { info.history_length },
        state_transition_count: if running { 0 } else { info.state_transition_count },
        history_size_bytes: if running { 0 } else { info.history_size_bytes },
        ..info
    }
}

/// A run's auto-reset points: those its chain carried in (`prev_auto_reset_points`), then its
/// own first completed task, as the Temporal server accumulates them across continue-as-new.
pub(crate) fn reset_points(history: &super::event_log::EventLog, e: &Execution) -> ResetPoints {
    let carried = history.first().and_then(|event| match event.attributes {
        Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => a.prev_auto_reset_points,
        _ => None,
    });
    let mut points = carried.map(|r| r.points).unwrap_or_default();
    points.extend(reset_point(history, e));
    ResetPoints { points }
}

impl Execution {
    /// The reset points a run closing now hands its successor (continue-as-new, retry): its
    /// own, expiring with its namespace's retention.
    pub(crate) fn carried_reset_points(&self, ctx: &super::Ctx) -> ResetPoints {
        let mut points = reset_points(&self.history, self);
        let expiry = util::ts(ctx.now + util::secs(ctx.retention_secs(&self.namespace)));
        for point in points.points.iter_mut().filter(|p| p.expire_time.is_none()) {
            point.expire_time = expiry;
        }
        points
    }
}

/// Where an operator can reset the run to: its first completed workflow task, as the
/// Temporal server records it for a worker's first task (one build, no versioning).
fn reset_point(history: &super::event_log::EventLog, e: &Execution) -> Option<ResetPointInfo> {
    // The first task completes within the run's first few events (a start, its task, and
    // whatever signals arrived before the worker answered).
    const FIRST_EVENTS: usize = 64;
    let events = history.decode_range(0, FIRST_EVENTS);
    let completed = events.iter().find_map(|event| match &event.attributes {
        Some(Attributes::WorkflowTaskCompletedEventAttributes(a)) => Some((event, a)),
        _ => None,
    })?;
    let (event, attributes) = completed;
    Some(ResetPointInfo {
        #[allow(deprecated)] // still what the Temporal server fills for unversioned workers
        binary_checksum: attributes.binary_checksum.clone(),
        build_id: String::new(),
        run_id: e.run_id.to_string(),
        first_workflow_task_completed_id: event.event_id,
        create_time: event.event_time,
        expire_time: None,
        resettable: true,
    })
}

/// The run's extended info as the Temporal server reports it: expirations (the zero time
/// when a run has no timeout), the start's request id, whether cancellation was asked.
fn extended_info(e: &Execution) -> WorkflowExecutionExtendedInfo {
    // Go's zero time, which the Temporal server sends for "no run expiration".
    const ZERO_TIME: prost_wkt_types::Timestamp =
        prost_wkt_types::Timestamp { seconds: -62_135_596_800, nanos: 0 };
    let request = RequestIdInfo {
        event_type: temporalio_protos::temporal::api::enums::v1::EventType::WorkflowExecutionStarted
            as i32,
        event_id: 1,
        buffered: false,
    };
    WorkflowExecutionExtendedInfo {
        execution_expiration_time: e.execution_timeout.and_then(|t| util::ts(e.start_time + t)),
        run_expiration_time: Some(
            e.run_timeout.and_then(|t| util::ts(e.start_time + t)).unwrap_or(ZERO_TIME),
        ),
        cancel_requested: e.cancel_requested,
        original_start_time: util::ts(e.start_time),
        request_id_infos: [(e.start_request_id.to_string(), request)].into_iter().collect(),
        ..Default::default()
    }
}

fn signal_event(s: SignalParams) -> Attributes {
    Attributes::WorkflowExecutionSignaledEventAttributes(WorkflowExecutionSignaledEventAttributes {
        signal_name: s.signal_name,
        input: s.input,
        identity: s.identity,
        header: s.header,
        request_id: s.request_id,
        ..Default::default()
    })
}

/// A history read request, decoded.
#[derive(Debug)]
pub(crate) struct HistoryRequest {
    pub(crate) namespace: String,
    pub(crate) workflow_id: String,
    pub(crate) run_id: String,
    pub(crate) page_size: i32,
    pub(crate) next_page_token: Vec<u8>,
    pub(crate) wait_new_event: bool,
    pub(crate) filter: HistoryEventFilterType,
}

impl Engine {
    /// GetWorkflowExecutionHistory, including the long poll clients use to wait for a result.
    pub(crate) async fn history(&self, req: HistoryRequest) -> Result<(History, Vec<u8>)> {
        let run_id =
            self.with_state(|st| st.resolve(&req.namespace, &req.workflow_id, &req.run_id))?;
        let close_only = req.filter == HistoryEventFilterType::CloseEvent;
        let from = match req.next_page_token.as_slice() {
            [] => 1,
            b if b.len() == 8 => i64::from_be_bytes(b.try_into().expect("8 bytes")),
            _ => return Err(Error::InvalidArgument("Invalid NextPageToken.".into())),
        };
        let page = if req.page_size <= 0 { DEFAULT_PAGE_SIZE } else { req.page_size as usize };
        let read = |engine: &Engine| -> Result<Option<(Vec<HistoryEvent>, bool, bool)>> {
            let st = engine.lock();
            let (events, more) = st.history_page(&run_id, from, page, close_only)?;
            let running = st.execs.get(&run_id).expect("run exists").is_running();
            Ok(Some((events, more, running)))
        };
        let (mut events, mut more, mut running) = read(self)?.expect("always some");
        if req.wait_new_event && events.is_empty() && running {
            let waited = self
                .long_poll_on(self.history_notify(), HISTORY_LONG_POLL, |engine| {
                    let r = read(engine)?.expect("always some");
                    Ok((!r.0.is_empty() || !r.2).then_some(r))
                })
                .await?;
            if let Some(r) = waited {
                (events, more, running) = r;
            }
        }
        let token = if close_only {
            Vec::new()
        } else if more || (req.wait_new_event && running) {
            (from + events.len() as i64).to_be_bytes().to_vec()
        } else {
            Vec::new()
        };
        Ok((History { events }, token))
    }
}

impl State {
    /// ListWorkflowExecutions: one page of matching runs and the token for the next.
    pub(crate) fn list(
        &self,
        namespace: &str,
        query: &str,
        page_size: i32,
        token: &[u8],
    ) -> Result<(Vec<WorkflowExecutionInfo>, Vec<u8>)> {
        self.ctx.check_namespace(namespace)?;
        let q = super::visibility::parse(query, &self.ctx.registry, namespace)
            .map_err(|e| Error::InvalidArgument(format!("invalid query: {e}")))?;
        let mut rows = Vec::new();
        self.matching(namespace, &q, |e| rows.push(q.sort_row(e, &self.ctx.registry)))?;
        q.sort(&mut rows);
        let offset = match token {
            [] => 0,
            b if b.len() == 8 => u64::from_be_bytes(b.try_into().expect("8 bytes")) as usize,
            _ => return Err(Error::InvalidArgument("Invalid NextPageToken.".into())),
        };
        let size = if page_size <= 0 { DEFAULT_PAGE_SIZE } else { page_size as usize };
        let page: Vec<_> = rows
            .iter()
            .skip(offset)
            .take(size)
            .map(|r| visibility_info(&self.execs.get(r.run_id).expect("matched run exists")))
            .collect();
        let next = offset + page.len();
        let token =
            if next < rows.len() { (next as u64).to_be_bytes().to_vec() } else { Vec::new() };
        Ok((page, token))
    }

    /// CountWorkflowExecutions, optionally grouped by ExecutionStatus.
    pub(crate) fn count(&self, namespace: &str, query: &str) -> Result<(i64, Vec<(String, i64)>)> {
        self.ctx.check_namespace(namespace)?;
        let q = super::visibility::parse(query, &self.ctx.registry, namespace)
            .map_err(|e| Error::InvalidArgument(format!("invalid query: {e}")))?;
        let (mut count, mut groups) = (0, std::collections::BTreeMap::<&str, i64>::new());
        self.matching(namespace, &q, |e| {
            count += 1;
            if q.group_by.is_some() {
                *groups.entry(super::visibility::group_key(e)).or_default() += 1;
            }
        })?;
        Ok((count, groups.into_iter().map(|(k, n)| (k.to_owned(), n)).collect()))
    }

    /// Calls `visit` with each run of `namespace` that `q` matches. Runs are visited one at a
    /// time, so frozen ones are thawed and dropped in turn rather than all held at once.
    fn matching(
        &self,
        namespace: &str,
        q: &super::visibility::Query,
        mut visit: impl FnMut(&Execution),
    ) -> Result<()> {
        for e in self.execs.values().filter(|e| *e.namespace == *namespace) {
            if q.matches(&e, &self.ctx.registry)
                .map_err(|e| Error::InvalidArgument(format!("invalid query: {e}")))?
            {
                visit(&e);
            }
        }
        Ok(())
    }

    /// OperatorService.AddSearchAttributes.
    pub(crate) fn add_search_attributes(
        &mut self,
        namespace: &str,
        attrs: Vec<(String, IndexedValueType)>,
    ) -> Result<()> {
        self.ctx.check_namespace(namespace)?;
        for (name, ty) in &attrs {
            if super::visibility::SYSTEM_ATTRIBUTES.iter().any(|(n, _)| n == name) {
                return Err(Error::InvalidArgument(format!(
                    "Search attribute {name} is reserved by system."
                )));
            }
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(Error::InvalidArgument(format!(
                    "Search attribute name {name:?} is not valid."
                )));
            }
            if *ty == IndexedValueType::Unspecified {
                return Err(Error::InvalidArgument(format!(
                    "Search attribute {name} has no type."
                )));
            }
            if let Some(existing) = self.ctx.registry.get(namespace).and_then(|r| r.get(name))
                && existing != ty
            {
                return Err(Error::AlreadyExists(format!(
                    "Search attribute {name} already exists with type {}.",
                    existing.as_str_name()
                )));
            }
        }
        let reg = self.ctx.registry.entry(namespace.to_owned()).or_default();
        for (name, ty) in attrs {
            reg.insert(name, ty);
        }
        self.ctx.registry_dirty = true;
        Ok(())
    }

    /// OperatorService.RemoveSearchAttributes.
    pub(crate) fn remove_search_attributes(
        &mut self,
        namespace: &str,
        names: Vec<String>,
    ) -> Result<()> {
        self.ctx.check_namespace(namespace)?;
        // As the Temporal dev server (SQL visibility) does, a name not registered is no error:
        // removing is idempotent.
        let reg = self.ctx.registry.entry(namespace.to_owned()).or_default();
        for n in names {
            reg.remove(&n);
        }
        self.ctx.registry_dirty = true;
        Ok(())
    }

    /// OperatorService.ListSearchAttributes: (custom, system).
    pub(crate) fn list_search_attributes(
        &self,
        namespace: &str,
    ) -> Result<(AttributeList, AttributeList)> {
        self.ctx.check_namespace(namespace)?;
        let custom = self
            .ctx
            .registry
            .get(namespace)
            .map(|r| r.iter().map(|(n, t)| (n.clone(), *t)).collect())
            .unwrap_or_default();
        let system = super::visibility::SYSTEM_ATTRIBUTES
            .iter()
            .map(|(n, t)| ((*n).to_owned(), *t))
            .collect();
        Ok((custom, system))
    }
}

impl Execution {
    /// The backoff before retrying a run that ended with `failure` (None for a timeout), if
    /// its workflow retry policy retries it.
    pub(crate) fn retry_backoff(
        &self,
        failure: Option<&temporalio_protos::temporal::api::failure::v1::Failure>,
        now: Nanos,
    ) -> Option<Nanos> {
        let policy = super::activity::retry_policy_with_defaults(Some(
            self.retry_policy.as_deref().cloned()?,
        ));
        if policy.maximum_attempts > 0 && self.attempt >= policy.maximum_attempts {
            return None;
        }
        if super::workflow_task::is_non_retryable(failure, Some(&policy)) {
            return None;
        }
        let wait = super::activity::backoff(&policy, self.attempt);
        // The execution timeout spans all attempts.
        let within =
            self.execution_timeout.is_none_or(|limit| now + wait < self.start_time + limit);
        within.then_some(wait)
    }

    /// The next attempt of this run, to start after `backoff`.
    pub(crate) fn retry_run(
        &self,
        failure: Option<temporalio_protos::temporal::api::failure::v1::Failure>,
        backoff: Nanos,
        ctx: &super::Ctx,
    ) -> NewRun {
        let now = ctx.now;
        NewRun {
            run_id: RunId::random(),
            first_run_id: self.first_run_id,
            request_id: uuid::Uuid::new_v4().to_string(),
            params: StartParams {
                namespace: self.namespace.to_string(),
                workflow_id: self.workflow_id.to_string(),
                workflow_type: self.workflow_type.to_string(),
                task_queue: self.task_queue.to_string(),
                input: self.start_input(),
                execution_timeout: self
                    .execution_timeout
                    .map(|t| (self.start_time + t - now).max(1)),
                run_timeout: self.run_timeout,
                task_timeout: Some(self.task_timeout),
                retry_policy: self.retry_policy.as_deref().cloned(),
                memo: self.memo.as_deref().cloned(),
                search_attributes: self.carried_search_attributes(),
                parent: self.parent.as_deref().cloned(),
                ..Default::default()
            },
            signal: None,
            continued: Some(Continued {
                from_run_id: self.run_id.to_string(),
                initiator:
                    temporalio_protos::temporal::api::enums::v1::ContinueAsNewInitiator::Retry
                        as i32,
                last_completion_result: None,
                failure,
                reset_points: Some(self.carried_reset_points(ctx)),
            }),
            first_task_delay: Some(backoff),
            attempt: self.attempt + 1,
        }
    }

    /// The input the run was started with; a retry starts over with it.
    fn start_input(&self) -> Option<Payloads> {
        match self.history.first().and_then(|e| e.attributes) {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => a.input,
            _ => None,
        }
    }

    /// The retry state recorded on a run that ends without (`next` = None) or with a retry.
    pub(crate) fn retry_state(
        &self,
        next: Option<&NewRun>,
        failure: Option<&temporalio_protos::temporal::api::failure::v1::Failure>,
    ) -> RetryState {
        match (next, &self.retry_policy) {
            (Some(_), _) => RetryState::InProgress,
            (None, None) => RetryState::RetryPolicyNotSet,
            (None, Some(p)) if super::workflow_task::is_non_retryable(failure, Some(p)) => {
                RetryState::NonRetryableFailure
            }
            (None, Some(_)) => RetryState::MaximumAttemptsReached,
        }
    }
}
