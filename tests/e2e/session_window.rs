//! `SessionWindowWorkflow` end to end: the inbound path, the send gate, billing, compliance,
//! the three close reasons, the inactivity ping, provider failures and continue-as-new, with
//! the sandbox provider and a signature-verifying webhook receiver on loopback and virtual
//! time skipped wherever a timer matters.

use std::time::{Duration, Instant};

use anyhow::Context;
use convo_activities::sandbox::{Fault, FaultRule};
use convo_domain::{
    Channel, CloseReason, Consent, Money, PolicyOverrides, WindowMode,
    window::{Content, InactivityPing},
};
use convo_tests::{
    Attributes, BackendKind, Options, TestEnv, comparable, default_settings, event_types,
    eventually, history, skipped, within,
};
use serde_json::json;
use temporalio_common::protos::temporal::api::enums::v1::EventType::{self, *};

use crate::support::*;

const PHONE: &str = "+4915112345678";
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The issue-2 acceptance test, on the real workflow: inbound (signal-with-start) → skip 24h →
/// EXPIRED, with the exact history read back through `GetWorkflowExecutionHistory`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_expires_after_24h_skip_with_exact_history() -> anyhow::Result<()> {
    let env = TestEnv::start("expiry-history").await?;
    let contact = inbound(&env, Channel::Whatsapp, PHONE, "wamid.1", "hello").await?.contact_id;
    view_until(&env, &contact, "window open", |v| v.window.open).await?;
    webhooks(&env, 1).await?;

    let wall = Instant::now();
    env.skip(DAY + HOUR).await?;
    let summary = ended(&env, &contact).await?;
    println!("24h window expiry via time skipping took {:?} wall time", wall.elapsed());
    assert_eq!(summary.close_reason, Some(CloseReason::Expired));
    assert_eq!(summary.conversations, 1);

    let events = history(&session(&env, &contact)).await?;
    record_history(&session(&env, &contact), "session_expired").await?;
    let expected: Vec<EventType> = vec![
        WorkflowExecutionStarted,
        WorkflowExecutionSignaled,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        // The inbound handler's patch marker (`inbound-reply-routing`) and the version search
        // attribute the SDK upserts with it.
        MarkerRecorded,
        UpsertWorkflowSearchAttributes,
        // The inbound opens the window: conversation.started is queued while the run loop
        // publishes the session to visibility (the `ops-visibility` patch marker, its version
        // attribute, then convo's attributes: window open) and arms the expiry timer (24h
        // after the inbound), all in the first task.
        ActivityTaskScheduled,
        MarkerRecorded,
        UpsertWorkflowSearchAttributes,
        UpsertWorkflowSearchAttributes,
        TimerStarted,
        ActivityTaskStarted,
        ActivityTaskCompleted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        // conversation.message_exchanged for the opening message.
        ActivityTaskScheduled,
        ActivityTaskStarted,
        ActivityTaskCompleted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        // 24h later: EXPIRED, then conversation.ended, then the run completes.
        TimerFired,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        ActivityTaskScheduled,
        ActivityTaskStarted,
        ActivityTaskCompleted,
        WorkflowTaskScheduled,
        WorkflowTaskStarted,
        WorkflowTaskCompleted,
        // The window reads closed (EXPIRED) in visibility before the run completes.
        UpsertWorkflowSearchAttributes,
        WorkflowExecutionCompleted,
    ];
    let backend = env.backend();
    assert_eq!(comparable(backend, &event_types(&events)), comparable(backend, &expected));

    let activities: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => {
                a.activity_type.as_ref().map(|t| t.name.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(activities, ["emit_webhook"; 3]);
    let timer_fired_at =
        events.iter().find(|e| e.event_type() == TimerFired).and_then(|e| e.event_time);
    let started_at = events[0].event_time;
    let (Some(fired), Some(started)) = (timer_fired_at, started_at) else {
        anyhow::bail!("event times missing")
    };
    let elapsed = fired.seconds - started.seconds;
    let day = i64::try_from(env.scale_secs(24 * 3600))?;
    assert!((day..day + 5).contains(&elapsed), "expiry fired {elapsed}s after start");

    let ended = ended_webhook(&env).await?;
    assert_eq!(ended["reason"], "EXPIRED");
    let types: Vec<String> = webhooks(&env, 3).await?.into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        types,
        ["conversation.started", "conversation.message_exchanged", "conversation.ended"]
    );
    env.shutdown().await
}

/// WhatsApp slides: a reply at hour 23 keeps free-form allowed at hour 30, and the answer
/// carries the moved `conversation_expires_at`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliding_window_allows_send_at_hour_30_after_reply_at_hour_23() -> anyhow::Result<()> {
    let env = TestEnv::start("sliding").await?;
    let contact = inbound(&env, Channel::Whatsapp, PHONE, "wamid.1", "hi").await?.contact_id;
    let first = view_until(&env, &contact, "open", |v| v.window.open).await?;
    let opened = first.window.opened_at.expect("opened");

    env.skip(23 * HOUR).await?;
    inbound(&env, Channel::Whatsapp, PHONE, "wamid.2", "still there?").await?;
    view_until(&env, &contact, "slid", |v| v.window.inbound_messages == 2).await?;
    env.skip(7 * HOUR).await?;

    let receipt = sent(send_text(&env, Channel::Whatsapp, &contact, "out-1", "yes!").await?)?;
    let expires = receipt.conversation_expires_at.expect("window open");
    assert!(
        expires.as_epoch_millis()
            >= opened.as_epoch_millis() + u64::try_from(env.scale(47 * HOUR).as_millis())?,
        "the window runs 24h from the hour-23 reply: {expires} vs opened {opened}"
    );
    let sends = env.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!(sends[0].to, PHONE);
    env.shutdown().await
}

/// A fixed window (Sent-style override) ends 24h after it opened whatever the contact does:
/// the send at hour 30 is refused `no_active_session` and reaches no provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_window_refuses_send_at_hour_30_despite_reply_at_hour_23() -> anyhow::Result<()> {
    let mut settings = default_settings();
    settings.overrides.insert(
        Channel::Whatsapp,
        PolicyOverrides { mode: Some(WindowMode::Fixed), ..PolicyOverrides::default() },
    );
    let env = TestEnv::build("fixed", None, Options { settings, ..Options::default() }).await?;
    let contact = inbound(&env, Channel::Whatsapp, PHONE, "wamid.1", "hi").await?.contact_id;
    view_until(&env, &contact, "open", |v| v.window.open).await?;
    env.skip(23 * HOUR).await?;
    inbound(&env, Channel::Whatsapp, PHONE, "wamid.2", "hello?").await?;
    view_until(&env, &contact, "reply counted", |v| v.window.inbound_messages == 2).await?;
    env.skip(7 * HOUR).await?;
    assert_eq!(ended(&env, &contact).await?.close_reason, Some(CloseReason::Expired));

    let refusal = refused(send_text(&env, Channel::Whatsapp, &contact, "out-1", "late").await?)?;
    assert_eq!(refusal.code, "no_active_session");
    assert!(env.sandbox.sends().is_empty(), "nothing reached the provider");
    env.shutdown().await
}

/// No window at all: a free-form send is refused with `no_active_session`, never downgraded
/// to a template, and nothing reaches the provider; a template goes out and is billed per
/// message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_without_window_is_refused_and_template_is_allowed() -> anyhow::Result<()> {
    let env = TestEnv::start("no-window").await?;
    let (contact, _) = env
        .store
        .find_or_create_contact(
            &env.workspace_id,
            convo_store::ContactLookup { phone: Some(PHONE.into()), ..Default::default() },
        )
        .await?;
    let refusal = refused(send_text(&env, Channel::Whatsapp, &contact.id, "out-1", "hi").await?)?;
    assert_eq!(refusal.code, "no_active_session");
    assert!(env.sandbox.sends().is_empty());

    let receipt =
        sent(send_template(&env, Channel::Whatsapp, &contact.id, "out-2", "order_update").await?)?;
    assert!(!receipt.billing.in_session);
    assert_eq!(receipt.billing.message_price, Money::from_minor(5));
    let sends = env.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!(sends[0].content, Content::template("order_update"));
    // The template's per-message hold is charged once the provider accepted it, and the
    // session (which opened no window) ends.
    ended(&env, &contact.id).await?;
    record_history(&session(&env, &contact.id), "session_template_no_window").await?;
    let balance = env.store.balance(&env.workspace_id).await?;
    assert_eq!((balance.total, balance.reserved), (Money::from_minor(995), Money::ZERO));
    env.shutdown().await
}

/// The first in-window send holds one conversation unit, later ones ride free; when the
/// window closes with an accepted message the hold is charged. Webhooks arrive signed, in
/// sequence: started, message_exchanged (in and out), ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_hold_is_charged_when_a_message_was_accepted() -> anyhow::Result<()> {
    let env = TestEnv::start("hold-charge").await?;
    let contact = inbound(&env, Channel::Whatsapp, PHONE, "wamid.1", "hi").await?.contact_id;
    view_until(&env, &contact, "open", |v| v.window.open).await?;

    // The first send rides on the session the window opened: in session, and it carries the
    // conversation unit as its hold and its price (the RCS conversation API's first send).
    let first = sent(send_text(&env, Channel::Whatsapp, &contact, "out-1", "hello").await?)?;
    assert!(first.billing.in_session);
    assert_eq!(first.billing.hold_amount, Money::from_minor(100));
    assert_eq!(first.billing.message_price, Money::from_minor(100));
    let balance = first.billing.balance.expect("balance reported");
    assert_eq!(
        (balance.free, balance.reserved, balance.total),
        (Money::from_minor(900), Money::from_minor(100), Money::from_minor(1000))
    );

    let second = sent(send_text(&env, Channel::Whatsapp, &contact, "out-2", "again").await?)?;
    assert!(second.billing.in_session);
    assert_eq!(second.billing.hold_amount, Money::ZERO);
    assert_eq!(second.billing.message_price, Money::ZERO);
    // A retried send (same id) gets the first answer and sends nothing new.
    let again = sent(send_text(&env, Channel::Whatsapp, &contact, "out-2", "again").await?)?;
    assert_eq!(again, second);
    assert_eq!(env.sandbox.wait_for_sends(2, WAIT).await?.len(), 2);

    env.sessions.close(&env.workspace_id, &contact).await?;
    assert_eq!(ended(&env, &contact).await?.close_reason, Some(CloseReason::Explicit));
    record_history(&session(&env, &contact), "session_sends_and_close").await?;
    let balance = env.store.balance(&env.workspace_id).await?;
    assert_eq!(
        (balance.free, balance.reserved, balance.total),
        (Money::from_minor(900), Money::ZERO, Money::from_minor(900))
    );

    let ended = ended_webhook(&env).await?;
    assert_eq!(ended["reason"], "EXPLICIT");
    assert_eq!(ended["billing"]["charged"], 1.0, "a unit of 100 cents: {ended}");
    assert_eq!(ended["billing"]["currency"], "EUR", "{ended}");
    let all = webhooks(&env, 1).await?;
    let types: Vec<&str> = all.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types.first(), Some(&"conversation.started"));
    assert!(types.contains(&"conversation.message_exchanged"));
    let conversation: Vec<_> = all.iter().filter(|(t, _)| t.starts_with("conversation.")).collect();
    let mut seqs: Vec<u64> = conversation.iter().filter_map(|(_, d)| d["seq"].as_u64()).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), conversation.len(), "every event has its own sequence number: {all:?}");
    // Each accepted send is announced `sent` once, the retried one too.
    eventually(WAIT, || async {
        let all = webhooks(&env, 1).await?;
        let mut sent_ids: Vec<String> = all
            .iter()
            .filter(|(t, d)| t == "message.status_updated" && d["status"] == "sent")
            .filter_map(|(_, d)| d["message_id"].as_str().map(str::to_owned))
            .collect();
        sent_ids.sort_unstable();
        anyhow::ensure!(sent_ids == ["out-1", "out-2"], "sent announced for {sent_ids:?}");
        Ok(())
    })
    .await?;
    assert!(env.receiver.rejected().is_empty());
    env.shutdown().await
}

/// When every in-window message is rejected by the provider, the hold is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_hold_is_released_when_nothing_was_accepted() -> anyhow::Result<()> {
    let env = TestEnv::start("hold-release").await?;
    let contact = inbound(&env, Channel::Whatsapp, PHONE, "wamid.1", "hi").await?.contact_id;
    view_until(&env, &contact, "open", |v| v.window.open).await?;
    env.sandbox.inject(FaultRule::new(Fault::reject("131026")).on(Channel::Whatsapp));

    let refusal = refused(send_text(&env, Channel::Whatsapp, &contact, "out-1", "hello").await?)?;
    assert_eq!(refusal.code, "provider_rejected");
    env.sessions.close(&env.workspace_id, &contact).await?;
    ended(&env, &contact).await?;
    record_history(&session(&env, &contact), "session_rejected_release").await?;
    let balance = env.store.balance(&env.workspace_id).await?;
    assert_eq!(
        (balance.free, balance.reserved, balance.total),
        (Money::from_minor(1000), Money::ZERO, Money::from_minor(1000))
    );
    let ended = ended_webhook(&env).await?;
    assert_eq!(ended["billing"]["released"], 1.0, "{ended}");
    env.shutdown().await
}

/// A balance that cannot cover the conversation unit refuses the send with
/// `insufficient_balance`, and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_balance_refuses_and_sends_nothing() -> anyhow::Result<()> {
    let env = TestEnv::build("broke", None, Options { balance: 50, ..Options::default() }).await?;
    let contact = inbound(&env, Channel::Whatsapp, PHONE, "wamid.1", "hi").await?.contact_id;
    view_until(&env, &contact, "open", |v| v.window.open).await?;
    let refusal = refused(send_text(&env, Channel::Whatsapp, &contact, "out-1", "hello").await?)?;
    assert_eq!(refusal.code, "insufficient_balance");
    assert!(env.sandbox.sends().is_empty());
    let balance = env.store.balance(&env.workspace_id).await?;
    assert_eq!((balance.free, balance.reserved), (Money::from_minor(50), Money::ZERO));
    env.shutdown().await
}

/// STOP inside a window: the opt-out is stored for every channel, its one confirmation is
/// delivered, the window closes with COMPLIANCE_STOP, and the next send is refused
/// `contact_opted_out`. START opts back in and is confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_tears_down_confirms_and_blocks_then_start_opts_back_in() -> anyhow::Result<()> {
    let env = TestEnv::start("stop").await?;
    let contact = inbound(&env, Channel::Whatsapp, PHONE, "wamid.1", "hi").await?.contact_id;
    view_until(&env, &contact, "open", |v| v.window.open).await?;

    inbound(&env, Channel::Whatsapp, PHONE, "wamid.2", "  stop ").await?;
    assert_eq!(ended(&env, &contact).await?.close_reason, Some(CloseReason::ComplianceStop));
    record_history(&session(&env, &contact), "session_stop").await?;
    let sends = env.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!(sends.len(), 1, "exactly one confirmation: {sends:?}");
    assert!(matches!(&sends[0].content, Content::Text { .. }));
    assert!(env.store.consent(&env.workspace_id, &contact).await?.is_opted_out());
    assert_eq!(ended_webhook(&env).await?["reason"], "COMPLIANCE_STOP");

    // Blocked on this channel and any other.
    let refusal = refused(send_template(&env, Channel::Sms, &contact, "out-1", "promo").await?)?;
    assert_eq!(refusal.code, "contact_opted_out");
    assert_eq!(env.sandbox.sends().len(), 1);

    inbound(&env, Channel::Whatsapp, PHONE, "wamid.3", "START").await?;
    env.sandbox.wait_for_sends(2, WAIT).await?;
    within(WAIT, "consent", async {
        loop {
            if let Consent::OptedIn { .. } = env.store.consent(&env.workspace_id, &contact).await? {
                return anyhow::Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await??;
    let receipt =
        sent(send_text(&env, Channel::Whatsapp, &contact, "out-2", "welcome back").await?)?;
    assert!(receipt.conversation_expires_at.is_some());
    env.shutdown().await
}

/// After N hours without a user message the configured ping goes out, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactivity_ping_goes_out_after_silence() -> anyhow::Result<()> {
    let mut settings = default_settings();
    settings.inactivity_ping = Some(InactivityPing {
        after_secs: 4 * 3600,
        content: Content::Text { body: "Still need help?".into(), subject: None },
    });
    let env = TestEnv::build("ping", None, Options { settings, ..Options::default() }).await?;
    let contact = inbound(&env, Channel::Whatsapp, PHONE, "wamid.1", "hi").await?.contact_id;
    view_until(&env, &contact, "open", |v| v.window.open).await?;
    env.skip(3 * HOUR).await?;
    assert!(env.sandbox.sends().is_empty(), "no ping before 4h");
    env.skip(2 * HOUR).await?;
    let sends = env.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!(sends[0].content, Content::Text { body: "Still need help?".into(), subject: None });
    env.skip(10 * HOUR).await?;
    assert_eq!(env.sandbox.sends().len(), 1, "one ping per silence");
    record_history(&session(&env, &contact), "session_ping").await?;
    env.shutdown().await
}

/// A provider outage is retried with backoff until the provider recovers: one message
/// delivered, under the same idempotency key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_outage_recovers() -> anyhow::Result<()> {
    let env = TestEnv::start("outage").await?;
    let contact = inbound(&env, Channel::Whatsapp, PHONE, "wamid.1", "hi").await?.contact_id;
    view_until(&env, &contact, "open", |v| v.window.open).await?;
    let mut rule = FaultRule::new(Fault::Unavailable).on(Channel::Whatsapp);
    rule.times = Some(3);
    env.sandbox.inject(rule);

    let send = send_text(&env, Channel::Whatsapp, &contact, "out-1", "hello");
    let skip = async {
        // The activity's retry backoff is virtual time: skip it while the send waits.
        // On a server that cannot skip, the backoff (2 s, 4 s, 8 s) passes for real.
        for _ in 0..6 {
            env.skip(Duration::from_secs(30)).await?;
        }
        anyhow::Ok(())
    };
    let (outcome, skipped) = tokio::join!(send, skip);
    skipped?;
    let receipt = sent(outcome?)?;
    let sends = env.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].idempotency_key.as_deref(), Some("out-1"));
    assert_eq!(sends[0].provider_message_id, receipt.provider_message_id);
    let log = env.store.message(&convo_domain::MessageId::new("out-1")).await?;
    assert_eq!(log.status, convo_store::MessageStatus::Accepted);
    env.shutdown().await
}

/// A permanent rejection is not retried: the send answers `provider_rejected` with the
/// provider's class, and the message log records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_permanent_rejection_is_reported() -> anyhow::Result<()> {
    let env = TestEnv::start("rejection").await?;
    let contact = inbound(&env, Channel::Whatsapp, PHONE, "wamid.1", "hi").await?.contact_id;
    view_until(&env, &contact, "open", |v| v.window.open).await?;
    env.sandbox.inject(FaultRule::new(Fault::reject("131026")).on(Channel::Whatsapp));
    let refusal = refused(send_text(&env, Channel::Whatsapp, &contact, "out-1", "hello").await?)?;
    assert_eq!(refusal.code, "provider_rejected");
    assert!(
        refusal.message.contains("131026")
            || refusal.message.contains("Undeliverable")
            || !refusal.message.is_empty()
    );
    let log = env.store.message(&convo_domain::MessageId::new("out-1")).await?;
    assert_eq!(log.status, convo_store::MessageStatus::Rejected);
    // The refusal is announced as the message's status, like a provider's late report.
    let failed = eventually(WAIT, || async {
        webhooks(&env, 1)
            .await?
            .into_iter()
            .find(|(t, d)| t == "message.status_updated" && d["message_id"] == "out-1")
            .map(|(_, d)| d)
            .context("no message.status_updated for out-1 yet")
    })
    .await?;
    assert_eq!(
        (&failed["status"], &failed["source"]),
        (&json!("failed"), &json!("convo")),
        "{failed}"
    );
    assert!(failed["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{failed}");
    env.shutdown().await
}

/// A long session continues as new before its history grows large, without losing the window,
/// its timer, its billing session or a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_session_continues_as_new_without_losing_anything() -> anyhow::Result<()> {
    if BackendKind::from_env()? == BackendKind::TestServer {
        let test = "long_session_continues_as_new_without_losing_anything";
        skipped(
            BackendKind::TestServer,
            test,
            "sdk-java's test server never suggests continue-as-new, and the run's own limit (8,000 events) is too far for a test",
        );
        return Ok(());
    }
    let options = Options { suggest_continue_as_new_events: Some(40), ..Options::default() };
    let env = TestEnv::build("can", None, options).await?;
    let contact = inbound(&env, Channel::Whatsapp, PHONE, "wamid.0", "hi").await?.contact_id;
    view_until(&env, &contact, "open", |v| v.window.open).await?;
    for i in 1..=12 {
        inbound(&env, Channel::Whatsapp, PHONE, &format!("wamid.{i}"), "more").await?;
        sent(send_text(&env, Channel::Whatsapp, &contact, &format!("out-{i}"), "reply").await?)?;
    }
    let v = view_until(&env, &contact, "counted", |v| v.window.inbound_messages == 13).await?;
    assert!(v.runs > 1, "the session continued as new: {v:?}");
    assert_eq!(v.window.outbound_messages, 12);
    assert!(v.window.open);
    assert_eq!(env.sandbox.sends().len(), 12);
    // The later run reads in Temporal as the first did: attributes and memo. (Not its static
    // summary: the Rust SDK's ContinueAsNewOptions cannot carry one.)
    let d = session(&env, &contact).describe(Default::default()).await?;
    let attrs = d.search_attributes();
    assert_eq!(attrs.get(&convo_workflows::ops::CONTACT_ADDRESS).as_deref(), Some(PHONE));
    assert_eq!(attrs.get(&convo_workflows::ops::WINDOW_STATE).as_deref(), Some("open"));
    let card: Option<serde_json::Value> = d.memo().get(convo_workflows::ops::memo::CONTACT)?;
    assert_eq!(card.map(|c| c["address"].clone()), Some(serde_json::json!(PHONE)));

    env.skip(DAY + HOUR).await?;
    assert_eq!(ended(&env, &contact).await?.close_reason, Some(CloseReason::Expired));
    let balance = env.store.balance(&env.workspace_id).await?;
    assert_eq!((balance.reserved, balance.total), (Money::ZERO, Money::from_minor(900)));
    env.shutdown().await
}

/// The contact writes on WhatsApp, then on SMS: the session follows to SMS (the same window),
/// a send on SMS goes out there and one on WhatsApp is refused `channel_mismatch`; the
/// recorded history pins the move for replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_follows_the_contact_to_another_channel() -> anyhow::Result<()> {
    let env = TestEnv::start("follow-channel").await?;
    let phone = "+4915112345699";
    let contact = inbound(&env, Channel::Whatsapp, phone, "wamid.f1", "hello").await?.contact_id;
    let opened = view_until(&env, &contact, "window open", |v| v.window.open).await?;
    inbound(&env, Channel::Sms, phone, "SMf2", "on sms now").await?;
    let moved = view_until(&env, &contact, "on sms", |v| v.window.channel == Channel::Sms).await?;
    assert_eq!(moved.window.opened_at, opened.window.opened_at, "the same window");
    let outcome = send_text(&env, Channel::Sms, &contact, "f-sms", "answer on sms").await?;
    assert!(
        matches!(outcome, convo_workflows::contracts::SessionSendOutcome::Sent(_)),
        "{outcome:?}"
    );
    let sends = within(WAIT, "sms send", env.sandbox.wait_for_sends(1, WAIT)).await??;
    assert_eq!(sends[0].channel, Channel::Sms);
    let refused = send_text(&env, Channel::Whatsapp, &contact, "f-wa", "on whatsapp").await?;
    match refused {
        convo_workflows::contracts::SessionSendOutcome::Refused(e) => {
            assert_eq!(e.code, "channel_mismatch", "{e:?}");
        }
        other => panic!("expected channel_mismatch, got {other:?}"),
    }
    env.skip(DAY + HOUR).await?;
    let summary = ended(&env, &contact).await?;
    assert_eq!(summary.close_reason, Some(CloseReason::Expired));
    record_history(&session(&env, &contact), "session_follows_channel").await?;
    Ok(())
}
