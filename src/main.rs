//! `convo`: the command-line entry point.
//!
//! Deliberately thin: parse the arguments, install telemetry, hand over to the
//! subcommand. Everything a test would want to drive lives in a library crate
//! (here `convo-devserver`), so tests never go through this binary.

mod cli;
mod commands;
mod telemetry;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some(args) = commands::devserver::drop_in(&argv) {
        return commands::devserver::run(args, false, commands::shutdown_signal()).await;
    }
    let cli = cli::Cli::parse();
    telemetry::init(&cli.telemetry)?;
    cli.command.run().await
}
