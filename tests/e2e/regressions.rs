//! Defects the production shape found (issue 10), each pinned by the scenario that showed it:
//! a session left running after STOP, a STOP taken for a reply, resolved conversations still
//! linked, throwaway session runs, and webhooks re-emitted under new ids after a reset.

use std::time::Duration;

use convo_domain::{Channel, CloseReason, Money, window::Content};
use convo_tests::{TestEnv, eventually, history, skipped, within};
use convo_workflows::{
    OutboundConversationWorkflow,
    contracts::{
        ComposeInput, ContactTarget, ConversationStatus, ConversationView, FirstMessage, Resolve,
        session_workflow_id,
    },
};
use temporalio_client::{
    WorkflowExecuteUpdateOptions, WorkflowGetResultOptions, WorkflowTerminateOptions,
};
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use temporalio_protos::temporal::api::{
    common::v1::WorkflowExecution,
    workflowservice::v1::{
        ResetWorkflowExecutionRequest, workflow_service_client::WorkflowServiceClient,
    },
};

use crate::support::*;

const PHONE: &str = "+14155550123";

fn compose_template(env: &TestEnv) -> ComposeInput {
    compose(
        env,
        Channel::Whatsapp,
        ContactTarget::Phone { phone: PHONE.into(), name: Some("Ada".into()) },
        FirstMessage {
            text: Some("Hi Ada, your order shipped".into()),
            subject: None,
            template: Some("order_shipped".into()),
            template_params: Default::default(),
        },
    )
}

async fn conversation_result(env: &TestEnv, id: &str) -> anyhow::Result<ConversationView> {
    let handle = conversation(env, id);
    Ok(within(WAIT, "conversation result", handle.get_result(WorkflowGetResultOptions::default()))
        .await??)
}

/// Composes to [`PHONE`] and waits until the template went out; the contact's id.
async fn composed(env: &TestEnv, input: ComposeInput) -> anyhow::Result<String> {
    let id = input.conversation_id.clone();
    env.sessions.compose(input).await?;
    let v =
        conversation_until(env, &id, "awaiting", |v| v.status == ConversationStatus::AwaitingReply)
            .await?;
    v.contact_id.ok_or_else(|| anyhow::anyhow!("no contact resolved"))
}

/// STOP from a contact whose reply linked a live conversation ends the session
/// (`COMPLIANCE_STOP`) and fails the conversation `contact_opted_out`. Before the fix, the
/// session signalled the conversation after its run loop had last looked, and stayed Running
/// forever with nothing pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_a_linked_conversation_ends_the_session() -> anyhow::Result<()> {
    let env = TestEnv::start("stop-linked").await?;
    let input = compose_template(&env);
    let id = input.conversation_id.clone();
    let contact = composed(&env, input).await?;
    inbound(&env, Channel::Whatsapp, PHONE, "wamid.r1", "where is it?").await?;
    conversation_until(&env, &id, "active", |v| v.status == ConversationStatus::Active).await?;

    inbound(&env, Channel::Whatsapp, PHONE, "wamid.r2", "STOP").await?;
    let summary = ended(&env, &contact).await?;
    assert_eq!(summary.close_reason, Some(CloseReason::ComplianceStop));
    let done = conversation_result(&env, &id).await?;
    assert_eq!(done.status, ConversationStatus::Failed);
    assert_eq!(done.error.map(|e| e.code.as_str()), Some("contact_opted_out"));
    record_history(&session(&env, &contact), "session_stop_linked_conversation").await?;
    record_history(&conversation(&env, &id), "conversation_stopped").await?;
    env.shutdown().await
}

/// A STOP as the first answer to a campaign is an opt-out, not a reply: the conversation
/// never turns active, does not record STOP as the contact's message, and fails
/// `contact_opted_out`; the session ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_as_the_first_answer_is_not_a_reply() -> anyhow::Result<()> {
    let env = TestEnv::start("stop-first").await?;
    let input = compose_template(&env);
    let id = input.conversation_id.clone();
    let contact = composed(&env, input).await?;

    inbound(&env, Channel::Whatsapp, PHONE, "wamid.r1", "stop").await?;
    let done = conversation_result(&env, &id).await?;
    assert_eq!(done.status, ConversationStatus::Failed, "{done:?}");
    assert!(!done.messages.iter().any(|m| m.text == "stop"), "STOP is no reply: {done:?}");
    assert_eq!(done.error.map(|e| e.code.as_str()), Some("contact_opted_out"));
    ended(&env, &contact).await?;
    let consent = env.store.consent(&env.workspace_id, &contact).await?;
    assert!(matches!(consent, convo_domain::Consent::OptedOut { .. }), "{consent:?}");
    env.shutdown().await
}

/// STOP ends every conversation still open with the contact, not only the latest one (the one
/// the session links): both campaigns that wrote to the contact fail `contact_opted_out`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_every_open_conversation_of_the_contact() -> anyhow::Result<()> {
    let env = TestEnv::start("stop-all").await?;
    let first = compose_template(&env);
    let first_id = first.conversation_id.clone();
    let contact = composed(&env, first).await?;
    let second = compose_template(&env);
    let second_id = second.conversation_id.clone();
    composed(&env, second).await?;

    inbound(&env, Channel::Whatsapp, PHONE, "wamid.stop", "STOP").await?;
    for id in [&first_id, &second_id] {
        let done = conversation_result(&env, id).await?;
        assert_eq!(done.status, ConversationStatus::Failed, "{id}: {done:?}");
        assert_eq!(done.error.map(|e| e.code.as_str()), Some("contact_opted_out"), "{id}");
    }
    ended(&env, &contact).await?;
    env.shutdown().await
}

/// Once a conversation is resolved (window left open), the contact's next message is the
/// window's alone: the session unlinks it and signals no ended workflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_conversation_is_unlinked_from_the_session() -> anyhow::Result<()> {
    let env = TestEnv::start("unlink").await?;
    let input = compose_template(&env);
    let id = input.conversation_id.clone();
    let contact = composed(&env, input).await?;
    inbound(&env, Channel::Whatsapp, PHONE, "wamid.r1", "thanks").await?;
    view_until(&env, &contact, "linked", |s| s.linked_conversation.as_deref() == Some(&*id))
        .await?;
    conversation_until(&env, &id, "active", |v| v.status == ConversationStatus::Active).await?;
    conversation(&env, &id)
        .execute_update(
            OutboundConversationWorkflow::resolve,
            Resolve { close_window: false },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await?;
    assert_eq!(conversation_result(&env, &id).await?.status, ConversationStatus::Resolved);

    inbound(&env, Channel::Whatsapp, PHONE, "wamid.r2", "one more thing").await?;
    let v =
        view_until(&env, &contact, "second inbound", |s| s.window.inbound_messages == 2).await?;
    assert_eq!(v.linked_conversation, None, "the resolved conversation is unlinked");
    assert!(v.window.open);
    record_history(&session(&env, &contact), "session_unlinked_conversation").await?;
    let events = history(&session(&env, &contact)).await?;
    assert!(
        !events.iter().any(|e| e.event_type() == EventType::SignalExternalWorkflowExecutionFailed),
        "no signal to an ended conversation: {:?}",
        events
            .iter()
            .filter(|e| e.event_type() == EventType::SignalExternalWorkflowExecutionFailed
                || e.event_type() == EventType::SignalExternalWorkflowExecutionInitiated)
            .collect::<Vec<_>>()
    );
    env.shutdown().await
}

/// How many runs the session of `contact` has had, read from visibility.
async fn session_runs(env: &TestEnv, contact: &str) -> anyhow::Result<usize> {
    let query = format!("WorkflowId = '{}'", session_workflow_id(&env.workspace_id, contact));
    let count = env.client.count_workflows(query, Default::default()).await?;
    Ok(count.count())
}

/// A compose to a new contact starts exactly one session run (the template's), and a
/// free-form send with no window is refused without starting any. Before the fix the first
/// message was tried free-form through update-with-start, which started a run only for its
/// validator to refuse, and every refused send did the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_and_refused_sends_start_no_throwaway_runs() -> anyhow::Result<()> {
    let env = TestEnv::start("throwaway").await?;
    if !env.backend().has_visibility() {
        let reason = "counting runs needs visibility (CountWorkflowExecutions), which sdk-java's test server lacks";
        skipped(env.backend(), "compose_and_refused_sends_start_no_throwaway_runs", reason);
        return env.shutdown().await;
    }
    let contact = composed(&env, compose_template(&env)).await?;
    let sends = env.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!(sends[0].content, Content::template("order_shipped"));
    eventually(WAIT, || async {
        let runs = session_runs(&env, &contact).await?;
        anyhow::ensure!(runs >= 1, "{runs} session runs");
        Ok(())
    })
    .await?;

    let (other, _) = env
        .store
        .find_or_create_contact(
            &env.workspace_id,
            convo_store::ContactLookup { phone: Some("+14155550999".into()), ..Default::default() },
        )
        .await?;
    let refusal = refused(send_text(&env, Channel::Whatsapp, &other.id, "out-1", "hi").await?)?;
    assert_eq!(refusal.code, "no_active_session");
    // Visibility may trail a start by a moment: give a wrong run the time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(session_runs(&env, &contact).await?, 1, "the compose's one template run");
    assert_eq!(session_runs(&env, &other.id).await?, 0, "a refused send starts nothing");
    env.shutdown().await
}

/// A reset re-runs a session from its first workflow task: the webhooks it emits again are the
/// same logical events, under the same ids, so the endpoint receives none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_re_emits_no_webhook() -> anyhow::Result<()> {
    let env = TestEnv::start("reset-webhooks").await?;
    if !env.backend().can_reset() {
        let reason = "sdk-java's test server has no ResetWorkflowExecution";
        skipped(env.backend(), "reset_re_emits_no_webhook", reason);
        return env.shutdown().await;
    }
    let contact = inbound(&env, Channel::Whatsapp, PHONE, "wamid.1", "hello").await?.contact_id;
    view_until(&env, &contact, "open", |v| v.window.open).await?;
    sent(send_text(&env, Channel::Whatsapp, &contact, "out-1", "hi there").await?)?;
    env.sessions.close(&env.workspace_id, &contact).await?;
    ended(&env, &contact).await?;
    let before = within(WAIT, "webhooks", env.receiver.wait_for(4)).await?;
    let first_run = history(&session(&env, &contact)).await?;
    let first_task = first_run
        .iter()
        .find(|e| e.event_type() == EventType::WorkflowTaskCompleted)
        .map(|e| e.event_id)
        .ok_or_else(|| anyhow::anyhow!("no completed workflow task"))?;

    let mut service = WorkflowServiceClient::connect(env.temporal_url().to_string()).await?;
    let reset = service
        .reset_workflow_execution(ResetWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: session_workflow_id(&env.workspace_id, &contact),
                run_id: String::new(),
            }),
            reason: "ops: replay the session".into(),
            workflow_task_finish_event_id: first_task,
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        })
        .await?
        .into_inner();
    // The reset run re-emits what it re-does (the reapplied close ends it again).
    let reset_run = env.client.get_workflow_handle::<convo_workflows::SessionWindowWorkflow>(
        session_workflow_id(&env.workspace_id, &contact),
    );
    within(WAIT, "reset run", reset_run.get_result(WorkflowGetResultOptions::default())).await??;
    let reset_events = history(&session(&env, &contact)).await?;
    let emits =
        reset_events.iter().filter(|e| e.event_type() == EventType::ActivityTaskCompleted).count();
    assert!(emits >= 2, "the reset run re-did its work: {reset_events:?}");
    assert_ne!(reset.run_id, "");

    // Give the dispatcher several polls to deliver anything new.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = env.receiver.received();
    let ids = |w: &[convo_activities::testing::ReceivedWebhook]| {
        w.iter().map(|w| w.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&after), ids(&before), "no webhook delivered again under a new id");
    env.shutdown().await
}

/// A reset of a running session terminates the run it resets, but the session goes on in the
/// reset run: the reconciler must not take that termination for its end. Before, it released
/// the hold and delivered `conversation.ended` (`TERMINATED`) while the window stayed open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_session_is_not_reconciled_as_ended() -> anyhow::Result<()> {
    let env = TestEnv::start("reset-not-ended").await?;
    if !env.backend().can_reset() {
        let reason = "sdk-java's test server has no ResetWorkflowExecution";
        skipped(env.backend(), "a_reset_session_is_not_reconciled_as_ended", reason);
        return env.shutdown().await;
    }
    let contact = inbound(&env, Channel::Whatsapp, PHONE, "wamid.1", "hello").await?.contact_id;
    view_until(&env, &contact, "open", |v| v.window.open).await?;
    sent(send_text(&env, Channel::Whatsapp, &contact, "out-1", "hi there").await?)?;
    within(WAIT, "webhooks", env.receiver.wait_for(3)).await?;
    let held = env.store.balance(&env.workspace_id).await?;
    assert_eq!(held.reserved, Money::from_minor(100), "the conversation unit is held");
    let last_task = history(&session(&env, &contact))
        .await?
        .iter()
        .rev()
        .find(|e| e.event_type() == EventType::WorkflowTaskCompleted)
        .map(|e| e.event_id)
        .ok_or_else(|| anyhow::anyhow!("no completed workflow task"))?;
    let mut service = WorkflowServiceClient::connect(env.temporal_url().to_string()).await?;
    service
        .reset_workflow_execution(ResetWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: session_workflow_id(&env.workspace_id, &contact),
                run_id: String::new(),
            }),
            reason: "ops: retry from the last good task".into(),
            workflow_task_finish_event_id: last_task,
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        })
        .await?;
    view_until(&env, &contact, "open after the reset", |v| v.window.open).await?;
    // Several reconciler passes (every 200 ms in tests).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let types = |w: Vec<(String, serde_json::Value)>| w.into_iter().map(|(t, _)| t).collect();
    let delivered: Vec<String> = types(webhooks(&env, 3).await?);
    assert!(!delivered.iter().any(|t| t == "conversation.ended"), "{delivered:?}");
    let balance = env.store.balance(&env.workspace_id).await?;
    assert_eq!(balance.reserved, held.reserved, "the hold is still held");

    env.sessions.close(&env.workspace_id, &contact).await?;
    let ended = ended_webhook(&env).await?;
    assert_eq!(ended["reason"], "EXPLICIT", "{ended}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ended_count =
        webhooks(&env, 4).await?.into_iter().filter(|(t, _)| t == "conversation.ended").count();
    assert_eq!(ended_count, 1, "ended once");
    let balance = env.store.balance(&env.workspace_id).await?;
    assert_eq!(balance.reserved, Money::ZERO);
    assert_eq!(Some(balance.total), held.total.checked_sub(Money::from_minor(100)), "charged once");
    env.shutdown().await
}

/// `temporal workflow terminate` on an open session: convo closes the window in its own view.
/// The reconciler releases the hold the first send placed, emits `conversation.ended` once
/// with the reason `TERMINATED`, and a later send is refused `no_active_session`. Before, the
/// hold stayed reserved and no `conversation.ended` was ever sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_session_is_reconciled() -> anyhow::Result<()> {
    let env = TestEnv::start("terminated").await?;
    let contact = inbound(&env, Channel::Whatsapp, PHONE, "wamid.1", "hello").await?.contact_id;
    view_until(&env, &contact, "open", |v| v.window.open).await?;
    sent(send_text(&env, Channel::Whatsapp, &contact, "out-1", "hi there").await?)?;
    let held = env.store.balance(&env.workspace_id).await?;
    assert_eq!(held.reserved, Money::from_minor(100), "the conversation unit is held");
    // started, message_exchanged in and out.
    within(WAIT, "webhooks", env.receiver.wait_for(3)).await?;

    session(&env, &contact)
        .terminate(
            WorkflowTerminateOptions::builder().reason("ops: stuck session".to_owned()).build(),
        )
        .await?;
    let ended = ended_webhook(&env).await?;
    assert_eq!(ended["reason"], "TERMINATED", "{ended}");
    assert_eq!(ended["temporal"]["detail"], "ops: stuck session");
    let balance = env.store.balance(&env.workspace_id).await?;
    assert_eq!(balance.reserved, Money::ZERO, "the hold is released");
    assert_eq!(balance.total, held.total, "and nothing was charged");

    let refusal = refused(send_text(&env, Channel::Whatsapp, &contact, "out-2", "hi?").await?)?;
    assert_eq!(refusal.code, "no_active_session");
    // Several more reconciler passes: still exactly one conversation.ended.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ended_count =
        webhooks(&env, 4).await?.into_iter().filter(|(t, _)| t == "conversation.ended").count();
    assert_eq!(ended_count, 1);
    env.shutdown().await
}
