//! The `conversation.*` webhooks carry the conversation (issue 12 §1): real deliveries from
//! `convo serve`, received and signature-checked by a `WebhookReceiver`, validated against the
//! OpenAPI document's `webhooks` schemas that the same server serves at `/openapi.json`; and
//! every time in them is RFC 3339 with milliseconds, on the session's clock.
//!
//! A child of `serve` for its `Served` and `Api` helpers.

use anyhow::Context;
use convo::ServeConfig;
use convo_activities::testing::{ReceivedWebhook, WebhookReceiver};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Api, HOUR, Served, WAIT};
use convo_tests::{eventually, within};

/// Validators for the three event bodies, from the served document.
pub(crate) struct Schemas {
    doc: Value,
}

impl Schemas {
    pub(crate) async fn fetch(api: &Api) -> anyhow::Result<Schemas> {
        let (status, doc) = api.get("/openapi.json").await?;
        anyhow::ensure!(status == StatusCode::OK, "openapi.json: {status}");
        Ok(Schemas { doc })
    }

    /// Checks `body` against the schema the document's `webhooks` section names for its type.
    pub(crate) fn check(&self, body: &Value) -> anyhow::Result<()> {
        let event_type = body["type"].as_str().context("no type")?;
        let hook = &self.doc["webhooks"][event_type]["post"];
        let schema = hook["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .with_context(|| format!("{event_type} is not documented under webhooks"))?;
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": schema,
            "components": self.doc["components"],
        });
        let validator = jsonschema::draft202012::new(&root)?;
        let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
        anyhow::ensure!(
            errors.is_empty(),
            "{event_type} does not match {schema}: {errors:?}\n{body:#}"
        );
        Ok(())
    }
}

/// The verified bodies received so far of `event_type` about `contact_id`.
fn events(receiver: &WebhookReceiver, event_type: &str, contact_id: &str) -> Vec<Value> {
    receiver
        .received()
        .iter()
        .filter(|r| r.verified)
        .map(ReceivedWebhook::json)
        .filter(|b| b["type"] == event_type && b["data"]["contact_id"] == contact_id)
        .collect()
}

/// Waits until `event_type` about `contact_id` matching `check` arrived, and returns it.
async fn event(
    receiver: &WebhookReceiver,
    event_type: &str,
    contact_id: &str,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    eventually(WAIT, || async {
        events(receiver, event_type, contact_id)
            .into_iter()
            .find(|b| check(b))
            .with_context(|| format!("no matching {event_type} for {contact_id} yet"))
    })
    .await
}

fn time(v: &Value) -> anyhow::Result<convo_domain::Timestamp> {
    let text = v.as_str().with_context(|| format!("{v} is not a time"))?;
    convo_domain::time::parse_rfc3339(text).with_context(|| format!("{text} is not RFC 3339"))
}

/// A composed conversation, the contact's reply, an answer and a close: each event names the
/// contact (address and name), the channel, the window and the linked conversation; `started`
/// and `message_exchanged` carry the message with its text, sender and provider id; `ended`
/// the reason and the billing. Every delivery validates against the documented schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_carry_the_conversation_and_match_their_schemas() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let schemas = Schemas::fetch(&api).await?;
    let receiver = WebhookReceiver::start().await?;
    let (status, endpoint) =
        api.post("/v1/webhook-endpoints", json!({"url": receiver.url()})).await?;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    receiver.set_secret(endpoint["secret"].as_str().context("secret")?);

    let whatsapp = api.channel("whatsapp").await?;
    let phone = "+14155550177";
    let compose = json!({"channel_id": whatsapp, "contact_phone": phone, "contact_name": "Ada",
        "content": "Hi Ada, your order shipped", "template": {"name": "order_shipped", "variables": {}}});
    let (status, composed) = api.post("/v1/conversations/compose", compose).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{composed}");
    let conversation_id = composed["conversation_id"].as_str().context("conversation id")?;
    let sends = stack.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!(sends[0].to, phone);

    api.inbound(phone, "Where is it?").await?;
    let window = api.window_until(phone, "open", |w| w["open"] == true).await?;
    let contact_id = window["contact_id"].as_str().context("contact id")?.to_owned();
    let (status, sent) = api.send(phone, "It arrives tomorrow.").await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let reply_id = sent["message_id"].as_str().context("message id")?.to_owned();
    stack.sandbox.wait_for_sends(2, WAIT).await?;
    // A person takes the conversation over and answers: the sender names them.
    let (status, body) = api
        .post(
            &format!("/v1/conversations/{conversation_id}/take-over"),
            json!({"agent_id": "agent-7"}),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, human) = api
        .post(
            &format!("/v1/conversations/{conversation_id}/messages"),
            json!({"type": "text", "text": {"body": "Sam here, I'll check."}}),
        )
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{human}");
    let human_id = human["message_id"].as_str().context("message id")?.to_owned();
    stack.sandbox.wait_for_sends(3, WAIT).await?;
    let (status, closed) = api.post(&format!("/v1/windows/{phone}/close"), json!({})).await?;
    assert!(status.is_success(), "{closed}");

    let started = event(&receiver, "conversation.started", &contact_id, |_| true).await?;
    let inbound = event(&receiver, "conversation.message_exchanged", &contact_id, |b| {
        b["data"]["direction"] == "inbound"
    })
    .await?;
    let reply = event(&receiver, "conversation.message_exchanged", &contact_id, |b| {
        b["data"]["message"]["id"] == reply_id.as_str()
    })
    .await?;
    let template = event(&receiver, "conversation.message_exchanged", &contact_id, |b| {
        b["data"]["message"]["template"].is_object()
    })
    .await?;
    let by_agent = event(&receiver, "conversation.message_exchanged", &contact_id, |b| {
        b["data"]["message"]["id"] == human_id.as_str()
    })
    .await?;
    let ended = event(&receiver, "conversation.ended", &contact_id, |_| true).await?;

    // Every event: the contact, the channel, the window, the linked conversation.
    let window_id = started["data"]["window"]["id"].clone();
    assert!(window_id.is_string(), "{started}");
    for body in [&started, &inbound, &reply, &ended] {
        let data = &body["data"];
        assert_eq!(
            data["contact"],
            json!({"id": contact_id, "address": phone, "display_name": "Ada"}),
            "{body}"
        );
        assert_eq!(data["channel"], "whatsapp", "{body}");
        assert_eq!(data["window"]["id"], window_id, "one window: {body}");
        assert_eq!(data["window"]["opened_at"], window["opened_at"], "{body}");
        assert!(data["window"]["billing_session_ends_at"].is_string(), "{body}");
        assert_eq!(data["linked_conversation"], json!({"id": conversation_id}), "{body}");
    }
    assert_eq!(started["data"]["window"]["expires_at"], window["expires_at"]);
    // The template went out before any window: it belongs to none, and says what it sent.
    assert_eq!(template["data"]["window"], Value::Null, "{template}");
    assert_eq!(template["data"]["message"]["template"]["name"], "order_shipped", "{template}");
    assert_eq!(template["data"]["message"]["sender"], json!({"type": "automated"}));

    // `started` carries the opening message, and `message_exchanged` the same one.
    let opening = &started["data"]["message"];
    assert_eq!(opening["text"], "Where is it?", "{started}");
    assert_eq!(opening["direction"], "inbound");
    assert_eq!(opening["sender"], json!({"type": "contact"}));
    assert_eq!(inbound["data"]["message"], *opening, "{inbound}");

    // The answer: its text, who sent it, and the provider's id for it.
    let message = &reply["data"]["message"];
    assert_eq!(message["direction"], "outbound", "{reply}");
    assert_eq!(message["text"], "It arrives tomorrow.", "{reply}");
    assert_eq!(message["sender"], json!({"type": "automated"}));
    let provider_id = message["provider_message_id"].as_str().context("provider id")?;
    assert!(stack.sandbox.sends().iter().any(|s| s.provider_message_id == provider_id));

    // `ended`: why, and how billing resolved (the answer held a conversation unit).
    assert_eq!(ended["data"]["reason"], "EXPLICIT", "{ended}");
    assert_eq!(ended["data"]["billing"]["outcome"], "charged", "{ended}");
    // Both in the workspace currency's major units.
    assert_eq!(ended["data"]["billing"]["currency"], sent["billing"]["currency"], "{ended}");
    let charged = ended["data"]["billing"]["charged"].as_f64().context("charged")?;
    let unit = sent["billing"]["hold_amount"].as_f64().context("hold amount")?;
    assert!(charged >= unit, "the conversation unit, and any per-message price: {ended}");
    assert!(ended["data"]["outbound_messages"].as_u64() >= Some(2), "{ended}");
    let message = &by_agent["data"]["message"];
    assert_eq!(message["sender"], json!({"type": "human_agent", "agent_id": "agent-7"}));
    assert_eq!(message["text"], "Sam here, I'll check.", "{by_agent}");

    for body in [&started, &inbound, &reply, &template, &by_agent, &ended] {
        schemas.check(body)?;
    }
    for r in receiver.received() {
        assert!(r.verified, "every delivery verified: {r:?}");
        let body = r.json();
        if body["type"].as_str().is_some_and(|t| t.starts_with("conversation.")) {
            schemas.check(&body)?;
        }
    }
    stack.shutdown().await
}

/// One clock: under skipped time a send's `created_at` follows the window's clock, and a
/// window that expires a day later ends with an envelope `timestamp` on the session's clock
/// (not before the window's own `expires_at`, which the wall clock would be), while each
/// attempt's `webhook-timestamp` stays the wall-clock send time. A refusal for an opted-out contact names the time in the same RFC 3339 form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_times_follow_the_session_clock() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let schemas = Schemas::fetch(&api).await?;
    let receiver = WebhookReceiver::start().await?;
    let (status, endpoint) =
        api.post("/v1/webhook-endpoints", json!({"url": receiver.url()})).await?;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    receiver.set_secret(endpoint["secret"].as_str().context("secret")?);

    let phone = "+14155550178";
    api.inbound(phone, "hello").await?;
    let window = api.window_until(phone, "open", |w| w["open"] == true).await?;
    let contact_id = window["contact_id"].as_str().context("contact id")?.to_owned();
    let started = event(&receiver, "conversation.started", &contact_id, |_| true).await?;
    assert_eq!(started["data"]["message"]["text"], "hello");
    assert!(time(&started["timestamp"])? >= time(&started["data"]["window"]["opened_at"])?);

    // Two hours into the window (skipped), a send's `created_at` is on the window's clock.
    stack.skip(2 * HOUR).await?;
    let (status, sent) = api.send(phone, "two hours later").await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let (opened, expires) = (time(&window["opened_at"])?, time(&sent["conversation_expires_at"])?);
    let created = time(&sent["created_at"])?;
    let an_hour = expires.saturating_since(opened) / 24;
    assert!(created.saturating_since(opened) >= an_hour, "created_at {created} vs {window}");
    assert!(created < expires, "{sent}");

    stack.skip(25 * HOUR).await?;
    api.window_until(phone, "expired", |w| w["open"] == false).await?;
    let ended = event(&receiver, "conversation.ended", &contact_id, |_| true).await?;
    assert_eq!(ended["data"]["reason"], "EXPIRED", "{ended}");
    assert_eq!(ended["data"]["billing"]["outcome"], "charged", "the send held a unit: {ended}");
    let expires_at = time(&ended["data"]["window"]["expires_at"])?;
    assert_eq!(ended["data"]["window"]["expires_at"], started["data"]["window"]["expires_at"]);
    assert!(time(&ended["timestamp"])? >= expires_at, "session clock: {ended}");
    assert!(time(&ended["data"]["at"])? >= expires_at, "{ended}");
    let attempt = receiver
        .received()
        .into_iter()
        .find(|r| r.json()["type"] == "conversation.ended" && r.json() == ended)
        .context("the ended delivery")?;
    let sent_at = convo_domain::Timestamp::from_epoch_secs(u64::try_from(attempt.timestamp)?);
    let wall = convo_domain::Timestamp::from_system_time(std::time::SystemTime::now());
    assert!(sent_at <= wall.plus_secs(1), "webhook-timestamp is the wall clock");
    for body in [&started, &ended] {
        schemas.check(body)?;
    }

    // The contact opts out: the refusal names when, as RFC 3339 with milliseconds.
    api.inbound(phone, "STOP").await?;
    let refused = within(WAIT, "refusal", async {
        eventually(WAIT, || async {
            let (status, refused) = api.send(phone, "come back").await?;
            anyhow::ensure!(status == StatusCode::UNPROCESSABLE_ENTITY, "{status} {refused}");
            anyhow::ensure!(refused["error"]["code"] == "contact_opted_out", "{refused}");
            Ok(refused)
        })
        .await
    })
    .await??;
    let message = refused["error"]["message"].as_str().context("message")?;
    let at = message.rsplit(' ').next().unwrap_or_default();
    assert!(convo_domain::time::parse_rfc3339(at).is_some(), "{message}");
    assert!(at.contains('.') && !message.contains("ms"), "{message}");
    stack.shutdown().await
}

/// The reconciler's `conversation.ended` (for a session run terminated with its window open)
/// has the session's shape: the contact, the channel and the window as `started` reported
/// them, the billing outcome, plus what Temporal said; it validates against the same schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconcilers_ended_has_the_sessions_shape() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let schemas = Schemas::fetch(&api).await?;
    let receiver = WebhookReceiver::start().await?;
    let (_, endpoint) = api.post("/v1/webhook-endpoints", json!({"url": receiver.url()})).await?;
    receiver.set_secret(endpoint["secret"].as_str().context("secret")?);
    let phone = "+4915199999177";
    api.inbound(phone, "hi").await?;
    let open = api.window_until(phone, "open", |w| w["open"] == true).await?;
    let contact = open["contact_id"].as_str().context("contact id")?.to_owned();
    let started = event(&receiver, "conversation.started", &contact, |_| true).await?;

    let handle =
        stack.sessions.client().get_workflow_handle::<convo_workflows::SessionWindowWorkflow>(
            convo_workflows::contracts::session_workflow_id(convo::serve::DEV_WORKSPACE, &contact),
        );
    handle
        .terminate(
            temporalio_client::WorkflowTerminateOptions::builder().reason("ops".to_owned()).build(),
        )
        .await?;
    let ended = event(&receiver, "conversation.ended", &contact, |_| true).await?;
    let data = &ended["data"];
    assert_eq!(data["reason"], "TERMINATED", "{ended}");
    assert_eq!(data["temporal"]["detail"], "ops", "{ended}");
    assert_eq!(data["contact"], started["data"]["contact"], "{ended}");
    assert_eq!(data["contact"]["address"], phone);
    assert_eq!(data["channel"], "whatsapp");
    assert_eq!(data["window"], started["data"]["window"], "the window as it opened: {ended}");
    assert_eq!(data["inbound_messages"], 1, "{ended}");
    assert_eq!(data["billing"]["outcome"], "none", "nothing was held: {ended}");
    schemas.check(&ended)?;
    stack.shutdown().await
}
