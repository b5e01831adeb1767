//! The store against every backend: each test runs on a fresh SQLite file and, when
//! `DATABASE_URL` is set, on Postgres in a schema of its own that is dropped afterwards.

use std::sync::Arc;

use convo_domain::{
    Balance, Channel, Consent, Direction, HoldId, MessageId, Money, PolicyOverrides, Timestamp,
    WindowMode, WorkspaceSettings,
};
use convo_store::{
    ChannelConfig, ContactLookup, DeliveryFilter, DeliveryStatus, MessageStatus, NewMessage, Store,
    StoreError,
};
use futures::future::join_all;

// ---------------------------------------------------------------------------------------------
// Backends (tests/support)

#[macro_use]
mod support;

use support::{Db, Kind, run};

backend_tests!(
    postgres_honours_sslmode,
    migrations_are_idempotent,
    workspaces_and_channels_round_trip,
    contacts_are_found_by_phone_or_email,
    contact_validation_names_the_field,
    phones_are_valid_numbers_of_their_country,
    concurrent_creates_yield_one_contact,
    consent_changes_are_recorded_once,
    ledger_follows_the_domain_rules,
    ledger_operations_are_idempotent,
    concurrent_holds_never_overdraw,
    message_log_is_idempotent,
    webhook_endpoints_and_idempotent_enqueue,
    data_survives_reopening,
    api_keys_are_hashed_and_revocable,
    idempotency_keys_claim_replay_and_mismatch,
    idempotency_leases_are_owned_renewed_and_taken_over,
    conversations_and_lookups,
);

// ---------------------------------------------------------------------------------------------
// Helpers

fn m(minor: u64) -> Money {
    Money::from_minor(minor)
}

fn bal(free: u64, reserved: u64, total: u64) -> Balance {
    Balance { free: m(free), reserved: m(reserved), total: m(total) }
}

async fn workspace(store: &Store, id: &str) {
    store.upsert_workspace(id, "Acme", &WorkspaceSettings::default()).await.unwrap();
}

fn phone(p: &str) -> ContactLookup {
    ContactLookup { phone: Some(p.to_owned()), ..ContactLookup::default() }
}

#[track_caller]
fn assert_validation(result: Result<impl std::fmt::Debug, StoreError>, expected: &str) {
    match result {
        Err(StoreError::Validation { field, .. }) => assert_eq!(field, expected),
        other => panic!("expected a validation error on {expected}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

/// `sslmode` in `DATABASE_URL` is honoured over rustls: `require` encrypts the store's
/// connections, `disable` does not, and `verify-full` refuses a server whose certificate no
/// trusted root signed (these machines' Postgres has a self-signed one, or no TLS at all).
async fn postgres_honours_sslmode(db: Arc<Db>) {
    if !db.url.starts_with("postgres") {
        return;
    }
    let server_tls: String =
        sqlx::query_scalar("SHOW ssl").fetch_one(db.store.pool()).await.unwrap();
    let encrypted = |store: Store| async move {
        let on: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(store.pool())
                .await
                .unwrap();
        store.close().await;
        on
    };
    let with = |mode: &str| format!("{}&sslmode={mode}", db.url);
    let plain = Store::connect(&with("disable")).await.unwrap();
    assert!(!encrypted(plain).await, "sslmode=disable");
    match Store::connect(&with("require")).await {
        Ok(store) => {
            assert_eq!(server_tls, "on");
            assert!(encrypted(store).await, "sslmode=require");
        }
        Err(e) => {
            assert_eq!(server_tls, "off", "require failed against a TLS server: {e}");
            assert!(
                e.to_string().to_lowercase().contains("tls") || e.to_string().contains("SSL"),
                "{e}"
            );
        }
    }
    if server_tls == "on" {
        let refused = Store::connect(&with("verify-full")).await;
        assert!(refused.is_err(), "a self-signed server certificate passed verify-full");
    }
}

async fn migrations_are_idempotent(db: Arc<Db>) {
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&db.store.backend()));
    assert!(db.url.starts_with(db.store.backend()));
    if db.store.backend() == "sqlite" {
        let (mode,): (String,) =
            sqlx::query_as("PRAGMA journal_mode").fetch_one(db.store.pool()).await.unwrap();
        assert_eq!(mode, "wal");
    }
}

/// `sqlite::memory:` opens a private database per connection, so the store must keep one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_store_keeps_one_database() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    workspace(&store, "ws1").await;
    store.credit("ws1", m(300), "k").await.unwrap();
    let holds = join_all((0..6).map(|i| {
        let store = store.clone();
        tokio::spawn(
            async move { store.place_hold("ws1", HoldId::new(format!("h{i}")), m(100)).await },
        )
    }))
    .await;
    assert_eq!(holds.into_iter().filter(|r| matches!(r, Ok(Ok(_)))).count(), 3);
    assert_eq!(store.balance("ws1").await.unwrap(), bal(0, 300, 300));
    assert!(matches!(
        Store::connect("mysql://nope").await,
        Err(StoreError::Validation { field: "database_url", .. })
    ));
}

async fn workspaces_and_channels_round_trip(db: Arc<Db>) {
    let store = &db.store;
    let mut settings = WorkspaceSettings::default();
    settings.overrides.insert(
        Channel::Whatsapp,
        PolicyOverrides { mode: Some(WindowMode::Fixed), ..PolicyOverrides::default() },
    );
    settings.compliance.help = "Call 555-0100.".to_owned();
    let ws = store.upsert_workspace("ws1", "Acme", &settings).await.unwrap();
    assert_eq!((ws.id.as_str(), ws.name.as_str(), &ws.settings), ("ws1", "Acme", &settings));
    let renamed =
        store.upsert_workspace("ws1", "Acme Inc", &WorkspaceSettings::default()).await.unwrap();
    assert_eq!(renamed.name, "Acme Inc");
    assert_eq!(renamed.settings, WorkspaceSettings::default());
    assert_eq!(renamed.created_at, ws.created_at);
    assert!(matches!(
        store.workspace("nope").await,
        Err(StoreError::NotFound { entity: "workspace", .. })
    ));
    assert_validation(store.upsert_workspace(" ", "x", &settings).await, "workspace_id");

    let wa = ChannelConfig {
        id: String::new(),
        workspace_id: "ws1".to_owned(),
        channel: Channel::Whatsapp,
        provider: "meta".to_owned(),
        config: serde_json::json!({"api_version": "v21.0"}),
        sender: "1234567890".to_owned(),
        enabled: true,
    };
    let stored = store.upsert_channel(&wa).await.unwrap();
    assert!(stored.id.starts_with("ch_"), "{stored:?}");
    assert_eq!(ChannelConfig { id: String::new(), ..stored.clone() }, wa);
    assert_eq!(store.channel_by_id(&stored.id).await.unwrap(), stored);
    let wa = stored;
    let sms = ChannelConfig {
        channel: Channel::Sms,
        provider: "twilio".to_owned(),
        sender: "+15005550006".to_owned(),
        enabled: false,
        ..wa.clone()
    };
    let sms = store.upsert_channel(&ChannelConfig { id: String::new(), ..sms }).await.unwrap();
    assert_ne!(sms.id, wa.id);
    let wa2 = ChannelConfig { sender: "999".to_owned(), ..wa.clone() };
    // An upsert keeps the channel's id.
    assert_eq!(store.upsert_channel(&wa2).await.unwrap(), wa2);
    assert_eq!(store.channel("ws1", Channel::Whatsapp).await.unwrap(), wa2);
    assert_eq!(store.channels("ws1").await.unwrap(), vec![sms, wa2]);
    assert!(matches!(
        store.channel("ws1", Channel::Email).await,
        Err(StoreError::NotFound { entity: "channel", .. })
    ));
    let orphan = ChannelConfig { workspace_id: "ghost".to_owned(), ..wa };
    assert!(matches!(
        store.upsert_channel(&orphan).await,
        Err(StoreError::NotFound { entity: "workspace", .. })
    ));
}

async fn contacts_are_found_by_phone_or_email(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws1").await;
    workspace(store, "ws2").await;
    let (alice, created) = store
        .find_or_create_contact(
            "ws1",
            ContactLookup {
                phone: Some("+49 (151) 1234-5678".to_owned()),
                email: Some("  Alice@Example.COM ".to_owned()),
                name: None,
            },
        )
        .await
        .unwrap();
    assert!(created);
    assert_eq!(alice.phone.as_deref(), Some("+4915112345678"));
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    assert_eq!(alice.name, None);

    // Another spelling of the phone, and the e-mail alone, find the same contact.
    let (same, created) = store
        .find_or_create_contact(
            "ws1",
            ContactLookup { name: Some("Alice".to_owned()), ..phone("004915112345678") },
        )
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(same.id, alice.id);
    assert_eq!(same.name.as_deref(), Some("Alice"), "a missing name is filled in");
    let by_email =
        ContactLookup { email: Some("ALICE@example.com".to_owned()), ..Default::default() };
    let (same, created) = store.find_or_create_contact("ws1", by_email.clone()).await.unwrap();
    assert_eq!((same.id.as_str(), created), (alice.id.as_str(), false));

    // Contacts belong to a workspace.
    let (other, created) = store.find_or_create_contact("ws2", by_email).await.unwrap();
    assert!(created);
    assert_ne!(other.id, alice.id);
    assert_eq!(store.contact("ws1", &alice.id).await.unwrap().name.as_deref(), Some("Alice"));
    assert!(matches!(
        store.contact("ws2", &alice.id).await,
        Err(StoreError::NotFound { entity: "contact", .. })
    ));
    assert!(matches!(
        store.find_or_create_contact("ghost", phone("+15005550006")).await,
        Err(StoreError::NotFound { entity: "workspace", .. })
    ));
}

async fn contact_validation_names_the_field(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws1").await;
    for bad in ["15005550006", "+0123456789", "+1-800-FLOWERS", "+123", "+1234567890123456", ""] {
        assert_validation(store.find_or_create_contact("ws1", phone(bad)).await, "phone");
    }
    for bad in [
        "alice",
        "alice@",
        "@example.com",
        "a b@example.com",
        "alice@localhost",
        "a@-x.com",
        "Alice <alice@example.com>",
        "alice@[127.0.0.1]",
        "alice@example..com",
    ] {
        let lookup = ContactLookup { email: Some(bad.to_owned()), ..Default::default() };
        assert_validation(store.find_or_create_contact("ws1", lookup).await, "email");
    }
    assert_validation(
        store.find_or_create_contact("ws1", ContactLookup::default()).await,
        "contact",
    );
    let long_name = ContactLookup { name: Some("x".repeat(201)), ..phone("+15005550006") };
    assert_validation(store.find_or_create_contact("ws1", long_name).await, "name");
    let err = store.find_or_create_contact("ws1", phone("12")).await.unwrap_err();
    assert_eq!(err.code(), "validation_failed");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("phone"), "{err}");
}

/// A business's number must be one its country has (libphonenumber's metadata), and is stored
/// in E.164 however it was typed; a number a provider delivered a message from only needs to
/// parse, so a range newer than the metadata still reaches its session.
async fn phones_are_valid_numbers_of_their_country(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws1").await;
    for (typed, e164) in [
        ("+44 20 7946 0123", "+442079460123"),
        ("+1 (212) 555-0100", "+12125550100"),
        ("0049 151 1234 5678", "+4915112345678"),
    ] {
        let (contact, _) = store.find_or_create_contact("ws1", phone(typed)).await.unwrap();
        assert_eq!(contact.phone.as_deref(), Some(e164), "{typed}");
    }
    // The right shape, but no area code 555 in the US, and too short a German mobile.
    for nobody in ["+1 555 100 0000", "+15551000", "+4915100000"] {
        let err = store.find_or_create_contact("ws1", phone(nobody)).await.unwrap_err();
        assert_eq!(err.code(), "validation_failed");
        assert!(err.to_string().contains("not a valid number for country code"), "{err}");
        assert_validation(store.find_or_create_contact("ws1", phone(nobody)).await, "phone");
    }
    let (sender, created) =
        store.find_or_create_sender("ws1", phone("+1 555 100 0000")).await.unwrap();
    assert!(created);
    assert_eq!(sender.phone.as_deref(), Some("+15551000000"));
    assert_validation(store.find_or_create_sender("ws1", phone("+1-800-FLOWERS")).await, "phone");
}

async fn concurrent_creates_yield_one_contact(db: Arc<Db>) {
    workspace(&db.store, "ws1").await;
    let results = join_all((0..16).map(|i| {
        let store = db.store.clone();
        tokio::spawn(async move {
            let spelling = if i % 2 == 0 { "+1 500 555 0006" } else { "+15005550006" };
            store.find_or_create_contact("ws1", phone(spelling)).await.unwrap()
        })
    }))
    .await;
    let results: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
    assert!(results.iter().all(|(c, _)| c.id == results[0].0.id));
}

async fn consent_changes_are_recorded_once(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws1").await;
    let (c, _) = store.find_or_create_contact("ws1", phone("+15005550006")).await.unwrap();
    assert_eq!(store.consent("ws1", &c.id).await.unwrap(), Consent::Unknown);
    let t = Timestamp::from_epoch_secs;
    let out = Consent::OptedOut { at: t(100) };
    assert!(store.record_consent("ws1", &c.id, out, "keyword:STOP").await.unwrap());
    // A retry, or a second STOP later, changes nothing and keeps the original time.
    assert!(!store.record_consent("ws1", &c.id, out, "keyword:STOP").await.unwrap());
    let later = Consent::OptedOut { at: t(200) };
    assert!(!store.record_consent("ws1", &c.id, later, "keyword:STOP").await.unwrap());
    assert_eq!(store.consent("ws1", &c.id).await.unwrap(), out);
    let back_in = Consent::OptedIn { at: t(300) };
    assert!(store.record_consent("ws1", &c.id, back_in, "keyword:START").await.unwrap());
    assert_eq!(store.consent("ws1", &c.id).await.unwrap(), back_in);
    assert_eq!(
        store.consent_history("ws1", &c.id).await.unwrap(),
        vec![(out, "keyword:STOP".to_owned()), (back_in, "keyword:START".to_owned())]
    );
    assert!(matches!(
        store.record_consent("ws1", "ct_missing", out, "api").await,
        Err(StoreError::NotFound { entity: "contact", .. })
    ));
    assert_validation(store.record_consent("ws1", &c.id, out, "").await, "source");
}

async fn ledger_follows_the_domain_rules(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws1").await;
    let (a, b) = (HoldId::from("a"), HoldId::from("b"));
    assert_eq!(store.balance("ws1").await.unwrap(), Balance::default());
    assert_eq!(store.credit("ws1", m(100), "topup-1").await.unwrap(), bal(100, 0, 100));
    assert_eq!(store.place_hold("ws1", a.clone(), m(30)).await.unwrap(), bal(70, 30, 100));
    assert_eq!(store.place_hold("ws1", b.clone(), m(20)).await.unwrap(), bal(50, 50, 100));
    match store.place_hold("ws1", HoldId::from("c"), m(51)).await {
        Err(StoreError::InsufficientBalance { required, balance }) => {
            assert_eq!((required, balance), (m(51), bal(50, 50, 100)));
        }
        other => panic!("expected insufficient balance, got {other:?}"),
    }
    assert!(matches!(
        store.hold("ws1", &HoldId::from("c")).await,
        Err(StoreError::NotFound { entity: "hold", .. })
    ));
    assert_eq!(store.charge_hold("ws1", &a).await.unwrap(), bal(50, 20, 70));
    assert_eq!(store.release_hold("ws1", &b).await.unwrap(), bal(70, 0, 70));
    assert_eq!(store.open_holds_total("ws1").await.unwrap(), m(0));
    let hold = store.hold("ws1", &a).await.unwrap();
    assert_eq!((hold.amount, hold.status), (m(30), convo_store::HoldStatus::Charged));
    assert!(hold.resolved_at.is_some());
    // The whole free balance can be held, and a zero hold is fine.
    assert_eq!(store.place_hold("ws1", HoldId::from("all"), m(70)).await.unwrap(), bal(0, 70, 70));
    assert_eq!(store.place_hold("ws1", HoldId::from("zero"), m(0)).await.unwrap(), bal(0, 70, 70));
    assert!(matches!(
        store.credit("ghost", m(1), "k").await,
        Err(StoreError::NotFound { entity: "workspace", .. })
    ));
    assert!(matches!(
        store.charge_hold("ws1", &HoldId::from("nope")).await,
        Err(StoreError::NotFound { entity: "hold", .. })
    ));
    assert_validation(store.credit("ws1", m(u64::MAX), "huge").await, "amount");
    assert_validation(store.credit("ws1", m(1), "").await, "idempotency_key");
    assert_validation(store.place_hold("ws1", HoldId::from(""), m(1)).await, "hold_id");
}

async fn ledger_operations_are_idempotent(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws1").await;
    let (a, b) = (HoldId::from("a"), HoldId::from("b"));
    store.credit("ws1", m(100), "topup-1").await.unwrap();
    assert_eq!(store.credit("ws1", m(100), "topup-1").await.unwrap(), bal(100, 0, 100));
    assert!(matches!(store.credit("ws1", m(5), "topup-1").await, Err(StoreError::Conflict { .. })));
    store.place_hold("ws1", a.clone(), m(30)).await.unwrap();
    assert_eq!(store.place_hold("ws1", a.clone(), m(30)).await.unwrap(), bal(70, 30, 100));
    assert!(matches!(
        store.place_hold("ws1", a.clone(), m(31)).await,
        Err(StoreError::Conflict { .. })
    ));
    store.place_hold("ws1", b.clone(), m(10)).await.unwrap();
    assert_eq!(store.charge_hold("ws1", &a).await.unwrap(), bal(60, 10, 70));
    assert_eq!(store.charge_hold("ws1", &a).await.unwrap(), bal(60, 10, 70));
    assert!(matches!(store.release_hold("ws1", &a).await, Err(StoreError::Conflict { .. })));
    assert!(matches!(
        store.place_hold("ws1", a.clone(), m(30)).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.release_hold("ws1", &b).await.unwrap(), bal(70, 0, 70));
    assert_eq!(store.release_hold("ws1", &b).await.unwrap(), bal(70, 0, 70));
    let err = store.charge_hold("ws1", &b).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }));
    assert_eq!(err.code(), "conflict");
    assert_eq!(store.balance("ws1").await.unwrap(), bal(70, 0, 70));
}

async fn concurrent_holds_never_overdraw(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws1").await;
    store.credit("ws1", m(1_000), "opening").await.unwrap();
    // 40 distinct holds of 100 race for 1000, and every id is placed twice at once.
    let placed = join_all((0..80).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store.place_hold("ws1", HoldId::new(format!("h{}", i % 40)), m(100)).await
        })
    }))
    .await;
    let mut ok = std::collections::BTreeSet::new();
    for (i, result) in placed.into_iter().enumerate() {
        match result.unwrap() {
            Ok(balance) => {
                assert!(balance.is_consistent());
                ok.insert(i % 40);
            }
            Err(StoreError::InsufficientBalance { required, balance }) => {
                assert_eq!(required, m(100));
                assert!(balance.free < m(100) && balance.is_consistent(), "{balance:?}");
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok.len(), 10, "exactly ten holds of 100 fit into 1000");
    assert_eq!(store.balance("ws1").await.unwrap(), bal(0, 1_000, 1_000));
    assert_eq!(store.open_holds_total("ws1").await.unwrap(), m(1_000));

    // Resolve them all concurrently, even ids charged and odd ones released, each twice.
    let resolved = join_all(ok.iter().flat_map(|&i| [i, i]).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let id = HoldId::new(format!("h{i}"));
            if i % 2 == 0 {
                store.charge_hold("ws1", &id).await
            } else {
                store.release_hold("ws1", &id).await
            }
        })
    }))
    .await;
    for r in resolved {
        assert!(r.unwrap().unwrap().is_consistent());
    }
    let charged = 100 * ok.iter().filter(|&&i| i % 2 == 0).count() as u64;
    let left = 1_000 - charged;
    assert_eq!(store.balance("ws1").await.unwrap(), bal(left, 0, left));
    assert_eq!(store.open_holds_total("ws1").await.unwrap(), m(0));
}

async fn message_log_is_idempotent(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws1").await;
    workspace(store, "ws2").await;
    let (c, _) = store.find_or_create_contact("ws1", phone("+15005550006")).await.unwrap();
    let inbound = NewMessage {
        id: MessageId::from("wamid.in-1"),
        workspace_id: "ws1".to_owned(),
        contact_id: c.id.clone(),
        channel: Channel::Whatsapp,
        direction: Direction::Inbound,
        content: serde_json::json!({"kind": "text", "body": "hi"}),
        status: MessageStatus::Received,
        provider_message_id: Some("wamid.in-1".to_owned()),
        at: Some(Timestamp::from_epoch_secs(1_000)),
    };
    let (record, created) = store.record_message(&inbound).await.unwrap();
    assert!(created);
    assert_eq!(record.created_at, Timestamp::from_epoch_secs(1_000));
    let outbound = NewMessage {
        id: MessageId::from("send-1"),
        direction: Direction::Outbound,
        content: serde_json::json!({"kind": "text", "body": "hello"}),
        status: MessageStatus::Queued,
        provider_message_id: None,
        at: None,
        ..inbound.clone()
    };
    let (first, created) = store.record_message(&outbound).await.unwrap();
    assert!(created);
    let (again, created) = store.record_message(&outbound).await.unwrap();
    assert!(!created);
    assert_eq!(again, first);

    let accepted = store
        .set_message_status(&outbound.id, MessageStatus::Accepted, Some("wamid.out-1"), None)
        .await
        .unwrap();
    assert_eq!(accepted.status, MessageStatus::Accepted);
    // A late failure keeps the provider id it was accepted under.
    let failed = store
        .set_message_status(&outbound.id, MessageStatus::Rejected, None, Some("131047"))
        .await
        .unwrap();
    assert_eq!(failed.provider_message_id.as_deref(), Some("wamid.out-1"));
    assert_eq!(failed.error.as_deref(), Some("131047"));
    assert_eq!(store.message(&outbound.id).await.unwrap(), failed);
    let log = store.messages("ws1", &c.id).await.unwrap();
    assert_eq!(log.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["wamid.in-1", "send-1"]);

    assert!(matches!(
        store
            .set_message_status(&MessageId::from("nope"), MessageStatus::Accepted, None, None)
            .await,
        Err(StoreError::NotFound { entity: "message", .. })
    ));
    let foreign = NewMessage { workspace_id: "ws2".to_owned(), ..outbound.clone() };
    assert!(matches!(
        store.record_message(&foreign).await,
        Err(StoreError::NotFound { entity: "contact", .. })
    ));
    let blank = NewMessage { id: MessageId::from(""), ..outbound };
    assert_validation(store.record_message(&blank).await, "id");
}

async fn webhook_endpoints_and_idempotent_enqueue(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws1").await;
    let all = store.add_webhook_endpoint("ws1", "https://example.com/all", vec![]).await.unwrap();
    assert!(all.secret.starts_with("whsec_") && all.enabled);
    let ended = store
        .add_webhook_endpoint("ws1", "https://example.com/ended", vec!["conversation.ended".into()])
        .await
        .unwrap();
    let prefixed = store
        .add_webhook_endpoint("ws1", "http://127.0.0.1:9/c", vec!["conversation.*".into()])
        .await
        .unwrap();
    let other = store
        .add_webhook_endpoint("ws1", "https://example.com/msg", vec!["message.failed".into()])
        .await
        .unwrap();
    assert_ne!(all.secret, ended.secret);
    assert_eq!(store.webhook_endpoints("ws1").await.unwrap().len(), 4);
    for bad in ["ftp://example.com/x", "not a url", "https://"] {
        assert_validation(store.add_webhook_endpoint("ws1", bad, vec![]).await, "url");
    }
    assert_validation(
        store.add_webhook_endpoint("ws1", "https://example.com", vec![" x".into()]).await,
        "event_type",
    );

    let data = serde_json::json!({"reason": "EXPIRED", "seq": 3});
    let ids =
        store.enqueue_webhook("ws1", "evt_1", "conversation.ended", data.clone()).await.unwrap();
    assert_eq!(ids.len(), 3, "all, ended and conversation.* want it; message.failed does not");
    let again =
        store.enqueue_webhook("ws1", "evt_1", "conversation.ended", data.clone()).await.unwrap();
    assert_eq!(again, ids);
    let filter = DeliveryFilter { event_id: Some("evt_1".into()), ..DeliveryFilter::default() };
    let deliveries = store.webhook_deliveries("ws1", &filter).await.unwrap();
    assert_eq!(deliveries.len(), 3);
    assert!(deliveries.iter().all(|d| d.status == DeliveryStatus::Pending && d.attempts == 0));
    assert!(deliveries.iter().all(|d| d.endpoint_id != other.id));
    assert!(matches!(
        store.enqueue_webhook("ws1", "evt_1", "conversation.started", data.clone()).await,
        Err(StoreError::Conflict { .. })
    ));

    // Disabling cancels what is pending and keeps the endpoint out of later fan-outs.
    let disabled = store.disable_webhook_endpoint(&prefixed.id, "operator").await.unwrap();
    assert_eq!((disabled.enabled, disabled.disabled_reason.as_deref()), (false, Some("operator")));
    let by_endpoint = DeliveryFilter { endpoint_id: Some(prefixed.id.clone()), ..filter.clone() };
    let cancelled = store.webhook_deliveries("ws1", &by_endpoint).await.unwrap();
    assert_eq!(cancelled[0].status, DeliveryStatus::Cancelled);
    let later = store.enqueue_webhook("ws1", "evt_2", "conversation.ended", data).await.unwrap();
    assert_eq!(later.len(), 2);
    let pending =
        DeliveryFilter { status: Some(DeliveryStatus::Pending), ..DeliveryFilter::default() };
    assert_eq!(store.webhook_deliveries("ws1", &pending).await.unwrap().len(), 4);
    assert!(store.webhook_attempts(&ids[0]).await.unwrap().is_empty());
}

async fn data_survives_reopening(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws1").await;
    store.credit("ws1", m(50), "k").await.unwrap();
    store.place_hold("ws1", HoldId::from("h"), m(20)).await.unwrap();
    let (c, _) = store.find_or_create_contact("ws1", phone("+15005550006")).await.unwrap();
    store.add_webhook_endpoint("ws1", "https://example.com/hook", vec![]).await.unwrap();
    let ids = store
        .enqueue_webhook("ws1", "evt_1", "conversation.ended", serde_json::json!({}))
        .await
        .unwrap();

    let reopened = Store::connect(&db.url).await.unwrap();
    assert_eq!(reopened.balance("ws1").await.unwrap(), bal(30, 20, 50));
    let (same, created) =
        reopened.find_or_create_contact("ws1", phone("+15005550006")).await.unwrap();
    assert_eq!((same.id, created), (c.id, false));
    assert_eq!(reopened.workspace("ws1").await.unwrap().name, "Acme");
    assert_eq!(ids.len(), 1);
    assert_eq!(
        reopened
            .enqueue_webhook("ws1", "evt_1", "conversation.ended", serde_json::json!({}))
            .await
            .unwrap(),
        ids
    );
    reopened.close().await;
}

async fn api_keys_are_hashed_and_revocable(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws1").await;
    workspace(store, "ws2").await;
    let created = store.create_api_key("ws1", "ci").await.unwrap();
    assert!(created.secret.starts_with("cvk_") && created.secret.len() > 30);
    assert!(created.secret.starts_with(&created.key.prefix));
    let stored: (String,) = sqlx::query_as("SELECT hash FROM api_keys WHERE id = $1")
        .bind(&created.key.id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(!stored.0.contains(&created.secret), "the key is stored hashed");
    let found = store.authenticate_api_key(&created.secret).await.unwrap().unwrap();
    assert_eq!(found.workspace_id, "ws1");
    assert!(store.authenticate_api_key("cvk_wrong-key-0000000").await.unwrap().is_none());

    let dev = store.ensure_api_key("ws2", "dev", "dev-key-0123456789").await.unwrap();
    let again = store.ensure_api_key("ws2", "dev", "dev-key-0123456789").await.unwrap();
    assert_eq!(dev.key.id, again.key.id);
    assert!(matches!(
        store.ensure_api_key("ws1", "dev", "dev-key-0123456789").await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.api_keys("ws1").await.unwrap().len(), 1);

    let revoked = store.revoke_api_key("ws1", &created.key.id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(store.authenticate_api_key(&created.secret).await.unwrap().is_none());
    assert!(matches!(
        store.revoke_api_key("ws2", &created.key.id).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn idempotency_keys_claim_replay_and_mismatch(db: Arc<Db>) {
    use convo_store::{IdempotencyClaim, IdempotencyPolicy, StoredResponse};
    use std::time::Duration;
    let store = &db.store;
    let policy = IdempotencyPolicy::default();
    let claim = |ws: &'static str, key: &'static str, fp: &'static str, policy| async move {
        store.claim_idempotency_key(ws, key, fp, "owner", policy).await.unwrap()
    };
    assert_eq!(claim("ws1", "k1", "fp-a", policy).await, IdempotencyClaim::Claimed);
    assert_eq!(claim("ws1", "k1", "fp-a", policy).await, IdempotencyClaim::InFlight);
    assert_eq!(claim("ws1", "k1", "fp-b", policy).await, IdempotencyClaim::Mismatch);
    // Keys are per workspace.
    assert_eq!(claim("ws2", "k1", "fp-b", policy).await, IdempotencyClaim::Claimed);
    let response = StoredResponse { status: 202, body: "{\"ok\":true}".to_owned() };
    store.complete_idempotency_key("ws1", "k1", "owner", &response).await.unwrap();
    assert_eq!(claim("ws1", "k1", "fp-a", policy).await, IdempotencyClaim::Replay(response));

    // A released key runs afresh; a dead claim is taken over once its lock ran out.
    store.release_idempotency_key("ws2", "k1", "owner").await.unwrap();
    assert_eq!(claim("ws2", "k1", "fp-c", policy).await, IdempotencyClaim::Claimed);
    let no_lock = IdempotencyPolicy { lease: Duration::ZERO, ..policy };
    assert_eq!(claim("ws1", "k2", "fp", no_lock).await, IdempotencyClaim::Claimed);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(claim("ws1", "k2", "fp", no_lock).await, IdempotencyClaim::Claimed);
    // Expired records are forgotten.
    let no_retention = IdempotencyPolicy { retention: Duration::ZERO, ..policy };
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(claim("ws1", "k1", "fp-other", no_retention).await, IdempotencyClaim::Claimed);
    assert!(store.prune_idempotency_keys(Duration::ZERO).await.unwrap() >= 1);
}

/// A claim is a lease held by its owner: renewing keeps it, a lapsed one is taken over by a
/// retry (the crashed-process case), and the former owner can then neither renew, complete nor
/// release it, so it cannot disturb the request that took over.
async fn idempotency_leases_are_owned_renewed_and_taken_over(db: Arc<Db>) {
    use convo_store::{IdempotencyClaim, IdempotencyPolicy, StoredResponse};
    use std::time::Duration;
    let store = &db.store;
    let short = IdempotencyPolicy { lease: Duration::from_millis(200), ..Default::default() };
    let long = IdempotencyPolicy { lease: Duration::from_secs(60), ..Default::default() };
    let claim = |owner: &'static str, policy| async move {
        store.claim_idempotency_key("ws1", "k", "fp", owner, policy).await.unwrap()
    };

    // A renewed lease outlives its first term: the live owner keeps the key.
    assert_eq!(claim("a", short).await, IdempotencyClaim::Claimed);
    assert!(store.renew_idempotency_key("ws1", "k", "a", long).await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(claim("b", short).await, IdempotencyClaim::InFlight);
    // Only the owner renews.
    assert!(!store.renew_idempotency_key("ws1", "k", "b", long).await.unwrap());

    // The owner stops renewing (its process died): once the lease runs out, a retry takes the
    // claim over and owns it.
    assert!(store.renew_idempotency_key("ws1", "k", "a", short).await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(claim("b", long).await, IdempotencyClaim::Claimed);
    assert_eq!(claim("c", long).await, IdempotencyClaim::InFlight);

    // The old owner, back from the dead, can do nothing to the new owner's claim.
    let stale = StoredResponse { status: 202, body: "{\"from\":\"a\"}".to_owned() };
    assert!(!store.renew_idempotency_key("ws1", "k", "a", long).await.unwrap());
    assert!(!store.complete_idempotency_key("ws1", "k", "a", &stale).await.unwrap());
    assert!(!store.release_idempotency_key("ws1", "k", "a").await.unwrap());
    assert_eq!(claim("c", long).await, IdempotencyClaim::InFlight);

    // The new owner's answer is the one replayed; a completed key has no lease to renew.
    let answer = StoredResponse { status: 202, body: "{\"from\":\"b\"}".to_owned() };
    assert!(store.renew_idempotency_key("ws1", "k", "b", long).await.unwrap());
    assert!(store.complete_idempotency_key("ws1", "k", "b", &answer).await.unwrap());
    assert_eq!(claim("c", long).await, IdempotencyClaim::Replay(answer));
    assert!(!store.renew_idempotency_key("ws1", "k", "b", long).await.unwrap());
    assert!(!store.release_idempotency_key("ws1", "k", "b").await.unwrap());

    // A taken-over claim that the new owner releases runs afresh for the next request.
    assert_eq!(
        store.claim_idempotency_key("ws1", "k2", "fp", "a", short).await.unwrap(),
        IdempotencyClaim::Claimed
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.claim_idempotency_key("ws1", "k2", "fp", "b", long).await.unwrap(),
        IdempotencyClaim::Claimed
    );
    assert!(store.release_idempotency_key("ws1", "k2", "b").await.unwrap());
    assert_eq!(
        store.claim_idempotency_key("ws1", "k2", "fp", "c", long).await.unwrap(),
        IdempotencyClaim::Claimed
    );
}

async fn conversations_and_lookups(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws1").await;
    workspace(store, "ws2").await;
    let (c, created) = store.record_conversation("cv1", "ws1", Channel::Sms, "ch_x").await.unwrap();
    assert!(created);
    let (again, created) =
        store.record_conversation("cv1", "ws1", Channel::Sms, "ch_x").await.unwrap();
    assert!(!created);
    assert_eq!(again, c);
    assert!(matches!(
        store.record_conversation("cv1", "ws2", Channel::Sms, "ch_x").await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(store.conversation("ws2", "cv1").await, Err(StoreError::NotFound { .. })));
    assert_eq!(store.conversation("ws1", "cv1").await.unwrap(), c);

    let (contact, _) = store.find_or_create_contact("ws1", phone("+14155550100")).await.unwrap();
    let found = store.contact_by_address("ws1", "+1 415 555 0100").await.unwrap();
    assert_eq!(found.map(|c| c.id), Some(contact.id.clone()));
    assert!(store.contact_by_address("ws2", "+14155550100").await.unwrap().is_none());
    assert!(store.contact_by_address("ws1", "ada@example.com").await.unwrap().is_none());
    assert_validation(store.contact_by_address("ws1", "12").await, "phone");

    store
        .record_message(&NewMessage {
            id: MessageId::new("m1"),
            workspace_id: "ws1".to_owned(),
            contact_id: contact.id.clone(),
            channel: Channel::Sms,
            direction: Direction::Outbound,
            content: serde_json::json!({"text": "hi"}),
            status: MessageStatus::Accepted,
            provider_message_id: Some("SM123".to_owned()),
            at: None,
        })
        .await
        .unwrap();
    let m = store.message_by_provider_id("ws1", "SM123").await.unwrap().unwrap();
    assert_eq!(m.id.as_str(), "m1");
    assert!(store.message_by_provider_id("ws2", "SM123").await.unwrap().is_none());
}
