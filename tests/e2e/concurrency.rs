//! Many handlers at once on one session: concurrent sends, a close and inbounds racing them.
//! Every run's history must replay against the workflow code that wrote it, as it will after any
//! worker restart or cache eviction.

use convo_domain::Channel;
use convo_tests::{Options, TestEnv, history};
use convo_workflows::contracts::{ContactTarget, FirstMessage};
use temporalio_client::WorkflowFetchHistoryOptions;
use temporalio_common::protos::temporal::api::enums::v1::EventType;

use crate::{replay::replayer, support::*};

const PHONE: &str = "+4915112340001";

async fn replays(env: &TestEnv, contact: &str) -> anyhow::Result<()> {
    let json = session(env, contact)
        .fetch_history(WorkflowFetchHistoryOptions::builder().build())
        .to_json()
        .await?;
    let history = temporalio_client::WorkflowHistory::from_json(&json)?;
    replayer()?.replay_workflow(history).await?;
    Ok(())
}

///
/// Ignored until understood: once in CI on the Java test server, the recorded history did not
/// replay (`Activity type of scheduled event 'send_message' does not match activity type of
/// activity command 'emit_webhook'`): concurrent send updates and an inbound signal on one
/// session. Run it with `-- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "intermittent replay divergence under concurrent handlers, under investigation (issue 17)"]
async fn concurrent_sends_on_one_session_replay() -> anyhow::Result<()> {
    let env = TestEnv::start("concurrent-sends").await?;
    let contact = inbound(&env, Channel::Whatsapp, PHONE, "wamid.c1", "hi").await?.contact_id;
    view_until(&env, &contact, "window open", |v| v.window.open).await?;
    for round in 0..3 {
        let sends = (0..8).map(|i| {
            let id = format!("out-{round}-{i}");
            let env = &env;
            let contact = contact.clone();
            async move { send_text(env, Channel::Whatsapp, &contact, &id, "hello").await }
        });
        let reply = format!("wamid.r{round}");
        let inbound_during = inbound(&env, Channel::Whatsapp, PHONE, &reply, "more");
        let (outcomes, got) = tokio::join!(futures::future::join_all(sends), inbound_during);
        got?;
        for outcome in outcomes {
            sent(outcome?)?;
        }
    }
    env.sandbox.wait_for_sends(24, WAIT).await?;
    let events = history(&session(&env, &contact)).await?;
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.event_type() == EventType::WorkflowTaskFailed)
        .map(|e| format!("{:?}", e.attributes))
        .collect();
    assert!(failed.is_empty(), "workflow tasks failed: {failed:#?}");
    replays(&env, &contact).await?;
    env.shutdown().await
}

/// The chaos bench's load, in small: per contact a compose (a template first message), the
/// contact's answer right after it, a free-form send and a close, sixteen contacts at a time.
/// Every session's and conversation's history replays.
///
/// Ignored until understood: about one run in ten with other tests loading the machine, a
/// session's query fails `[TMPRL1100] Nondeterminism error: UpsertWorkflowSearchAttributesMachine
/// does not handle HistoryEvent(id: 7, ActivityTaskScheduled)` (seen on the Java test server
/// and on the devserver). Run it with `-- --ignored`, three copies at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "intermittent replay divergence under load, under investigation (issue 17)"]
async fn compose_reply_send_close_races_replay() -> anyhow::Result<()> {
    let options = Options { balance: 100_000, ..Options::default() };
    let env = TestEnv::build("compose-races", None, options).await?;
    let contacts = (0..16).map(|i| {
        let env = &env;
        async move {
            let phone = format!("+1415600{i:04}");
            let input = compose(
                env,
                Channel::Whatsapp,
                ContactTarget::Phone { phone: phone.clone(), name: None },
                FirstMessage {
                    text: Some(format!("Hello {i}")),
                    subject: None,
                    template: Some("order_shipped".into()),
                    template_params: Default::default(),
                },
            );
            let conversation_id = input.conversation_id.clone();
            env.sessions.compose(input).await?;
            let contact =
                inbound(env, Channel::Whatsapp, &phone, &format!("wamid.in.{i}"), "where?")
                    .await?
                    .contact_id;
            view_until(env, &contact, "window open", |v| v.window.open).await?;
            sent(send_text(env, Channel::Whatsapp, &contact, &format!("out-{i}"), "soon").await?)?;
            if i % 2 == 0 {
                env.sessions.close(&env.workspace_id, &contact).await?;
            } else {
                inbound(env, Channel::Whatsapp, &phone, &format!("wamid.stop.{i}"), "STOP").await?;
            }
            anyhow::Ok((contact, conversation_id))
        }
    });
    let done = futures::future::join_all(contacts).await;
    for outcome in done {
        let (contact, conversation_id) = outcome?;
        view_until(&env, &contact, "closed", |v| !v.window.open).await?;
        let events = history(&session(&env, &contact)).await?;
        let failed = events
            .iter()
            .filter(|e| e.event_type() == EventType::WorkflowTaskFailed)
            .map(|e| format!("{:?}", e.attributes))
            .collect::<Vec<_>>();
        assert!(failed.is_empty(), "{contact}: workflow tasks failed: {failed:#?}");
        replays(&env, &contact).await?;
        let json = conversation(&env, &conversation_id)
            .fetch_history(WorkflowFetchHistoryOptions::builder().build())
            .to_json()
            .await?;
        replayer()?.replay_workflow(temporalio_client::WorkflowHistory::from_json(&json)?).await?;
    }
    env.shutdown().await
}
