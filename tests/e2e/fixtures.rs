//! Test-only workflows and activities, registered next to convo's on each test's worker.
//!
//! They exist to pin down the server semantics convo relies on (retries, timeouts, timer
//! cancellation, signals racing a workflow task, cancel and terminate), independently of
//! convo's own workflows.

// The SDK macros expect `pub` handlers and emit `pub` marker items; inside a test binary nothing
// is reachable from outside, which is all this lint reports.
#![allow(unreachable_pub)]

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use convo_worker::Customize;
use serde::{Deserialize, Serialize};
use temporalio_common::{RetryPolicy, error::ApplicationFailure};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, CancellableFuture, SyncWorkflowContext, TimerResult,
    WorkflowContext, WorkflowResult, WorkflowTermination,
    activities::{ActivityContext, ActivityError},
};

/// Registers every fixture, with `flaky` failing `flaky_failures` times before succeeding.
pub fn register(flaky_failures: u32) -> (Customize, Arc<AtomicU32>) {
    let attempts = Arc::new(AtomicU32::new(0));
    let acts = FixtureActivities { flaky_failures, flaky_attempts: attempts.clone() };
    let customize: Customize = Box::new(move |opts| {
        opts.register_workflow::<ActivityRunnerWorkflow>()?
            .register_workflow::<TimerCancelWorkflow>()?
            .register_workflow::<SlowFirstTaskWorkflow>()?
            .register_workflow::<WaitForCancelWorkflow>()?
            .register_activities(acts);
        Ok(())
    });
    (customize, attempts)
}

// ---------------------------------------------------------------------------------------------
// Activities

/// Activities with scripted failure modes.
pub struct FixtureActivities {
    flaky_failures: u32,
    flaky_attempts: Arc<AtomicU32>,
}

#[activities]
impl FixtureActivities {
    /// Fails (retryably) `flaky_failures` times, then returns `"ok after N attempts"`.
    #[activity]
    pub async fn flaky(self: Arc<Self>, ctx: ActivityContext) -> Result<String, ActivityError> {
        let calls = self.flaky_attempts.fetch_add(1, Ordering::SeqCst) + 1;
        if calls <= self.flaky_failures {
            return Err(ActivityError::application(
                ApplicationFailure::builder(format!("transient failure {calls}"))
                    .type_name("Transient".to_owned())
                    .build(),
            ));
        }
        Ok(format!("ok after {} attempts", ctx.info().attempt))
    }

    /// Always fails with a retryable error.
    #[activity]
    pub async fn always_fails(_ctx: ActivityContext) -> Result<String, ActivityError> {
        Err(ActivityError::application(
            ApplicationFailure::builder("always fails").type_name("Transient".to_owned()).build(),
        ))
    }

    /// Fails with a non-retryable `ApplicationFailure`.
    #[activity]
    pub async fn rejects(_ctx: ActivityContext) -> Result<String, ActivityError> {
        Err(ActivityError::application(
            ApplicationFailure::builder("permanently rejected")
                .type_name("Rejected".to_owned())
                .non_retryable(true)
                .build(),
        ))
    }

    /// Sleeps `secs` seconds (or until cancelled).
    #[activity]
    pub async fn sleepy(ctx: ActivityContext, secs: u64) -> Result<String, ActivityError> {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(secs)) => Ok("woke up".to_owned()),
            _ = ctx.cancelled() => Err(ActivityError::cancelled()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ActivityRunnerWorkflow: runs one fixture activity and reports what the workflow observed.

/// Which activity to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Case {
    /// `flaky`
    Flaky,
    /// `always_fails`
    AlwaysFails,
    /// `rejects`
    Rejects,
    /// `sleepy(10)`
    Sleepy,
}

/// Input of [`ActivityRunnerWorkflow`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunActivity {
    pub case: Case,
    pub start_to_close_secs: u64,
    /// 0 = unlimited.
    pub maximum_attempts: u32,
}

/// What the workflow saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Observed {
    /// The activity returned this.
    Completed(String),
    /// The activity failed for good.
    Failed {
        /// `RetryState` as reported to the workflow (Debug form, e.g. `MaximumAttemptsReached`).
        retry_state: String,
        /// `TimeoutType` (Debug form) if the failure is a timeout.
        timeout: Option<String>,
        /// The message of the innermost cause.
        cause_message: String,
    },
}

#[workflow]
#[derive(Default)]
pub struct ActivityRunnerWorkflow;

#[workflow_methods]
impl ActivityRunnerWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: RunActivity,
    ) -> WorkflowResult<Observed> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(
            input.start_to_close_secs,
        ))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_attempts(input.maximum_attempts)
                .build(),
        )
        .build();
        let result = match input.case {
            Case::Flaky => ctx.execute_activity(FixtureActivities::flaky, (), opts).await,
            Case::AlwaysFails => {
                ctx.execute_activity(FixtureActivities::always_fails, (), opts).await
            }
            Case::Rejects => ctx.execute_activity(FixtureActivities::rejects, (), opts).await,
            Case::Sleepy => ctx.execute_activity(FixtureActivities::sleepy, 10_u64, opts).await,
        };
        match result {
            Ok(value) => Ok(Observed::Completed(value)),
            Err(ActivityExecutionError::Failed(failure)) => {
                let mut cause_message = failure.failure().message.clone();
                let mut cause = failure.failure().cause.as_deref();
                while let Some(c) = cause {
                    cause_message = c.message.clone();
                    cause = c.cause.as_deref();
                }
                Ok(Observed::Failed {
                    retry_state: format!("{:?}", failure.retry_state()),
                    timeout: failure.as_timeout().map(|t| format!("{:?}", t.timeout_type())),
                    cause_message,
                })
            }
            Err(other) => Err(other.into()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TimerCancelWorkflow: a 1 h timer cancelled by a signal, then wait for `finish`.

#[workflow]
#[derive(Default)]
pub struct TimerCancelWorkflow {
    stop: bool,
    finish: bool,
}

#[workflow_methods]
impl TimerCancelWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        let timer = ctx.timer(Duration::from_secs(3600));
        let mut timer = std::pin::pin!(timer);
        let outcome = temporalio_sdk::workflows::select! {
            fired = timer.as_mut() => match fired {
                TimerResult::Fired => "timer fired",
                TimerResult::Cancelled => "timer cancelled by the workflow token",
            },
            stopped = ctx.wait_condition(|s: &Self| s.stop) => {
                stopped?;
                timer.cancel();
                "timer cancelled by signal"
            }
        };
        // Stay open so the test can skip past the old deadline and check it never fires.
        ctx.wait_condition(|s: &Self| s.finish).await?;
        Ok(outcome.to_owned())
    }

    #[signal]
    pub fn stop(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.stop = true;
    }

    #[signal]
    pub fn finish(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.finish = true;
    }
}

// ---------------------------------------------------------------------------------------------
// SlowFirstTaskWorkflow: the first workflow task blocks the worker thread for 1.5 s, so a
// signal sent meanwhile arrives while that task is in flight.

/// Workflow ids whose first task already blocked (the guard survives the SDK's cache eviction
/// and replay, which a `ctx.is_replaying()` check would not: the retried task is not a replay).
static SLOW_ONCE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// How long the first task blocks.
pub const SLOW_TASK: Duration = Duration::from_millis(1500);

#[workflow]
#[derive(Default)]
pub struct SlowFirstTaskWorkflow {
    pings: u32,
}

#[workflow_methods]
impl SlowFirstTaskWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<u32> {
        let first_time = SLOW_ONCE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(ctx.workflow_id().to_owned());
        if first_time && !ctx.is_replaying() {
            // Deliberately blocking (test fixture only): keeps this workflow task in flight.
            std::thread::sleep(SLOW_TASK);
        }
        Ok(ctx.state(|s| s.pings))
    }

    #[signal]
    pub fn ping(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.pings += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// WaitForCancelWorkflow: waits on a 1 h timer; reports cancellation with details.

/// Details the workflow attaches when it observes cancellation.
pub const CANCEL_DETAILS: &str = "observed cancellation";

#[workflow]
#[derive(Default)]
pub struct WaitForCancelWorkflow;

#[workflow_methods]
impl WaitForCancelWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        match ctx.timer(Duration::from_secs(3600)).await {
            TimerResult::Fired => Ok("timer fired".to_owned()),
            TimerResult::Cancelled => {
                Err(WorkflowTermination::cancelled_with_details(CANCEL_DETAILS.to_owned()))
            }
        }
    }
}
