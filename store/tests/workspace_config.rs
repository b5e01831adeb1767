//! What a workspace's operators configure, against every backend: top-ups with their author and
//! reason, the template registry, and atomic settings changes. Each test runs on a fresh SQLite
//! file and, when `DATABASE_URL` is set, on Postgres in a schema of its own.

use std::sync::Arc;

use convo_domain::{Balance, Channel, Money, RateCard, WorkspaceSettings};
use convo_store::{Actor, NewTemplate, NewTopUp, Store, StoreError};
use futures::future::join_all;

#[macro_use]
mod support;

use support::{Db, Kind, run};

backend_tests!(
    top_ups_record_who_and_why_once,
    templates_are_registered_listed_and_removed,
    settings_changes_are_atomic,
);

fn m(minor: u64) -> Money {
    Money::from_minor(minor)
}

fn bal(free: u64, reserved: u64, total: u64) -> Balance {
    Balance { free: m(free), reserved: m(reserved), total: m(total) }
}

async fn workspace(store: &Store, id: &str) {
    store.upsert_workspace(id, "Acme", &WorkspaceSettings::default()).await.unwrap();
}

fn top_up(id: &str, amount: u64, by: Actor, reason: &str) -> NewTopUp {
    NewTopUp { id: id.to_owned(), amount: m(amount), by, reason: reason.to_owned() }
}

#[track_caller]
fn assert_validation(result: Result<impl std::fmt::Debug, StoreError>, expected: &str) {
    match result {
        Err(StoreError::Validation { field, .. }) => assert_eq!(field, expected),
        other => panic!("expected a validation error on {expected}, got {other:?}"),
    }
}

async fn top_ups_record_who_and_why_once(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws1").await;
    store.credit("ws1", m(100), "opening").await.unwrap();
    let key = Actor::ApiKey("key_1".to_owned());
    let first = store.top_up("ws1", &top_up("tu_1", 500, key.clone(), "invoice 42")).await.unwrap();
    assert_eq!(first.id, "tu_1");
    assert_eq!(first.amount, m(500));
    assert_eq!(first.by, Some(key.clone()));
    assert_eq!(first.reason.as_deref(), Some("invoice 42"));
    assert_eq!(first.balance_after, Some(bal(600, 0, 600)));

    // Applying it again credits nothing and answers the first record.
    let again = store.top_up("ws1", &top_up("tu_1", 500, key.clone(), "invoice 42")).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(store.balance("ws1").await.unwrap(), bal(600, 0, 600));
    for other in [top_up("tu_1", 501, key.clone(), "invoice 42"), top_up("tu_1", 500, key, "x")] {
        assert!(matches!(store.top_up("ws1", &other).await, Err(StoreError::Conflict { .. })));
    }

    let alice = Actor::Operator("alice".to_owned());
    store.top_up("ws1", &top_up("tu_2", 50, alice.clone(), "goodwill")).await.unwrap();
    assert_validation(
        store.top_up("ws1", &top_up("tu_3", 0, alice.clone(), "zero")).await,
        "amount",
    );
    assert_validation(store.top_up("ws1", &top_up("tu_3", 1, alice.clone(), "  ")).await, "reason");
    let long = "x".repeat(501);
    assert_validation(
        store.top_up("ws1", &top_up("tu_3", 1, alice.clone(), &long)).await,
        "reason",
    );
    assert_validation(
        store.top_up("ws1", &top_up("tu_3", 1, Actor::Operator(String::new()), "r")).await,
        "by",
    );
    assert_validation(
        store.top_up("ws1", &top_up("", 1, alice.clone(), "r")).await,
        "idempotency_key",
    );
    assert!(matches!(
        store.top_up("ghost", &top_up("tu_4", 1, alice.clone(), "r")).await,
        Err(StoreError::NotFound { entity: "workspace", .. })
    ));

    // Newest first; the opening credit has no author.
    let listed = store.top_ups("ws1", 10).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids.iter().filter(|id| ["tu_1", "tu_2", "opening"].contains(id)).count(), 3);
    let goodwill = listed.iter().find(|t| t.id == "tu_2").unwrap();
    assert_eq!(
        (goodwill.by.as_ref(), goodwill.balance_after),
        (Some(&alice), Some(bal(650, 0, 650)))
    );
    let opening = listed.iter().find(|t| t.id == "opening").unwrap();
    assert_eq!((opening.by.as_ref(), opening.reason.as_deref()), (None, None));
    assert_eq!(opening.balance_after, Some(bal(100, 0, 100)));
    assert!(listed.windows(2).all(|w| w[0].created_at >= w[1].created_at));
    assert_eq!(store.top_ups("ws1", 1).await.unwrap().len(), 1);
    assert!(store.top_ups("ws2", 10).await.unwrap().is_empty());
}

fn template(name: &str, body: &str, variables: &[&str]) -> NewTemplate {
    NewTemplate {
        name: name.to_owned(),
        channel: Channel::Whatsapp,
        language: "en_US".to_owned(),
        body: body.to_owned(),
        variables: variables.iter().map(|v| (*v).to_owned()).collect(),
        category: Default::default(),
        status: Default::default(),
        components: Default::default(),
    }
}

async fn templates_are_registered_listed_and_removed(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws1").await;
    workspace(store, "ws2").await;
    let shipped = template("order_shipped", "Hi {{1}}, order {{2}} shipped", &["1", "2"]);
    let (stored, created) = store.create_template("ws1", &shipped).await.unwrap();
    assert!(created);
    assert_eq!(
        (stored.name.as_str(), stored.channel, stored.variables.as_slice()),
        ("order_shipped", Channel::Whatsapp, &["1".to_owned(), "2".to_owned()][..])
    );
    // The same template again is not an error; another one under the name is.
    let (again, created) = store.create_template("ws1", &shipped).await.unwrap();
    assert!(!created);
    assert_eq!(again, stored);
    let changed = template("order_shipped", "Order {{1}} shipped", &["1"]);
    assert!(matches!(
        store.create_template("ws1", &changed).await,
        Err(StoreError::Conflict { .. })
    ));
    let mut email = template("welcome", "Welcome, {{name}}", &["name"]);
    email.channel = Channel::Email;
    store.create_template("ws1", &email).await.unwrap();
    // Names are per workspace and channel: the same name on RCS is another template.
    store.create_template("ws2", &changed).await.unwrap();
    let mut on_rcs = changed.clone();
    on_rcs.channel = Channel::Rcs;
    let (rcs, created) = store.create_template("ws1", &on_rcs).await.unwrap();
    assert!(created && rcs.channel == Channel::Rcs);
    let named = store.templates_named("ws1", "order_shipped").await.unwrap();
    assert_eq!(
        named.iter().map(|t| t.channel).collect::<Vec<_>>(),
        [Channel::Rcs, Channel::Whatsapp]
    );
    store.delete_template("ws1", Channel::Rcs, "order_shipped").await.unwrap();

    let names =
        |list: Vec<convo_store::Template>| list.into_iter().map(|t| t.name).collect::<Vec<_>>();
    assert_eq!(names(store.templates("ws1").await.unwrap()), ["order_shipped", "welcome"]);
    let wa = Channel::Whatsapp;
    let body = store.template("ws2", wa, "order_shipped").await.unwrap().body;
    assert_eq!(body, "Order {{1}} shipped");
    assert_eq!(
        store.template("ws1", Channel::Email, "welcome").await.unwrap().channel,
        Channel::Email
    );
    assert!(matches!(
        store.template("ws1", wa, "welcome").await,
        Err(StoreError::NotFound { entity: "template", .. })
    ));

    store.delete_template("ws1", wa, "order_shipped").await.unwrap();
    assert!(matches!(
        store.template("ws1", wa, "order_shipped").await,
        Err(StoreError::NotFound { entity: "template", .. })
    ));
    assert!(matches!(
        store.delete_template("ws1", wa, "order_shipped").await,
        Err(StoreError::NotFound { entity: "template", .. })
    ));
    assert_eq!(names(store.templates("ws1").await.unwrap()), ["welcome"]);
    assert_eq!(names(store.templates("ws2").await.unwrap()), ["order_shipped"]);
    assert!(matches!(
        store.create_template("ghost", &shipped).await,
        Err(StoreError::NotFound { entity: "workspace", .. })
    ));
    assert_validation(store.create_template("ws1", &template(" ", "x", &[])).await, "name");

    // Reopening the database keeps them.
    let reopened = Store::connect(&db.url).await.unwrap();
    assert_eq!(names(reopened.templates("ws1").await.unwrap()), ["welcome"]);
    reopened.close().await;
}

async fn settings_changes_are_atomic(db: Arc<Db>) {
    let store = &db.store;
    workspace(store, "ws1").await;
    let changes = Channel::ALL.into_iter().enumerate().map(|(i, channel)| {
        let card = RateCard { message: m(i as u64 + 1), ..RateCard::default() };
        store.update_workspace_settings("ws1", move |s| {
            s.rates = std::mem::take(&mut s.rates).with(channel, card);
        })
    });
    for result in join_all(changes).await {
        result.unwrap();
    }
    let settings = store.workspace("ws1").await.unwrap().settings;
    for (i, channel) in Channel::ALL.into_iter().enumerate() {
        assert_eq!(settings.rates.for_channel(channel).message, m(i as u64 + 1), "{channel:?}");
    }
    assert!(matches!(
        store.update_workspace_settings("ghost", |_| {}).await,
        Err(StoreError::NotFound { entity: "workspace", .. })
    ));
}
