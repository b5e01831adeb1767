//! Terminate and cancel, as the client and the history see them.

use std::time::Duration;

use convo_tests::{TestEnv, history_event_types, wait_for_event, within};
use temporalio_client::{
    WorkflowCancelOptions, WorkflowGetResultOptions, WorkflowTerminateOptions,
    errors::WorkflowGetResultError,
};
use temporalio_common::protos::temporal::api::enums::v1::EventType::*;

use crate::fixtures::{self, CANCEL_DETAILS, WaitForCancelWorkflow};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_ends_the_run_immediately() -> anyhow::Result<()> {
    let (customize, _) = fixtures::register(0);
    let env = TestEnv::start_with("terminate", Some(customize)).await?;
    let handle = env
        .client
        .start_workflow(
            WaitForCancelWorkflow::run,
            (),
            env.start_options(TestEnv::unique_id("term")),
        )
        .await?;
    wait_for_event(&handle, TimerStarted, 1, WAIT).await?;

    handle.terminate(WorkflowTerminateOptions::builder().reason("test terminate").build()).await?;
    let result =
        within(WAIT, "get_result", handle.get_result(WorkflowGetResultOptions::default())).await?;
    assert!(matches!(result, Err(WorkflowGetResultError::Terminated { .. })), "{result:?}");

    let types = history_event_types(&handle).await?;
    assert_eq!(types.last(), Some(&WorkflowExecutionTerminated), "{types:?}");
    assert_eq!(types.iter().filter(|t| **t == WorkflowExecutionTerminated).count(), 1);
    env.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_is_observed_by_the_workflow() -> anyhow::Result<()> {
    let (customize, _) = fixtures::register(0);
    let env = TestEnv::start_with("cancel", Some(customize)).await?;
    let handle = env
        .client
        .start_workflow(
            WaitForCancelWorkflow::run,
            (),
            env.start_options(TestEnv::unique_id("cancel")),
        )
        .await?;
    wait_for_event(&handle, TimerStarted, 1, WAIT).await?;

    handle.cancel(WorkflowCancelOptions::builder().reason("test cancel").build()).await?;
    let result =
        within(WAIT, "get_result", handle.get_result(WorkflowGetResultOptions::default())).await?;
    let Err(WorkflowGetResultError::Cancelled { details }) = result else {
        panic!("expected Cancelled, got {result:?}");
    };
    // The details prove the workflow code ran its cancellation branch.
    assert_eq!(details.deserialize::<String>()?, CANCEL_DETAILS);

    let types = history_event_types(&handle).await?;
    let requested = types.iter().position(|t| *t == WorkflowExecutionCancelRequested);
    assert!(requested.is_some(), "{types:?}");
    assert_eq!(types.last(), Some(&WorkflowExecutionCanceled), "{types:?}");
    env.shutdown().await
}
