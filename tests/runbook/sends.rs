//! RUNBOOK.md §2–4 for a send the provider keeps failing: telling it from an idle window,
//! waiting for the retry, retrying at once (`activity reset`), and pausing it
//! (`activity pause` / `unpause`). "Retried" means the message reached the provider exactly
//! once: the sandbox records one send, the API answers the caller's send, the ledger holds one
//! conversation unit and one `message_exchanged` goes out.

use std::time::Duration;

use convo_activities::sandbox::{Fault, FaultRule};
use convo_domain::{Channel, window::Content};
use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    doc::{DESCRIBE, LIST_STUCK, PAUSE, RETRY_SEND, STACK, UNPAUSE},
    harness::{Delivered, Ops, WAIT, int, listed_ids, pending_activity},
};

/// The dev workspace's conversation unit, the hold a free-form send places in a new window.
const CONVERSATION_UNIT: i64 = 50;

/// `describe -o json` until `check` holds.
async fn describe_until(
    ops: &Ops,
    session: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    convo_tests::eventually(WAIT, || async {
        let d = ops.cli.step_json(DESCRIBE, &[("SESSION", session)]).await?;
        anyhow::ensure!(check(&d), "{what}: {d}");
        Ok(d)
    })
    .await
}

/// RUNBOOK.md's list of stuck workflows, until `check` holds for the ids it lists.
async fn stuck_until(
    ops: &Ops,
    what: &str,
    check: impl Fn(&[String]) -> bool,
) -> anyhow::Result<()> {
    convo_tests::eventually(WAIT, || async {
        let listed = listed_ids(&ops.cli.step_json(LIST_STUCK, &[]).await?);
        anyhow::ensure!(check(&listed), "{what}: listed {listed:?}");
        Ok(())
    })
    .await
}

/// The pending `send_message`, once it has failed `attempts - 1` times.
async fn failing_send(ops: &Ops, session: &str, attempts: i64) -> anyhow::Result<Value> {
    let d = describe_until(ops, session, "a failing send", |d| {
        pending_activity(d, "send_message").and_then(|a| int(&a["attempt"])) >= Some(attempts)
    })
    .await?;
    Ok(pending_activity(&d, "send_message").cloned().unwrap_or_default())
}

/// The caller's answer: the first request's, or, when that ran into the API's send timeout
/// (503, "retry with the same Idempotency-Key"), the retried request's.
async fn answer(
    ops: &Ops,
    first: tokio::task::JoinHandle<anyhow::Result<(StatusCode, Value)>>,
    phone: &str,
    text: &str,
    key: &str,
) -> anyhow::Result<Value> {
    let (mut status, mut body) = first.await??;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        (status, body) = ops.api.send(phone, text, key).await?;
    }
    assert_eq!(status, StatusCode::ACCEPTED, "the send is answered: {body}");
    Ok(body)
}

/// What convo shows after a send was retried: one delivery with the text, the hold of one
/// conversation unit, one outbound `message_exchanged`, nothing left pending.
async fn delivered_once(
    ops: &Ops,
    session: &str,
    receipt: &Value,
    text: &str,
) -> anyhow::Result<()> {
    let sends = ops.stack.sandbox.sends();
    assert_eq!(sends.len(), 1, "the provider got the message exactly once: {sends:?}");
    assert_eq!(sends[0].content, Content::Text { body: text.into(), subject: None });
    let balance = ops.api.balance().await?;
    assert_eq!(int(&balance["reserved"]), Some(CONVERSATION_UNIT), "one hold: {balance}");
    // The answer shows it in euros (major units).
    assert_eq!(receipt["billing"]["hold_amount"], 0.5, "{receipt}");
    let message_id = receipt["message_id"].as_str().unwrap_or_default().to_owned();
    ops.webhooks_until("the outbound message", |w| w.iter().any(|w| is_outbound(w, &message_id)))
        .await?;
    // Give the dispatcher several polls to deliver a duplicate, if there were one.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = ops.webhooks();
    let outbound = got.iter().filter(|w| is_outbound(w, &message_id)).count();
    assert_eq!(outbound, 1, "one webhook for the outbound message: {got:?}");
    describe_until(ops, session, "nothing pending", |d| {
        pending_activity(d, "send_message").is_none()
    })
    .await?;
    Ok(())
}

/// Whether `w` is the `conversation.message_exchanged` of the outbound `message_id`.
fn is_outbound(w: &Delivered, message_id: &str) -> bool {
    w.kind == "conversation.message_exchanged"
        && w.data["direction"] == "outbound"
        && w.data["message_id"] == message_id
}

/// §2 and §3 "wait for the retry": an idle open window has nothing pending; a send the
/// provider keeps failing shows as a pending `send_message` with its attempt, last failure and
/// next attempt, while the window still reads open; once the provider is back, the next
/// attempt delivers it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_send_is_told_from_an_idle_window_and_goes_out_once_the_provider_is_back()
-> anyhow::Result<()> {
    let Some(ops) = Ops::start("a_failing_send_is_told_from_an_idle_window").await? else {
        return Ok(());
    };
    let phone = "+4917612345678";
    let session = ops.open_window(phone, "Hallo, wo bleibt mein Paket?").await?;
    let idle = describe_until(&ops, &session, "an idle open window", |d| {
        d["pendingActivities"].as_array().is_none_or(Vec::is_empty)
            && d["pendingWorkflowTask"].is_null()
    })
    .await?;
    let listed = listed_ids(&ops.cli.step_json(LIST_STUCK, &[]).await?);
    assert!(listed.is_empty(), "an idle window is not stuck: {listed:?}");
    assert_eq!(idle["workflowExecutionInfo"]["status"], "WORKFLOW_EXECUTION_STATUS_RUNNING");
    let stack = ops.cli.step(STACK, &[("SESSION", &session)]).await?;
    assert!(stack.contains("timer `expiry`"), "it waits for the window's expiry: {stack}");
    assert!(stack.contains("sends in flight: none"), "{stack}");

    ops.stack.sandbox.inject(FaultRule::new(Fault::Unavailable).on(Channel::Whatsapp));
    let text = "Ihr Paket kommt morgen.";
    let first = tokio::spawn(ops.api.send(phone, text, "rb-wait-1"));
    let send = failing_send(&ops, &session, 2).await?;
    assert!(
        send["lastFailure"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "the last failure says why: {send}"
    );
    assert!(send["nextAttemptScheduleTime"].is_string(), "and when it is tried next: {send}");
    assert_ne!(send["paused"], true);
    let stack = ops.cli.step(STACK, &[("SESSION", &session)]).await?;
    assert!(stack.contains("send_message"), "the stack names the send in flight: {stack}");
    // §7: a send being retried is listed as stuck (convo's ConvoProblem), the idle window was
    // not.
    stuck_until(&ops, "the retried send listed", |listed| listed.contains(&session)).await?;
    let (_, window) = ops.api.get(&format!("/v1/windows/{phone}")).await?;
    assert_eq!(window["open"], true, "a stuck send does not close the window: {window}");
    assert!(ops.stack.sandbox.sends().is_empty());

    // The provider recovers; the next scheduled attempt delivers.
    ops.stack.sandbox.clear_faults();
    let receipt = answer(&ops, first, phone, text, "rb-wait-1").await?;
    delivered_once(&ops, &session, &receipt, text).await?;
    stuck_until(&ops, "nothing listed", <[String]>::is_empty).await?;
    ops.shutdown().await
}

/// §3: with the provider fixed, `temporal activity reset` retries the failing send at once
/// instead of at its next backed-off attempt: the attempt count starts again at one, and the
/// message reaches the provider exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_send_is_retried_at_once_with_activity_reset() -> anyhow::Result<()> {
    let Some(ops) = Ops::start("a_failing_send_is_retried_at_once_with_activity_reset").await?
    else {
        return Ok(());
    };
    let phone = "+4917600000001";
    let session = ops.open_window(phone, "hello").await?;
    ops.stack.sandbox.inject(FaultRule::new(Fault::Unavailable).on(Channel::Whatsapp));
    let text = "Your order ships today.";
    let first = tokio::spawn(ops.api.send(phone, text, "rb-reset-1"));
    let send = failing_send(&ops, &session, 3).await?;
    let activity_id = send["activityId"].as_str().unwrap_or_default().to_owned();

    ops.stack.sandbox.clear_faults();
    ops.cli.step(RETRY_SEND, &[("SESSION", &session), ("ACTIVITY_ID", &activity_id)]).await?;
    let receipt = answer(&ops, first, phone, text, "rb-reset-1").await?;
    delivered_once(&ops, &session, &receipt, text).await?;
    // The attempt that delivered is the reset's first (the history records only the last).
    let history = ops.cli.temporal(&["workflow", "show", "-w", &session, "-o", "json"]).await?;
    let history: Value = serde_json::from_str(&history)?;
    let events = history["events"].as_array().cloned().unwrap_or_default();
    let scheduled = events
        .iter()
        .find(|e| e["activityTaskScheduledEventAttributes"]["activityId"] == send["activityId"])
        .and_then(|e| int(&e["eventId"]));
    let started: Vec<Option<i64>> = events
        .iter()
        .map(|e| &e["activityTaskStartedEventAttributes"])
        .filter(|a| scheduled.is_some() && int(&a["scheduledEventId"]) == scheduled)
        .map(|a| int(&a["attempt"]))
        .collect();
    assert_eq!(started, [Some(1)], "the reset's first attempt delivered ({send})");
    ops.shutdown().await
}

/// §4 and §7: `temporal activity pause` stops a send from being retried (while paused, the
/// recovered provider gets nothing) and lists it among the stuck; `temporal activity unpause`
/// lets it run again, and it is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_send_is_paused_and_unpaused() -> anyhow::Result<()> {
    let Some(ops) = Ops::start("a_runaway_send_is_paused_and_unpaused").await? else {
        return Ok(());
    };
    let phone = "+4917600000002";
    let session = ops.open_window(phone, "hi").await?;
    ops.stack.sandbox.inject(FaultRule::new(Fault::Unavailable).on(Channel::Whatsapp));
    let text = "We are looking into it.";
    let first = tokio::spawn(ops.api.send(phone, text, "rb-pause-1"));
    let send = failing_send(&ops, &session, 2).await?;
    let activity_id = send["activityId"].as_str().unwrap_or_default().to_owned();
    let vars = [("SESSION", session.as_str()), ("ACTIVITY_ID", activity_id.as_str())];

    ops.cli.step(PAUSE, &vars).await?;
    let paused = describe_until(&ops, &session, "paused", |d| {
        pending_activity(d, "send_message").is_some_and(|a| a["paused"] == true)
    })
    .await?;
    let next = pending_activity(&paused, "send_message").cloned().unwrap_or_default();
    stuck_until(&ops, "the paused send listed", |listed| listed.contains(&session)).await?;

    // The provider recovers, but a paused activity is not retried: let the attempt it was
    // due for (at most 4 s away: the third attempt comes 4 s after the second) go by.
    ops.stack.sandbox.clear_faults();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(ops.stack.sandbox.sends().is_empty(), "nothing goes out while paused ({next})");

    ops.cli.step(UNPAUSE, &vars).await?;
    let receipt = answer(&ops, first, phone, text, "rb-pause-1").await?;
    delivered_once(&ops, &session, &receipt, text).await?;
    stuck_until(&ops, "nothing listed", <[String]>::is_empty).await?;
    ops.shutdown().await
}
