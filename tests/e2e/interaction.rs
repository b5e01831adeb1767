//! Queries, updates (accepted and rejected) and continue-as-new, through the official SDK:
//! the devserver's protocol messages, speculative tasks and run chaining as a real worker and
//! client exercise them.

// The SDK macros expect `pub` handlers and emit `pub` marker items.
#![allow(unreachable_pub)]

use std::time::Duration;

use convo_tests::{TestEnv, comparable, history_event_types, within};
use convo_worker::Customize;
use temporalio_client::{
    WorkflowExecuteUpdateOptions, WorkflowGetResultOptions, WorkflowQueryOptions,
    WorkflowSignalOptions, errors::WorkflowUpdateError,
};
use temporalio_common::protos::temporal::api::enums::v1::EventType::*;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ContinueAsNewOptions, SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult,
};

const WAIT: Duration = Duration::from_secs(15);

/// Keeps a running total that updates add to; a finish signal ends it.
#[workflow]
#[derive(Default)]
pub struct TallyWorkflow {
    total: u64,
    done: bool,
}

#[workflow_methods]
impl TallyWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<u64> {
        ctx.wait_condition(|s| s.done).await?;
        Ok(ctx.state(|s| s.total))
    }

    #[signal]
    pub fn finish(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.done = true;
    }

    #[query]
    pub fn total(&self, _ctx: &WorkflowContextView) -> u64 {
        self.total
    }

    #[update_validator(add)]
    fn validate_add(
        &self,
        _ctx: &WorkflowContextView,
        amount: &u64,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if *amount == 0 { Err("amount must be positive".into()) } else { Ok(()) }
    }

    #[update]
    pub fn add(&mut self, _ctx: &mut SyncWorkflowContext<Self>, amount: u64) -> u64 {
        self.total += amount;
        self.total
    }
}

/// Continues as new until its input reaches 3, then returns it.
#[workflow]
#[derive(Default)]
pub struct ChainWorkflow;

#[workflow_methods]
impl ChainWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, n: u32) -> WorkflowResult<u32> {
        if n < 3 {
            ctx.continue_as_new(n + 1, ContinueAsNewOptions::default())?;
        }
        Ok(n)
    }
}

fn register() -> Customize {
    Box::new(|opts| {
        opts.register_workflow::<TallyWorkflow>()?.register_workflow::<ChainWorkflow>()?;
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_accepted_or_rejected_and_queries_read_state() -> anyhow::Result<()> {
    let env = TestEnv::start_with("tally", Some(register())).await?;
    let handle = env
        .client
        .start_workflow(TallyWorkflow::run, (), env.start_options(TestEnv::unique_id("tally")))
        .await?;
    let opts = WorkflowExecuteUpdateOptions::default;
    let total =
        within(WAIT, "update", handle.execute_update(TallyWorkflow::add, 5, opts())).await??;
    assert_eq!(total, 5);
    let before = history_event_types(&handle).await?;
    assert_eq!(before.iter().filter(|t| **t == WorkflowExecutionUpdateAccepted).count(), 1);
    assert_eq!(before.iter().filter(|t| **t == WorkflowExecutionUpdateCompleted).count(), 1);

    // The validator refuses 0: the caller sees the validator's message and, as in Temporal,
    // the rejected update leaves no trace in the history.
    let rejected =
        within(WAIT, "rejected update", handle.execute_update(TallyWorkflow::add, 0, opts()))
            .await?;
    let Err(WorkflowUpdateError::Failed(failure)) = rejected else {
        panic!("expected a rejection, got {rejected:?}");
    };
    assert!(failure.message.contains("amount must be positive"), "{}", failure.message);
    let backend = env.backend();
    assert_eq!(
        comparable(backend, &history_event_types(&handle).await?),
        comparable(backend, &before)
    );

    let total =
        within(WAIT, "update", handle.execute_update(TallyWorkflow::add, 7, opts())).await??;
    assert_eq!(total, 12);
    let queried = within(
        WAIT,
        "query",
        handle.query(TallyWorkflow::total, (), WorkflowQueryOptions::default()),
    )
    .await??;
    assert_eq!(queried, 12);

    handle.signal(TallyWorkflow::finish, (), WorkflowSignalOptions::default()).await?;
    let result =
        within(WAIT, "result", handle.get_result(WorkflowGetResultOptions::default())).await??;
    assert_eq!(result, 12);
    // A closed workflow still answers queries (from its history, through a legacy query task).
    let after_close = within(
        WAIT,
        "query after close",
        handle.query(TallyWorkflow::total, (), WorkflowQueryOptions::default()),
    )
    .await??;
    assert_eq!(after_close, 12);
    env.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_follows_continue_as_new_runs() -> anyhow::Result<()> {
    let env = TestEnv::start_with("chain", Some(register())).await?;
    let id = TestEnv::unique_id("chain");
    let handle = env.client.start_workflow(ChainWorkflow::run, 0, env.start_options(id)).await?;
    let result =
        within(WAIT, "result", handle.get_result(WorkflowGetResultOptions::default())).await??;
    assert_eq!(result, 3, "the result comes from the last run of the chain");
    env.shutdown().await
}
