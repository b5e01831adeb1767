//! Timer cancellation and a signal racing an in-flight workflow task.

use std::time::Duration;

use convo_tests::{
    Attributes, TestEnv, event_types, history, history_event_types, wait_for_event, within,
};
use temporalio_client::{WorkflowGetResultOptions, WorkflowSignalOptions};
use temporalio_common::protos::temporal::api::enums::v1::{
    EventType::{self, *},
    WorkflowTaskFailedCause,
};

use crate::fixtures::{self, SlowFirstTaskWorkflow, TimerCancelWorkflow};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timer_cancelled_by_signal_never_fires() -> anyhow::Result<()> {
    let (customize, _) = fixtures::register(0);
    let env = TestEnv::start_with("timer-cancel", Some(customize)).await?;
    let handle = env
        .client
        .start_workflow(
            TimerCancelWorkflow::run,
            (),
            env.start_options(TestEnv::unique_id("timer")),
        )
        .await?;

    wait_for_event(&handle, TimerStarted, 1, WAIT).await?;
    handle.signal(TimerCancelWorkflow::stop, (), WorkflowSignalOptions::default()).await?;
    wait_for_event(&handle, TimerCanceled, 1, WAIT).await?;

    // Jump past the old deadline while the workflow is still open: a timer that was merely
    // dropped (not cancelled) would fire now.
    env.skip(Duration::from_secs(2 * 3600)).await?;
    handle.signal(TimerCancelWorkflow::finish, (), WorkflowSignalOptions::default()).await?;
    let outcome =
        within(WAIT, "get_result", handle.get_result(WorkflowGetResultOptions::default()))
            .await??;
    assert_eq!(outcome, "timer cancelled by signal");

    let types = history_event_types(&handle).await?;
    assert!(types.contains(&TimerCanceled), "{types:?}");
    assert!(!types.contains(&TimerFired), "{types:?}");
    env.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_during_in_flight_task_fails_the_completion_and_is_delivered() -> anyhow::Result<()>
{
    let (customize, _) = fixtures::register(0);
    let env = TestEnv::start_with("signal-in-flight", Some(customize)).await?;
    let handle = env
        .client
        .start_workflow(
            SlowFirstTaskWorkflow::run,
            (),
            env.start_options(TestEnv::unique_id("slow")),
        )
        .await?;

    // The worker picked up the first task and is now blocked in it for 1.5 s.
    let seen = wait_for_event(&handle, WorkflowTaskStarted, 1, WAIT).await?;
    assert!(
        !event_types(&seen).contains(&WorkflowTaskCompleted),
        "task finished too early: {seen:?}"
    );
    handle.signal(SlowFirstTaskWorkflow::ping, (), WorkflowSignalOptions::default()).await?;

    let pings = within(WAIT, "get_result", handle.get_result(WorkflowGetResultOptions::default()))
        .await??;

    // Temporal: a completion that would close the workflow while a signal is buffered is
    // rejected; the task fails with UNHANDLED_COMMAND, the buffered signal is written after the
    // failure, and a new task delivers it.
    let events = history(&handle).await?;
    let types = event_types(&events);
    assert_eq!(pings, 1, "the result must count the signal; history: {types:?}");
    let expected: Vec<EventType> = vec![
        WorkflowExecutionStarted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskFailed,
        WorkflowExecutionSignaled,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        WorkflowExecutionCompleted,
    ];
    assert_eq!(types, expected);
    let cause = events.iter().find_map(|e| match &e.attributes {
        Some(Attributes::WorkflowTaskFailedEventAttributes(a)) => Some(a.cause()),
        _ => None,
    });
    assert_eq!(cause, Some(WorkflowTaskFailedCause::UnhandledCommand));
    env.shutdown().await
}
