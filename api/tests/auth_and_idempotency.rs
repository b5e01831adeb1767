//! API keys (Bearer and x-api-key, revocation, cross-workspace isolation) and Idempotency-Key
//! semantics (replay, mismatch, in flight), over HTTP.

mod support;

use convo_api::AppSettings;
use convo_domain::Channel;
use convo_store::{IdempotencyPolicy, StoredResponse};
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{Stack, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_authenticate_and_workspaces_are_isolated() -> anyhow::Result<()> {
    let stack = Stack::start("auth").await?;
    let (a, b) = (&stack.a, &stack.b);

    // No key, a bad key, a bad scheme: 401 JSON.
    for headers in [
        vec![],
        vec![("authorization", "Bearer nope-nope-nope-nope")],
        vec![("authorization", "Basic abc")],
    ] {
        let r = stack.call(Method::GET, "/v1/channels", None, None, &headers).await?;
        assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthorized"), "{headers:?}");
    }
    // Bearer and x-api-key both work.
    let r = stack.get(&a.key, "/v1/channels").await?;
    assert_eq!(r.status, StatusCode::OK);
    let ids: Vec<_> = r.body["data"].as_array().unwrap().iter().map(|c| c["id"].clone()).collect();
    assert!(ids.contains(&json!(a.channel_id(Channel::Sms))));
    assert!(!ids.contains(&json!(b.channel_id(Channel::Sms))));
    let r = stack.call(Method::GET, "/v1/channels", None, None, &[("x-api-key", &a.key)]).await?;
    assert_eq!(r.status, StatusCode::OK);

    // A's conversation, contact and endpoint are invisible to B.
    let compose = json!({"channel_id": a.channel_id(Channel::Sms), "contact_phone": "+14155550123", "content": "hi", "template": {"name": "hello"}});
    let composed = stack.post(&a.key, "/v1/conversations/compose", compose).await?;
    assert_eq!(composed.status, StatusCode::ACCEPTED, "{composed:?}");
    let id = composed.body["conversation_id"].as_str().unwrap().to_owned();
    let conv = stack
        .until(&a.key, &format!("/v1/conversations/{id}"), "contact", |r| {
            r.body["contact_id"].is_string()
        })
        .await?;
    let contact = conv.body["contact_id"].as_str().unwrap().to_owned();
    for path in [
        format!("/v1/conversations/{id}"),
        format!("/v1/windows/{contact}"),
        "/v1/windows/%2B14155550123".to_owned(),
    ] {
        let r = stack.get(&b.key, &path).await?;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"), "{path}: {r:?}");
    }
    for (path, body) in [
        (
            format!("/v1/conversations/{id}/messages"),
            json!({"type": "text", "text": {"body": "x"}}),
        ),
        (format!("/v1/conversations/{id}/take-over"), json!({"agent_id": "mallory"})),
        (format!("/v1/conversations/{id}/resolve"), json!({})),
        (format!("/v1/windows/{contact}/close"), json!({})),
    ] {
        let r = stack.post(&b.key, &path, body).await?;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"), "{path}: {r:?}");
    }
    let endpoints = stack.get(&a.key, "/v1/webhook-endpoints").await?;
    let endpoint = endpoints.body["data"][0]["id"].as_str().unwrap().to_owned();
    assert!(
        endpoints.body["data"][0].get("secret").is_none(),
        "secrets are shown only at creation"
    );
    let r = stack
        .call(Method::DELETE, &format!("/v1/webhook-endpoints/{endpoint}"), Some(&b.key), None, &[])
        .await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // B's channel named by A: one 422, the same as an unknown channel.
    let foreign = json!({"channel_id": b.channel_id(Channel::Sms), "contact_phone": "+14155550123", "content": "hi"});
    let r = stack.post(&a.key, "/v1/conversations/compose", foreign).await?;
    assert_eq!(
        (r.status, r.code(), r.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("channel_id"))
    );

    // Endpoints: create (with secret), list, delete.
    let created = stack
        .post(
            &b.key,
            "/v1/webhook-endpoints",
            json!({"url": "https://1.1.1.1/hook", "event_types": ["conversation.*"]}),
        )
        .await?;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert!(created.body["secret"].as_str().unwrap().starts_with("whsec_"));
    let new_id = created.body["id"].as_str().unwrap().to_owned();
    let r = stack
        .call(Method::DELETE, &format!("/v1/webhook-endpoints/{new_id}"), Some(&b.key), None, &[])
        .await?;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let listed = stack.get(&b.key, "/v1/webhook-endpoints").await?;
    assert!(!listed.body["data"].as_array().unwrap().iter().any(|e| e["id"] == new_id.as_str()));

    // A revoked key stops working at once.
    let keys = stack.store.api_keys(&b.id).await?;
    stack.store.revoke_api_key(&b.id, &keys[0].id).await?;
    let r = stack.get(&b.key, "/v1/channels").await?;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    stack.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_replays_refuses_reuse_and_in_flight() -> anyhow::Result<()> {
    // The claim "held by another request" below is never renewed, so its lease (5 s) would
    // run out and be taken over within the default wait (30 s): wait less than the lease.
    let idempotency =
        IdempotencyPolicy { wait: std::time::Duration::from_millis(500), ..Default::default() };
    let settings = AppSettings { idempotency, ..AppSettings::default() };
    let stack = Stack::start_with("idem", settings).await?;
    let key = stack.a.key.clone();
    let compose = json!({"channel_id": stack.a.channel_id(Channel::Whatsapp), "contact_phone": "+14155550124", "content": "hi", "template": {"name": "hello"}});

    let first =
        stack.post_idem(&key, "/v1/conversations/compose", compose.clone(), "k-compose").await?;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let second =
        stack.post_idem(&key, "/v1/conversations/compose", compose.clone(), "k-compose").await?;
    assert_eq!(second.status, StatusCode::ACCEPTED);
    assert_eq!(second.body, first.body);
    assert_eq!(
        second.headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()),
        Some("true")
    );
    // The same key in another workspace is another request.
    let other = json!({"channel_id": stack.b.channel_id(Channel::Whatsapp), "contact_phone": "+14155550124", "content": "hi", "template": {"name": "hello"}});
    let theirs =
        stack.post_idem(&stack.b.key, "/v1/conversations/compose", other, "k-compose").await?;
    assert_eq!(theirs.status, StatusCode::ACCEPTED);
    assert_ne!(theirs.body["conversation_id"], first.body["conversation_id"]);

    // A different body under the same key.
    let mut changed = compose.clone();
    changed["content"] = json!("hello there");
    let reused = stack.post_idem(&key, "/v1/conversations/compose", changed, "k-compose").await?;
    assert_eq!(
        (reused.status, reused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );

    // Exactly one first message went out per workspace, even though a's compose came twice.
    stack.sandbox.wait_for_sends(2, WAIT).await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(stack.sandbox.sends().len(), 2, "{:?}", stack.sandbox.sends());

    // Even after the stored key is gone, a retried compose finds its conversation.
    stack.store.prune_idempotency_keys(std::time::Duration::ZERO).await?;
    let late = stack.post_idem(&key, "/v1/conversations/compose", compose, "k-compose").await?;
    assert_eq!(late.status, StatusCode::ACCEPTED, "{late:?}");
    assert_eq!(late.body["conversation_id"], first.body["conversation_id"]);
    assert_ne!(late.body["status"], "pending", "it reports the running conversation");

    // In flight: a claim held by another request for the same body answers 409.
    let body = json!({"to": "+14155550125", "channel": "sms", "message_type": "MESSAGE", "content": {"template": {"name": "hello"}}});
    let bytes = serde_json::to_vec(&body)?;
    // The fingerprint is the application request's: the operation and the typed input.
    let request: convo_api::app::types::SendMessageRequest = serde_json::from_value(body)?;
    let send = convo_api::app::idempotency::operation::SEND_MESSAGE;
    let fingerprint = convo_api::App::request_fingerprint(send, "", &request)?;
    stack
        .store
        .claim_idempotency_key(
            &stack.a.id,
            "k-busy",
            &fingerprint,
            "another-request",
            IdempotencyPolicy::default(),
        )
        .await?;
    let busy = stack
        .raw(
            Method::POST,
            "/v1/messages",
            Some(&key),
            Some("application/json"),
            bytes.clone(),
            &[("Idempotency-Key", "k-busy")],
        )
        .await?;
    assert_eq!(
        (busy.status, busy.code()),
        (StatusCode::CONFLICT, "idempotency_key_in_use"),
        "{busy:?}"
    );
    // Once the first request finishes, its answer is replayed.
    let stored = json!({
        "message_id": "msg_x", "status": "queued", "created_at": "2025-01-01T00:00:00.000Z",
        "conversation_expires_at": null, "contact_id": "ct_x",
        "billing": {"channel": "sms", "message_type": "MESSAGE", "in_session": false,
            "hold_amount": 0, "message_price": 5, "balance": {"free": 1, "reserved": 0, "total": 1}},
    });
    let stored = StoredResponse { status: 202, body: stored.to_string() };
    stack.store.complete_idempotency_key(&stack.a.id, "k-busy", "another-request", &stored).await?;
    let done = stack
        .raw(
            Method::POST,
            "/v1/messages",
            Some(&key),
            Some("application/json"),
            bytes,
            &[("Idempotency-Key", "k-busy")],
        )
        .await?;
    assert_eq!((done.status, &done.body["message_id"]), (StatusCode::ACCEPTED, &json!("msg_x")));

    // A retried send never sends twice; a validation failure does not burn the key.
    let send = json!({"to": "+14155550126", "channel": "sms", "message_type": "MESSAGE", "content": {"template": {"name": "hello"}}});
    let bad =
        stack.post_idem(&key, "/v1/messages", json!({"to": "+14155550126"}), "k-send").await?;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let before = stack.sandbox.sends().len();
    let sent = stack.post_idem(&key, "/v1/messages", send.clone(), "k-send2").await?;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{sent:?}");
    stack.store.prune_idempotency_keys(std::time::Duration::ZERO).await?;
    // Past the stored key, the derived message id still guards the provider and the ledger:
    // the session that answered has ended, so the retry is refused, but nothing is sent again.
    let again = stack.post_idem(&key, "/v1/messages", send, "k-send2").await?;
    assert!(!again.status.is_server_error(), "{again:?}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(stack.sandbox.sends().len(), before + 1);
    let bad_key = stack.post_idem(&key, "/v1/messages", json!({}), &"x".repeat(300)).await?;
    assert_eq!(bad_key.status, StatusCode::BAD_REQUEST);
    stack.shutdown().await
}
