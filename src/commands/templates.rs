//! `convo template add|list|remove`: a workspace's template registry, straight in the store,
//! through the same functions (and validation) as `/v1/templates` ([`convo_api::WorkspaceAdmin`]).

use clap::Subcommand;
use convo_api::{
    WorkspaceAdmin, WorkspaceId,
    app::{parse_channel, types::CreateTemplateRequest},
};
use convo_store::Store;

use super::settings::cli_error;

/// `convo template …`
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process; boxing buys nothing
pub(crate) enum TemplateCommand {
    /// Registers a template (the same template again is not an error; another one under a
    /// taken name is).
    Add {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// Unique in the workspace: letters, digits, `_`, `-` and `.`.
        #[arg(long)]
        name: String,
        /// whatsapp, sms, rcs, messenger, instagram or email.
        #[arg(long)]
        channel: String,
        /// Its language (`en`, `en_US`, `pt-BR`).
        #[arg(long)]
        language: String,
        /// The text, with `{{1}}`, `{{2}}`, ... or `{{name}}` placeholders.
        #[arg(long)]
        body: String,
        /// A variable the body uses (repeat, or separate with commas), in order.
        #[arg(long = "variable", value_delimiter = ',')]
        variables: Vec<String>,
        /// MARKETING, UTILITY (the default) or AUTHENTICATION.
        #[arg(long)]
        category: Option<String>,
        /// APPROVED (the default), PENDING or REJECTED; only approved templates are sent.
        #[arg(long)]
        status: Option<String>,
        /// A header line, with at most one placeholder.
        #[arg(long)]
        header: Option<String>,
        /// A footer line.
        #[arg(long)]
        footer: Option<String>,
        /// An e-mail template's subject; its placeholders are the body's.
        #[arg(long)]
        subject: Option<String>,
        /// A button as JSON (repeat): `{"kind":"url","text":"Track","url":"https://…/{{1}}"}`.
        #[arg(long = "button")]
        buttons: Vec<String>,
        /// A carousel card as JSON (repeat): `{"header":"{{1}}","body":"…","buttons":[…]}`.
        #[arg(long = "card")]
        cards: Vec<String>,
    },
    /// Lists the workspace's templates.
    List {
        /// The workspace.
        #[arg(long)]
        workspace: String,
    },
    /// Removes a template by name.
    Remove {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// The template's name.
        name: String,
        /// Its channel, when the name is registered on more than one.
        #[arg(long)]
        channel: Option<String>,
    },
}

/// Runs `command` on `store` and answers what to print.
pub(crate) async fn run(store: &Store, command: TemplateCommand) -> anyhow::Result<String> {
    let admin = WorkspaceAdmin::new(store.clone());
    Ok(match command {
        TemplateCommand::Add {
            workspace,
            name,
            channel,
            language,
            body,
            variables,
            category,
            status,
            header,
            footer,
            subject,
            buttons,
            cards,
        } => {
            let ws = WorkspaceId(workspace);
            let channel = parse_channel("channel", &channel).map_err(cli_error)?;
            let req = CreateTemplateRequest {
                name,
                channel,
                language,
                body,
                variables,
                category: category.map(|c| flag("--category", &c)).transpose()?,
                status: status.map(|s| flag("--status", &s)).transpose()?,
                header,
                footer,
                subject,
                buttons: buttons
                    .iter()
                    .map(|b| json_flag("--button", b))
                    .collect::<Result<_, _>>()?,
                cards: cards.iter().map(|c| json_flag("--card", c)).collect::<Result<_, _>>()?,
            };
            let t = admin.create_template(&ws, req).await.map_err(cli_error)?;
            format!(
                "template {} ({}, {}) in {} with variables [{}]",
                t.name,
                t.channel.as_str(),
                t.language,
                ws.as_str(),
                t.variables.join(", ")
            )
        }
        TemplateCommand::List { workspace } => {
            let ws = WorkspaceId(workspace);
            let list = admin.templates(&ws).await.map_err(cli_error)?;
            list.data
                .iter()
                .map(|t| {
                    format!(
                        "{}\t{}\t{}\t[{}]\t{}\t{}\t{}",
                        t.name,
                        t.channel.as_str(),
                        t.language,
                        t.variables.join(","),
                        t.body,
                        t.category.as_str(),
                        t.status.as_str()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        TemplateCommand::Remove { workspace, name, channel } => {
            let ws = WorkspaceId(workspace);
            admin.delete_template(&ws, &name, channel.as_deref()).await.map_err(cli_error)?;
            format!("removed template {name} from {}", ws.as_str())
        }
    })
}

/// An upper-case name flag (`--category utility` reads as `UTILITY`).
fn flag<T: serde::de::DeserializeOwned>(name: &str, value: &str) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::Value::String(value.trim().to_uppercase()))
        .map_err(|_| anyhow::anyhow!("{name}: {value:?} is not one of the accepted values"))
}

/// A JSON object flag.
fn json_flag<T: serde::de::DeserializeOwned>(name: &str, value: &str) -> anyhow::Result<T> {
    serde_json::from_str(value).map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

#[cfg(test)]
mod tests {
    use crate::commands::admin::tests::run;

    #[tokio::test]
    async fn components_category_and_status_are_flags() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        run(d, &["workspace", "create", "acme"]).await.unwrap();
        run(
            d,
            &[
                "template",
                "add",
                "--workspace",
                "acme",
                "--name",
                "shipped",
                "--channel",
                "whatsapp",
                "--language",
                "en",
                "--body",
                "Hi {{1}}, order {{2}} shipped",
                "--variable",
                "1,2",
                "--category",
                "marketing",
                "--status",
                "pending",
                "--header",
                "Order {{2}}",
                "--button",
                r#"{"kind":"url","text":"Track","url":"https://shop.example/t/{{2}}"}"#,
            ],
        )
        .await
        .unwrap();
        let list = run(d, &["template", "list", "--workspace", "acme"]).await.unwrap();
        assert!(list.ends_with("\tMARKETING\tPENDING"), "{list}");
        let store = convo_store::Store::open_sqlite(d.join("convo.db")).await.unwrap();
        let t = store.template("acme", convo_domain::Channel::Whatsapp, "shipped").await.unwrap();
        assert_eq!(t.components.header.as_deref(), Some("Order {{2}}"));
        assert_eq!(t.components.buttons[0].url.as_deref(), Some("https://shop.example/t/{{2}}"));

        let bad = run(
            d,
            &[
                "template",
                "add",
                "--workspace",
                "acme",
                "--name",
                "x",
                "--channel",
                "sms",
                "--language",
                "en",
                "--body",
                "Hi",
                "--category",
                "spam",
            ],
        )
        .await
        .unwrap_err();
        assert!(format!("{bad:#}").contains("--category"), "{bad:#}");
    }

    #[tokio::test]
    async fn templates_are_added_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        run(d, &["workspace", "create", "acme"]).await.unwrap();
        let out = run(
            d,
            &[
                "template",
                "add",
                "--workspace",
                "acme",
                "--name",
                "order_shipped",
                "--channel",
                "whatsapp",
                "--language",
                "en_US",
                "--body",
                "Hi {{1}}, order {{2}} shipped",
                "--variable",
                "1,2",
            ],
        )
        .await
        .unwrap();
        assert_eq!(out, "template order_shipped (whatsapp, en_US) in acme with variables [1, 2]");
        run(
            d,
            &[
                "template",
                "add",
                "--workspace",
                "acme",
                "--name",
                "welcome",
                "--channel",
                "email",
                "--language",
                "en",
                "--body",
                "Welcome, {{name}}",
                "--variable",
                "name",
            ],
        )
        .await
        .unwrap();
        let list = run(d, &["template", "list", "--workspace", "acme"]).await.unwrap();
        let names: Vec<&str> = list.lines().map(|l| l.split('\t').next().unwrap()).collect();
        assert_eq!(names, ["order_shipped", "welcome"]);
        assert!(
            list.contains("order_shipped\twhatsapp\ten_US\t[1,2]\tHi {{1}}, order {{2}} shipped")
        );

        let fail = |argv: &'static [&'static str]| {
            let d = d.to_path_buf();
            async move { format!("{:#}", run(&d, argv).await.unwrap_err()) }
        };
        let message = fail(&[
            "template",
            "add",
            "--workspace",
            "acme",
            "--name",
            "x",
            "--channel",
            "sms",
            "--language",
            "en",
            "--body",
            "Hi {{1}}",
        ])
        .await;
        assert!(
            message.contains("--body: uses {{1}}, which variables does not declare"),
            "{message}"
        );
        let message = fail(&[
            "template",
            "add",
            "--workspace",
            "acme",
            "--name",
            "x",
            "--channel",
            "sms",
            "--language",
            "en",
            "--body",
            "Hi",
            "--variable",
            "1",
        ])
        .await;
        assert!(message.contains("--variable: {{1}} is not used in body"), "{message}");
        let message = fail(&[
            "template",
            "add",
            "--workspace",
            "acme",
            "--name",
            "bad name",
            "--channel",
            "sms",
            "--language",
            "en",
            "--body",
            "Hi",
        ])
        .await;
        assert!(message.contains("--name: may contain only"), "{message}");
        let message = fail(&[
            "template",
            "add",
            "--workspace",
            "acme",
            "--name",
            "order_shipped",
            "--channel",
            "whatsapp",
            "--language",
            "en",
            "--body",
            "Other",
        ])
        .await;
        assert!(message.contains("already exists"), "{message}");
        // The same name on another channel is another template; removing it then needs the
        // channel.
        let sms = [
            "template",
            "add",
            "--workspace",
            "acme",
            "--name",
            "order_shipped",
            "--channel",
            "sms",
            "--language",
            "en",
            "--body",
            "Other",
        ];
        run(d, &sms).await.unwrap();
        let message = fail(&["template", "remove", "--workspace", "acme", "order_shipped"]).await;
        assert!(
            message.starts_with("--channel: ") && message.contains("sms and whatsapp"),
            "{message}"
        );
        let argv =
            ["template", "remove", "--workspace", "acme", "order_shipped", "--channel", "sms"];
        run(d, &argv).await.unwrap();

        let out = run(d, &["template", "remove", "--workspace", "acme", "welcome"]).await.unwrap();
        assert_eq!(out, "removed template welcome from acme");
        let message = fail(&["template", "remove", "--workspace", "acme", "welcome"]).await;
        assert!(message.contains("template welcome not found"), "{message}");
        let list = run(d, &["template", "list", "--workspace", "acme"]).await.unwrap();
        assert_eq!(list.lines().count(), 1);
    }
}
