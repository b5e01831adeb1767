//! What an operator sees of convo in Temporal (issue 11): the search attributes the worker
//! registers and the workflows keep current, the memo and static summaries, readable activity
//! results and summaries, the UI's "Current Details" and the `__stack_trace` answer, on every
//! backend.

use std::time::Duration;

use anyhow::Context;
use convo_activities::sandbox::{Fault, FaultRule};
use convo_client::Inbound;
use convo_domain::Channel;
use convo_tests::{TestEnv, eventually, history, skipped, within};
use convo_worker::search_attributes::{self, Mode};
use convo_workflows::{
    OutboundConversationWorkflow, SessionWindowWorkflow,
    contracts::{ContactTarget, ConversationStatus, FirstMessage, session_workflow_id},
    ops,
};
use futures::StreamExt;
use temporalio_client::{
    UntypedQuery, WorkflowDescribeOptions, WorkflowListOptions, WorkflowQueryOptions,
};
use temporalio_common::{
    data_converters::RawValue,
    protos::temporal::api::{
        history::v1::history_event::Attributes, operatorservice::v1::RemoveSearchAttributesRequest,
    },
};

use crate::support::*;

const PHONE: &str = "+4917612345678";

/// The contact writes in with a name, as WhatsApp's webhooks give it.
async fn ada_writes(env: &TestEnv, id: &str) -> anyhow::Result<String> {
    let inbound = Inbound {
        workspace_id: env.workspace_id.clone(),
        channel: Channel::Whatsapp,
        from: PHONE.to_owned(),
        name: Some("Ada".to_owned()),
        message_id: id.to_owned(),
        text: "hello, where is my order?".to_owned(),
        postback_data: None,
        sent_at: None,
    };
    Ok(within(WAIT, "inbound", env.sessions.inbound(inbound)).await??.contact_id)
}

/// A search attribute of the workflow, as `DescribeWorkflowExecution` reports it.
async fn attribute(
    env: &TestEnv,
    workflow_id: &str,
    key: &temporalio_common::search_attributes::SearchAttributeKey<String>,
) -> anyhow::Result<Option<String>> {
    let handle = env.client.get_workflow_handle::<SessionWindowWorkflow>(workflow_id);
    let d = handle.describe(WorkflowDescribeOptions::default()).await?;
    Ok(d.search_attributes().get(key))
}

/// Waits until the workflow's attribute `key` reads `value`.
async fn attribute_until(
    env: &TestEnv,
    workflow_id: &str,
    key: temporalio_common::search_attributes::SearchAttributeKey<String>,
    value: &str,
) -> anyhow::Result<()> {
    eventually(WAIT, || async {
        let found = attribute(env, workflow_id, &key).await?;
        anyhow::ensure!(found.as_deref() == Some(value), "{} is {found:?}", key.name());
        Ok(())
    })
    .await
}

/// The ids of the workflows a visibility query lists.
async fn listed(env: &TestEnv, query: &str) -> anyhow::Result<Vec<String>> {
    let mut stream =
        env.client.list_workflows(query, WorkflowListOptions::builder().limit(50).build());
    let mut ids = Vec::new();
    while let Some(e) = stream.next().await {
        ids.push(e?.id().to_owned());
    }
    Ok(ids)
}

/// An ops engineer finds +4917612345678's session with one filter, and reads who it is, on
/// which channel and in what state, without opening Postgres.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_found_by_the_contacts_number_and_reads_at_a_glance() -> anyhow::Result<()> {
    let env = TestEnv::start("ops-session").await?;
    let contact = ada_writes(&env, "wamid.ops.1").await?;
    view_until(&env, &contact, "window open", |v| v.window.open).await?;
    let workflow_id = session_workflow_id(&env.workspace_id, &contact);
    attribute_until(&env, &workflow_id, ops::WINDOW_STATE, "open").await?;

    // One filter finds it (the query an ops engineer types in the UI or the CLI).
    if env.backend().has_visibility() {
        let query = format!("ConvoContactAddress = '{PHONE}'");
        let ids = eventually(WAIT, || async {
            let ids = listed(&env, &query).await?;
            anyhow::ensure!(!ids.is_empty(), "nothing listed for {query}");
            Ok(ids)
        })
        .await?;
        assert_eq!(ids, std::slice::from_ref(&workflow_id), "{query}");
        let open = format!(
            "ConvoWorkspace = '{}' AND ConvoWindowState = 'open' AND ConvoChannel = 'whatsapp'",
            env.workspace_id
        );
        assert_eq!(listed(&env, &open).await?, std::slice::from_ref(&workflow_id), "{open}");
    } else {
        skipped(env.backend(), "ops: list by ConvoContactAddress", "no visibility queries");
    }

    let handle = session(&env, &contact);
    let d = handle.describe(WorkflowDescribeOptions::default()).await?;
    if env.backend() == convo_tests::BackendKind::TestServer && d.static_summary().is_none() {
        // Its SignalWithStart drops the request's user metadata (StartWorkflow keeps it).
        skipped(env.backend(), "ops: signal-with-start summary", "the server drops it");
    } else {
        assert_eq!(d.static_summary(), Some("WhatsApp session with +4917612345678 (Ada)"));
        let details = d.static_details();
        assert!(details.is_some_and(|t| t.contains(&contact)), "{details:?}");
    }
    let attrs = d.search_attributes();
    assert_eq!(attrs.get(&ops::WORKSPACE).as_deref(), Some(env.workspace_id.as_str()));
    assert_eq!(attrs.get(&ops::CONTACT_ID).as_deref(), Some(contact.as_str()));
    assert_eq!(attrs.get(&ops::CONTACT_ADDRESS).as_deref(), Some(PHONE));
    assert_eq!(attrs.get(&ops::CHANNEL).as_deref(), Some("whatsapp"));
    assert_eq!(attrs.get(&ops::CLOSE_REASON), None, "no window closed yet");
    assert_eq!(attrs.get(&ops::PROBLEM).as_deref(), Some(ops::NO_PROBLEM));
    let memo = d.memo();
    let card: serde_json::Value = memo.get(ops::memo::CONTACT)?.context("memo contact")?;
    assert_eq!(card["address"], PHONE);
    assert_eq!(card["name"], "Ada");
    assert_eq!(card["id"], contact.as_str());
    let channel: String = memo.get(ops::memo::CHANNEL)?.context("memo channel")?;
    assert_eq!(channel, "whatsapp");

    // What the UI's "Call Stack" tab and `temporal workflow stack` show.
    let q = handle.query(SessionWindowWorkflow::stack_trace, (), WorkflowQueryOptions::default());
    let stack = within(WAIT, "stack trace", q).await??;
    assert!(stack.contains("waiting for timer `expiry`"), "{stack}");
    assert!(stack.contains("Window open"), "{stack}");
    // The UI's "Current Details", through the SDK's own metadata query.
    let metadata = raw_query(&handle, "__temporal_workflow_metadata").await?;
    let details = metadata["currentDetails"].as_str().unwrap_or_default();
    assert!(details.contains("**Window open** with +4917612345678 (Ada)"), "{metadata}");

    // Closing it shows in visibility before the run ends: closed, EXPLICIT.
    env.sessions.close(&env.workspace_id, &contact).await?;
    let summary = ended(&env, &contact).await?;
    assert_eq!(summary.close_reason, Some(convo_domain::CloseReason::Explicit));
    attribute_until(&env, &workflow_id, ops::WINDOW_STATE, "closed").await?;
    attribute_until(&env, &workflow_id, ops::CLOSE_REASON, "EXPLICIT").await?;
    if env.backend().has_visibility() {
        let query = format!("ConvoContactAddress = '{PHONE}' AND ConvoCloseReason = 'EXPLICIT'");
        eventually(WAIT, || async {
            let ids = listed(&env, &query).await?;
            anyhow::ensure!(ids == [workflow_id.clone()], "{query} lists {ids:?}");
            Ok(())
        })
        .await?;
    }

    // Every activity has a summary, and every result reads as JSON: no `binary/null`.
    let events = history(&handle).await?;
    let mut scheduled = 0;
    for event in &events {
        match &event.attributes {
            Some(Attributes::ActivityTaskScheduledEventAttributes(_)) => {
                scheduled += 1;
                let summary = event.user_metadata.as_ref().and_then(|m| m.summary.as_ref());
                let text = summary.map(|p| String::from_utf8_lossy(&p.data).into_owned());
                assert!(text.as_deref().is_some_and(|t| t.len() > 2), "no summary: {event:?}");
            }
            Some(Attributes::ActivityTaskCompletedEventAttributes(done)) => {
                for p in done.result.iter().flat_map(|r| &r.payloads) {
                    let encoding = p.metadata.get("encoding").map(|e| e.as_slice());
                    assert_eq!(encoding, Some(&b"json/plain"[..]), "result {p:?}");
                }
            }
            _ => {}
        }
    }
    assert!(scheduled >= 3, "expected webhook activities, saw {scheduled}");
    env.shutdown().await
}

/// A send stuck on a provider outage does not look like an idle open window: the session
/// reads `ConvoProblem = 'send_retrying'` (one query lists every such session) with the
/// failure in its details, and reads healthy again once the provider recovers and the message
/// went out exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_stuck_on_a_provider_outage_is_listed_until_it_goes_out() -> anyhow::Result<()> {
    let env = TestEnv::start("ops-stuck").await?;
    let contact = ada_writes(&env, "wamid.ops.stuck").await?;
    view_until(&env, &contact, "window open", |v| v.window.open).await?;
    let workflow_id = session_workflow_id(&env.workspace_id, &contact);
    env.sandbox.inject(FaultRule::new(Fault::Unavailable).on(Channel::Whatsapp));

    let send = tokio::spawn({
        let sessions = env.sessions.clone();
        let workspace = env.workspace_id.clone();
        let contact = contact.clone();
        async move {
            let kind = convo_workflows::contracts::SendKind::Freeform {
                text: "your order is on its way".into(),
                subject: None,
                sender: convo_domain::Sender::Automated,
            };
            let request = convo_workflows::contracts::SendRequest {
                message_id: "out-stuck".into(),
                channel: Channel::Whatsapp,
                kind,
                conversation_id: None,
                agent_id: None,
                traffic_type: None,
            };
            sessions.send(&workspace, &contact, Channel::Whatsapp, request).await
        }
    });
    attribute_until(&env, &workflow_id, ops::PROBLEM, ops::SEND_RETRYING).await?;
    let handle = session(&env, &contact);
    let metadata = raw_query(&handle, "__temporal_workflow_metadata").await?;
    let details = metadata["currentDetails"].as_str().unwrap_or_default();
    assert!(details.contains("**send `out-stuck` failing**"), "{details}");
    assert!(details.contains("attempt 1 failed"), "{details}");
    if env.backend().has_visibility() {
        let query = "ExecutionStatus = 'Running' AND ConvoProblem = 'send_retrying'";
        eventually(WAIT, || async {
            let ids = listed(&env, query).await?;
            anyhow::ensure!(ids == [workflow_id.clone()], "{query} lists {ids:?}");
            Ok(())
        })
        .await?;
    }

    // The provider recovers; the next retry (2 s backoff, doubling) delivers it.
    env.sandbox.clear_faults();
    let skip = async {
        for _ in 0..6 {
            if send.is_finished() {
                break;
            }
            env.skip(Duration::from_secs(30)).await?;
        }
        anyhow::Ok(())
    };
    skip.await?;
    let outcome = within(Duration::from_secs(90), "stuck send", send).await???;
    sent(outcome)?;
    let sends = env.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!(sends.len(), 1, "the message reached the provider once");
    attribute_until(&env, &workflow_id, ops::PROBLEM, ops::NO_PROBLEM).await?;
    env.sessions.close(&env.workspace_id, &contact).await?;
    ended(&env, &contact).await?;
    record_history(&handle, "session_send_retrying").await?;
    env.shutdown().await
}

/// A composed conversation names its contact and status in visibility, and follows its
/// status to `resolved`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_carries_its_contact_and_status() -> anyhow::Result<()> {
    let env = TestEnv::start("ops-conversation").await?;
    let input = compose(
        &env,
        Channel::Whatsapp,
        ContactTarget::Phone { phone: PHONE.into(), name: Some("Ada".into()) },
        FirstMessage { template: Some("order_shipped".into()), ..FirstMessage::default() },
    );
    let id = input.conversation_id.clone();
    env.sessions.compose(input).await?;
    let v = conversation_until(&env, &id, "awaiting", |v| {
        v.status == ConversationStatus::AwaitingReply
    })
    .await?;
    let contact = v.contact_id.context("contact")?;
    let workflow_id = format!("conversation/{id}");
    attribute_until(&env, &workflow_id, ops::CONVERSATION_STATUS, "awaiting_reply").await?;

    let handle = conversation(&env, &id);
    let d = handle.describe(WorkflowDescribeOptions::default()).await?;
    assert_eq!(d.static_summary(), Some("WhatsApp conversation with +4917612345678 (Ada)"));
    let attrs = d.search_attributes();
    assert_eq!(attrs.get(&ops::CONTACT_ADDRESS).as_deref(), Some(PHONE));
    assert_eq!(attrs.get(&ops::CONTACT_ID).as_deref(), Some(contact.as_str()));
    assert_eq!(attrs.get(&ops::CHANNEL).as_deref(), Some("whatsapp"));
    let session: String = d.memo().get(ops::memo::SESSION)?.context("memo session")?;
    assert_eq!(session, session_workflow_id(&env.workspace_id, &contact));
    let q = handle.query(
        OutboundConversationWorkflow::stack_trace,
        (),
        WorkflowQueryOptions::default(),
    );
    let stack = within(WAIT, "stack trace", q).await??;
    assert!(stack.contains("waiting for: the contact's reply"), "{stack}");

    if env.backend().has_visibility() {
        let query = format!(
            "ConvoContactAddress = '{PHONE}' AND WorkflowType = 'OutboundConversationWorkflow'"
        );
        eventually(WAIT, || async {
            let ids = listed(&env, &query).await?;
            anyhow::ensure!(ids == [workflow_id.clone()], "{query} lists {ids:?}");
            Ok(())
        })
        .await?;
    }

    let resolve = convo_workflows::contracts::Resolve { close_window: true };
    let options = temporalio_client::WorkflowExecuteUpdateOptions::default();
    handle.execute_update(OutboundConversationWorkflow::resolve, resolve, options).await?;
    attribute_until(&env, &workflow_id, ops::CONVERSATION_STATUS, "resolved").await?;
    env.shutdown().await
}

/// The worker registers the attributes idempotently, and in check mode names the missing ones
/// instead of starting workflows that would fail their tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_attributes_are_registered_once_and_checked_by_name() -> anyhow::Result<()> {
    let env = TestEnv::start("ops-registration").await?;
    // The worker registered them at start-up; a second worker adds nothing.
    let again = search_attributes::ensure(&env.client, "default", Mode::Register).await?;
    if env.backend().has_visibility() {
        assert!(again.added.is_empty(), "added again: {:?}", again.added);
    } else {
        // sdk-java's test server cannot list, so every attribute is added again; it takes that.
        assert_eq!(again.added.len(), ops::SEARCH_ATTRIBUTES.len());
        skipped(env.backend(), "ops: check mode", "the server cannot list search attributes");
        return env.shutdown().await;
    }

    let remove = RemoveSearchAttributesRequest {
        namespace: "default".into(),
        search_attributes: vec!["ConvoCloseReason".into()],
    };
    env.client
        .connection()
        .operator_service()
        .remove_search_attributes(tonic::Request::new(remove))
        .await
        .context("removing ConvoCloseReason")?;
    let missing = eventually(WAIT, || async {
        match search_attributes::ensure(&env.client, "default", Mode::Check).await {
            Err(e) => Ok(e.to_string()),
            Ok(_) => anyhow::bail!("the removal is not listed yet"),
        }
    })
    .await?;
    assert!(missing.contains("lacks convo's search attributes ConvoCloseReason"), "{missing}");
    assert!(missing.contains("--name ConvoCloseReason --type Keyword"), "{missing}");

    let added = search_attributes::ensure(&env.client, "default", Mode::Register).await?;
    assert_eq!(added.added, ["ConvoCloseReason"]);
    let none = search_attributes::ensure(&env.client, "default", Mode::Check).await?;
    assert!(none.added.is_empty());
    env.shutdown().await
}

/// Answers an untyped query and reads its JSON.
async fn raw_query(
    handle: &temporalio_client::WorkflowHandle<temporalio_client::Client, SessionWindowWorkflow>,
    name: &str,
) -> anyhow::Result<serde_json::Value> {
    let q = handle.query(
        UntypedQuery::<<SessionWindowWorkflow as temporalio_common::HasWorkflowDefinition>::Run>::new(name),
        RawValue { payloads: Vec::new() },
        WorkflowQueryOptions::default(),
    );
    let raw = tokio::time::timeout(Duration::from_secs(20), q).await.context(name.to_owned())??;
    let payload = raw.payloads.first().context("no payload")?;
    Ok(serde_json::from_slice(&payload.data)?)
}
