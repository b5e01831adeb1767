//! Protocol-level tests: a raw gRPC client plays worker and client against a real devserver
//! on loopback, so each test can put the server in an exact state (a task in flight, a
//! buffered signal, a stale token) and check the history and statuses real Temporal gives.

use std::time::Duration;

use convo_devserver::{DevServer, DevServerConfig, DevServerHandle};
use prost::Message;
use temporalio_protos::temporal::api::{
    command::v1::{
        Command, CompleteWorkflowExecutionCommandAttributes, ScheduleActivityTaskCommandAttributes,
        StartTimerCommandAttributes, command::Attributes as Cmd,
    },
    common::v1::{ActivityType, Payloads, RetryPolicy, WorkflowExecution, WorkflowType},
    enums::v1::{
        CommandType, EventType, TaskQueueKind, WorkflowIdReusePolicy, WorkflowTaskFailedCause,
    },
    errordetails::v1::WorkflowExecutionAlreadyStartedFailure,
    failure::v1::{ApplicationFailureInfo, Failure, failure::FailureInfo},
    history::v1::{HistoryEvent, history_event::Attributes},
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{workflow_service_client::WorkflowServiceClient, *},
};
use tonic::{Code, transport::Channel};

type Client = WorkflowServiceClient<Channel>;

const NS: &str = "default";

async fn setup() -> (DevServerHandle, Client) {
    let config = DevServerConfig {
        long_poll_timeout: Duration::from_secs(5),
        ..DevServerConfig::ephemeral()
    };
    let server = DevServer::start(config).await.expect("start devserver");
    let client = WorkflowServiceClient::connect(server.url()).await.expect("connect");
    (server, client)
}

fn tq(name: &str) -> Option<TaskQueue> {
    Some(TaskQueue {
        name: name.into(),
        kind: TaskQueueKind::Normal as i32,
        normal_name: String::new(),
    })
}

fn start_req(id: &str, queue: &str) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: NS.into(),
        workflow_id: id.into(),
        workflow_type: Some(WorkflowType { name: "Probe".into() }),
        task_queue: tq(queue),
        request_id: uuid(),
        ..Default::default()
    }
}

fn uuid() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    )
}

async fn start(c: &mut Client, id: &str, queue: &str) -> String {
    c.start_workflow_execution(start_req(id, queue)).await.expect("start").into_inner().run_id
}

async fn poll_wft(c: &mut Client, queue: &str) -> PollWorkflowTaskQueueResponse {
    let r = c
        .poll_workflow_task_queue(PollWorkflowTaskQueueRequest {
            namespace: NS.into(),
            task_queue: tq(queue),
            identity: "probe".into(),
            ..Default::default()
        })
        .await
        .expect("poll")
        .into_inner();
    assert!(!r.task_token.is_empty(), "expected a workflow task on {queue}");
    r
}

async fn poll_activity(c: &mut Client, queue: &str) -> PollActivityTaskQueueResponse {
    let r = c
        .poll_activity_task_queue(PollActivityTaskQueueRequest {
            namespace: NS.into(),
            task_queue: tq(queue),
            identity: "probe".into(),
            ..Default::default()
        })
        .await
        .expect("poll activity")
        .into_inner();
    assert!(!r.task_token.is_empty(), "expected an activity task on {queue}");
    r
}

async fn complete(
    c: &mut Client,
    token: Vec<u8>,
    commands: Vec<Command>,
) -> Result<(), tonic::Status> {
    c.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
        namespace: NS.into(),
        task_token: token,
        commands,
        identity: "probe".into(),
        ..Default::default()
    })
    .await
    .map(|_| ())
}

fn complete_cmd() -> Command {
    Command {
        command_type: CommandType::CompleteWorkflowExecution as i32,
        attributes: Some(Cmd::CompleteWorkflowExecutionCommandAttributes(
            CompleteWorkflowExecutionCommandAttributes { result: None },
        )),
        ..Default::default()
    }
}

fn timer_cmd(id: &str, secs: i64) -> Command {
    Command {
        command_type: CommandType::StartTimer as i32,
        attributes: Some(Cmd::StartTimerCommandAttributes(StartTimerCommandAttributes {
            timer_id: id.into(),
            start_to_fire_timeout: Some(prost_wkt_types::Duration { seconds: secs, nanos: 0 }),
        })),
        ..Default::default()
    }
}

fn activity_cmd(id: &str, queue: &str, max_attempts: i32) -> Command {
    Command {
        command_type: CommandType::ScheduleActivityTask as i32,
        attributes: Some(Cmd::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                activity_id: id.into(),
                activity_type: Some(ActivityType { name: "Act".into() }),
                task_queue: tq(queue),
                start_to_close_timeout: Some(prost_wkt_types::Duration { seconds: 30, nanos: 0 }),
                retry_policy: Some(RetryPolicy {
                    initial_interval: Some(prost_wkt_types::Duration { seconds: 1, nanos: 0 }),
                    backoff_coefficient: 2.0,
                    maximum_attempts: max_attempts,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

async fn signal(c: &mut Client, id: &str, name: &str) {
    c.signal_workflow_execution(SignalWorkflowExecutionRequest {
        namespace: NS.into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: id.into(),
            run_id: String::new(),
        }),
        signal_name: name.into(),
        request_id: uuid(),
        ..Default::default()
    })
    .await
    .expect("signal");
}

async fn history(c: &mut Client, id: &str) -> Vec<HistoryEvent> {
    c.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest {
        namespace: NS.into(),
        execution: Some(WorkflowExecution { workflow_id: id.into(), run_id: String::new() }),
        ..Default::default()
    })
    .await
    .expect("history")
    .into_inner()
    .history
    .unwrap_or_default()
    .events
}

fn types(events: &[HistoryEvent]) -> Vec<EventType> {
    events.iter().map(|e| EventType::try_from(e.event_type).unwrap()).collect()
}

fn assert_ids_sequential(events: &[HistoryEvent]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.event_id, i as i64 + 1, "event ids must be 1..n in order");
    }
}

use EventType::*;

#[tokio::test]
async fn first_workflow_task_carries_full_history() {
    let (server, mut c) = setup().await;
    start(&mut c, "wf-first", "q-first").await;
    let task = poll_wft(&mut c, "q-first").await;
    assert_eq!(task.started_event_id, 3);
    assert_eq!(task.previous_started_event_id, 0);
    assert_eq!(task.attempt, 1);
    let events = task.history.unwrap().events;
    assert_eq!(
        types(&events),
        [WorkflowExecutionStarted, WorkflowTaskScheduled, WorkflowTaskStarted]
    );
    assert_ids_sequential(&events);
    complete(&mut c, task.task_token, vec![complete_cmd()]).await.unwrap();
    let events = history(&mut c, "wf-first").await;
    assert_eq!(types(&events)[3..], [WorkflowTaskCompleted, WorkflowExecutionCompleted]);
    server.shutdown().await;
}

#[tokio::test]
async fn signal_during_started_task_is_buffered_and_blocks_completion() {
    let (server, mut c) = setup().await;
    start(&mut c, "wf-buf", "q-buf").await;
    let task = poll_wft(&mut c, "q-buf").await;
    signal(&mut c, "wf-buf", "poke").await;
    // Buffered: not yet in history.
    assert_eq!(history(&mut c, "wf-buf").await.len(), 3);
    // The real server's answer, which sdk-core matches on to evict and replay the run.
    let refused = complete(&mut c, task.task_token, vec![complete_cmd()]).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(refused.message(), "UnhandledCommand");
    let events = history(&mut c, "wf-buf").await;
    assert_eq!(
        types(&events),
        [
            WorkflowExecutionStarted,
            WorkflowTaskScheduled,
            WorkflowTaskStarted,
            WorkflowTaskFailed,
            WorkflowExecutionSignaled,
            WorkflowTaskScheduled
        ]
    );
    let Some(Attributes::WorkflowTaskFailedEventAttributes(failed)) = &events[3].attributes else {
        panic!()
    };
    assert_eq!(failed.cause, WorkflowTaskFailedCause::UnhandledCommand as i32);
    // The next task sees the signal and may now complete.
    let task = poll_wft(&mut c, "q-buf").await;
    assert_eq!(task.previous_started_event_id, 0, "the failed task does not count as processed");
    complete(&mut c, task.task_token, vec![complete_cmd()]).await.unwrap();
    let events = history(&mut c, "wf-buf").await;
    assert_eq!(
        types(&events)[6..],
        [WorkflowTaskStarted, WorkflowTaskCompleted, WorkflowExecutionCompleted]
    );
    assert_ids_sequential(&events);
    server.shutdown().await;
}

#[tokio::test]
async fn signal_while_task_only_scheduled_goes_before_started() {
    let (server, mut c) = setup().await;
    start(&mut c, "wf-sched", "q-sched").await;
    signal(&mut c, "wf-sched", "a").await;
    signal(&mut c, "wf-sched", "b").await;
    let task = poll_wft(&mut c, "q-sched").await;
    assert_eq!(
        types(&task.history.unwrap().events),
        [
            WorkflowExecutionStarted,
            WorkflowTaskScheduled,
            WorkflowExecutionSignaled,
            WorkflowExecutionSignaled,
            WorkflowTaskStarted
        ]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn activity_completion_and_signal_buffered_completions_go_last() {
    let (server, mut c) = setup().await;
    start(&mut c, "wf-order", "q-order").await;
    let task = poll_wft(&mut c, "q-order").await;
    complete(
        &mut c,
        task.task_token,
        vec![activity_cmd("1", "q-order-act", 0), timer_cmd("t", 3600)],
    )
    .await
    .unwrap();
    let act = poll_activity(&mut c, "q-order-act").await;
    // Put a workflow task in flight (a signal schedules one), then finish the activity and
    // signal again while it runs.
    signal(&mut c, "wf-order", "first").await;
    let task = poll_wft(&mut c, "q-order").await;
    c.respond_activity_task_completed(RespondActivityTaskCompletedRequest {
        namespace: NS.into(),
        task_token: act.task_token,
        result: Some(Payloads::default()),
        ..Default::default()
    })
    .await
    .unwrap();
    signal(&mut c, "wf-order", "second").await;
    complete(&mut c, task.task_token, vec![]).await.unwrap();
    let events = history(&mut c, "wf-order").await;
    let tail = &types(&events)[events.len() - 5..];
    assert_eq!(
        tail,
        [
            WorkflowTaskCompleted,
            ActivityTaskStarted,
            WorkflowExecutionSignaled,
            ActivityTaskCompleted,
            WorkflowTaskScheduled
        ]
    );
    let started = &events[events.len() - 4];
    let Some(Attributes::ActivityTaskCompletedEventAttributes(done)) =
        &events[events.len() - 2].attributes
    else {
        panic!()
    };
    assert_eq!(
        done.started_event_id, started.event_id,
        "completion names its transient started event"
    );
    assert_ids_sequential(&events);
    server.shutdown().await;
}

#[tokio::test]
async fn retried_activity_writes_started_once_with_final_attempt() {
    let (server, mut c) = setup().await;
    let run_id = start(&mut c, "wf-retry", "q-retry").await;
    let task = poll_wft(&mut c, "q-retry").await;
    complete(&mut c, task.task_token, vec![activity_cmd("1", "q-retry", 3)]).await.unwrap();
    let fail = |token: Vec<u8>| RespondActivityTaskFailedRequest {
        namespace: NS.into(),
        task_token: token,
        failure: Some(Failure {
            message: "boom".into(),
            failure_info: Some(FailureInfo::ApplicationFailureInfo(ApplicationFailureInfo {
                r#type: "Boom".into(),
                ..Default::default()
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let a1 = poll_activity(&mut c, "q-retry").await;
    assert_eq!(a1.attempt, 1);
    c.respond_activity_task_failed(fail(a1.task_token.clone())).await.unwrap();
    let len_after_fail = history(&mut c, "wf-retry").await.len();
    assert_eq!(len_after_fail, 5, "a retried failure writes no events");
    let d = c
        .describe_workflow_execution(DescribeWorkflowExecutionRequest {
            namespace: NS.into(),
            execution: Some(WorkflowExecution {
                workflow_id: "wf-retry".into(),
                run_id: run_id.clone(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let pending = &d.pending_activities[0];
    assert_eq!(pending.attempt, 2);
    assert_eq!(pending.last_failure.as_ref().unwrap().message, "boom");
    assert!(pending.next_attempt_schedule_time.is_some());
    // The stale token of attempt 1 is refused.
    let stale = c.respond_activity_task_failed(fail(a1.task_token)).await.unwrap_err();
    assert_eq!(stale.code(), Code::NotFound);
    let a2 = poll_activity(&mut c, "q-retry").await;
    assert_eq!(a2.attempt, 2);
    c.respond_activity_task_failed(fail(a2.task_token)).await.unwrap();
    let a3 = poll_activity(&mut c, "q-retry").await;
    assert_eq!(a3.attempt, 3);
    c.respond_activity_task_failed(fail(a3.task_token)).await.unwrap();
    let events = history(&mut c, "wf-retry").await;
    assert_eq!(
        types(&events)[4..],
        [ActivityTaskScheduled, ActivityTaskStarted, ActivityTaskFailed, WorkflowTaskScheduled]
    );
    let Some(Attributes::ActivityTaskStartedEventAttributes(st)) = &events[5].attributes else {
        panic!()
    };
    assert_eq!(st.attempt, 3);
    let Some(Attributes::ActivityTaskFailedEventAttributes(f)) = &events[6].attributes else {
        panic!()
    };
    assert_eq!(
        f.retry_state,
        temporalio_protos::temporal::api::enums::v1::RetryState::MaximumAttemptsReached as i32
    );
    assert_eq!(f.started_event_id, 6);
    server.shutdown().await;
}

#[tokio::test]
async fn day_long_timer_fires_when_time_is_skipped() {
    let (server, mut c) = setup().await;
    start(&mut c, "wf-timer", "q-timer").await;
    let task = poll_wft(&mut c, "q-timer").await;
    complete(&mut c, task.task_token, vec![timer_cmd("day", 86_400)]).await.unwrap();
    let before = server.time().now();
    let wall = std::time::Instant::now();
    server.time().skip(Duration::from_secs(86_400)).await;
    assert!(wall.elapsed() < Duration::from_secs(5), "skipping a day took {:?}", wall.elapsed());
    // The fired timer scheduled a workflow task nobody has polled: in-flight work holds the
    // clock at wall speed, as in the Java test server, so a further skip cannot jump.
    let held = std::time::Instant::now();
    let skipped_to = server.time().now();
    tokio::time::timeout(Duration::from_millis(300), server.time().skip(Duration::from_secs(3600)))
        .await
        .unwrap_err();
    assert!(held.elapsed() >= Duration::from_millis(300));
    assert!(server.time().now().duration_since(skipped_to).unwrap() < Duration::from_secs(60));
    assert!(server.time().now().duration_since(before).unwrap() >= Duration::from_secs(86_400));
    let events = history(&mut c, "wf-timer").await;
    assert_eq!(types(&events)[4..], [TimerStarted, TimerFired, WorkflowTaskScheduled]);
    // The fire is stamped with virtual time, a day after the start.
    let started_at = events[4].event_time.as_ref().unwrap().seconds;
    let fired_at = events[5].event_time.as_ref().unwrap().seconds;
    assert_eq!(fired_at - started_at, 86_400);
    server.shutdown().await;
}

#[tokio::test]
async fn duplicate_ids_follow_reuse_and_conflict_policies() {
    let (server, mut c) = setup().await;
    let req = start_req("wf-dup", "q-dup");
    let first = c.start_workflow_execution(req.clone()).await.unwrap().into_inner();
    // A retried request (same request id) gets the same run.
    let again = c.start_workflow_execution(req).await.unwrap().into_inner();
    assert_eq!(again.run_id, first.run_id);
    let err = c.start_workflow_execution(start_req("wf-dup", "q-dup")).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let status = temporalio_protos::google::rpc::Status::decode(err.details()).unwrap();
    let detail =
        WorkflowExecutionAlreadyStartedFailure::decode(status.details[0].value.as_slice()).unwrap();
    assert_eq!(detail.run_id, first.run_id);
    // Close it, then RejectDuplicate refuses a new run while AllowDuplicate starts one.
    let task = poll_wft(&mut c, "q-dup").await;
    complete(&mut c, task.task_token, vec![complete_cmd()]).await.unwrap();
    let mut reject = start_req("wf-dup", "q-dup");
    reject.workflow_id_reuse_policy = WorkflowIdReusePolicy::RejectDuplicate as i32;
    assert_eq!(c.start_workflow_execution(reject).await.unwrap_err().code(), Code::AlreadyExists);
    let second =
        c.start_workflow_execution(start_req("wf-dup", "q-dup")).await.unwrap().into_inner();
    assert_ne!(second.run_id, first.run_id);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_temporal_statuses() {
    let (server, mut c) = setup().await;
    let mut req = start_req("wf-bad", "q-bad");
    req.namespace = "nope".into();
    let err = c.start_workflow_execution(req).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("nope"), "{}", err.message());

    let mut req = start_req("", "q-bad");
    req.workflow_id.clear();
    let err = c.start_workflow_execution(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("WorkflowId"));

    let err = complete(&mut c, b"garbage".to_vec(), vec![]).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let err = c
        .list_schedules(ListSchedulesRequest { namespace: NS.into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.message().contains("ListSchedules"), "{}", err.message());

    let err = c
        .signal_workflow_execution(SignalWorkflowExecutionRequest {
            namespace: NS.into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: "missing".into(),
                run_id: String::new(),
            }),
            signal_name: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    server.shutdown().await;
}

#[tokio::test]
async fn completion_of_timed_out_task_is_not_found() {
    let (server, mut c) = setup().await;
    let mut req = start_req("wf-late", "q-late");
    req.workflow_task_timeout = Some(prost_wkt_types::Duration { seconds: 1, nanos: 0 });
    c.start_workflow_execution(req).await.unwrap();
    let task = poll_wft(&mut c, "q-late").await;
    // The task is in flight, so time runs at wall speed: wait for the 1 s timeout to land.
    let retry = poll_wft(&mut c, "q-late").await;
    assert_eq!(retry.attempt, 2);
    let err = complete(&mut c, task.task_token, vec![complete_cmd()]).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let events = history(&mut c, "wf-late").await;
    assert_eq!(
        types(&events)[2..],
        [WorkflowTaskStarted, WorkflowTaskTimedOut, WorkflowTaskScheduled, WorkflowTaskStarted]
    );
    complete(&mut c, retry.task_token, vec![complete_cmd()]).await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn test_service_locks_like_the_java_test_server() {
    use temporalio_protos::{
        grpc::health::v1::{HealthCheckRequest, health_client::HealthClient},
        temporal::api::testservice::v1::{
            LockTimeSkippingRequest, SleepRequest, UnlockTimeSkippingRequest,
            test_service_client::TestServiceClient,
        },
    };
    let (server, mut c) = setup().await;
    let mut ts = TestServiceClient::connect(server.url()).await.unwrap();
    let now = |t: prost_wkt_types::Timestamp| t.seconds;
    let t0 = now(ts.get_current_time(()).await.unwrap().into_inner().time.unwrap());

    // Started locked (one lock); a client adds a second. Two unlocks balance them, a third
    // is refused.
    ts.lock_time_skipping(LockTimeSkippingRequest::default()).await.unwrap();
    ts.unlock_time_skipping(UnlockTimeSkippingRequest::default()).await.unwrap();
    ts.unlock_time_skipping(UnlockTimeSkippingRequest::default()).await.unwrap();
    let err = ts.unlock_time_skipping(UnlockTimeSkippingRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    ts.lock_time_skipping(LockTimeSkippingRequest::default()).await.unwrap();

    // An hour-long timer, then an hour of UnlockTimeSkippingWithSleep: returns at once, an
    // hour later in virtual time, and locked again (time follows the wall clock after).
    start(&mut c, "wf-ts", "q-ts").await;
    let task = poll_wft(&mut c, "q-ts").await;
    complete(&mut c, task.task_token, vec![timer_cmd("hour", 3600)]).await.unwrap();
    let wall = std::time::Instant::now();
    let hour = Some(prost_wkt_types::Duration { seconds: 3600, nanos: 0 });
    ts.unlock_time_skipping_with_sleep(SleepRequest { duration: hour }).await.unwrap();
    assert!(wall.elapsed() < Duration::from_secs(5));
    let t1 = now(ts.get_current_time(()).await.unwrap().into_inner().time.unwrap());
    assert!(t1 - t0 >= 3600, "virtual time moved {}s", t1 - t0);
    assert_eq!(types(&history(&mut c, "wf-ts").await)[5], TimerFired);
    // Relocked: the clock now runs at wall speed.
    let t2 = now(ts.get_current_time(()).await.unwrap().into_inner().time.unwrap());
    assert!(t2 - t1 < 60);

    let mut health = HealthClient::connect(server.url()).await.unwrap();
    let status =
        health.check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert_eq!(status.status, 1, "SERVING");
    server.shutdown().await;
}

mod interaction {
    use super::*;
    use temporalio_protos::temporal::api::command::v1::ContinueAsNewWorkflowExecutionCommandAttributes;
    use temporalio_protos::temporal::api::common::v1::WorkflowType;
    use temporalio_protos::temporal::api::failure::v1::failure::FailureInfo;
    use temporalio_protos::temporal::api::{
        command::v1::ProtocolMessageCommandAttributes,
        enums::v1::{
            QueryRejectCondition, QueryResultType, UpdateWorkflowExecutionLifecycleStage as Stage,
        },
        protocol::v1::{Message, message::SequencingId},
        query::v1::{WorkflowQuery, WorkflowQueryResult},
        update::v1::{
            Acceptance, Input, Meta, Outcome, Rejection, Request as UpdateRequest,
            Response as UpdateResponse, WaitPolicy, outcome,
        },
    };

    /// The command that places protocol message `id` among a task's commands.
    fn pm(id: &str) -> Command {
        Command {
            command_type: CommandType::ProtocolMessage as i32,
            attributes: Some(Cmd::ProtocolMessageCommandAttributes(
                ProtocolMessageCommandAttributes { message_id: id.into() },
            )),
            ..Default::default()
        }
    }

    fn payloads(s: &str) -> Option<Payloads> {
        Some(Payloads {
            payloads: vec![temporalio_protos::temporal::api::common::v1::Payload {
                data: s.as_bytes().to_vec(),
                ..Default::default()
            }],
        })
    }

    fn query_req(id: &str, reject: QueryRejectCondition) -> QueryWorkflowRequest {
        QueryWorkflowRequest {
            namespace: NS.into(),
            execution: Some(WorkflowExecution { workflow_id: id.into(), run_id: String::new() }),
            query: Some(WorkflowQuery { query_type: "state".into(), ..Default::default() }),
            query_reject_condition: reject as i32,
        }
    }

    /// Runs the first task to a pending timer, so no workflow task is outstanding.
    async fn idle_workflow(c: &mut Client, id: &str, queue: &str) {
        start(c, id, queue).await;
        let task = poll_wft(c, queue).await;
        complete(c, task.task_token, vec![timer_cmd("t", 3600)]).await.unwrap();
    }

    #[tokio::test]
    async fn legacy_query_task_answers_an_idle_workflow() {
        let (server, mut c) = setup().await;
        idle_workflow(&mut c, "wf-q", "q-q").await;
        let mut qc = c.clone();
        let query = tokio::spawn(async move {
            qc.query_workflow(query_req("wf-q", QueryRejectCondition::None)).await
        });
        let task = poll_wft(&mut c, "q-q").await;
        let q = task.query.expect("a legacy query task");
        assert_eq!(q.query_type, "state");
        assert_eq!(task.started_event_id, 0);
        assert_eq!(task.previous_started_event_id, 3);
        assert_eq!(task.history.unwrap().events.len(), 5, "full history");
        c.respond_query_task_completed(RespondQueryTaskCompletedRequest {
            namespace: NS.into(),
            task_token: task.task_token,
            completed_type: QueryResultType::Answered as i32,
            query_result: payloads("open"),
            ..Default::default()
        })
        .await
        .unwrap();
        let answer = query.await.unwrap().unwrap().into_inner();
        assert_eq!(answer.query_result, payloads("open"));
        assert_eq!(history(&mut c, "wf-q").await.len(), 5, "queries write no events");
        server.shutdown().await;
    }

    /// A query queued as its own task, then overtaken by a signal before any worker polled:
    /// the poller gets the signal's workflow task with the query attached, never a query task
    /// whose history holds the signal. (Core would run the workflow forward on that history
    /// inside the query, and the commands it wrote there would be lost; the chaos bench found
    /// updates accepted twice that way.)
    #[tokio::test]
    async fn a_queued_query_overtaken_by_new_events_rides_their_task() {
        let (server, mut c) = setup().await;
        idle_workflow(&mut c, "wf-qo", "q-qo").await;
        let mut qc = c.clone();
        let query = tokio::spawn(async move {
            qc.query_workflow(query_req("wf-qo", QueryRejectCondition::None)).await
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while server.engine().stats().pending_queries == 0 {
            assert!(std::time::Instant::now() < deadline, "query never arrived");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        signal(&mut c, "wf-qo", "nudge").await;

        let task = poll_wft(&mut c, "q-qo").await;
        assert!(task.query.is_none(), "a query task was handed out over the signal");
        assert_ne!(task.started_event_id, 0, "a workflow task");
        let (qid, q) = task.queries.iter().next().expect("the query rides the task");
        assert_eq!(q.query_type, "state");
        let types: Vec<i32> =
            task.history.as_ref().unwrap().events.iter().map(|e| e.event_type).collect();
        assert!(types.contains(&(EventType::WorkflowExecutionSignaled as i32)));
        let mut results = std::collections::HashMap::new();
        results.insert(
            qid.clone(),
            WorkflowQueryResult {
                result_type: QueryResultType::Answered as i32,
                answer: payloads("signalled"),
                ..Default::default()
            },
        );
        c.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
            namespace: NS.into(),
            task_token: task.task_token,
            query_results: results,
            ..Default::default()
        })
        .await
        .unwrap();
        let answer = query.await.unwrap().unwrap().into_inner();
        assert_eq!(answer.query_result, payloads("signalled"));
        server.shutdown().await;
    }

    #[tokio::test]
    async fn query_rides_a_pending_task_and_reject_condition_applies_when_closed() {
        let (server, mut c) = setup().await;
        start(&mut c, "wf-qa", "q-qa").await;
        let mut qc = c.clone();
        let query = tokio::spawn(async move {
            qc.query_workflow(query_req("wf-qa", QueryRejectCondition::None)).await
        });
        // Wait until the query is registered on the pending task, then start the task.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while server.engine().stats().pending_queries == 0 {
            assert!(std::time::Instant::now() < deadline, "query never arrived");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let task = poll_wft(&mut c, "q-qa").await;
        let (qid, q) = task.queries.iter().next().unwrap();
        assert_eq!(q.query_type, "state");
        let mut results = std::collections::HashMap::new();
        results.insert(
            qid.clone(),
            WorkflowQueryResult {
                result_type: QueryResultType::Answered as i32,
                answer: payloads("attached"),
                ..Default::default()
            },
        );
        c.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
            namespace: NS.into(),
            task_token: task.task_token,
            commands: vec![complete_cmd()],
            query_results: results,
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(query.await.unwrap().unwrap().into_inner().query_result, payloads("attached"));
        let rejected = c
            .query_workflow(query_req("wf-qa", QueryRejectCondition::NotOpen))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(rejected.query_rejected.unwrap().status, 2, "COMPLETED");
        server.shutdown().await;
    }

    fn update_req(id: &str, update_id: &str, stage: Stage) -> UpdateWorkflowExecutionRequest {
        UpdateWorkflowExecutionRequest {
            namespace: NS.into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: id.into(),
                run_id: String::new(),
            }),
            wait_policy: Some(WaitPolicy { lifecycle_stage: stage as i32 }),
            request: Some(UpdateRequest {
                meta: Some(Meta { update_id: update_id.into(), identity: "probe".into() }),
                input: Some(Input { name: "send".into(), args: payloads("hi"), header: None }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn any<M: prost::Message>(name: &str, m: &M) -> Option<prost_wkt_types::Any> {
        Some(prost_wkt_types::Any {
            type_url: format!("type.googleapis.com/temporal.api.update.v1.{name}"),
            value: m.encode_to_vec(),
        })
    }

    #[tokio::test]
    async fn rejected_update_writes_no_events() {
        let (server, mut c) = setup().await;
        idle_workflow(&mut c, "wf-ur", "q-ur").await;
        let before = history(&mut c, "wf-ur").await.len();
        let mut uc = c.clone();
        let update = tokio::spawn(async move {
            uc.update_workflow_execution(update_req("wf-ur", "u1", Stage::Completed)).await
        });
        let task = poll_wft(&mut c, "q-ur").await;
        let msg = &task.messages[0];
        assert_eq!(msg.id, "u1/request");
        assert_eq!(msg.sequencing_id, Some(SequencingId::EventId(task.started_event_id - 1)));
        assert_eq!(
            task.history.as_ref().unwrap().events.len() as i64,
            task.started_event_id,
            "task shows its scheduled and started events"
        );
        let rejection = Rejection {
            rejected_request_message_id: msg.id.clone(),
            failure: Some(Failure { message: "no window".into(), ..Default::default() }),
            ..Default::default()
        };
        let done = c
            .respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
                namespace: NS.into(),
                task_token: task.task_token,
                messages: vec![Message {
                    id: "u1/reject".into(),
                    protocol_instance_id: "u1".into(),
                    body: any("Rejection", &rejection),
                    sequencing_id: None,
                }],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            done.reset_history_event_id, 3,
            "the discarded task tells the worker to roll back to the last real WorkflowTaskStarted"
        );
        let resp = update.await.unwrap().unwrap().into_inner();
        assert_eq!(resp.stage, Stage::Completed as i32);
        let Some(Outcome { value: Some(outcome::Value::Failure(f)) }) = resp.outcome else {
            panic!("expected a failure outcome")
        };
        assert_eq!(f.message, "no window");
        assert_eq!(
            history(&mut c, "wf-ur").await.len(),
            before,
            "a rejected update leaves no trace"
        );
        // Nothing is pending afterwards: time can skip freely again.
        server.shutdown().await;
    }

    #[tokio::test]
    async fn reset_reapplies_accepted_updates_as_admitted_events() {
        let (server, mut c) = setup().await;
        idle_workflow(&mut c, "wf-ureset", "q-ureset").await; // WFT completed at event 4
        let mut uc = c.clone();
        let update = tokio::spawn(async move {
            uc.update_workflow_execution(update_req("wf-ureset", "u9", Stage::Accepted)).await
        });
        let task = poll_wft(&mut c, "q-ureset").await;
        let accept = Acceptance {
            accepted_request_message_id: task.messages[0].id.clone(),
            accepted_request_sequencing_event_id: task.started_event_id - 1,
            accepted_request: None,
        };
        c.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
            namespace: NS.into(),
            task_token: task.task_token,
            commands: vec![Command {
                command_type: CommandType::ProtocolMessage as i32,
                attributes: Some(Cmd::ProtocolMessageCommandAttributes(
                    ProtocolMessageCommandAttributes { message_id: "u9/accept".into() },
                )),
                ..Default::default()
            }],
            messages: vec![Message {
                id: "u9/accept".into(),
                protocol_instance_id: "u9".into(),
                body: any("Acceptance", &accept),
                sequencing_id: None,
            }],
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(update.await.unwrap().unwrap().into_inner().stage, Stage::Accepted as i32);
        c.reset_workflow_execution(ResetWorkflowExecutionRequest {
            namespace: NS.into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: "wf-ureset".into(),
                run_id: String::new(),
            }),
            workflow_task_finish_event_id: 4,
            reason: "replay the update".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        let events = history(&mut c, "wf-ureset").await;
        assert_eq!(
            types(&events),
            [
                WorkflowExecutionStarted,
                WorkflowTaskScheduled,
                WorkflowTaskStarted,
                WorkflowTaskFailed,
                WorkflowExecutionUpdateAdmitted,
                WorkflowTaskScheduled
            ]
        );
        let Some(Attributes::WorkflowExecutionUpdateAdmittedEventAttributes(a)) =
            &events[4].attributes
        else {
            panic!()
        };
        assert_eq!(a.request.as_ref().unwrap().meta.as_ref().unwrap().update_id, "u9");
        // The worker reads the update from the Admitted event; it is not sent twice.
        let task = poll_wft(&mut c, "q-ureset").await;
        assert!(task.messages.is_empty());
        server.shutdown().await;
    }

    #[tokio::test]
    async fn accepted_and_completed_update_writes_its_events() {
        let (server, mut c) = setup().await;
        idle_workflow(&mut c, "wf-ua", "q-ua").await;
        let mut uc = c.clone();
        let update = tokio::spawn(async move {
            uc.update_workflow_execution(update_req("wf-ua", "u2", Stage::Completed)).await
        });
        let task = poll_wft(&mut c, "q-ua").await;
        let msg = task.messages[0].clone();
        let accept = Acceptance {
            accepted_request_message_id: msg.id.clone(),
            accepted_request_sequencing_event_id: task.started_event_id - 1,
            accepted_request: None,
        };
        let respond = UpdateResponse {
            meta: Some(Meta { update_id: "u2".into(), identity: String::new() }),
            outcome: Some(Outcome {
                value: Some(outcome::Value::Success(payloads("sent").unwrap())),
            }),
        };
        c.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
            namespace: NS.into(),
            task_token: task.task_token,
            commands: vec![pm("u2/accept"), pm("u2/complete")],
            messages: vec![
                Message {
                    id: "u2/accept".into(),
                    protocol_instance_id: "u2".into(),
                    body: any("Acceptance", &accept),
                    sequencing_id: None,
                },
                Message {
                    id: "u2/complete".into(),
                    protocol_instance_id: "u2".into(),
                    body: any("Response", &respond),
                    sequencing_id: None,
                },
            ],
            ..Default::default()
        })
        .await
        .unwrap();
        let resp = update.await.unwrap().unwrap().into_inner();
        assert_eq!(resp.stage, Stage::Completed as i32);
        assert_eq!(
            resp.outcome.unwrap().value,
            Some(outcome::Value::Success(payloads("sent").unwrap()))
        );
        let events = history(&mut c, "wf-ua").await;
        assert_eq!(
            types(&events)[5..],
            [
                WorkflowTaskScheduled,
                WorkflowTaskStarted,
                WorkflowTaskCompleted,
                WorkflowExecutionUpdateAccepted,
                WorkflowExecutionUpdateCompleted
            ]
        );
        assert_ids_sequential(&events);
        // The same update id again returns the recorded outcome and admits nothing new.
        let again = c
            .update_workflow_execution(update_req("wf-ua", "u2", Stage::Completed))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.stage, Stage::Completed as i32);
        assert_eq!(history(&mut c, "wf-ua").await.len(), events.len());
        server.shutdown().await;
    }

    /// A run that closes in the task that accepted an update, or in one that ignored it: the
    /// accepted update's caller gets its failure (not an error), the other's gets NOT_FOUND,
    /// and a continue-as-new tells the other to retry (RESOURCE_EXHAUSTED), as the Temporal
    /// server does.
    #[tokio::test]
    async fn updates_in_flight_when_the_run_closes() {
        let (server, mut c) = setup().await;
        let continue_as_new = || Command {
            command_type: CommandType::ContinueAsNewWorkflowExecution as i32,
            attributes: Some(Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(
                ContinueAsNewWorkflowExecutionCommandAttributes {
                    workflow_type: Some(WorkflowType { name: "Probe".into() }),
                    task_queue: tq("q-uclose"),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        for (n, (accept, close)) in
            [(true, complete_cmd()), (false, complete_cmd()), (false, continue_as_new())]
                .into_iter()
                .enumerate()
        {
            let id = format!("wf-uclose-{n}");
            idle_workflow(&mut c, &id, "q-uclose").await;
            let mut uc = c.clone();
            let target = id.clone();
            let update = tokio::spawn(async move {
                uc.update_workflow_execution(update_req(&target, "u1", Stage::Completed)).await
            });
            let task = poll_wft(&mut c, "q-uclose").await;
            let msg = task.messages[0].clone();
            let acceptance = Acceptance {
                accepted_request_message_id: msg.id.clone(),
                accepted_request_sequencing_event_id: task.started_event_id - 1,
                accepted_request: None,
            };
            let (commands, messages) = if accept {
                let message = Message {
                    id: "u1/accept".into(),
                    protocol_instance_id: "u1".into(),
                    body: any("Acceptance", &acceptance),
                    sequencing_id: None,
                };
                (vec![pm("u1/accept"), close], vec![message])
            } else {
                (vec![close], vec![])
            };
            c.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
                namespace: NS.into(),
                task_token: task.task_token,
                commands,
                messages,
                ..Default::default()
            })
            .await
            .unwrap();
            let answer = update.await.unwrap();
            match (accept, n) {
                (true, _) => {
                    let resp = answer.unwrap().into_inner();
                    assert_eq!(resp.stage, Stage::Completed as i32);
                    let Some(outcome::Value::Failure(f)) = resp.outcome.unwrap().value else {
                        panic!("a failure outcome")
                    };
                    let Some(FailureInfo::ApplicationFailureInfo(info)) = f.failure_info else {
                        panic!("{f:?}")
                    };
                    assert_eq!(info.r#type, "AcceptedUpdateCompletedWorkflow");
                    assert!(info.non_retryable);
                }
                (false, 1) => assert_eq!(answer.unwrap_err().code(), tonic::Code::NotFound),
                _ => assert_eq!(answer.unwrap_err().code(), tonic::Code::ResourceExhausted),
            }
        }
        server.shutdown().await;
    }
}

#[tokio::test]
async fn continue_as_new_chains_runs_and_is_suggested_past_the_limit() {
    use temporalio_protos::temporal::api::command::v1::ContinueAsNewWorkflowExecutionCommandAttributes;
    let config = DevServerConfig {
        long_poll_timeout: Duration::from_secs(5),
        suggest_continue_as_new_events: 5,
        ..DevServerConfig::ephemeral()
    };
    let server = DevServer::start(config).await.unwrap();
    let mut c = WorkflowServiceClient::connect(server.url()).await.unwrap();
    let first_run = start(&mut c, "wf-can", "q-can").await;
    let task = poll_wft(&mut c, "q-can").await;
    let started = |t: &PollWorkflowTaskQueueResponse| match &t
        .history
        .as_ref()
        .unwrap()
        .events
        .last()
        .unwrap()
        .attributes
    {
        Some(Attributes::WorkflowTaskStartedEventAttributes(a)) => a.suggest_continue_as_new,
        _ => panic!("last event is WorkflowTaskStarted"),
    };
    assert!(!started(&task), "3 events: no suggestion yet");
    complete(&mut c, task.task_token, vec![timer_cmd("t", 3600)]).await.unwrap();
    signal(&mut c, "wf-can", "more").await;
    let task = poll_wft(&mut c, "q-can").await;
    assert!(started(&task), "past 5 events the task suggests continue-as-new");
    let can = Command {
        command_type: CommandType::ContinueAsNewWorkflowExecution as i32,
        attributes: Some(Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(
            ContinueAsNewWorkflowExecutionCommandAttributes {
                input: Some(Payloads::default()),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    complete(&mut c, task.task_token, vec![can]).await.unwrap();
    // The old run closes with a pointer to the new one, which a result-waiter follows.
    let close = c
        .get_workflow_execution_history(GetWorkflowExecutionHistoryRequest {
            namespace: NS.into(),
            execution: Some(WorkflowExecution {
                workflow_id: "wf-can".into(),
                run_id: first_run.clone(),
            }),
            wait_new_event: true,
            history_event_filter_type:
                temporalio_protos::temporal::api::enums::v1::HistoryEventFilterType::CloseEvent
                    as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .history
        .unwrap()
        .events;
    let Some(Attributes::WorkflowExecutionContinuedAsNewEventAttributes(a)) = &close[0].attributes
    else {
        panic!("{close:?}")
    };
    let new_run = a.new_execution_run_id.clone();
    assert_ne!(new_run, first_run);
    let events = history(&mut c, "wf-can").await; // current run
    let Some(Attributes::WorkflowExecutionStartedEventAttributes(s)) = &events[0].attributes else {
        panic!()
    };
    assert_eq!(s.continued_execution_run_id, first_run);
    assert_eq!(s.first_execution_run_id, first_run);
    // Continued within a second of its start, the new run waits out the rest of that second
    // before its first task, as on the Temporal server (no tight continue-as-new loops).
    let backoff = s.first_workflow_task_backoff.expect("a first task backoff");
    assert!(backoff.seconds == 0 && backoff.nanos > 0, "{backoff:?}");
    assert_eq!(types(&events), [WorkflowExecutionStarted]);
    let task = poll_wft(&mut c, "q-can").await;
    assert_eq!(task.workflow_execution.unwrap().run_id, new_run);
    server.shutdown().await;
}

#[tokio::test]
async fn restart_on_the_same_file_resumes_timers_activities_and_history() {
    let dir = std::env::temp_dir().join(format!("convo-devserver-restart-{}", uuid()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("dev.db");
    let config = || DevServerConfig {
        long_poll_timeout: Duration::from_secs(5),
        db_filename: Some(db.clone()),
        ..DevServerConfig::ephemeral()
    };

    let server = DevServer::start(config()).await.unwrap();
    let mut c = WorkflowServiceClient::connect(server.url()).await.unwrap();
    let run_id = start(&mut c, "wf-dur", "q-dur").await;
    let task = poll_wft(&mut c, "q-dur").await;
    let mut act = activity_cmd("1", "q-dur", 0);
    if let Some(Cmd::ScheduleActivityTaskCommandAttributes(a)) = &mut act.attributes {
        a.start_to_close_timeout = Some(prost_wkt_types::Duration { seconds: 1, nanos: 0 });
    }
    complete(&mut c, task.task_token, vec![timer_cmd("hour", 3600), act]).await.unwrap();
    let attempt1 = poll_activity(&mut c, "q-dur").await;
    assert_eq!(attempt1.attempt, 1);
    let before = history(&mut c, "wf-dur").await;
    let clock_before = server.time().now();
    server.shutdown().await;

    // A new server on the same file: same history, same run, and the started activity's
    // timeout still holds, so it is retried.
    let server = DevServer::start(config()).await.unwrap();
    assert!(server.time().now() >= clock_before, "virtual time never runs backwards");
    let mut c = WorkflowServiceClient::connect(server.url()).await.unwrap();
    let after = history(&mut c, "wf-dur").await;
    assert_eq!(after, before);
    let attempt2 = poll_activity(&mut c, "q-dur").await;
    assert_eq!(attempt2.attempt, 2);
    assert_eq!(attempt2.workflow_execution.unwrap().run_id, run_id);
    c.respond_activity_task_completed(RespondActivityTaskCompletedRequest {
        namespace: NS.into(),
        task_token: attempt2.task_token,
        ..Default::default()
    })
    .await
    .unwrap();
    let task = poll_wft(&mut c, "q-dur").await;
    complete(&mut c, task.task_token, vec![]).await.unwrap();
    // The hour-long timer survived the restart.
    server.time().skip(Duration::from_secs(3600)).await;
    let events = history(&mut c, "wf-dur").await;
    assert_eq!(
        types(&events)[before.len()..],
        [
            ActivityTaskStarted,
            ActivityTaskCompleted,
            WorkflowTaskScheduled,
            WorkflowTaskStarted,
            WorkflowTaskCompleted,
            TimerFired,
            WorkflowTaskScheduled
        ]
    );
    assert_ids_sequential(&events);
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// In memory, an idle run is frozen into one compressed blob. Reads (list, count, describe,
/// history) leave it frozen and see all of it; a change (a signal, its timer firing, its
/// close) thaws it with nothing lost, and it freezes again once idle.
#[tokio::test]
async fn idle_runs_are_frozen_in_memory_and_thawed_by_any_change() {
    use temporalio_protos::temporal::api::common::v1::{Memo, Payload};
    let (server, mut c) = setup().await;
    let frozen = || server.engine().stats().frozen;
    let memo = |i: usize| Memo {
        fields: [(
            "contact".to_owned(),
            Payload { data: format!("+49151{i:05}").into_bytes(), ..Default::default() },
        )]
        .into(),
    };
    for i in 0..10 {
        let mut req = start_req(&format!("frz-{i}"), "q-frz");
        req.memo = Some(memo(i));
        c.start_workflow_execution(req).await.unwrap();
        let task = poll_wft(&mut c, "q-frz").await;
        complete(&mut c, task.task_token, vec![timer_cmd("window", 86_400)]).await.unwrap();
    }
    assert_eq!(frozen(), 10);
    let before = history(&mut c, "frz-3").await;
    assert_eq!(
        types(&before),
        [
            WorkflowExecutionStarted,
            WorkflowTaskScheduled,
            WorkflowTaskStarted,
            WorkflowTaskCompleted,
            TimerStarted
        ]
    );
    let (blobs, _) = server.engine().stats().frozen_bytes;
    let histories = 10 * before.iter().map(|e| e.encoded_len()).sum::<usize>();
    assert!(blobs < histories, "10 frozen runs take {blobs} bytes, their histories {histories}");

    let listed = c
        .list_workflow_executions(ListWorkflowExecutionsRequest {
            namespace: NS.into(),
            query: "WorkflowType = 'Probe' AND ExecutionStatus = 'Running' ORDER BY WorkflowId"
                .into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .executions;
    let ids: Vec<_> =
        listed.iter().map(|e| e.execution.as_ref().unwrap().workflow_id.as_str()).collect();
    assert_eq!(ids, (0..10).map(|i| format!("frz-{i}")).collect::<Vec<_>>());
    assert!(listed.iter().enumerate().all(|(i, e)| e.memo.as_ref() == Some(&memo(i))));
    let described = c
        .describe_workflow_execution(DescribeWorkflowExecutionRequest {
            namespace: NS.into(),
            execution: Some(WorkflowExecution {
                workflow_id: "frz-3".into(),
                run_id: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let info = described.workflow_execution_info.unwrap();
    assert_eq!(info.history_length, 5);
    assert_eq!(info.memo, Some(memo(3)));
    assert_eq!(frozen(), 10, "reads leave runs frozen");

    // A signal thaws the run; its worker sees the whole history, then it freezes again.
    signal(&mut c, "frz-3", "poke").await;
    assert_eq!(frozen(), 9);
    let task = poll_wft(&mut c, "q-frz").await;
    let events = task.history.unwrap().events;
    assert_eq!(events[..5], before[..]);
    assert_eq!(
        types(&events[5..]),
        [WorkflowExecutionSignaled, WorkflowTaskScheduled, WorkflowTaskStarted]
    );
    complete(&mut c, task.task_token, vec![]).await.unwrap();
    assert_eq!(frozen(), 10);

    // A day later every frozen timer fires; the runs close and freeze as closed runs.
    server.time().skip(Duration::from_secs(86_400)).await;
    let mut fired = Vec::new();
    for _ in 0..10 {
        let task = poll_wft(&mut c, "q-frz").await;
        let events = task.history.unwrap().events;
        assert_ids_sequential(&events);
        let tail = &events[events.len() - 3..];
        assert_eq!(types(tail), [TimerFired, WorkflowTaskScheduled, WorkflowTaskStarted]);
        fired.push(task.workflow_execution.unwrap().workflow_id);
        complete(&mut c, task.task_token, vec![complete_cmd()]).await.unwrap();
    }
    fired.sort();
    assert_eq!(fired, (0..10).map(|i| format!("frz-{i}")).collect::<Vec<_>>());
    assert_eq!(frozen(), 10);
    let count = |q: &str| {
        let mut c = c.clone();
        let q = q.to_owned();
        async move {
            c.count_workflow_executions(CountWorkflowExecutionsRequest {
                namespace: NS.into(),
                query: q,
            })
            .await
            .unwrap()
            .into_inner()
            .count
        }
    };
    assert_eq!(count("ExecutionStatus = 'Completed'").await, 10);
    assert_eq!(count("ExecutionStatus = 'Running'").await, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn idle_runs_keep_their_history_only_in_the_file_and_read_it_back() {
    let dir = std::env::temp_dir().join(format!("convo-devserver-evict-{}", uuid()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = DevServer::start(DevServerConfig {
        long_poll_timeout: Duration::from_secs(5),
        db_filename: Some(dir.join("dev.db")),
        ..DevServerConfig::ephemeral()
    })
    .await
    .unwrap();
    let mut c = WorkflowServiceClient::connect(server.url()).await.unwrap();
    let resident = || server.engine().stats().resident_histories;
    let base_run = start(&mut c, "wf-evict", "q-evict").await;
    let task = poll_wft(&mut c, "q-evict").await;
    complete(&mut c, task.task_token, vec![timer_cmd("t1", 3600)]).await.unwrap();
    // Answered once durable, by which time the idle run is frozen, its history only in the
    // file.
    assert_eq!(resident(), 0);
    assert_eq!(server.engine().stats().frozen, 1);
    let before = history(&mut c, "wf-evict").await;
    assert_eq!(
        types(&before),
        [
            WorkflowExecutionStarted,
            WorkflowTaskScheduled,
            WorkflowTaskStarted,
            WorkflowTaskCompleted,
            TimerStarted
        ]
    );
    assert_eq!(resident(), 0, "a read leaves the run idle");
    let described = c
        .describe_workflow_execution(DescribeWorkflowExecutionRequest {
            namespace: NS.into(),
            execution: Some(WorkflowExecution {
                workflow_id: "wf-evict".into(),
                run_id: base_run.clone(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let info = described.workflow_execution_info.unwrap();
    assert_eq!(info.history_length, 5);
    assert_eq!(info.history_size_bytes, before.iter().map(|e| e.encoded_len() as i64).sum::<i64>());

    // A signal appends to the history read back; the worker sees all of it.
    signal(&mut c, "wf-evict", "poke").await;
    let task = poll_wft(&mut c, "q-evict").await;
    let events = task.history.unwrap().events;
    assert_eq!(events[..5], before[..]);
    assert_eq!(
        types(&events[5..]),
        [WorkflowExecutionSignaled, WorkflowTaskScheduled, WorkflowTaskStarted]
    );
    assert_ids_sequential(&events);
    complete(&mut c, task.task_token, vec![]).await.unwrap();
    assert_eq!(resident(), 0);

    // The timer fires into the evicted history.
    server.time().skip(Duration::from_secs(3600)).await;
    let task = poll_wft(&mut c, "q-evict").await;
    let events = task.history.unwrap().events;
    assert_eq!(
        types(&events[8..]),
        [WorkflowTaskCompleted, TimerFired, WorkflowTaskScheduled, WorkflowTaskStarted]
    );
    assert_ids_sequential(&events);
    complete(&mut c, task.task_token, vec![timer_cmd("t2", 3600)]).await.unwrap();
    assert_eq!(resident(), 0);

    // Reset forks the history it reads back from the file.
    let reset = c
        .reset_workflow_execution(ResetWorkflowExecutionRequest {
            namespace: NS.into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: "wf-evict".into(),
                run_id: base_run,
            }),
            workflow_task_finish_event_id: 4,
            reason: "again".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let events = history(&mut c, "wf-evict").await;
    assert_eq!(events[..3], before[..3]);
    assert_eq!(
        types(&events[3..]),
        [WorkflowTaskFailed, WorkflowExecutionSignaled, WorkflowTaskScheduled]
    );
    let task = poll_wft(&mut c, "q-evict").await;
    assert_eq!(task.workflow_execution.unwrap().run_id, reset.run_id);
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn visibility_queries_filter_order_page_and_count() {
    use temporalio_protos::temporal::api::{
        common::v1::{Payload, SearchAttributes},
        enums::v1::IndexedValueType,
        operatorservice::v1::{
            AddSearchAttributesRequest, ListSearchAttributesRequest,
            operator_service_client::OperatorServiceClient,
        },
    };
    let (server, mut c) = setup().await;
    let mut op = OperatorServiceClient::connect(server.url()).await.unwrap();
    op.add_search_attributes(AddSearchAttributesRequest {
        namespace: NS.into(),
        search_attributes: [
            ("Channel".to_owned(), IndexedValueType::Keyword as i32),
            ("Messages".to_owned(), IndexedValueType::Int as i32),
        ]
        .into(),
    })
    .await
    .unwrap();
    let listed = op
        .list_search_attributes(ListSearchAttributesRequest { namespace: NS.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.custom_attributes.get("Channel"), Some(&(IndexedValueType::Keyword as i32)));
    assert!(listed.system_attributes.contains_key("WorkflowId"));

    let sa = |channel: &str, n: i64| {
        let json = |v: String| Payload {
            metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into(),
            data: v.into_bytes(),
            ..Default::default()
        };
        Some(SearchAttributes {
            indexed_fields: [
                ("Channel".to_owned(), json(format!("{channel:?}"))),
                ("Messages".to_owned(), json(n.to_string())),
            ]
            .into(),
        })
    };
    for (id, ty, channel, n) in [
        ("vis-1", "Session", "whatsapp", 3),
        ("vis-2", "Session", "sms", 9),
        ("vis-3", "Outbound", "whatsapp", 12),
    ] {
        let mut req = start_req(id, "q-vis");
        req.workflow_type = Some(WorkflowType { name: ty.into() });
        req.search_attributes = sa(channel, n);
        c.start_workflow_execution(req).await.unwrap();
    }
    // Close vis-1.
    c.terminate_workflow_execution(TerminateWorkflowExecutionRequest {
        namespace: NS.into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: "vis-1".into(),
            run_id: String::new(),
        }),
        ..Default::default()
    })
    .await
    .unwrap();

    let list = |query: &str, page_size: i32, token: Vec<u8>| ListWorkflowExecutionsRequest {
        namespace: NS.into(),
        page_size,
        next_page_token: token,
        query: query.into(),
    };
    let ids = |r: &ListWorkflowExecutionsResponse| {
        r.executions
            .iter()
            .map(|e| e.execution.as_ref().unwrap().workflow_id.clone())
            .collect::<Vec<_>>()
    };
    let mut c2 = c.clone();
    let run = |q: &'static str| {
        let mut c = c2.clone();
        async move { ids(&c.list_workflow_executions(list(q, 0, vec![])).await.unwrap().into_inner()) }
    };
    assert_eq!(run("WorkflowType = 'Session' ORDER BY WorkflowId").await, ["vis-1", "vis-2"]);
    assert_eq!(run("ExecutionStatus = 'Running' AND Channel = 'whatsapp'").await, ["vis-3"]);
    assert_eq!(run("Messages > 5 ORDER BY Messages DESC").await, ["vis-3", "vis-2"]);
    assert_eq!(
        run("(Channel = 'sms' OR Messages >= 12) ORDER BY WorkflowId").await,
        ["vis-2", "vis-3"]
    );
    assert_eq!(run("ExecutionStatus IN ('Terminated', 'Completed')").await, ["vis-1"]);
    assert_eq!(
        run("WorkflowId STARTS_WITH 'vis-' AND CloseTime IS NULL ORDER BY WorkflowId").await,
        ["vis-2", "vis-3"]
    );

    // Paging walks every match exactly once.
    let mut seen = Vec::new();
    let mut token = vec![];
    loop {
        let page = c
            .list_workflow_executions(list("ORDER BY WorkflowId", 2, token))
            .await
            .unwrap()
            .into_inner();
        assert!(page.executions.len() <= 2);
        seen.extend(ids(&page));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ["vis-1", "vis-2", "vis-3"]);

    let count = c2
        .count_workflow_executions(CountWorkflowExecutionsRequest {
            namespace: NS.into(),
            query: "WorkflowType = 'Session' GROUP BY ExecutionStatus".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(count.count, 2);
    assert_eq!(count.groups.len(), 2);

    // Bad queries and undefined or mistyped attributes are refused with INVALID_ARGUMENT.
    for q in ["Nope = 1", "WorkflowId = ", "Messages = 'many'"] {
        let err = c.list_workflow_executions(list(q, 0, vec![])).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{q}");
    }
    let mut bad = start_req("vis-bad", "q-vis");
    bad.search_attributes = sa("x", 1).map(|mut s| {
        s.indexed_fields
            .insert("Undefined".into(), Payload { data: b"1".to_vec(), ..Default::default() });
        s
    });
    assert_eq!(c.start_workflow_execution(bad).await.unwrap_err().code(), Code::InvalidArgument);
    server.shutdown().await;
}

#[tokio::test]
async fn workflow_retry_policy_chains_attempts_until_exhausted() {
    use temporalio_protos::temporal::api::{
        command::v1::FailWorkflowExecutionCommandAttributes, enums::v1::RetryState,
    };
    let (server, mut c) = setup().await;
    let mut req = start_req("wf-wretry", "q-wretry");
    req.retry_policy = Some(RetryPolicy {
        initial_interval: Some(prost_wkt_types::Duration { seconds: 1, nanos: 0 }),
        backoff_coefficient: 2.0,
        maximum_attempts: 2,
        ..Default::default()
    });
    let first = c.start_workflow_execution(req).await.unwrap().into_inner().run_id;
    let fail = || Command {
        command_type: CommandType::FailWorkflowExecution as i32,
        attributes: Some(Cmd::FailWorkflowExecutionCommandAttributes(
            FailWorkflowExecutionCommandAttributes {
                failure: Some(Failure {
                    message: "flaky".into(),
                    failure_info: Some(FailureInfo::ApplicationFailureInfo(
                        ApplicationFailureInfo { r#type: "Flaky".into(), ..Default::default() },
                    )),
                    ..Default::default()
                }),
            },
        )),
        ..Default::default()
    };
    let task = poll_wft(&mut c, "q-wretry").await;
    complete(&mut c, task.task_token, vec![fail()]).await.unwrap();
    let run1 = c
        .get_workflow_execution_history(GetWorkflowExecutionHistoryRequest {
            namespace: NS.into(),
            execution: Some(WorkflowExecution {
                workflow_id: "wf-wretry".into(),
                run_id: first.clone(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .history
        .unwrap()
        .events;
    let Some(Attributes::WorkflowExecutionFailedEventAttributes(f)) =
        &run1.last().unwrap().attributes
    else {
        panic!()
    };
    assert_eq!(f.retry_state, RetryState::InProgress as i32);
    let second = f.new_execution_run_id.clone();
    assert!(!second.is_empty());

    // The retry waits out its backoff, then runs as attempt 2 of the same chain.
    let task = poll_wft(&mut c, "q-wretry").await;
    assert_eq!(task.workflow_execution.as_ref().unwrap().run_id, second);
    let events = task.history.unwrap().events;
    let Some(Attributes::WorkflowExecutionStartedEventAttributes(s)) = &events[0].attributes else {
        panic!()
    };
    assert_eq!(s.attempt, 2);
    assert_eq!(s.continued_execution_run_id, first);
    assert_eq!(s.first_execution_run_id, first);
    assert_eq!(s.continued_failure.as_ref().unwrap().message, "flaky");
    assert_eq!(s.first_workflow_task_backoff.as_ref().unwrap().seconds, 1);
    complete(&mut c, task.task_token, vec![fail()]).await.unwrap();
    let last = history(&mut c, "wf-wretry").await;
    let Some(Attributes::WorkflowExecutionFailedEventAttributes(f)) =
        &last.last().unwrap().attributes
    else {
        panic!()
    };
    assert_eq!(f.retry_state, RetryState::MaximumAttemptsReached as i32);
    assert!(f.new_execution_run_id.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn run_timeout_closes_the_run() {
    let (server, mut c) = setup().await;
    let mut req = start_req("wf-rto", "q-rto");
    req.workflow_run_timeout = Some(prost_wkt_types::Duration { seconds: 1, nanos: 0 });
    c.start_workflow_execution(req).await.unwrap();
    let close = c
        .get_workflow_execution_history(GetWorkflowExecutionHistoryRequest {
            namespace: NS.into(),
            execution: Some(WorkflowExecution {
                workflow_id: "wf-rto".into(),
                run_id: String::new(),
            }),
            wait_new_event: true,
            history_event_filter_type:
                temporalio_protos::temporal::api::enums::v1::HistoryEventFilterType::CloseEvent
                    as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .history
        .unwrap()
        .events;
    assert_eq!(types(&close), [WorkflowExecutionTimedOut]);
    server.shutdown().await;
}

mod ops {
    use super::*;
    use temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus;

    /// As on the Temporal server: a finish id just past a task's scheduled event resets to
    /// that task; the server starts it itself (identity `history-service`) to fail it.
    #[tokio::test]
    async fn reset_to_a_scheduled_task_starts_it_to_fail_it() {
        let (server, mut c) = setup().await;
        start(&mut c, "wf-reset3", "q-reset3").await;
        let task = poll_wft(&mut c, "q-reset3").await;
        complete(&mut c, task.task_token, vec![]).await.unwrap(); // 4 WFTCompleted
        let reset = |finish: i64| ResetWorkflowExecutionRequest {
            namespace: NS.into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: "wf-reset3".into(),
                run_id: String::new(),
            }),
            workflow_task_finish_event_id: finish,
            reason: "ops".into(),
            request_id: uuid(),
            ..Default::default()
        };
        for refused in [1, 2, 5] {
            let e = c.reset_workflow_execution(reset(refused)).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "finish id {refused}: {e:?}");
        }
        c.reset_workflow_execution(reset(3)).await.unwrap();
        let events = history(&mut c, "wf-reset3").await;
        assert_eq!(
            types(&events),
            [
                WorkflowExecutionStarted,
                WorkflowTaskScheduled,
                WorkflowTaskStarted,
                WorkflowTaskFailed,
                WorkflowTaskScheduled
            ]
        );
        let Some(Attributes::WorkflowTaskStartedEventAttributes(started)) = &events[2].attributes
        else {
            panic!("{:?}", events[2])
        };
        assert_eq!(started.identity, "history-service");
        let Some(Attributes::WorkflowTaskFailedEventAttributes(f)) = &events[3].attributes else {
            panic!("{:?}", events[3])
        };
        assert_eq!(f.identity, "history-service");
        assert!(
            matches!(
                f.failure.as_ref().and_then(|f| f.failure_info.as_ref()),
                Some(FailureInfo::ResetWorkflowFailureInfo(_))
            ),
            "{f:?}"
        );
        server.shutdown().await;
    }

    #[tokio::test]
    async fn reset_forks_history_reapplies_later_signals_and_terminates_the_base() {
        let (server, mut c) = setup().await;
        let base = start(&mut c, "wf-reset", "q-reset").await;
        let task = poll_wft(&mut c, "q-reset").await;
        complete(&mut c, task.task_token, vec![timer_cmd("t", 3600)]).await.unwrap(); // 4 WFTCompleted, 5 TimerStarted
        signal(&mut c, "wf-reset", "a").await; // 6 Signaled, 7 WFTScheduled
        let task = poll_wft(&mut c, "q-reset").await; // 8 WFTStarted
        complete(&mut c, task.task_token, vec![activity_cmd("1", "q-reset", 0)]).await.unwrap(); // 9, 10
        signal(&mut c, "wf-reset", "b").await; // 11 Signaled, 12 WFTScheduled

        let bad = c
            .reset_workflow_execution(ResetWorkflowExecutionRequest {
                namespace: NS.into(),
                workflow_execution: Some(WorkflowExecution {
                    workflow_id: "wf-reset".into(),
                    run_id: base.clone(),
                }),
                workflow_task_finish_event_id: 5,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);

        let new_run = c
            .reset_workflow_execution(ResetWorkflowExecutionRequest {
                namespace: NS.into(),
                workflow_execution: Some(WorkflowExecution {
                    workflow_id: "wf-reset".into(),
                    run_id: base.clone(),
                }),
                workflow_task_finish_event_id: 9,
                reason: "bad deploy".into(),
                request_id: uuid(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .run_id;
        let events = history(&mut c, "wf-reset").await; // the current run is the new one
        assert_eq!(
            types(&events),
            [
                WorkflowExecutionStarted,
                WorkflowTaskScheduled,
                WorkflowTaskStarted,
                WorkflowTaskCompleted,
                TimerStarted,
                WorkflowExecutionSignaled,
                WorkflowTaskScheduled,
                WorkflowTaskStarted,
                WorkflowTaskFailed,
                WorkflowExecutionSignaled,
                WorkflowTaskScheduled,
            ]
        );
        let Some(Attributes::WorkflowTaskFailedEventAttributes(f)) = &events[8].attributes else {
            panic!()
        };
        assert_eq!(f.cause, WorkflowTaskFailedCause::ResetWorkflow as i32);
        assert_eq!(
            (f.base_run_id.as_str(), f.new_run_id.as_str()),
            (base.as_str(), new_run.as_str())
        );
        let Some(Attributes::WorkflowExecutionSignaledEventAttributes(s)) = &events[9].attributes
        else {
            panic!()
        };
        assert_eq!(s.signal_name, "b", "signals after the reset point are reapplied");
        let described = c
            .describe_workflow_execution(DescribeWorkflowExecutionRequest {
                namespace: NS.into(),
                execution: Some(WorkflowExecution {
                    workflow_id: "wf-reset".into(),
                    run_id: base.clone(),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            described.workflow_execution_info.unwrap().status,
            WorkflowExecutionStatus::Terminated as i32
        );

        // The new run's timer was rebuilt from the kept history and still fires.
        let task = poll_wft(&mut c, "q-reset").await;
        assert_eq!(task.workflow_execution.unwrap().run_id, new_run);
        complete(&mut c, task.task_token, vec![]).await.unwrap();
        server.time().skip(Duration::from_secs(3600)).await;
        assert!(types(&history(&mut c, "wf-reset").await).contains(&TimerFired));
        server.shutdown().await;
    }

    #[tokio::test]
    async fn paused_activity_is_not_retried_until_unpaused_and_reset_restarts_attempts() {
        use temporalio_protos::temporal::api::workflowservice::v1::{
            pause_activity_request, reset_activity_request, unpause_activity_request,
        };
        let (server, mut c) = setup().await;
        start(&mut c, "wf-pause", "q-pause").await;
        let task = poll_wft(&mut c, "q-pause").await;
        complete(&mut c, task.task_token, vec![activity_cmd("act", "q-pause-act", 0)])
            .await
            .unwrap();
        let a1 = poll_activity(&mut c, "q-pause-act").await;
        let exec =
            Some(WorkflowExecution { workflow_id: "wf-pause".into(), run_id: String::new() });
        c.pause_activity(PauseActivityRequest {
            namespace: NS.into(),
            execution: exec.clone(),
            activity: Some(pause_activity_request::Activity::Id("act".into())),
            ..Default::default()
        })
        .await
        .unwrap();
        let hb = c
            .record_activity_task_heartbeat(RecordActivityTaskHeartbeatRequest {
                namespace: NS.into(),
                task_token: a1.task_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(hb.activity_paused, "the running attempt learns it was paused");
        let fail = |token: Vec<u8>| RespondActivityTaskFailedRequest {
            namespace: NS.into(),
            task_token: token,
            failure: Some(Failure {
                message: "boom".into(),
                failure_info: Some(FailureInfo::ApplicationFailureInfo(
                    ApplicationFailureInfo::default(),
                )),
                ..Default::default()
            }),
            ..Default::default()
        };
        c.respond_activity_task_failed(fail(a1.task_token)).await.unwrap();
        // Well past the 1 s backoff, nothing is dispatched while paused.
        server.time().skip(Duration::from_secs(60)).await;
        let mut poller = c.clone();
        let idle = tokio::time::timeout(
            Duration::from_millis(300),
            poller.poll_activity_task_queue(PollActivityTaskQueueRequest {
                namespace: NS.into(),
                task_queue: tq("q-pause-act"),
                ..Default::default()
            }),
        )
        .await;
        assert!(idle.is_err(), "a paused activity must not be dispatched");
        let d = c
            .describe_workflow_execution(DescribeWorkflowExecutionRequest {
                namespace: NS.into(),
                execution: exec.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(d.pending_activities[0].paused);

        c.unpause_activity(UnpauseActivityRequest {
            namespace: NS.into(),
            execution: exec.clone(),
            activity: Some(unpause_activity_request::Activity::Id("act".into())),
            ..Default::default()
        })
        .await
        .unwrap();
        let a2 = poll_activity(&mut c, "q-pause-act").await;
        assert_eq!(a2.attempt, 2);
        c.respond_activity_task_failed(fail(a2.task_token)).await.unwrap();
        // Reset sends it out again at once, as attempt 1.
        c.reset_activity(ResetActivityRequest {
            namespace: NS.into(),
            execution: exec.clone(),
            activity: Some(reset_activity_request::Activity::Type("Act".into())),
            ..Default::default()
        })
        .await
        .unwrap();
        let a3 = poll_activity(&mut c, "q-pause-act").await;
        assert_eq!(a3.attempt, 1);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn update_with_start_starts_and_updates_in_one_call() {
    use temporalio_protos::temporal::api::{
        enums::v1::{UpdateWorkflowExecutionLifecycleStage as Stage, WorkflowIdConflictPolicy},
        update::v1::{Input, Meta, Request as UpdateRequest, WaitPolicy},
        workflowservice::v1::{
            execute_multi_operation_request::{Operation, operation::Operation as Op},
            execute_multi_operation_response::response::Response as Rr,
        },
    };
    let (server, mut c) = setup().await;
    let mut start = start_req("wf-uws", "q-uws");
    start.workflow_id_conflict_policy = WorkflowIdConflictPolicy::UseExisting as i32;
    let update = UpdateWorkflowExecutionRequest {
        namespace: NS.into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: "wf-uws".into(),
            run_id: String::new(),
        }),
        wait_policy: Some(WaitPolicy { lifecycle_stage: Stage::Admitted as i32 }),
        request: Some(UpdateRequest {
            meta: Some(Meta { update_id: "uws-1".into(), identity: String::new() }),
            input: Some(Input { name: "send".into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let resp = c
        .execute_multi_operation(ExecuteMultiOperationRequest {
            namespace: NS.into(),
            operations: vec![
                Operation { operation: Some(Op::StartWorkflow(start.clone())) },
                Operation { operation: Some(Op::UpdateWorkflow(update.clone())) },
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let Some(Rr::StartWorkflow(s)) = &resp.responses[0].response else { panic!() };
    assert!(s.started);
    let Some(Rr::UpdateWorkflow(u)) = &resp.responses[1].response else { panic!() };
    assert_eq!(u.stage, Stage::Admitted as i32);
    // The first task carries both the start and the update request.
    let task = poll_wft(&mut c, "q-uws").await;
    assert_eq!(task.messages.len(), 1);
    assert_eq!(task.messages[0].protocol_instance_id, "uws-1");

    // With conflict policy FAIL on a running workflow the start fails; the client learns
    // which operation failed from MultiOperationExecutionFailure.
    start.workflow_id_conflict_policy = WorkflowIdConflictPolicy::Fail as i32;
    start.request_id = uuid();
    let err = c
        .execute_multi_operation(ExecuteMultiOperationRequest {
            namespace: NS.into(),
            operations: vec![
                Operation { operation: Some(Op::StartWorkflow(start)) },
                Operation { operation: Some(Op::UpdateWorkflow(update)) },
            ],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let status = temporalio_protos::google::rpc::Status::decode(err.details()).unwrap();
    let failure =
        temporalio_protos::temporal::api::errordetails::v1::MultiOperationExecutionFailure::decode(
            status.details[0].value.as_slice(),
        )
        .unwrap();
    assert_eq!(failure.statuses[0].code, Code::AlreadyExists as i32);
    assert_eq!(failure.statuses[1].code, Code::Aborted as i32);
    server.shutdown().await;
}

#[tokio::test]
async fn signal_and_cancel_external_workflows() {
    use temporalio_protos::temporal::api::command::v1::{
        RequestCancelExternalWorkflowExecutionCommandAttributes,
        SignalExternalWorkflowExecutionCommandAttributes,
    };
    let (server, mut c) = setup().await;
    start(&mut c, "ext-target", "q-ext-t").await;
    start(&mut c, "ext-source", "q-ext-s").await;
    let task = poll_wft(&mut c, "q-ext-s").await;
    let signal_to = |id: &str| Command {
        command_type: CommandType::SignalExternalWorkflowExecution as i32,
        attributes: Some(Cmd::SignalExternalWorkflowExecutionCommandAttributes(
            SignalExternalWorkflowExecutionCommandAttributes {
                execution: Some(WorkflowExecution {
                    workflow_id: id.into(),
                    run_id: String::new(),
                }),
                signal_name: "hello".into(),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    let cancel = Command {
        command_type: CommandType::RequestCancelExternalWorkflowExecution as i32,
        attributes: Some(Cmd::RequestCancelExternalWorkflowExecutionCommandAttributes(
            RequestCancelExternalWorkflowExecutionCommandAttributes {
                workflow_id: "ext-target".into(),
                reason: "done".into(),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    complete(
        &mut c,
        task.task_token,
        vec![signal_to("ext-target"), signal_to("ext-missing"), cancel],
    )
    .await
    .unwrap();
    let source = types(&history(&mut c, "ext-source").await);
    assert_eq!(
        source[4..],
        [
            SignalExternalWorkflowExecutionInitiated,
            SignalExternalWorkflowExecutionInitiated,
            RequestCancelExternalWorkflowExecutionInitiated,
            ExternalWorkflowExecutionSignaled,
            WorkflowTaskScheduled,
            SignalExternalWorkflowExecutionFailed,
            ExternalWorkflowExecutionCancelRequested,
        ]
    );
    let target = types(&history(&mut c, "ext-target").await);
    assert_eq!(
        target,
        [
            WorkflowExecutionStarted,
            WorkflowTaskScheduled,
            WorkflowExecutionSignaled,
            WorkflowExecutionCancelRequested
        ]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn reset_sticky_task_queue_checks_the_execution() {
    let (server, mut c) = setup().await;
    start(&mut c, "wf-sticky", "q-sticky").await;
    let req = |id: &str| ResetStickyTaskQueueRequest {
        namespace: "default".into(),
        execution: Some(WorkflowExecution { workflow_id: id.into(), run_id: String::new() }),
    };
    c.reset_sticky_task_queue(req("wf-sticky")).await.unwrap();
    let missing = c.reset_sticky_task_queue(req("wf-nope")).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    server.shutdown().await;
}

/// A child workflow: initiated, started and completed as the parent sees it, the parent
/// recorded in the child, a duplicate id failing to start, and the parent close policy applied
/// (TERMINATE by default, ABANDON left running) when the parent completes.
#[tokio::test]
async fn child_workflows_start_report_their_end_and_follow_the_parent_close_policy() {
    use temporalio_protos::temporal::api::{
        command::v1::StartChildWorkflowExecutionCommandAttributes,
        enums::v1::{ParentClosePolicy, StartChildWorkflowExecutionFailedCause},
    };
    let (server, mut c) = setup().await;
    let child_cmd = |id: &str, policy: ParentClosePolicy| Command {
        command_type: CommandType::StartChildWorkflowExecution as i32,
        attributes: Some(Cmd::StartChildWorkflowExecutionCommandAttributes(
            StartChildWorkflowExecutionCommandAttributes {
                workflow_id: id.into(),
                workflow_type: Some(WorkflowType { name: "Kid".into() }),
                task_queue: tq("q-kid"),
                parent_close_policy: policy as i32,
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    let parent_run = start(&mut c, "parent", "q-parent").await;
    let task = poll_wft(&mut c, "q-parent").await;
    complete(&mut c, task.task_token, vec![child_cmd("kid-1", ParentClosePolicy::Unspecified)])
        .await
        .unwrap();

    // The child runs on its own queue and knows its parent.
    let kid = poll_wft(&mut c, "q-kid").await;
    let started = &kid.history.as_ref().unwrap().events[0];
    let Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) = &started.attributes else {
        panic!("first event is {:?}", started.event_type)
    };
    let parent_execution =
        WorkflowExecution { workflow_id: "parent".into(), run_id: parent_run.clone() };
    assert_eq!(a.parent_workflow_execution.as_ref(), Some(&parent_execution));
    assert_eq!(a.parent_initiated_event_id, 5);
    assert_eq!(a.parent_workflow_namespace, NS);
    let kid_run = kid.workflow_execution.as_ref().unwrap().run_id.clone();

    // The parent was told the child started, and lists it as pending.
    let task = poll_wft(&mut c, "q-parent").await;
    let events = task.history.unwrap().events;
    assert_eq!(
        types(&events[3..]),
        [
            WorkflowTaskCompleted,
            StartChildWorkflowExecutionInitiated,
            ChildWorkflowExecutionStarted,
            WorkflowTaskScheduled,
            WorkflowTaskStarted
        ]
    );
    let described = c
        .describe_workflow_execution(DescribeWorkflowExecutionRequest {
            namespace: NS.into(),
            execution: Some(parent_execution.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.pending_children.len(), 1);
    assert_eq!(described.pending_children[0].workflow_id, "kid-1");
    assert_eq!(described.pending_children[0].run_id, kid_run);
    assert_eq!(described.pending_children[0].initiated_id, 5);
    // A second child with the same id while the first runs fails to start.
    complete(&mut c, task.task_token, vec![child_cmd("kid-1", ParentClosePolicy::Terminate)])
        .await
        .unwrap();
    let task = poll_wft(&mut c, "q-parent").await;
    let events = task.history.unwrap().events;
    let failed = events
        .iter()
        .find_map(|e| match &e.attributes {
            Some(Attributes::StartChildWorkflowExecutionFailedEventAttributes(a)) => {
                Some(a.clone())
            }
            _ => None,
        })
        .expect("StartChildWorkflowExecutionFailed");
    assert_eq!(failed.cause, StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists as i32);
    assert_eq!(failed.workflow_id, "kid-1");
    complete(&mut c, task.task_token, vec![]).await.unwrap();

    // The child completes; the parent gets its result.
    let mut done = complete_cmd();
    if let Some(Cmd::CompleteWorkflowExecutionCommandAttributes(a)) = &mut done.attributes {
        a.result = Some(Payloads {
            payloads: vec![temporalio_protos::temporal::api::common::v1::Payload {
                data: b"42".to_vec(),
                ..Default::default()
            }],
        });
    }
    complete(&mut c, kid.task_token, vec![done]).await.unwrap();
    let task = poll_wft(&mut c, "q-parent").await;
    let events = task.history.unwrap().events;
    assert_ids_sequential(&events);
    let completed = events
        .iter()
        .find_map(|e| match &e.attributes {
            Some(Attributes::ChildWorkflowExecutionCompletedEventAttributes(a)) => Some(a.clone()),
            _ => None,
        })
        .expect("ChildWorkflowExecutionCompleted");
    assert_eq!(completed.initiated_event_id, 5);
    assert_eq!(completed.started_event_id, 6);
    assert_eq!(completed.result.unwrap().payloads[0].data, b"42");

    // Two more children, then the parent completes: TERMINATE ends one, ABANDON leaves one.
    complete(
        &mut c,
        task.task_token,
        vec![
            child_cmd("kid-2", ParentClosePolicy::Terminate),
            child_cmd("kid-3", ParentClosePolicy::Abandon),
        ],
    )
    .await
    .unwrap();
    let task = poll_wft(&mut c, "q-parent").await;
    complete(&mut c, task.task_token, vec![complete_cmd()]).await.unwrap();
    let status = |id: &'static str| {
        let mut c = c.clone();
        async move {
            c.describe_workflow_execution(DescribeWorkflowExecutionRequest {
                namespace: NS.into(),
                execution: Some(WorkflowExecution {
                    workflow_id: id.into(),
                    run_id: String::new(),
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .workflow_execution_info
            .unwrap()
            .status
        }
    };
    use temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus as S;
    assert_eq!(status("parent").await, S::Completed as i32);
    assert_eq!(status("kid-1").await, S::Completed as i32);
    assert_eq!(status("kid-2").await, S::Terminated as i32);
    assert_eq!(status("kid-3").await, S::Running as i32);
    let terminated = history(&mut c, "kid-2").await;
    let Some(Attributes::WorkflowExecutionTerminatedEventAttributes(t)) =
        &terminated.last().unwrap().attributes
    else {
        panic!("kid-2 ends with {:?}", terminated.last().unwrap().event_type)
    };
    assert_eq!(t.reason, "by parent close policy");
    server.shutdown().await;
}

/// The links between a parent and its child are part of both runs' stored state: after a
/// restart the child's end still reaches the parent, and the parent still lists the child
/// until then.
#[tokio::test]
async fn a_child_still_reports_to_its_parent_after_a_restart() {
    use temporalio_protos::temporal::api::command::v1::StartChildWorkflowExecutionCommandAttributes;
    let dir = std::env::temp_dir().join(format!("convo-devserver-child-{}", uuid()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = || DevServerConfig {
        long_poll_timeout: Duration::from_secs(5),
        db_filename: Some(dir.join("dev.db")),
        ..DevServerConfig::ephemeral()
    };
    let server = DevServer::start(config()).await.unwrap();
    let mut c = WorkflowServiceClient::connect(server.url()).await.unwrap();
    start(&mut c, "parent-dur", "q-pd").await;
    let task = poll_wft(&mut c, "q-pd").await;
    let child = Command {
        command_type: CommandType::StartChildWorkflowExecution as i32,
        attributes: Some(Cmd::StartChildWorkflowExecutionCommandAttributes(
            StartChildWorkflowExecutionCommandAttributes {
                workflow_id: "kid-dur".into(),
                workflow_type: Some(WorkflowType { name: "Kid".into() }),
                task_queue: tq("q-kd"),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    complete(&mut c, task.task_token, vec![child]).await.unwrap();
    let task = poll_wft(&mut c, "q-pd").await; // ChildWorkflowExecutionStarted
    complete(&mut c, task.task_token, vec![]).await.unwrap();
    server.shutdown().await;

    let server = DevServer::start(config()).await.unwrap();
    let mut c = WorkflowServiceClient::connect(server.url()).await.unwrap();
    let pending = c
        .describe_workflow_execution(DescribeWorkflowExecutionRequest {
            namespace: NS.into(),
            execution: Some(WorkflowExecution {
                workflow_id: "parent-dur".into(),
                run_id: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .pending_children;
    assert_eq!(pending.iter().map(|p| p.workflow_id.as_str()).collect::<Vec<_>>(), ["kid-dur"]);
    let kid = poll_wft(&mut c, "q-kd").await;
    complete(&mut c, kid.task_token, vec![complete_cmd()]).await.unwrap();
    let task = poll_wft(&mut c, "q-pd").await;
    let events = task.history.unwrap().events;
    assert_eq!(
        types(&events[events.len() - 3..]),
        [ChildWorkflowExecutionCompleted, WorkflowTaskScheduled, WorkflowTaskStarted]
    );
    assert_ids_sequential(&events);
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// Eager workflow start: the starter gets the first workflow task in the start response, with
/// the task already started in the history; with a start delay it gets none.
#[tokio::test]
async fn eager_start_hands_the_first_task_to_the_starter() {
    let (server, mut c) = setup().await;
    let mut req = start_req("eager", "q-eager");
    req.request_eager_execution = true;
    req.identity = "starter-worker".into();
    let resp = c.start_workflow_execution(req).await.unwrap().into_inner();
    let task = resp.eager_workflow_task.expect("an eager workflow task");
    let events = task.history.unwrap().events;
    assert_eq!(
        types(&events),
        [WorkflowExecutionStarted, WorkflowTaskScheduled, WorkflowTaskStarted]
    );
    let Some(Attributes::WorkflowTaskStartedEventAttributes(a)) = &events[2].attributes else {
        panic!("third event is {:?}", events[2].event_type)
    };
    assert_eq!(a.identity, "starter-worker");
    assert_eq!(task.workflow_execution.unwrap().run_id, resp.run_id);
    complete(&mut c, task.task_token, vec![complete_cmd()]).await.unwrap();
    assert_eq!(
        types(&history(&mut c, "eager").await)[3..],
        [WorkflowTaskCompleted, WorkflowExecutionCompleted]
    );

    let mut delayed = start_req("eager-delayed", "q-eager");
    delayed.request_eager_execution = true;
    delayed.workflow_start_delay = Some(prost_wkt_types::Duration { seconds: 60, nanos: 0 });
    let resp = c.start_workflow_execution(delayed).await.unwrap().into_inner();
    assert!(resp.eager_workflow_task.is_none());
    server.shutdown().await;
}

/// What a worker says of its build is kept on `WorkflowTaskCompleted` (SDKs read it back when
/// replaying), and an activity's priority reaches the worker that runs it.
#[tokio::test]
#[allow(deprecated)] // worker_version_stamp is still what SDKs send for build ids
async fn worker_build_and_activity_priority_are_recorded_and_delivered() {
    use temporalio_protos::temporal::api::{
        common::v1::{Priority, WorkerVersionStamp},
        deployment::v1::{WorkerDeploymentOptions, WorkerDeploymentVersion},
        enums::v1::WorkerVersioningMode,
    };
    let (server, mut c) = setup().await;
    start(&mut c, "builds", "q-builds").await;
    let task = poll_wft(&mut c, "q-builds").await;
    let priority =
        Priority { priority_key: 5, fairness_key: "fair-act".into(), fairness_weight: 1.1 };
    let mut act = activity_cmd("a", "q-builds", 1);
    if let Some(Cmd::ScheduleActivityTaskCommandAttributes(a)) = &mut act.attributes {
        a.priority = Some(priority.clone());
    }
    c.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
        namespace: NS.into(),
        task_token: task.task_token,
        commands: vec![act],
        identity: "worker-1".into(),
        worker_version_stamp: Some(WorkerVersionStamp {
            build_id: "1.0".into(),
            use_versioning: false,
        }),
        deployment_options: Some(WorkerDeploymentOptions {
            deployment_name: "deployment-1".into(),
            build_id: "1.0".into(),
            worker_versioning_mode: WorkerVersioningMode::Versioned as i32,
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let events = history(&mut c, "builds").await;
    let Some(Attributes::WorkflowTaskCompletedEventAttributes(done)) = &events[3].attributes else {
        panic!("fourth event is {:?}", events[3].event_type)
    };
    assert_eq!(done.worker_version.as_ref().map(|v| v.build_id.as_str()), Some("1.0"));
    assert_eq!(done.worker_deployment_name, "deployment-1");
    assert_eq!(
        done.deployment_version,
        Some(WorkerDeploymentVersion {
            build_id: "1.0".into(),
            deployment_name: "deployment-1".into()
        })
    );
    let attempt = poll_activity(&mut c, "q-builds").await;
    assert_eq!(attempt.priority, Some(priority));
    server.shutdown().await;
}

/// A dozen short timers and a zero-length one started in one task all fire, and the run
/// completes: a zero (or unset) timeout fires at once, as on the Temporal server.
#[tokio::test]
async fn many_timers_and_a_zero_length_one_all_fire() {
    let (server, mut c) = setup().await;
    start(&mut c, "wf-timers", "q-timers").await;
    let task = poll_wft(&mut c, "q-timers").await;
    let timer = |id: String, millis: i32| Command {
        command_type: CommandType::StartTimer as i32,
        attributes: Some(Cmd::StartTimerCommandAttributes(StartTimerCommandAttributes {
            timer_id: id,
            start_to_fire_timeout: Some(prost_wkt_types::Duration {
                seconds: 0,
                nanos: millis * 1_000_000,
            }),
        })),
        ..Default::default()
    };
    let mut timers: Vec<Command> = (1..=12).map(|n| timer(format!("t{n}"), 100)).collect();
    timers.push(timer("zero".into(), 0));
    complete(&mut c, task.task_token, timers).await.unwrap();
    let mut fired = 0;
    for _ in 0..13 {
        let task = poll_wft(&mut c, "q-timers").await;
        let new = task.history.iter().flat_map(|h| &h.events);
        fired += new
            .filter(|e| e.event_id > task.previous_started_event_id)
            .filter(|e| matches!(e.attributes, Some(Attributes::TimerFiredEventAttributes(_))))
            .count();
        let done = fired == 13;
        complete(&mut c, task.task_token, if done { vec![complete_cmd()] } else { vec![] })
            .await
            .unwrap();
        if done {
            break;
        }
    }
    assert_eq!(fired, 13);
    let events = history(&mut c, "wf-timers").await;
    assert_eq!(types(&events).last(), Some(&WorkflowExecutionCompleted));
    server.shutdown().await;
}

/// A history the store can no longer read back (the file changed under the running server)
/// stops the server cleanly: the call that needed it, and every call after, answers UNAVAILABLE
/// with the reason, instead of a panic under the engine's lock and a server that goes on
/// without it.
#[tokio::test]
async fn an_unreadable_history_stops_the_server_with_unavailable() {
    let dir = std::env::temp_dir().join(format!("convo-devserver-unreadable-{}", uuid()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("dev.db");
    let server = DevServer::start(DevServerConfig {
        long_poll_timeout: Duration::from_secs(5),
        db_filename: Some(db.clone()),
        ..DevServerConfig::ephemeral()
    })
    .await
    .unwrap();
    let mut c = WorkflowServiceClient::connect(server.url()).await.unwrap();
    let run_id = start(&mut c, "unreadable", "q-unreadable").await;
    let task = poll_wft(&mut c, "q-unreadable").await;
    complete(&mut c, task.task_token, vec![timer_cmd("t1", 3600)]).await.unwrap();
    // Answered once durable, by which time the idle run's history is only in the file.
    assert_eq!(server.engine().stats().resident_histories, 0);

    let file = rusqlite::Connection::open(&db).unwrap();
    file.busy_timeout(Duration::from_secs(5)).unwrap();
    let removed = file.execute("DELETE FROM events WHERE run_id = ?1", [&run_id]).unwrap();
    assert!(removed > 0, "the run's events were in the file");
    drop(file);

    let history = c
        .get_workflow_execution_history(GetWorkflowExecutionHistoryRequest {
            namespace: NS.into(),
            execution: Some(WorkflowExecution {
                workflow_id: "unreadable".into(),
                run_id: run_id.clone(),
            }),
            ..Default::default()
        })
        .await
        .expect_err("the history is gone");
    assert_eq!(history.code(), Code::Unavailable, "{history:?}");
    let later = c
        .get_system_info(GetSystemInfoRequest::default())
        .await
        .expect_err("the server refuses every call now");
    assert_eq!(later.code(), Code::Unavailable);
    assert!(later.message().contains(&run_id), "the reason names the run: {}", later.message());
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}
