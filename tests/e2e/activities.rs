//! Activity retries, permanent failures and timeouts as the server records them and as the
//! workflow observes them. Retry backoffs (1 s, then 2 s) run in real time: the server follows
//! the wall clock while time skipping is locked.

use std::{sync::atomic::Ordering, time::Duration};

use convo_tests::{Attributes, TestEnv, event_types, history, within};
use temporalio_client::WorkflowGetResultOptions;
use temporalio_common::protos::temporal::api::{
    enums::v1::{EventType, RetryState},
    history::v1::HistoryEvent,
};

use crate::fixtures::{self, ActivityRunnerWorkflow, Case, Observed, RunActivity};

const RESULT_WAIT: Duration = Duration::from_secs(30);

fn count(events: &[HistoryEvent], t: EventType) -> usize {
    events.iter().filter(|e| e.event_type() == t).count()
}

fn started_attempts(events: &[HistoryEvent]) -> Vec<i32> {
    events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::ActivityTaskStartedEventAttributes(a)) => Some(a.attempt),
            _ => None,
        })
        .collect()
}

async fn run(
    env: &TestEnv,
    case: Case,
    start_to_close_secs: u64,
    maximum_attempts: u32,
) -> anyhow::Result<(Observed, Vec<HistoryEvent>)> {
    let input = RunActivity { case, start_to_close_secs, maximum_attempts };
    let handle = env
        .client
        .start_workflow(
            ActivityRunnerWorkflow::run,
            input,
            env.start_options(TestEnv::unique_id(&format!("{case:?}"))),
        )
        .await?;
    let observed =
        within(RESULT_WAIT, "get_result", handle.get_result(WorkflowGetResultOptions::default()))
            .await??;
    Ok((observed, history(&handle).await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_that_fails_twice_succeeds_on_the_third_attempt() -> anyhow::Result<()> {
    const FAILURES: u32 = 2;
    let (customize, attempts) = fixtures::register(FAILURES);
    let env = TestEnv::start_with("flaky-activity", Some(customize)).await?;

    let (observed, events) = run(&env, Case::Flaky, 10, 0).await?;
    assert_eq!(observed, Observed::Completed(format!("ok after {} attempts", FAILURES + 1)));
    assert_eq!(attempts.load(Ordering::SeqCst), FAILURES + 1);

    // Retries are invisible in history: one started event carrying the final attempt number.
    assert_eq!(started_attempts(&events), [FAILURES as i32 + 1]);
    assert_eq!(count(&events, EventType::ActivityTaskFailed), 0, "{:?}", event_types(&events));
    assert_eq!(count(&events, EventType::ActivityTaskScheduled), 1);
    assert_eq!(count(&events, EventType::ActivityTaskCompleted), 1);
    assert_eq!(
        events.last().map(HistoryEvent::event_type),
        Some(EventType::WorkflowExecutionCompleted)
    );
    env.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_that_always_fails_stops_at_maximum_attempts() -> anyhow::Result<()> {
    let (customize, _) = fixtures::register(0);
    let env = TestEnv::start_with("always-fails", Some(customize)).await?;

    let (observed, events) = run(&env, Case::AlwaysFails, 10, 3).await?;
    assert_eq!(
        observed,
        Observed::Failed {
            retry_state: "MaximumAttemptsReached".to_owned(),
            timeout: None,
            cause_message: "always fails".to_owned(),
        }
    );

    let types = event_types(&events);
    let failed_at = types
        .iter()
        .position(|t| *t == EventType::ActivityTaskFailed)
        .unwrap_or_else(|| panic!("no ActivityTaskFailed in {types:?}"));
    assert_eq!(types[failed_at - 1], EventType::ActivityTaskStarted, "{types:?}");
    assert_eq!(started_attempts(&events), [3]);
    assert_eq!(count(&events, EventType::ActivityTaskFailed), 1);
    let Some(Attributes::ActivityTaskFailedEventAttributes(failed)) = &events[failed_at].attributes
    else {
        panic!("ActivityTaskFailed without attributes");
    };
    assert_eq!(failed.retry_state(), RetryState::MaximumAttemptsReached);
    env.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_retryable_failure_fails_on_the_first_attempt() -> anyhow::Result<()> {
    let (customize, _) = fixtures::register(0);
    let env = TestEnv::start_with("non-retryable", Some(customize)).await?;

    let (observed, events) = run(&env, Case::Rejects, 10, 0).await?;
    assert_eq!(
        observed,
        Observed::Failed {
            retry_state: "NonRetryableFailure".to_owned(),
            timeout: None,
            cause_message: "permanently rejected".to_owned(),
        }
    );
    assert_eq!(started_attempts(&events), [1]);
    let failed = events
        .iter()
        .find_map(|e| match &e.attributes {
            Some(Attributes::ActivityTaskFailedEventAttributes(a)) => Some(a),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no ActivityTaskFailed in {:?}", event_types(&events)));
    assert_eq!(failed.retry_state(), RetryState::NonRetryableFailure);
    env.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_to_close_timeout_is_recorded_and_observed() -> anyhow::Result<()> {
    let (customize, _) = fixtures::register(0);
    let env = TestEnv::start_with("activity-timeout", Some(customize)).await?;

    // `sleepy` sleeps 10 s; start-to-close is 1 s and there is a single attempt.
    let (observed, events) = run(&env, Case::Sleepy, 1, 1).await?;
    let Observed::Failed { retry_state, timeout, .. } = &observed else {
        panic!("expected a failure, got {observed:?}");
    };
    assert_eq!(timeout.as_deref(), Some("StartToClose"), "{observed:?}");
    assert_eq!(retry_state, "MaximumAttemptsReached");

    let types = event_types(&events);
    assert_eq!(count(&events, EventType::ActivityTaskTimedOut), 1, "{types:?}");
    assert_eq!(count(&events, EventType::ActivityTaskCompleted), 0, "{types:?}");
    let timed_out =
        types.iter().position(|t| *t == EventType::ActivityTaskTimedOut).unwrap_or_default();
    // The attempt that timed out was started (sdk-java's test server does not record it).
    if env.backend() != convo_tests::BackendKind::TestServer {
        assert_eq!(types[timed_out - 1], EventType::ActivityTaskStarted, "{types:?}");
    }
    env.shutdown().await
}
