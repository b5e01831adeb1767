//! Templates with variables, end to end over `convo serve`'s HTTP API: the dev workspace's
//! registry, values checked up front (422s that name the value), each provider's wire form as
//! the sandbox received it (WhatsApp `components`, Twilio `ContentVariables`, RBM text, e-mail
//! subject and body), and the sandbox's rendering of what the contact sees.

use anyhow::Context;
use convo::ServeConfig;
use convo_activities::testing::WebhookReceiver;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::serve::{Api, Served};
use convo_tests::{eventually, within};

const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The sandbox's outbox over HTTP, once it holds `n` sends.
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

fn template_message(to: &str, channel: &str, name: &str, variables: Value) -> Value {
    json!({"to": to, "channel": channel, "message_type": "MESSAGE",
        "content": {"template": {"name": name, "variables": variables}}})
}

/// A 422 `validation_failed` naming `field`.
fn names(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "validation_failed", "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
}

/// A WhatsApp compose with the flat map reaches the sandbox as Cloud API components (header,
/// body and URL-button parameters) and renders as the contact sees it; the webhook of the send
/// arrives signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whatsapp_template_carries_its_variables_as_components() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let receiver = WebhookReceiver::start().await?;
    let (status, endpoint) =
        api.post("/v1/webhook-endpoints", json!({"url": receiver.url()})).await?;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    receiver.set_secret(endpoint["secret"].as_str().context("secret")?);

    let (_, registry) = api.get("/v1/templates").await?;
    let channels: Vec<&str> = registry["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["channel"].as_str())
        .collect();
    for channel in ["whatsapp", "sms", "rcs", "email", "messenger", "instagram"] {
        assert!(channels.contains(&channel), "a dev template on {channel}: {registry}");
    }

    let whatsapp = api.channel("whatsapp").await?;
    let compose = json!({"channel_id": whatsapp, "contact_phone": "+14155550170",
        "contact_name": "Ada", "content": "Hi Ada, your order shipped",
        "template": {"name": "shipping_update", "variables": {"1": "Ada", "2": "A-42"}}});
    let (status, composed) = api.post("/v1/conversations/compose", compose).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{composed}");

    let sends = outbox(&api, 1).await?;
    let send = &sends[0];
    assert_eq!(send["channel"], "whatsapp");
    assert_eq!(send["content"]["name"], "shipping_update");
    assert_eq!(send["template_language"], "en_US");
    let params = &send["content"]["params"];
    assert_eq!(params["header"], json!([{"name": "1", "value": "A-42"}]), "{send}");
    assert_eq!(
        params["body"],
        json!([{"name": "1", "value": "Ada"}, {"name": "2", "value": "A-42"}]),
        "{send}"
    );
    assert_eq!(params["buttons"][0]["sub_type"], "url", "{send}");
    assert_eq!(params["buttons"][0]["index"], 0, "{send}");
    assert_eq!(params["buttons"][0]["value"], "A-42", "{send}");
    let rendered = &send["rendered"];
    assert_eq!(rendered["header"], "Order A-42", "{send}");
    assert_eq!(rendered["body"], "Hi Ada, your order A-42 has shipped.", "{send}");
    assert_eq!(rendered["footer"], "Reply STOP to opt out", "{send}");
    assert_eq!(
        rendered["buttons"],
        json!(["Track: https://shop.example/track/A-42", "Thanks"]),
        "{send}"
    );

    let exchanged = eventually(WAIT, || async {
        let got = receiver.received();
        let found =
            got.iter().map(|w| w.json()).find(|w| w["type"] == "conversation.message_exchanged");
        found.context("no conversation.message_exchanged yet")
    })
    .await?;
    assert!(exchanged.is_object());
    assert!(receiver.rejected().is_empty(), "every delivery verified");
    stack.shutdown().await
}

/// Wassist's structured shape fills a carousel: each card's image header, body and URL button
/// go out in the card's components; Twilio gets its template as a `ContentSid` with
/// `ContentVariables`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_variables_and_twilio_content_variables() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let phone = "+14155550171";
    let variables = json!({"body": ["Ada"], "cards": [
        {"header": "https://img.example/mug.png", "body": ["Mug", "9.99"], "buttons": ["mug"]},
        {"header": "https://img.example/tee.png", "body": ["Tee", "19.99"], "buttons": ["tee"]},
    ]});
    let (status, sent) = api
        .post("/v1/messages", template_message(phone, "whatsapp", "weekly_picks", variables))
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let sends = outbox(&api, 1).await?;
    let params = &sends[0]["content"]["params"];
    assert_eq!(params["body"], json!([{"name": "1", "value": "Ada"}]), "{params}");
    assert_eq!(params["cards"][1]["header"][0]["value"], "https://img.example/tee.png");
    assert_eq!(
        params["cards"][1]["body"],
        json!([{"name": "1", "value": "Tee"}, {"name": "2", "value": "19.99"}])
    );
    assert_eq!(params["cards"][0]["buttons"][0]["value"], "mug");
    let rendered = &sends[0]["rendered"];
    assert_eq!(rendered["body"], "Hi Ada, this week's picks:");
    assert_eq!(rendered["cards"][0]["body"], "Mug for 9.99");
    assert_eq!(rendered["cards"][1]["buttons"], json!(["Buy: https://shop.example/p/tee"]));

    let (status, sent) = api
        .post(
            "/v1/messages",
            template_message(phone, "sms", "sms_shipping_update", json!({"1": "Ada", "2": "B-7"})),
        )
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let sends = outbox(&api, 2).await?;
    let sms = &sends[1];
    assert_eq!(sms["channel"], "sms");
    assert_eq!(sms["content"]["name"], "sms_shipping_update", "the ContentSid: {sms}");
    assert_eq!(
        sms["content"]["params"]["body"],
        json!([{"name": "1", "value": "Ada"}, {"name": "2", "value": "B-7"}]),
        "ContentVariables: {sms}"
    );
    assert_eq!(sms["template_params"], json!(["Ada", "B-7"]));
    assert_eq!(
        sms["rendered"]["body"], "Hi Ada, order B-7 shipped: https://shop.example/track/B-7",
        "{sms}"
    );
    stack.shutdown().await
}

/// A missing, extra or wrong-typed value is a 422 naming it, in both shapes, before anything
/// is sent; so is a template for another channel or one not approved yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_variables_are_refused_naming_them() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let phone = "+14155550172";
    let send = |name: &str, variables: Value| template_message(phone, "whatsapp", name, variables);
    let cases = [
        (send("shipping_update", json!({"1": "Ada"})), "content.template.variables.2"),
        (
            send("shipping_update", json!({"1": "Ada", "2": "A-1", "3": "x"})),
            "content.template.variables.3",
        ),
        (send("shipping_update", json!({"1": 42, "2": "A-1"})), "content.template.variables.1"),
        (
            send("shipping_update", json!({"body": ["Ada"], "header": "A-1", "buttons": ["A-1"]})),
            "content.template.variables.body[1]",
        ),
        (
            send(
                "shipping_update",
                json!({"body": ["Ada", "A-1", "x"], "header": "A-1", "buttons": ["A-1"]}),
            ),
            "content.template.variables.body[2]",
        ),
        (
            send(
                "shipping_update",
                json!({"body": ["Ada", true], "header": "A-1", "buttons": ["A-1"]}),
            ),
            "content.template.variables.body[1]",
        ),
        (send("weekly_picks", json!({"body": ["Ada"]})), "content.template.variables.cards[0]"),
        (send("sms_shipping_update", json!({"1": "Ada", "2": "A-1"})), "content.template.name"),
    ];
    for (body, field) in cases {
        let (status, refused) = api.post("/v1/messages", body.clone()).await?;
        names(status, &refused, field);
    }

    let whatsapp = api.channel("whatsapp").await?;
    let (status, refused) = api
        .post(
            "/v1/conversations/compose",
            json!({"channel_id": whatsapp, "contact_phone": phone, "content": "hi",
                "template": {"name": "shipping_update", "variables": {"2": "A-1"}}}),
        )
        .await?;
    names(status, &refused, "template.variables.1");

    let (status, created) = api
        .post(
            "/v1/templates",
            json!({"name": "spring_sale", "channel": "whatsapp", "language": "en",
                "category": "MARKETING", "status": "PENDING", "body": "Hi {{1}}, 20% off",
                "variables": ["1"], "footer": "Acme"}),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["category"], "MARKETING");
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["components"]["footer"], "Acme");
    let (status, refused) =
        api.post("/v1/messages", send("spring_sale", json!({"1": "Ada"}))).await?;
    names(status, &refused, "content.template.name");
    let (status, refused) = api
        .post(
            "/v1/templates",
            json!({"name": "bad_header", "channel": "whatsapp", "language": "en",
                "body": "Hi {{1}}", "variables": ["1"], "header": "{{1}} and {{2}}"}),
        )
        .await?;
    names(status, &refused, "header");

    assert!(stack.sandbox.sends().is_empty(), "nothing reached a provider");
    stack.shutdown().await
}

/// RCS and e-mail templates work in dev: an RCS conversation starts with the rendered text
/// (RBM has no templates of its own), and an e-mail template goes out with its subject and
/// body filled in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rcs_and_email_templates_work_in_dev() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let rcs = api.channel("rcs").await?;
    let (status, composed) = api
        .post(
            "/v1/conversations/compose",
            json!({"channel_id": rcs, "contact_phone": "+14155550173", "content": "Welcome!",
                "template": {"name": "rcs_welcome", "variables": {"body": ["Ada", "C-3"]}}}),
        )
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{composed}");
    let sends = within(WAIT, "rcs send", stack.sandbox.wait_for_sends(1, WAIT)).await??;
    assert_eq!(
        serde_json::to_value(&sends[0].content)?,
        json!({"kind": "text", "subject": null,
            "body": "Hi Ada, welcome to Acme! Reply here to chat with us about order C-3."}),
    );
    let id = composed["conversation_id"].as_str().context("conversation id")?;
    eventually(WAIT, || async {
        let (_, view) = api.get(&format!("/v1/conversations/{id}")).await?;
        anyhow::ensure!(view["status"] == "awaiting_reply", "conversation: {view}");
        Ok(())
    })
    .await?;

    let (status, sent) = api
        .post(
            "/v1/messages",
            template_message(
                "ada@example.com",
                "email",
                "email_receipt",
                json!({"name": "Ada", "order": "D-9"}),
            ),
        )
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let sends = within(WAIT, "email send", stack.sandbox.wait_for_sends(2, WAIT)).await??;
    let email = serde_json::to_value(&sends[1].content)?;
    assert_eq!(email["subject"], "Your receipt for order D-9", "{email}");
    let body = email["body"].as_str().unwrap_or_default();
    assert!(body.contains("Dear Ada,"), "{email}");
    assert!(body.contains("thank you for order D-9."), "{email}");
    stack.shutdown().await
}

/// The registry is per workspace and channel: `order_update` registered for SMS and for RCS are
/// two templates with their own bodies, and each send renders the one of its channel; a name
/// only another channel has is a 422 that says which channel has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_name_on_two_channels_is_two_templates() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    for (channel, body) in [
        ("sms", "Acme: order {{1}} is out for delivery."),
        ("rcs", "Good news! Order {{1}} is on its way to you."),
    ] {
        let template = json!({"name": "order_update", "channel": channel, "language": "en",
            "body": body, "variables": ["1"]});
        let (status, created) = api.post("/v1/templates", template).await?;
        assert_eq!(status, StatusCode::CREATED, "{created}");
    }
    let (status, sent) = api
        .post(
            "/v1/messages",
            template_message("+14155550180", "rcs", "order_update", json!({"1": "B-7"})),
        )
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let (status, sent) = api
        .post(
            "/v1/messages",
            template_message("+14155550181", "sms", "order_update", json!({"1": "B-8"})),
        )
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let sends = within(WAIT, "two sends", stack.sandbox.wait_for_sends(2, WAIT)).await??;
    let shown = |to: &str| {
        sends.iter().find(|s| s.to == to).map(|s| match (&s.rendered, &s.content) {
            (Some(r), _) => r.body.clone(),
            (None, content) => {
                serde_json::to_value(content).map(|c| c["body"].to_string()).unwrap_or_default()
            }
        })
    };
    let rcs = shown("+14155550180").context("the RCS send")?;
    assert!(rcs.contains("Good news! Order B-7 is on its way to you."), "{rcs}");
    let sms = shown("+14155550181").context("the SMS send")?;
    assert!(sms.contains("Acme: order B-8 is out for delivery."), "{sms}");

    let (status, refused) = api
        .post(
            "/v1/messages",
            template_message("x@example.com", "email", "order_update", json!({"1": "B-9"})),
        )
        .await?;
    names(status, &refused, "content.template.name");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("rcs and sms"), "{refused}");
    stack.shutdown().await
}
