//! `SessionWindowWorkflow` end to end: sliding and fixed expiry under time skipping, explicit
//! close, and the `state` query. Histories are read back through `GetWorkflowExecutionHistory`
//! and compared event by event.

use std::time::{Duration, Instant};

use convo_domain::{Channel, CloseReason};
use convo_tests::{TestEnv, event_types, history, wait_for_event, within};
use convo_workflows::{
    InboundMessage, SessionWindowInput, SessionWindowWorkflow, contracts::session_workflow_id,
};
use temporalio_client::{WorkflowGetResultOptions, WorkflowQueryOptions, WorkflowSignalOptions};
use temporalio_common::protos::temporal::api::enums::v1::EventType::{self, *};
use uuid::Uuid;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const WAIT: Duration = Duration::from_secs(15);

fn input(channel: Channel) -> SessionWindowInput {
    SessionWindowInput {
        workspace_id: format!("ws-{}", Uuid::new_v4()),
        contact_id: "contact-1".to_owned(),
        channel,
        policy: channel.default_policy(),
    }
}

fn hello() -> InboundMessage {
    InboundMessage { text: "hello again".to_owned(), provider_message_id: "wamid.2".to_owned() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_sliding_window_expires_24h_after_last_inbound() -> anyhow::Result<()> {
    let env = TestEnv::start("sliding-window").await?;
    let input = input(Channel::Whatsapp);
    let id = session_workflow_id(&input.workspace_id, &input.contact_id);
    let handle = env
        .client
        .start_workflow(SessionWindowWorkflow::run, input.clone(), env.start_options(&id))
        .await?;

    wait_for_event(&handle, TimerStarted, 1, WAIT).await?;
    handle
        .signal(SessionWindowWorkflow::inbound, hello(), WorkflowSignalOptions::default())
        .await?;
    wait_for_event(&handle, TimerStarted, 2, WAIT).await?;

    let wall = Instant::now();
    within(WAIT, "skip 25h", env.time().skip(DAY + Duration::from_secs(3600))).await?;
    let summary =
        within(WAIT, "get_result", handle.get_result(WorkflowGetResultOptions::default()))
            .await??;
    println!("24h window expiry via time skipping took {:?} wall time", wall.elapsed());

    assert_eq!(summary.close_reason, CloseReason::Expired);
    assert_eq!(summary.inbound_messages, 1);
    assert!(!summary.ended_event_id.is_empty());

    let expected: Vec<EventType> = vec![
        WorkflowExecutionStarted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        TimerStarted,
        WorkflowExecutionSignaled,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        TimerCanceled,
        TimerStarted,
        TimerFired,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        ActivityTaskScheduled,
        ActivityTaskStarted,
        ActivityTaskCompleted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        WorkflowExecutionCompleted,
    ];
    let events = history(&handle).await?;
    assert_eq!(event_types(&events), expected);

    // Both timers ran the full window: the second one was measured from the inbound.
    let timer_secs: Vec<i64> = events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(convo_tests::Attributes::TimerStartedEventAttributes(a)) => {
                a.start_to_fire_timeout.as_ref().map(|d| d.seconds)
            }
            _ => None,
        })
        .collect();
    assert_eq!(timer_secs, [86_400, 86_400]);

    let recorded = env.events.events();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].event_id, summary.ended_event_id);
    assert_eq!((recorded[0].reason, recorded[0].inbound_messages), (CloseReason::Expired, 1));
    assert_eq!(recorded[0].workflow_id, id);

    env.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rcs_fixed_window_is_not_extended_by_inbound() -> anyhow::Result<()> {
    let env = TestEnv::start("fixed-window").await?;
    let input = input(Channel::Rcs);
    let id = session_workflow_id(&input.workspace_id, &input.contact_id);
    let handle = env
        .client
        .start_workflow(SessionWindowWorkflow::run, input, env.start_options(&id))
        .await?;

    wait_for_event(&handle, TimerStarted, 1, WAIT).await?;
    handle
        .signal(SessionWindowWorkflow::inbound, hello(), WorkflowSignalOptions::default())
        .await?;
    // The signal's workflow task completed: the workflow has seen the inbound.
    wait_for_event(&handle, WorkflowTaskCompleted, 2, WAIT).await?;

    within(WAIT, "skip 25h", env.time().skip(DAY + Duration::from_secs(3600))).await?;
    let summary =
        within(WAIT, "get_result", handle.get_result(WorkflowGetResultOptions::default()))
            .await??;
    assert_eq!(summary.close_reason, CloseReason::Expired);
    assert_eq!(summary.inbound_messages, 1);

    // One timer, never cancelled: the inbound's workflow task produced no commands.
    let expected: Vec<EventType> = vec![
        WorkflowExecutionStarted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        TimerStarted,
        WorkflowExecutionSignaled,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        TimerFired,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        ActivityTaskScheduled,
        ActivityTaskStarted,
        ActivityTaskCompleted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        WorkflowExecutionCompleted,
    ];
    assert_eq!(event_types(&history(&handle).await?), expected);
    env.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_close_cancels_the_timer_and_emits_once() -> anyhow::Result<()> {
    let env = TestEnv::start("explicit-close").await?;
    let input = input(Channel::Whatsapp);
    let id = session_workflow_id(&input.workspace_id, &input.contact_id);
    let handle = env
        .client
        .start_workflow(SessionWindowWorkflow::run, input, env.start_options(&id))
        .await?;

    wait_for_event(&handle, TimerStarted, 1, WAIT).await?;
    handle.signal(SessionWindowWorkflow::close, (), WorkflowSignalOptions::default()).await?;
    // No time skipping: an explicit close completes in real time.
    let summary =
        within(WAIT, "get_result", handle.get_result(WorkflowGetResultOptions::default()))
            .await??;
    assert_eq!(summary.close_reason, CloseReason::Explicit);
    assert_eq!(summary.inbound_messages, 0);

    let expected: Vec<EventType> = vec![
        WorkflowExecutionStarted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        TimerStarted,
        WorkflowExecutionSignaled,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        TimerCanceled,
        ActivityTaskScheduled,
        ActivityTaskStarted,
        ActivityTaskCompleted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        WorkflowExecutionCompleted,
    ];
    assert_eq!(event_types(&history(&handle).await?), expected);

    let recorded = env.events.events();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].reason, CloseReason::Explicit);
    assert_eq!(recorded[0].event_id, summary.ended_event_id);
    env.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_query_reports_the_window() -> anyhow::Result<()> {
    let env = TestEnv::start("state-query").await?;
    let input = input(Channel::Whatsapp);
    let id = session_workflow_id(&input.workspace_id, &input.contact_id);
    let handle = env
        .client
        .start_workflow(SessionWindowWorkflow::run, input, env.start_options(&id))
        .await?;

    wait_for_event(&handle, TimerStarted, 1, WAIT).await?;
    let before =
        handle.query(SessionWindowWorkflow::state, (), WorkflowQueryOptions::default()).await?;
    let opened = before.window.expect("window opened by the first task");
    assert_eq!(before.inbound_messages, 0);
    assert_eq!(before.channel, Channel::Whatsapp);
    assert_eq!(opened.expires_at().saturating_since(opened.opened_at()), DAY);

    handle
        .signal(SessionWindowWorkflow::inbound, hello(), WorkflowSignalOptions::default())
        .await?;
    wait_for_event(&handle, TimerStarted, 2, WAIT).await?;
    let after =
        handle.query(SessionWindowWorkflow::state, (), WorkflowQueryOptions::default()).await?;
    let window = after.window.expect("window");
    assert_eq!(after.inbound_messages, 1);
    assert_eq!(after.last_provider_message_id.as_deref(), Some("wamid.2"));
    assert_eq!(after.close_reason, None);
    assert!(window.expires_at() >= opened.expires_at());
    assert_eq!(window.expires_at().saturating_since(window.last_inbound_at()), DAY);

    handle.signal(SessionWindowWorkflow::close, (), WorkflowSignalOptions::default()).await?;
    within(WAIT, "get_result", handle.get_result(WorkflowGetResultOptions::default())).await??;
    env.shutdown().await
}
