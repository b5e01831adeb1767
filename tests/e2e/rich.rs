//! RCS rich content over `convo serve`'s HTTP API (issue 12 §3): text with suggestions, a
//! standalone rich card and a carousel go out in RBM's wire form (the sandbox's RBM endpoint
//! reads that form back and holds it to RBM's limits, as RBM does), the outbox shows them, the
//! webhooks and `GET /v1/messages/{id}` carry them, a breach of RBM's limits is a 422 naming
//! the field, and a contact's tap comes back with its postback data, from the sandbox and from
//! a signed RBM event.
//!
//! A child of `serve` for its `Served` and `Api` helpers.

use anyhow::Context;
use convo::ServeConfig;
use convo_activities::testing::{ReceivedWebhook, WebhookReceiver};
use convo_domain::Channel;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Api, Served, WAIT, webhook_payloads::Schemas};
use crate::statuses::{rbm_envelope, rbm_signature};
use convo_tests::eventually;

/// The sandbox's outbox, once it holds `n` sends.
async fn outbox(api: &Api, n: usize) -> anyhow::Result<Vec<Value>> {
    eventually(WAIT, || async {
        let (status, body) = api.get("/v1/sandbox/outbox").await?;
        anyhow::ensure!(status.is_success(), "outbox: {status} {body}");
        let sends = body["data"].as_array().cloned().unwrap_or_default();
        anyhow::ensure!(sends.len() >= n, "{} sends so far: {body}", sends.len());
        Ok(sends)
    })
    .await
}

/// The verified `conversation.message_exchanged` about message `id`, once it arrived.
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

fn rcs_send(to: &str, message_type: &str, content: Value) -> Value {
    json!({"to": to, "channel": "rcs", "message_type": message_type, "content": content,
        "traffic_type": "TRANSACTION"})
}

/// A 422 `validation_failed` naming `field`.
fn names(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "validation_failed", "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
}

fn card(title: &str) -> Value {
    json!({"title": title, "description": format!("{title}, in stock"),
        "media": {"file_url": format!("https://cdn.example.com/{title}.png"), "height": "SHORT"},
        "suggestions": [{"open_url": {"text": "Buy", "postback_data": format!("buy_{title}"),
            "url": format!("https://shop.example/p/{title}")}}]})
}

/// The RCS conversation API's example (text with two replies) inside the contact's window, a
/// horizontal rich card and a carousel as MESSAGE sends: each reaches the sandbox's RBM
/// endpoint in RBM's form, the outbox shows it, the signed webhook carries its content and its
/// plain reading, and `GET /v1/messages/{id}` has it. Every delivery matches its schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggestions_cards_and_carousels_reach_the_contact() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let schemas = Schemas::fetch(&api).await?;
    let receiver = WebhookReceiver::start().await?;
    let (status, endpoint) =
        api.post("/v1/webhook-endpoints", json!({"url": receiver.url()})).await?;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    receiver.set_secret(endpoint["secret"].as_str().context("secret")?);
    let phone = "+4917612345678";

    let (status, body) = api
        .post(
            "/v1/inbound/sandbox",
            json!({"from": phone, "channel": "rcs", "text": "Where is my order?"}),
        )
        .await?;
    assert!(status.is_success(), "{body}");
    let contact = body["contact_ids"][0].as_str().context("contact")?.to_owned();
    api.window_until(&contact, "open", |w| w["open"] == true).await?;

    let replies = json!({
    "text": "Your order will arrive between 10:00–14:00 tomorrow. Anything else we can help with?",
    "suggestions": [
        {"reply": {"text": "All good", "postback_data": "YWNr"}},
        {"reply": {"text": "Change address", "postback_data": "Y2hhbmdlX2FkZHI="}},
        {"dial": {"text": "Call us", "phone_number": "+4930123456"}},
        {"share_location": {"text": "Share location"}},
    ]});
    let (status, sent) =
        api.post("/v1/messages", rcs_send(phone, "CONVERSATION", replies.clone())).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["billing"]["in_session"], true, "{sent}");
    let chips_id = sent["message_id"].as_str().context("message_id")?.to_owned();

    let mut horizontal = card("boots");
    horizontal["orientation"] = json!("HORIZONTAL");
    horizontal["thumbnail_alignment"] = json!("RIGHT");
    let (status, sent) = api
        .post("/v1/messages", rcs_send(phone, "MESSAGE", json!({"rich_card": horizontal})))
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let card_id = sent["message_id"].as_str().context("message_id")?.to_owned();

    let carousel = json!({"carousel": {"card_width": "MEDIUM", "cards": [card("mug"), card("tee")]},
        "suggestions": [{"reply": {"text": "More picks"}}]});
    let (status, sent) = api.post("/v1/messages", rcs_send(phone, "MESSAGE", carousel)).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let carousel_id = sent["message_id"].as_str().context("message_id")?.to_owned();

    // What RBM received, read back from its wire form.
    let sends = outbox(&api, 3).await?;
    let by_key = |id: &str| {
        sends
            .iter()
            .find(|s| s["idempotency_key"] == id)
            .cloned()
            .with_context(|| format!("{id} not in {sends:?}"))
    };
    let chips = by_key(&chips_id)?;
    assert_eq!(chips["channel"], "rcs");
    assert_eq!(chips["content"]["kind"], "rich", "{chips}");
    assert_eq!(chips["content"]["text"], replies["text"]);
    assert_eq!(chips["content"]["suggestions"], replies["suggestions"], "{chips}");
    let boots = by_key(&card_id)?;
    let shown = &boots["content"]["rich_card"];
    assert_eq!(shown["orientation"], "HORIZONTAL", "{boots}");
    assert_eq!(shown["thumbnail_alignment"], "RIGHT", "{boots}");
    assert_eq!(shown["title"], "boots");
    assert_eq!(shown["media"]["file_url"], "https://cdn.example.com/boots.png");
    assert_eq!(shown["media"]["height"], "SHORT");
    assert_eq!(shown["suggestions"][0]["open_url"]["url"], "https://shop.example/p/boots");
    assert_eq!(shown["suggestions"][0]["open_url"]["postback_data"], "buy_boots");
    let picks = by_key(&carousel_id)?;
    let cards = &picks["content"]["carousel"]["cards"];
    assert_eq!(cards.as_array().map(Vec::len), Some(2), "{picks}");
    assert_eq!(cards[1]["title"], "tee");
    assert_eq!(picks["content"]["suggestions"][0]["reply"]["text"], "More picks");

    // The webhooks and the message log carry the content and read it as text.
    let hook = exchanged(&receiver, &chips_id).await?;
    schemas.check(&hook)?;
    let message = &hook["data"]["message"];
    assert_eq!(message["content"]["kind"], "rich", "{hook}");
    assert_eq!(message["content"]["suggestions"][1]["reply"]["postback_data"], "Y2hhbmdlX2FkZHI=");
    assert_eq!(
        message["text"],
        format!(
            "{}\n[All good] [Change address] [Call us] [Share location]",
            replies["text"].as_str().unwrap_or_default()
        )
    );
    let hook = exchanged(&receiver, &carousel_id).await?;
    schemas.check(&hook)?;
    assert_eq!(
        hook["data"]["message"]["text"],
        "mug\nmug, in stock\n[Buy]\ntee\ntee, in stock\n[Buy]\n[More picks]"
    );
    let (status, logged) = api.get(&format!("/v1/messages/{card_id}")).await?;
    assert_eq!(status, StatusCode::OK, "{logged}");
    assert_eq!(logged["content"]["rich_card"]["title"], "boots", "{logged}");
    assert_eq!(logged["text"], "boots\nboots, in stock\n[Buy]", "{logged}");

    // The contact taps "Change address": its postback data comes back with the text.
    let tap = json!({"from": phone, "channel": "rcs", "text": "Change address",
        "postback_data": "Y2hhbmdlX2FkZHI=", "provider_message_id": "rbm-tap-1"});
    let (status, body) = api.post("/v1/inbound/sandbox", tap).await?;
    assert!(status.is_success(), "{body}");
    let hook = exchanged(&receiver, "rbm-tap-1").await?;
    schemas.check(&hook)?;
    assert_eq!(hook["data"]["message"]["direction"], "inbound");
    assert_eq!(hook["data"]["message"]["text"], "Change address");
    assert_eq!(hook["data"]["message"]["postback_data"], "Y2hhbmdlX2FkZHI=");
    assert!(receiver.rejected().is_empty(), "every delivery verified");
    stack.shutdown().await
}

/// RBM's published limits, each refused up front with a 422 naming the field, and nothing
/// sent; rich content on another channel, or a postback on another channel's inbound, is
/// refused the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbm_limits_are_422s_that_name_the_field() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let phone = "+4917612345679";
    let reply = |text: &str| json!({"reply": {"text": text}});
    let table: Vec<(&str, &str, Value)> = vec![
        (
            "rcs",
            "content.suggestions[0].reply.text",
            json!({"text": "Hi", "suggestions": [reply(&"x".repeat(26))]}),
        ),
        ("rcs", "content.suggestions", json!({"text": "Hi", "suggestions": vec![reply("ok"); 12]})),
        (
            "rcs",
            "content.suggestions[1].open_url.url",
            json!({"text": "Hi", "suggestions": [reply("a"),
            {"open_url": {"text": "Go", "url": "javascript:alert(1)"}}]}),
        ),
        (
            "rcs",
            "content.suggestions[0].dial.phone_number",
            json!({"text": "Hi", "suggestions": [
            {"dial": {"text": "Call", "phone_number": "0176 123"}}]}),
        ),
        ("rcs", "content.rich_card.title", json!({"rich_card": {"title": "t".repeat(201)}})),
        (
            "rcs",
            "content.rich_card.description",
            json!({"rich_card": {"description": "d".repeat(2001)}}),
        ),
        (
            "rcs",
            "content.rich_card.suggestions",
            json!({"rich_card": {"title": "T", "suggestions": vec![reply("a"); 5]}}),
        ),
        ("rcs", "content.rich_card", json!({"rich_card": {}})),
        (
            "rcs",
            "content.rich_card.thumbnail_alignment",
            json!({"rich_card": {"orientation": "HORIZONTAL",
            "media": {"file_url": "https://cdn.example.com/a.png"}}}),
        ),
        ("rcs", "content.carousel.cards", json!({"carousel": {"cards": [{"title": "only one"}]}})),
        (
            "rcs",
            "content.carousel.cards",
            json!({"carousel": {"cards": vec![json!({"title": "c"}); 11]}}),
        ),
        (
            "rcs",
            "content.carousel.cards[1].media.height",
            json!({"carousel": {"card_width": "SMALL", "cards": [
            {"title": "a"}, {"media": {"file_url": "https://cdn.example.com/b.png", "height": "TALL"}}]}}),
        ),
        ("rcs", "content.text", json!({"text": "x".repeat(3073)})),
        ("whatsapp", "content.suggestions", json!({"text": "Hi", "suggestions": [reply("ok")]})),
        ("sms", "content.rich_card", json!({"rich_card": {"title": "T"}})),
    ];
    for (channel, field, content) in table {
        let body =
            json!({"to": phone, "channel": channel, "message_type": "MESSAGE", "content": content});
        let (status, answer) = api.post("/v1/messages", body).await?;
        names(status, &answer, field);
    }
    // A suggestion of a kind RBM has not: serde names where it is.
    let body = rcs_send(
        phone,
        "MESSAGE",
        json!({"text": "Hi", "suggestions": [{"calendar": {"text": "x"}}]}),
    );
    let (status, answer) = api.post("/v1/messages", body).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["error"]["field"].as_str().is_some_and(|f| f.starts_with("content.suggestions[0]")),
        "{answer}"
    );
    let tap = json!({"from": phone, "channel": "whatsapp", "text": "ok", "postback_data": "x"});
    let (status, answer) = api.post("/v1/inbound/sandbox", tap).await?;
    names(status, &answer, "postback_data");
    let (_, out) = api.get("/v1/sandbox/outbox").await?;
    assert_eq!(out["data"], json!([]), "nothing was sent: {out}");
    stack.shutdown().await
}

/// A contact's messages arriving as signed RBM events: a text opens the window (and is
/// `conversation.started`'s opening message), a tapped suggestion extends it carrying its
/// label and postback data; an unsigned one is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbm_contact_messages_and_taps_reach_the_session() -> anyhow::Result<()> {
    const TOKEN: &str = "rbm-client-token";
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let receiver = WebhookReceiver::start().await?;
    let (status, endpoint) =
        api.post("/v1/webhook-endpoints", json!({"url": receiver.url()})).await?;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    receiver.set_secret(endpoint["secret"].as_str().context("secret")?);
    let ws = convo::serve::DEV_WORKSPACE;
    let mut rcs = stack.store.channel(ws, Channel::Rcs).await?;
    rcs.config["client_token"] = TOKEN.into();
    let agent = rcs.config["agent_id"].as_str().context("agent_id")?.to_owned();
    stack.store.upsert_channel(&rcs).await?;
    let http = reqwest::Client::new();
    let post = |event: Value, token: &'static str| {
        let http = http.clone();
        let url = format!("http://{}/v1/inbound/rbm", stack.http_addr);
        async move {
            let (bytes, body) = rbm_envelope(&event);
            let resp = http
                .post(url)
                .header("content-type", "application/json")
                .header("X-Goog-Signature", rbm_signature(token, &bytes))
                .body(body)
                .send()
                .await?;
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            anyhow::Ok((status, body))
        }
    };
    let phone = "+14155550191";
    let text = json!({"senderPhoneNumber": phone, "messageId": "rbm-in-1", "agentId": agent,
        "text": "Is my table ready?"});
    let (status, _) = post(text.clone(), "another-token").await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, out) = post(text, TOKEN).await?;
    assert_eq!((status, &out["received"]), (StatusCode::OK, &json!(1)), "{out}");
    let contact = out["contact_ids"][0].as_str().context("contact")?.to_owned();
    api.window_until(&contact, "open", |w| w["open"] == true && w["channel"] == "rcs").await?;
    let started = eventually(WAIT, || async {
        receiver
            .received()
            .iter()
            .filter(|r| r.verified)
            .map(ReceivedWebhook::json)
            .find(|b| b["type"] == "conversation.started" && b["data"]["contact_id"] == contact)
            .context("no conversation.started yet")
    })
    .await?;
    assert_eq!(started["data"]["message"]["text"], "Is my table ready?", "{started}");

    let tap = json!({"senderPhoneNumber": phone, "messageId": "rbm-in-2", "agentId": agent,
        "suggestionResponse": {"postbackData": "YWNr", "text": "All good", "type": "REPLY"}});
    let (status, out) = post(tap.clone(), TOKEN).await?;
    assert_eq!((status, &out["received"]), (StatusCode::OK, &json!(1)), "{out}");
    let hook = exchanged(&receiver, "rbm-in-2").await?;
    assert_eq!(hook["data"]["message"]["text"], "All good", "{hook}");
    assert_eq!(hook["data"]["message"]["postback_data"], "YWNr", "{hook}");
    // RBM redelivers: absorbed.
    let (_, out) = post(tap, TOKEN).await?;
    assert_eq!(out["duplicates"], 1, "{out}");
    stack.shutdown().await
}

/// An agent answering a composed RCS conversation offers quick replies: the reply goes out
/// with its suggestions, and the conversation view reads it with their labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_reply_carries_suggestions() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let rcs = api.channel("rcs").await?;
    let phone = "+14155550192";
    let compose = json!({"channel_id": rcs, "contact_phone": phone, "content": "Welcome!",
        "template": {"name": "rcs_welcome", "variables": {"body": ["Ada", "C-3"]}}});
    let (status, composed) = api.post("/v1/conversations/compose", compose).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{composed}");
    let id = composed["conversation_id"].as_str().context("conversation_id")?.to_owned();
    outbox(&api, 1).await?;
    let (status, body) = api
        .post("/v1/inbound/sandbox", json!({"from": phone, "channel": "rcs", "text": "Hi!"}))
        .await?;
    assert!(status.is_success(), "{body}");
    api.conversation_active(&id).await?;
    let too_long = json!({"type": "text", "text": {"body": "Pick one",
        "suggestions": [{"reply": {"text": "x".repeat(26)}}]}});
    let (status, answer) = api.post(&format!("/v1/conversations/{id}/messages"), too_long).await?;
    names(status, &answer, "text.suggestions[0].reply.text");
    let reply = json!({"type": "text", "text": {"body": "Table for how many?",
        "suggestions": [{"reply": {"text": "2", "postback_data": "party_2"}},
                        {"reply": {"text": "4", "postback_data": "party_4"}}]}});
    let (status, sent) = api.post(&format!("/v1/conversations/{id}/messages"), reply).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let sends = outbox(&api, 2).await?;
    let content = &sends[1]["content"];
    assert_eq!(content["kind"], "rich", "{content}");
    assert_eq!(content["text"], "Table for how many?");
    assert_eq!(content["suggestions"][1]["reply"]["postback_data"], "party_4", "{content}");
    let (_, view) = api.get(&format!("/v1/conversations/{id}")).await?;
    let texts: Vec<&str> = view["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(texts.contains(&"Table for how many?\n[2] [4]"), "{view}");
    stack.shutdown().await
}

/// `traffic_type` is RBM's regulatory classification and must match what the channel's sender
/// was approved for (the dev workspace's RBM agent: `transactional`): another type is a 422
/// that names the values the channel takes, an unknown word too; an admitted one reaches RBM
/// as its `messageTrafficType`, the answer echoes it in RBM's spelling, and the opt-out
/// confirmation goes out as an `ACKNOWLEDGEMENT`. Approving the agent for promotions (the
/// settings API) lets a `PROMOTION` through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_type_is_held_to_the_channels_use_case() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let phone = "+4917612340001";
    let (status, body) = api
        .post("/v1/inbound/sandbox", json!({"from": phone, "channel": "rcs", "text": "Hi"}))
        .await?;
    assert!(status.is_success(), "{body}");
    let contact = body["contact_ids"][0].as_str().context("contact")?.to_owned();
    api.window_until(&contact, "open", |w| w["open"] == true).await?;
    let send = |traffic: &str| {
        json!({"to": phone, "channel": "rcs", "message_type": "CONVERSATION",
            "content": {"text": "Your order shipped."}, "traffic_type": traffic})
    };

    let (status, refused) = api.post("/v1/messages", send("PROMOTION")).await?;
    names(status, &refused, "traffic_type");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("TRANSACTION, SERVICEREQUEST, ACKNOWLEDGEMENT")
            && message.contains("transactional"),
        "{refused}"
    );
    let (status, unknown) = api.post("/v1/messages", send("bulk")).await?;
    names(status, &unknown, "traffic_type");
    let message = unknown["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("must be one of TRANSACTION, SERVICEREQUEST"), "{unknown}");
    assert!(outbox(&api, 0).await?.is_empty(), "nothing refused was sent");

    let (status, sent) = api.post("/v1/messages", send("service_request")).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["traffic_type"], "SERVICEREQUEST", "{sent}");
    let sends = outbox(&api, 1).await?;
    assert_eq!(sends[0]["traffic_type"], "SERVICEREQUEST", "what RBM received: {}", sends[0]);

    let patch = json!({"use_cases": {"rcs": "promotional"}});
    let (status, settings) =
        api.call(reqwest::Method::PATCH, "/v1/workspace/settings", Some(patch), None).await?;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["use_cases"]["rcs"], "promotional", "{settings}");
    let (status, sent) = api.post("/v1/messages", send("PROMOTION")).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(outbox(&api, 2).await?[1]["traffic_type"], "PROMOTION");

    let (status, body) = api
        .post("/v1/inbound/sandbox", json!({"from": phone, "channel": "rcs", "text": "STOP"}))
        .await?;
    assert!(status.is_success(), "{body}");
    let sends = outbox(&api, 3).await?;
    assert_eq!(sends[2]["traffic_type"], "ACKNOWLEDGEMENT", "the confirmation: {}", sends[2]);
    stack.shutdown().await
}

/// A composed conversation and a campaign carry their `traffic_type` too: a campaign of
/// `PROMOTION` on the transactional RBM agent is refused before anything starts, naming the
/// field; a `TRANSACTION` compose reaches RBM with it on the first message and on the agent's
/// reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_and_campaigns_carry_their_traffic_type() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let rcs = api.channel("rcs").await?;
    let campaign = json!({"channel_id": rcs, "template": {"name": "rcs_welcome",
        "variables": {"body": ["Ada", "C-3"]}}, "recipients": ["+14155550190"],
        "traffic_type": "PROMOTION"});
    let (status, refused) = api.post("/v1/conversations/proactive", campaign).await?;
    names(status, &refused, "traffic_type");
    let (status, refused) = api
        .post(
            "/v1/conversations/compose",
            json!({"channel_id": rcs,
            "contact_phone": "+14155550191", "content": "Hi", "traffic_type": "newsletter"}),
        )
        .await?;
    names(status, &refused, "traffic_type");
    assert!(outbox(&api, 0).await?.is_empty(), "nothing refused was sent");

    let phone = "+14155550193";
    let compose = json!({"channel_id": rcs, "contact_phone": phone, "content": "Welcome!",
        "template": {"name": "rcs_welcome", "variables": {"body": ["Ada", "C-3"]}},
        "traffic_type": "TRANSACTION"});
    let (status, composed) = api.post("/v1/conversations/compose", compose).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{composed}");
    let id = composed["conversation_id"].as_str().context("conversation_id")?.to_owned();
    assert_eq!(outbox(&api, 1).await?[0]["traffic_type"], "TRANSACTION");
    let (status, body) = api
        .post("/v1/inbound/sandbox", json!({"from": phone, "channel": "rcs", "text": "Hi!"}))
        .await?;
    assert!(status.is_success(), "{body}");
    api.conversation_active(&id).await?;
    let reply = json!({"type": "text", "text": {"body": "Your table is ready."}});
    let (status, sent) = api.post(&format!("/v1/conversations/{id}/messages"), reply).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(outbox(&api, 2).await?[1]["traffic_type"], "TRANSACTION");
    stack.shutdown().await
}
