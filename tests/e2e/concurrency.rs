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
    replays_json(&json).await.map_err(|e| kept(&json, contact, e))
}

async fn replays_json(json: &[u8]) -> anyhow::Result<()> {
    let history = temporalio_client::WorkflowHistory::from_json(json)?;
    replayer()?.replay_workflow(history).await?;
    Ok(())
}

/// `error`, naming where the history it is about was kept for a post-mortem (the server the
/// test ran on is gone by the time anyone reads the failure).
fn kept(json: &[u8], name: &str, error: anyhow::Error) -> anyhow::Error {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("divergence");
    let path = dir.join(format!("{}.json", name.replace('/', "_")));
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, json)) {
        Ok(()) => error.context(format!("history kept in {}", path.display())),
        Err(e) => error.context(format!("history not kept: {e}")),
    }
}

/// The session's and the conversation's histories, kept when `outcome` failed.
async fn keep_on_failure(
    env: &TestEnv,
    contact: Option<&str>,
    conversation_id: &str,
    outcome: anyhow::Result<()>,
) -> anyhow::Result<()> {
    let Err(mut error) = outcome else { return Ok(()) };
    let options = || WorkflowFetchHistoryOptions::builder().build();
    if let Some(contact) = contact
        && let Ok(json) = session(env, contact).fetch_history(options()).to_json().await
    {
        error = kept(&json, contact, error);
    }
    if let Ok(json) = conversation(env, conversation_id).fetch_history(options()).to_json().await {
        error = kept(&json, conversation_id, error);
    }
    Err(error)
}

///
/// On the Java test server this once wrote a history that did not replay (`Activity type of
/// scheduled event 'send_message' does not match activity type of activity command
/// 'emit_webhook'`): an update sequenced before a signal of its task (see
/// `convo_worker`'s task guard).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
/// On the Java test server, about one run in ten with other tests loading the machine, a
/// session's query failed `[TMPRL1100] Nondeterminism error:
/// UpsertWorkflowSearchAttributesMachine does not handle HistoryEvent(id: 7,
/// ActivityTaskScheduled)`: the compose's `send` update was sequenced before the contact's
/// inbound signal in the session's first task (see `convo_worker`'s task guard). A failing
/// run keeps the histories it is about under `target/tmp/divergence/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
            let mut contact = None;
            let outcome = async {
                env.sessions.compose(input).await?;
                let id =
                    inbound(env, Channel::Whatsapp, &phone, &format!("wamid.in.{i}"), "where?")
                        .await?
                        .contact_id;
                contact = Some(id.clone());
                view_until(env, &id, "window open", |v| v.window.open).await?;
                sent(send_text(env, Channel::Whatsapp, &id, &format!("out-{i}"), "soon").await?)?;
                if i % 2 == 0 {
                    env.sessions.close(&env.workspace_id, &id).await?;
                } else {
                    inbound(env, Channel::Whatsapp, &phone, &format!("wamid.stop.{i}"), "STOP")
                        .await?;
                }
                view_until(env, &id, "closed", |v| !v.window.open).await?;
                anyhow::Ok(())
            }
            .await;
            keep_on_failure(env, contact.as_deref(), &conversation_id, outcome).await?;
            anyhow::Ok((contact.unwrap_or_default(), conversation_id))
        }
    });
    let done = futures::future::join_all(contacts).await;
    for outcome in done {
        let (contact, conversation_id) = outcome?;
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
        replays_json(&json).await.map_err(|e| kept(&json, &conversation_id, e))?;
    }
    env.shutdown().await
}
