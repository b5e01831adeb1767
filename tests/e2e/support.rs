//! Shared steps of the session and conversation tests: inbound messages and sends as the API
//! makes them, the session's query, and the webhooks the receiver verified.

use std::time::Duration;

use anyhow::{Context, bail};
use convo_client::{Inbound, InboundAccepted};
use convo_domain::{Channel, MessageType, Sender};
use convo_tests::{TestEnv, eventually, within};
use convo_workflows::{
    OutboundConversationWorkflow, SessionWindowWorkflow,
    contracts::{
        Assignee, ComposeInput, ContactTarget, ConversationView, FirstMessage, SendError, SendKind,
        SendReceipt, SendRequest, SessionSendOutcome, SessionSummary, SessionView,
        conversation_workflow_id, session_workflow_id,
    },
};
use temporalio_client::{
    Client, WorkflowFetchHistoryOptions, WorkflowGetResultOptions, WorkflowHandle,
    WorkflowQueryOptions,
};
use temporalio_common::HasWorkflowDefinition;

/// Generous bound for anything that involves the worker.
pub(crate) const WAIT: Duration = Duration::from_secs(20);
pub(crate) const HOUR: Duration = Duration::from_secs(3600);

/// The contact's message arrives through the inbound path.
pub(crate) async fn inbound(
    env: &TestEnv,
    channel: Channel,
    from: &str,
    id: &str,
    text: &str,
) -> anyhow::Result<InboundAccepted> {
    let inbound = Inbound {
        workspace_id: env.workspace_id.clone(),
        channel,
        from: from.to_owned(),
        name: None,
        message_id: id.to_owned(),
        text: text.to_owned(),
        postback_data: None,
        sent_at: None,
    };
    within(WAIT, "inbound", env.sessions.inbound(inbound)).await?.context("inbound")
}

/// A free-form send through the contact's window.
pub(crate) async fn send_text(
    env: &TestEnv,
    channel: Channel,
    contact: &str,
    id: &str,
    text: &str,
) -> anyhow::Result<SessionSendOutcome> {
    let kind =
        SendKind::Freeform { text: text.to_owned(), subject: None, sender: Sender::Automated };
    send(env, channel, contact, id, kind).await
}

/// A template send (allowed with no window).
pub(crate) async fn send_template(
    env: &TestEnv,
    channel: Channel,
    contact: &str,
    id: &str,
    template: &str,
) -> anyhow::Result<SessionSendOutcome> {
    let kind = SendKind::Template {
        template: template.to_owned(),
        message_type: MessageType::Message,
        params: Default::default(),
    };
    send(env, channel, contact, id, kind).await
}

async fn send(
    env: &TestEnv,
    channel: Channel,
    contact: &str,
    id: &str,
    kind: SendKind,
) -> anyhow::Result<SessionSendOutcome> {
    let request = SendRequest {
        message_id: id.to_owned(),
        channel,
        kind,
        conversation_id: None,
        agent_id: None,
        traffic_type: None,
    };
    within(WAIT, "send", env.sessions.send(&env.workspace_id, contact, channel, request))
        .await?
        .context("send")
}

pub(crate) fn sent(outcome: SessionSendOutcome) -> anyhow::Result<SendReceipt> {
    match outcome {
        SessionSendOutcome::Sent(r) => Ok(r),
        SessionSendOutcome::Refused(e) => bail!("send refused: {e}"),
    }
}

pub(crate) fn refused(outcome: SessionSendOutcome) -> anyhow::Result<SendError> {
    match outcome {
        SessionSendOutcome::Refused(e) => Ok(e),
        SessionSendOutcome::Sent(r) => bail!("send went out: {r:?}"),
    }
}

pub(crate) fn session(
    env: &TestEnv,
    contact: &str,
) -> WorkflowHandle<Client, SessionWindowWorkflow> {
    env.client.get_workflow_handle::<SessionWindowWorkflow>(session_workflow_id(
        &env.workspace_id,
        contact,
    ))
}

/// The session's `state` query.
pub(crate) async fn view(env: &TestEnv, contact: &str) -> anyhow::Result<SessionView> {
    let handle = session(env, contact);
    let q = handle.query(SessionWindowWorkflow::state, (), WorkflowQueryOptions::default());
    Ok(within(WAIT, "state query", q).await??)
}

/// Waits until the session's state satisfies `check`.
pub(crate) async fn view_until(
    env: &TestEnv,
    contact: &str,
    what: &str,
    check: impl Fn(&SessionView) -> bool,
) -> anyhow::Result<SessionView> {
    eventually(WAIT, || async {
        let v = view(env, contact).await?;
        anyhow::ensure!(check(&v), "{what}: state is {v:?}");
        Ok(v)
    })
    .await
}

/// The session run's result (the latest run).
pub(crate) async fn ended(env: &TestEnv, contact: &str) -> anyhow::Result<SessionSummary> {
    let handle = session(env, contact);
    let r = handle.get_result(WorkflowGetResultOptions::default());
    Ok(within(WAIT, "session result", r).await??)
}

/// The verified webhooks so far, as (type, data), once at least `n` arrived.
pub(crate) async fn webhooks(
    env: &TestEnv,
    n: usize,
) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
    let got = within(WAIT, "webhooks", env.receiver.wait_for(n)).await?;
    Ok(got
        .iter()
        .filter(|w| w.verified)
        .map(|w| {
            let body = w.json();
            (body["type"].as_str().unwrap_or_default().to_owned(), body["data"].clone())
        })
        .collect())
}

/// The `conversation.ended` webhook's data, once it arrived.
pub(crate) async fn ended_webhook(env: &TestEnv) -> anyhow::Result<serde_json::Value> {
    eventually(WAIT, || async {
        let all = webhooks(env, 1).await?;
        all.into_iter()
            .find(|(t, _)| t == "conversation.ended")
            .map(|(_, d)| d)
            .context("no conversation.ended yet")
    })
    .await
}

/// With `CONVO_RECORD_HISTORIES=1`, writes the run's history to `tests/histories/{name}.json`
/// for the replay tests (`replay.rs`). Re-record after a deliberate, versioned workflow change.
pub(crate) async fn record_history<W: HasWorkflowDefinition>(
    handle: &WorkflowHandle<Client, W>,
    name: &str,
) -> anyhow::Result<()> {
    if std::env::var_os("CONVO_RECORD_HISTORIES").is_none() {
        return Ok(());
    }
    let json =
        handle.fetch_history(WorkflowFetchHistoryOptions::builder().build()).to_json().await?;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("histories")
        .join(format!("{name}.json"));
    std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A compose from a campaign bot, waiting 48 h (model time) for the reply.
pub(crate) fn compose(
    env: &TestEnv,
    channel: Channel,
    to: ContactTarget,
    first: FirstMessage,
) -> ComposeInput {
    ComposeInput {
        conversation_id: TestEnv::unique_id("cv"),
        workspace_id: env.workspace_id.clone(),
        channel,
        to,
        first_message: first,
        reply_timeout_secs: env.scale_secs(48 * 3600),
        assignee: Assignee::Bot { id: "campaign-bot".into() },
        traffic_type: None,
    }
}

/// The conversation's workflow.
pub(crate) fn conversation(
    env: &TestEnv,
    id: &str,
) -> WorkflowHandle<Client, OutboundConversationWorkflow> {
    env.client.get_workflow_handle::<OutboundConversationWorkflow>(conversation_workflow_id(id))
}

/// Waits until the conversation's view satisfies `check`.
pub(crate) async fn conversation_until(
    env: &TestEnv,
    id: &str,
    what: &str,
    check: impl Fn(&ConversationView) -> bool,
) -> anyhow::Result<ConversationView> {
    eventually(WAIT, || async {
        let handle = conversation(env, id);
        let q = handle.query(
            OutboundConversationWorkflow::conversation,
            (),
            WorkflowQueryOptions::default(),
        );
        let v = within(WAIT, "conversation query", q).await??;
        anyhow::ensure!(check(&v), "{what}: conversation is {v:?}");
        Ok(v)
    })
    .await
}
