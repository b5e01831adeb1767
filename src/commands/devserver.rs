//! `convo devserver`: run the embedded Temporal-compatible server until a shutdown signal.
//!
//! The flags are parsed by [`convo_devserver::launch`], shared with the `convo-devserver`
//! binary, so both accept exactly what SDK harnesses pass to `temporal server start-dev` and
//! to the Java test server. For a harness that launches `convo` itself as an existing
//! binary, `convo server start-dev …` and `convo <port> [--enable-time-skipping]` are routed
//! here too (see [`drop_in`]).

use std::future::Future;

use anyhow::Context;
use clap::Args;
use convo_devserver::{DEFAULT_NAMESPACE, DevServer, DevServerHandle, launch};

use crate::{
    cli::{LogFormat, TelemetryArgs},
    telemetry,
};

/// Options of `convo devserver`: those of `temporal server start-dev`, or the Java test
/// server's `<port> [--enable-time-skipping]`.
#[derive(Debug, Args)]
#[command(after_help = launch::USAGE, disable_help_flag = true)]
pub(crate) struct DevserverArgs {
    /// `--port P --ip IP --namespace NS --db-filename F --search-attribute NAME=TYPE …`
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "FLAGS")]
    args: Vec<String>,
}

impl DevserverArgs {
    pub(crate) fn into_args(self) -> Vec<String> {
        self.args
    }
}

/// The devserver's arguments when `argv` (without the program name) is one of the
/// drop-in forms, which bypass clap so their flags never clash with `convo`'s own.
pub(crate) fn drop_in(argv: &[String]) -> Option<Vec<String>> {
    match argv.first().map(String::as_str) {
        Some("devserver") => Some(argv[1..].to_vec()),
        Some("server") => Some(argv.to_vec()),
        Some(first) if first.parse::<u16>().is_ok() => Some(argv.to_vec()),
        _ => None,
    }
}

/// Parses `args`, starts the server, prints where it listens, and serves until `shutdown`.
/// Telemetry is installed here from the devserver's own `--log-*` flags unless the caller
/// already did.
pub(crate) async fn run(
    args: Vec<String>,
    telemetry_ready: bool,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let launch = launch::parse(&args).map_err(|e| anyhow::anyhow!(e))?;
    if launch.help {
        println!("{}", launch::USAGE);
        return Ok(());
    }
    if !telemetry_ready {
        telemetry::init(&TelemetryArgs {
            log_level: launch.log_level.clone().unwrap_or_else(|| "info".into()),
            log_format: if launch.log_format.as_deref() == Some("json") {
                LogFormat::Json
            } else {
                LogFormat::Pretty
            },
        })?;
    }
    let handle = start(launch).await?;
    shutdown.await;
    tracing::info!("shutdown signal received, stopping devserver");
    handle.shutdown().await;
    Ok(())
}

async fn start(launch: launch::Launch) -> anyhow::Result<DevServerHandle> {
    for note in &launch.notes {
        tracing::warn!("{note}");
    }
    let namespaces = launch.config.namespaces.clone();
    let handle = DevServer::start(launch.config).await.context("starting the devserver")?;
    println!("{}", banner(&handle, &namespaces));
    Ok(handle)
}

fn banner(handle: &DevServerHandle, extra: &[String]) -> String {
    let mut names = vec![DEFAULT_NAMESPACE];
    names.extend(extra.iter().map(String::as_str));
    format!("devserver listening on {} (namespaces: {})", handle.addr(), names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn drop_in_forms_are_recognised() {
        assert_eq!(drop_in(&argv(&["devserver", "--port", "1"])), Some(argv(&["--port", "1"])));
        assert_eq!(
            drop_in(&argv(&["server", "start-dev", "--port", "1"])),
            Some(argv(&["server", "start-dev", "--port", "1"]))
        );
        assert_eq!(
            drop_in(&argv(&["7233", "--enable-time-skipping"])),
            Some(argv(&["7233", "--enable-time-skipping"]))
        );
        assert_eq!(drop_in(&argv(&["--log-level", "debug", "devserver"])), None);
        assert_eq!(drop_in(&argv(&["help"])), None);
    }

    #[tokio::test]
    async fn serves_on_an_ephemeral_port_until_shut_down() {
        let launch = launch::parse(&["--port", "0", "-n", "tenant-a", "-n", "default"]).unwrap();
        let handle = start(launch).await.unwrap();
        let addr = handle.addr();
        assert_ne!(addr.port(), 0);
        assert_eq!(
            banner(&handle, &["tenant-a".to_owned()]),
            format!("devserver listening on {addr} (namespaces: default, tenant-a)")
        );
        tokio::net::TcpStream::connect(addr).await.expect("listener accepts connections");
        handle.shutdown().await;
    }
}
