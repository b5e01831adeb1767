//! Queries and updates: reading and steering a running workflow through its worker.
//!
//! A query rides the pending workflow task when there is one (answered in the completion's
//! `query_results`), waits for the next task while one is started, and otherwise goes out as a
//! legacy query task (answered by RespondQueryTaskCompleted); closed runs are queried that way
//! too. Queries never write events.
//!
//! An update is admitted, delivered to the worker as a protocol message in a workflow task,
//! and answered by Acceptance / Rejection / Response messages. Accepted and completed updates
//! write `WorkflowExecutionUpdateAccepted` / `…Completed`; a rejected one writes nothing, so
//! the task that carried it is speculative and vanishes if it recorded nothing else.

use std::time::Duration;

use prost::Message as _;
use temporalio_protos::temporal::api::{
    common::v1::{Payloads, WorkflowExecution},
    enums::v1::{
        QueryRejectCondition, QueryResultType, UpdateWorkflowExecutionLifecycleStage as Stage,
        WorkflowExecutionStatus,
    },
    failure::v1::Failure,
    history::v1::{
        WorkflowExecutionUpdateAcceptedEventAttributes,
        WorkflowExecutionUpdateCompletedEventAttributes, history_event::Attributes,
    },
    protocol::v1::{Message, message::SequencingId},
    query::v1::{WorkflowQuery, WorkflowQueryResult},
    taskqueue::v1::TaskQueue,
    update::v1::{Acceptance, Outcome, Rejection, Request, Response, UpdateRef, outcome},
    workflowservice::v1::PollWorkflowTaskQueueResponse,
};
use tokio::sync::oneshot;

use super::{
    Ctx, Engine, Error, Result, State, WfItem,
    execution::{Execution, UpdateEntry},
};
use crate::token::{TaskToken, TokenKind};

/// How long QueryWorkflow waits for a worker before giving up.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long UpdateWorkflowExecution / PollWorkflowExecutionUpdate wait for a stage before
/// answering with the stage reached so far (clients call again).
const UPDATE_WAIT: Duration = Duration::from_secs(10);

const REQUEST_TYPE: &str = "type.googleapis.com/temporal.api.update.v1.Request";

/// A query on its way to a worker.
pub(crate) struct PendingQuery {
    run_id: String,
    pub(crate) query: WorkflowQuery,
    reply: oneshot::Sender<QueryAnswer>,
}

/// The worker's answer: a result, or a failure message.
pub(crate) type QueryAnswer = std::result::Result<Option<Payloads>, (String, Option<Box<Failure>>)>;

/// QueryWorkflow's outcome.
pub(crate) enum QueryOutcome {
    Answered(QueryAnswer),
    /// Refused by the QueryRejectCondition; carries the run's status.
    Rejected(WorkflowExecutionStatus),
}

/// The outcome of an accepted update whose run closed first, as the Temporal server words it.
pub(crate) fn accepted_update_completed_workflow() -> Outcome {
    use temporalio_protos::temporal::api::failure::v1::{
        ApplicationFailureInfo, failure::FailureInfo,
    };
    Outcome {
        value: Some(outcome::Value::Failure(Failure {
            message: "Workflow Update failed because the Workflow completed before the Update \
                      completed."
                .into(),
            source: "Server".into(),
            failure_info: Some(FailureInfo::ApplicationFailureInfo(ApplicationFailureInfo {
                r#type: "AcceptedUpdateCompletedWorkflow".into(),
                non_retryable: true,
                ..Default::default()
            })),
            ..Default::default()
        })),
    }
}

/// The view of an update a client gets back.
#[derive(Debug, Clone)]
pub(crate) struct UpdateStatus {
    pub(crate) update_ref: UpdateRef,
    pub(crate) stage: Stage,
    pub(crate) outcome: Option<Outcome>,
}

impl Execution {
    pub(crate) fn dispatch_legacy_query(&mut self, ctx: &mut Ctx, id: u64) {
        self.legacy_queries += 1;
        ctx.push_workflow_item(
            &self.namespace,
            &self.task_queue,
            WfItem::Query { run_id: self.run_id.to_string(), id },
        );
    }

    /// Update requests not yet shown to a worker, as protocol messages for a task whose
    /// started event is `started_event_id`.
    pub(crate) fn take_update_messages(&mut self, started_event_id: i64) -> Vec<Message> {
        self.updates
            .iter_mut()
            .filter(|u| u.stage == Stage::Admitted && !u.sent)
            .map(|u| {
                u.sent = true;
                Message {
                    id: format!("{}/request", u.id),
                    protocol_instance_id: u.id.clone(),
                    body: Some(prost_wkt_types::Any {
                        type_url: REQUEST_TYPE.into(),
                        value: u.request.encode_to_vec(),
                    }),
                    sequencing_id: Some(SequencingId::EventId(started_event_id - 1)),
                }
            })
            .collect()
    }

    /// A failed or timed-out task's updates go out again with the next attempt.
    pub(crate) fn unsend_updates(&mut self) {
        for u in self.updates.iter_mut().filter(|u| u.stage == Stage::Admitted) {
            u.sent = false;
        }
    }

    pub(crate) fn has_undelivered_updates(&self) -> bool {
        self.updates.iter().any(|u| u.stage == Stage::Admitted && !u.sent)
    }

    /// Applies one protocol message from a completion. Returns whether it writes an event
    /// (acceptances and responses do; rejections do not).
    pub(crate) fn apply_message(&mut self, ctx: &mut Ctx, msg: Message) -> bool {
        let Some(body) = msg.body else { return false };
        let kind = body.type_url.rsplit('/').next().unwrap_or_default().to_owned();
        let Some(idx) = self.updates.iter().position(|u| u.id == msg.protocol_instance_id) else {
            return false;
        };
        ctx.updates_changed = true;
        match kind.as_str() {
            "temporal.api.update.v1.Acceptance" => {
                let Ok(a) = Acceptance::decode(body.value.as_slice()) else { return false };
                let request =
                    a.accepted_request.or_else(|| Some(self.updates[idx].request.clone()));
                let event_id = self.append(
                    ctx,
                    Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(
                        WorkflowExecutionUpdateAcceptedEventAttributes {
                            protocol_instance_id: msg.protocol_instance_id,
                            accepted_request_message_id: a.accepted_request_message_id,
                            accepted_request_sequencing_event_id: a
                                .accepted_request_sequencing_event_id,
                            accepted_request: request,
                        },
                    ),
                );
                let u = &mut self.updates[idx];
                u.stage = Stage::Accepted;
                u.accepted_event_id = event_id;
                true
            }
            "temporal.api.update.v1.Response" => {
                let Ok(r) = Response::decode(body.value.as_slice()) else { return false };
                let accepted_event_id = self.updates[idx].accepted_event_id;
                self.append(
                    ctx,
                    Attributes::WorkflowExecutionUpdateCompletedEventAttributes(
                        WorkflowExecutionUpdateCompletedEventAttributes {
                            meta: r.meta,
                            accepted_event_id,
                            outcome: r.outcome.clone(),
                        },
                    ),
                );
                let u = &mut self.updates[idx];
                u.stage = Stage::Completed;
                u.outcome = r.outcome;
                true
            }
            "temporal.api.update.v1.Rejection" => {
                let Ok(r) = Rejection::decode(body.value.as_slice()) else { return false };
                let u = &mut self.updates[idx];
                u.stage = Stage::Completed;
                u.outcome = Some(Outcome { value: r.failure.map(outcome::Value::Failure) });
                false
            }
            _ => false,
        }
    }

    fn update_status(&self, id: &str) -> Option<UpdateStatus> {
        let u = self.updates.iter().find(|u| u.id == id && u.stage != super::execution::ABORTED)?;
        Some(UpdateStatus {
            update_ref: UpdateRef {
                workflow_execution: Some(WorkflowExecution {
                    workflow_id: self.workflow_id.to_string(),
                    run_id: self.run_id.to_string(),
                }),
                update_id: u.id.clone(),
            },
            stage: u.stage,
            outcome: u.outcome.clone(),
        })
    }
}

impl Ctx {
    fn next_query_id(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

impl State {
    /// Registers a query and routes it. `Err(status)` when the reject condition applies.
    fn begin_query(
        &mut self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        query: WorkflowQuery,
        reject: QueryRejectCondition,
    ) -> Result<std::result::Result<oneshot::Receiver<QueryAnswer>, WorkflowExecutionStatus>> {
        if query.query_type.is_empty() {
            return Err(Error::InvalidArgument("QueryType is not set on request.".into()));
        }
        let run_id = self.resolve(namespace, workflow_id, run_id)?;
        let (exec, ctx) = self.exec_mut(&run_id).ok_or_else(super::unreadable)?;
        let rejected = match reject {
            QueryRejectCondition::NotOpen => !exec.is_running(),
            QueryRejectCondition::NotCompletedCleanly => {
                !exec.is_running() && exec.status != WorkflowExecutionStatus::Completed
            }
            _ => false,
        };
        if rejected {
            return Ok(Err(exec.status));
        }
        let (tx, rx) = oneshot::channel();
        let id = ctx.next_query_id();
        ctx.queries.insert(id, PendingQuery { run_id: run_id.clone(), query, reply: tx });
        let running = exec.is_running();
        match exec.wft.as_mut() {
            Some(w) if running && w.started.is_none() => w.queries.push(id),
            Some(_) if running => exec.waiting_queries.push(id),
            _ => exec.dispatch_legacy_query(ctx, id),
        }
        Ok(Ok(rx))
    }

    /// The worker's answer to a legacy query task.
    pub(crate) fn answer_legacy_query(
        &mut self,
        token: &[u8],
        namespace: &str,
        answer: QueryAnswer,
    ) -> Result<()> {
        let token = self.ctx.task_token(token, namespace, TokenKind::Query)?;
        let id = token.scheduled_event_id as u64;
        let pending =
            self.ctx.queries.remove(&id).ok_or_else(|| {
                Error::NotFound("query task not found, or already expired".into())
            })?;
        if let Some((exec, _)) = self.exec_mut(&pending.run_id) {
            exec.legacy_queries -= 1;
        }
        let _ = pending.reply.send(answer);
        Ok(())
    }

    /// Answers for queries that rode a workflow task.
    pub(crate) fn answer_attached_queries(
        &mut self,
        results: std::collections::HashMap<String, WorkflowQueryResult>,
    ) {
        for (id, r) in results {
            let Some(pending) = id.parse::<u64>().ok().and_then(|id| self.ctx.queries.remove(&id))
            else {
                continue;
            };
            let answer = if r.result_type == QueryResultType::Answered as i32 {
                Ok(r.answer)
            } else {
                Err((r.error_message, r.failure.map(Box::new)))
            };
            let _ = pending.reply.send(answer);
        }
    }

    /// A legacy query task for a poller.
    pub(crate) fn start_query_task(
        &mut self,
        run_id: &str,
        id: u64,
    ) -> Option<PollWorkflowTaskQueueResponse> {
        let query = self.ctx.queries.get(&id)?.query.clone();
        // Temporal sends a query as a task of its own only while no workflow task is pending.
        // One scheduled since this query was queued carries it instead (a started one answers
        // it after it completes): the query task's history would otherwise hold events that
        // no workflow task has shown the workflow, and core would run the workflow forward on
        // them inside a query, where its commands go nowhere.
        let (exec, _) = self.exec_mut(run_id)?;
        if exec.is_running() {
            match exec.wft.as_mut() {
                Some(w) if w.started.is_none() => w.queries.push(id),
                Some(_) => exec.waiting_queries.push(id),
                None => {}
            }
            if exec.wft.is_some() {
                exec.legacy_queries -= 1;
                return None;
            }
        }
        let exec = self.execs.get(run_id)?;
        let token = TaskToken {
            namespace: exec.namespace.to_string(),
            workflow_id: exec.workflow_id.to_string(),
            run_id: run_id.to_owned(),
            scheduled_event_id: id as i64,
            attempt: 1,
            kind: TokenKind::Query as i32,
        };
        Some(PollWorkflowTaskQueueResponse {
            task_token: token.encode_bytes(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: exec.workflow_id.to_string(),
                run_id: run_id.to_owned(),
            }),
            workflow_type: Some(temporalio_protos::temporal::api::common::v1::WorkflowType {
                name: exec.workflow_type.to_string(),
            }),
            previous_started_event_id: exec.last_completed_started_id,
            started_event_id: 0,
            attempt: 1,
            history: Some(temporalio_protos::temporal::api::history::v1::History {
                events: self.history_of(&exec).ok()?.to_vec(),
            }),
            query: Some(query),
            workflow_execution_task_queue: Some(TaskQueue {
                name: exec.task_queue.to_string(),
                kind: 1,
                normal_name: String::new(),
            }),
            ..Default::default()
        })
    }

    /// Drops a query whose caller gave up.
    fn abandon_query(&mut self, id: u64) {
        if let Some(p) = self.ctx.queries.remove(&id)
            && let Some(exec) = self.execs.get_mut(&p.run_id)
        {
            exec.waiting_queries.retain(|q| *q != id);
            if let Some(w) = exec.wft.as_mut() {
                w.queries.retain(|q| *q != id);
            }
        }
    }

    /// Admits an update (or finds the one with the same id) and makes sure a task will
    /// carry it.
    fn admit_update(
        &mut self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        first_execution_run_id: &str,
        request: Request,
    ) -> Result<(String, UpdateStatus)> {
        let update_id = request.meta.as_ref().map(|m| m.update_id.clone()).unwrap_or_default();
        if update_id.is_empty() {
            return Err(Error::InvalidArgument("Update id is not set on request.".into()));
        }
        if request.input.as_ref().is_none_or(|i| i.name.is_empty()) {
            return Err(Error::InvalidArgument("Update name is not set on request.".into()));
        }
        let run_id = self.resolve(namespace, workflow_id, run_id)?;
        let (exec, ctx) = self.exec_mut(&run_id).ok_or_else(super::unreadable)?;
        if !first_execution_run_id.is_empty() && exec.first_run_id != *first_execution_run_id {
            return Err(Error::NotFound(format!(
                "workflow execution not found for workflow ID \"{workflow_id}\" and first execution run ID \"{first_execution_run_id}\""
            )));
        }
        if let Some(status) = exec.update_status(&update_id) {
            return Ok((run_id, status));
        }
        if !exec.is_running() {
            return Err(Error::NotFound("workflow execution already completed".into()));
        }
        exec.updates.push(UpdateEntry {
            id: update_id.clone(),
            request,
            stage: Stage::Admitted,
            sent: false,
            accepted_event_id: 0,
            outcome: None,
        });
        if exec.wft.is_none() {
            exec.schedule_speculative_wft(ctx);
        }
        ctx.updates_changed = true;
        let status = exec.update_status(&update_id).expect("just added");
        Ok((run_id, status))
    }

    /// The current run of `workflow_id` and its outcome of `update_id`, when it completed it.
    fn completed_update(
        &self,
        namespace: &str,
        workflow_id: &str,
        update_id: &str,
    ) -> Option<(super::workflow::Started, UpdateStatus, WorkflowExecutionStatus)> {
        let run_id = self.current.get(namespace, workflow_id)?;
        let exec = self.execs.get(run_id)?;
        let status = exec.update_status(update_id).filter(|s| s.stage == Stage::Completed)?;
        let started = super::workflow::Started {
            run_id: exec.run_id.to_string(),
            first_run_id: exec.first_run_id.to_string(),
            started: false,
        };
        Some((started, status, exec.status))
    }

    /// The update's status in `run_id`. One the run aborted by closing is an error, as on
    /// the Temporal server: NOT_FOUND, or RESOURCE_EXHAUSTED when the run continued as new
    /// (which SDK clients retry, so the update goes to the new run).
    fn update_status_of(&self, run_id: &str, update_id: &str) -> Result<UpdateStatus> {
        let exec = self.execs.get(run_id);
        if let Some(status) = exec.as_ref().and_then(|e| e.update_status(update_id)) {
            return Ok(status);
        }
        let aborted = exec.as_ref().filter(|e| {
            e.updates.iter().any(|u| u.id == update_id && u.stage == super::execution::ABORTED)
        });
        match aborted {
            Some(e) if e.status == WorkflowExecutionStatus::ContinuedAsNew => {
                Err(Error::ResourceExhausted(
                    "workflow operation can not be applied because workflow is closing".into(),
                ))
            }
            Some(_) => {
                Err(Error::NotFound("workflow update was aborted by closing workflow".into()))
            }
            None => Err(Error::NotFound(format!("update {update_id} not found"))),
        }
    }
}

impl Engine {
    /// QueryWorkflow.
    pub(crate) async fn query(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        query: WorkflowQuery,
        reject: QueryRejectCondition,
    ) -> Result<QueryOutcome> {
        let rx = match self
            .with_state(|st| st.begin_query(namespace, workflow_id, run_id, query, reject))?
        {
            Ok(rx) => rx,
            Err(status) => return Ok(QueryOutcome::Rejected(status)),
        };
        let mut stop = self.stop_signal();
        tokio::select! {
            answer = rx => answer
                .map(QueryOutcome::Answered)
                .map_err(|_| Error::NotFound("query was dropped".into())),
            _ = tokio::time::sleep(QUERY_TIMEOUT) => Err(Error::DeadlineExceeded("query timed out waiting for a worker".into())),
            _ = stop.wait_for(|s| *s) => Err(Error::DeadlineExceeded("server shutting down".into())),
        }
        .inspect_err(|_| {
            // No answer is coming (or none is wanted): forget the query.
            self.with_state(|st| {
                let ids: Vec<u64> = st.ctx.queries.iter().filter(|(_, q)| q.reply.is_closed()).map(|(id, _)| *id).collect();
                for id in ids {
                    st.abandon_query(id);
                }
            });
        })
    }

    /// UpdateWorkflowExecution: admits, then waits (bounded) for `wait_for`.
    pub(crate) async fn update(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        first_execution_run_id: &str,
        request: Request,
        wait_for: Stage,
    ) -> Result<UpdateStatus> {
        let (run_id, status) = self.with_state(|st| {
            st.admit_update(namespace, workflow_id, run_id, first_execution_run_id, request)
        })?;
        self.wait_update(&run_id, &status.update_ref.update_id, wait_for).await
    }

    /// PollWorkflowExecutionUpdate.
    pub(crate) async fn poll_update(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        update_id: &str,
        wait_for: Stage,
    ) -> Result<UpdateStatus> {
        let run_id = self.with_state(|st| st.resolve(namespace, workflow_id, run_id))?;
        self.wait_update(&run_id, update_id, wait_for).await
    }

    async fn wait_update(
        &self,
        run_id: &str,
        update_id: &str,
        wait_for: Stage,
    ) -> Result<UpdateStatus> {
        // Stage values are ordered: admitted < accepted < completed.
        let target = if wait_for == Stage::Unspecified { Stage::Accepted } else { wait_for };
        let check = |e: &Engine| -> Result<Option<UpdateStatus>> {
            let status = e.lock().update_status_of(run_id, update_id)?;
            Ok((status.stage as i32 >= target as i32).then_some(status))
        };
        if let Some(s) = self.long_poll_on(self.updates_notify(), UPDATE_WAIT, check).await? {
            return Ok(s);
        }
        self.lock().update_status_of(run_id, update_id)
    }
}

/// What an update-with-start did.
pub(crate) struct UpdateWithStart {
    pub(crate) started: super::workflow::Started,
    pub(crate) status: UpdateStatus,
    /// The run's status, when the update had completed before this request (nothing new
    /// was written).
    pub(crate) completed_before: Option<WorkflowExecutionStatus>,
}

impl Engine {
    /// ExecuteMultiOperation's update-with-start: starts (or, by the conflict policy, reuses)
    /// the workflow and admits the update to that run in one transition, then waits for the
    /// update's stage. An error names the operation that failed (0 start, 1 update).
    pub(crate) async fn update_with_start(
        &self,
        start: super::StartParams,
        request: Request,
        wait_for: Stage,
    ) -> std::result::Result<UpdateWithStart, (usize, Error)> {
        let (namespace, workflow_id) = (start.namespace.clone(), start.workflow_id.clone());
        let update_id = request.meta.as_ref().map(|m| m.update_id.clone()).unwrap_or_default();
        let admitted = self.with_state(|st| {
            // As the Temporal server: an update the current run (running or closed) already
            // completed answers with that run and its outcome, whatever the policies say;
            // nothing starts and nothing is written.
            if let Some((started, status, run_status)) =
                st.completed_update(&namespace, &workflow_id, &update_id)
            {
                return Ok(UpdateWithStart { started, status, completed_before: Some(run_status) });
            }
            let started = st.start_workflow(start, None).map_err(|e| (0, e))?;
            let (_, status) = st
                .admit_update(&namespace, &workflow_id, &started.run_id, "", request)
                .map_err(|e| (1, e))?;
            Ok(UpdateWithStart { started, status, completed_before: None })
        })?;
        if admitted.completed_before.is_some() {
            return Ok(admitted);
        }
        let status = self
            .wait_update(&admitted.started.run_id, &admitted.status.update_ref.update_id, wait_for)
            .await
            .map_err(|e| (1, e))?;
        Ok(UpdateWithStart { status, ..admitted })
    }

    /// Every registered namespace with its id.
    pub(crate) fn namespaces(&self) -> Vec<(String, String)> {
        self.lock().ctx.namespaces.iter().map(|(n, i)| (n.clone(), i.clone())).collect()
    }
}
