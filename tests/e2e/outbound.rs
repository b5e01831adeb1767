//! `OutboundConversationWorkflow` end to end: compose to a new phone, a new e-mail address and
//! an existing contact; the first message as a template or free-form; the reply, take-over,
//! an agent's reply and resolve; the reply timeout.

use convo_domain::{Channel, CloseReason, window::Content};
use convo_store::ContactLookup;
use convo_tests::{TestEnv, within};
use convo_workflows::{
    OutboundConversationWorkflow,
    contracts::{
        AgentReply, Assignee, ContactTarget, ConversationStatus, FirstMessage, Resolve, TakeOver,
    },
};
use temporalio_client::{WorkflowExecuteUpdateOptions, WorkflowGetResultOptions};

use crate::support::*;

/// A campaign writes to a new phone number with no window open: the contact is created, the
/// template goes out (never the free-form text), the reply links the conversation to the
/// contact's window, a human takes over and replies in the window, and resolving closes the
/// window (`EXPLICIT`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_to_new_phone_then_reply_take_over_and_resolve() -> anyhow::Result<()> {
    let env = TestEnv::start("compose-phone").await?;
    let phone = "+14155550123";
    let input = compose(
        &env,
        Channel::Whatsapp,
        ContactTarget::Phone { phone: "+1 (415) 555-0123".into(), name: Some("Ada".into()) },
        FirstMessage {
            text: Some("Hi Ada, your order shipped".into()),
            subject: None,
            template: Some("order_shipped".into()),
            template_params: Default::default(),
        },
    );
    let id = input.conversation_id.clone();
    env.sessions.compose(input).await?;

    let v = conversation_until(&env, &id, "awaiting", |v| {
        v.status == ConversationStatus::AwaitingReply
    })
    .await?;
    assert!(v.contact_created);
    let contact = v.contact_id.clone().expect("resolved");
    let sends = env.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!(sends[0].to, phone);
    assert_eq!(sends[0].content, Content::template("order_shipped"));

    inbound(&env, Channel::Whatsapp, phone, "wamid.r1", "thanks! where is it?").await?;
    let v =
        conversation_until(&env, &id, "active", |v| v.status == ConversationStatus::Active).await?;
    assert!(v.messages.iter().any(|m| m.text == "thanks! where is it?"));
    let session = view_until(&env, &contact, "linked", |s| {
        s.linked_conversation.as_deref() == Some(id.as_str())
    })
    .await?;
    assert!(session.window.open);

    let handle = conversation(&env, &id);
    let taken = handle
        .execute_update(
            OutboundConversationWorkflow::take_over,
            TakeOver { agent_id: "agent-7".into() },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await?;
    assert_eq!(taken.assignee, Assignee::Human { id: "agent-7".into() });
    let receipt = handle
        .execute_update(
            OutboundConversationWorkflow::reply,
            AgentReply {
                message_id: "agent-reply-1".into(),
                text: "It arrives tomorrow.".into(),
                rich: None,
            },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await?;
    assert!(receipt.conversation_expires_at.is_some());
    let sends = env.sandbox.wait_for_sends(2, WAIT).await?;
    assert_eq!(
        sends[1].content,
        Content::Text { body: "It arrives tomorrow.".into(), subject: None }
    );

    handle
        .execute_update(
            OutboundConversationWorkflow::resolve,
            Resolve { close_window: true },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await?;
    let done =
        within(WAIT, "conversation result", handle.get_result(WorkflowGetResultOptions::default()))
            .await??;
    assert_eq!(done.status, ConversationStatus::Resolved);
    assert_eq!(done.messages.len(), 3, "{done:?}");
    record_history(&handle, "conversation_resolved").await?;
    record_history(&crate::support::session(&env, &contact), "session_linked_conversation").await?;
    assert_eq!(ended(&env, &contact).await?.close_reason, Some(CloseReason::Explicit));
    env.shutdown().await
}

/// The contact answers while the first message is still with the provider (a slow provider,
/// a fast contact): the conversation is active once the send is done, not left awaiting a
/// reply it already has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_during_the_first_send_makes_the_conversation_active() -> anyhow::Result<()> {
    let env = TestEnv::start("compose-early-reply").await?;
    let phone = "+14155550177";
    env.sandbox.set_latency(std::time::Duration::from_secs(3));
    let input = compose(
        &env,
        Channel::Whatsapp,
        ContactTarget::Phone { phone: phone.into(), name: None },
        FirstMessage { template: Some("order_shipped".into()), ..FirstMessage::default() },
    );
    let id = input.conversation_id.clone();
    env.sessions.compose(input).await?;
    let contact = conversation_until(&env, &id, "contact", |v| v.contact_id.is_some())
        .await?
        .contact_id
        .expect("resolved");
    // The first message is logged (with its conversation) before the provider answers.
    convo_tests::eventually(WAIT, || async {
        let logged = env.store.messages(&env.workspace_id, &contact).await?;
        anyhow::ensure!(!logged.is_empty(), "the first message is not logged yet");
        Ok(())
    })
    .await?;
    let v = conversation_until(&env, &id, "still sending", |_| true).await?;
    assert_eq!(v.status, ConversationStatus::Pending, "{v:?}");
    inbound(&env, Channel::Whatsapp, phone, "wamid.early", "already here!").await?;
    let v =
        conversation_until(&env, &id, "active", |v| v.status == ConversationStatus::Active).await?;
    assert!(v.messages.iter().any(|m| m.text == "already here!"), "{v:?}");
    assert_eq!(env.sandbox.sends().len(), 1);
    env.shutdown().await
}

/// A reply on another channel while the first message is still with the provider moves the
/// conversation to that channel, but the first message stays logged on the channel it went
/// out on (it was shown as SMS after an SMS reply overtook a WhatsApp template).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_on_another_channel_during_the_first_send_keeps_its_channel() -> anyhow::Result<()>
{
    let env = TestEnv::start("compose-early-sms-reply").await?;
    let phone = "+14155550178";
    env.sandbox.set_latency(std::time::Duration::from_secs(3));
    let input = compose(
        &env,
        Channel::Whatsapp,
        ContactTarget::Phone { phone: phone.into(), name: None },
        FirstMessage { template: Some("order_shipped".into()), ..FirstMessage::default() },
    );
    let id = input.conversation_id.clone();
    env.sessions.compose(input).await?;
    let contact = conversation_until(&env, &id, "contact", |v| v.contact_id.is_some())
        .await?
        .contact_id
        .expect("resolved");
    convo_tests::eventually(WAIT, || async {
        let logged = env.store.messages(&env.workspace_id, &contact).await?;
        anyhow::ensure!(!logged.is_empty(), "the first message is not logged yet");
        Ok(())
    })
    .await?;
    inbound(&env, Channel::Sms, phone, "SMearly", "got it on SMS").await?;
    let v =
        conversation_until(&env, &id, "active", |v| v.status == ConversationStatus::Active).await?;
    let first = v.messages.iter().find(|m| m.text == "template:order_shipped");
    assert_eq!(first.and_then(|m| m.channel), Some(Channel::Whatsapp), "{v:?}");
    let reply = v.messages.iter().find(|m| m.text == "got it on SMS");
    assert_eq!(reply.and_then(|m| m.channel), Some(Channel::Sms), "{v:?}");
    assert_eq!(env.sandbox.sends()[0].channel, Channel::Whatsapp);
    env.shutdown().await
}

/// E-mail has no window: the free-form first message goes out with its subject over SMTP to
/// a contact created from the address; no reply within the timeout expires the conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_to_new_email_expires_without_reply() -> anyhow::Result<()> {
    let env = TestEnv::start("compose-email").await?;
    let mut input = compose(
        &env,
        Channel::Email,
        ContactTarget::Email { email: "Grace@Example.COM".into(), name: Some("Grace".into()) },
        FirstMessage {
            text: Some("Your invoice is ready.".into()),
            subject: Some("Invoice #42".into()),
            template: None,
            template_params: Default::default(),
        },
    );
    input.reply_timeout_secs = env.scale_secs(3600);
    let id = input.conversation_id.clone();
    env.sessions.compose(input).await?;
    let v = conversation_until(&env, &id, "awaiting", |v| {
        v.status == ConversationStatus::AwaitingReply
    })
    .await?;
    assert!(v.contact_created);
    let sends = env.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!(sends[0].to, "grace@example.com");
    assert_eq!(
        sends[0].content,
        Content::Text {
            body: "Your invoice is ready.".into(),
            subject: Some("Invoice #42".into())
        }
    );

    env.skip(2 * HOUR).await?;
    let handle = conversation(&env, &id);
    let done =
        within(WAIT, "result", handle.get_result(WorkflowGetResultOptions::default())).await??;
    assert_eq!(done.status, ConversationStatus::Expired);
    assert_eq!(done.error.map(|e| e.code.as_str()), Some("reply_timeout"));
    record_history(&conversation(&env, &id), "conversation_reply_timeout").await?;
    env.shutdown().await
}

/// An existing contact with an open window gets the free-form text, not the template; an
/// email compose without a subject fails validation naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_to_existing_contact_in_window_sends_free_form() -> anyhow::Result<()> {
    let env = TestEnv::start("compose-existing").await?;
    let phone = "+4930123456";
    let contact = inbound(&env, Channel::Whatsapp, phone, "wamid.1", "hello?").await?.contact_id;
    view_until(&env, &contact, "open", |v| v.window.open).await?;
    let input = compose(
        &env,
        Channel::Whatsapp,
        ContactTarget::Id { contact_id: contact.clone() },
        FirstMessage {
            text: Some("How can we help?".into()),
            subject: None,
            template: Some("hello_template".into()),
            template_params: Default::default(),
        },
    );
    let id = input.conversation_id.clone();
    env.sessions.compose(input).await?;
    let v = conversation_until(&env, &id, "awaiting", |v| {
        v.status == ConversationStatus::AwaitingReply
    })
    .await?;
    assert!(!v.contact_created);
    // The message that opened the window came before the conversation: it is not its reply.
    assert!(v.messages.iter().all(|m| m.message_id != "wamid.1"), "{v:?}");
    let sends = env.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!(sends[0].content, Content::Text { body: "How can we help?".into(), subject: None });

    let bad = compose(
        &env,
        Channel::Email,
        ContactTarget::Email { email: "x@example.com".into(), name: None },
        FirstMessage {
            text: Some("no subject".into()),
            subject: None,
            template: None,
            template_params: Default::default(),
        },
    );
    let bad_id = bad.conversation_id.clone();
    env.sessions.compose(bad).await?;
    let handle = conversation(&env, &bad_id);
    let done =
        within(WAIT, "result", handle.get_result(WorkflowGetResultOptions::default())).await??;
    assert_eq!(done.status, ConversationStatus::Failed);
    let error = done.error.expect("error");
    assert_eq!(error.code, "validation_failed");
    assert!(error.message.contains("first_message.subject"), "{error:?}");

    // An opted-out contact is refused before anything is sent.
    let (opted, _) = env
        .store
        .find_or_create_contact(
            &env.workspace_id,
            ContactLookup { phone: Some("+4930999999".into()), ..Default::default() },
        )
        .await?;
    env.store
        .record_consent(
            &env.workspace_id,
            &opted.id,
            convo_domain::Consent::OptedOut { at: convo_domain::Timestamp::from_epoch_secs(1) },
            "api",
        )
        .await?;
    let refused = compose(
        &env,
        Channel::Whatsapp,
        ContactTarget::Id { contact_id: opted.id },
        FirstMessage { template: Some("promo".into()), ..FirstMessage::default() },
    );
    let refused_id = refused.conversation_id.clone();
    env.sessions.compose(refused).await?;
    let handle = conversation(&env, &refused_id);
    let done =
        within(WAIT, "result", handle.get_result(WorkflowGetResultOptions::default())).await??;
    assert_eq!(done.status, ConversationStatus::Failed);
    assert_eq!(done.error.map(|e| e.code.as_str()), Some("contact_opted_out"));
    assert_eq!(env.sandbox.sends().len(), 1);
    env.shutdown().await
}
