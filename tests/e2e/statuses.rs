//! Delivery statuses over `convo serve`'s HTTP API: simulated through the sandbox inbound and
//! signed by providers (WhatsApp's `statuses`, Twilio's status callback), applied forward only
//! whatever order and however often they arrive, shown by `GET /v1/messages/{id}` and the
//! conversation view, announced by one `message.status_updated` webhook per change, and a late
//! failure that releases the billing session's hold when nothing of the session was delivered.
//!
//! The stack runs on the backend `CONVO_TEST_BACKEND` selects; nothing here skips time, so the
//! dev workspace's windows keep their model length on every backend.

use std::time::Duration;

use anyhow::Context;
use convo::{ServeConfig, Stack, serve::ExternalTemporal};
use convo_activities::testing::WebhookReceiver;
use convo_domain::{Channel, HoldId, MessageId};
use convo_tests::{Backend, BackendKind, eventually, within};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
const APP_SECRET: &str = "meta-app-secret";

/// A `convo serve` stack with a webhook receiver subscribed to status updates only.
struct Served {
    stack: Stack,
    backend: Option<Backend>,
    http: reqwest::Client,
    base: String,
    receiver: WebhookReceiver,
}

impl Served {
    async fn start() -> anyhow::Result<Served> {
        let backend = match BackendKind::from_env()? {
            BackendKind::Devserver => None,
            kind => {
                Some(Backend::start(kind, convo_devserver::DevServerConfig::ephemeral()).await?)
            }
        };
        let mut config = ServeConfig::ephemeral();
        if let Some(b) = &backend {
            config.temporal =
                Some(ExternalTemporal { url: b.url().clone(), namespace: "default".into() });
        }
        let stack = Stack::start(config).await?;
        let base = format!("http://{}", stack.http_addr);
        let receiver = WebhookReceiver::start().await?;
        let served = Served { stack, backend, http: reqwest::Client::new(), base, receiver };
        let (status, endpoint) = served
            .post(
                "/v1/webhook-endpoints",
                json!({"url": served.receiver.url(), "event_types": ["message.status_updated"]}),
            )
            .await?;
        anyhow::ensure!(status == StatusCode::CREATED, "endpoint: {status} {endpoint}");
        served.receiver.set_secret(endpoint["secret"].as_str().context("secret")?);
        Ok(served)
    }

    /// Gives the dev workspace's WhatsApp channel a Meta app secret, so provider-signed
    /// callbacks verify (the channel still sends through the sandbox), and answers the
    /// WhatsApp channel's phone number id and the SMS channel's Twilio auth token (the
    /// sandbox's credentials, which also sign Twilio's callbacks).
    async fn sign_provider_callbacks(&self) -> anyhow::Result<(String, String)> {
        let ws = convo::serve::DEV_WORKSPACE;
        let mut whatsapp = self.stack.store.channel(ws, Channel::Whatsapp).await?;
        whatsapp.config["app_secret"] = APP_SECRET.into();
        let phone_number_id =
            whatsapp.config["phone_number_id"].as_str().context("phone_number_id")?.to_owned();
        self.stack.store.upsert_channel(&whatsapp).await?;
        let sms = self.stack.store.channel(ws, Channel::Sms).await?;
        let token = sms.config["auth_token"].as_str().context("auth_token")?.to_owned();
        Ok((phone_number_id, token))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.stack.dev_api_key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = within(WAIT, path, req.send()).await??;
        let status = resp.status();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<(StatusCode, Value)> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// A raw, unauthenticated provider callback.
    async fn callback(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = within(WAIT, path, req.send()).await??;
        let status = resp.status();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// The contact writes on `channel`, and the window is open.
    async fn inbound(&self, channel: &str, from: &str, text: &str) -> anyhow::Result<()> {
        let (status, body) = self
            .post("/v1/inbound/sandbox", json!({"from": from, "channel": channel, "text": text}))
            .await?;
        anyhow::ensure!(status.is_success(), "inbound: {status} {body}");
        eventually(WAIT, || async {
            let (_, w) = self.get(&format!("/v1/windows/{from}")).await?;
            anyhow::ensure!(w["open"] == true, "window: {w}");
            Ok(())
        })
        .await
    }

    /// A free-form send in the open window; its message id.
    async fn send(&self, channel: &str, to: &str, text: &str) -> anyhow::Result<(String, Value)> {
        let body = json!({"to": to, "channel": channel, "message_type": "CONVERSATION",
            "content": {"text": text}});
        let (status, sent) = self.post("/v1/messages", body).await?;
        anyhow::ensure!(status == StatusCode::ACCEPTED, "send: {status} {sent}");
        let id = sent["message_id"].as_str().context("message_id")?.to_owned();
        Ok((id, sent))
    }

    /// The message once the provider accepted it (`sent`).
    async fn sent_message(&self, id: &str) -> anyhow::Result<Value> {
        eventually(WAIT, || async {
            let (status, m) = self.get(&format!("/v1/messages/{id}")).await?;
            anyhow::ensure!(status == StatusCode::OK && m["status"] == "sent", "{status} {m}");
            Ok(m)
        })
        .await
    }

    async fn simulate(&self, body: Value) -> anyhow::Result<(StatusCode, Value)> {
        self.post("/v1/inbound/sandbox/statuses", body).await
    }

    /// The status updates the webhook log holds for message `id` (its `data.status`es).
    async fn status_webhooks(&self, id: &str) -> anyhow::Result<Vec<String>> {
        let (_, log) = self.get("/v1/webhook-deliveries?limit=100").await?;
        let ids: Vec<String> = log["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["event_type"] == "message.status_updated")
            .filter_map(|d| d["event_id"].as_str().map(str::to_owned))
            .filter(|e| e.starts_with(&format!("evt_{id}_status_")))
            .collect();
        Ok(ids.into_iter().map(|e| e.rsplit('_').next().unwrap_or_default().to_owned()).collect())
    }

    async fn balance(&self) -> anyhow::Result<Value> {
        let (status, b) = self.get("/v1/workspace/balance").await?;
        anyhow::ensure!(status == StatusCode::OK, "{status} {b}");
        Ok(b)
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        self.stack.shutdown().await?;
        if let Some(b) = self.backend {
            b.shutdown().await;
        }
        Ok(())
    }
}

/// Checks every verified `message.status_updated` body the receiver got against the schema
/// the served OpenAPI document's `webhooks` section gives it.
async fn check_documented(s: &Served) -> anyhow::Result<usize> {
    let (status, doc) = s.get("/openapi.json").await?;
    anyhow::ensure!(status == StatusCode::OK, "openapi.json: {status}");
    let hook = &doc["webhooks"]["message.status_updated"]["post"];
    let schema = hook["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .context("message.status_updated is not documented under webhooks")?;
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": schema,
        "components": doc["components"],
    });
    let validator = jsonschema::draft202012::new(&root)?;
    let bodies: Vec<Value> =
        s.receiver.received().iter().filter(|r| r.verified).map(|r| r.json()).collect();
    for body in &bodies {
        let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
        anyhow::ensure!(errors.is_empty(), "{errors:?}\n{body:#}");
    }
    Ok(bodies.len())
}

/// `application/x-www-form-urlencoded` escaping of one name or value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn history(m: &Value) -> Vec<&str> {
    m["statuses"].as_array().into_iter().flatten().filter_map(|s| s["status"].as_str()).collect()
}

/// The sandbox simulates statuses out of order and twice: `read` before `delivered` wins and
/// stays, repeats add nothing, `GET /v1/messages/{id}` shows `queued → sent → read`, and the
/// receiver gets one verified `message.status_updated` per change. Bad simulations name the
/// field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_statuses_only_move_forward() -> anyhow::Result<()> {
    let s = Served::start().await?;
    let phone = "+14155550171";
    s.inbound("whatsapp", phone, "hello").await?;
    let (id, _) = s.send("whatsapp", phone, "Your order is on its way").await?;
    let m = s.sent_message(&id).await?;
    assert_eq!(history(&m), ["queued", "sent"], "{m}");

    let (status, m) = s.simulate(json!({"message_id": id, "status": "read"})).await?;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["status"], "read");
    for late in ["delivered", "read", "sent"] {
        let (status, m) = s.simulate(json!({"message_id": id, "status": late})).await?;
        assert_eq!((status, m["status"].as_str()), (StatusCode::OK, Some("read")), "{late}: {m}");
    }
    let (_, m) = s.get(&format!("/v1/messages/{id}")).await?;
    assert_eq!(history(&m), ["queued", "sent", "read"], "{m}");
    assert_eq!(m["direction"], "outbound");
    assert!(m["statuses"][2]["at"].is_string(), "{m}");
    assert_eq!(m["statuses"][2]["source"], "sandbox");
    // A failure after the contact's device has the message changes nothing either.
    let (_, m) =
        s.simulate(json!({"message_id": id, "status": "failed", "error_code": "131047"})).await?;
    assert_eq!(m["status"], "read", "{m}");

    let webhooks = within(WAIT, "status webhooks", s.receiver.wait_for(2)).await?;
    let of = |status: &str| {
        webhooks
            .iter()
            .find(|w| w.json()["data"]["status"] == status)
            .map(|w| (w.json(), w.verified))
    };
    // The send's own outcome is announced like a provider's report.
    let (sent, verified) = of("sent").context("no webhook for sent")?;
    assert!(verified);
    assert_eq!(sent["type"], "message.status_updated", "{sent}");
    assert_eq!(sent["data"]["message_id"], id.as_str());
    assert_eq!(
        (&sent["data"]["previous_status"], &sent["data"]["source"]),
        (&json!("queued"), &json!("convo")),
        "{sent}"
    );
    let (read, verified) = of("read").context("no webhook for read")?;
    assert!(verified);
    assert_eq!(read["data"]["previous_status"], "sent", "{read}");
    // The outbox is written with the status, so the log is complete once the calls answered.
    let mut announced = s.status_webhooks(&id).await?;
    announced.sort();
    assert_eq!(announced, ["read", "sent"], "one webhook per change, none for the repeats");

    for (body, field) in [
        (json!({"message_id": id, "status": "bounced"}), "status"),
        (json!({"message_id": id, "status": "delivered", "error_code": "1"}), "error_code"),
        (json!({"status": "delivered"}), "message_id"),
        (json!({"message_id": "msg_nope", "status": "delivered"}), "message_id"),
    ] {
        let (status, e) = s.simulate(body.clone()).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        assert_eq!(e["error"]["field"], field, "{body}: {e}");
    }
    let (status, e) = s.get("/v1/messages/msg_nope").await?;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    s.shutdown().await
}

/// A composed conversation's view shows each outbound message's status and history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_view_shows_statuses() -> anyhow::Result<()> {
    let s = Served::start().await?;
    let (_, list) = s.get("/v1/channels").await?;
    let whatsapp = list["data"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["kind"] == "whatsapp"))
        .and_then(|c| c["id"].as_str())
        .context("whatsapp channel")?
        .to_owned();
    let compose = json!({"channel_id": whatsapp, "contact_phone": "+14155550172",
        "content": "Your parcel shipped", "template": {"name": "order_shipped", "variables": {}}});
    let (status, composed) = s.post("/v1/conversations/compose", compose).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{composed}");
    let cid = composed["conversation_id"].as_str().context("conversation_id")?.to_owned();
    let first = eventually(WAIT, || async {
        let (_, c) = s.get(&format!("/v1/conversations/{cid}")).await?;
        let m = &c["messages"][0];
        anyhow::ensure!(m["status"] == "sent", "{c}");
        Ok(m.clone())
    })
    .await?;
    let id = first["message_id"].as_str().context("message_id")?;
    let (status, m) = s.simulate(json!({"message_id": id, "status": "delivered"})).await?;
    assert_eq!(status, StatusCode::OK, "{m}");
    let (_, c) = s.get(&format!("/v1/conversations/{cid}")).await?;
    assert_eq!(c["messages"][0]["status"], "delivered", "{c}");
    assert_eq!(history(&c["messages"][0]), ["queued", "sent", "delivered"], "{c}");
    s.shutdown().await
}

fn meta_statuses(phone_number_id: &str, statuses: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "waba-1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "12125550100", "phone_number_id": phone_number_id},
            "statuses": statuses,
        }}]}]
    }))
    .unwrap()
}

/// Provider-signed callbacks: WhatsApp's `statuses` (delivered, then read), a forged one that
/// changes nothing, and Twilio's status callback ending an SMS `failed` with its ErrorCode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_signed_status_callbacks() -> anyhow::Result<()> {
    let s = Served::start().await?;
    let (pnid, twilio_token) = s.sign_provider_callbacks().await?;
    let phone = "+14155550173";
    s.inbound("whatsapp", phone, "hi").await?;
    let (id, _) = s.send("whatsapp", phone, "Here is your receipt").await?;
    let m = s.sent_message(&id).await?;
    let wamid = m["provider_message_id"].as_str().context("provider id")?.to_owned();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();

    // Meta reports `sent` too: it repeats the send's own acceptance and announces it once.
    let sent = meta_statuses(
        &pnid,
        json!([{"id": wamid, "status": "sent",
        "timestamp": now.to_string()}]),
    );
    let signed = convo_testkit::provider_signatures::meta(APP_SECRET, &sent);
    let (status, _) = s
        .callback(
            "/v1/inbound/whatsapp",
            "application/json",
            sent,
            &[("X-Hub-Signature-256", signed)],
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    let announced = within(WAIT, "sent webhook", s.receiver.wait_for(1)).await?;
    let data = &announced[0].json()["data"];
    assert_eq!((&data["status"], &data["previous_status"]), (&json!("sent"), &json!("queued")));
    let delivered = meta_statuses(
        &pnid,
        json!([{"id": wamid, "status": "delivered",
        "timestamp": now.to_string(), "recipient_id": "14155550173"}]),
    );
    let forged = convo_testkit::provider_signatures::meta("not-the-secret", &delivered);
    let (status, _) = s
        .callback(
            "/v1/inbound/whatsapp",
            "application/json",
            delivered.clone(),
            &[("X-Hub-Signature-256", forged)],
        )
        .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, m) = s.get(&format!("/v1/messages/{id}")).await?;
    assert_eq!(m["status"], "sent", "a forged callback changes nothing: {m}");

    let signed = convo_testkit::provider_signatures::meta(APP_SECRET, &delivered);
    let (status, out) = s
        .callback(
            "/v1/inbound/whatsapp",
            "application/json",
            delivered.clone(),
            &[("X-Hub-Signature-256", signed.clone())],
        )
        .await?;
    assert_eq!((status, &out["statuses"]), (StatusCode::OK, &json!(1)), "{out}");
    // Meta retries: the same callback again is acknowledged and changes nothing.
    let (status, _) = s
        .callback(
            "/v1/inbound/whatsapp",
            "application/json",
            delivered,
            &[("X-Hub-Signature-256", signed)],
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    let read = meta_statuses(
        &pnid,
        json!([{"id": wamid, "status": "read", "timestamp": now.to_string()}]),
    );
    let signed = convo_testkit::provider_signatures::meta(APP_SECRET, &read);
    let (status, _) = s
        .callback(
            "/v1/inbound/whatsapp",
            "application/json",
            read,
            &[("X-Hub-Signature-256", signed)],
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    let (_, m) = s.get(&format!("/v1/messages/{id}")).await?;
    assert_eq!(history(&m), ["queued", "sent", "delivered", "read"], "{m}");
    assert_eq!(m["statuses"][2]["source"], "whatsapp");
    assert!(m["statuses"][2]["provider_at"].is_string(), "{m}");
    let mut announced = s.status_webhooks(&id).await?;
    announced.sort();
    assert_eq!(announced, ["delivered", "read", "sent"], "each once");

    // SMS through Twilio: the status callback is signed over the URL and the sorted form.
    let sms_phone = "+14155550174";
    s.inbound("sms", sms_phone, "code please").await?;
    let (sms_id, _) = s.send("sms", sms_phone, "Your code is 1234").await?;
    let m = s.sent_message(&sms_id).await?;
    let sid = m["provider_message_id"].as_str().context("sid")?.to_owned();
    let url = format!("{}/v1/inbound/twilio", s.base);
    let sender = convo::serve::sandbox_sender(Channel::Sms);
    let params = [
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30003"),
        ("From", sender),
        ("To", sms_phone),
        ("AccountSid", "AC00000000000000000000000000000000"),
    ];
    let form = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let signature = convo_testkit::provider_signatures::twilio(&twilio_token, &url, &params);
    let (status, out) = s
        .callback(
            "/v1/inbound/twilio",
            "application/x-www-form-urlencoded",
            form.into_bytes(),
            &[("X-Twilio-Signature", signature)],
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (_, m) = s.get(&format!("/v1/messages/{sms_id}")).await?;
    assert_eq!(m["status"], "failed", "{m}");
    assert_eq!(history(&m), ["queued", "sent", "failed"], "{m}");
    let failed = &m["statuses"][2];
    assert_eq!((&failed["source"], &failed["error"]["code"]), (&json!("twilio"), &json!("30003")));
    let mut announced = s.status_webhooks(&sms_id).await?;
    announced.sort();
    assert_eq!(announced, ["failed", "sent"]);
    // sent, delivered and read of the WhatsApp message, sent and failed of the SMS.
    within(WAIT, "status webhooks", s.receiver.wait_for(5)).await?;
    assert_eq!(check_documented(&s).await?, 5, "each as documented");
    s.shutdown().await
}

/// A late failure (WhatsApp 131047) of the only message of a billing session releases its
/// hold with the reason on the ledger, and the session's charge at close leaves it released.
/// When another message of the session was delivered, the hold stays and is charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_failure_releases_the_sessions_hold() -> anyhow::Result<()> {
    let s = Served::start().await?;
    let ws = convo::serve::DEV_WORKSPACE;
    let before = s.balance().await?;

    let phone = "+14155550175";
    s.inbound("whatsapp", phone, "hi").await?;
    let (id, sent) = s.send("whatsapp", phone, "Still interested?").await?;
    // The answer is in euros; the workspace balance endpoint in cents.
    let hold_amount = sent["billing"]["hold_amount"].as_f64().context("hold_amount")? * 100.0;
    let hold_amount = hold_amount.round() as u64;
    assert!(hold_amount > 0, "{sent}");
    s.sent_message(&id).await?;
    assert_eq!(s.balance().await?["reserved"], hold_amount, "the session's hold");
    let failed = json!({"message_id": id, "status": "failed", "error_code": "131047",
        "error_message": "Re-engagement message"});
    let (status, m) = s.simulate(failed.clone()).await?;
    assert_eq!((status, m["status"].as_str()), (StatusCode::OK, Some("failed")), "{m}");
    assert_eq!(m["error"], "131047: Re-engagement message");
    let after = s.balance().await?;
    assert_eq!(after["reserved"], 0, "released: {after}");
    assert_eq!(after["total"], before["total"], "{after}");
    let hold = s.stack.store.hold(ws, &HoldId::for_message(&MessageId::new(&id))).await?;
    let reason = hold.release_reason.context("the ledger records why")?;
    assert!(reason.contains("131047") && reason.contains(&id), "{reason}");
    // The same callback again releases nothing more.
    s.simulate(failed).await?;
    assert_eq!(s.balance().await?, after);
    // The session closes and charges its hold: it stays released, nothing is taken.
    let (status, w) = s.post(&format!("/v1/windows/{phone}/close"), json!({})).await?;
    assert!(status.is_success(), "{w}");
    eventually(WAIT, || async {
        let (_, w) = s.get(&format!("/v1/windows/{phone}")).await?;
        anyhow::ensure!(w["open"] == false, "{w}");
        Ok(())
    })
    .await?;
    let closed = s.balance().await?;
    assert_eq!((&closed["reserved"], &closed["total"]), (&json!(0), &before["total"]));

    // Another session: the first message is delivered, the second fails late: the hold stays
    // and the close charges it.
    let phone = "+14155550176";
    s.inbound("whatsapp", phone, "hello again").await?;
    let (first, _) = s.send("whatsapp", phone, "One").await?;
    let (second, _) = s.send("whatsapp", phone, "Two").await?;
    s.sent_message(&first).await?;
    s.sent_message(&second).await?;
    s.simulate(json!({"message_id": first, "status": "delivered"})).await?;
    let (_, m) = s
        .simulate(json!({"message_id": second, "status": "failed", "error_code": "131026"}))
        .await?;
    assert_eq!(m["status"], "failed", "{m}");
    assert_eq!(s.balance().await?["reserved"], hold_amount, "the hold stays");
    let (status, _) = s.post(&format!("/v1/windows/{phone}/close"), json!({})).await?;
    assert!(status.is_success());
    let charged = eventually(WAIT, || async {
        let b = s.balance().await?;
        anyhow::ensure!(b["reserved"] == 0, "{b}");
        Ok(b)
    })
    .await?;
    assert_eq!(
        charged["total"].as_u64(),
        before["total"].as_u64().map(|t| t - hold_amount),
        "charged: {charged}"
    );
    s.shutdown().await
}

/// An RBM agent event as RBM posts it: the event, base64, inside a Pub/Sub-style envelope.
pub(crate) fn rbm_envelope(event: &Value) -> (Vec<u8>, Vec<u8>) {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let event = serde_json::to_vec(event).unwrap();
    let body = serde_json::to_vec(&json!({
        "message": {"data": STANDARD.encode(&event), "messageId": "ps-1",
            "publishTime": "2026-01-01T00:00:00Z"},
        "subscription": "projects/rbm/subscriptions/agent",
    }))
    .unwrap();
    (event, body)
}

pub(crate) fn rbm_signature(token: &str, event: &[u8]) -> String {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA512, token.as_bytes());
    STANDARD.encode(ring::hmac::sign(&key, event).as_ref())
}

/// RBM: the webhook's verification request echoes the secret for the channel's client token,
/// `READ` then `DELIVERED` events signed with it leave the message `read`, and an event signed
/// with another token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbm_events_are_statuses() -> anyhow::Result<()> {
    const TOKEN: &str = "rbm-client-token";
    let s = Served::start().await?;
    let ws = convo::serve::DEV_WORKSPACE;
    let mut rcs = s.stack.store.channel(ws, Channel::Rcs).await?;
    rcs.config["client_token"] = TOKEN.into();
    let agent = rcs.config["agent_id"].as_str().context("agent_id")?.to_owned();
    s.stack.store.upsert_channel(&rcs).await?;

    let verify = serde_json::to_vec(&json!({"clientToken": TOKEN, "secret": "1234567890"}))?;
    let resp = s
        .http
        .post(format!("{}/v1/inbound/rbm", s.base))
        .header("content-type", "application/json")
        .body(verify)
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await?, "1234567890");

    let phone = "+14155550177";
    s.inbound("rcs", phone, "hi").await?;
    let (id, _) = s.send("rcs", phone, "Your table is ready").await?;
    s.sent_message(&id).await?;
    let event = |kind: &str| {
        json!({"senderPhoneNumber": phone, "eventType": kind, "eventId": format!("ev-{kind}"),
            "messageId": id, "sendTime": "2026-01-01T00:00:01Z", "agentId": agent})
    };
    let (bytes, body) = rbm_envelope(&event("READ"));
    let (status, _) = s
        .callback(
            "/v1/inbound/rbm",
            "application/json",
            body.clone(),
            &[("X-Goog-Signature", rbm_signature("another-token", &bytes))],
        )
        .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, m) = s.get(&format!("/v1/messages/{id}")).await?;
    assert_eq!(m["status"], "sent", "{m}");
    for kind in ["READ", "DELIVERED", "READ"] {
        let (bytes, body) = rbm_envelope(&event(kind));
        let (status, out) = s
            .callback(
                "/v1/inbound/rbm",
                "application/json",
                body,
                &[("X-Goog-Signature", rbm_signature(TOKEN, &bytes))],
            )
            .await?;
        assert_eq!((status, &out["statuses"]), (StatusCode::OK, &json!(1)), "{kind}: {out}");
    }
    let (_, m) = s.get(&format!("/v1/messages/{id}")).await?;
    assert_eq!(m["status"], "read", "{m}");
    assert_eq!(history(&m), ["queued", "sent", "read"], "{m}");
    assert_eq!(m["statuses"][2]["source"], "rbm");
    let mut announced = s.status_webhooks(&id).await?;
    announced.sort();
    assert_eq!(announced, ["read", "sent"]);
    s.shutdown().await
}
