//! Cross-channel continuity over `convo serve`'s HTTP API (issue 12 §5): the contact's
//! session follows the channel of their latest inbound. A WhatsApp window the contact then
//! writes into on SMS is the same window, now on SMS: a send without `channel` goes there, a
//! send on WhatsApp is refused naming SMS, the window view and the webhooks say SMS, and each
//! message keeps the channel it went or came on. A composed conversation's replies follow too.
//!
//! A child of `serve` for its `Served` and `Api` helpers.

use anyhow::Context;
use convo::ServeConfig;
use convo_activities::testing::{ReceivedWebhook, WebhookReceiver};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Api, Served, WAIT};
use convo_tests::eventually;

async fn inbound(
    api: &Api,
    channel: &str,
    from: &str,
    text: &str,
    id: &str,
) -> anyhow::Result<String> {
    let (status, body) = api
        .post(
            "/v1/inbound/sandbox",
            json!({"from": from, "channel": channel, "text": text, "provider_message_id": id}),
        )
        .await?;
    anyhow::ensure!(status.is_success(), "inbound: {status} {body}");
    body["contact_ids"][0].as_str().map(str::to_owned).context("contact id")
}

async fn outbox(api: &Api, n: usize) -> anyhow::Result<Vec<Value>> {
    eventually(WAIT, || async {
        let (_, body) = api.get("/v1/sandbox/outbox").await?;
        let sends = body["data"].as_array().cloned().unwrap_or_default();
        anyhow::ensure!(sends.len() >= n, "{} sends so far: {body}", sends.len());
        Ok(sends)
    })
    .await
}

async fn exchanged(receiver: &WebhookReceiver, id: &str) -> anyhow::Result<Value> {
    eventually(WAIT, || async {
        receiver
            .received()
            .iter()
            .filter(|r| r.verified)
            .map(ReceivedWebhook::json)
            .find(|b| {
                b["type"] == "conversation.message_exchanged" && b["data"]["message"]["id"] == id
            })
            .with_context(|| format!("no message_exchanged for {id} yet"))
    })
    .await
}

/// WhatsApp, then SMS: the same window follows the contact to SMS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_follows_the_contacts_latest_channel() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let receiver = WebhookReceiver::start().await?;
    let (status, endpoint) =
        api.post("/v1/webhook-endpoints", json!({"url": receiver.url()})).await?;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    receiver.set_secret(endpoint["secret"].as_str().context("secret")?);
    let phone = "+14155550201";

    // Without a window there is no channel to follow.
    let text = |channel: Option<&str>| {
        let mut body = json!({"to": phone, "message_type": "CONVERSATION",
            "content": {"text": "Thanks, on it"}});
        if let Some(c) = channel {
            body["channel"] = c.into();
        }
        body
    };
    let (status, answer) = api.post("/v1/messages", text(None)).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["field"], "channel", "{answer}");

    let contact = inbound(&api, "whatsapp", phone, "Hi, my order?", "wamid.cc1").await?;
    let opened = api.window_until(&contact, "open on whatsapp", |w| w["open"] == true).await?;
    assert_eq!(opened["channel"], "whatsapp");
    let same = inbound(&api, "sms", phone, "Writing from SMS now", "SMcc2").await?;
    assert_eq!(same, contact, "one contact, one session");
    let moved = api.window_until(&contact, "moved to sms", |w| w["channel"] == "sms").await?;
    assert_eq!(moved["open"], true, "{moved}");
    assert_eq!(moved["opened_at"], opened["opened_at"], "the same window: {moved}");

    let (status, sent) = api.post("/v1/messages", text(None)).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["billing"]["channel"], "sms", "{sent}");
    let id = sent["message_id"].as_str().context("message_id")?.to_owned();
    let sends = outbox(&api, 1).await?;
    let send = sends.iter().find(|s| s["idempotency_key"] == id.as_str()).context("the send")?;
    assert_eq!(send["channel"], "sms", "{send}");
    assert_eq!(send["to"], phone);
    let (status, refused) = api.post("/v1/messages", text(Some("whatsapp"))).await?;
    assert!(status.is_client_error(), "{status} {refused}");
    assert_eq!(refused["error"]["code"], "channel_mismatch", "{refused}");
    assert!(
        refused["error"]["message"].as_str().is_some_and(|m| m.contains("sms")),
        "the refusal names where the contact is: {refused}"
    );

    // Each message keeps its channel; the webhooks say which channel is current.
    let hook = exchanged(&receiver, "wamid.cc1").await?;
    assert_eq!(hook["data"]["message"]["channel"], "whatsapp", "{hook}");
    let hook = exchanged(&receiver, "SMcc2").await?;
    assert_eq!(hook["data"]["channel"], "sms", "{hook}");
    assert_eq!(hook["data"]["message"]["channel"], "sms", "{hook}");
    let hook = exchanged(&receiver, &id).await?;
    assert_eq!(hook["data"]["channel"], "sms", "{hook}");
    let (_, logged) = api.get("/v1/messages/wamid.cc1").await?;
    assert_eq!(logged["channel"], "whatsapp", "{logged}");
    let (_, logged) = api.get(&format!("/v1/messages/{id}")).await?;
    assert_eq!(logged["channel"], "sms", "{logged}");

    // Back on WhatsApp: the session follows again.
    inbound(&api, "whatsapp", phone, "Back on WhatsApp", "wamid.cc3").await?;
    api.window_until(&contact, "back on whatsapp", |w| w["channel"] == "whatsapp").await?;
    let (status, sent) = api.post("/v1/messages", text(None)).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let sends = outbox(&api, 2).await?;
    assert_eq!(sends[1]["channel"], "whatsapp", "{:?}", sends[1]);
    assert!(receiver.rejected().is_empty(), "every delivery verified");
    stack.shutdown().await
}

/// A conversation composed on WhatsApp, answered on SMS: the agent's reply goes on SMS, and
/// the conversation view shows each message's channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversations_replies_follow_the_contact() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let whatsapp = api.channel("whatsapp").await?;
    let phone = "+14155550202";
    let compose = json!({"channel_id": whatsapp, "contact_phone": phone, "contact_name": "Ada",
        "content": "Hi Ada, your order shipped",
        "template": {"name": "shipping_update", "variables": {"1": "Ada", "2": "A-42"}}});
    let (status, composed) = api.post("/v1/conversations/compose", compose).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{composed}");
    let id = composed["conversation_id"].as_str().context("conversation_id")?.to_owned();
    outbox(&api, 1).await?;
    inbound(&api, "sms", phone, "Got it, thanks!", "SMcc10").await?;
    api.conversation_active(&id).await?;
    let reply = json!({"type": "text", "text": {"body": "Glad to help"}});
    let (status, sent) = api.post(&format!("/v1/conversations/{id}/messages"), reply).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let sends = outbox(&api, 2).await?;
    assert_eq!(sends[0]["channel"], "whatsapp");
    assert_eq!(sends[1]["channel"], "sms", "{:?}", sends[1]);
    let (_, view) = api.get(&format!("/v1/conversations/{id}")).await?;
    let channels: Vec<&str> = view["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["channel"].as_str())
        .collect();
    assert_eq!(channels, ["whatsapp", "sms", "sms"], "{view}");
    stack.shutdown().await
}
