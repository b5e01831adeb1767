//! `convo serve`: everything in one process on embedded defaults (see `convo::serve`).

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use clap::Args;
use convo::{
    ServeConfig, Stack,
    config::{FileConfig, Layers, ServeSection, required, temporal_url},
    serve::ExternalTemporal,
};

/// Options of `convo serve`. Each falls back to the TOML file, then to the default shown.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Data directory: the devserver's and the store's SQLite files, the dev API key
    /// [default: ./.convo].
    #[arg(long, env = "CONVO_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// HTTP API address; port 0 picks a free port [default: 127.0.0.1:8080].
    #[arg(long, env = "CONVO_HTTP_ADDR")]
    http_addr: Option<SocketAddr>,
    /// gRPC API address [default: 127.0.0.1:50051].
    #[arg(long, env = "CONVO_GRPC_ADDR")]
    grpc_addr: Option<SocketAddr>,
    /// Port of the embedded Temporal server (WorkflowService and TestService) [default: 7233].
    #[arg(long, env = "CONVO_TEMPORAL_PORT", conflicts_with = "temporal_address")]
    temporal_port: Option<u16>,
    /// Run on this Temporal frontend (`host:port` or a URL, e.g. a `temporal server
    /// start-dev` and its Web UI) instead of the embedded devserver.
    #[arg(long, env = "TEMPORAL_ADDRESS")]
    temporal_address: Option<String>,
    /// Namespace on the external Temporal [default: default].
    #[arg(long, env = "TEMPORAL_NAMESPACE", requires = "temporal_address")]
    namespace: Option<String>,
    /// Also serve Prometheus metrics on `http://ADDRESS/metrics`, as `convo worker` does (the
    /// HTTP API's `/metrics` serves the same) [default: no extra endpoint].
    #[arg(long, env = "CONVO_METRICS_ADDRESS")]
    metrics_address: Option<SocketAddr>,
    /// The dev workspace's API key (created on first start when unset).
    #[arg(long, env = "CONVO_DEV_API_KEY", hide_env_values = true)]
    dev_api_key: Option<String>,
    /// TOML configuration file [default: ./convo.toml if present].
    #[arg(long, env = "CONVO_CONFIG")]
    config: Option<PathBuf>,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<ServeConfig> {
        let defaults = ServeConfig::default();
        let built_in = FileConfig {
            serve: ServeSection {
                data_dir: Some(PathBuf::from(".convo")),
                http_addr: Some(defaults.http_addr),
                grpc_addr: Some(defaults.grpc_addr),
                temporal_port: Some(defaults.temporal_addr.port()),
                temporal_address: None,
                namespace: Some("default".to_owned()),
            },
            ..FileConfig::default()
        };
        let flags = FileConfig {
            serve: ServeSection {
                data_dir: self.data_dir,
                http_addr: self.http_addr,
                grpc_addr: self.grpc_addr,
                temporal_port: self.temporal_port,
                temporal_address: self.temporal_address,
                namespace: self.namespace,
            },
            database_url: std::env::var("DATABASE_URL").ok(),
            ..FileConfig::default()
        };
        let file = Layers::new(&built_in).file(self.config.as_deref())?.layer(&flags).extract()?;
        let serve = file.serve;
        let temporal = match serve.temporal_address {
            Some(address) => Some(ExternalTemporal {
                url: temporal_url(&address, false)?,
                namespace: required(serve.namespace, "serve.namespace")?,
            }),
            None => None,
        };
        let port = required(serve.temporal_port, "serve.temporal_port")?;
        Ok(ServeConfig {
            temporal,
            data_dir: serve.data_dir,
            http_addr: required(serve.http_addr, "serve.http_addr")?,
            grpc_addr: required(serve.grpc_addr, "serve.grpc_addr")?,
            temporal_addr: SocketAddr::new(defaults.temporal_addr.ip(), port),
            dev_api_key: self.dev_api_key,
            metrics_addr: self.metrics_address,
            database_url: file.database_url,
            ..defaults
        })
    }
}

/// Starts the stack, prints where everything is, and serves until `shutdown`.
pub(crate) async fn run(
    args: ServeArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = args.into_config()?;
    let data_dir = config.data_dir.clone();
    let stack = Stack::start(config).await.context("starting convo serve")?;
    println!("convo serve");
    println!("  http      http://{}", stack.http_addr);
    println!("  grpc      {}", stack.grpc_addr);
    println!("  metrics   http://{}/metrics", stack.metrics_addr.unwrap_or(stack.http_addr));
    if stack.embedded() {
        println!("  temporal  {} (WorkflowService, TestService)", stack.temporal_addr);
    } else {
        println!("  temporal  {} (external)", stack.temporal_addr);
    }
    if let Some(dir) = &data_dir {
        println!("  data      {}", dir.display());
    }
    println!("  workspace {} (API key {})", convo::serve::DEV_WORKSPACE, stack.dev_api_key);
    shutdown.await;
    tracing::info!("shutting down");
    stack.shutdown().await
}
