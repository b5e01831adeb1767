//! Ops for stuck workflows: reset a run to an earlier workflow task, and pause, unpause or
//! reset its activities.
//!
//! Reset forks history: the new run keeps every event before the chosen workflow task's
//! completion (so it ends with that task's `WorkflowTaskStarted`), fails that task with cause
//! RESET_WORKFLOW (naming the base and new runs, which links them), reapplies the signals
//! and updates that came later, and schedules a new task. The new run's mutable state
//! (pending timers, activities, updates) is rebuilt by reading the kept events. A running
//! base run is terminated.

use std::collections::BTreeMap;

use temporalio_protos::temporal::api::{
    enums::v1::{ResetReapplyExcludeType, UpdateAdmittedEventOrigin, WorkflowTaskFailedCause},
    failure::v1::{Failure, failure::FailureInfo},
    history::v1::{
        HistoryEvent, WorkflowExecutionSignaledEventAttributes,
        WorkflowExecutionUpdateAdmittedEventAttributes, WorkflowTaskFailedEventAttributes,
        WorkflowTaskStartedEventAttributes, history_event::Attributes,
    },
};

use super::{
    Error, Result, RunId, State,
    execution::{Activity, ActivityState, Execution, UpdateEntry, UpdateStage},
    util,
};

/// Which activities an activity operation targets.
#[derive(Debug, Clone)]
pub(crate) enum ActivitySelector {
    Id(String),
    Type(String),
}

/// The identity the Temporal server writes on the events it adds itself.
const HISTORY_SERVICE: &str = "history-service";

/// The workflow task `events` leave pending: its scheduled event id and, if it started, its
/// started event id.
fn pending_task(events: &[HistoryEvent]) -> Option<(i64, Option<i64>)> {
    let mut pending = None;
    for e in events {
        match &e.attributes {
            Some(Attributes::WorkflowTaskScheduledEventAttributes(_)) => {
                pending = Some((e.event_id, None));
            }
            Some(Attributes::WorkflowTaskStartedEventAttributes(_)) => {
                if let Some((_, started)) = &mut pending {
                    *started = Some(e.event_id);
                }
            }
            Some(
                Attributes::WorkflowTaskCompletedEventAttributes(_)
                | Attributes::WorkflowTaskFailedEventAttributes(_)
                | Attributes::WorkflowTaskTimedOutEventAttributes(_),
            ) => pending = None,
            _ => {}
        }
    }
    pending
}

impl Execution {
    /// Rebuilds a run's pending state from its history (used for the run a reset creates).
    fn rebuild_from(&mut self, events: &[HistoryEvent]) {
        let time = |e: &HistoryEvent| e.event_time.as_ref().map(util::ts_nanos).unwrap_or_default();
        let mut activities: BTreeMap<i64, Activity> = BTreeMap::new();
        for e in events {
            let Some(attrs) = &e.attributes else { continue };
            match attrs {
                Attributes::WorkflowExecutionStartedEventAttributes(a) => {
                    self.memo = a.memo.clone().map(Box::new);
                    self.search_attributes = a.search_attributes.clone().map(Box::new);
                    self.retry_policy = a.retry_policy.clone().map(Box::new);
                    self.attempt = a.attempt.max(1);
                    self.run_timeout = util::dur_nanos(a.workflow_run_timeout.as_ref());
                    self.execution_timeout = util::dur_nanos(a.workflow_execution_timeout.as_ref());
                }
                Attributes::TimerStartedEventAttributes(a) => {
                    let after = util::dur_nanos(a.start_to_fire_timeout.as_ref()).unwrap_or(0);
                    self.timers.insert(a.timer_id.clone(), (e.event_id, time(e) + after));
                }
                Attributes::TimerFiredEventAttributes(a) => {
                    self.timers.remove(&a.timer_id);
                }
                Attributes::TimerCanceledEventAttributes(a) => {
                    self.timers.remove(&a.timer_id);
                }
                Attributes::ActivityTaskScheduledEventAttributes(a) => {
                    activities.insert(e.event_id, Activity::scheduled(a, time(e)));
                }
                Attributes::ActivityTaskCancelRequestedEventAttributes(a) => {
                    if let Some(act) = activities.get_mut(&a.scheduled_event_id) {
                        act.cancel_requested_event_id = Some(e.event_id);
                    }
                }
                Attributes::ActivityTaskCompletedEventAttributes(a) => {
                    activities.remove(&a.scheduled_event_id);
                }
                Attributes::ActivityTaskFailedEventAttributes(a) => {
                    activities.remove(&a.scheduled_event_id);
                }
                Attributes::ActivityTaskTimedOutEventAttributes(a) => {
                    activities.remove(&a.scheduled_event_id);
                }
                Attributes::ActivityTaskCanceledEventAttributes(a) => {
                    activities.remove(&a.scheduled_event_id);
                }
                Attributes::WorkflowTaskCompletedEventAttributes(a) => {
                    self.last_completed_started_id = a.started_event_id;
                }
                Attributes::WorkflowExecutionCancelRequestedEventAttributes(_) => {
                    self.cancel_requested = true
                }
                Attributes::WorkflowExecutionSignaledEventAttributes(a)
                    if !a.request_id.is_empty() =>
                {
                    self.request_ids.insert(a.request_id.clone());
                }
                Attributes::UpsertWorkflowSearchAttributesEventAttributes(a) => {
                    if let Some(new) = &a.search_attributes {
                        let sa = self.search_attributes.get_or_insert_with(Default::default);
                        sa.indexed_fields.extend(new.indexed_fields.clone());
                    }
                }
                Attributes::WorkflowPropertiesModifiedEventAttributes(a) => {
                    if let Some(new) = &a.upserted_memo {
                        let memo = self.memo.get_or_insert_with(Default::default);
                        memo.fields.extend(new.fields.clone());
                    }
                }
                Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(a) => {
                    self.updates.push(UpdateEntry {
                        id: a.protocol_instance_id.clone(),
                        request: a.accepted_request.clone().unwrap_or_default(),
                        stage: UpdateStage::Accepted,
                        sent: true,
                        accepted_event_id: e.event_id,
                        outcome: None,
                    });
                }
                Attributes::WorkflowExecutionUpdateCompletedEventAttributes(a) => {
                    let id = a.meta.as_ref().map(|m| m.update_id.clone()).unwrap_or_default();
                    if let Some(u) = self.updates.iter_mut().find(|u| u.id == id) {
                        u.stage = UpdateStage::Completed;
                        u.outcome = a.outcome.clone();
                    }
                }
                _ => {}
            }
        }
        self.activities = activities;
        for e in events {
            self.history.push(e);
        }
    }
}

/// Signals and updates recorded after the reset point, to replay on the new run: signals as
/// new `WorkflowExecutionSignaled` events, accepted updates as `WorkflowExecutionUpdateAdmitted`
/// (origin REAPPLY) events, which the worker reads from history like a fresh update request.
fn reapplied(events: &[HistoryEvent], exclude: &[i32]) -> Vec<Attributes> {
    let skip_signals = exclude.contains(&(ResetReapplyExcludeType::Signal as i32));
    let skip_updates = exclude.contains(&(ResetReapplyExcludeType::Update as i32));
    events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::WorkflowExecutionSignaledEventAttributes(a)) if !skip_signals => {
                Some(Attributes::WorkflowExecutionSignaledEventAttributes(
                    WorkflowExecutionSignaledEventAttributes {
                        request_id: String::new(),
                        ..a.clone()
                    },
                ))
            }
            Some(Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(a))
                if !skip_updates =>
            {
                Some(Attributes::WorkflowExecutionUpdateAdmittedEventAttributes(
                    WorkflowExecutionUpdateAdmittedEventAttributes {
                        request: a.accepted_request.clone(),
                        origin: UpdateAdmittedEventOrigin::Reapply as i32,
                    },
                ))
            }
            _ => None,
        })
        .collect()
}

/// A ResetWorkflowExecution request, decoded.
#[derive(Debug)]
pub(crate) struct ResetRequest {
    pub(crate) namespace: String,
    pub(crate) workflow_id: String,
    pub(crate) run_id: String,
    /// The WorkflowTaskCompleted / Failed / TimedOut event to reset to.
    pub(crate) finish_event_id: i64,
    pub(crate) reason: String,
    pub(crate) identity: String,
    /// `ResetReapplyExcludeType`s.
    pub(crate) exclude: Vec<i32>,
}

impl State {
    /// ResetWorkflowExecution. Returns the new run's id.
    pub(crate) fn reset(&mut self, req: ResetRequest) -> Result<String> {
        let ResetRequest {
            namespace,
            workflow_id,
            run_id,
            finish_event_id,
            reason,
            identity,
            exclude,
        } = req;
        let (base_id, base) = self.resolve_run(&namespace, &workflow_id, &run_id)?;
        let base_history = self.history_of(&base)?.to_vec();
        // As the Temporal server: any id past the first event and within the history; the
        // events before it must leave a workflow task pending (scheduled, or started), which
        // the reset then fails.
        if finish_event_id <= 1 || finish_event_id > base_history.len() as i64 {
            return Err(Error::InvalidArgument(
                "Workflow task finish ID must be > 1 && <= workflow last event ID.".into(),
            ));
        }
        let pending =
            pending_task(&base_history[..(finish_event_id - 1) as usize]).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "Can only reset workflow to event ID in range [WorkflowTaskScheduled +1, \
                     WorkflowTaskStarted + 1]: {finish_event_id}"
                ))
            })?;
        let prefix: Vec<HistoryEvent> = base_history[..(finish_event_id - 1) as usize].to_vec();
        let replay = reapplied(&base_history[(finish_event_id - 1) as usize..], &exclude);
        let new_id = RunId::random();
        let mut exec = Execution::new(
            base.namespace.clone(),
            base.workflow_id.clone(),
            new_id,
            base.workflow_type.clone(),
            base.task_queue.clone(),
            uuid::Uuid::new_v4().to_string(),
            base.task_timeout,
            base.start_time,
        );
        exec.first_run_id = base.first_run_id;
        exec.rebuild_from(&prefix);
        let base_running = base.is_running();

        if base_running {
            self.terminate_run(
                &base_id,
                format!("reset to event {finish_event_id}: {reason}"),
                None,
                identity.clone(),
            );
        }
        let ctx = &mut self.ctx;
        let (scheduled_id, started_id) = match pending {
            (scheduled, Some(started)) => (scheduled, started),
            // A task only scheduled is started by the server itself, to be failed.
            (scheduled, None) => {
                let started = exec.append(
                    ctx,
                    Attributes::WorkflowTaskStartedEventAttributes(
                        WorkflowTaskStartedEventAttributes {
                            scheduled_event_id: scheduled,
                            identity: HISTORY_SERVICE.into(),
                            request_id: uuid::Uuid::new_v4().to_string(),
                            history_size_bytes: exec.history.bytes(),
                            ..Default::default()
                        },
                    ),
                );
                (scheduled, started)
            }
        };
        let failure = Failure {
            message: reason,
            failure_info: Some(FailureInfo::ResetWorkflowFailureInfo(Default::default())),
            ..Default::default()
        };
        exec.append(
            ctx,
            Attributes::WorkflowTaskFailedEventAttributes(WorkflowTaskFailedEventAttributes {
                scheduled_event_id: scheduled_id,
                started_event_id: started_id,
                cause: WorkflowTaskFailedCause::ResetWorkflow as i32,
                failure: Some(failure),
                identity: HISTORY_SERVICE.into(),
                base_run_id: base_id,
                new_run_id: new_id.to_string(),
                ..Default::default()
            }),
        );
        for attrs in replay {
            if let Attributes::WorkflowExecutionUpdateAdmittedEventAttributes(a) = &attrs {
                let request = a.request.clone().unwrap_or_default();
                exec.updates.push(UpdateEntry {
                    id: request.meta.as_ref().map(|m| m.update_id.clone()).unwrap_or_default(),
                    request,
                    stage: UpdateStage::Admitted,
                    // Delivered through its Admitted event, not as a separate message.
                    sent: true,
                    accepted_event_id: 0,
                    outcome: None,
                });
            }
            exec.append(ctx, attrs);
        }
        exec.schedule_wft(ctx, 1);
        exec.rearm(ctx);
        ctx.touched.push(new_id);
        self.current.insert(&exec.namespace, &exec.workflow_id, new_id);
        self.execs.insert(exec);
        Ok(new_id.to_string())
    }

    /// PauseActivity / UnpauseActivity / ResetActivity.
    pub(crate) fn activity_op(
        &mut self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        select: ActivitySelector,
        op: ActivityOp,
    ) -> Result<()> {
        let run_id = self.resolve(namespace, workflow_id, run_id)?;
        let (exec, ctx) = self.exec_mut(&run_id).ok_or_else(super::unreadable)?;
        if !exec.is_running() {
            return Err(Error::NotFound("workflow execution already completed".into()));
        }
        let targets: Vec<i64> = exec
            .activities
            .iter()
            .filter(|(_, a)| match &select {
                ActivitySelector::Id(id) => a.activity_id == *id,
                ActivitySelector::Type(t) => a.activity_type == *t,
            })
            .map(|(id, _)| *id)
            .collect();
        if targets.is_empty() {
            return Err(Error::NotFound("no pending activity matches".into()));
        }
        for id in targets {
            let Some(a) = exec.activities.get_mut(&id) else { continue };
            match &op {
                ActivityOp::Pause { identity, reason, request_id } => {
                    if a.paused {
                        // As the Temporal server: a retried pause is a no-op, another refused.
                        if a.pause.as_ref().is_some_and(|p| p.request_id == *request_id) {
                            continue;
                        }
                        return Err(Error::FailedPrecondition("activity is already paused".into()));
                    }
                    a.paused = true;
                    a.pause = Some(Box::new(super::execution::Pause {
                        time: ctx.now,
                        identity: identity.clone(),
                        reason: reason.clone(),
                        request_id: request_id.clone(),
                    }));
                }
                ActivityOp::Unpause { reset_attempts } => {
                    a.paused = false;
                    a.pause = None;
                    if *reset_attempts {
                        a.attempt = 1;
                    }
                    // A paused activity that was waiting to retry goes out now.
                    if a.state == ActivityState::Backoff {
                        exec.dispatch_activity(ctx, id);
                    }
                }
                ActivityOp::Reset { keep_paused, reset_heartbeat } => {
                    a.attempt = 1;
                    a.reset_requested = a.state == ActivityState::Started;
                    if *reset_heartbeat {
                        a.heartbeat_details = None;
                    }
                    if !keep_paused {
                        a.paused = false;
                        a.pause = None;
                    }
                    if a.state == ActivityState::Backoff && !a.paused {
                        exec.dispatch_activity(ctx, id);
                    }
                }
            }
        }
        exec.refresh_pause_info();
        Ok(())
    }
}

/// What an activity operation does.
#[derive(Debug, Clone)]
pub(crate) enum ActivityOp {
    Pause { identity: String, reason: String, request_id: String },
    Unpause { reset_attempts: bool },
    Reset { keep_paused: bool, reset_heartbeat: bool },
}
