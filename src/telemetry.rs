//! Installs the process-wide `tracing` subscriber.
//!
//! The application owns the global subscriber (STYLE.md §4 item 12); libraries only emit
//! events. Logs go to stderr so stdout stays free for what a command prints on purpose,
//! such as the devserver's "listening on" line that scripts wait for.

use std::io::IsTerminal;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use crate::cli::{LogFormat, TelemetryArgs};

pub(crate) fn init(args: &TelemetryArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&args.log_level)
        .with_context(|| format!("invalid --log-level {:?}", args.log_level))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match args.log_format {
        LogFormat::Pretty => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!(e)).context("installing the tracing subscriber")
}
