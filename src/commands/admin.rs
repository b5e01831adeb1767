//! `convo workspace`, `convo channel` and `convo api-key`: manage what the API serves, directly
//! in the store (`--data-dir`'s SQLite file, or `DATABASE_URL`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use convo_activities::{
    providers::ProviderConfig,
    store::{ChannelConfig, Store},
};
use convo_domain::{Channel, WorkspaceSettings};

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
    async fn open(&self) -> anyhow::Result<Store> {
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
    },
    /// Revokes a key by id.
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
    }
    store.close().await;
    Ok(())
}

pub(crate) async fn channel(store: &StoreArgs, command: ChannelCommand) -> anyhow::Result<()> {
    let store = store.open().await?;
    match command {
        ChannelCommand::Add { workspace, kind, sender, provider_config } => {
            let channel = Channel::ALL
                .into_iter()
                .find(|c| c.as_str() == kind)
                .with_context(|| format!("--kind: unknown channel {kind:?}"))?;
            let config: ProviderConfig =
                serde_json::from_str(&provider_config).context("--provider-config")?;
            let provider =
                serde_json::to_value(&config)?["provider"].as_str().unwrap_or_default().to_owned();
            let c = store
                .upsert_channel(&ChannelConfig {
                    id: String::new(),
                    workspace_id: workspace,
                    channel,
                    provider,
                    config: serde_json::to_value(&config)?,
                    sender,
                    enabled: true,
                })
                .await?;
            println!("channel {} ({} via {}, {})", c.id, c.channel, c.provider, c.sender);
        }
    }
    store.close().await;
    Ok(())
}

pub(crate) async fn api_key(store: &StoreArgs, command: ApiKeyCommand) -> anyhow::Result<()> {
    let store = store.open().await?;
    match command {
        ApiKeyCommand::Create { workspace, name } => {
            store.workspace(&workspace).await?;
            let created = store.create_api_key(&workspace, &name).await?;
            println!("key id  {}", created.key.id);
            println!("api key {}   (shown once)", created.secret);
        }
        ApiKeyCommand::Revoke { workspace, id } => {
            let key = store.revoke_api_key(&workspace, &id).await?;
            println!("revoked {} ({})", key.id, key.prefix);
        }
    }
    store.close().await;
    Ok(())
}
