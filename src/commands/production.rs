//! `convo worker` and `convo api`: the production split, against a real Temporal cluster and
//! Postgres. Both read the same layered configuration (defaults, TOML, `CONVO_…`/standard env,
//! flags).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Args;
use convo::config::{ApiSection, FileConfig, pick, temporal_url};
use convo::{ApiParts, Node, NodeParts, WorkerParts};
use convo_activities::{reconcile::ReconcilerConfig, webhooks::DispatcherConfig};
use convo_api::AppSettings;
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

impl ClusterArgs {
    /// Worker settings and the store URL, layered.
    fn resolve(self, identity: &str) -> anyhow::Result<(Settings, String, FileConfig)> {
        let file = FileConfig::load(self.config.as_deref())?;
        let t = &file.temporal;
        let ca = self.temporal_tls_ca.or_else(|| t.tls_ca_cert.clone());
        let cert = self.temporal_tls_cert.or_else(|| t.tls_client_cert.clone());
        let key = self.temporal_tls_key.or_else(|| t.tls_client_key.clone());
        let tls_files = ca.is_some() || cert.is_some() || key.is_some();
        let tls = pick(self.temporal_tls, t.tls, false) || tls_files;
        let address = pick(self.temporal_address, t.address.clone(), "127.0.0.1:7233".to_owned());
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
                domain: t.tls_domain.clone(),
                client_cert,
            })
        } else {
            None
        };
        let settings = Settings {
            namespace: pick(self.namespace, t.namespace.clone(), "default".to_owned()),
            task_queue: pick(
                self.task_queue,
                t.task_queue.clone(),
                convo_workflows::contracts::TASK_QUEUE.to_owned(),
            ),
            identity: Some(format!("{identity}@{}", std::process::id())),
            graceful_shutdown_period: Some(Duration::from_secs(30)),
            api_key: self.temporal_api_key.or_else(|| t.api_key.clone()),
            tls,
            ..Settings::new(temporal_url(&address, tls_files || self.temporal_tls == Some(true))?)
        };
        let database_url = self
            .database_url
            .or_else(|| file.database_url.clone())
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
    let (mut settings, database_url, file) = args.cluster.resolve("convo-worker")?;
    settings.search_attributes = args.search_attributes;
    let store = Store::connect(&database_url).await.context("connecting the store")?;
    let destinations = args.webhooks.destinations(&file.webhooks);
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
    /// The policy: a flag (or env) turns a permission on, else the file's value, else off.
    fn destinations(&self, file: &convo::config::WebhooksSection) -> Destinations {
        let private = self.webhooks_allow_private_destinations
            || file.allow_private_destinations.unwrap_or(false);
        Destinations {
            allow_loopback: private,
            allow_private: private,
            allow_http: self.webhooks_allow_http || file.allow_http.unwrap_or(false),
        }
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

impl InboundArgs {
    /// The application settings, each layered flag (or env) > file > default.
    fn app_settings(&self, file: &ApiSection) -> anyhow::Result<AppSettings> {
        let public_base_url = self
            .public_base_url
            .clone()
            .or_else(|| file.public_base_url.clone())
            .map(|u| public_base_url(&u))
            .transpose()?;
        Ok(AppSettings {
            whatsapp_verify_token: self
                .whatsapp_verify_token
                .clone()
                .or_else(|| file.whatsapp_verify_token.clone())
                .filter(|t| !t.is_empty()),
            whatsapp_app_secret: self
                .whatsapp_app_secret
                .clone()
                .or_else(|| file.whatsapp_app_secret.clone())
                .filter(|s| !s.is_empty()),
            public_base_url,
            ..AppSettings::default()
        })
    }
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
    let (settings, database_url, file) = args.cluster.resolve("convo-api")?;
    let http_addr = pick(args.http_addr, file.api.http_addr, ([0, 0, 0, 0], 8080).into());
    let grpc_addr = pick(args.grpc_addr, file.api.grpc_addr, ([0, 0, 0, 0], 50051).into());
    let app_settings = AppSettings {
        webhook_destinations: args.webhooks.destinations(&file.webhooks),
        ..args.inbound.app_settings(&file.api)?
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

    fn settings(argv: &[&str], file: &ApiSection) -> anyhow::Result<AppSettings> {
        let probe =
            Probe::try_parse_from(std::iter::once("convo-api").chain(argv.iter().copied()))?;
        probe.api.inbound.app_settings(file)
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
    fn a_public_base_url_must_be_an_absolute_http_url() {
        for bad in ["api.example.com", "ftp://api.example.com", "https://x.example/?a=1"] {
            let err = settings(&["--public-base-url", bad], &ApiSection::default()).unwrap_err();
            assert!(format!("{err:#}").contains("public-base-url"), "{bad}: {err:#}");
        }
    }
}
