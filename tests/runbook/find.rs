//! RUNBOOK.md §1: a contact's session and conversation, found by the contact's address through
//! convo's search attributes, and nobody else's.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    doc::{DESCRIBE, FIND_CONVERSATION, FIND_SESSION},
    harness::{Ops, WAIT, session_id},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contacts_session_and_conversation_are_found_by_address() -> anyhow::Result<()> {
    let Some(ops) = Ops::start("a_contacts_session_and_conversation_are_found_by_address").await?
    else {
        return Ok(());
    };
    let phone = "+4917612345678";
    let whatsapp = ops.api.channel("whatsapp").await?;
    let compose = json!({"channel_id": whatsapp, "contact_phone": phone, "contact_name": "Ada",
        "content": "Hi Ada, your order shipped", "template": {"name": "order_shipped", "variables": {}}});
    let (status, composed) = ops.api.post("/v1/conversations/compose", compose).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{composed}");
    let conversation =
        format!("conversation/{}", composed["conversation_id"].as_str().unwrap_or(""));
    ops.stack.sandbox.wait_for_sends(1, WAIT).await?;
    // Ada answers (her window opens), and someone else writes in too.
    let session = ops.open_window(phone, "Where is it?").await?;
    let other = ops.open_window("+4917699999999", "hello").await?;

    let vars = [("CONTACT", phone)];
    let found = convo_tests::eventually(WAIT, || async {
        let out = ops.cli.step(FIND_SESSION, &vars).await?;
        anyhow::ensure!(out.contains(&session), "not found yet: {out}");
        Ok(out)
    })
    .await?;
    assert!(!found.contains(&other), "only Ada's session: {found}");
    assert!(!found.contains(&conversation), "sessions only: {found}");
    let found = convo_tests::eventually(WAIT, || async {
        let out = ops.cli.step(FIND_CONVERSATION, &vars).await?;
        anyhow::ensure!(out.contains(&conversation), "not found yet: {out}");
        Ok(out)
    })
    .await?;
    assert!(!found.contains(&session), "conversations only: {found}");

    // What the UI's row and page show for it.
    let described = ops.cli.step_json(DESCRIBE, &[("SESSION", &session)]).await?;
    assert_eq!(
        described["executionConfig"]["userMetadata"]["summary"],
        "WhatsApp session with +4917612345678 (Ada)",
        "{described}"
    );
    assert_eq!(session, session_id(&described_contact(&described)));
    ops.shutdown().await
}

/// The contact id in a session's memo.
fn described_contact(described: &serde_json::Value) -> String {
    described["workflowExecutionInfo"]["memo"]["fields"]["contact"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
