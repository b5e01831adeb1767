//! Provider webhooks with their signatures (WhatsApp's X-Hub-Signature-256, Twilio's
//! X-Twilio-Signature): a bad one is 401 and records nothing. Then the error-path suite: every
//! POST endpoint gets malformed, wrong-typed, unknown-field, oversized and non-JSON bodies and
//! must answer a 4xx JSON error, never a 5xx.

mod support;

use convo_domain::{Channel, MessageId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{APP_SECRET, Stack, TWILIO_TOKEN};

fn meta_signature(secret: &str, body: &[u8]) -> String {
    convo_testkit::provider_signatures::meta(secret, body)
}

fn twilio_signature(url: &str, params: &[(&str, &str)]) -> String {
    convo_testkit::provider_signatures::twilio(TWILIO_TOKEN, url, params)
}

fn meta_payload(phone_number_id: &str, value: Value) -> Vec<u8> {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] =
        json!({"display_phone_number": "12125550111", "phone_number_id": phone_number_id});
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "waba-1", "changes": [{"field": "messages", "value": value}]}]
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_signatures_gate_inbound() -> anyhow::Result<()> {
    let stack = Stack::start("inbound").await?;
    let a = &stack.a;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs().to_string();
    let message = json!({
        "contacts": [{"profile": {"name": "Cy"}, "wa_id": "14155550130"}],
        "messages": [{"from": "14155550130", "id": "wamid.A1", "timestamp": now, "type": "text", "text": {"body": "hello"}}],
    });
    let body = meta_payload(&a.phone_number_id, message);
    let json_ct = Some("application/json");

    for signature in
        [None, Some(meta_signature("wrong-secret", &body)), Some("sha256=00".to_owned())]
    {
        let headers: Vec<(&str, &str)> =
            signature.iter().map(|s| ("X-Hub-Signature-256", s.as_str())).collect();
        let r = stack
            .raw(Method::POST, "/v1/inbound/whatsapp", None, json_ct, body.clone(), &headers)
            .await?;
        assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthorized"), "{r:?}");
    }
    assert!(
        stack.store.contact_by_address(&a.id, "+14155550130").await?.is_none(),
        "nothing recorded"
    );

    let good = meta_signature(APP_SECRET, &body);
    let r = stack
        .raw(
            Method::POST,
            "/v1/inbound/whatsapp",
            None,
            json_ct,
            body.clone(),
            &[("X-Hub-Signature-256", &good)],
        )
        .await?;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["received"], 1);
    let contact = stack.store.contact_by_address(&a.id, "+14155550130").await?.expect("created");
    assert_eq!(contact.name.as_deref(), Some("Cy"));
    assert!(stack.store.contact_by_address(&stack.b.id, "+14155550130").await?.is_none());
    stack.until(&a.key, "/v1/windows/%2B14155550130", "open", |r| r.body["open"] == true).await?;

    // A delivery failure reported later marks the message rejected.
    let send = json!({"to": "+14155550130", "channel": "whatsapp", "message_type": "CONVERSATION", "content": {"text": "hi"}});
    let sent = stack.post(&a.key, "/v1/messages", send).await?;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{sent:?}");
    let id = MessageId::new(sent.body["message_id"].as_str().unwrap());
    let provider_id = stack.store.message(&id).await?.provider_message_id.expect("provider id");
    let status = meta_payload(
        &a.phone_number_id,
        json!({"statuses": [{"id": provider_id, "status": "failed", "timestamp": "1700000100", "recipient_id": "14155550130", "errors": [{"code": 131047, "title": "Re-engagement message"}]}]}),
    );
    let sig = meta_signature(APP_SECRET, &status);
    let r = stack
        .raw(
            Method::POST,
            "/v1/inbound/whatsapp",
            None,
            json_ct,
            status,
            &[("X-Hub-Signature-256", &sig)],
        )
        .await?;
    assert_eq!((r.status, &r.body["statuses"]), (StatusCode::OK, &json!(1)), "{r:?}");
    let logged = stack.store.message(&id).await?;
    assert_eq!(logged.status, convo_store::MessageStatus::Rejected);
    assert!(logged.error.unwrap_or_default().contains("131047"));

    // Twilio: the signature covers the URL and the sorted form parameters.
    let url = stack.url("/v1/inbound/twilio");
    let params = [
        ("To", a.number.as_str()),
        ("From", "+14155550131"),
        ("Body", "hi there"),
        ("MessageSid", "SM0001"),
    ];
    let form = |p: &[(&str, &str)]| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(p.iter().copied())
            .finish()
            .into_bytes()
    };
    let form_ct = Some("application/x-www-form-urlencoded");
    let forged = twilio_signature(
        &url,
        &[
            ("To", a.number.as_str()),
            ("From", "+14155550131"),
            ("Body", "something else"),
            ("MessageSid", "SM0001"),
        ],
    );
    let r = stack
        .raw(
            Method::POST,
            "/v1/inbound/twilio",
            None,
            form_ct,
            form(&params),
            &[("X-Twilio-Signature", &forged)],
        )
        .await?;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthorized"), "{r:?}");
    let r =
        stack.raw(Method::POST, "/v1/inbound/twilio", None, form_ct, form(&params), &[]).await?;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        stack.store.contact_by_address(&a.id, "+14155550131").await?.is_none(),
        "nothing recorded"
    );
    let good = twilio_signature(&url, &params);
    let r = stack
        .raw(
            Method::POST,
            "/v1/inbound/twilio",
            None,
            form_ct,
            form(&params),
            &[("X-Twilio-Signature", &good)],
        )
        .await?;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(stack.store.contact_by_address(&a.id, "+14155550131").await?.is_some());
    stack.shutdown().await
}

/// Every POST endpoint, with `{id}`/`{contact}` filled in.
fn post_endpoints(stack: &Stack) -> Vec<(String, bool)> {
    let authed = [
        "/v1/conversations/compose",
        "/v1/conversations/proactive",
        "/v1/conversations/cv_missing/messages",
        "/v1/conversations/cv_missing/take-over",
        "/v1/conversations/cv_missing/resolve",
        "/v1/messages",
        "/v1/windows/%2B14155550140/close",
        "/v1/inbound/sandbox",
        "/v1/webhook-endpoints",
    ];
    let _ = stack;
    authed
        .iter()
        .map(|p| (p.to_string(), true))
        .chain(
            ["/v1/inbound/whatsapp", "/v1/inbound/twilio"].iter().map(|p| (p.to_string(), false)),
        )
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_get_4xx_json_errors_everywhere() -> anyhow::Result<()> {
    let stack = Stack::start("errors").await?;
    let key = stack.a.key.clone();
    let oversized = vec![b' '; 300 * 1024];
    let mut big_json = b"{\"to\":\"".to_vec();
    big_json.extend(std::iter::repeat_n(b'x', 300 * 1024));
    big_json.extend_from_slice(b"\"}");
    let bodies: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        ("truncated", Some("application/json"), b"{".to_vec()),
        ("not json", Some("application/json"), b"hello".to_vec()),
        ("array", Some("application/json"), b"[1,2]".to_vec()),
        ("number", Some("application/json"), b"42".to_vec()),
        ("null", Some("application/json"), b"null".to_vec()),
        ("unknown field", Some("application/json"), br#"{"surprise_field": 1}"#.to_vec()),
        ("wrong types", Some("application/json"), br#"{"channel_id": 5, "to": [], "content": {"text": 1}, "type": 7, "url": false, "agent_id": {}, "close_window": "yes", "from": 1, "recipients": "x"}"#.to_vec()),
        ("trailing", Some("application/json"), b"{} {}".to_vec()),
        ("utf8", Some("application/json"), vec![0xff, 0xfe, b'{']),
        ("text/plain", Some("text/plain"), b"{}".to_vec()),
        ("oversized", Some("application/json"), oversized),
        ("oversized json", Some("application/json"), big_json),
    ];
    for (path, authed) in post_endpoints(&stack) {
        for (what, ct, body) in &bodies {
            for idem in [false, true] {
                let mut headers = vec![];
                if idem {
                    headers.push(("Idempotency-Key", "error-suite"));
                }
                let k = authed.then_some(key.as_str());
                let r = stack.raw(Method::POST, &path, k, *ct, body.clone(), &headers).await?;
                assert!(r.status.is_client_error(), "{path} {what} idem={idem}: {r:?}");
                assert!(
                    r.body["error"]["code"].is_string(),
                    "{path} {what}: not a JSON error: {r:?}"
                );
                assert!(r.body["error"]["message"].is_string(), "{path} {what}: {r:?}");
            }
        }
    }

    // The field is named where serde knows it.
    let compose = |body: Value| {
        let stack = &stack;
        let key = key.clone();
        async move { stack.post(&key, "/v1/conversations/compose", body).await }
    };
    let ch = stack.a.channel_id(Channel::Sms);
    let email = stack.a.channel_id(Channel::Email);
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"channel_id": ch, "contact_phone": "+14155550141", "content": "x", "extra": 1}),
            422,
            "extra",
        ),
        (
            json!({"channel_id": ch, "contact_phone": 14155550141u64, "content": "x"}),
            422,
            "contact_phone",
        ),
        (json!({"channel_id": ch, "contact_phone": "+14155550141"}), 422, "content"),
        (json!({"channel_id": ch, "content": "x"}), 422, "contact_id"),
        (
            json!({"channel_id": ch, "contact_id": "ct_1", "contact_phone": "+14155550141", "content": "x"}),
            422,
            "contact_phone",
        ),
        (json!({"channel_id": ch, "contact_phone": "12", "content": "x"}), 422, "contact_phone"),
        (
            json!({"channel_id": "ch_nope", "contact_phone": "+14155550141", "content": "x"}),
            422,
            "channel_id",
        ),
        (
            json!({"channel_id": email, "contact_email": "a@example.com", "content": "x"}),
            422,
            "subject",
        ),
        (
            json!({"channel_id": ch, "contact_phone": "+14155550141", "content": "x", "template": {"name": "t", "bogus": 1}}),
            422,
            "template.bogus",
        ),
        (
            json!({"channel_id": ch, "contact_phone": "+14155550141", "content": "x", "template": {"name": 3}}),
            422,
            "template.name",
        ),
    ];
    for (body, status, field) in cases {
        let r = compose(body.clone()).await?;
        assert_eq!(r.status.as_u16(), status, "{body}: {r:?}");
        assert_eq!(r.body["error"]["field"].as_str(), Some(field), "{body}: {r:?}");
    }
    let r = stack
        .post(
            &key,
            "/v1/messages",
            json!({"to": "+1415", "channel": "sms", "message_type": "PIGEON", "content": {}}),
        )
        .await?;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("message_type"))
    );
    let r = stack.post(&key, "/v1/messages", json!({"to": "+14155550142", "channel": "rcs", "message_type": "MESSAGE", "content": {"text": "x", "rich_card": {}}})).await?;
    assert_eq!(r.body["error"]["field"].as_str(), Some("content.rich_card"));
    let r = stack.get(&key, "/v1/webhook-deliveries?limit=abc").await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Unknown routes and methods are JSON too, and the OpenAPI document lists only real routes.
    let r = stack.get(&key, "/v1/nope").await?;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    let r = stack.call(Method::PUT, "/v1/messages", Some(&key), None, &[]).await?;
    assert_eq!((r.status, r.code()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    let doc = stack.call(Method::GET, "/openapi.json", None, None, &[]).await?;
    assert_eq!(doc.body["openapi"], "3.1.0");
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "x").replace("{contact}", "x");
            let m = Method::from_bytes(method.to_uppercase().as_bytes())?;
            let r = stack.call(m, &concrete, Some(&key), None, &[]).await?;
            let unrouted = r.status == StatusCode::METHOD_NOT_ALLOWED
                || (r.status == StatusCode::NOT_FOUND
                    && r.body["error"]["message"] == "no such route");
            assert!(!unrouted, "{method} {path} is documented but not routed");
            assert!(!r.status.is_server_error(), "{method} {path}: {r:?}");
        }
    }
    let health = stack.call(Method::GET, "/healthz", None, None, &[]).await?;
    assert_eq!(health.status, StatusCode::OK);
    let ready = stack.call(Method::GET, "/readyz", None, None, &[]).await?;
    assert_eq!(
        (ready.status, &ready.body["checks"]["temporal"]),
        (StatusCode::OK, &json!("ok")),
        "{ready:?}"
    );
    let metrics = stack.http.get(stack.url("/metrics")).send().await?.text().await?;
    assert!(metrics.contains("convo_http_requests_total{method=\"POST\",path=\"/v1/conversations/compose\",status=\"422\"}"), "{metrics}");
    stack.shutdown().await
}
