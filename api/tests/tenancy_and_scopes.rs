//! Tenants sealed and production doors closed (issue 17 §2), over HTTP and gRPC: the sandbox's
//! outbox and simulations per workspace and only on sandbox channels, no sandbox route where no
//! sandbox is attached, webhook destinations held to public `https` in production, and API key
//! scopes.

mod support;

use convo_api::{App, AppSettings};
use convo_domain::Channel;
use convo_proto::v1::{
    self as pb, inbound_service_client::InboundServiceClient,
    message_service_client::MessageServiceClient, workspace_service_client::WorkspaceServiceClient,
};
use convo_store::{ApiKeyScope, ChannelConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Stack, WAIT, req};
use tonic::Code;

fn template_send(to: &str) -> Value {
    json!({"to": to, "channel": "sms", "message_type": "MESSAGE", "content": {"template": {"name": "hello"}}})
}

/// The application without a sandbox and with production's default settings, served over
/// HTTP and gRPC on loopback next to the stack: what `convo api` is.
struct Production {
    base: String,
    grpc: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Production {
    async fn start(stack: &Stack) -> anyhow::Result<Self> {
        let app = App::new(stack.sessions.clone(), AppSettings::default());
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let (base, grpc_url) =
            (format!("http://{}", http.local_addr()?), format!("http://{}", grpc.local_addr()?));
        let grpc_app = app.clone();
        let tasks = vec![
            tokio::spawn(async move {
                let _ = convo_api::serve(http, app, std::future::pending()).await;
            }),
            tokio::spawn(async move {
                let _ = convo_api::grpc::serve(grpc, grpc_app, std::future::pending()).await;
            }),
        ];
        Ok(Self { base, grpc: grpc_url, tasks })
    }
}

impl Drop for Production {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_sees_and_simulates_only_its_own_sandbox_traffic() -> anyhow::Result<()> {
    let stack = Stack::start("sealed").await?;
    let (a, b) = (&stack.a, &stack.b);
    let (to_a, to_b) = ("+14155550601", "+14155550602");
    let sent_a = stack.post(&a.key, "/v1/messages", template_send(to_a)).await?;
    assert_eq!(sent_a.status, StatusCode::ACCEPTED, "{sent_a:?}");
    let sent_b = stack.post(&b.key, "/v1/messages", template_send(to_b)).await?;
    assert_eq!(sent_b.status, StatusCode::ACCEPTED, "{sent_b:?}");
    stack.sandbox.wait_for_sends(2, WAIT).await?;

    // Each workspace's outbox holds its own send, and nothing of the other's.
    for (tenant, mine, theirs) in [(a, to_a, to_b), (b, to_b, to_a)] {
        let outbox = stack.get(&tenant.key, "/v1/sandbox/outbox").await?;
        assert_eq!(outbox.status, StatusCode::OK);
        let to: Vec<&str> = outbox.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["to"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(to, vec![mine], "{} must not see {theirs}", tenant.id);
    }

    // B cannot inject onto A's channel, by its id or otherwise.
    let inject = json!({"channel": a.channel_id(Channel::Sms), "from": to_a, "text": "STOP"});
    let r = stack.post(&b.key, "/v1/inbound/sandbox", inject).await?;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("channel")),
        "{r:?}"
    );
    // Nor report a status on A's message.
    let message_id = sent_a.body["message_id"].as_str().unwrap().to_owned();
    let status = json!({"message_id": message_id, "status": "failed", "error_code": "x"});
    let r = stack.post(&b.key, "/v1/inbound/sandbox/statuses", status.clone()).await?;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("message_id")),
        "{r:?}"
    );

    // A channel a real provider carries takes no simulated traffic: A's SMS channel moves to
    // Twilio, and its RCS channel says "sandbox" but points elsewhere.
    let twilio = ChannelConfig {
        provider: "twilio".into(),
        config: json!({"provider": "twilio", "base_url": "https://api.twilio.com", "account_sid": "AC123", "auth_token": "t"}),
        ..a.channels[&Channel::Sms].clone()
    };
    stack.store.upsert_channel(&twilio).await?;
    let mut elsewhere = a.channels[&Channel::Rcs].clone();
    elsewhere.config["base_url"] = json!("https://rcsbusinessmessaging.googleapis.com");
    stack.store.upsert_channel(&elsewhere).await?;
    for channel in ["sms", "rcs"] {
        let inject = json!({"channel": channel, "from": to_a, "text": "STOP"});
        let r = stack.post(&a.key, "/v1/inbound/sandbox", inject).await?;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("channel")),
            "{channel}: {r:?}"
        );
        assert!(r.body["error"]["message"].as_str().unwrap().contains("sandbox"), "{r:?}");
    }
    let r = stack.post(&a.key, "/v1/inbound/sandbox/statuses", status).await?;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("message_id")),
        "{r:?}"
    );
    // The STOP never arrived: the contact was not opted out.
    let contact = stack.get(&a.key, "/v1/contacts/%2B14155550601").await?;
    assert_eq!(contact.status, StatusCode::OK, "{contact:?}");
    assert_eq!(contact.body["consent"], "unknown", "{contact:?}");
    // The same call on a sandbox channel of A's works.
    let inject = json!({"channel": "whatsapp", "from": to_a, "text": "hello"});
    let r = stack.post(&a.key, "/v1/inbound/sandbox", inject).await?;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{r:?}");

    // gRPC's twin refuses B on A's channel the same way.
    let channel = tonic::transport::Endpoint::from_shared(stack.grpc.clone())?.connect().await?;
    let mut inbound = InboundServiceClient::new(channel);
    let message = pb::InboundMessage {
        from: to_a.into(),
        channel: a.channel_id(Channel::Whatsapp),
        text: "STOP".into(),
        ..Default::default()
    };
    let refused = inbound.receive(req(Some(&b.key), message, &[])).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    stack.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_serves_no_sandbox_route_and_refuses_internal_webhooks() -> anyhow::Result<()> {
    let stack = Stack::start("no-sandbox").await?;
    let prod = Production::start(&stack).await?;
    let key = &stack.a.key;
    let http = reqwest::Client::new();
    let call = |method: Method, path: &str, body: Option<Value>| {
        let mut r = http.request(method, format!("{}{path}", prod.base)).bearer_auth(key);
        if let Some(body) = body {
            r = r.json(&body);
        }
        async move {
            let r = r.send().await?;
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            anyhow::Ok((status, body))
        }
    };

    // No sandbox route: 404 as for any unknown route, and the document does not offer them.
    let inject = json!({"channel": "sms", "from": "+14155550603", "text": "STOP"});
    for (method, path, body) in [
        (Method::POST, "/v1/inbound/sandbox", Some(inject.clone())),
        (
            Method::POST,
            "/v1/inbound/sandbox/statuses",
            Some(json!({"message_id": "m", "status": "read"})),
        ),
        (Method::GET, "/v1/sandbox/outbox", None),
    ] {
        let (status, body) = call(method, path, body).await?;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}: {body}"
        );
    }
    let (_, doc) = call(Method::GET, "/openapi.json", None).await?;
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert!(paths.iter().all(|p| !p.contains("sandbox")), "{paths:?}");
    assert!(paths.iter().any(|p| *p == "/v1/messages"), "{paths:?}");
    // The stack with a sandbox does document them.
    let with = stack.call(Method::GET, "/openapi.json", None, None, &[]).await?;
    assert!(with.body["paths"]["/v1/inbound/sandbox"].is_object());

    // gRPC: InboundService.Receive is unimplemented, and nothing reached the contact.
    let channel = tonic::transport::Endpoint::from_shared(prod.grpc.clone())?.connect().await?;
    let mut inbound = InboundServiceClient::new(channel);
    let message = pb::InboundMessage {
        from: "+14155550603".into(),
        channel: "sms".into(),
        text: "STOP".into(),
        ..Default::default()
    };
    let refused = inbound.receive(req(Some(key), message, &[])).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
    let (status, _) = call(Method::GET, "/v1/contacts/%2B14155550603", None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND, "no contact was created");

    // Webhook endpoints: public https only, judged after resolving the name.
    for url in [
        "http://hooks.example.com/convo",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://0.0.0.0/hook",
    ] {
        let (status, body) =
            call(Method::POST, "/v1/webhook-endpoints", Some(json!({"url": url}))).await?;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("url")),
            "{url}: {body}"
        );
    }
    let (status, body) =
        call(Method::POST, "/v1/webhook-endpoints", Some(json!({"url": "https://1.1.1.1/hook"})))
            .await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // `convo serve`'s policy takes a receiver on loopback over http, never the metadata service.
    let r =
        stack.post(key, "/v1/webhook-endpoints", json!({"url": "http://127.0.0.1:9/hook"})).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r = stack
        .post(key, "/v1/webhook-endpoints", json!({"url": "http://169.254.169.254/x"}))
        .await?;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("url")), "{r:?}");
    drop(prod);
    stack.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_scopes_limit_what_a_key_may_do() -> anyhow::Result<()> {
    let stack = Stack::start("scopes").await?;
    let ws = stack.a.id.clone();
    let read = stack.store.create_scoped_api_key(&ws, "dashboard", ApiKeyScope::Read).await?;
    let send = stack.store.create_scoped_api_key(&ws, "agent", ApiKeyScope::Send).await?;
    let (read_key, send_key, admin_key) = (&read.secret, &send.secret, &stack.a.key);

    let settings_patch = json!({"currency": "EUR"});
    let endpoint = json!({"url": "http://127.0.0.1:9/hook"});
    let cases: Vec<(&str, Method, &str, Option<Value>, StatusCode)> = vec![
        // A read key reads, and nothing else.
        (read_key, Method::GET, "/v1/channels", None, StatusCode::OK),
        (read_key, Method::GET, "/v1/workspace/settings", None, StatusCode::OK),
        (
            read_key,
            Method::POST,
            "/v1/messages",
            Some(template_send("+14155550610")),
            StatusCode::FORBIDDEN,
        ),
        (
            read_key,
            Method::POST,
            "/v1/windows/%2B14155550610/close",
            Some(json!({})),
            StatusCode::FORBIDDEN,
        ),
        (
            read_key,
            Method::PATCH,
            "/v1/workspace/settings",
            Some(settings_patch.clone()),
            StatusCode::FORBIDDEN,
        ),
        // A send key also sends, but does not configure the workspace.
        (
            send_key,
            Method::POST,
            "/v1/messages",
            Some(template_send("+14155550611")),
            StatusCode::ACCEPTED,
        ),
        (
            send_key,
            Method::PATCH,
            "/v1/workspace/settings",
            Some(settings_patch.clone()),
            StatusCode::FORBIDDEN,
        ),
        (
            send_key,
            Method::POST,
            "/v1/webhook-endpoints",
            Some(endpoint.clone()),
            StatusCode::FORBIDDEN,
        ),
        (
            send_key,
            Method::POST,
            "/v1/templates",
            Some(json!({"name": "x", "channel": "sms", "body": "hi"})),
            StatusCode::FORBIDDEN,
        ),
        // An admin key (every key made before scopes) does everything.
        (admin_key, Method::PATCH, "/v1/workspace/settings", Some(settings_patch), StatusCode::OK),
        (admin_key, Method::POST, "/v1/webhook-endpoints", Some(endpoint), StatusCode::CREATED),
    ];
    for (key, method, path, body, expected) in cases {
        let r = stack.call(method.clone(), path, Some(key), body.as_ref(), &[]).await?;
        assert_eq!(r.status, expected, "{method} {path}: {r:?}");
        if expected == StatusCode::FORBIDDEN {
            assert_eq!(r.code(), "forbidden", "{r:?}");
            let message = r.body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("needs a send key") || message.contains("needs a admin key"),
                "{message}"
            );
        }
    }
    // A refused send reached no provider; the allowed one did.
    let sends = stack.sandbox.wait_for_sends(1, WAIT).await?;
    assert!(sends.iter().all(|s| s.to != "+14155550610"), "{sends:?}");

    // gRPC holds the same scopes.
    let channel = tonic::transport::Endpoint::from_shared(stack.grpc.clone())?.connect().await?;
    let mut messages = MessageServiceClient::new(channel.clone());
    let mut workspace = WorkspaceServiceClient::new(channel);
    let send_request = pb::SendMessageRequest {
        to: "+14155550612".into(),
        channel: "sms".into(),
        message_type: pb::MessageType::Message.into(),
        content: Some(pb::MessageContent {
            template: Some(pb::Template { name: "hello".into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let refused =
        messages.send_message(req(Some(read_key), send_request.clone(), &[])).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    workspace.get_settings(req(Some(read_key), pb::GetSettingsRequest::default(), &[])).await?;
    let refused = workspace
        .update_settings(req(Some(send_key), pb::UpdateSettingsRequest::default(), &[]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    messages.send_message(req(Some(send_key), send_request, &[])).await?;

    // Each key records its last use; a revoked key authenticates nothing from its next request.
    let keys = stack.store.api_keys(&ws).await?;
    for id in [&read.key.id, &send.key.id] {
        let key = keys.iter().find(|k| &k.id == id).unwrap();
        assert!(key.last_used_at.is_some(), "{key:?}");
    }
    assert_eq!(keys.iter().find(|k| k.id == read.key.id).unwrap().scope, ApiKeyScope::Read);
    stack.store.revoke_api_key(&ws, &send.key.id).await?;
    let r = stack.get(send_key, "/v1/channels").await?;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    stack.shutdown().await
}
