//! Argument parsing and dispatch for the `convo` binary.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands;

/// Conversation orchestrator for business messaging on Temporal.
#[derive(Debug, Parser)]
#[command(name = "convo", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) telemetry: TelemetryArgs,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Logging options shared by every subcommand (`global`, so they may follow it).
#[derive(Debug, Args)]
pub(crate) struct TelemetryArgs {
    /// Log filter: a level (`info`, `debug`, ...) or `tracing` env-filter directives
    /// such as `info,convo_devserver=debug`.
    #[arg(long, global = true, env = "CONVO_LOG_LEVEL", default_value = "info")]
    pub(crate) log_level: String,

    /// Log output format, written to stderr.
    #[arg(long, global = true, env = "CONVO_LOG_FORMAT", value_enum, default_value_t)]
    pub(crate) log_format: LogFormat,
}

/// How log lines are rendered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable, one line per event.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run everything in one process on embedded defaults: devserver, worker, store, sandbox
    /// provider, HTTP and gRPC APIs.
    Serve(commands::serve::ServeArgs),
    /// Run the worker (workflows, activities, webhook dispatcher) against a Temporal cluster.
    Worker(commands::production::WorkerArgs),
    /// Run the HTTP and gRPC APIs against a Temporal cluster.
    Api(commands::production::ApiArgs),
    /// Manage workspaces and their configuration (rates, policies, compliance texts, the
    /// inactivity ping, the balance).
    Workspace {
        #[command(flatten)]
        store: commands::admin::StoreArgs,
        #[command(subcommand)]
        command: commands::admin::WorkspaceCommand,
    },
    /// Manage a workspace's channels.
    Channel {
        #[command(flatten)]
        store: commands::admin::StoreArgs,
        #[command(subcommand)]
        command: commands::admin::ChannelCommand,
    },
    /// Manage a workspace's message templates.
    Template {
        #[command(flatten)]
        store: commands::admin::StoreArgs,
        #[command(subcommand)]
        command: commands::templates::TemplateCommand,
    },
    /// Manage API keys.
    ApiKey {
        #[command(flatten)]
        store: commands::admin::StoreArgs,
        #[command(subcommand)]
        command: commands::admin::ApiKeyCommand,
    },
    /// Run the embedded Temporal-compatible dev/test server (WorkflowService + TestService).
    Devserver(commands::devserver::DevserverArgs),
}

impl Command {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let shutdown = commands::shutdown_signal();
        match self {
            Self::Serve(args) => commands::serve::run(args, shutdown).await,
            Self::Worker(args) => commands::production::worker(args, shutdown).await,
            Self::Api(args) => commands::production::api(args, shutdown).await,
            Self::Workspace { store, command } => commands::admin::workspace(&store, command).await,
            Self::Channel { store, command } => commands::admin::channel(&store, command).await,
            Self::Template { store, command } => commands::admin::template(&store, command).await,
            Self::ApiKey { store, command } => commands::admin::api_key(&store, command).await,
            Self::Devserver(args) => {
                commands::devserver::run(args.into_args(), true, shutdown).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn telemetry_flags_are_accepted_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "convo",
            "devserver",
            "--log-level",
            "debug",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.telemetry.log_level, "debug");
        assert_eq!(cli.telemetry.log_format, LogFormat::Json);
    }

    #[test]
    fn a_subcommand_is_required() {
        assert!(Cli::try_parse_from(["convo"]).is_err());
    }
}
