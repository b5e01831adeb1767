//! Delivery statuses in the store, on SQLite and (when `DATABASE_URL` is set) Postgres: the
//! forward-only compare-and-set under concurrent reports, the history, the billing session a
//! message belongs to, and the reasoned release of a hold that the session's charge then
//! leaves released.

use std::sync::Arc;

use convo_domain::{
    Channel, DeliveryStatus, Direction, HoldId, MessageId, Money, Timestamp, WorkspaceSettings,
    delivery::Transition,
};
use convo_store::{ContactLookup, HoldStatus, MessageStatus, NewMessage, StatusReport, Store};
use futures::future::join_all;

#[macro_use]
mod support;

use support::{Db, Kind, run};

backend_tests!(concurrent_reports_only_move_forward, billing_sessions_and_reasoned_releases,);

fn report(status: DeliveryStatus, code: Option<&str>) -> StatusReport {
    StatusReport {
        status,
        error_code: code.map(str::to_owned),
        error_message: None,
        source: "test".to_owned(),
        provider_at: None,
    }
}

/// An outbound message the provider accepted, sent at second `at` (the billing session
/// lookups order messages by when they were sent).
async fn outbound(store: &Store, ws: &str, contact: &str, id: &str, at: u64) -> MessageId {
    let message = NewMessage {
        id: MessageId::from(id),
        workspace_id: ws.to_owned(),
        contact_id: contact.to_owned(),
        channel: Channel::Whatsapp,
        direction: Direction::Outbound,
        content: serde_json::json!({"kind": "text", "body": id}),
        status: MessageStatus::Queued,
        provider_message_id: None,
        at: Some(Timestamp::from_epoch_secs(at)),
    };
    store.record_message(&message).await.unwrap();
    store
        .set_message_status(&message.id, MessageStatus::Accepted, Some(&format!("p-{id}")), None)
        .await
        .unwrap();
    message.id
}

async fn setup(store: &Store) -> String {
    store.upsert_workspace("ws1", "Acme", &WorkspaceSettings::default()).await.unwrap();
    let lookup = ContactLookup { phone: Some("+15005550006".into()), ..ContactLookup::default() };
    store.find_or_create_contact("ws1", lookup).await.unwrap().0.id
}

async fn concurrent_reports_only_move_forward(db: Arc<Db>) {
    let store = &db.store;
    let contact = setup(store).await;
    let id = outbound(store, "ws1", &contact, "send-1", 10).await;
    assert_eq!(store.message(&id).await.unwrap().delivery_status, Some(DeliveryStatus::Sent));

    // Every report at once, each twice: the furthest wins and each status is recorded once.
    let reports = [DeliveryStatus::Read, DeliveryStatus::Delivered, DeliveryStatus::Sent];
    let reports: Vec<StatusReport> =
        reports.iter().chain(reports.iter()).map(|&s| report(s, None)).collect();
    let results = join_all(reports.iter().map(|r| store.apply_delivery_status(&id, r))).await;
    let advanced = results.iter().filter(|r| r.as_ref().unwrap().transition == Transition::Advance);
    assert!(advanced.count() >= 1);
    let message = store.message(&id).await.unwrap();
    assert_eq!(message.delivery_status, Some(DeliveryStatus::Read));
    let history: Vec<_> =
        store.status_history(&id).await.unwrap().into_iter().map(|e| e.status).collect();
    assert_eq!(history.first(), Some(&DeliveryStatus::Queued));
    assert_eq!(history.last(), Some(&DeliveryStatus::Read));
    let mut unique = history.clone();
    unique.dedup();
    assert_eq!(unique, history, "no status twice: {history:?}");
    // The history is stored: a store reopened on the same database has it.
    let reopened = Store::connect(&db.url).await.unwrap();
    assert_eq!(reopened.status_history(&id).await.unwrap().len(), history.len());
    // A failure after read is stale.
    let late = store
        .apply_delivery_status(&id, &report(DeliveryStatus::Failed, Some("131047")))
        .await
        .unwrap();
    assert_eq!(late.transition, Transition::Stale);
    assert_eq!(late.message.delivery_status, Some(DeliveryStatus::Read));

    // A failure before delivery ends the message rejected with the provider's code.
    let id2 = outbound(store, "ws1", &contact, "send-2", 20).await;
    let failed = store
        .apply_delivery_status(&id2, &report(DeliveryStatus::Failed, Some("30003")))
        .await
        .unwrap();
    assert_eq!(failed.transition, Transition::Advance);
    assert_eq!(failed.previous, DeliveryStatus::Sent);
    assert_eq!(failed.message.status, MessageStatus::Rejected);
    assert_eq!(failed.message.error.as_deref(), Some("30003"));
    let again =
        store.apply_delivery_status(&id2, &report(DeliveryStatus::Failed, None)).await.unwrap();
    assert_eq!(again.transition, Transition::Duplicate);
    let event = store.status_history(&id2).await.unwrap().pop().unwrap();
    assert_eq!(
        (event.status, event.error_code.as_deref()),
        (DeliveryStatus::Failed, Some("30003"))
    );
}

async fn billing_sessions_and_reasoned_releases(db: Arc<Db>) {
    let store = &db.store;
    let contact = setup(store).await;
    store.credit("ws1", Money::from_minor(1_000), "opening").await.unwrap();
    let template = outbound(store, "ws1", &contact, "a-template", 30).await;
    assert_eq!(store.billing_session_of(&template).await.unwrap(), None, "no hold covers it");

    // Session 1: its first send placed the hold; nothing was delivered.
    let first = outbound(store, "ws1", &contact, "b-first", 40).await;
    let hold = HoldId::for_message(&first);
    store.place_hold("ws1", hold.clone(), Money::from_minor(50)).await.unwrap();
    let second = outbound(store, "ws1", &contact, "c-second", 50).await;
    let session = store.billing_session_of(&second).await.unwrap().unwrap();
    assert_eq!((session.hold_id.clone(), session.any_delivered), (hold.clone(), false));
    store.apply_delivery_status(&first, &report(DeliveryStatus::Delivered, None)).await.unwrap();
    assert!(store.billing_session_of(&second).await.unwrap().unwrap().any_delivered);

    let released = store.release_hold_because("ws1", &hold, "delivery_failed: test").await.unwrap();
    assert_eq!(released.status, HoldStatus::Released);
    assert_eq!(released.release_reason.as_deref(), Some("delivery_failed: test"));
    assert_eq!(store.balance("ws1").await.unwrap().reserved, Money::ZERO);
    // Again: nothing more, the first reason stays; the session's charge leaves it released.
    let again = store.release_hold_because("ws1", &hold, "another").await.unwrap();
    assert_eq!(again.release_reason.as_deref(), Some("delivery_failed: test"));
    let balance = store.charge_hold("ws1", &hold).await.unwrap();
    assert_eq!(balance.total, Money::from_minor(1_000), "nothing charged");
    assert_eq!(store.hold("ws1", &hold).await.unwrap().status, HoldStatus::Released);
    let (reason,): (Option<String>,) = sqlx::query_as(
        "SELECT reason FROM ledger_entries WHERE workspace_id = 'ws1' AND reference = $1
         AND kind = 'release'",
    )
    .bind(hold.as_str())
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(reason.as_deref(), Some("delivery_failed: test"), "the ledger records why");

    // A hold the session already charged stays charged.
    let third = outbound(store, "ws1", &contact, "d-third", 60).await;
    let charged = HoldId::for_message(&third);
    store.place_hold("ws1", charged.clone(), Money::from_minor(50)).await.unwrap();
    store.charge_hold("ws1", &charged).await.unwrap();
    let after = store.release_hold_because("ws1", &charged, "too late").await.unwrap();
    assert_eq!((after.status, after.release_reason), (HoldStatus::Charged, None));
    assert_eq!(store.balance("ws1").await.unwrap().total, Money::from_minor(950));
    // The later hold starts a new session.
    assert_eq!(store.billing_session_of(&third).await.unwrap().unwrap().hold_id, charged);
    assert_eq!(store.billing_session_of(&second).await.unwrap().unwrap().hold_id, hold);
}
