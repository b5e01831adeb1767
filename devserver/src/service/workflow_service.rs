//! `temporal.api.workflowservice.v1.WorkflowService`: request decoding and validation, then
//! one engine call per RPC.

use std::sync::Arc;

use temporalio_protos::temporal::api::{
    common::v1::Link,
    enums::v1::{
        HistoryEventFilterType, NamespaceState, QueryRejectCondition, QueryResultType,
        TaskQueueKind, UpdateWorkflowExecutionLifecycleStage, WorkflowExecutionStatus,
        WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowTaskFailedCause,
    },
    namespace::v1::{
        NamespaceConfig, NamespaceInfo, namespace_info::Capabilities as NsCapabilities,
    },
    query::v1::QueryRejected,
    update::v1::UpdateRef,
    workflowservice::v1::{get_system_info_response::Capabilities, *},
};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::{
    engine::{
        ActivityOp, ActivityResponse, ActivitySelector, Completion, Engine, HistoryRequest,
        QueryOutcome, QueueKind, ResetRequest, SignalParams, StartParams, UpdateStatus,
        UpdateWithStart,
    },
    pb::workflowservice::workflow_service_server::WorkflowService,
};

/// Reported as the server version; the Web UI turns on advanced visibility above 1.19.
const SERVER_VERSION: &str = "1.29.1";
/// The one cluster's name, as the Temporal dev server names its own.
const CLUSTER_NAME: &str = "active";

pub(crate) struct Svc {
    engine: Engine,
}

impl Svc {
    pub(crate) fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// Answers once every change made so far is durable.
    async fn done<T>(&self, body: T) -> Result<Response<T>, Status> {
        self.engine.sync().await?;
        Ok(Response::new(body))
    }

    async fn poll<T: Default>(
        &self,
        kind: QueueKind,
        namespace: &str,
        queue: Option<temporalio_protos::temporal::api::taskqueue::v1::TaskQueue>,
        take: impl Fn(&Engine, &str) -> Option<T>,
    ) -> Result<T, Status> {
        self.engine.check_namespace(namespace)?;
        let queue = queue.unwrap_or_default();
        if queue.name.is_empty() {
            return Err(Status::invalid_argument("TaskQueue is not set on request."));
        }
        let notify: Arc<Notify> = self.engine.queue_notify(kind, namespace, &queue.name);
        if queue.kind == TaskQueueKind::Sticky as i32 {
            // Stickiness is declined: tasks always go to the normal queue with full history,
            // so a sticky poll just waits out its long poll.
            self.engine.park(self.engine.long_poll()).await;
            return Ok(T::default());
        }
        let got = self
            .engine
            .long_poll_on(&notify, self.engine.long_poll(), |e| Ok(take(e, &queue.name)))
            .await?;
        Ok(got.unwrap_or_default())
    }
}

fn reuse_policy(v: i32) -> WorkflowIdReusePolicy {
    WorkflowIdReusePolicy::try_from(v).unwrap_or(WorkflowIdReusePolicy::Unspecified)
}

fn conflict_policy(v: i32) -> WorkflowIdConflictPolicy {
    WorkflowIdConflictPolicy::try_from(v).unwrap_or(WorkflowIdConflictPolicy::Unspecified)
}

fn unsupported_start_options(cron: &str) -> Result<(), Status> {
    if !cron.is_empty() {
        return Err(Status::invalid_argument(
            "cron_schedule is not supported by the convo devserver",
        ));
    }
    Ok(())
}

fn execution_ids(
    e: Option<temporalio_protos::temporal::api::common::v1::WorkflowExecution>,
) -> (String, String) {
    let e = e.unwrap_or_default();
    (e.workflow_id, e.run_id)
}

use crate::engine::dur_nanos as dn;

#[tonic::async_trait]
impl WorkflowService for Svc {
    async fn get_system_info(
        &self,
        _r: Request<GetSystemInfoRequest>,
    ) -> Result<Response<GetSystemInfoResponse>, Status> {
        self.done(GetSystemInfoResponse {
            server_version: SERVER_VERSION.into(),
            capabilities: Some(Capabilities {
                signal_and_query_header: true,
                internal_error_differentiation: true,
                activity_failure_include_heartbeat: true,
                encoded_failure_attributes: true,
                sdk_metadata: true,
                upsert_memo: true,
                // Build ids are recorded on WorkflowTaskCompleted (not routed on); counts
                // group by ExecutionStatus; eager start hands out the first task.
                build_id_based_versioning: true,
                count_group_by_execution_status: true,
                eager_workflow_start: true,
                ..Default::default()
            }),
        })
        .await
    }

    async fn get_cluster_info(
        &self,
        _r: Request<GetClusterInfoRequest>,
    ) -> Result<Response<GetClusterInfoResponse>, Status> {
        Ok(Response::new(GetClusterInfoResponse {
            server_version: SERVER_VERSION.into(),
            cluster_name: CLUSTER_NAME.into(),
            cluster_id: "convo-devserver".into(),
            history_shard_count: 1,
            // A single-cluster server's failover versions, as the Temporal dev server has them.
            failover_version_increment: 10,
            initial_failover_version: 1,
            persistence_store: "sqlite".into(),
            visibility_store: "sqlite".into(),
            ..Default::default()
        }))
    }

    async fn describe_namespace(
        &self,
        r: Request<DescribeNamespaceRequest>,
    ) -> Result<Response<DescribeNamespaceResponse>, Status> {
        let r = r.into_inner();
        let (name, id) = self.engine.find_namespace(&r.namespace, &r.id)?;
        let (description, retention) = self.engine.namespace_settings(&name);
        use temporalio_protos::temporal::api::{
            enums::v1::{ArchivalState, ReplicationState},
            namespace::v1::BadBinaries,
            replication::v1::{ClusterReplicationConfig, NamespaceReplicationConfig},
        };
        self.done(DescribeNamespaceResponse {
            namespace_info: Some(NamespaceInfo {
                name,
                state: NamespaceState::Registered as i32,
                description,
                id,
                // What the devserver implements; schedules, Nexus, standalone activities,
                // worker heartbeats, poller autoscaling and reported problems it does not.
                capabilities: Some(NsCapabilities {
                    eager_workflow_start: true,
                    sync_update: true,
                    async_update: true,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            config: Some(NamespaceConfig {
                workflow_execution_retention_ttl: Some(prost_wkt_types::Duration {
                    seconds: retention,
                    nanos: 0,
                }),
                bad_binaries: Some(BadBinaries::default()),
                history_archival_state: ArchivalState::Disabled as i32,
                visibility_archival_state: ArchivalState::Disabled as i32,
                ..Default::default()
            }),
            // One cluster, as the Temporal dev server names it.
            replication_config: Some(NamespaceReplicationConfig {
                active_cluster_name: CLUSTER_NAME.into(),
                clusters: vec![ClusterReplicationConfig {
                    cluster_name: CLUSTER_NAME.into(),
                    replication_ramp_duration: None,
                }],
                state: ReplicationState::Normal as i32,
            }),
            ..Default::default()
        })
        .await
    }

    async fn start_workflow_execution(
        &self,
        r: Request<StartWorkflowExecutionRequest>,
    ) -> Result<Response<StartWorkflowExecutionResponse>, Status> {
        let r = r.into_inner();
        unsupported_start_options(&r.cron_schedule)?;
        let eager = r.request_eager_execution.then(|| r.identity.clone());
        let params = StartParams {
            namespace: r.namespace,
            workflow_id: r.workflow_id,
            workflow_type: r.workflow_type.map(|t| t.name).unwrap_or_default(),
            task_queue: r.task_queue.map(|q| q.name).unwrap_or_default(),
            input: r.input,
            execution_timeout: dn(r.workflow_execution_timeout.as_ref()),
            run_timeout: dn(r.workflow_run_timeout.as_ref()),
            task_timeout: dn(r.workflow_task_timeout.as_ref()),
            identity: r.identity,
            request_id: r.request_id,
            reuse_policy: reuse_policy(r.workflow_id_reuse_policy),
            conflict_policy: conflict_policy(r.workflow_id_conflict_policy),
            retry_policy: r.retry_policy,
            memo: r.memo,
            search_attributes: r.search_attributes,
            header: r.header,
            start_delay: dn(r.workflow_start_delay.as_ref()),
            user_metadata: r.user_metadata,
            priority: r.priority,
            parent: None,
        };
        let (namespace, workflow_id) = (params.namespace.clone(), params.workflow_id.clone());
        let (started, eager_workflow_task) = self.engine.with_state(|st| {
            let started = st.start_workflow(params, None)?;
            let task = match &eager {
                Some(identity) if started.started => st.start_eager(&started.run_id, identity),
                _ => None,
            };
            Ok::<_, crate::engine::Error>((started, task))
        })?;
        let link = started_link(&namespace, &workflow_id, &started.run_id);
        self.done(StartWorkflowExecutionResponse {
            status: if started.started { 1 } else { 0 }, // WORKFLOW_EXECUTION_STATUS_RUNNING when started
            run_id: started.run_id,
            first_execution_run_id: started.first_run_id,
            started: started.started,
            eager_workflow_task,
            link: Some(link),
        })
        .await
    }

    async fn signal_workflow_execution(
        &self,
        r: Request<SignalWorkflowExecutionRequest>,
    ) -> Result<Response<SignalWorkflowExecutionResponse>, Status> {
        let r = r.into_inner();
        let (wid, rid) = execution_ids(r.workflow_execution);
        let request_id = r.request_id.clone();
        let signal = SignalParams {
            signal_name: r.signal_name,
            input: r.input,
            identity: r.identity,
            request_id: r.request_id,
            header: r.header,
        };
        let run_id = self.engine.with_state(|st| st.signal(&r.namespace, &wid, &rid, signal))?;
        let link = signal_link(&r.namespace, &wid, &run_id, request_id);
        self.done(SignalWorkflowExecutionResponse { link: Some(link) }).await
    }

    async fn signal_with_start_workflow_execution(
        &self,
        r: Request<SignalWithStartWorkflowExecutionRequest>,
    ) -> Result<Response<SignalWithStartWorkflowExecutionResponse>, Status> {
        let r = r.into_inner();
        unsupported_start_options(&r.cron_schedule)?;
        if r.signal_name.is_empty() {
            return Err(Status::invalid_argument("SignalName is not set on request."));
        }
        if r.workflow_id_conflict_policy == WorkflowIdConflictPolicy::Fail as i32 {
            return Err(Status::invalid_argument(
                "SignalWithStart does not support WorkflowIdConflictPolicy FAIL.",
            ));
        }
        let signal_request_id = r.request_id.clone();
        let signal = SignalParams {
            signal_name: r.signal_name,
            input: r.signal_input,
            identity: r.identity.clone(),
            request_id: r.request_id.clone(),
            header: r.header.clone(),
        };
        let params = StartParams {
            namespace: r.namespace,
            workflow_id: r.workflow_id,
            workflow_type: r.workflow_type.map(|t| t.name).unwrap_or_default(),
            task_queue: r.task_queue.map(|q| q.name).unwrap_or_default(),
            input: r.input,
            execution_timeout: dn(r.workflow_execution_timeout.as_ref()),
            run_timeout: dn(r.workflow_run_timeout.as_ref()),
            task_timeout: dn(r.workflow_task_timeout.as_ref()),
            identity: r.identity,
            request_id: r.request_id,
            reuse_policy: reuse_policy(r.workflow_id_reuse_policy),
            conflict_policy: WorkflowIdConflictPolicy::UseExisting,
            retry_policy: r.retry_policy,
            memo: r.memo,
            search_attributes: r.search_attributes,
            header: r.header,
            start_delay: dn(r.workflow_start_delay.as_ref()),
            user_metadata: r.user_metadata,
            priority: r.priority,
            parent: None,
        };
        let params = StartParams {
            conflict_policy: match conflict_policy(r.workflow_id_conflict_policy) {
                WorkflowIdConflictPolicy::TerminateExisting => {
                    WorkflowIdConflictPolicy::TerminateExisting
                }
                _ => params.conflict_policy,
            },
            ..params
        };
        let (namespace, workflow_id, request_id) =
            (params.namespace.clone(), params.workflow_id.clone(), signal_request_id);
        let started = self.engine.with_state(|st| st.start_workflow(params, Some(signal)))?;
        let signal_link = signal_link(&namespace, &workflow_id, &started.run_id, request_id);
        self.done(SignalWithStartWorkflowExecutionResponse {
            run_id: started.run_id,
            first_execution_run_id: started.first_run_id,
            started: started.started,
            signal_link: Some(signal_link),
        })
        .await
    }

    async fn poll_workflow_task_queue(
        &self,
        r: Request<PollWorkflowTaskQueueRequest>,
    ) -> Result<Response<PollWorkflowTaskQueueResponse>, Status> {
        let r = r.into_inner();
        let (ns, identity) = (r.namespace.clone(), r.identity.clone());
        let resp = self
            .poll(QueueKind::Workflow, &r.namespace, r.task_queue, |e, q| {
                e.with_state(|st| {
                    st.start_workflow_task(&ns, q, &identity, uuid::Uuid::new_v4().to_string())
                })
            })
            .await?;
        self.done(resp).await
    }

    async fn respond_workflow_task_completed(
        &self,
        r: Request<RespondWorkflowTaskCompletedRequest>,
    ) -> Result<Response<RespondWorkflowTaskCompletedResponse>, Status> {
        let r = r.into_inner();
        let completion = Completion {
            token: r.task_token,
            commands: r.commands,
            identity: r.identity,
            force_new_task: r.force_create_new_workflow_task,
            sdk_metadata: r.sdk_metadata,
            messages: r.messages,
            query_results: r.query_results,
            #[allow(deprecated)] // still what SDKs send for build-id stamps
            worker_version: r.worker_version_stamp,
            deployment_options: r.deployment_options,
            #[allow(deprecated)]
            binary_checksum: r.binary_checksum,
            versioning_behavior: r.versioning_behavior,
        };
        let outcome =
            self.engine.with_state(|st| st.complete_workflow_task(completion, &r.namespace));
        // A refused completion (UnhandledCommand) still wrote the task's failure; make it
        // durable before the worker hears about it, like any other answer.
        let reset_history_event_id = match outcome {
            Ok(reset) => reset,
            Err(e) => {
                self.engine.sync().await?;
                return Err(e.into());
            }
        };
        self.done(RespondWorkflowTaskCompletedResponse {
            reset_history_event_id,
            ..Default::default()
        })
        .await
    }

    async fn respond_workflow_task_failed(
        &self,
        r: Request<RespondWorkflowTaskFailedRequest>,
    ) -> Result<Response<RespondWorkflowTaskFailedResponse>, Status> {
        let r = r.into_inner();
        let cause = WorkflowTaskFailedCause::try_from(r.cause)
            .unwrap_or(WorkflowTaskFailedCause::Unspecified);
        self.engine.with_state(|st| {
            st.fail_workflow_task(&r.task_token, &r.namespace, cause, r.failure, r.identity)
        })?;
        self.done(RespondWorkflowTaskFailedResponse::default()).await
    }

    async fn poll_activity_task_queue(
        &self,
        r: Request<PollActivityTaskQueueRequest>,
    ) -> Result<Response<PollActivityTaskQueueResponse>, Status> {
        let r = r.into_inner();
        let (ns, identity) = (r.namespace.clone(), r.identity.clone());
        let resp = self
            .poll(QueueKind::Activity, &r.namespace, r.task_queue, |e, q| {
                e.with_state(|st| {
                    st.start_activity_task(&ns, q, &identity, uuid::Uuid::new_v4().to_string())
                })
            })
            .await?;
        self.done(resp).await
    }

    async fn respond_activity_task_completed(
        &self,
        r: Request<RespondActivityTaskCompletedRequest>,
    ) -> Result<Response<RespondActivityTaskCompletedResponse>, Status> {
        let r = r.into_inner();
        self.engine.with_state(|st| {
            st.respond_activity(
                &r.task_token,
                &r.namespace,
                r.identity,
                ActivityResponse::Completed(r.result),
            )
        })?;
        self.done(RespondActivityTaskCompletedResponse::default()).await
    }

    async fn respond_activity_task_failed(
        &self,
        r: Request<RespondActivityTaskFailedRequest>,
    ) -> Result<Response<RespondActivityTaskFailedResponse>, Status> {
        let r = r.into_inner();
        let failure =
            r.failure.ok_or_else(|| Status::invalid_argument("Failure is not set on request."))?;
        // As the Temporal server: an activity's own failure is an application failure.
        if !matches!(
            failure.failure_info,
            Some(temporalio_protos::temporal::api::failure::v1::failure::FailureInfo::ApplicationFailureInfo(_))
        ) {
            return Err(Status::invalid_argument("Failure must have ApplicationFailureInfo."));
        }
        let response = ActivityResponse::Failed {
            failure: Box::new(failure),
            heartbeat: r.last_heartbeat_details,
        };
        self.engine.with_state(|st| {
            st.respond_activity(&r.task_token, &r.namespace, r.identity, response)
        })?;
        self.done(RespondActivityTaskFailedResponse::default()).await
    }

    async fn respond_activity_task_canceled(
        &self,
        r: Request<RespondActivityTaskCanceledRequest>,
    ) -> Result<Response<RespondActivityTaskCanceledResponse>, Status> {
        let r = r.into_inner();
        self.engine.with_state(|st| {
            st.respond_activity(
                &r.task_token,
                &r.namespace,
                r.identity,
                ActivityResponse::Canceled(r.details),
            )
        })?;
        self.done(RespondActivityTaskCanceledResponse::default()).await
    }

    async fn record_activity_task_heartbeat(
        &self,
        r: Request<RecordActivityTaskHeartbeatRequest>,
    ) -> Result<Response<RecordActivityTaskHeartbeatResponse>, Status> {
        let r = r.into_inner();
        let (cancel_requested, activity_paused, activity_reset) =
            self.engine.with_state(|st| st.heartbeat(&r.task_token, &r.namespace, r.details))?;
        self.done(RecordActivityTaskHeartbeatResponse {
            cancel_requested,
            activity_paused,
            activity_reset,
        })
        .await
    }

    async fn get_workflow_execution_history(
        &self,
        r: Request<GetWorkflowExecutionHistoryRequest>,
    ) -> Result<Response<GetWorkflowExecutionHistoryResponse>, Status> {
        let r = r.into_inner();
        let (workflow_id, run_id) = execution_ids(r.execution);
        let req = HistoryRequest {
            namespace: r.namespace,
            workflow_id,
            run_id,
            page_size: r.maximum_page_size,
            next_page_token: r.next_page_token,
            wait_new_event: r.wait_new_event,
            filter: HistoryEventFilterType::try_from(r.history_event_filter_type)
                .unwrap_or(HistoryEventFilterType::AllEvent),
        };
        let (history, next_page_token) = self.engine.history(req).await?;
        self.done(GetWorkflowExecutionHistoryResponse {
            history: Some(history),
            next_page_token,
            ..Default::default()
        })
        .await
    }

    async fn describe_workflow_execution(
        &self,
        r: Request<DescribeWorkflowExecutionRequest>,
    ) -> Result<Response<DescribeWorkflowExecutionResponse>, Status> {
        let r = r.into_inner();
        let (wid, rid) = execution_ids(r.execution);
        let resp = self.engine.with_state(|st| st.describe(&r.namespace, &wid, &rid))?;
        self.done(resp).await
    }

    /// Stickiness is declined (every task goes to the normal queue), so there is no sticky
    /// queue to reset: the RPC only checks that the execution exists, as the real server does
    /// before clearing it.
    async fn reset_sticky_task_queue(
        &self,
        r: Request<ResetStickyTaskQueueRequest>,
    ) -> Result<Response<ResetStickyTaskQueueResponse>, Status> {
        let r = r.into_inner();
        let (wid, rid) = execution_ids(r.execution);
        self.engine.with_state(|st| st.describe(&r.namespace, &wid, &rid))?;
        self.done(ResetStickyTaskQueueResponse::default()).await
    }

    async fn terminate_workflow_execution(
        &self,
        r: Request<TerminateWorkflowExecutionRequest>,
    ) -> Result<Response<TerminateWorkflowExecutionResponse>, Status> {
        let r = r.into_inner();
        let (wid, rid) = execution_ids(r.workflow_execution);
        self.engine.with_state(|st| {
            st.terminate(&r.namespace, &wid, &rid, r.reason, r.details, r.identity)
        })?;
        self.done(TerminateWorkflowExecutionResponse::default()).await
    }

    async fn request_cancel_workflow_execution(
        &self,
        r: Request<RequestCancelWorkflowExecutionRequest>,
    ) -> Result<Response<RequestCancelWorkflowExecutionResponse>, Status> {
        let r = r.into_inner();
        let (wid, rid) = execution_ids(r.workflow_execution);
        self.engine.with_state(|st| {
            st.request_cancel(&r.namespace, &wid, &rid, r.reason, r.identity, r.request_id)
        })?;
        self.done(RequestCancelWorkflowExecutionResponse::default()).await
    }

    async fn shutdown_worker(
        &self,
        r: Request<ShutdownWorkerRequest>,
    ) -> Result<Response<ShutdownWorkerResponse>, Status> {
        // Stickiness is declined, so there is no sticky queue to drain.
        self.engine.check_namespace(&r.into_inner().namespace)?;
        self.done(ShutdownWorkerResponse::default()).await
    }

    async fn query_workflow(
        &self,
        r: Request<QueryWorkflowRequest>,
    ) -> Result<Response<QueryWorkflowResponse>, Status> {
        let r = r.into_inner();
        let (wid, rid) = execution_ids(r.execution);
        let query =
            r.query.ok_or_else(|| Status::invalid_argument("Query is not set on request."))?;
        let reject = QueryRejectCondition::try_from(r.query_reject_condition)
            .unwrap_or(QueryRejectCondition::Unspecified);
        match self.engine.query(&r.namespace, &wid, &rid, query, reject).await? {
            QueryOutcome::Rejected(status) => {
                self.done(QueryWorkflowResponse {
                    query_rejected: Some(QueryRejected { status: status as i32 }),
                    ..Default::default()
                })
                .await
            }
            QueryOutcome::Answered(Ok(result)) => {
                self.done(QueryWorkflowResponse { query_result: result, ..Default::default() })
                    .await
            }
            // Temporal reports a failed query as INVALID_ARGUMENT carrying the worker's message.
            QueryOutcome::Answered(Err((message, _))) => Err(Status::invalid_argument(message)),
        }
    }

    async fn respond_query_task_completed(
        &self,
        r: Request<RespondQueryTaskCompletedRequest>,
    ) -> Result<Response<RespondQueryTaskCompletedResponse>, Status> {
        let r = r.into_inner();
        let answer = if r.completed_type == QueryResultType::Answered as i32 {
            Ok(r.query_result)
        } else {
            let message = if r.error_message.is_empty() {
                r.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default()
            } else {
                r.error_message
            };
            Err((message, r.failure.map(Box::new)))
        };
        self.engine.with_state(|st| st.answer_legacy_query(&r.task_token, &r.namespace, answer))?;
        self.done(RespondQueryTaskCompletedResponse::default()).await
    }

    async fn update_workflow_execution(
        &self,
        r: Request<UpdateWorkflowExecutionRequest>,
    ) -> Result<Response<UpdateWorkflowExecutionResponse>, Status> {
        let r = r.into_inner();
        let (wid, rid) = execution_ids(r.workflow_execution);
        let request =
            r.request.ok_or_else(|| Status::invalid_argument("Request is not set on request."))?;
        let status = self
            .engine
            .update(
                &r.namespace,
                &wid,
                &rid,
                &r.first_execution_run_id,
                request,
                wait_stage(r.wait_policy),
            )
            .await?;
        let link = update_link(&r.namespace, &status);
        let UpdateStatus { update_ref, stage, outcome } = status;
        self.done(UpdateWorkflowExecutionResponse {
            update_ref: Some(update_ref),
            outcome,
            stage: stage as i32,
            link,
        })
        .await
    }

    async fn poll_workflow_execution_update(
        &self,
        r: Request<PollWorkflowExecutionUpdateRequest>,
    ) -> Result<Response<PollWorkflowExecutionUpdateResponse>, Status> {
        let r = r.into_inner();
        let update_ref = r
            .update_ref
            .ok_or_else(|| Status::invalid_argument("UpdateRef is not set on request."))?;
        let (wid, rid) = execution_ids(update_ref.workflow_execution);
        let status = self
            .engine
            .poll_update(&r.namespace, &wid, &rid, &update_ref.update_id, wait_stage(r.wait_policy))
            .await?;
        let UpdateStatus { update_ref, stage, outcome } = status;
        self.done(PollWorkflowExecutionUpdateResponse {
            update_ref: Some(update_ref),
            outcome,
            stage: stage as i32,
        })
        .await
    }

    async fn list_workflow_executions(
        &self,
        r: Request<ListWorkflowExecutionsRequest>,
    ) -> Result<Response<ListWorkflowExecutionsResponse>, Status> {
        let r = r.into_inner();
        let (executions, next_page_token) = self
            .engine
            .with_state(|st| st.list(&r.namespace, &r.query, r.page_size, &r.next_page_token))?;
        self.done(ListWorkflowExecutionsResponse { executions, next_page_token }).await
    }

    async fn count_workflow_executions(
        &self,
        r: Request<CountWorkflowExecutionsRequest>,
    ) -> Result<Response<CountWorkflowExecutionsResponse>, Status> {
        let r = r.into_inner();
        let (count, groups) = self.engine.with_state(|st| st.count(&r.namespace, &r.query))?;
        let groups = groups
            .into_iter()
            .map(|(status, count)| count_workflow_executions_response::AggregationGroup {
                group_values: vec![temporalio_protos::temporal::api::common::v1::Payload {
                    metadata: [("encoding".to_owned(), b"json/plain".to_vec())]
                        .into_iter()
                        .collect(),
                    data: serde_json::to_vec(&status).unwrap_or_default(),
                    ..Default::default()
                }],
                count,
            })
            .collect();
        self.done(CountWorkflowExecutionsResponse { count, groups }).await
    }

    async fn reset_workflow_execution(
        &self,
        r: Request<ResetWorkflowExecutionRequest>,
    ) -> Result<Response<ResetWorkflowExecutionResponse>, Status> {
        let r = r.into_inner();
        let (wid, rid) = execution_ids(r.workflow_execution);
        let req = ResetRequest {
            namespace: r.namespace,
            workflow_id: wid,
            run_id: rid,
            finish_event_id: r.workflow_task_finish_event_id,
            reason: r.reason,
            identity: r.identity,
            exclude: r.reset_reapply_exclude_types,
        };
        let run_id = self.engine.with_state(|st| st.reset(req))?;
        self.done(ResetWorkflowExecutionResponse { run_id }).await
    }

    async fn pause_activity(
        &self,
        r: Request<PauseActivityRequest>,
    ) -> Result<Response<PauseActivityResponse>, Status> {
        let r = r.into_inner();
        let select = match r.activity {
            Some(pause_activity_request::Activity::Id(id)) => ActivitySelector::Id(id),
            Some(pause_activity_request::Activity::Type(t)) => ActivitySelector::Type(t),
            None => {
                return Err(Status::invalid_argument("activity id or type is not set on request."));
            }
        };
        let (wid, rid) = execution_ids(r.execution);
        let op =
            ActivityOp::Pause { identity: r.identity, reason: r.reason, request_id: r.request_id };
        self.engine.with_state(|st| st.activity_op(&r.namespace, &wid, &rid, select, op))?;
        self.done(PauseActivityResponse::default()).await
    }

    async fn unpause_activity(
        &self,
        r: Request<UnpauseActivityRequest>,
    ) -> Result<Response<UnpauseActivityResponse>, Status> {
        let r = r.into_inner();
        let select = match r.activity {
            Some(unpause_activity_request::Activity::Id(id)) => ActivitySelector::Id(id),
            Some(unpause_activity_request::Activity::Type(t)) => ActivitySelector::Type(t),
            _ => {
                return Err(Status::invalid_argument("activity id or type is not set on request."));
            }
        };
        let (wid, rid) = execution_ids(r.execution);
        let op = ActivityOp::Unpause { reset_attempts: r.reset_attempts };
        self.engine.with_state(|st| st.activity_op(&r.namespace, &wid, &rid, select, op))?;
        self.done(UnpauseActivityResponse::default()).await
    }

    async fn reset_activity(
        &self,
        r: Request<ResetActivityRequest>,
    ) -> Result<Response<ResetActivityResponse>, Status> {
        let r = r.into_inner();
        let select = match r.activity {
            Some(reset_activity_request::Activity::Id(id)) => ActivitySelector::Id(id),
            Some(reset_activity_request::Activity::Type(t)) => ActivitySelector::Type(t),
            _ => {
                return Err(Status::invalid_argument("activity id or type is not set on request."));
            }
        };
        let (wid, rid) = execution_ids(r.execution);
        let op =
            ActivityOp::Reset { keep_paused: r.keep_paused, reset_heartbeat: r.reset_heartbeat };
        self.engine.with_state(|st| st.activity_op(&r.namespace, &wid, &rid, select, op))?;
        self.done(ResetActivityResponse::default()).await
    }

    async fn execute_multi_operation(
        &self,
        r: Request<ExecuteMultiOperationRequest>,
    ) -> Result<Response<ExecuteMultiOperationResponse>, Status> {
        use execute_multi_operation_request::operation::Operation as Op;
        let r = r.into_inner();
        let mut ops = r.operations.into_iter().map(|o| o.operation);
        let (Some(Some(Op::StartWorkflow(start))), Some(Some(Op::UpdateWorkflow(update))), None) =
            (ops.next(), ops.next(), ops.next())
        else {
            return Err(Status::invalid_argument(
                "ExecuteMultiOperation supports exactly [StartWorkflow, UpdateWorkflow] (update-with-start).",
            ));
        };
        let target = update.workflow_execution.clone().unwrap_or_default();
        if target.workflow_id != start.workflow_id || !target.run_id.is_empty() {
            return Err(Status::invalid_argument(
                "the update must name the started workflow's id and no run id",
            ));
        }
        if start.workflow_id_conflict_policy == WorkflowIdConflictPolicy::Unspecified as i32 {
            return Err(Status::invalid_argument(
                "update-with-start requires a workflow id conflict policy",
            ));
        }
        unsupported_start_options(&start.cron_schedule)?;
        let request = update
            .request
            .ok_or_else(|| Status::invalid_argument("Request is not set on request."))?;
        let params = StartParams {
            namespace: r.namespace,
            workflow_id: start.workflow_id,
            workflow_type: start.workflow_type.map(|t| t.name).unwrap_or_default(),
            task_queue: start.task_queue.map(|q| q.name).unwrap_or_default(),
            input: start.input,
            execution_timeout: dn(start.workflow_execution_timeout.as_ref()),
            run_timeout: dn(start.workflow_run_timeout.as_ref()),
            task_timeout: dn(start.workflow_task_timeout.as_ref()),
            identity: start.identity,
            request_id: start.request_id,
            reuse_policy: reuse_policy(start.workflow_id_reuse_policy),
            conflict_policy: conflict_policy(start.workflow_id_conflict_policy),
            retry_policy: start.retry_policy,
            memo: start.memo,
            search_attributes: start.search_attributes,
            header: start.header,
            start_delay: None,
            user_metadata: start.user_metadata,
            priority: start.priority,
            parent: None,
        };
        let (namespace, workflow_id) = (params.namespace.clone(), params.workflow_id.clone());
        match self.engine.update_with_start(params, request, wait_stage(update.wait_policy)).await {
            Ok(UpdateWithStart { started, status, completed_before }) => {
                use execute_multi_operation_response::{Response as R, response::Response as Rr};
                // An update completed before this request: the answer links to nothing new.
                let fresh = completed_before.is_none();
                let link = fresh.then(|| started_link(&namespace, &workflow_id, &started.run_id));
                let update_link = update_link(&namespace, &status).filter(|_| fresh);
                let UpdateStatus { update_ref, stage, outcome } = status;
                self.done(ExecuteMultiOperationResponse {
                    responses: vec![
                        R {
                            response: Some(Rr::StartWorkflow(StartWorkflowExecutionResponse {
                                // As the Temporal server: the run is running (unless an
                                // earlier run completed the update), and a run attached to
                                // rather than started names no first run.
                                status: completed_before.unwrap_or(WorkflowExecutionStatus::Running)
                                    as i32,
                                first_execution_run_id: if started.started {
                                    started.first_run_id
                                } else {
                                    String::new()
                                },
                                run_id: started.run_id,
                                started: started.started,
                                link,
                                ..Default::default()
                            })),
                        },
                        R {
                            response: Some(Rr::UpdateWorkflow(UpdateWorkflowExecutionResponse {
                                update_ref: Some(update_ref),
                                outcome,
                                stage: stage as i32,
                                link: update_link,
                            })),
                        },
                    ],
                })
                .await
            }
            Err((index, e)) => Err(super::errors::multi_operation_failure(index, e.into())),
        }
    }

    async fn list_namespaces(
        &self,
        _r: Request<ListNamespacesRequest>,
    ) -> Result<Response<ListNamespacesResponse>, Status> {
        let mut namespaces = Vec::new();
        for (name, _) in self.engine.namespaces() {
            let d = self
                .describe_namespace(Request::new(DescribeNamespaceRequest {
                    namespace: name,
                    ..Default::default()
                }))
                .await?;
            namespaces.push(d.into_inner());
        }
        Ok(Response::new(ListNamespacesResponse { namespaces, next_page_token: Vec::new() }))
    }

    async fn get_workflow_execution_history_reverse(
        &self,
        r: Request<GetWorkflowExecutionHistoryReverseRequest>,
    ) -> Result<Response<GetWorkflowExecutionHistoryReverseResponse>, Status> {
        let r = r.into_inner();
        let (workflow_id, run_id) = execution_ids(r.execution);
        let req = HistoryRequest {
            namespace: r.namespace,
            workflow_id,
            run_id,
            page_size: 0,
            next_page_token: Vec::new(),
            wait_new_event: false,
            filter: HistoryEventFilterType::AllEvent,
        };
        let (mut history, _) = self.engine.history(req).await?;
        history.events.reverse();
        // Newest first; the token is how many events were already returned.
        let skip = match r.next_page_token.as_slice() {
            [] => 0,
            b if b.len() == 8 => u64::from_be_bytes(b.try_into().expect("8 bytes")) as usize,
            _ => return Err(Status::invalid_argument("Invalid NextPageToken.")),
        };
        let size = if r.maximum_page_size <= 0 { usize::MAX } else { r.maximum_page_size as usize };
        let total = history.events.len();
        let events: Vec<_> = history.events.into_iter().skip(skip).take(size).collect();
        let returned = skip + events.len();
        let next_page_token =
            if returned < total { (returned as u64).to_be_bytes().to_vec() } else { Vec::new() };
        history.events = events;
        self.done(GetWorkflowExecutionHistoryReverseResponse {
            history: Some(history),
            next_page_token,
        })
        .await
    }

    async fn respond_activity_task_completed_by_id(
        &self,
        r: Request<RespondActivityTaskCompletedByIdRequest>,
    ) -> Result<Response<RespondActivityTaskCompletedByIdResponse>, Status> {
        let r = r.into_inner();
        self.engine.with_state(|st| {
            let token =
                st.activity_token_by_id(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)?;
            st.respond_activity(
                &token,
                &r.namespace,
                r.identity,
                ActivityResponse::Completed(r.result),
            )
        })?;
        self.done(RespondActivityTaskCompletedByIdResponse::default()).await
    }

    async fn respond_activity_task_failed_by_id(
        &self,
        r: Request<RespondActivityTaskFailedByIdRequest>,
    ) -> Result<Response<RespondActivityTaskFailedByIdResponse>, Status> {
        let r = r.into_inner();
        let failure =
            r.failure.ok_or_else(|| Status::invalid_argument("Failure is not set on request."))?;
        let response = ActivityResponse::Failed {
            failure: Box::new(failure),
            heartbeat: r.last_heartbeat_details,
        };
        self.engine.with_state(|st| {
            let token =
                st.activity_token_by_id(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)?;
            st.respond_activity(&token, &r.namespace, r.identity, response)
        })?;
        self.done(RespondActivityTaskFailedByIdResponse::default()).await
    }

    async fn respond_activity_task_canceled_by_id(
        &self,
        r: Request<RespondActivityTaskCanceledByIdRequest>,
    ) -> Result<Response<RespondActivityTaskCanceledByIdResponse>, Status> {
        let r = r.into_inner();
        self.engine.with_state(|st| {
            let token =
                st.activity_token_by_id(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)?;
            st.respond_activity(
                &token,
                &r.namespace,
                r.identity,
                ActivityResponse::Canceled(r.details),
            )
        })?;
        self.done(RespondActivityTaskCanceledByIdResponse::default()).await
    }

    async fn record_activity_task_heartbeat_by_id(
        &self,
        r: Request<RecordActivityTaskHeartbeatByIdRequest>,
    ) -> Result<Response<RecordActivityTaskHeartbeatByIdResponse>, Status> {
        let r = r.into_inner();
        let (cancel_requested, activity_paused, activity_reset) = self.engine.with_state(|st| {
            let token =
                st.activity_token_by_id(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id)?;
            st.heartbeat(&token, &r.namespace, r.details)
        })?;
        self.done(RecordActivityTaskHeartbeatByIdResponse {
            cancel_requested,
            activity_paused,
            activity_reset,
        })
        .await
    }

    async fn register_namespace(
        &self,
        r: Request<RegisterNamespaceRequest>,
    ) -> Result<Response<RegisterNamespaceResponse>, Status> {
        let r = r.into_inner();
        let retention =
            r.workflow_execution_retention_period.as_ref().map(|d| d.seconds).filter(|s| *s > 0);
        self.engine.register_namespace(&r.namespace, &r.description, retention)?;
        self.done(RegisterNamespaceResponse::default()).await
    }

    async fn list_open_workflow_executions(
        &self,
        r: Request<ListOpenWorkflowExecutionsRequest>,
    ) -> Result<Response<ListOpenWorkflowExecutionsResponse>, Status> {
        use list_open_workflow_executions_request::Filters;
        let r = r.into_inner();
        let filter = match r.filters {
            Some(Filters::ExecutionFilter(f)) => Some(execution_clause(&f.workflow_id, &f.run_id)),
            Some(Filters::TypeFilter(f)) => Some(format!("WorkflowType = {}", quote(&f.name))),
            None => None,
        };
        let query = legacy_query("ExecutionStatus = 'Running'", filter, r.start_time_filter);
        let (executions, next_page_token) = self.engine.with_state(|st| {
            st.list(&r.namespace, &query, r.maximum_page_size, &r.next_page_token)
        })?;
        self.done(ListOpenWorkflowExecutionsResponse { executions, next_page_token }).await
    }

    async fn list_closed_workflow_executions(
        &self,
        r: Request<ListClosedWorkflowExecutionsRequest>,
    ) -> Result<Response<ListClosedWorkflowExecutionsResponse>, Status> {
        use list_closed_workflow_executions_request::Filters;
        let r = r.into_inner();
        let filter = match r.filters {
            Some(Filters::ExecutionFilter(f)) => Some(execution_clause(&f.workflow_id, &f.run_id)),
            Some(Filters::TypeFilter(f)) => Some(format!("WorkflowType = {}", quote(&f.name))),
            Some(Filters::StatusFilter(f)) => {
                let status =
                    temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus::try_from(
                        f.status,
                    )
                    .map_err(|_| Status::invalid_argument("unknown status in StatusFilter"))?;
                Some(format!("ExecutionStatus = {}", quote(status_name(status))))
            }
            None => None,
        };
        let query = legacy_query("ExecutionStatus != 'Running'", filter, r.start_time_filter);
        let (executions, next_page_token) = self.engine.with_state(|st| {
            st.list(&r.namespace, &query, r.maximum_page_size, &r.next_page_token)
        })?;
        self.done(ListClosedWorkflowExecutionsResponse { executions, next_page_token }).await
    }
}

/// A string literal in the visibility query language.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn execution_clause(workflow_id: &str, run_id: &str) -> String {
    let mut clause = format!("WorkflowId = {}", quote(workflow_id));
    if !run_id.is_empty() {
        clause.push_str(&format!(" AND RunId = {}", quote(run_id)));
    }
    clause
}

fn status_name(
    s: temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus,
) -> &'static str {
    use temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus as S;
    match s {
        S::Running => "Running",
        S::Completed => "Completed",
        S::Failed => "Failed",
        S::Canceled => "Canceled",
        S::Terminated => "Terminated",
        S::ContinuedAsNew => "ContinuedAsNew",
        S::TimedOut => "TimedOut",
        S::Unspecified | S::Paused => "Unspecified",
    }
}

/// The pre-visibility-query List{Open,Closed} RPCs, expressed as a visibility query.
fn legacy_query(
    status: &str,
    filter: Option<String>,
    start: Option<temporalio_protos::temporal::api::filter::v1::StartTimeFilter>,
) -> String {
    let mut clauses = vec![status.to_owned()];
    clauses.extend(filter);
    if let Some(t) = start {
        if let Some(e) = t.earliest_time.filter(|e| e.seconds != 0 || e.nanos != 0) {
            clauses.push(format!("StartTime >= {}", crate::engine::ts_nanos(&e)));
        }
        if let Some(l) = t.latest_time.filter(|l| l.seconds != 0 || l.nanos != 0) {
            clauses.push(format!("StartTime <= {}", crate::engine::ts_nanos(&l)));
        }
    }
    clauses.join(" AND ")
}

fn wait_stage(
    p: Option<temporalio_protos::temporal::api::update::v1::WaitPolicy>,
) -> UpdateWorkflowExecutionLifecycleStage {
    p.and_then(|p| UpdateWorkflowExecutionLifecycleStage::try_from(p.lifecycle_stage).ok())
        .unwrap_or(UpdateWorkflowExecutionLifecycleStage::Unspecified)
}

/// The link a start answers with: the run's started event.
fn started_link(namespace: &str, workflow_id: &str, run_id: &str) -> Link {
    use temporalio_protos::temporal::api::{common::v1::link, enums::v1::EventType};
    Link {
        variant: Some(link::Variant::WorkflowEvent(link::WorkflowEvent {
            namespace: namespace.to_owned(),
            workflow_id: workflow_id.to_owned(),
            run_id: run_id.to_owned(),
            reference: Some(link::workflow_event::Reference::EventRef(
                link::workflow_event::EventReference {
                    event_id: 1,
                    event_type: EventType::WorkflowExecutionStarted as i32,
                },
            )),
        })),
    }
}

/// The link a signal-with-start answers with: the signal, by its request id.
fn signal_link(namespace: &str, workflow_id: &str, run_id: &str, request_id: String) -> Link {
    use temporalio_protos::temporal::api::{common::v1::link, enums::v1::EventType};
    Link {
        variant: Some(link::Variant::WorkflowEvent(link::WorkflowEvent {
            namespace: namespace.to_owned(),
            workflow_id: workflow_id.to_owned(),
            run_id: run_id.to_owned(),
            reference: Some(link::workflow_event::Reference::RequestIdRef(
                link::workflow_event::RequestIdReference {
                    request_id,
                    event_type: EventType::WorkflowExecutionSignaled as i32,
                },
            )),
        })),
    }
}

/// The link an update answers with, as the Temporal server chooses it: one that completed
/// with a failure (rejected, or failed by its run's close) links to the run, since it may
/// have no event; an accepted or completed one links to its accepted event.
fn update_link(namespace: &str, status: &UpdateStatus) -> Option<Link> {
    use temporalio_protos::temporal::api::{common::v1::link, update::v1::outcome};
    let execution = status.update_ref.workflow_execution.clone().unwrap_or_default();
    let failed = matches!(
        status.outcome.as_ref().and_then(|o| o.value.as_ref()),
        Some(outcome::Value::Failure(_))
    );
    match status.stage {
        UpdateWorkflowExecutionLifecycleStage::Completed if failed => Some(Link {
            variant: Some(link::Variant::Workflow(link::Workflow {
                namespace: namespace.to_owned(),
                workflow_id: execution.workflow_id,
                run_id: execution.run_id,
                reason: "Update rejected".into(),
            })),
        }),
        UpdateWorkflowExecutionLifecycleStage::Accepted
        | UpdateWorkflowExecutionLifecycleStage::Completed => {
            Some(accepted_link(namespace, &status.update_ref))
        }
        _ => None,
    }
}

/// The link an accepted update answers with: its accepted event, by the update's request id
/// (which a client's update request does not carry).
fn accepted_link(namespace: &str, update: &UpdateRef) -> Link {
    use temporalio_protos::temporal::api::{common::v1::link, enums::v1::EventType};
    let execution = update.workflow_execution.clone().unwrap_or_default();
    Link {
        variant: Some(link::Variant::WorkflowEvent(link::WorkflowEvent {
            namespace: namespace.to_owned(),
            workflow_id: execution.workflow_id,
            run_id: execution.run_id,
            reference: Some(link::workflow_event::Reference::RequestIdRef(
                link::workflow_event::RequestIdReference {
                    request_id: String::new(),
                    event_type: EventType::WorkflowExecutionUpdateAccepted as i32,
                },
            )),
        })),
    }
}
