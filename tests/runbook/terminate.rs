//! RUNBOOK.md §6: `temporal workflow terminate` on a session with an open window and a held
//! conversation unit, and what convo does afterwards: the window reads closed (`TERMINATED`) at
//! once, the hold is released, `conversation.ended` is delivered once, and the contact's next
//! message opens a new window.

use std::time::Duration;

use reqwest::StatusCode;

use crate::{
    doc::TERMINATE,
    harness::{Ops, int},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_session_is_closed_settled_and_ended_once() -> anyhow::Result<()> {
    let Some(ops) = Ops::start("a_terminated_session_is_closed_settled_and_ended_once").await?
    else {
        return Ok(());
    };
    let phone = "+4917600000003";
    let session = ops.open_window(phone, "hello").await?;
    let (status, sent) = ops.api.send(phone, "How can we help?", "rb-term-1").await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let before = ops.api.balance().await?;
    assert_eq!(int(&before["reserved"]), Some(50), "the conversation unit is held: {before}");
    ops.webhooks_until("started, inbound and outbound", |w| w.len() >= 3).await?;

    ops.cli.step(TERMINATE, &[("SESSION", &session)]).await?;

    let (_, window) = ops.api.get(&format!("/v1/windows/{phone}")).await?;
    assert_eq!(
        (window["open"].as_bool(), window["close_reason"].as_str()),
        (Some(false), Some("TERMINATED")),
        "closed in convo's view at once: {window}"
    );
    let (status, refused) = ops.api.send(phone, "still there?", "rb-term-2").await?;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_active_session")),
        "{refused}"
    );
    let ended = ops
        .webhooks_until("conversation.ended", |w| w.iter().any(|w| w.kind == "conversation.ended"))
        .await?;
    let ended = ended.into_iter().find(|w| w.kind == "conversation.ended").expect("found above");
    assert_eq!(ended.data["reason"], "TERMINATED", "{ended:?}");
    let detail = ended.data["temporal"]["detail"].as_str().unwrap_or_default();
    assert!(
        !detail.is_empty() && ops.cli.runbook().block(TERMINATE)?.contains(detail),
        "the runbook's --reason is passed on: {ended:?}"
    );
    convo_tests::eventually(crate::harness::WAIT, || async {
        let balance = ops.api.balance().await?;
        anyhow::ensure!(int(&balance["reserved"]) == Some(0), "hold still reserved: {balance}");
        anyhow::ensure!(balance["total"] == before["total"], "something was charged: {balance}");
        Ok(())
    })
    .await?;
    // Several more reconciler passes: still exactly one conversation.ended.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ended = ops.webhooks().into_iter().filter(|w| w.kind == "conversation.ended").count();
    assert_eq!(ended, 1, "conversation.ended is delivered once");

    // Afterwards: the contact's next message opens a new window, and sends go out again.
    let again = ops.open_window(phone, "are you there?").await?;
    assert_eq!(again, session, "the same session workflow id, a new run");
    let (status, sent) = ops.api.send(phone, "Yes, sorry about that.", "rb-term-3").await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(ops.stack.sandbox.sends().len(), 2, "{:?}", ops.stack.sandbox.sends());
    ops.shutdown().await
}
