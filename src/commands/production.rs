//! `convo worker` and `convo api`: the production split, against a real Temporal cluster and
//! Postgres. Both read the same layered configuration (defaults, TOML, `CONVO_…`/standard env,
//! flags).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Args;
use convo::config::{
    ApiSection, FileConfig, Layers, TemporalSection, WebhooksSection, required, temporal_url,
};
use convo::{ApiParts, Node, NodeParts, WorkerParts};
use convo_activities::{reconcile::ReconcilerConfig, webhooks::DispatcherConfig};
use convo_api::{
    AppSettings,
    app::limits::{Rate, RateLimits},
};
use convo_store::{Store, webhooks::Destinations};
use convo_worker::{Settings, TlsSettings};

/// How to reach Temporal and the database.
#[derive(Debug, Args)]
pub(crate) struct ClusterArgs {
    /// Temporal frontend, `host:port` or a URL [default: 127.0.0.1:7233].
    #[arg(long, env = "TEMPORAL_ADDRESS")]
    temporal_address: Option<String>,
    /// Temporal namespace [default: default].
    #[arg(long, env = "TEMPORAL_NAMESPACE")]
    namespace: Option<String>,
    /// Task queue of convo's workflows and activities [default: convo].
    #[arg(long, env = "CONVO_TASK_QUEUE")]
    task_queue: Option<String>,
    /// Temporal API key (Temporal Cloud).
    #[arg(long, env = "TEMPORAL_API_KEY", hide_env_values = true)]
    temporal_api_key: Option<String>,
    /// Connect with TLS (implied by the TLS files).
    #[arg(long, env = "TEMPORAL_TLS")]
    temporal_tls: Option<bool>,
    /// PEM CA certificate of the Temporal server.
    #[arg(long, env = "TEMPORAL_TLS_CA")]
    temporal_tls_ca: Option<PathBuf>,
    /// PEM client certificate (mTLS).
    #[arg(long, env = "TEMPORAL_TLS_CERT")]
    temporal_tls_cert: Option<PathBuf>,
    /// PEM client key (mTLS).
    #[arg(long, env = "TEMPORAL_TLS_KEY")]
    temporal_tls_key: Option<PathBuf>,
    /// The store: `postgres://…` in production, or a SQLite URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// TOML configuration file [default: ./convo.toml if present].
    #[arg(long, env = "CONVO_CONFIG")]
    config: Option<PathBuf>,
}

/// The built-in defaults of `convo worker` and `convo api`: the bottom layer.
fn built_in() -> FileConfig {
    FileConfig {
        temporal: TemporalSection {
            address: Some("127.0.0.1:7233".to_owned()),
            namespace: Some("default".to_owned()),
            task_queue: Some(convo_workflows::contracts::TASK_QUEUE.to_owned()),
            tls: Some(false),
            ..TemporalSection::default()
        },
        api: ApiSection {
            http_addr: Some(([0, 0, 0, 0], 8080).into()),
            grpc_addr: Some(([0, 0, 0, 0], 50051).into()),
            ..ApiSection::default()
        },
        ..FileConfig::default()
    }
}

impl ClusterArgs {
    /// Worker settings, the store URL and the whole layered configuration: the defaults, the
    /// file, then these flags and `flags` (the command's own).
    fn resolve(
        self,
        identity: &str,
        flags: FileConfig,
    ) -> anyhow::Result<(Settings, String, FileConfig)> {
        let flags = FileConfig {
            temporal: TemporalSection {
                address: self.temporal_address,
                namespace: self.namespace,
                task_queue: self.task_queue,
                api_key: self.temporal_api_key,
                tls: self.temporal_tls,
                tls_ca_cert: self.temporal_tls_ca,
                tls_client_cert: self.temporal_tls_cert,
                tls_client_key: self.temporal_tls_key,
                tls_domain: None,
            },
            database_url: self.database_url,
            ..flags
        };
        let file =
            Layers::new(&built_in()).file(self.config.as_deref())?.layer(&flags).extract()?;
        let t = file.temporal.clone();
        let (ca, cert, key) = (t.tls_ca_cert, t.tls_client_cert, t.tls_client_key);
        let tls_files = ca.is_some() || cert.is_some() || key.is_some();
        let tls = required(t.tls, "temporal.tls")? || tls_files;
        let address = required(t.address, "temporal.address")?;
        let read =
            |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let tls = if tls {
            let client_cert = match (&cert, &key) {
                (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
                (None, None) => None,
                _ => anyhow::bail!("--temporal-tls-cert and --temporal-tls-key go together"),
            };
            Some(TlsSettings {
                server_root_ca_cert: ca.as_ref().map(read).transpose()?,
                domain: t.tls_domain,
                client_cert,
            })
        } else {
            None
        };
        let url = temporal_url(&address, tls.is_some())?;
        let settings = Settings {
            namespace: required(t.namespace, "temporal.namespace")?,
            task_queue: required(t.task_queue, "temporal.task_queue")?,
            identity: Some(format!("{identity}@{}", std::process::id())),
            graceful_shutdown_period: Some(Duration::from_secs(30)),
            api_key: t.api_key,
            tls,
            ..Settings::new(url)
        };
        let database_url = file
            .database_url
            .clone()
            .context("DATABASE_URL (or database_url in the config file) is required")?;
        Ok((settings, database_url, file))
    }
}

/// Options of `convo worker`.
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Do not run the webhook dispatcher in this process.
    #[arg(long, env = "CONVO_NO_WEBHOOK_DISPATCHER")]
    no_webhook_dispatcher: bool,
    /// Serve Prometheus metrics (the Temporal SDK's worker metrics and convo's) on
    /// `http://ADDRESS/metrics`, e.g. `127.0.0.1:9464` [default: no endpoint].
    #[arg(long, env = "CONVO_METRICS_ADDRESS")]
    metrics_address: Option<SocketAddr>,
    /// Do not run the reconciler (closes the windows of session runs that were terminated,
    /// failed or timed out) in this process.
    #[arg(long, env = "CONVO_NO_RECONCILER")]
    no_reconciler: bool,
    /// `register` adds convo's search attributes to the namespace if they are missing;
    /// `check` only verifies them and names what is missing (Temporal Cloud, or clusters
    /// where operators register attributes).
    #[arg(long, env = "CONVO_SEARCH_ATTRIBUTES", default_value = "register")]
    search_attributes: convo_worker::search_attributes::Mode,
    #[command(flatten)]
    webhooks: WebhookArgs,
}

/// Runs workflows and activities (and the webhook dispatcher) until `shutdown`, then drains.
pub(crate) async fn worker(
    args: WorkerArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let flags = FileConfig { webhooks: args.webhooks.overrides(), ..FileConfig::default() };
    let (mut settings, database_url, file) = args.cluster.resolve("convo-worker", flags)?;
    settings.search_attributes = args.search_attributes;
    let store = Store::connect(&database_url).await.context("connecting the store")?;
    let destinations = destinations(&file.webhooks);
    let webhooks = (!args.no_webhook_dispatcher)
        .then(|| DispatcherConfig { destinations, ..DispatcherConfig::default() });
    let reconciler = (!args.no_reconciler).then(ReconcilerConfig::default);
    let temporal = Settings { metrics_address: args.metrics_address, ..settings.clone() };
    let node = Node::start(NodeParts {
        temporal,
        store,
        worker: Some(WorkerParts { webhooks, reconciler, customize: None }),
        api: None,
    })
    .await?;
    println!(
        "convo worker polling {} in namespace {} at {}",
        settings.task_queue, settings.namespace, settings.address
    );
    if let Some(addr) = node.metrics_addr() {
        println!("convo worker metrics on http://{addr}/metrics");
    }
    shutdown.await;
    tracing::info!("draining the worker");
    node.shutdown().await
}

/// Options of `convo api`.
#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// HTTP API address [default: 0.0.0.0:8080].
    #[arg(long, env = "CONVO_HTTP_ADDR")]
    http_addr: Option<SocketAddr>,
    /// gRPC API address [default: 0.0.0.0:50051].
    #[arg(long, env = "CONVO_GRPC_ADDR")]
    grpc_addr: Option<SocketAddr>,
    /// Requests a second for all the API keys of a workspace together; past it, 429
    /// `rate_limited` with Retry-After [default: no limit].
    #[arg(long, env = "CONVO_RATE_LIMIT_PER_WORKSPACE")]
    rate_limit_per_workspace: Option<std::num::NonZeroU32>,
    /// Requests a second for each API key [default: no limit].
    #[arg(long, env = "CONVO_RATE_LIMIT_PER_KEY")]
    rate_limit_per_key: Option<std::num::NonZeroU32>,
    #[command(flatten)]
    inbound: InboundArgs,
    #[command(flatten)]
    webhooks: WebhookArgs,
}

/// Which webhook destinations `convo api` subscribes and `convo worker` delivers to; both read
/// the same flags, so that what the API accepted the dispatcher reaches.
#[derive(Debug, Args)]
pub(crate) struct WebhookArgs {
    /// Allow webhook endpoints on loopback, private and link-local addresses (receivers inside
    /// your own network) [default: public addresses only]. Cloud metadata addresses stay
    /// refused.
    #[arg(long, env = "CONVO_WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS")]
    webhooks_allow_private_destinations: bool,
    /// Allow plain `http://` webhook endpoints [default: https only].
    #[arg(long, env = "CONVO_WEBHOOKS_ALLOW_HTTP")]
    webhooks_allow_http: bool,
}

impl WebhookArgs {
    /// What the flags (or env) set: a flag turns a permission on; unset leaves the file's.
    fn overrides(&self) -> WebhooksSection {
        WebhooksSection {
            allow_private_destinations: self.webhooks_allow_private_destinations.then_some(true),
            allow_http: self.webhooks_allow_http.then_some(true),
        }
    }
}

/// The destination policy of the layered `[webhooks]`: off unless a layer turns it on.
fn destinations(webhooks: &WebhooksSection) -> Destinations {
    let private = webhooks.allow_private_destinations.unwrap_or(false);
    Destinations {
        allow_loopback: private,
        allow_private: private,
        allow_http: webhooks.allow_http.unwrap_or(false),
    }
}

/// How `convo api` authenticates provider webhooks.
#[derive(Debug, Args)]
pub(crate) struct InboundArgs {
    /// The token Meta's webhook subscription handshake must present
    /// (`GET /v1/inbound/whatsapp?hub.verify_token=…`); without it the handshake answers 403.
    #[arg(long, env = "CONVO_WHATSAPP_VERIFY_TOKEN", hide_env_values = true)]
    whatsapp_verify_token: Option<String>,
    /// The Meta app secret that signs WhatsApp webhooks, for channels whose provider
    /// configuration has no `app_secret` of its own.
    #[arg(long, env = "CONVO_WHATSAPP_APP_SECRET", hide_env_values = true)]
    whatsapp_app_secret: Option<String>,
    /// The externally visible base URL (`https://api.example.com`), which Twilio signs; without
    /// it the URL is rebuilt from the request's `Host` and `X-Forwarded-Proto`.
    #[arg(long, env = "CONVO_PUBLIC_BASE_URL")]
    public_base_url: Option<String>,
}

impl ApiArgs {
    /// What the API's own flags (or env) set, as the top layer's `[api]` and `[webhooks]`.
    fn overrides(&self) -> FileConfig {
        FileConfig {
            api: ApiSection {
                http_addr: self.http_addr,
                grpc_addr: self.grpc_addr,
                whatsapp_verify_token: self.inbound.whatsapp_verify_token.clone(),
                whatsapp_app_secret: self.inbound.whatsapp_app_secret.clone(),
                public_base_url: self.inbound.public_base_url.clone(),
                rate_limit_per_workspace: self.rate_limit_per_workspace,
                rate_limit_per_key: self.rate_limit_per_key,
            },
            webhooks: self.webhooks.overrides(),
            ..FileConfig::default()
        }
    }
}

/// The application settings of the layered `[api]` (each key from the highest layer that sets
/// it: flag or env, file, default).
fn app_settings(api: &ApiSection) -> anyhow::Result<AppSettings> {
    let public_base_url = api.public_base_url.as_deref().map(public_base_url).transpose()?;
    Ok(AppSettings {
        whatsapp_verify_token: api.whatsapp_verify_token.clone().filter(|t| !t.is_empty()),
        whatsapp_app_secret: api.whatsapp_app_secret.clone().filter(|s| !s.is_empty()),
        public_base_url,
        rate_limits: RateLimits {
            per_workspace: api.rate_limit_per_workspace.map(Rate::per_second),
            per_key: api.rate_limit_per_key.map(Rate::per_second),
        },
        ..AppSettings::default()
    })
}

/// An absolute `http`/`https` URL with no query or fragment, without its trailing slash (the
/// request path is appended to it).
fn public_base_url(value: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(value)
        .with_context(|| format!("--public-base-url: {value:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        anyhow::bail!("--public-base-url: {value:?} must be an http:// or https:// URL");
    }
    if url.query().is_some() || url.fragment().is_some() {
        anyhow::bail!("--public-base-url: {value:?} must not have a query or fragment");
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// Serves the HTTP and gRPC APIs until `shutdown`; in-flight requests finish.
pub(crate) async fn api(
    args: ApiArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let flags = args.overrides();
    let (settings, database_url, file) = args.cluster.resolve("convo-api", flags)?;
    let http_addr = required(file.api.http_addr, "api.http_addr")?;
    let grpc_addr = required(file.api.grpc_addr, "api.grpc_addr")?;
    let app_settings = AppSettings {
        webhook_destinations: destinations(&file.webhooks),
        ..app_settings(&file.api)?
    };
    let store = Store::connect(&database_url).await.context("connecting the store")?;
    let http = tokio::net::TcpListener::bind(http_addr).await.context("binding HTTP")?;
    let grpc = tokio::net::TcpListener::bind(grpc_addr).await.context("binding gRPC")?;
    let api = ApiParts { settings: app_settings, http, grpc, sandbox: None };
    let node =
        Node::start(NodeParts { temporal: settings, store, worker: None, api: Some(api) }).await?;
    let (http, grpc) = (node.http_addr().context("HTTP")?, node.grpc_addr().context("gRPC")?);
    println!("convo api: http http://{http} grpc {grpc}");
    shutdown.await;
    node.shutdown().await
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        api: ApiArgs,
    }

    /// The settings `argv` gives over a file whose `[api]` is `file`, layered as `convo api`
    /// layers them.
    fn settings(argv: &[&str], file: &ApiSection) -> anyhow::Result<AppSettings> {
        let probe =
            Probe::try_parse_from(std::iter::once("convo-api").chain(argv.iter().copied()))?;
        let file = FileConfig { api: file.clone(), ..FileConfig::default() };
        let layered = Layers::new(&built_in()).layer(&file).layer(&probe.api.overrides());
        app_settings(&layered.extract()?.api)
    }

    #[test]
    fn inbound_settings_layer_flags_over_the_file() {
        let file = ApiSection {
            whatsapp_verify_token: Some("file-token".into()),
            whatsapp_app_secret: Some("file-secret".into()),
            public_base_url: Some("https://file.example.com/".into()),
            ..ApiSection::default()
        };
        let s = settings(&["--whatsapp-verify-token", "flag-token"], &file).unwrap();
        assert_eq!(s.whatsapp_verify_token.as_deref(), Some("flag-token"));
        assert_eq!(s.whatsapp_app_secret.as_deref(), Some("file-secret"));
        assert_eq!(s.public_base_url.as_deref(), Some("https://file.example.com"));

        let s = settings(
            &[
                "--whatsapp-app-secret",
                "flag-secret",
                "--public-base-url",
                "https://api.example.com/convo",
            ],
            &file,
        )
        .unwrap();
        assert_eq!(s.whatsapp_verify_token.as_deref(), Some("file-token"));
        assert_eq!(s.whatsapp_app_secret.as_deref(), Some("flag-secret"));
        assert_eq!(s.public_base_url.as_deref(), Some("https://api.example.com/convo"));

        // Nothing set anywhere: the defaults (no token, no secret, URL from the request).
        let s = settings(&[], &ApiSection::default()).unwrap();
        assert_eq!(s.whatsapp_verify_token, None);
        assert_eq!(s.whatsapp_app_secret, None);
        assert_eq!(s.public_base_url, None);
    }

    #[test]
    fn request_rates_layer_flags_over_the_file() {
        let per = |n: u32| Some(Rate::per_second(std::num::NonZeroU32::new(n).unwrap()));
        let file = ApiSection {
            rate_limit_per_workspace: std::num::NonZeroU32::new(50),
            rate_limit_per_key: std::num::NonZeroU32::new(20),
            ..ApiSection::default()
        };
        let s = settings(&["--rate-limit-per-key", "5"], &file).unwrap();
        assert_eq!(s.rate_limits, RateLimits { per_workspace: per(50), per_key: per(5) });
        let none = settings(&[], &ApiSection::default()).unwrap();
        assert_eq!(none.rate_limits, RateLimits::default(), "no limit unless one is set");
        assert!(settings(&["--rate-limit-per-key", "0"], &file).is_err(), "a rate is at least 1");
    }

    #[test]
    fn a_public_base_url_must_be_an_absolute_http_url() {
        for bad in ["api.example.com", "ftp://api.example.com", "https://x.example/?a=1"] {
            let err = settings(&["--public-base-url", bad], &ApiSection::default()).unwrap_err();
            assert!(format!("{err:#}").contains("public-base-url"), "{bad}: {err:#}");
        }
    }
}
