//! The reconciler's store side on both backends: windows reported open and not ended, and the
//! contact's open holds (joined through the message each hold bills).

// `Db::url` serves the suites that reopen a database; these do not.
#[allow(dead_code)]
#[macro_use]
mod support;

use std::sync::Arc;

use convo_domain::{Channel, Direction, HoldId, MessageId, Money, Timestamp, WorkspaceSettings};
use convo_store::{ContactLookup, MessageStatus, NewMessage, OpenWindow, Store};
use support::{Db, Kind, run};

backend_tests!(open_windows_are_listed_until_ended, open_holds_are_found_by_contact);

fn window(session: &str, conversation: u32, contact: &str) -> OpenWindow {
    OpenWindow {
        session_id: session.to_owned(),
        conversation,
        workspace_id: "ws".to_owned(),
        contact_id: contact.to_owned(),
        channel: Channel::Whatsapp,
        opened_at: Timestamp::from_epoch_millis(1_700_000_000_000),
    }
}

async fn setup(store: &Store) -> String {
    store.upsert_workspace("ws", "Acme", &WorkspaceSettings::default()).await.unwrap();
    let lookup = ContactLookup { phone: Some("+14155550100".into()), ..ContactLookup::default() };
    store.find_or_create_contact("ws", lookup).await.unwrap().0.id
}

fn later() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
}

async fn open_windows_are_listed_until_ended(db: Arc<Db>) {
    let store = &db.store;
    let contact = setup(store).await;
    store.window_opened(&window("run-1", 1, &contact)).await.unwrap();
    // Idempotent: a retried activity records it once.
    store.window_opened(&window("run-1", 1, &contact)).await.unwrap();
    store.window_opened(&window("run-2", 1, &contact)).await.unwrap();
    let open = store.open_windows(later(), 10).await.unwrap();
    assert_eq!(open.len(), 2);
    assert_eq!(open[0], window("run-1", 1, &contact));
    // Recorded just now: not older than a past instant.
    let past = Timestamp::from_epoch_millis(1);
    assert!(store.open_windows(past, 10).await.unwrap().is_empty());

    store.window_ended("run-1", 1).await.unwrap();
    store.window_ended("run-1", 1).await.unwrap();
    let open = store.open_windows(later(), 10).await.unwrap();
    assert_eq!(open, [window("run-2", 1, &contact)]);
}

async fn open_holds_are_found_by_contact(db: Arc<Db>) {
    let store = &db.store;
    let contact = setup(store).await;
    let other = store
        .find_or_create_contact(
            "ws",
            ContactLookup { phone: Some("+14155550199".into()), ..ContactLookup::default() },
        )
        .await
        .unwrap()
        .0
        .id;
    store.credit("ws", Money::from_minor(1_000), "opening").await.unwrap();
    for (id, who) in [("out-1", &contact), ("out-2", &contact), ("out-3", &other)] {
        let message = NewMessage {
            id: MessageId::new(id),
            workspace_id: "ws".into(),
            contact_id: who.clone(),
            channel: Channel::Whatsapp,
            direction: Direction::Outbound,
            content: serde_json::json!({"text": "hi"}),
            status: MessageStatus::Accepted,
            provider_message_id: None,
            at: None,
        };
        store.record_message(&message).await.unwrap();
        let hold = HoldId::for_message(&MessageId::new(id));
        store.place_hold("ws", hold, Money::from_minor(100)).await.unwrap();
    }
    store.charge_hold("ws", &HoldId::for_message(&MessageId::new("out-1"))).await.unwrap();

    let holds = store.open_holds_of_contact("ws", &contact, later()).await.unwrap();
    assert_eq!(holds, [(HoldId::for_message(&MessageId::new("out-2")), Money::from_minor(100))]);
    let none =
        store.open_holds_of_contact("ws", &contact, Timestamp::from_epoch_millis(1)).await.unwrap();
    assert!(none.is_empty(), "holds placed after the run closed are not its own");
}
