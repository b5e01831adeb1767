//! Activities: dispatch, completion, server-side retries and the four timeouts.
//!
//! `ActivityTaskStarted` is written lazily, when an attempt *closes*, carrying the final
//! attempt number; a retried attempt writes nothing at all (Temporal's transient started
//! event). A retry waits out its backoff on a timer, and during the backoff the activity is
//! not in-flight work, so time skipping may jump over it.

use temporalio_protos::temporal::api::{
    common::v1::{ActivityType, Payloads, RetryPolicy, WorkflowExecution, WorkflowType},
    enums::v1::{RetryState, TimeoutType},
    failure::v1::{Failure, failure::FailureInfo},
    history::v1::{
        ActivityTaskCanceledEventAttributes, ActivityTaskCompletedEventAttributes,
        ActivityTaskFailedEventAttributes, ActivityTaskStartedEventAttributes,
        ActivityTaskTimedOutEventAttributes, history_event::Attributes,
    },
    workflowservice::v1::PollActivityTaskQueueResponse,
};

use super::{
    ActRef, ActivityTimer, Ctx, Error, QueueKey, Result, State, TimerTask,
    execution::{ActivityState, Execution, STARTED_ID_PENDING},
    util,
};
use crate::{
    clock::Nanos,
    token::{TaskToken, TokenKind},
};

/// Fills in Temporal's default retry policy: 1 s initial interval, coefficient 2, maximum
/// interval 100 × initial, unlimited attempts.
pub(crate) fn retry_policy_with_defaults(p: Option<RetryPolicy>) -> RetryPolicy {
    let mut p = p.unwrap_or_default();
    let initial = util::dur_nanos(p.initial_interval.as_ref()).unwrap_or(util::secs(1));
    p.initial_interval = util::dur(initial);
    if p.backoff_coefficient < 1.0 {
        p.backoff_coefficient = 2.0;
    }
    if util::dur_nanos(p.maximum_interval.as_ref()).is_none() {
        p.maximum_interval = util::dur(initial.saturating_mul(100));
    }
    p.maximum_attempts = p.maximum_attempts.max(0);
    p
}

/// Backoff before attempt `failed_attempt + 1`.
pub(super) fn backoff(p: &RetryPolicy, failed_attempt: i32) -> Nanos {
    let initial = util::dur_nanos(p.initial_interval.as_ref()).unwrap_or(util::secs(1)) as f64;
    let max = util::dur_nanos(p.maximum_interval.as_ref()).map(|m| m as f64).unwrap_or(f64::MAX);
    let exp = p.backoff_coefficient.powi((failed_attempt - 1).max(0));
    (initial * exp).min(max) as Nanos
}

/// How a closed attempt ends.
enum AttemptEnd {
    Failed(Box<Failure>),
    TimedOut(TimeoutType),
}

/// The worker's answer for an attempt.
pub(crate) enum ActivityResponse {
    Completed(Option<Payloads>),
    Failed { failure: Box<Failure>, heartbeat: Option<Payloads> },
    Canceled(Option<Payloads>),
}

impl Execution {
    /// Queues the current attempt and arms its schedule-to-start timeout.
    pub(super) fn dispatch_activity(&mut self, ctx: &mut Ctx, scheduled_event_id: i64) {
        // The activity is borrowed from the run's `Extra`, which borrows the whole run.
        let (run_id, namespace) = (self.run_id, self.namespace.clone());
        let Some(a) = self.activities.get_mut(&scheduled_event_id) else { return };
        a.state = ActivityState::Scheduled;
        a.attempt_scheduled_time = ctx.now;
        a.next_attempt_time = None;
        a.reset_requested = false;
        if let Some(limit) = a.schedule_to_start {
            ctx.schedule_timer(
                ctx.now + limit,
                TimerTask::Activity {
                    run_id,
                    scheduled_event_id,
                    attempt: a.attempt,
                    kind: ActivityTimer::ScheduleToStart,
                },
            );
        }
        ctx.push_activity_task(
            &namespace,
            &a.task_queue,
            ActRef { run_id: run_id.to_string(), scheduled_event_id, attempt: a.attempt },
        );
    }

    fn start_activity(
        &mut self,
        ctx: &mut Ctx,
        scheduled_event_id: i64,
        identity: &str,
        request_id: String,
    ) -> PollActivityTaskQueueResponse {
        let (run_id, namespace, workflow_id, workflow_type) = (
            self.run_id,
            self.namespace.to_string(),
            self.workflow_id.to_string(),
            self.workflow_type.to_string(),
        );
        let a = self.activities.get_mut(&scheduled_event_id).expect("caller checked");
        a.state = ActivityState::Started;
        a.started_time = Some(ctx.now);
        a.started_identity = identity.to_owned();
        a.started_request_id = request_id;
        a.last_worker_identity = identity.to_owned();
        a.last_heartbeat_time = None;
        let timer =
            |kind| TimerTask::Activity { run_id, scheduled_event_id, attempt: a.attempt, kind };
        ctx.schedule_timer(ctx.now + a.start_to_close, timer(ActivityTimer::StartToClose));
        if let Some(hb) = a.heartbeat {
            ctx.schedule_timer(ctx.now + hb, timer(ActivityTimer::Heartbeat));
        }
        let token = TaskToken {
            namespace: namespace.clone(),
            workflow_id: workflow_id.clone(),
            run_id: run_id.to_string(),
            scheduled_event_id,
            attempt: a.attempt,
            kind: TokenKind::Activity as i32,
        };
        PollActivityTaskQueueResponse {
            task_token: token.encode_bytes(),
            workflow_namespace: namespace.clone(),
            workflow_type: Some(WorkflowType { name: workflow_type }),
            workflow_execution: Some(WorkflowExecution { workflow_id, run_id: run_id.to_string() }),
            activity_type: Some(ActivityType { name: a.activity_type.clone() }),
            activity_id: a.activity_id.clone(),
            header: a.header.clone(),
            input: a.input.clone(),
            heartbeat_details: a.heartbeat_details.clone(),
            scheduled_time: util::ts(a.first_scheduled_time),
            current_attempt_scheduled_time: util::ts(a.attempt_scheduled_time),
            started_time: util::ts(ctx.now),
            attempt: a.attempt,
            schedule_to_close_timeout: util::dur(a.schedule_to_close.unwrap_or(0)),
            start_to_close_timeout: util::dur(a.start_to_close),
            heartbeat_timeout: util::dur(a.heartbeat.unwrap_or(0)),
            retry_policy: Some(a.retry.clone()),
            priority: a.priority.clone(),
            ..Default::default()
        }
    }

    /// The transient started event for an attempt that is closing now.
    fn started_event(&self, scheduled_event_id: i64) -> Option<Attributes> {
        let a = self.activities.get(&scheduled_event_id)?;
        (a.state == ActivityState::Started).then(|| {
            Attributes::ActivityTaskStartedEventAttributes(ActivityTaskStartedEventAttributes {
                scheduled_event_id,
                identity: a.started_identity.clone(),
                request_id: a.started_request_id.clone(),
                attempt: a.attempt,
                last_failure: a.last_failure.clone(),
                ..Default::default()
            })
        })
    }

    /// Closes the activity with a final event (and its started event, if it had started).
    fn close_activity(&mut self, ctx: &mut Ctx, scheduled_event_id: i64, close: Attributes) {
        let mut events: Vec<Attributes> =
            self.started_event(scheduled_event_id).into_iter().collect();
        events.push(close);
        self.activities.remove(&scheduled_event_id);
        self.deliver(ctx, events);
    }

    /// An attempt ended badly: retry after a backoff, or close the activity for good.
    fn end_attempt(
        &mut self,
        ctx: &mut Ctx,
        scheduled_event_id: i64,
        end: AttemptEnd,
        identity: String,
    ) {
        let run_id = self.run_id;
        let Some(a) = self.activities.get_mut(&scheduled_event_id) else { return };
        let (failure, retryable) = match &end {
            AttemptEnd::Failed(f) => {
                let (non_retryable, ty, delay) = match &f.failure_info {
                    Some(FailureInfo::ApplicationFailureInfo(i)) => (
                        i.non_retryable,
                        i.r#type.as_str(),
                        util::dur_nanos(i.next_retry_delay.as_ref()),
                    ),
                    _ => (false, "", None),
                };
                let listed = a.retry.non_retryable_error_types.iter().any(|t| t == ty);
                ((**f).clone(), (!non_retryable && !listed).then_some(delay))
            }
            AttemptEnd::TimedOut(tt) => {
                let name = tt.as_str_name().trim_start_matches("TIMEOUT_TYPE_");
                let message = format!("activity {} timeout", to_pascal(name));
                let f =
                    util::timeout_failure(message, *tt as i32, None, a.heartbeat_details.clone());
                // Schedule-to-start and schedule-to-close timeouts are never retried.
                let retryable = matches!(tt, TimeoutType::StartToClose | TimeoutType::Heartbeat);
                (f, retryable.then_some(None))
            }
        };
        let retry_state = match retryable {
            None => match end {
                AttemptEnd::TimedOut(_) => RetryState::Timeout,
                AttemptEnd::Failed(_) => RetryState::NonRetryableFailure,
            },
            Some(_) if a.retry.maximum_attempts > 0 && a.attempt >= a.retry.maximum_attempts => {
                RetryState::MaximumAttemptsReached
            }
            Some(explicit_delay) => {
                let wait = explicit_delay.unwrap_or_else(|| backoff(&a.retry, a.attempt));
                let deadline_ok = a
                    .schedule_to_close
                    .is_none_or(|limit| ctx.now + wait < a.first_scheduled_time + limit);
                if deadline_ok {
                    a.last_failure = Some(failure);
                    a.last_worker_identity = identity;
                    a.last_attempt_complete_time = Some(ctx.now);
                    a.attempt += 1;
                    a.state = ActivityState::Backoff;
                    a.started_time = None;
                    a.current_retry_interval = Some(wait);
                    a.next_attempt_time = Some(ctx.now + wait);
                    ctx.schedule_timer(
                        ctx.now + wait,
                        TimerTask::Activity {
                            run_id,
                            scheduled_event_id,
                            attempt: a.attempt,
                            kind: ActivityTimer::RetryBackoff,
                        },
                    );
                    return;
                }
                RetryState::Timeout
            }
        };
        let close = match end {
            AttemptEnd::Failed(_) => {
                Attributes::ActivityTaskFailedEventAttributes(ActivityTaskFailedEventAttributes {
                    failure: Some(failure),
                    scheduled_event_id,
                    started_event_id: STARTED_ID_PENDING,
                    identity,
                    retry_state: retry_state as i32,
                    ..Default::default()
                })
            }
            AttemptEnd::TimedOut(_) => {
                // After retries, the timeout carries the last attempt's failure as its cause.
                let mut failure = failure;
                if failure.cause.is_none() {
                    failure.cause = a.last_failure.clone().map(Box::new);
                }
                Attributes::ActivityTaskTimedOutEventAttributes(
                    ActivityTaskTimedOutEventAttributes {
                        failure: Some(failure),
                        scheduled_event_id,
                        started_event_id: STARTED_ID_PENDING,
                        retry_state: retry_state as i32,
                    },
                )
            }
        };
        self.close_activity(ctx, scheduled_event_id, close);
    }
}

fn to_pascal(screaming: &str) -> String {
    screaming
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase())
                .unwrap_or_default()
        })
        .collect()
}

impl State {
    pub(crate) fn start_activity_task(
        &mut self,
        namespace: &str,
        queue: &str,
        identity: &str,
        request_id: String,
    ) -> Option<PollActivityTaskQueueResponse> {
        let key = QueueKey { namespace: namespace.to_owned(), name: queue.to_owned() };
        loop {
            let task = self.ctx.act_queues.get_mut(&key)?.items.pop_front()?;
            let Some((exec, ctx)) = self.exec_mut(&task.run_id) else { continue };
            let live = exec.is_running()
                && exec.activities.get(&task.scheduled_event_id).is_some_and(|a| {
                    a.attempt == task.attempt && a.state == ActivityState::Scheduled
                });
            if live {
                return Some(exec.start_activity(
                    ctx,
                    task.scheduled_event_id,
                    identity,
                    request_id,
                ));
            }
        }
    }

    /// Finds the running attempt a token names, or the error Temporal gives for it.
    fn activity_for(&mut self, token: &[u8], namespace: &str) -> Result<TaskToken> {
        let token = self.ctx.task_token(token, namespace, TokenKind::Activity)?;
        let exec = self
            .execs
            .get(&token.run_id)
            .ok_or_else(|| Error::NotFound("Activity task not found.".into()))?;
        if !exec.is_running() {
            return Err(Error::NotFound("workflow execution already completed".into()));
        }
        match exec.activities.get(&token.scheduled_event_id) {
            Some(a) if a.attempt == token.attempt && a.state == ActivityState::Started => Ok(token),
            _ => Err(Error::NotFound("Activity task not found.".into())),
        }
    }

    pub(crate) fn respond_activity(
        &mut self,
        token: &[u8],
        namespace: &str,
        identity: String,
        response: ActivityResponse,
    ) -> Result<()> {
        let token = self.activity_for(token, namespace)?;
        let (exec, ctx) = self.exec_mut(&token.run_id).ok_or_else(super::unreadable)?;
        let id = token.scheduled_event_id;
        match response {
            ActivityResponse::Completed(result) => {
                let close = Attributes::ActivityTaskCompletedEventAttributes(
                    ActivityTaskCompletedEventAttributes {
                        result,
                        scheduled_event_id: id,
                        started_event_id: STARTED_ID_PENDING,
                        identity,
                        ..Default::default()
                    },
                );
                exec.close_activity(ctx, id, close);
            }
            ActivityResponse::Failed { failure, heartbeat } => {
                if let (Some(details), Some(a)) = (heartbeat, exec.activities.get_mut(&id)) {
                    a.heartbeat_details = Some(details);
                }
                exec.end_attempt(ctx, id, AttemptEnd::Failed(failure), identity);
            }
            ActivityResponse::Canceled(details) => {
                let requested = exec
                    .activities
                    .get(&id)
                    .and_then(|a| a.cancel_requested_event_id)
                    .unwrap_or_default();
                let close = Attributes::ActivityTaskCanceledEventAttributes(
                    ActivityTaskCanceledEventAttributes {
                        details,
                        latest_cancel_requested_event_id: requested,
                        scheduled_event_id: id,
                        started_event_id: STARTED_ID_PENDING,
                        identity,
                        ..Default::default()
                    },
                );
                exec.close_activity(ctx, id, close);
            }
        }
        Ok(())
    }

    /// Records a heartbeat; answers whether cancellation was requested.
    pub(crate) fn heartbeat(
        &mut self,
        token: &[u8],
        namespace: &str,
        details: Option<Payloads>,
    ) -> Result<(bool, bool, bool)> {
        let token = self.activity_for(token, namespace)?;
        let (exec, ctx) = self.exec_mut(&token.run_id).ok_or_else(super::unreadable)?;
        let run_id = exec.run_id;
        let Some(a) = exec.activities.get_mut(&token.scheduled_event_id) else {
            return Err(Error::NotFound("Activity task not found.".into()));
        };
        if details.is_some() {
            a.heartbeat_details = details;
        }
        a.last_heartbeat_time = Some(ctx.now);
        if let Some(hb) = a.heartbeat {
            ctx.schedule_timer(
                ctx.now + hb,
                TimerTask::Activity {
                    run_id,
                    scheduled_event_id: token.scheduled_event_id,
                    attempt: a.attempt,
                    kind: ActivityTimer::Heartbeat,
                },
            );
        }
        Ok((a.cancel_requested_event_id.is_some(), a.paused, a.reset_requested))
    }

    pub(super) fn activity_timer(
        &mut self,
        run_id: &str,
        scheduled_event_id: i64,
        attempt: i32,
        kind: ActivityTimer,
    ) {
        let Some((exec, ctx)) = self.exec_mut(run_id) else { return };
        if !exec.is_running() {
            return;
        }
        let Some(a) = exec.activities.get(&scheduled_event_id) else { return };
        let current = attempt == a.attempt;
        if kind == ActivityTimer::RetryBackoff {
            // A paused activity keeps waiting; unpausing dispatches it.
            if current && a.state == ActivityState::Backoff && !a.paused {
                exec.dispatch_activity(ctx, scheduled_event_id);
            }
            return;
        }
        let fire = match kind {
            ActivityTimer::ScheduleToClose => Some(TimeoutType::ScheduleToClose),
            ActivityTimer::ScheduleToStart if current && a.state == ActivityState::Scheduled => {
                Some(TimeoutType::ScheduleToStart)
            }
            ActivityTimer::StartToClose if current && a.state == ActivityState::Started => {
                Some(TimeoutType::StartToClose)
            }
            ActivityTimer::Heartbeat if current && a.state == ActivityState::Started => {
                let last = a.last_heartbeat_time.or(a.started_time).unwrap_or(ctx.now);
                let hb = a.heartbeat.unwrap_or(0);
                (last + hb <= ctx.now).then_some(TimeoutType::Heartbeat)
            }
            _ => None,
        };
        if let Some(tt) = fire {
            let identity = a.started_identity.clone();
            exec.end_attempt(ctx, scheduled_event_id, AttemptEnd::TimedOut(tt), identity);
        }
    }
}

impl State {
    /// The task token of the running attempt of `activity_id`, for the `*ById` RPCs that
    /// complete an activity asynchronously without its token.
    pub(crate) fn activity_token_by_id(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        activity_id: &str,
    ) -> Result<Vec<u8>> {
        if activity_id.is_empty() {
            return Err(Error::InvalidArgument("ActivityId is not set on request.".into()));
        }
        let run_id = self.resolve(namespace, workflow_id, run_id)?;
        let exec = self.execs.get(&run_id).expect("run exists");
        if !exec.is_running() {
            return Err(Error::NotFound("workflow execution already completed".into()));
        }
        let (scheduled_event_id, a) = exec
            .activities
            .iter()
            .find(|(_, a)| a.activity_id == activity_id && a.state == ActivityState::Started)
            .ok_or_else(|| Error::NotFound("Activity task not found.".into()))?;
        Ok(TaskToken {
            namespace: exec.namespace.to_string(),
            workflow_id: exec.workflow_id.to_string(),
            run_id: exec.run_id.to_string(),
            scheduled_event_id: *scheduled_event_id,
            attempt: a.attempt,
            kind: TokenKind::Activity as i32,
        }
        .encode_bytes())
    }
}
