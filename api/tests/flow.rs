//! The newcomer's walk, over HTTP: compose, the contact's reply through the sandbox inbound, a
//! CONVERSATION send in the window, an agent's reply in the conversation, closing the window,
//! and the 422 `no_active_session` after it; then the webhook log.

mod support;

use convo_domain::Channel;
use reqwest::StatusCode;
use serde_json::json;
use support::{Stack, WAIT};

const PHONE: &str = "+14155550100";
const PHONE_PATH: &str = "%2B14155550100";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_reply_send_close_and_refuse() -> anyhow::Result<()> {
    let stack = Stack::start("flow").await?;
    let key = stack.a.key.clone();

    let channels = stack.get(&key, "/v1/channels").await?;
    assert_eq!(channels.status, StatusCode::OK);
    assert_eq!(channels.body["data"].as_array().map(Vec::len), Some(Channel::ALL.len()));

    // Compose: no window yet, so the template goes out.
    let compose = json!({
        "channel_id": stack.a.channel_id(Channel::Whatsapp),
        "contact_phone": "+1 (415) 555-0100",
        "contact_name": "Ada",
        "content": "Your order shipped",
        "template": {"name": "order_update", "variables": {"1": "Ada"}},
    });
    let composed = stack.post_idem(&key, "/v1/conversations/compose", compose, "compose-1").await?;
    assert_eq!(composed.status, StatusCode::ACCEPTED, "{composed:?}");
    let id = composed.body["conversation_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/conversations/{id}");
    let conv = stack
        .until(&key, &path, "awaiting reply", |a| a.body["status"] == "awaiting_reply")
        .await?;
    assert!(conv.body["contact_id"].is_string());
    let sends = stack.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!(sends[0].to, PHONE);

    // No window: a CONVERSATION send is refused, never downgraded.
    let conversation_send = json!({
        "to": PHONE, "channel": "whatsapp", "message_type": "CONVERSATION",
        "content": {"text": "hi back"}, "traffic_type": "transactional",
    });
    let refused = stack.post(&key, "/v1/messages", conversation_send.clone()).await?;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_active_session")
    );

    // The contact replies through the sandbox inbound.
    let inbound = json!({"from": PHONE, "to": stack.a.number, "channel": "whatsapp", "text": "where is it?", "provider_message_id": "wamid.in1"});
    let received = stack.post(&key, "/v1/inbound/sandbox", inbound).await?;
    assert_eq!(received.status, StatusCode::ACCEPTED, "{received:?}");
    let window = stack
        .until(&key, &format!("/v1/windows/{PHONE_PATH}"), "open", |a| a.body["status"] == "open")
        .await?;
    assert_eq!(window.body["channel"], "whatsapp");
    assert!(window.body["expires_at"].is_string());
    assert!(
        window.body["billing_session_ends_at"].is_null()
            || window.body["billing_session_ends_at"].is_string()
    );
    stack.until(&key, &path, "active", |a| a.body["status"] == "active").await?;

    // An agent's reply in the conversation, then a CONVERSATION send: both in the window.
    let taken =
        stack.post(&key, &format!("{path}/take-over"), json!({"agent_id": "agent-7"})).await?;
    assert_eq!(taken.body, json!({"ok": true}), "{taken:?}");
    let reply = stack
        .post(
            &key,
            &format!("{path}/messages"),
            json!({"type": "text", "text": {"body": "It arrives tomorrow."}}),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    assert_eq!(reply.body["billing"]["message_type"], "CONVERSATION");

    let sent = stack.post_idem(&key, "/v1/messages", conversation_send.clone(), "send-1").await?;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{sent:?}");
    assert_eq!(sent.body["status"], "queued");
    assert_eq!(sent.body["billing"]["channel"], "whatsapp");
    assert_eq!(sent.body["billing"]["message_type"], "CONVERSATION");
    assert_eq!(
        sent.body["billing"]["in_session"], true,
        "the agent's reply opened the billing session"
    );
    assert!(sent.body["conversation_expires_at"].is_string());
    assert!(sent.body["billing"]["balance"]["total"].is_f64(), "{sent:?}");
    assert_eq!(sent.body["billing"]["currency"], "EUR", "{sent:?}");
    // Read in RBM's vocabulary and echoed in it.
    assert_eq!(sent.body["traffic_type"], "TRANSACTION");

    // Close; the answer already reads closed, and a free-form send is refused.
    let closed = stack.post(&key, &format!("/v1/windows/{PHONE_PATH}/close"), json!({})).await?;
    assert_eq!(closed.status, StatusCode::OK, "{closed:?}");
    assert_eq!(closed.body["status"], "closed");
    assert_eq!(closed.body["close_reason"], "EXPLICIT");
    let again = stack
        .call(
            reqwest::Method::POST,
            &format!("/v1/windows/{PHONE_PATH}/close"),
            Some(&key),
            None,
            &[],
        )
        .await?;
    assert_eq!((again.status, &again.body["status"]), (StatusCode::OK, &json!("closed")));
    let refused = stack.post(&key, "/v1/messages", conversation_send).await?;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_active_session"),
        "{refused:?}"
    );

    // A template (MESSAGE) still goes out with no window, billed per message.
    let template = json!({"to": PHONE, "channel": stack.a.channel_id(Channel::Whatsapp), "message_type": "MESSAGE", "content": {"template": {"name": "reengage"}}});
    let sent = stack.post(&key, "/v1/messages", template).await?;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{sent:?}");
    assert_eq!(sent.body["billing"]["message_type"], "MESSAGE");
    assert_eq!(sent.body["billing"]["message_price"], 0.05, "{sent:?}");

    // The webhook log shows the conversation's events.
    let log = stack
        .until(&key, "/v1/webhook-deliveries", "ended delivered", |a| {
            a.body["data"].as_array().is_some_and(|d| {
                d.iter()
                    .any(|x| x["event_type"] == "conversation.ended" && x["status"] == "delivered")
            })
        })
        .await?;
    assert!(
        log.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["event_type"] == "conversation.started")
    );

    let conv = stack.get(&key, &path).await?;
    let messages = conv.body["messages"].as_array().unwrap();
    assert!(
        messages.iter().any(|m| m["direction"] == "inbound" && m["text"] == "where is it?"),
        "{conv:?}"
    );
    assert_eq!(conv.body["assignee"], json!({"kind": "human", "id": "agent-7"}));
    stack.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_expire_with_virtual_time_and_proactive_reports_per_recipient() -> anyhow::Result<()>
{
    let stack = Stack::start("expiry").await?;
    let key = stack.a.key.clone();
    let inbound = json!({"from": PHONE, "channel": "whatsapp", "text": "hello"});
    assert_eq!(
        stack.post(&key, "/v1/inbound/sandbox", inbound).await?.status,
        StatusCode::ACCEPTED
    );
    stack
        .until(&key, &format!("/v1/windows/{PHONE_PATH}"), "open", |a| a.body["open"] == true)
        .await?;

    stack.skip(std::time::Duration::from_secs(25 * 3600)).await?;
    let window = stack
        .until(&key, &format!("/v1/windows/{PHONE_PATH}"), "expired", |a| a.body["open"] == false)
        .await?;
    assert_eq!(window.body["close_reason"], "EXPIRED", "{window:?}");

    let campaign = json!({
        "channel_id": stack.a.channel_id(Channel::Sms),
        "template": {"name": "promo", "variables": {}},
        "recipients": ["+14155550111", "12", {"phone": "+14155550112", "name": "Bo"}, "nobody@example.com"],
        "bot_id": "campaign-bot",
    });
    let started = stack.post(&key, "/v1/conversations/proactive", campaign).await?;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{started:?}");
    let results = started.body["conversations"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert!(results[0]["conversation_id"].is_string());
    assert_eq!(results[1]["error"]["code"], "validation_failed");
    assert_eq!(results[1]["error"]["field"], "recipients[1]");
    assert!(results[2]["conversation_id"].is_string());
    assert_eq!(
        results[3]["error"]["code"], "validation_failed",
        "sms cannot reach an e-mail address"
    );
    assert_eq!(
        (started.body["accepted"].as_u64(), started.body["failed"].as_u64()),
        (Some(2), Some(2))
    );
    stack.sandbox.wait_for_sends(2, WAIT).await?;
    stack.shutdown().await
}

/// A proactive campaign as the proactive-conversation API sends it: `live_agent: true` with
/// the person's `user_id`; a recipient listed twice (in two spellings) is messaged once and
/// answered `duplicate` with the first listing's conversation. The contact a compose named can
/// be read back, by id or number, and in the conversation view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proactive_dedupes_recipients_and_contacts_read_back() -> anyhow::Result<()> {
    let stack = Stack::start("proactive-dedupe").await?;
    let key = stack.a.key.clone();
    let channel = stack.a.channel_id(Channel::Sms);
    let refused = stack
        .post(
            &key,
            "/v1/conversations/proactive",
            json!({"channel_id": channel,
            "template": {"name": "promo", "variables": {}}, "recipients": ["+14155550121"],
            "live_agent": true}),
        )
        .await?;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{refused:?}");
    assert_eq!(refused.body["error"]["field"], "user_id", "{refused:?}");
    let campaign = json!({
        "channel_id": channel,
        "template": {"name": "promo", "variables": {}},
        "recipients": ["+14155550121", {"phone": "+1 (415) 555-0122", "name": "Bo"},
                       "+1 415 555 0121", "+14155550122"],
        "live_agent": true,
        "user_id": "agent-9",
    });
    let started = stack.post(&key, "/v1/conversations/proactive", campaign).await?;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{started:?}");
    let results = started.body["conversations"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[2]["status"], "duplicate", "{started:?}");
    assert_eq!(results[2]["duplicate_of"], 0);
    assert_eq!(results[2]["conversation_id"], results[0]["conversation_id"]);
    assert_eq!(results[3]["duplicate_of"], 1);
    let counts = |k: &str| started.body[k].as_u64();
    assert_eq!(
        (counts("accepted"), counts("failed"), counts("duplicates")),
        (Some(2), Some(0), Some(2))
    );
    let sends = stack.sandbox.wait_for_sends(2, WAIT).await?;
    assert_eq!(sends.len(), 2, "each number messaged once: {sends:?}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(stack.sandbox.sends().len(), 2, "and no more");

    let id = results[1]["conversation_id"].as_str().unwrap();
    let conv = stack
        .until(&key, &format!("/v1/conversations/{id}"), "contact resolved", |a| {
            a.body["contact"].is_object()
        })
        .await?;
    assert_eq!(conv.body["assignee"], json!({"kind": "human", "id": "agent-9"}));
    let contact = &conv.body["contact"];
    assert_eq!(contact["name"], "Bo", "{conv:?}");
    assert_eq!(contact["phone"], "+14155550122");
    assert_eq!(contact["consent"], "unknown");
    let by_id = stack
        .get(&key, &format!("/v1/contacts/{}", contact["contact_id"].as_str().unwrap()))
        .await?;
    assert_eq!(by_id.status, StatusCode::OK, "{by_id:?}");
    assert_eq!(&by_id.body, contact);
    let by_phone = stack.get(&key, "/v1/contacts/%2B14155550122").await?;
    assert_eq!(&by_phone.body, contact);
    let missing = stack.get(&key, "/v1/contacts/%2B14155550199").await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{missing:?}");
    let other = stack
        .get(&stack.b.key, &format!("/v1/contacts/{}", contact["contact_id"].as_str().unwrap()))
        .await?;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "another workspace's contact: {other:?}");
    stack.shutdown().await
}
