//! Signed webhook delivery end to end: the store's outbox, a real dispatcher POSTing over
//! loopback HTTP, and a real receiver verifying signatures. Each test runs on a fresh SQLite
//! file and, when `DATABASE_URL` is set, on Postgres in a schema of its own.

use std::{sync::Arc, time::Duration};

use convo_activities::{
    testing::{Reply, WebhookReceiver},
    webhooks::{DispatcherConfig, DispatcherHandle, WebhookDispatcher},
};
use convo_domain::WorkspaceSettings;
use convo_store::{
    Delivery, DeliveryFilter, DeliveryStatus, Store,
    webhooks::{Destinations, signing},
};
use proptest::prelude::*;
use tokio::time::timeout;

// ---------------------------------------------------------------------------------------------
// Backends (tests/support)

// The store suites' backend harness (one fresh database per test and backend).
#[macro_use]
#[path = "../../store/tests/support/mod.rs"]
mod support;

use support::{Db, Kind, run};

backend_tests!(
    signed_delivery_is_verified_by_the_receiver,
    failures_are_retried_with_the_same_id,
    exhausted_schedule_fails_the_delivery,
    gone_disables_the_endpoint,
    bad_signatures_are_rejected_and_retried,
    enqueue_is_idempotent_end_to_end,
    pending_event_survives_a_restart,
    abandoned_attempt_is_retried_after_the_lease,
    two_dispatchers_share_the_outbox,
    production_dispatch_never_reaches_a_loopback_endpoint,
);

// ---------------------------------------------------------------------------------------------
// Helpers

/// Generous: the waits end as soon as the condition holds, this only bounds a broken run.
const PATIENCE: Duration = Duration::from_secs(20);

/// Tests keep Svix's shape (immediate, then a schedule) at millisecond scale.
fn fast() -> DispatcherConfig {
    DispatcherConfig {
        retry_schedule: vec![Duration::from_millis(20); 7],
        request_timeout: Duration::from_secs(5),
        lease: Duration::from_secs(10),
        poll_interval: Duration::from_millis(200),
        // The receivers are on loopback.
        destinations: Destinations::DEVELOPMENT,
        ..DispatcherConfig::default()
    }
}

/// A workspace with one endpoint at a fresh receiver that knows its secret.
async fn setup(store: &Store) -> (WebhookReceiver, String) {
    store.upsert_workspace("ws1", "Acme", &WorkspaceSettings::default()).await.unwrap();
    let receiver = WebhookReceiver::start().await.unwrap();
    let endpoint = store.add_webhook_endpoint("ws1", &receiver.url(), vec![]).await.unwrap();
    receiver.set_secret(&endpoint.secret);
    (receiver, endpoint.id)
}

async fn enqueue(store: &Store, event_id: &str) -> String {
    let data = serde_json::json!({"conversation": 1, "reason": "EXPIRED"});
    let ids = store.enqueue_webhook("ws1", event_id, "conversation.ended", data).await.unwrap();
    assert_eq!(ids.len(), 1);
    ids.into_iter().next().unwrap()
}

/// Waits until the delivery satisfies `done`, re-reading it after every attempt the dispatcher
/// records (no timed polling).
async fn settle(
    store: &Store,
    dispatcher: &DispatcherHandle,
    id: &str,
    done: impl Fn(&Delivery) -> bool,
) -> Delivery {
    let mut recorded = dispatcher.recorded();
    let wait = async {
        loop {
            recorded.borrow_and_update();
            let delivery = store.webhook_delivery(id).await.unwrap();
            if done(&delivery) {
                return delivery;
            }
            recorded.changed().await.unwrap();
        }
    };
    timeout(PATIENCE, wait).await.expect("the delivery did not settle")
}

async fn received(
    receiver: &WebhookReceiver,
    n: usize,
) -> Vec<convo_activities::testing::ReceivedWebhook> {
    timeout(PATIENCE, receiver.wait_for(n)).await.expect("webhooks did not arrive")
}

// ---------------------------------------------------------------------------------------------
// Tests

async fn signed_delivery_is_verified_by_the_receiver(db: Arc<Db>) {
    let store = &db.store;
    let (receiver, endpoint_id) = setup(store).await;
    let dispatcher = WebhookDispatcher::spawn(store.clone(), fast()).unwrap();
    let id = enqueue(store, "evt_1").await;

    let got = received(&receiver, 1).await;
    assert_eq!(got[0].id, "evt_1");
    assert!(got[0].verified);
    let body = got[0].json();
    assert_eq!(body["type"], "conversation.ended");
    assert_eq!(body["data"], serde_json::json!({"conversation": 1, "reason": "EXPIRED"}));
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));

    let delivery = settle(store, &dispatcher, &id, |d| d.status == DeliveryStatus::Delivered).await;
    assert_eq!((delivery.attempts, delivery.last_status), (1, Some(200)));
    assert_eq!(delivery.endpoint_id, endpoint_id);
    assert_eq!(delivery.next_attempt_at, None);
    let attempts = store.webhook_attempts(&id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (attempts[0].attempt, attempts[0].http_status, attempts[0].error.as_deref()),
        (1, Some(200), None)
    );
    dispatcher.shutdown().await;
    assert!(receiver.rejected().is_empty());
}

async fn failures_are_retried_with_the_same_id(db: Arc<Db>) {
    let store = &db.store;
    let (receiver, _) = setup(store).await;
    receiver.script([Reply::Status(500), Reply::Status(503)]);
    let dispatcher = WebhookDispatcher::spawn(store.clone(), fast()).unwrap();
    let id = enqueue(store, "evt_retry").await;

    let got = received(&receiver, 3).await;
    assert!(got.iter().all(|r| r.id == "evt_retry" && r.verified));
    assert_eq!(got.iter().map(|r| r.status).collect::<Vec<_>>(), [500, 503, 200]);
    // The body is fixed at enqueue time; only the attempt's signature timestamp may change.
    assert!(got.iter().all(|r| r.body == got[0].body));
    let delivery = settle(store, &dispatcher, &id, |d| d.status == DeliveryStatus::Delivered).await;
    assert_eq!(delivery.attempts, 3);
    let attempts = store.webhook_attempts(&id).await.unwrap();
    let statuses: Vec<_> = attempts.iter().map(|a| (a.attempt, a.http_status)).collect();
    assert_eq!(statuses, [(1, Some(500)), (2, Some(503)), (3, Some(200))]);
    assert!(attempts.windows(2).all(|w| w[0].started_at <= w[1].started_at));
    dispatcher.shutdown().await;
}

async fn exhausted_schedule_fails_the_delivery(db: Arc<Db>) {
    let store = &db.store;
    let (receiver, _) = setup(store).await;
    receiver.script([Reply::Status(500); 5]);
    let config = DispatcherConfig { retry_schedule: vec![Duration::from_millis(10); 2], ..fast() };
    let dispatcher = WebhookDispatcher::spawn(store.clone(), config).unwrap();
    let id = enqueue(store, "evt_doomed").await;
    let delivery = settle(store, &dispatcher, &id, |d| d.status == DeliveryStatus::Failed).await;
    assert_eq!(
        (delivery.attempts, delivery.last_status, delivery.next_attempt_at),
        (3, Some(500), None)
    );
    assert_eq!(receiver.received().len(), 3, "the immediate attempt plus two retries");
    dispatcher.shutdown().await;
}

async fn gone_disables_the_endpoint(db: Arc<Db>) {
    let store = &db.store;
    let (receiver, endpoint_id) = setup(store).await;
    receiver.script([Reply::Status(410)]);
    // Two events wait before the dispatcher starts; one per round, so the 410 comes first.
    let first = enqueue(store, "evt_a").await;
    let second = enqueue(store, "evt_b").await;
    let config = DispatcherConfig { batch_size: 1, concurrency: 1, ..fast() };
    let dispatcher = WebhookDispatcher::spawn(store.clone(), config).unwrap();
    let delivery =
        settle(store, &dispatcher, &first, |d| d.status != DeliveryStatus::Pending).await;
    assert_eq!((delivery.status, delivery.last_status), (DeliveryStatus::Failed, Some(410)));

    let endpoint = store.webhook_endpoint(&endpoint_id).await.unwrap();
    assert!(!endpoint.enabled);
    assert!(endpoint.disabled_reason.as_deref().unwrap().contains("410"));
    let other = store.webhook_delivery(&second).await.unwrap();
    assert_eq!((other.status, other.attempts), (DeliveryStatus::Cancelled, 0));
    let later = store
        .enqueue_webhook("ws1", "evt_c", "conversation.ended", serde_json::json!({}))
        .await
        .unwrap();
    assert!(later.is_empty(), "a disabled endpoint gets no new deliveries");
    dispatcher.shutdown().await;
    assert_eq!(receiver.received().len(), 1);
}

async fn bad_signatures_are_rejected_and_retried(db: Arc<Db>) {
    let store = &db.store;
    let (receiver, _) = setup(store).await;
    // The receiver holds another secret: it must answer 401 and log the failure.
    receiver.set_secret(&signing::generate_secret());
    let dispatcher = WebhookDispatcher::spawn(store.clone(), fast()).unwrap();
    let id = enqueue(store, "evt_forged").await;
    let rejected = timeout(PATIENCE, receiver.wait_for_rejected(1)).await.unwrap();
    assert_eq!(rejected[0].id, "evt_forged");
    assert_eq!(rejected[0].status, 401);
    assert!(rejected[0].error.as_deref().unwrap().contains("signature"));
    let delivery = settle(store, &dispatcher, &id, |d| d.attempts >= 1).await;
    assert_eq!(delivery.last_status, Some(401));
    assert!(receiver.received().is_empty());
    dispatcher.shutdown().await;
}

/// Production's policy (public `https` only) holds at each attempt, whatever the store says:
/// an endpoint on loopback (subscribed before the policy, or re-pointed since) gets no request,
/// and the delivery log says why.
async fn production_dispatch_never_reaches_a_loopback_endpoint(db: Arc<Db>) {
    let store = &db.store;
    let (receiver, _) = setup(store).await;
    let config = DispatcherConfig {
        retry_schedule: vec![Duration::from_millis(10)],
        destinations: Destinations::PUBLIC,
        ..fast()
    };
    let dispatcher = WebhookDispatcher::spawn(store.clone(), config).unwrap();
    let id = enqueue(store, "evt_internal").await;
    let delivery = settle(store, &dispatcher, &id, |d| d.status == DeliveryStatus::Failed).await;
    assert_eq!((delivery.attempts, delivery.last_status), (2, None));
    let error = delivery.last_error.unwrap_or_default();
    assert!(error.contains("destination refused"), "{error}");
    assert!(error.contains("127.0.0.1") || error.contains("https"), "{error}");
    assert!(receiver.received().is_empty() && receiver.rejected().is_empty());
    dispatcher.shutdown().await;
}

async fn enqueue_is_idempotent_end_to_end(db: Arc<Db>) {
    let store = &db.store;
    let (receiver, _) = setup(store).await;
    let dispatcher = WebhookDispatcher::spawn(store.clone(), fast()).unwrap();
    let id = enqueue(store, "evt_once").await;
    settle(store, &dispatcher, &id, |d| d.status == DeliveryStatus::Delivered).await;
    // A retried activity enqueues the same event again: nothing new is created or sent.
    assert_eq!(enqueue(store, "evt_once").await, id);
    let all = store.webhook_deliveries("ws1", &DeliveryFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].attempts, 1);
    dispatcher.shutdown().await;
    assert_eq!(receiver.received().len(), 1);
}

async fn pending_event_survives_a_restart(db: Arc<Db>) {
    let (receiver, _) = setup(&db.store).await;
    // Enqueued while no dispatcher runs, then the process "restarts": a new store on the same
    // database and a new dispatcher.
    let id = enqueue(&db.store, "evt_persisted").await;
    let reopened = Store::connect(&db.url).await.unwrap();
    let dispatcher = WebhookDispatcher::spawn(reopened.clone(), fast()).unwrap();
    let got = received(&receiver, 1).await;
    assert_eq!(got[0].id, "evt_persisted");
    settle(&reopened, &dispatcher, &id, |d| d.status == DeliveryStatus::Delivered).await;
    dispatcher.shutdown().await;
    reopened.close().await;
}

async fn abandoned_attempt_is_retried_after_the_lease(db: Arc<Db>) {
    let (receiver, _) = setup(&db.store).await;
    // The first request hangs; the dispatcher making it is killed mid-request.
    receiver.script([Reply::Delayed(Duration::from_secs(60), 200)]);
    let short_lease = DispatcherConfig { lease: Duration::from_millis(300), ..fast() };
    let first = WebhookDispatcher::spawn(db.store.clone(), short_lease).unwrap();
    let id = enqueue(&db.store, "evt_crash").await;
    received(&receiver, 1).await;
    first.abort();

    let reopened = Store::connect(&db.url).await.unwrap();
    let second = WebhookDispatcher::spawn(reopened.clone(), fast()).unwrap();
    let got = received(&receiver, 2).await;
    assert_eq!((got[0].id.as_str(), got[1].id.as_str()), ("evt_crash", "evt_crash"));
    let delivery = settle(&reopened, &second, &id, |d| d.status == DeliveryStatus::Delivered).await;
    // The killed dispatcher never recorded its attempt; the log holds the one that finished.
    assert_eq!(delivery.attempts, 1);
    second.shutdown().await;
    reopened.close().await;
}

async fn two_dispatchers_share_the_outbox(db: Arc<Db>) {
    let store = &db.store;
    let (receiver, _) = setup(store).await;
    let config = DispatcherConfig { batch_size: 3, ..fast() };
    let a = WebhookDispatcher::spawn(store.clone(), config.clone()).unwrap();
    let other_store = Store::connect(&db.url).await.unwrap();
    let b = WebhookDispatcher::spawn(other_store.clone(), config).unwrap();
    for i in 0..20 {
        enqueue(store, &format!("evt_{i:02}")).await;
    }
    let got = received(&receiver, 20).await;
    let mut ids: Vec<_> = got.iter().map(|r| r.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    let pending = DeliveryFilter { status: Some(DeliveryStatus::Pending), ..Default::default() };
    let (mut ra, mut rb) = (a.recorded(), b.recorded());
    timeout(PATIENCE, async {
        loop {
            ra.borrow_and_update();
            rb.borrow_and_update();
            if store.webhook_deliveries("ws1", &pending).await.unwrap().is_empty() {
                return;
            }
            // Either dispatcher may record the last attempt.
            tokio::select! {
                r = ra.changed() => r.unwrap(),
                r = rb.changed() => r.unwrap(),
            }
        }
    })
    .await
    .unwrap();
    a.shutdown().await;
    b.shutdown().await;
    assert_eq!(receiver.received().len(), 20, "each event was sent exactly once");
    other_store.close().await;
}

// ---------------------------------------------------------------------------------------------
// Signatures, as properties

proptest! {
    #[test]
    fn signatures_round_trip_and_detect_tampering(
        id in "[a-zA-Z0-9_]{1,40}",
        body in proptest::collection::vec(any::<u8>(), 0..256),
        timestamp in 1_000_000_000i64..4_000_000_000,
        flip in any::<prop::sample::Index>(),
    ) {
        let secret = signing::generate_secret();
        let headers = signing::signed_headers(&secret, &id, timestamp, &body).unwrap();
        let now = std::time::UNIX_EPOCH + Duration::from_secs(timestamp.unsigned_abs());
        prop_assert_eq!(signing::verify(&secret, &headers, &body, now), Ok(id.clone()));
        if !body.is_empty() {
            let mut tampered = body.clone();
            tampered[flip.index(body.len())] ^= 0x01;
            prop_assert_eq!(
                signing::verify(&secret, &headers, &tampered, now),
                Err(signing::SignatureError::NoMatchingSignature)
            );
        }
        let other = signing::generate_secret();
        prop_assert_eq!(
            signing::verify(&other, &headers, &body, now),
            Err(signing::SignatureError::NoMatchingSignature)
        );
    }
}
