//! The in-process stack every API test runs against, over real HTTP on loopback: the embedded
//! devserver, a convo worker, a temporary SQLite store, the sandbox provider, a
//! signature-verifying webhook receiver, and the API served on `127.0.0.1:0`: the HTTP router
//! and the gRPC services (each on its own port), over one application.
//!
//! Two workspaces (`a` and `b`) each get every channel on the sandbox (with distinct business
//! numbers, so inbound webhooks map to one workspace), an API key, and a webhook endpoint.

#![allow(dead_code, unreachable_pub)]

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::Context;
use convo_activities::{
    sandbox::{Sandbox, SandboxHandle},
    testing::WebhookReceiver,
    webhooks::DispatcherConfig,
};
use convo_api::AppSettings;
use convo_client::Sessions;
use convo_devserver::DevServerConfig;
use convo_domain::{Channel, Money, RateCard, RateTable, WorkspaceSettings};
use convo_store::{ChannelConfig, Store, webhooks::Destinations};
use convo_testkit::{Backend, BackendKind, Clock, scale_settings};
use convo_worker::Settings;
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;
use temporalio_client::Url;
use tonic::Request;

/// A gRPC request with metadata: the API key as a bearer token (if any) and extra pairs.
pub fn req<T>(key: Option<&str>, message: T, extra: &[(&'static str, &str)]) -> Request<T> {
    let mut request = Request::new(message);
    let metadata = request.metadata_mut();
    if let Some(key) = key {
        metadata.insert("authorization", format!("Bearer {key}").parse().expect("ascii"));
    }
    for (name, value) in extra {
        metadata.insert(*name, value.parse().expect("ascii"));
    }
    request
}

/// Generous bound for anything that involves the worker.
pub const WAIT: Duration = Duration::from_secs(20);
/// The Meta app secret of every test WhatsApp channel.
pub const APP_SECRET: &str = "test-app-secret";
/// The Twilio auth token of every test SMS channel (the sandbox's).
pub const TWILIO_TOKEN: &str = convo_activities::sandbox::SANDBOX_TOKEN;

/// One seeded workspace.
pub struct Tenant {
    pub id: String,
    pub key: String,
    /// The business number of its phone channels.
    pub number: String,
    /// Its WhatsApp phone-number id.
    pub phone_number_id: String,
    pub channels: HashMap<Channel, ChannelConfig>,
}

impl Tenant {
    pub fn channel_id(&self, channel: Channel) -> String {
        self.channels[&channel].id.clone()
    }
}

/// An answer: status, JSON body (`Null` if none) and headers.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    /// The field a 4xx names, if any.
    pub fn field(&self) -> Option<&str> {
        self.body["error"]["field"].as_str()
    }
}

pub struct Stack {
    pub base: String,
    /// The gRPC endpoint (`http://127.0.0.1:port`).
    pub grpc: String,
    pub http: reqwest::Client,
    pub store: Store,
    /// The Temporal side of the application, for a test that builds an app of its own.
    pub sessions: Sessions,
    pub sandbox: Arc<SandboxHandle>,
    pub receiver: WebhookReceiver,
    pub a: Tenant,
    pub b: Tenant,
    /// How time moves on the backend.
    pub clock: Clock,
    server: Option<Backend>,
    node: Option<convo::Node>,
    _dir: tempfile::TempDir,
}

fn settings(clock: &Clock) -> anyhow::Result<WorkspaceSettings> {
    let rates = RateTable::uniform(RateCard {
        conversation_unit: Money::from_minor(100),
        message: Money::from_minor(5),
        newsletter: Money::from_minor(2),
    });
    scale_settings(clock, WorkspaceSettings { rates, ..WorkspaceSettings::default() })
}

async fn seed(
    store: &Store,
    sandbox: &SandboxHandle,
    receiver: &WebhookReceiver,
    clock: &Clock,
    name: &str,
    number: &str,
    phone_number_id: &str,
) -> anyhow::Result<Tenant> {
    let id = format!("ws-{name}-{}", uuid::Uuid::new_v4().simple());
    store.upsert_workspace(&id, name, &settings(clock)?).await?;
    store.credit(&id, Money::from_minor(10_000), "opening").await?;
    let mut channels = HashMap::new();
    for channel in Channel::ALL {
        let sender = match channel {
            Channel::Email => format!("support@{name}.convo.test"),
            _ => number.to_owned(),
        };
        let mut config = sandbox.channel_config(&id, channel, sender);
        if channel == Channel::Whatsapp {
            config.config["phone_number_id"] = phone_number_id.into();
            config.config["app_secret"] = APP_SECRET.into();
        }
        let stored = store.upsert_channel(&config).await?;
        channels.insert(channel, stored);
    }
    let endpoint = store.add_webhook_endpoint(&id, &receiver.url(), Vec::new()).await?;
    if name == "a" {
        receiver.set_secret(&endpoint.secret);
    }
    let key = store.create_api_key(&id, "tests").await?.secret;
    Ok(Tenant {
        id,
        key,
        number: number.to_owned(),
        phone_number_id: phone_number_id.to_owned(),
        channels,
    })
}

impl Stack {
    pub async fn start(test: &str) -> anyhow::Result<Self> {
        let settings = AppSettings {
            webhook_destinations: Destinations::DEVELOPMENT,
            ..AppSettings::default()
        };
        Self::start_with(test, settings).await
    }

    pub async fn start_with(test: &str, app_settings: AppSettings) -> anyhow::Result<Self> {
        let backend = Backend::start(BackendKind::from_env()?, DevServerConfig::ephemeral())
            .await
            .context("the Temporal backend")?;
        let clock = backend.clock();
        let address: Url = backend.url().clone();
        let task_queue = format!("{test}-{}", uuid::Uuid::new_v4());
        let dir = tempfile::tempdir()?;
        let store = Store::open_sqlite(dir.path().join("convo.db")).await?;
        let sandbox = Arc::new(Sandbox::start("127.0.0.1:0".parse()?).await?);
        let receiver = WebhookReceiver::start().await?;
        let a = seed(&store, &sandbox, &receiver, &clock, "a", "+12125550111", "100000000000001")
            .await?;
        let b = seed(&store, &sandbox, &receiver, &clock, "b", "+12125550112", "100000000000002")
            .await?;

        let settings = Settings {
            task_queue: task_queue.clone(),
            build_id: "convo-api-tests".to_owned(),
            identity: Some(format!("convo-api-tests@{task_queue}")),
            graceful_shutdown_period: Some(Duration::from_secs(1)),
            ..Settings::new(address)
        };
        let webhooks = DispatcherConfig {
            retry_schedule: vec![Duration::from_millis(50); 3],
            poll_interval: Duration::from_millis(100),
            destinations: Destinations::DEVELOPMENT,
            ..DispatcherConfig::default()
        };
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let node = convo::Node::start(convo::NodeParts {
            temporal: settings,
            store: store.clone(),
            worker: Some(convo::WorkerParts {
                webhooks: Some(webhooks),
                reconciler: Some(convo_activities::reconcile::ReconcilerConfig {
                    interval: Duration::from_millis(200),
                    grace: Duration::ZERO,
                    batch: 100,
                }),
                customize: None,
            }),
            api: Some(convo::ApiParts {
                settings: app_settings,
                http,
                grpc,
                sandbox: Some(sandbox.clone()),
            }),
        })
        .await?;
        let sessions = node.sessions().clone();
        let base = format!("http://{}", node.http_addr().expect("the node serves HTTP"));
        let grpc = format!("http://{}", node.grpc_addr().expect("the node serves gRPC"));
        Ok(Self {
            base,
            grpc,
            http: reqwest::Client::new(),
            store,
            sessions,
            sandbox,
            receiver,
            a,
            b,
            clock,
            server: Some(backend),
            node: Some(node),
            _dir: dir,
        })
    }

    /// Lets `model` time pass: a skip, or a scaled real sleep where time cannot skip.
    pub async fn skip(&self, model: Duration) -> anyhow::Result<()> {
        let bound = WAIT + self.clock.scale(model);
        tokio::time::timeout(bound, self.clock.skip(model)).await?
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with a bearer key, an optional JSON body and extra headers.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let mut req = self.http.request(method, self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await?;
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer { status, body, headers })
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> anyhow::Result<Answer> {
        self.call(Method::POST, path, Some(key), Some(&body), &[]).await
    }

    pub async fn post_idem(
        &self,
        key: &str,
        path: &str,
        body: Value,
        idempotency_key: &str,
    ) -> anyhow::Result<Answer> {
        self.call(
            Method::POST,
            path,
            Some(key),
            Some(&body),
            &[("Idempotency-Key", idempotency_key)],
        )
        .await
    }

    pub async fn get(&self, key: &str, path: &str) -> anyhow::Result<Answer> {
        self.call(Method::GET, path, Some(key), None, &[]).await
    }

    /// A raw request: any body bytes and content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let mut req = self.http.request(method, self.url(path)).body(body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await?;
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body, headers })
    }

    /// Polls `GET path` until `check` holds.
    pub async fn until(
        &self,
        key: &str,
        path: &str,
        what: &str,
        check: impl Fn(&Answer) -> bool,
    ) -> anyhow::Result<Answer> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let answer = self.get(key, path).await?;
            if check(&answer) {
                return Ok(answer);
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("{what}: still {answer:?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(mut node) = self.node.take() {
            // The APIs stop at once, then the worker drains.
            node.abort_apis();
            tokio::time::timeout(WAIT, node.shutdown()).await??;
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(WAIT, server.shutdown()).await?;
        }
        Ok(())
    }
}
