//! Workflow tasks: dispatch on poll, completion (command processing), failure and timeout.

use std::collections::{BTreeSet, HashMap, HashSet};

use temporalio_protos::temporal::api::{
    command::v1::{self as commands, Command, command::Attributes as Cmd},
    common::v1::{WorkflowExecution, WorkflowType},
    enums::v1::{
        CommandType, SuggestContinueAsNewReason, TaskQueueKind, TimeoutType, WorkerVersioningMode,
        WorkflowExecutionStatus, WorkflowTaskFailedCause,
    },
    failure::v1::Failure,
    history::v1::{
        ActivityTaskCancelRequestedEventAttributes, ActivityTaskCanceledEventAttributes,
        ActivityTaskScheduledEventAttributes, History, MarkerRecordedEventAttributes,
        RequestCancelExternalWorkflowExecutionInitiatedEventAttributes,
        SignalExternalWorkflowExecutionInitiatedEventAttributes, TimerCanceledEventAttributes,
        TimerStartedEventAttributes, UpsertWorkflowSearchAttributesEventAttributes,
        WorkflowExecutionCanceledEventAttributes, WorkflowExecutionCompletedEventAttributes,
        WorkflowExecutionContinuedAsNewEventAttributes, WorkflowExecutionFailedEventAttributes,
        WorkflowPropertiesModifiedEventAttributes, WorkflowTaskCompletedEventAttributes,
        WorkflowTaskTimedOutEventAttributes, history_event::Attributes,
    },
    protocol::v1::Message,
    query::v1::WorkflowQueryResult,
    sdk::v1::WorkflowTaskCompletedMetadata,
    taskqueue::v1::TaskQueue,
    workflowservice::v1::PollWorkflowTaskQueueResponse,
};

use super::{
    Ctx, Error, QueueKey, Result, State, TimerTask, WfItem,
    execution::{Activity, ActivityState, Execution, Wft, WftStarted},
    util,
};
use crate::token::{TaskToken, TokenKind};

/// A completion, decoded.
#[derive(Debug, Default)]
pub(crate) struct Completion {
    pub(crate) token: Vec<u8>,
    pub(crate) commands: Vec<Command>,
    pub(crate) identity: String,
    pub(crate) force_new_task: bool,
    pub(crate) sdk_metadata: Option<WorkflowTaskCompletedMetadata>,
    pub(crate) messages: Vec<Message>,
    pub(crate) query_results: HashMap<String, WorkflowQueryResult>,
    /// What the worker says of its build, recorded on `WorkflowTaskCompleted` so a later
    /// replay knows which build ran each task.
    pub(crate) worker_version:
        Option<temporalio_protos::temporal::api::common::v1::WorkerVersionStamp>,
    pub(crate) deployment_options:
        Option<temporalio_protos::temporal::api::deployment::v1::WorkerDeploymentOptions>,
    pub(crate) binary_checksum: String,
    pub(crate) versioning_behavior: i32,
}

/// Why a batch of commands is refused: the task fails with this cause.
struct BadCommand {
    cause: WorkflowTaskFailedCause,
    message: String,
}

fn is_close(cmd: &Command) -> bool {
    matches!(
        cmd.attributes,
        Some(
            Cmd::CompleteWorkflowExecutionCommandAttributes(_)
                | Cmd::FailWorkflowExecutionCommandAttributes(_)
                | Cmd::CancelWorkflowExecutionCommandAttributes(_)
                | Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(_)
        )
    )
}

fn command_name(cmd: &Command) -> String {
    CommandType::try_from(cmd.command_type)
        .map(|t| t.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("command type {}", cmd.command_type))
}

impl State {
    /// Finds the task a workflow-task token names, or the error Temporal gives for it.
    /// The started workflow task a token names, checked against the run: the token, and a
    /// copy of the task with its start (which the check proved is there).
    pub(crate) fn workflow_task_for(
        &mut self,
        token: &[u8],
        namespace: &str,
    ) -> Result<(TaskToken, Wft, WftStarted)> {
        let token = self.ctx.task_token(token, namespace, TokenKind::Workflow)?;
        let exec = self
            .execs
            .get(&token.run_id)
            .ok_or_else(|| Error::NotFound("Workflow task not found.".into()))?;
        if !exec.is_running() {
            return Err(Error::NotFound(
                "Workflow task not found: workflow execution already completed.".into(),
            ));
        }
        match exec.wft.as_deref() {
            Some(w @ Wft { started: Some(started), .. })
                if w.scheduled_event_id == token.scheduled_event_id
                    && w.attempt == token.attempt =>
            {
                let started = started.clone();
                Ok((token, w.clone(), started))
            }
            _ => Err(Error::NotFound("Workflow task not found.".into())),
        }
    }

    /// Takes the next live task off a queue and starts it.
    pub(crate) fn start_workflow_task(
        &mut self,
        namespace: &str,
        queue: &str,
        identity: &str,
        request_id: String,
    ) -> Option<PollWorkflowTaskQueueResponse> {
        let key = QueueKey { namespace: namespace.to_owned(), name: queue.to_owned() };
        loop {
            let task = match self.ctx.wf_queues.get_mut(&key)?.items.pop_front()? {
                WfItem::Task(task) => task,
                WfItem::Query { run_id, id } => match self.start_query_task(&run_id, id) {
                    Some(resp) => return Some(resp),
                    None => continue,
                },
            };
            let Some((exec, ctx)) = self.exec_mut(&task.run_id) else { continue };
            let unstarted = exec
                .wft
                .as_deref()
                .filter(|w| w.scheduled_event_id == task.scheduled_event_id && w.started.is_none());
            let Some(wft) = unstarted.filter(|_| exec.is_running()).cloned() else { continue };
            return Some(exec.start_wft(ctx, wft, identity, request_id));
        }
    }

    /// Eager workflow start: the first workflow task of a run just started, handed to the
    /// starter (which runs a worker for the queue) instead of waiting for a poll. Only a
    /// task that is scheduled and not yet started qualifies; a start delay, or a retried
    /// start whose task a worker already has, gets none, and the worker polls as usual. The
    /// queue entry stays behind and is skipped as stale.
    pub(crate) fn start_eager(
        &mut self,
        run_id: &str,
        identity: &str,
    ) -> Option<PollWorkflowTaskQueueResponse> {
        let (exec, ctx) = self.exec_mut(run_id)?;
        let ready = exec.wft.as_deref().filter(|w| w.started.is_none() && !w.speculative);
        let wft = ready.filter(|_| exec.is_running()).cloned()?;
        Some(exec.start_wft(ctx, wft, identity, uuid::Uuid::new_v4().to_string()))
    }

    /// Applies a completion. Returns the `reset_history_event_id` to report: non-zero when a
    /// speculative task was discarded, so the worker rolls its cached history back to the
    /// last real `WorkflowTaskStarted` (the next task reuses the discarded task's event ids).
    pub(crate) fn complete_workflow_task(&mut self, c: Completion, namespace: &str) -> Result<i64> {
        let run_id = self.ctx.task_token(&c.token, namespace, TokenKind::Workflow)?.run_id;
        let reset = self.record_completion(c, namespace)?;
        // Signals and cancel requests the task sent to other workflows go out once its own
        // events are written.
        let owed = self
            .execs
            .get_mut(&run_id)
            .map(|e| std::mem::take(&mut e.owed_external))
            .unwrap_or_default();
        self.deliver_external(&run_id, owed);
        Ok(reset)
    }

    fn record_completion(&mut self, c: Completion, namespace: &str) -> Result<i64> {
        let (token, wft, started) = self.workflow_task_for(&c.token, namespace)?;
        self.answer_attached_queries(c.query_results);
        let (exec, ctx) = self.exec_mut(&token.run_id).ok_or_else(super::unreadable)?;

        // A speculative task that recorded nothing (only update rejections) leaves no trace.
        let records_nothing = c.commands.is_empty()
            && !c.force_new_task
            && exec.buffered.is_empty()
            && c.messages.iter().all(|m| {
                m.body.as_ref().is_some_and(|b| b.type_url.ends_with("update.v1.Rejection"))
            });
        if wft.speculative && records_nothing {
            for m in c.messages {
                exec.apply_message(ctx, m);
            }
            exec.end_wft(ctx);
            exec.finish_task(ctx, false);
            return Ok(exec.last_completed_started_id);
        }
        // Materialising writes the task's events but leaves the task (and its start) as checked.
        exec.materialize_speculative(ctx);

        // Temporal refuses to close a run while events it has not shown the workflow wait
        // in the buffer: the task fails and a new one carries them.
        // The worker is told with INVALID_ARGUMENT "UnhandledCommand" (the real server's
        // answer, which sdk-core matches on to evict the run and replay it with the new events).
        if !exec.buffered.is_empty() && c.commands.iter().any(is_close) {
            exec.fail_wft(
                ctx,
                WorkflowTaskFailedCause::UnhandledCommand,
                Some(util::server_failure("UnhandledCommand", true)),
                c.identity,
                1,
            );
            return Err(Error::InvalidArgument("UnhandledCommand".into()));
        }
        if let Err(bad) = exec.validate_commands(&c.commands, &c.messages, &ctx.registry) {
            exec.fail_wft(
                ctx,
                bad.cause,
                Some(util::server_failure(bad.message.clone(), true)),
                c.identity,
                wft.attempt + 1,
            );
            return Err(Error::InvalidArgument(bad.message));
        }

        exec.record_build_id(c.worker_version.as_ref());
        let completed_id = exec.append(
            ctx,
            Attributes::WorkflowTaskCompletedEventAttributes(
                WorkflowTaskCompletedEventAttributes {
                    scheduled_event_id: wft.scheduled_event_id,
                    started_event_id: started.event_id,
                    identity: c.identity.clone(),
                    sdk_metadata: c.sdk_metadata,
                    #[allow(deprecated)] // still sent by SDKs, and read back on replay
                    binary_checksum: c.binary_checksum,
                    #[allow(deprecated)]
                    worker_version: c.worker_version,
                    worker_deployment_name: c
                        .deployment_options
                        .as_ref()
                        .map(|o| o.deployment_name.clone())
                        .unwrap_or_default(),
                    // As Temporal records it: only a versioned worker's task has a version.
                    deployment_version: c
                        .deployment_options
                        .as_ref()
                        .filter(|o| o.worker_versioning_mode == WorkerVersioningMode::Versioned as i32)
                        .map(|o| temporalio_protos::temporal::api::deployment::v1::WorkerDeploymentVersion {
                            build_id: o.build_id.clone(),
                            deployment_name: o.deployment_name.clone(),
                        }),
                    versioning_behavior: c.versioning_behavior,
                    ..Default::default()
                },
            ),
        );
        exec.end_wft(ctx);
        exec.last_completed_started_id = started.event_id;

        // Protocol messages are applied where a ProtocolMessage command places them; the
        // rest after the last command (before it, if that command closes the run).
        let mut messages: Vec<Option<Message>> = c.messages.into_iter().map(Some).collect();
        let mut needs_task = c.force_new_task;
        for cmd in c.commands {
            if let Some(Cmd::ProtocolMessageCommandAttributes(p)) = &cmd.attributes {
                if let Some(m) = messages
                    .iter_mut()
                    .find(|m| m.as_ref().is_some_and(|m| m.id == p.message_id))
                    .and_then(Option::take)
                {
                    exec.apply_message(ctx, m);
                }
                continue;
            }
            if is_close(&cmd) {
                for m in messages.iter_mut().filter_map(Option::take) {
                    exec.apply_message(ctx, m);
                }
            }
            needs_task |= exec.apply_command(ctx, cmd, completed_id, &c.identity);
            if !exec.is_running() {
                exec.close(ctx, exec.status);
                if let Some(next) = exec.continue_as_new.take() {
                    self.create_run(*next);
                }
                return Ok(0);
            }
        }
        for m in messages.into_iter().flatten() {
            exec.apply_message(ctx, m);
        }
        let flushed = exec.flush_buffer(ctx);
        exec.finish_task(ctx, flushed || needs_task);
        Ok(0)
    }

    pub(crate) fn fail_workflow_task(
        &mut self,
        token: &[u8],
        namespace: &str,
        cause: WorkflowTaskFailedCause,
        failure: Option<Failure>,
        identity: String,
    ) -> Result<()> {
        let (token, ..) = self.workflow_task_for(token, namespace)?;
        let (exec, ctx) = self.exec_mut(&token.run_id).ok_or_else(super::unreadable)?;
        exec.fail_wft(ctx, cause, failure, identity, token.attempt + 1);
        Ok(())
    }

    pub(super) fn workflow_task_timed_out(
        &mut self,
        run_id: &str,
        scheduled_event_id: i64,
        attempt: i32,
    ) {
        let Some((exec, ctx)) = self.exec_mut(run_id) else { return };
        let Some(wft) = exec.wft.clone().filter(|w| {
            exec.is_running() && w.scheduled_event_id == scheduled_event_id && w.attempt == attempt
        }) else {
            return;
        };
        if wft.started.is_none() {
            return;
        }
        exec.materialize_speculative(ctx);
        exec.unsend_updates();
        let Some(started) = exec.wft.as_ref().and_then(|w| w.started.clone()) else { return };
        exec.append(
            ctx,
            Attributes::WorkflowTaskTimedOutEventAttributes(WorkflowTaskTimedOutEventAttributes {
                scheduled_event_id,
                started_event_id: started.event_id,
                timeout_type: TimeoutType::StartToClose as i32,
            }),
        );
        exec.flush_buffer(ctx);
        exec.schedule_wft(ctx, attempt + 1);
    }
}

impl Execution {
    /// Starts `wft`, the run's scheduled and not yet started task (a copy the caller checked).
    fn start_wft(
        &mut self,
        ctx: &mut Ctx,
        wft: Wft,
        identity: &str,
        request_id: String,
    ) -> PollWorkflowTaskQueueResponse {
        let mut started_attrs =
            self.wft_started_event(wft.scheduled_event_id, identity, &request_id);
        if let Attributes::WorkflowTaskStartedEventAttributes(a) = &mut started_attrs {
            let (max_events, max_bytes) = ctx.suggest_can;
            if self.history.len() >= max_events {
                a.suggest_continue_as_new = true;
                a.suggest_continue_as_new_reasons
                    .push(SuggestContinueAsNewReason::TooManyHistoryEvents as i32);
            }
            if self.history.bytes() >= max_bytes {
                a.suggest_continue_as_new = true;
                a.suggest_continue_as_new_reasons
                    .push(SuggestContinueAsNewReason::HistorySizeTooLarge as i32);
            }
        }
        let mut history = None;
        let event_id = if wft.speculative {
            // Shown to the worker, written only if the completion records something.
            let mut events = self.history.to_vec();
            for (id, attrs, at) in [
                (wft.scheduled_event_id, self.wft_scheduled_event(1), wft.scheduled_time),
                (wft.scheduled_event_id + 1, started_attrs, ctx.now),
            ] {
                events.push(temporalio_protos::temporal::api::history::v1::HistoryEvent {
                    event_id: id,
                    event_time: util::ts(at),
                    event_type: util::event_type_of(&attrs) as i32,
                    attributes: Some(attrs),
                    ..Default::default()
                });
            }
            history = Some(events);
            wft.scheduled_event_id + 1
        } else {
            self.append(ctx, started_attrs)
        };
        let timeout = ctx.schedule_timer(
            ctx.now + self.task_timeout,
            TimerTask::WorkflowTaskTimeout {
                run_id: self.run_id,
                scheduled_event_id: wft.scheduled_event_id,
                attempt: wft.attempt,
            },
        );
        if let Some(w) = self.wft.as_mut() {
            w.started = Some(WftStarted {
                event_id,
                time: ctx.now,
                timeout: Some(timeout),
                identity: identity.to_owned(),
                request_id,
            });
        }
        let messages = self.take_update_messages(event_id);
        let queries = wft
            .queries
            .iter()
            .filter_map(|id| ctx.queries.get(id).map(|q| (id.to_string(), q.query.clone())))
            .collect();
        let token = TaskToken {
            namespace: self.namespace.to_string(),
            workflow_id: self.workflow_id.to_string(),
            run_id: self.run_id.to_string(),
            scheduled_event_id: wft.scheduled_event_id,
            attempt: wft.attempt,
            kind: TokenKind::Workflow as i32,
        };
        PollWorkflowTaskQueueResponse {
            task_token: token.encode_bytes(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: self.workflow_id.to_string(),
                run_id: self.run_id.to_string(),
            }),
            workflow_type: Some(WorkflowType { name: self.workflow_type.to_string() }),
            previous_started_event_id: self.last_completed_started_id,
            started_event_id: event_id,
            attempt: wft.attempt,
            // Stickiness is declined, so every task carries the full history.
            history: Some(History { events: history.unwrap_or_else(|| self.history.to_vec()) }),
            messages,
            queries,
            workflow_execution_task_queue: Some(TaskQueue {
                name: self.task_queue.to_string(),
                kind: TaskQueueKind::Normal as i32,
                normal_name: String::new(),
            }),
            scheduled_time: util::ts(wft.scheduled_time),
            started_time: util::ts(ctx.now),
            ..Default::default()
        }
    }

    /// After a completion: schedule the next task if anything is waiting for one, and send
    /// queries that found no task as legacy query tasks.
    fn finish_task(&mut self, ctx: &mut Ctx, needs_task: bool) {
        if !self.is_running() || self.wft.is_some() {
            return;
        }
        if needs_task || !self.waiting_queries.is_empty() && self.has_undelivered_updates() {
            self.schedule_wft(ctx, 1);
        } else if self.has_undelivered_updates() {
            self.schedule_speculative_wft(ctx);
        }
        if self.wft.is_none() {
            for id in std::mem::take(&mut self.waiting_queries) {
                self.dispatch_legacy_query(ctx, id);
            }
        }
    }

    /// Checks a whole batch before anything is written, as Temporal does, so a bad command
    /// leaves no partial history behind.
    fn validate_commands(
        &self,
        commands: &[Command],
        messages: &[Message],
        registry: &super::visibility::Registry,
    ) -> std::result::Result<(), BadCommand> {
        let mut timers: BTreeSet<&str> = self.timers.keys().collect();
        let mut activity_ids: HashSet<&str> =
            self.activities.values().map(|a| a.activity_id.as_str()).collect();
        for (i, cmd) in commands.iter().enumerate() {
            let bad = |cause, message: String| Err(BadCommand { cause, message });
            if is_close(cmd) && i + 1 != commands.len() {
                return bad(
                    WorkflowTaskFailedCause::UnhandledCommand,
                    format!("{} must be the last command", command_name(cmd)),
                );
            }
            match &cmd.attributes {
                Some(Cmd::ScheduleActivityTaskCommandAttributes(a)) => {
                    if a.activity_id.is_empty()
                        || a.activity_type.as_ref().is_none_or(|t| t.name.is_empty())
                    {
                        return bad(WorkflowTaskFailedCause::BadScheduleActivityAttributes, "ActivityId and ActivityType must be set on ScheduleActivityTaskCommand.".into());
                    }
                    if util::dur_nanos(a.start_to_close_timeout.as_ref()).is_none()
                        && util::dur_nanos(a.schedule_to_close_timeout.as_ref()).is_none()
                    {
                        return bad(WorkflowTaskFailedCause::BadScheduleActivityAttributes, "A valid StartToClose or ScheduleToCloseTimeout is not set on ScheduleActivityTaskCommand.".into());
                    }
                    if !activity_ids.insert(a.activity_id.as_str()) {
                        return bad(
                            WorkflowTaskFailedCause::BadScheduleActivityAttributes,
                            format!("Activity id {} is already in use.", a.activity_id),
                        );
                    }
                }
                Some(Cmd::StartTimerCommandAttributes(a)) => {
                    // As the Temporal server: an unset or zero timeout fires at once; only a
                    // negative one is refused.
                    if a.start_to_fire_timeout
                        .as_ref()
                        .is_some_and(|d| d.seconds < 0 || d.nanos < 0)
                    {
                        return bad(
                            WorkflowTaskFailedCause::BadStartTimerAttributes,
                            format!(
                                "An invalid StartToFireTimeout is set on StartTimerCommand: negative duration. TimerId={}",
                                a.timer_id
                            ),
                        );
                    }
                    if !timers.insert(a.timer_id.as_str()) {
                        return bad(
                            WorkflowTaskFailedCause::StartTimerDuplicateId,
                            format!("Timer id {} is already in use.", a.timer_id),
                        );
                    }
                }
                Some(Cmd::CancelTimerCommandAttributes(a)) => {
                    if !timers.remove(a.timer_id.as_str()) {
                        return bad(
                            WorkflowTaskFailedCause::BadCancelTimerAttributes,
                            format!("Timer id {} is not pending.", a.timer_id),
                        );
                    }
                }
                Some(Cmd::RequestCancelActivityTaskCommandAttributes(a)) => {
                    if !self.activities.contains_key(&a.scheduled_event_id) {
                        return bad(
                            WorkflowTaskFailedCause::BadRequestCancelActivityAttributes,
                            format!(
                                "No pending activity was scheduled by event {}.",
                                a.scheduled_event_id
                            ),
                        );
                    }
                }
                Some(Cmd::ProtocolMessageCommandAttributes(p)) => {
                    if !messages.iter().any(|m| m.id == p.message_id) {
                        return bad(
                            WorkflowTaskFailedCause::BadUpdateWorkflowExecutionMessage,
                            format!(
                                "ProtocolMessageCommand names unknown message {}.",
                                p.message_id
                            ),
                        );
                    }
                }
                Some(Cmd::UpsertWorkflowSearchAttributesCommandAttributes(a)) => {
                    if let Err(e) = super::visibility::validate(
                        registry,
                        &self.namespace,
                        a.search_attributes.as_ref(),
                    ) {
                        return bad(WorkflowTaskFailedCause::BadSearchAttributes, e);
                    }
                }
                Some(Cmd::StartChildWorkflowExecutionCommandAttributes(a)) => {
                    let cause = WorkflowTaskFailedCause::BadStartChildExecutionAttributes;
                    if a.workflow_id.is_empty() {
                        return bad(
                            cause,
                            "Required field WorkflowId is not set on command.".into(),
                        );
                    }
                    if a.workflow_type.as_ref().is_none_or(|t| t.name.is_empty()) {
                        return bad(
                            cause,
                            "Required field WorkflowType is not set on command.".into(),
                        );
                    }
                    if !a.cron_schedule.is_empty() {
                        return bad(
                            cause,
                            "cron_schedule is not supported by the convo devserver".into(),
                        );
                    }
                    if let Err(e) = super::visibility::validate(
                        registry,
                        self.child_namespace(a),
                        a.search_attributes.as_ref(),
                    ) {
                        return bad(WorkflowTaskFailedCause::BadSearchAttributes, e);
                    }
                }
                Some(
                    Cmd::SignalExternalWorkflowExecutionCommandAttributes(_)
                    | Cmd::RequestCancelExternalWorkflowExecutionCommandAttributes(_)
                    | Cmd::ModifyWorkflowPropertiesCommandAttributes(_)
                    | Cmd::RecordMarkerCommandAttributes(_)
                    | Cmd::CompleteWorkflowExecutionCommandAttributes(_)
                    | Cmd::FailWorkflowExecutionCommandAttributes(_)
                    | Cmd::CancelWorkflowExecutionCommandAttributes(_),
                ) => {}
                Some(Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(a)) => {
                    if let Err(e) = super::visibility::validate(
                        registry,
                        &self.namespace,
                        a.search_attributes.as_ref(),
                    ) {
                        return bad(WorkflowTaskFailedCause::BadSearchAttributes, e);
                    }
                    if !a.cron_schedule.is_empty() {
                        return bad(
                            WorkflowTaskFailedCause::BadContinueAsNewAttributes,
                            "cron_schedule is not supported by the convo devserver".into(),
                        );
                    }
                }
                Some(_) => {
                    return bad(
                        WorkflowTaskFailedCause::UnhandledCommand,
                        format!(
                            "{} is not supported by the convo devserver yet",
                            command_name(cmd)
                        ),
                    );
                }
                None => {
                    return bad(
                        WorkflowTaskFailedCause::UnhandledCommand,
                        "command without attributes".into(),
                    );
                }
            }
        }
        Ok(())
    }

    /// Writes the events of one (validated) command. Returns whether it needs a new
    /// workflow task to tell the workflow about something (an activity cancelled before it
    /// started).
    fn apply_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: Command,
        completed_id: i64,
        identity: &str,
    ) -> bool {
        let Some(attrs) = cmd.attributes else { return false };
        // The command's summary and event-group markers go on the first event it writes.
        self.next_event_meta = Some(Box::new((cmd.user_metadata, cmd.event_group_markers)));
        let needs_task = self.apply_command_attrs(ctx, attrs, completed_id, identity);
        self.next_event_meta = None;
        needs_task
    }

    fn apply_command_attrs(
        &mut self,
        ctx: &mut Ctx,
        attrs: Cmd,
        completed_id: i64,
        identity: &str,
    ) -> bool {
        match attrs {
            Cmd::ScheduleActivityTaskCommandAttributes(a) => {
                self.schedule_activity(ctx, a, completed_id);
            }
            Cmd::RequestCancelActivityTaskCommandAttributes(a) => {
                return self.request_cancel_activity(ctx, a, completed_id, identity);
            }
            Cmd::StartTimerCommandAttributes(a) => self.start_timer(ctx, a, completed_id),
            Cmd::CancelTimerCommandAttributes(a) => {
                self.cancel_timer(ctx, a, completed_id, identity)
            }
            Cmd::RecordMarkerCommandAttributes(a) => self.record_marker(ctx, a, completed_id),
            Cmd::UpsertWorkflowSearchAttributesCommandAttributes(a) => {
                self.upsert_search_attributes(ctx, a, completed_id)
            }
            Cmd::CompleteWorkflowExecutionCommandAttributes(a) => {
                self.complete_workflow(ctx, a, completed_id)
            }
            Cmd::FailWorkflowExecutionCommandAttributes(a) => {
                self.fail_workflow(ctx, a, completed_id)
            }
            Cmd::ModifyWorkflowPropertiesCommandAttributes(a) => {
                self.modify_workflow_properties(ctx, a, completed_id)
            }
            Cmd::CancelWorkflowExecutionCommandAttributes(a) => {
                self.cancel_workflow(ctx, a, completed_id)
            }
            Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(a) => {
                self.continue_as_new(ctx, a, completed_id)
            }
            Cmd::StartChildWorkflowExecutionCommandAttributes(a) => {
                self.initiate_child(ctx, a, completed_id, identity);
            }
            Cmd::SignalExternalWorkflowExecutionCommandAttributes(a) => {
                self.signal_external(ctx, a, completed_id)
            }
            Cmd::RequestCancelExternalWorkflowExecutionCommandAttributes(a) => {
                self.request_cancel_external(ctx, a, completed_id)
            }
            _ => {} // refused by validate_commands
        }
        false
    }

    /// `RequestCancelActivityTask`: a scheduled activity is canceled at once, a started one
    /// learns through its next heartbeat. Whether a new workflow task must tell the workflow.
    fn request_cancel_activity(
        &mut self,
        ctx: &mut Ctx,
        a: commands::RequestCancelActivityTaskCommandAttributes,
        completed_id: i64,
        identity: &str,
    ) -> bool {
        let requested = self.append(
            ctx,
            Attributes::ActivityTaskCancelRequestedEventAttributes(
                ActivityTaskCancelRequestedEventAttributes {
                    scheduled_event_id: a.scheduled_event_id,
                    workflow_task_completed_event_id: completed_id,
                },
            ),
        );
        let Some(act) = self.activities.get_mut(&a.scheduled_event_id) else {
            return false;
        };
        if act.state == ActivityState::Started {
            // The worker learns through its next heartbeat and answers Canceled.
            act.cancel_requested_event_id = Some(requested);
            return false;
        }
        self.activities.remove(&a.scheduled_event_id);
        self.append(
            ctx,
            Attributes::ActivityTaskCanceledEventAttributes(ActivityTaskCanceledEventAttributes {
                latest_cancel_requested_event_id: requested,
                scheduled_event_id: a.scheduled_event_id,
                identity: identity.to_owned(),
                ..Default::default()
            }),
        );
        true
    }

    /// `StartTimer`: the timer and its firing.
    fn start_timer(
        &mut self,
        ctx: &mut Ctx,
        a: commands::StartTimerCommandAttributes,
        completed_id: i64,
    ) {
        let fire_after = util::dur_nanos(a.start_to_fire_timeout.as_ref()).unwrap_or(0);
        let started_event_id = self.append(
            ctx,
            Attributes::TimerStartedEventAttributes(TimerStartedEventAttributes {
                timer_id: a.timer_id.clone(),
                start_to_fire_timeout: a.start_to_fire_timeout,
                workflow_task_completed_event_id: completed_id,
            }),
        );
        self.timers.insert(a.timer_id.clone(), (started_event_id, ctx.now + fire_after));
        ctx.schedule_timer(
            ctx.now + fire_after,
            TimerTask::User { run_id: self.run_id, started_event_id },
        );
    }

    /// `CancelTimer`.
    fn cancel_timer(
        &mut self,
        ctx: &mut Ctx,
        a: commands::CancelTimerCommandAttributes,
        completed_id: i64,
        identity: &str,
    ) {
        let started_event_id = self.timers.remove(&a.timer_id).map(|t| t.0).unwrap_or_default();
        self.append(
            ctx,
            Attributes::TimerCanceledEventAttributes(TimerCanceledEventAttributes {
                timer_id: a.timer_id,
                started_event_id,
                workflow_task_completed_event_id: completed_id,
                identity: identity.to_owned(),
            }),
        );
    }

    /// `RecordMarker`.
    fn record_marker(
        &mut self,
        ctx: &mut Ctx,
        a: commands::RecordMarkerCommandAttributes,
        completed_id: i64,
    ) {
        self.append(
            ctx,
            Attributes::MarkerRecordedEventAttributes(MarkerRecordedEventAttributes {
                marker_name: a.marker_name,
                details: a.details,
                workflow_task_completed_event_id: completed_id,
                header: a.header,
                failure: a.failure,
            }),
        );
    }

    /// `UpsertWorkflowSearchAttributes`: merged into the run's attributes.
    fn upsert_search_attributes(
        &mut self,
        ctx: &mut Ctx,
        a: commands::UpsertWorkflowSearchAttributesCommandAttributes,
        completed_id: i64,
    ) {
        if let Some(new) = &a.search_attributes {
            let current = self.search_attributes.get_or_insert_with(Default::default);
            for (k, v) in &new.indexed_fields {
                current.indexed_fields.insert(k.clone(), v.clone());
            }
        }
        self.append(
            ctx,
            Attributes::UpsertWorkflowSearchAttributesEventAttributes(
                UpsertWorkflowSearchAttributesEventAttributes {
                    workflow_task_completed_event_id: completed_id,
                    search_attributes: a.search_attributes,
                },
            ),
        );
    }

    /// `CompleteWorkflowExecution`.
    fn complete_workflow(
        &mut self,
        ctx: &mut Ctx,
        a: commands::CompleteWorkflowExecutionCommandAttributes,
        completed_id: i64,
    ) {
        self.append(
            ctx,
            Attributes::WorkflowExecutionCompletedEventAttributes(
                WorkflowExecutionCompletedEventAttributes {
                    result: a.result,
                    workflow_task_completed_event_id: completed_id,
                    new_execution_run_id: String::new(),
                },
            ),
        );
        self.status = WorkflowExecutionStatus::Completed;
    }

    /// `FailWorkflowExecution`: and the retry run its retry policy asks for, if any.
    fn fail_workflow(
        &mut self,
        ctx: &mut Ctx,
        a: commands::FailWorkflowExecutionCommandAttributes,
        completed_id: i64,
    ) {
        let next = self
            .retry_backoff(a.failure.as_ref(), ctx.now)
            .map(|b| self.retry_run(a.failure.clone(), b, ctx));
        let retry_state = self.retry_state(next.as_ref(), a.failure.as_ref());
        self.append(
            ctx,
            Attributes::WorkflowExecutionFailedEventAttributes(
                WorkflowExecutionFailedEventAttributes {
                    failure: a.failure,
                    retry_state: retry_state as i32,
                    workflow_task_completed_event_id: completed_id,
                    new_execution_run_id: next
                        .as_ref()
                        .map(|n| n.run_id.to_string())
                        .unwrap_or_default(),
                },
            ),
        );
        self.status = WorkflowExecutionStatus::Failed;
        // Created once this run is closed, like a continue-as-new.
        self.continue_as_new = next.map(Box::new);
    }

    /// `ModifyWorkflowProperties`: the memo upserted (an empty value removes its key).
    fn modify_workflow_properties(
        &mut self,
        ctx: &mut Ctx,
        a: commands::ModifyWorkflowPropertiesCommandAttributes,
        completed_id: i64,
    ) {
        if let Some(upsert) = &a.upserted_memo {
            let memo = self.memo.get_or_insert_with(Default::default);
            for (k, v) in &upsert.fields {
                // An empty payload removes the key, as in Temporal.
                if v.data.is_empty() || v.data == b"null" {
                    memo.fields.remove(k);
                } else {
                    memo.fields.insert(k.clone(), v.clone());
                }
            }
        }
        self.append(
            ctx,
            Attributes::WorkflowPropertiesModifiedEventAttributes(
                WorkflowPropertiesModifiedEventAttributes {
                    workflow_task_completed_event_id: completed_id,
                    upserted_memo: a.upserted_memo,
                },
            ),
        );
    }

    /// `CancelWorkflowExecution`.
    fn cancel_workflow(
        &mut self,
        ctx: &mut Ctx,
        a: commands::CancelWorkflowExecutionCommandAttributes,
        completed_id: i64,
    ) {
        self.append(
            ctx,
            Attributes::WorkflowExecutionCanceledEventAttributes(
                WorkflowExecutionCanceledEventAttributes {
                    workflow_task_completed_event_id: completed_id,
                    details: a.details,
                },
            ),
        );
        self.status = WorkflowExecutionStatus::Canceled;
    }

    /// `ContinueAsNewWorkflowExecution`: the new run, created once this one is closed.
    fn continue_as_new(
        &mut self,
        ctx: &mut Ctx,
        a: commands::ContinueAsNewWorkflowExecutionCommandAttributes,
        completed_id: i64,
    ) {
        let new_run_id = super::RunId::random();
        let workflow_type = a
            .workflow_type
            .as_ref()
            .map(|t| t.name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.workflow_type.to_string());
        let task_queue = a
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.task_queue.to_string());
        // The workflow's own, unless the command names another initiator.
        let initiator = match a.initiator {
            0 => {
                temporalio_protos::temporal::api::enums::v1::ContinueAsNewInitiator::Workflow as i32
            }
            other => other,
        };
        self.append(
            ctx,
            Attributes::WorkflowExecutionContinuedAsNewEventAttributes(
                WorkflowExecutionContinuedAsNewEventAttributes {
                    new_execution_run_id: new_run_id.to_string(),
                    workflow_type: Some(WorkflowType { name: workflow_type.clone() }),
                    task_queue: Some(TaskQueue {
                        name: task_queue.clone(),
                        kind: TaskQueueKind::Normal as i32,
                        normal_name: String::new(),
                    }),
                    input: a.input.clone(),
                    // What the new run gets, defaults filled in (zero: none).
                    workflow_run_timeout: a
                        .workflow_run_timeout
                        .or_else(|| util::dur(self.run_timeout.unwrap_or(0))),
                    workflow_task_timeout: a
                        .workflow_task_timeout
                        .or_else(|| util::dur(self.task_timeout)),
                    workflow_task_completed_event_id: completed_id,
                    backoff_start_interval: a.backoff_start_interval,
                    initiator: a.initiator,
                    last_completion_result: a.last_completion_result.clone(),
                    header: a.header.clone(),
                    memo: a.memo.clone(),
                    search_attributes: a.search_attributes.clone(),
                    ..Default::default()
                },
            ),
        );
        self.status = WorkflowExecutionStatus::ContinuedAsNew;
        // The Temporal server holds back a run continued within a second of its start
        // (`history.workflowIdReuseMinimalInterval`), so a tight loop of continues
        // cannot spin: the new run's first task waits out the rest of that second.
        let backoff = util::dur_nanos(a.backoff_start_interval.as_ref());
        let first_delay = self
            .history
            .first()
            .and_then(|e| match e.attributes {
                Some(Attributes::WorkflowExecutionStartedEventAttributes(s)) => {
                    util::dur_nanos(s.first_workflow_task_backoff.as_ref())
                }
                _ => None,
            })
            .unwrap_or(0);
        let lifetime = ctx.now - self.start_time - first_delay;
        let first_task_delay = if lifetime + backoff.unwrap_or(0) < MIN_CONTINUE_INTERVAL {
            Some(MIN_CONTINUE_INTERVAL - lifetime)
        } else {
            backoff
        };
        let reset_points = self.carried_reset_points(ctx);
        // The execution timeout spans the whole chain of runs.
        let execution_timeout =
            self.execution_timeout.map(|t| (self.start_time + t - ctx.now).max(1));
        self.continue_as_new = Some(Box::new(super::workflow::NewRun {
            run_id: new_run_id,
            first_run_id: self.first_run_id,
            request_id: uuid::Uuid::new_v4().to_string(),
            params: super::workflow::StartParams {
                namespace: self.namespace.to_string(),
                workflow_id: self.workflow_id.to_string(),
                workflow_type,
                task_queue,
                input: a.input,
                execution_timeout,
                run_timeout: util::dur_nanos(a.workflow_run_timeout.as_ref()).or(self.run_timeout),
                task_timeout: util::dur_nanos(a.workflow_task_timeout.as_ref())
                    .or(Some(self.task_timeout)),
                // The new run is started by the server, not by the worker.
                identity: String::new(),
                retry_policy: a.retry_policy,
                memo: a.memo.or_else(|| self.memo.as_deref().cloned()),
                search_attributes: a.search_attributes.or_else(|| self.carried_search_attributes()),
                header: a.header,
                parent: self.parent.as_deref().cloned(),
                ..Default::default()
            },
            signal: None,
            continued: Some(super::workflow::Continued {
                from_run_id: self.run_id.to_string(),
                initiator,
                last_completion_result: a.last_completion_result,
                failure: a.failure,
                reset_points: Some(reset_points),
            }),
            first_task_delay,
            attempt: 1,
        }));
    }

    /// `SignalExternalWorkflowExecution`: initiated now, delivered once the task's events are
    /// written.
    fn signal_external(
        &mut self,
        ctx: &mut Ctx,
        a: commands::SignalExternalWorkflowExecutionCommandAttributes,
        completed_id: i64,
    ) {
        // Cross-namespace targets are deprecated in the API; the run's own namespace is used.
        let namespace = self.namespace.clone();
        let target = a.execution.unwrap_or_default();
        let namespace_id = ctx.namespaces.get(&*namespace).cloned().unwrap_or_default();
        let initiated_event_id = self.append(
            ctx,
            Attributes::SignalExternalWorkflowExecutionInitiatedEventAttributes(
                SignalExternalWorkflowExecutionInitiatedEventAttributes {
                    workflow_task_completed_event_id: completed_id,
                    namespace: namespace.to_string(),
                    namespace_id,
                    workflow_execution: Some(target.clone()),
                    signal_name: a.signal_name.clone(),
                    input: a.input.clone(),
                    child_workflow_only: a.child_workflow_only,
                    header: a.header.clone(),
                    ..Default::default()
                },
            ),
        );
        self.owed_external.push(super::external::External {
            initiated_event_id,
            completed_event_id: completed_id,
            namespace: namespace.to_string(),
            target,
            action: super::external::ExternalAction::Signal {
                name: a.signal_name,
                input: a.input,
                header: a.header,
            },
        });
    }

    /// `RequestCancelExternalWorkflowExecution`: initiated now, delivered once the task's
    /// events are written.
    fn request_cancel_external(
        &mut self,
        ctx: &mut Ctx,
        a: commands::RequestCancelExternalWorkflowExecutionCommandAttributes,
        completed_id: i64,
    ) {
        // Cross-namespace targets are deprecated in the API; the run's own namespace is used.
        let namespace = self.namespace.clone();
        let target = WorkflowExecution { workflow_id: a.workflow_id, run_id: a.run_id };
        let namespace_id = ctx.namespaces.get(&*namespace).cloned().unwrap_or_default();
        let initiated_event_id = self.append(
            ctx,
            Attributes::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(
                RequestCancelExternalWorkflowExecutionInitiatedEventAttributes {
                    workflow_task_completed_event_id: completed_id,
                    namespace: namespace.to_string(),
                    namespace_id,
                    workflow_execution: Some(target.clone()),
                    child_workflow_only: a.child_workflow_only,
                    reason: a.reason.clone(),
                    ..Default::default()
                },
            ),
        );
        self.owed_external.push(super::external::External {
            initiated_event_id,
            completed_event_id: completed_id,
            namespace: namespace.to_string(),
            target,
            action: super::external::ExternalAction::Cancel { reason: a.reason },
        });
    }

    fn schedule_activity(
        &mut self,
        ctx: &mut Ctx,
        a: temporalio_protos::temporal::api::command::v1::ScheduleActivityTaskCommandAttributes,
        completed_id: i64,
    ) {
        let task_queue = a
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.task_queue.to_string());
        let schedule_to_close = util::dur_nanos(a.schedule_to_close_timeout.as_ref());
        let start_to_close = util::dur_nanos(a.start_to_close_timeout.as_ref())
            .or(schedule_to_close)
            .expect("validated");
        let retry = super::activity::retry_policy_with_defaults(a.retry_policy.clone());
        let activity_type = a.activity_type.clone().unwrap_or_default();
        let event = ActivityTaskScheduledEventAttributes {
            activity_id: a.activity_id,
            activity_type: Some(activity_type),
            task_queue: Some(TaskQueue {
                name: task_queue,
                kind: TaskQueueKind::Normal as i32,
                normal_name: String::new(),
            }),
            header: a.header,
            input: a.input,
            // Unset timeouts read as zero (none), as the Temporal server writes them.
            schedule_to_close_timeout: util::dur(schedule_to_close.unwrap_or(0)),
            schedule_to_start_timeout: a.schedule_to_start_timeout.or_else(|| util::dur(0)),
            start_to_close_timeout: util::dur(start_to_close),
            heartbeat_timeout: a.heartbeat_timeout.or_else(|| util::dur(0)),
            workflow_task_completed_event_id: completed_id,
            retry_policy: Some(retry),
            priority: a.priority,
            ..Default::default()
        };
        let activity = Activity::scheduled(&event, ctx.now);
        let scheduled_event_id =
            self.append(ctx, Attributes::ActivityTaskScheduledEventAttributes(event));
        if let Some(limit) = activity.schedule_to_close {
            ctx.schedule_timer(
                ctx.now + limit,
                TimerTask::Activity {
                    run_id: self.run_id,
                    scheduled_event_id,
                    attempt: 0,
                    kind: super::ActivityTimer::ScheduleToClose,
                },
            );
        }
        self.activities.insert(scheduled_event_id, activity);
        self.dispatch_activity(ctx, scheduled_event_id);
    }
}

/// Whether a retry policy refuses to retry `failure`.
pub(crate) fn is_non_retryable(
    failure: Option<&Failure>,
    policy: Option<&temporalio_protos::temporal::api::common::v1::RetryPolicy>,
) -> bool {
    use temporalio_protos::temporal::api::failure::v1::failure::FailureInfo;
    match failure.and_then(|f| f.failure_info.as_ref()) {
        Some(FailureInfo::ApplicationFailureInfo(i)) => {
            i.non_retryable
                || policy.is_some_and(|p| p.non_retryable_error_types.contains(&i.r#type))
        }
        _ => false,
    }
}

/// How soon after its start a run may continue as new before its successor is held back.
const MIN_CONTINUE_INTERVAL: super::Nanos = 1_000_000_000;

/// The `BuildIds` system search attribute's sentinel for runs no versioned worker owns.
const UNVERSIONED: &str = "unversioned";
/// Search attributes the server keeps of a run itself, which a next run does not inherit.
const SERVER_KEPT: &[&str] = &["BuildIds", "TemporalPauseInfo"];

impl Execution {
    /// The search attributes a continued or retried run inherits: the run's own, without
    /// those the server keeps of the run itself.
    pub(crate) fn carried_search_attributes(
        &self,
    ) -> Option<temporalio_protos::temporal::api::common::v1::SearchAttributes> {
        let mut attributes = self.search_attributes.as_deref().cloned()?;
        attributes.indexed_fields.retain(|k, _| !SERVER_KEPT.contains(&k.as_str()));
        (!attributes.indexed_fields.is_empty()).then_some(attributes)
    }

    /// Keeps the `TemporalPauseInfo` system search attribute in step with the run's paused
    /// activities, as the Temporal server does: one `property:activityType=<type>` per type.
    pub(crate) fn refresh_pause_info(&mut self) {
        const KEY: &str = "TemporalPauseInfo";
        let mut types: Vec<String> = self
            .activities
            .values()
            .filter(|a| a.paused)
            .map(|a| format!("property:activityType={}", a.activity_type))
            .collect();
        types.sort();
        types.dedup();
        let present =
            self.search_attributes.as_ref().is_some_and(|s| s.indexed_fields.contains_key(KEY));
        if types.is_empty() && !present {
            return;
        }
        let attributes = self.search_attributes.get_or_insert_with(Default::default);
        attributes.indexed_fields.insert(KEY.to_owned(), keyword_list(&types));
    }

    /// Records in the `BuildIds` system search attribute which build completed a task, as the
    /// Temporal server does for workers without deployment versioning: "unversioned" first,
    /// then each build id seen, as `unversioned:<id>` or `versioned:<id>`.
    fn record_build_id(
        &mut self,
        stamp: Option<&temporalio_protos::temporal::api::common::v1::WorkerVersionStamp>,
    ) {
        const KEY: &str = "BuildIds";
        let build = stamp.map(|s| match (s.build_id.as_str(), s.use_versioning) {
            ("", _) => UNVERSIONED.to_owned(),
            (id, true) => format!("versioned:{id}"),
            (id, false) => format!("{UNVERSIONED}:{id}"),
        });
        let attributes = self.search_attributes.get_or_insert_with(Default::default);
        let existing: Vec<String> = attributes
            .indexed_fields
            .get(KEY)
            .and_then(|p| serde_json::from_slice(&p.data).ok())
            .unwrap_or_default();
        let mut values = vec![UNVERSIONED.to_owned()];
        values.extend(existing.iter().filter(|v| *v != UNVERSIONED).cloned());
        if let Some(build) = build.filter(|b| !values.contains(b)) {
            values.push(build);
        }
        if values == existing {
            return;
        }
        attributes.indexed_fields.insert(KEY.to_owned(), keyword_list(&values));
    }
}

/// A `KeywordList` search attribute's value.
fn keyword_list(values: &[String]) -> temporalio_protos::temporal::api::common::v1::Payload {
    temporalio_protos::temporal::api::common::v1::Payload {
        metadata: [
            ("encoding".to_owned(), b"json/plain".to_vec()),
            ("type".to_owned(), b"KeywordList".to_vec()),
        ]
        .into(),
        data: serde_json::to_vec(values).unwrap_or_default(),
        ..Default::default()
    }
}
