//! `convo serve` as a library: everything convo needs, in one process, on embedded defaults.
//!
//! [`Stack::start`] brings up, in order: the devserver on a SQLite file (its port stays open
//! for Temporal tooling, TestService included) or, with [`ServeConfig::temporal`], a
//! connection to an external Temporal (`temporal server start-dev` and its Web UI, or a
//! cluster) instead, the store (SQLite next to it, or Postgres with
//! `DATABASE_URL`), the sandbox provider, the worker with its webhook dispatcher, and the HTTP
//! and gRPC APIs (the HTTP API's `/metrics` renders every metric of the process: the worker's
//! SDK and business metrics too). On first start it creates the `dev` workspace with one sandbox channel per
//! channel kind and an API key. Every address may be port 0; the stack reports what it bound.
//! Tests start exactly this, on port 0, so "the full serve stack" is what they exercise.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use convo_activities::{
    reconcile::ReconcilerConfig,
    sandbox::{Sandbox, SandboxHandle},
    webhooks::DispatcherConfig,
};
use convo_api::AppSettings;
use convo_client::Sessions;
use convo_devserver::{DevServer, DevServerConfig, DevServerHandle, TimeControl};
use convo_domain::{Channel, Money, RateCard, RateTable, WorkspaceSettings};
use convo_store::{
    NewTemplate, Store, TemplateButton, TemplateButtonKind, TemplateCard, TemplateCategory,
    TemplateComponents, TemplateStatus, webhooks::Destinations,
};
use convo_worker::Settings;
use temporalio_client::Url;
use tokio::net::TcpListener;

use crate::node::{ApiParts, Node, NodeParts, WorkerParts};

/// The workspace `convo serve` creates on first start.
pub const DEV_WORKSPACE: &str = "dev";

/// What the stack is started with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where the devserver's and the store's SQLite files live (and the dev API key). `None`
    /// keeps everything in memory (tests).
    pub data_dir: Option<PathBuf>,
    /// The HTTP API.
    pub http_addr: SocketAddr,
    /// The gRPC API.
    pub grpc_addr: SocketAddr,
    /// The devserver (Temporal WorkflowService, TestService, OperatorService, health).
    pub temporal_addr: SocketAddr,
    /// Run on this external Temporal instead of the embedded devserver (`temporal_addr` and
    /// `time_skipping_locked` are then unused).
    pub temporal: Option<ExternalTemporal>,
    /// The dev workspace's API key; a random one when `None`.
    pub dev_api_key: Option<String>,
    /// Store URL overriding the SQLite file (`DATABASE_URL`).
    pub database_url: Option<String>,
    /// The worker's task queue.
    pub task_queue: String,
    /// The webhook dispatcher.
    pub webhooks: DispatcherConfig,
    /// Which webhook endpoints may be subscribed and reached, for the API and the dispatcher
    /// alike (overriding `webhooks.destinations`): loopback over plain `http` by default, so a
    /// receiver on the developer's machine works.
    pub webhook_destinations: Destinations,
    /// The reconciler of session runs that ended without closing their windows.
    pub reconciler: ReconcilerConfig,
    /// Start with time skipping locked (the devserver follows real time until a client
    /// skips). `false` lets idle time jump at once.
    pub time_skipping_locked: bool,
    /// Also serve the metrics on this address's `/metrics`, as `convo worker` does (the HTTP
    /// API's `/metrics` serves them anyway).
    pub metrics_addr: Option<SocketAddr>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            data_dir: Some(PathBuf::from(".convo")),
            http_addr: ([127, 0, 0, 1], 8080).into(),
            grpc_addr: ([127, 0, 0, 1], 50051).into(),
            temporal_addr: ([127, 0, 0, 1], 7233).into(),
            temporal: None,
            dev_api_key: None,
            database_url: None,
            task_queue: convo_workflows::contracts::TASK_QUEUE.to_owned(),
            webhooks: DispatcherConfig::default(),
            webhook_destinations: Destinations::DEVELOPMENT,
            reconciler: ReconcilerConfig::default(),
            time_skipping_locked: true,
            metrics_addr: None,
        }
    }
}

impl ServeConfig {
    /// Everything on port 0, in memory: what tests start.
    pub fn ephemeral() -> Self {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        Self {
            data_dir: None,
            http_addr: any,
            grpc_addr: any,
            temporal_addr: any,
            task_queue: format!("convo-{}", uuid::Uuid::new_v4()),
            reconciler: ReconcilerConfig {
                interval: Duration::from_millis(200),
                grace: Duration::ZERO,
                ..ReconcilerConfig::default()
            },
            ..Self::default()
        }
    }
}

/// An external Temporal frontend for `convo serve --temporal-address`.
#[derive(Debug, Clone)]
pub struct ExternalTemporal {
    /// `http://host:port`.
    pub url: Url,
    /// The namespace (`default`).
    pub namespace: String,
}

/// A running stack.
pub struct Stack {
    /// The HTTP API's address.
    pub http_addr: SocketAddr,
    /// The gRPC API's address.
    pub grpc_addr: SocketAddr,
    /// The metrics endpoint's address, if [`ServeConfig::metrics_addr`] asked for one.
    pub metrics_addr: Option<SocketAddr>,
    /// The Temporal frontend: the devserver's address, or the external one.
    pub temporal_addr: String,
    /// The dev workspace's API key (printed on start).
    pub dev_api_key: String,
    /// The store.
    pub store: Store,
    /// The sandbox provider.
    pub sandbox: Arc<SandboxHandle>,
    /// The application's door to the workflows.
    pub sessions: Sessions,
    devserver: Option<DevServerHandle>,
    node: Option<Node>,
}

impl Stack {
    /// Starts everything and seeds the dev workspace.
    pub async fn start(config: ServeConfig) -> anyhow::Result<Stack> {
        if let Some(dir) = &config.data_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let (devserver, url, namespace) = match &config.temporal {
            Some(external) => (None, external.url.clone(), external.namespace.clone()),
            None => {
                let devserver = DevServer::start(DevServerConfig {
                    ip: config.temporal_addr.ip(),
                    port: config.temporal_addr.port(),
                    db_filename: config.data_dir.as_ref().map(|d| d.join("temporal.db")),
                    time_skipping_locked: config.time_skipping_locked,
                    ..DevServerConfig::default()
                })
                .await
                .context("starting the devserver")?;
                let url = Url::parse(&devserver.url()).context("devserver url")?;
                (Some(devserver), url, "default".to_owned())
            }
        };
        let temporal_addr = match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            _ => url.to_string(),
        };

        let store = match (&config.database_url, &config.data_dir) {
            (Some(url), _) => Store::connect(url).await,
            (None, Some(dir)) => Store::open_sqlite(dir.join("convo.db")).await,
            (None, None) => Store::connect("sqlite::memory:").await,
        }
        .context("opening the store")?;
        let sandbox =
            Arc::new(Sandbox::start(([127, 0, 0, 1], 0).into()).await.context("sandbox")?);
        sandbox.render_templates_from(store.clone());
        let dev_api_key = seed_dev_workspace(&store, &sandbox, &config).await?;

        let temporal = Settings {
            task_queue: config.task_queue.clone(),
            identity: Some(format!("convo-serve@{}", std::process::id())),
            graceful_shutdown_period: Some(Duration::from_secs(5)),
            namespace,
            metrics_address: config.metrics_addr,
            ..Settings::new(url)
        };
        let http = TcpListener::bind(config.http_addr).await.context("binding the HTTP API")?;
        let grpc = TcpListener::bind(config.grpc_addr).await.context("binding the gRPC API")?;
        let node = Node::start(NodeParts {
            temporal,
            store: store.clone(),
            worker: Some(WorkerParts {
                webhooks: Some(DispatcherConfig {
                    destinations: config.webhook_destinations,
                    ..config.webhooks.clone()
                }),
                reconciler: Some(config.reconciler.clone()),
                customize: None,
            }),
            api: Some(ApiParts {
                settings: AppSettings {
                    webhook_destinations: config.webhook_destinations,
                    ..AppSettings::default()
                },
                http,
                grpc,
                sandbox: Some(sandbox.clone()),
            }),
        })
        .await?;
        let (http_addr, grpc_addr) = (
            node.http_addr().context("the node's HTTP address")?,
            node.grpc_addr().context("the node's gRPC address")?,
        );
        let metrics_addr = node.metrics_addr();
        let sessions = node.sessions().clone();

        Ok(Stack {
            http_addr,
            grpc_addr,
            metrics_addr,
            temporal_addr,
            dev_api_key,
            store,
            sandbox,
            sessions,
            devserver,
            node: Some(node),
        })
    }

    /// The embedded devserver's virtual clock; `None` on an external Temporal.
    pub fn time(&self) -> Option<TimeControl> {
        self.devserver.as_ref().map(DevServerHandle::time)
    }

    /// Whether the stack runs on its embedded devserver.
    pub fn embedded(&self) -> bool {
        self.devserver.is_some()
    }

    /// Stops accepting requests, lets in-flight ones finish, stops the worker (gracefully),
    /// then the devserver.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(node) = self.node.take() {
            node.shutdown().await?;
        }
        if let Some(devserver) = self.devserver.take() {
            devserver.shutdown().await;
        }
        self.store.close().await;
        Ok(())
    }
}

/// Creates the dev workspace and its API key on first start; on every start points its
/// channels at this process's sandbox (whose ports are new each time). Returns the key: the
/// configured one, else the one kept in the data directory, else a new one.
async fn seed_dev_workspace(
    store: &Store,
    sandbox: &SandboxHandle,
    config: &ServeConfig,
) -> anyhow::Result<String> {
    if store.workspace(DEV_WORKSPACE).await.is_err() {
        store.upsert_workspace(DEV_WORKSPACE, "Development", &dev_settings()).await?;
        // Idempotent on its key: a second first-start (a crash in between) credits once.
        store.credit(DEV_WORKSPACE, Money::from_minor(DEV_OPENING_BALANCE), "dev-opening").await?;
    }
    for channel in Channel::ALL {
        store
            .upsert_channel(&sandbox.channel_config(
                DEV_WORKSPACE,
                channel,
                sandbox_sender(channel),
            ))
            .await?;
    }
    for template in dev_templates() {
        // A template edited in the data directory under the same name is kept as it is.
        if let Err(e) = store.create_template(DEV_WORKSPACE, &template).await {
            tracing::warn!(template = %template.name, error = %e, "dev template not seeded");
        }
    }
    let key_file = config.data_dir.as_deref().map(|d| d.join("dev-api-key"));
    let key = match (&config.dev_api_key, key_file.as_deref().and_then(read_key)) {
        (Some(key), _) => key.clone(),
        (None, Some(key)) => key,
        (None, None) => convo_store::generate_api_key(),
    };
    store.ensure_api_key(DEV_WORKSPACE, "dev", &key).await.context("the dev API key")?;
    if let Some(file) = key_file {
        std::fs::write(&file, &key).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(key)
}

/// The dev workspace's templates, one or more per channel, with variables.
pub fn dev_templates() -> Vec<NewTemplate> {
    let template = |name: &str, channel: Channel, body: &str, variables: &[&str]| NewTemplate {
        name: name.to_owned(),
        channel,
        language: "en_US".to_owned(),
        body: body.to_owned(),
        variables: variables.iter().map(|v| (*v).to_owned()).collect(),
        category: TemplateCategory::Utility,
        status: TemplateStatus::Approved,
        components: TemplateComponents::default(),
    };
    let button = |kind, text: &str, url: Option<&str>| TemplateButton {
        kind,
        text: text.to_owned(),
        url: url.map(str::to_owned),
        phone_number: None,
    };
    let mut shipping = template(
        "shipping_update",
        Channel::Whatsapp,
        "Hi {{1}}, your order {{2}} has shipped.",
        &["1", "2"],
    );
    shipping.components = TemplateComponents {
        header: Some("Order {{2}}".to_owned()),
        footer: Some("Reply STOP to opt out".to_owned()),
        buttons: vec![
            button(TemplateButtonKind::Url, "Track", Some("https://shop.example/track/{{2}}")),
            button(TemplateButtonKind::QuickReply, "Thanks", None),
        ],
        ..TemplateComponents::default()
    };
    let mut picks =
        template("weekly_picks", Channel::Whatsapp, "Hi {{1}}, this week's picks:", &["1"]);
    picks.category = TemplateCategory::Marketing;
    picks.components.cards = (0..2)
        .map(|_| TemplateCard {
            header: Some("{{1}}".to_owned()),
            body: "{{1}} for {{2}}".to_owned(),
            buttons: vec![button(
                TemplateButtonKind::Url,
                "Buy",
                Some("https://shop.example/p/{{1}}"),
            )],
        })
        .collect();
    let mut receipt = template(
        "email_receipt",
        Channel::Email,
        "Dear {{name}},\n\nthank you for order {{order}}. It ships within two days.",
        &["name", "order"],
    );
    receipt.components.subject = Some("Your receipt for order {{order}}".to_owned());
    vec![
        shipping,
        picks,
        template(
            "sms_shipping_update",
            Channel::Sms,
            "Hi {{1}}, order {{2}} shipped: https://shop.example/track/{{2}}",
            &["1", "2"],
        ),
        template(
            "rcs_welcome",
            Channel::Rcs,
            "Hi {{1}}, welcome to Acme! Reply here to chat with us about order {{2}}.",
            &["1", "2"],
        ),
        receipt,
        template(
            "messenger_followup",
            Channel::Messenger,
            "Hi {{1}}, did your order arrive?",
            &["1"],
        ),
        template(
            "instagram_followup",
            Channel::Instagram,
            "Hi {{1}}, did your order arrive?",
            &["1"],
        ),
    ]
}

/// The dev workspace's opening balance, in minor units.
const DEV_OPENING_BALANCE: u64 = 100_000;

/// Example rates on every channel, so billing blocks show real numbers in a demo: in euros,
/// a conversation unit of 0.50, messages at 0.05, newsletters at 0.02, and monthly volume
/// tiers (`tier_1` below 1,000 messages, `tier_2` below 10,000, `tier_3` beyond).
fn dev_settings() -> WorkspaceSettings {
    let rates = RateTable::uniform(RateCard {
        conversation_unit: Money::from_minor(50),
        message: Money::from_minor(5),
        newsletter: Money::from_minor(2),
    });
    let tier = |name: &str, up_to| convo_domain::billing::VolumeTier { name: name.into(), up_to };
    let tiers =
        vec![tier("tier_1", Some(1_000)), tier("tier_2", Some(10_000)), tier("tier_3", None)];
    WorkspaceSettings {
        rates,
        currency: Some("EUR".to_owned()),
        volume_tiers: Channel::ALL.into_iter().map(|c| (c, tiers.clone())).collect(),
        // The RBM agent is approved for transactional traffic, as in the RCS conversation API.
        use_cases: [(Channel::Rcs, convo_domain::UseCase::Transactional)].into(),
        ..WorkspaceSettings::default()
    }
}

fn read_key(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|k| k.trim().to_owned()).filter(|k| !k.is_empty())
}

/// The business's address on each sandbox channel.
pub fn sandbox_sender(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "dev@convo.localhost",
        _ => "+12125550100",
    }
}
