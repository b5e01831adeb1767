//! The store queries behind the metrics endpoint's gauges, on both backends: open windows per
//! channel, each endpoint's webhook backlog and oldest pending delivery, the open holds.

// `Db::url` serves the suites that reopen a database; this one does not.
#[allow(dead_code)]
#[macro_use]
mod support;

use std::sync::Arc;

use convo_domain::{Channel, HoldId, Money, Timestamp, WorkspaceSettings};
use convo_store::{EndpointBacklog, OpenWindow, Store};
use support::{Db, Kind, run};

backend_tests!(
    open_windows_are_counted_per_channel,
    backlog_is_per_endpoint_with_its_oldest_delivery,
    open_holds_and_their_reserve_are_summed
);

async fn workspace(store: &Store, id: &str) {
    store.upsert_workspace(id, "Acme", &WorkspaceSettings::default()).await.unwrap();
}

fn window(session: &str, workspace_id: &str, channel: Channel) -> OpenWindow {
    OpenWindow {
        session_id: session.to_owned(),
        conversation: 1,
        workspace_id: workspace_id.to_owned(),
        contact_id: "ct_1".to_owned(),
        channel,
        opened_at: Timestamp::from_epoch_millis(1_700_000_000_000),
    }
}

async fn open_windows_are_counted_per_channel(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws").await;
    assert!(store.open_windows_by_channel().await.unwrap().is_empty());
    store.window_opened(&window("run-1", "ws", Channel::Whatsapp)).await.unwrap();
    store.window_opened(&window("run-2", "ws", Channel::Whatsapp)).await.unwrap();
    store.window_opened(&window("run-3", "ws", Channel::Sms)).await.unwrap();
    let mut counts = store.open_windows_by_channel().await.unwrap();
    counts.sort_by_key(|(c, _)| c.as_str());
    assert_eq!(counts, [(Channel::Sms, 1), (Channel::Whatsapp, 2)]);
    store.window_ended("run-1", 1).await.unwrap();
    store.window_ended("run-3", 1).await.unwrap();
    assert_eq!(store.open_windows_by_channel().await.unwrap(), [(Channel::Whatsapp, 1)]);
}

async fn backlog_is_per_endpoint_with_its_oldest_delivery(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws").await;
    let before = Timestamp::from_system_time(std::time::SystemTime::now());
    let a = store.add_webhook_endpoint("ws", "https://a.example/hook", vec![]).await.unwrap();
    let b = store
        .add_webhook_endpoint("ws", "https://b.example/hook", vec!["conversation.ended".into()])
        .await
        .unwrap();
    // Enabled endpoints are listed before anything is pending, so their gauges read 0.
    let idle = |id: &str| EndpointBacklog {
        endpoint_id: id.to_owned(),
        workspace_id: "ws".to_owned(),
        pending: 0,
        oldest_pending_at: None,
    };
    let mut expected = vec![idle(&a.id), idle(&b.id)];
    expected.sort_by(|x, y| x.endpoint_id.cmp(&y.endpoint_id));
    assert_eq!(store.webhook_backlog().await.unwrap(), expected);

    let data = serde_json::json!({"conversation": 1});
    store.enqueue_webhook("ws", "evt_1", "conversation.started", data.clone()).await.unwrap();
    store.enqueue_webhook("ws", "evt_2", "conversation.ended", data).await.unwrap();
    let backlog = store.webhook_backlog().await.unwrap();
    let of = |id: &str| backlog.iter().find(|e| e.endpoint_id == id).cloned().unwrap();
    assert_eq!(of(&a.id).pending, 2);
    assert_eq!(of(&b.id).pending, 1, "b wants conversation.ended only");
    let oldest = of(&a.id).oldest_pending_at.expect("a has a backlog");
    assert!(oldest >= before && oldest <= of(&b.id).oldest_pending_at.unwrap());

    // Disabling b cancels its deliveries: it has no backlog and is no longer listed.
    store.disable_webhook_endpoint(&b.id, "operator").await.unwrap();
    let backlog = store.webhook_backlog().await.unwrap();
    assert_eq!(backlog.len(), 1);
    assert_eq!((backlog[0].endpoint_id.as_str(), backlog[0].pending), (a.id.as_str(), 2));
}

async fn open_holds_and_their_reserve_are_summed(db: Arc<Db>) {
    let store = &db.store;
    assert_eq!(store.reserved_holds().await.unwrap(), (0, Money::ZERO));
    for ws in ["ws-a", "ws-b"] {
        workspace(store, ws).await;
        store.credit(ws, Money::from_minor(1_000), "opening").await.unwrap();
    }
    store.place_hold("ws-a", HoldId::from("h1"), Money::from_minor(100)).await.unwrap();
    store.place_hold("ws-a", HoldId::from("h2"), Money::from_minor(50)).await.unwrap();
    store.place_hold("ws-b", HoldId::from("h3"), Money::from_minor(25)).await.unwrap();
    assert_eq!(store.reserved_holds().await.unwrap(), (3, Money::from_minor(175)));
    store.charge_hold("ws-a", &HoldId::from("h1")).await.unwrap();
    store.release_hold("ws-b", &HoldId::from("h3")).await.unwrap();
    assert_eq!(store.reserved_holds().await.unwrap(), (1, Money::from_minor(50)));
    let gauges = store.gauges().await.unwrap();
    assert_eq!((gauges.open_holds, gauges.reserved), (1, Money::from_minor(50)));
}
