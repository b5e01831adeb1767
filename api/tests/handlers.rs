//! The HTTP handlers over a fake [`Gateway`]: `Router::oneshot` against a real store (SQLite,
//! or Postgres when `DATABASE_URL` is set), with no Temporal server and no worker. The fake
//! answers as the workflows do (a session refuses free-form text outside a window) and
//! records what the application asked of it, so each test sees exactly which calls reached
//! the workflows. What needs the workflows themselves is tested over the full stack in the
//! other suites.

use std::{
    num::NonZeroU32,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode},
};
use convo_api::{
    App, AppSettings,
    app::limits::{Rate, RateLimits},
};
use convo_client::{Gateway, GatewayError, Inbound, InboundAccepted, UpdateError};
use convo_domain::{BillingBlock, Channel, ErrorCode, Money};
use convo_store::{ChannelConfig, Store};
use convo_workflows::contracts::{
    AgentReply, ComposeInput, ConversationView, Resolve, SendError, SendKind, SendReceipt,
    SendRequest, SessionSendOutcome, SessionView, TakeOver,
};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The workflows, faked: sessions never have a window open, so free-form text is refused
/// `no_active_session` (the session's gate) and templates are sent.
#[derive(Debug, Default)]
struct FakeWorkflows {
    sends: Mutex<Vec<SendRequest>>,
    /// Why `ping` fails, if it does.
    down: Option<String>,
}

impl FakeWorkflows {
    fn sends(&self) -> Vec<SendRequest> {
        self.sends.lock().unwrap().clone()
    }
}

#[async_trait]
impl Gateway for FakeWorkflows {
    async fn inbound(&self, inbound: Inbound) -> Result<InboundAccepted, GatewayError> {
        Ok(InboundAccepted {
            contact_id: format!("ct_{}", inbound.from),
            workflow_id: "session".to_owned(),
            duplicate: false,
        })
    }

    async fn send(
        &self,
        _workspace_id: &str,
        _contact_id: &str,
        _channel: Channel,
        request: SendRequest,
    ) -> Result<SessionSendOutcome, GatewayError> {
        self.sends.lock().unwrap().push(request.clone());
        Ok(match request.kind {
            SendKind::Freeform { .. } | SendKind::Rich { .. } => {
                SessionSendOutcome::Refused(SendError {
                    code: ErrorCode::NoActiveSession,
                    message: "no session window is open for this contact".to_owned(),
                })
            }
            SendKind::Template { .. } => SessionSendOutcome::Sent(SendReceipt {
                message_id: request.message_id,
                provider_message_id: "fake-1".to_owned(),
                conversation_expires_at: None,
                billing: BillingBlock {
                    in_session: false,
                    hold_amount: Money::from_minor(0),
                    message_price: Money::from_minor(5),
                    balance: None,
                },
                accepted_at: None,
            }),
        })
    }

    async fn close(&self, _: &str, _: &str) -> Result<bool, GatewayError> {
        Ok(false)
    }

    async fn compose(&self, _: ComposeInput) -> Result<String, GatewayError> {
        Ok("run".to_owned())
    }

    async fn session_view(&self, _: &str, _: &str) -> Result<Option<SessionView>, GatewayError> {
        Ok(None)
    }

    async fn session_abnormal_end(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<&'static str>, GatewayError> {
        Ok(None)
    }

    async fn conversation_view(&self, _: &str) -> Result<Option<ConversationView>, GatewayError> {
        Ok(None)
    }

    async fn reply(&self, _: &str, _: AgentReply) -> Result<SendReceipt, UpdateError> {
        Err(UpdateError::Ended)
    }

    async fn take_over(&self, _: &str, _: TakeOver) -> Result<(), UpdateError> {
        Err(UpdateError::Ended)
    }

    async fn resolve(&self, _: &str, _: Resolve) -> Result<(), UpdateError> {
        Err(UpdateError::Ended)
    }

    async fn ping(&self) -> Result<(), String> {
        self.down.clone().map_or(Ok(()), Err)
    }
}

/// A router over the fake and a fresh store holding one workspace with an SMS channel; the
/// workspace's API key.
struct Fixture {
    router: Router,
    workflows: Arc<FakeWorkflows>,
    key: String,
    /// A second key of the same workspace.
    other_key: String,
    _dir: tempfile::TempDir,
}

async fn fixture(workflows: FakeWorkflows) -> anyhow::Result<Fixture> {
    fixture_with(workflows, AppSettings::default()).await
}

async fn fixture_with(workflows: FakeWorkflows, settings: AppSettings) -> anyhow::Result<Fixture> {
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("convo.db").display());
    let store = Store::connect_default(&sqlite).await?;
    let ws = format!("ws-handlers-{}", uuid::Uuid::new_v4().simple());
    store.upsert_workspace(&ws, "handlers", &Default::default()).await?;
    store.credit(&ws, Money::from_minor(10_000), "opening").await?;
    store
        .upsert_channel(&ChannelConfig {
            id: String::new(),
            workspace_id: ws.clone(),
            channel: Channel::Sms,
            provider: "twilio".to_owned(),
            config: json!({"account_sid": "AC0", "auth_token": "token"}),
            sender: "+14155550100".to_owned(),
            enabled: true,
        })
        .await?;
    let key = store.create_api_key(&ws, "handlers").await?.secret;
    let other_key = store.create_api_key(&ws, "handlers, second key").await?.secret;
    let workflows = Arc::new(workflows);
    let app = App::over(workflows.clone(), store, settings);
    Ok(Fixture { router: convo_api::router(app), workflows, key, other_key, _dir: dir })
}

impl Fixture {
    /// `method path` with the workspace's key, a JSON body and extra headers: status, headers
    /// and the JSON answer.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, axum::http::HeaderMap, Value)> {
        self.call_as(&self.key, method, path, body, headers).await
    }

    /// [`Fixture::call`] with another API key.
    async fn call_as(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, axum::http::HeaderMap, Value)> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(json) => {
                request = request.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&json)?)
            }
            None => Body::empty(),
        };
        let response = self.router.clone().oneshot(request.body(body)?).await?;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await?.to_bytes();
        let json = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes)? };
        Ok((parts.status, parts.headers, json))
    }
}

fn text_send(to: &str) -> Value {
    json!({"to": to, "channel": "sms", "message_type": "MESSAGE", "content": {"text": "hi"}})
}

fn template_send(to: &str) -> Value {
    json!({"to": to, "channel": "sms", "message_type": "MESSAGE",
        "content": {"template": {"name": "hello"}}})
}

#[tokio::test]
async fn free_form_text_with_no_window_is_422_no_active_session_never_a_template()
-> anyhow::Result<()> {
    let f = fixture(FakeWorkflows::default()).await?;
    let (status, _, body) =
        f.call("POST", "/v1/messages", Some(text_send("+14155550111")), &[]).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "no_active_session");
    let sends = f.workflows.sends();
    assert_eq!(sends.len(), 1);
    assert!(
        matches!(&sends[0].kind, SendKind::Freeform { text, .. } if text == "hi"),
        "the session was asked for the free-form text itself: {:?}",
        sends[0].kind
    );
    Ok(())
}

#[tokio::test]
async fn invalid_sends_name_the_field_and_reach_no_workflow() -> anyhow::Result<()> {
    let f = fixture(FakeWorkflows::default()).await?;
    let mut no_content = text_send("+14155550112");
    no_content["content"] = json!({});
    let (status, _, body) = f.call("POST", "/v1/messages", Some(no_content), &[]).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "validation_failed");
    assert!(body["error"]["field"].as_str().is_some_and(|f| f.starts_with("content")), "{body}");

    let (status, _, body) =
        f.call("POST", "/v1/messages", Some(text_send("not a number")), &[]).await?;
    assert_eq!((status, &body["error"]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("to")));
    assert!(f.workflows.sends().is_empty(), "{:?}", f.workflows.sends());
    Ok(())
}

#[tokio::test]
async fn a_retried_key_sends_once_and_another_request_under_it_is_refused() -> anyhow::Result<()> {
    let f = fixture(FakeWorkflows::default()).await?;
    let key = [("idempotency-key", "k-once")];
    // The same request spelled differently is the same request.
    let first = f.call("POST", "/v1/messages", Some(template_send("+14155550113")), &key).await?;
    assert_eq!(first.0, StatusCode::ACCEPTED, "{}", first.2);
    assert!(first.1.get("idempotent-replayed").is_none());
    let respelled: Value = serde_json::from_str(
        r#"{ "content": {"template": {"name": "hello"}}, "message_type": "MESSAGE",
             "channel": "sms", "to": "+14155550113" }"#,
    )?;
    let again = f.call("POST", "/v1/messages", Some(respelled), &key).await?;
    assert_eq!((again.0, &again.2), (StatusCode::ACCEPTED, &first.2));
    assert_eq!(again.1.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    assert_eq!(f.workflows.sends().len(), 1, "the retry sent nothing");
    assert_eq!(f.workflows.sends()[0].message_id, first.2["message_id"].as_str().unwrap());

    let other = f.call("POST", "/v1/messages", Some(template_send("+14155550114")), &key).await?;
    assert_eq!(other.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", other.2);
    assert_eq!(other.2["error"]["code"], "idempotency_key_reused");
    assert_eq!(other.2["error"]["field"], "Idempotency-Key");
    assert_eq!(f.workflows.sends().len(), 1);
    Ok(())
}

#[tokio::test]
async fn readiness_reports_a_workflow_service_that_does_not_answer() -> anyhow::Result<()> {
    let f =
        fixture(FakeWorkflows { down: Some("connection refused".into()), ..Default::default() })
            .await?;
    let (status, _, body) = f.call("GET", "/readyz", None, &[]).await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["temporal"]["error"], "connection refused");
    Ok(())
}

/// Two requests a minute, in a burst of two: nothing refills while a test runs.
fn two_a_minute() -> Rate {
    Rate { requests: NonZeroU32::new(2).unwrap(), period: std::time::Duration::from_secs(60) }
}

#[tokio::test]
async fn a_key_over_its_rate_is_429_rate_limited_with_retry_after() -> anyhow::Result<()> {
    let limits = RateLimits { per_key: Some(two_a_minute()), per_workspace: None };
    let settings = AppSettings { rate_limits: limits, ..AppSettings::default() };
    let f = fixture_with(FakeWorkflows::default(), settings).await?;
    for _ in 0..2 {
        let (status, _, body) = f.call("GET", "/v1/channels", None, &[]).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, headers, body) =
        f.call("POST", "/v1/messages", Some(template_send("+14155550115")), &[]).await?;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let after: u64 = headers["retry-after"].to_str()?.parse()?;
    assert!((1..=30).contains(&after), "the next request a minute refills: {after}");
    assert!(f.workflows.sends().is_empty(), "a refused request reaches no workflow");
    // Another key of the workspace has its own rate.
    let (status, _, body) = f.call_as(&f.other_key, "GET", "/v1/channels", None, &[]).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(())
}

#[tokio::test]
async fn a_workspace_rate_is_shared_by_its_keys() -> anyhow::Result<()> {
    let limits = RateLimits { per_workspace: Some(two_a_minute()), per_key: None };
    let settings = AppSettings { rate_limits: limits, ..AppSettings::default() };
    let f = fixture_with(FakeWorkflows::default(), settings).await?;
    assert_eq!(f.call("GET", "/v1/channels", None, &[]).await?.0, StatusCode::OK);
    let second = f.call_as(&f.other_key, "GET", "/v1/channels", None, &[]).await?;
    assert_eq!(second.0, StatusCode::OK);
    let third = f.call_as(&f.other_key, "GET", "/v1/channels", None, &[]).await?;
    assert_eq!(
        (third.0, &third.2["error"]["code"]),
        (StatusCode::TOO_MANY_REQUESTS, &json!("rate_limited"))
    );
    assert!(third.2["error"]["message"].as_str().is_some_and(|m| m.contains("workspace")));
    Ok(())
}
