//! `convo workspace`, `convo channel`, `convo template` and `convo api-key`: manage what the API
//! serves, directly in the store (`--data-dir`'s SQLite file, or `DATABASE_URL`). A workspace's
//! configuration (`set-rates`, `set-policy`, ...) is in [`super::settings`], its templates in
//! [`super::templates`].

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use convo_activities::providers::ProviderConfig;
use convo_domain::{Channel, WorkspaceSettings};
use convo_store::{ApiKeyScope, ChannelConfig, Store};

/// Where the store is.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// The data directory of `convo serve` [default: ./.convo].
    #[arg(long, env = "CONVO_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// A database URL instead (Postgres in production).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,
}

impl StoreArgs {
    pub(crate) async fn open(&self) -> anyhow::Result<Store> {
        let store = match &self.database_url {
            Some(url) => Store::connect(url).await,
            None => {
                let dir = self.data_dir.clone().unwrap_or_else(|| PathBuf::from(".convo"));
                std::fs::create_dir_all(&dir)?;
                Store::open_sqlite(dir.join("convo.db")).await
            }
        };
        store.context("opening the store")
    }
}

/// `convo workspace …`
#[derive(Debug, Subcommand)]
pub(crate) enum WorkspaceCommand {
    /// Creates (or renames) a workspace with default settings.
    Create {
        /// Its id.
        id: String,
        /// Display name [default: the id].
        #[arg(long)]
        name: Option<String>,
    },
    /// Lists the workspaces.
    List,
    #[command(flatten)]
    Configure(super::settings::SettingsCommand),
}

/// `convo channel …`
#[derive(Debug, Subcommand)]
pub(crate) enum ChannelCommand {
    /// Adds (or replaces) a workspace's channel.
    Add {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// whatsapp, sms, rcs, messenger, instagram or email.
        #[arg(long)]
        kind: String,
        /// The business's address on the channel (phone number id, from number, from e-mail).
        #[arg(long)]
        sender: String,
        /// The provider configuration as JSON, tagged by `provider`
        /// (`whatsapp_cloud`, `twilio`, `rbm`, `smtp`, `sandbox_native`).
        #[arg(long)]
        provider_config: String,
    },
}

/// `convo api-key …`
#[derive(Debug, Subcommand)]
pub(crate) enum ApiKeyCommand {
    /// Creates a key and prints it once (only its hash is stored).
    Create {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// A label for the key.
        #[arg(long, default_value = "cli")]
        name: String,
        /// What the key may do: `read` (GET only), `send` (also messages, conversations and
        /// windows) or `admin` (also settings, rates, top-ups, webhook endpoints, templates).
        #[arg(long, default_value = "admin", value_parser = parse_scope)]
        scope: ApiKeyScope,
    },
    /// Lists the workspace's keys: id, prefix, scope, name, and when each was created, last
    /// used (to the minute) and revoked.
    List {
        /// The workspace.
        #[arg(long)]
        workspace: String,
    },
    /// Revokes a key by id; it authenticates nothing from the next request on.
    Revoke {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// The key's id (as `create` printed it).
        id: String,
    },
}

pub(crate) async fn workspace(store: &StoreArgs, command: WorkspaceCommand) -> anyhow::Result<()> {
    let store = store.open().await?;
    match command {
        WorkspaceCommand::Create { id, name } => {
            let name = name.unwrap_or_else(|| id.clone());
            let settings = match store.workspace(&id).await {
                Ok(existing) => existing.settings,
                Err(_) => WorkspaceSettings::default(),
            };
            let w = store.upsert_workspace(&id, &name, &settings).await?;
            println!("workspace {} ({})", w.id, w.name);
        }
        WorkspaceCommand::List => {
            for w in store.workspaces().await? {
                println!("{}\t{}", w.id, w.name);
            }
        }
        WorkspaceCommand::Configure(command) => {
            let out = super::settings::run(&store, command).await;
            store.close().await;
            println!("{}", out?);
            return Ok(());
        }
    }
    store.close().await;
    Ok(())
}

pub(crate) async fn template(
    store: &StoreArgs,
    command: super::templates::TemplateCommand,
) -> anyhow::Result<()> {
    let store = store.open().await?;
    let out = super::templates::run(&store, command).await;
    store.close().await;
    let out = out?;
    if !out.is_empty() {
        println!("{out}");
    }
    Ok(())
}

pub(crate) async fn channel(store: &StoreArgs, command: ChannelCommand) -> anyhow::Result<()> {
    let store = store.open().await?;
    match command {
        ChannelCommand::Add { workspace, kind, sender, provider_config } => {
            let config = channel_config(workspace, &kind, sender, &provider_config)?;
            let c = store.upsert_channel(&config).await?;
            println!("channel {} ({} via {}, {})", c.id, c.channel, c.provider, c.sender);
        }
    }
    store.close().await;
    Ok(())
}

/// The channel `convo channel add` stores. The provider configuration is checked against its
/// provider's schema (an unknown key is an error naming it) and stored as the schema
/// re-serialises it, so what is stored is exactly what the adapters and the inbound
/// signature checks read.
fn channel_config(
    workspace: String,
    kind: &str,
    sender: String,
    provider_config: &str,
) -> anyhow::Result<ChannelConfig> {
    let channel = Channel::ALL
        .into_iter()
        .find(|c| c.as_str() == kind)
        .with_context(|| format!("--kind: unknown channel {kind:?}"))?;
    let parsed: ProviderConfig =
        serde_json::from_str(provider_config).context("--provider-config")?;
    let config = serde_json::to_value(&parsed)?;
    let provider = config["provider"].as_str().unwrap_or_default().to_owned();
    Ok(ChannelConfig {
        id: String::new(),
        workspace_id: workspace,
        channel,
        provider,
        config,
        sender,
        enabled: true,
    })
}

fn parse_scope(name: &str) -> Result<ApiKeyScope, String> {
    ApiKeyScope::parse(name).ok_or_else(|| "must be one of read, send, admin".to_owned())
}

pub(crate) async fn api_key(store: &StoreArgs, command: ApiKeyCommand) -> anyhow::Result<()> {
    let store = store.open().await?;
    match command {
        ApiKeyCommand::Create { workspace, name, scope } => {
            store.workspace(&workspace).await?;
            let created = store.create_scoped_api_key(&workspace, &name, scope).await?;
            println!("key id  {}", created.key.id);
            println!("api key {}   (shown once)", created.secret);
            println!("scope   {scope}");
        }
        ApiKeyCommand::List { workspace } => {
            store.workspace(&workspace).await?;
            let when = |t: Option<convo_domain::Timestamp>| {
                t.map_or_else(|| "-".to_owned(), convo_store::webhooks::rfc3339)
            };
            println!(
                "{:<26} {:<13} {:<6} {:<24} {:<24} {:<24} name",
                "id", "prefix", "scope", "created", "last used", "revoked"
            );
            for key in store.api_keys(&workspace).await? {
                println!(
                    "{:<26} {:<13} {:<6} {:<24} {:<24} {:<24} {}",
                    key.id,
                    key.prefix,
                    key.scope,
                    when(Some(key.created_at)),
                    when(key.last_used_at),
                    when(key.revoked_at),
                    key.name
                );
            }
        }
        ApiKeyCommand::Revoke { workspace, id } => {
            let key = store.revoke_api_key(&workspace, &id).await?;
            println!("revoked {} ({})", key.id, key.prefix);
        }
    }
    store.close().await;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    /// The store of `--data-dir dir`, whatever `DATABASE_URL` says.
    pub(crate) fn store_args(dir: &Path) -> StoreArgs {
        StoreArgs { data_dir: Some(dir.to_path_buf()), database_url: None }
    }

    /// Parses `convo <argv>` and runs it against the store in `dir`; the configuration and
    /// template commands answer what they print.
    pub(crate) async fn run(dir: &Path, argv: &[&str]) -> anyhow::Result<String> {
        let cli = Cli::try_parse_from(std::iter::once("convo").chain(argv.iter().copied()))?;
        let args = store_args(dir);
        match cli.command {
            Command::Workspace { command: WorkspaceCommand::Configure(command), .. } => {
                let store = args.open().await?;
                let out = super::super::settings::run(&store, command).await;
                store.close().await;
                out
            }
            Command::Template { command, .. } => {
                let store = args.open().await?;
                let out = super::super::templates::run(&store, command).await;
                store.close().await;
                out
            }
            Command::Workspace { command, .. } => {
                workspace(&args, command).await.map(|()| String::new())
            }
            Command::Channel { command, .. } => {
                channel(&args, command).await.map(|()| String::new())
            }
            Command::ApiKey { command, .. } => {
                api_key(&args, command).await.map(|()| String::new())
            }
            other => anyhow::bail!("not an admin command: {other:?}"),
        }
    }

    #[tokio::test]
    async fn api_keys_are_created_with_a_scope() {
        let dir = tempfile::tempdir().unwrap();
        run(dir.path(), &["workspace", "create", "acme"]).await.unwrap();
        let create = ["api-key", "create", "--workspace", "acme", "--name", "dashboard"];
        run(dir.path(), &[&create[..], &["--scope", "read"]].concat()).await.unwrap();
        run(dir.path(), &["api-key", "create", "--workspace", "acme"]).await.unwrap();
        let wrong = run(dir.path(), &[&create[..], &["--scope", "root"]].concat()).await;
        let message = format!("{:#}", wrong.unwrap_err());
        assert!(message.contains("read, send, admin"), "{message}");
        let store = store_args(dir.path()).open().await.unwrap();
        let keys = store.api_keys("acme").await.unwrap();
        store.close().await;
        let scopes: Vec<(&str, ApiKeyScope)> =
            keys.iter().map(|k| (k.name.as_str(), k.scope)).collect();
        assert_eq!(scopes, [("dashboard", ApiKeyScope::Read), ("cli", ApiKeyScope::Admin)]);
    }

    #[tokio::test]
    async fn channel_add_keeps_the_whatsapp_app_secret() {
        let dir = tempfile::tempdir().unwrap();
        run(dir.path(), &["workspace", "create", "acme"]).await.unwrap();
        let config = r#"{"provider":"whatsapp_cloud","base_url":"https://graph.facebook.com",
            "api_version":"21.0","phone_number_id":"1234","access_token":"EAAG",
            "app_secret":"meta-app-secret",
            "default_language":"pt_BR","timeout_ms":5000}"#;
        let argv = ["channel", "add", "--workspace", "acme", "--kind", "whatsapp"];
        run(dir.path(), &[&argv[..], &["--sender", "1234", "--provider-config", config]].concat())
            .await
            .unwrap();
        let store = store_args(dir.path()).open().await.unwrap();
        let stored = store.channel("acme", Channel::Whatsapp).await.unwrap();
        store.close().await;
        assert_eq!(stored.provider, "whatsapp_cloud");
        // What the inbound signature check reads, and what the adapter reads.
        assert_eq!(stored.config["app_secret"], "meta-app-secret");
        let input: serde_json::Value = serde_json::from_str(config).unwrap();
        assert_eq!(stored.config, input, "every field is stored as given");
        let ProviderConfig::WhatsappCloud(wa) = serde_json::from_value(stored.config).unwrap()
        else {
            panic!("not a WhatsApp config");
        };
        assert_eq!(
            wa.app_secret.map(|s| s.expose().to_owned()).as_deref(),
            Some("meta-app-secret")
        );
    }

    #[test]
    fn channel_add_refuses_unknown_keys_by_name() {
        let config = r#"{"provider":"whatsapp_cloud","base_url":"https://graph.facebook.com",
            "phone_number_id":"1234","access_token":"EAAG","app_secert":"oops"}"#;
        let err = channel_config("acme".into(), "whatsapp", "1234".into(), config).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("--provider-config"), "{message}");
        assert!(message.contains("unknown field `app_secert`"), "{message}");
        for (provider, extra) in [
            ("twilio", r#""base_url":"x","account_sid":"AC","auth_token":"t""#),
            ("rbm", r#""base_url":"x","agent_id":"a","access_token":"t""#),
            ("smtp", r#""host":"smtp.example.com","port":587"#),
            ("sandbox_native", r#""base_url":"x""#),
        ] {
            let config = format!(r#"{{"provider":"{provider}",{extra},"surprise":1}}"#);
            let err = channel_config("acme".into(), "sms", "+1555".into(), &config).unwrap_err();
            assert!(format!("{err:#}").contains("unknown field `surprise`"), "{provider}: {err:#}");
        }
    }
}
