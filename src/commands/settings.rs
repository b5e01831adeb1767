//! `convo workspace set-rates|set-policy|set-compliance|set-ping|top-up|show`: a workspace's
//! configuration, straight in the store, through the same functions (and so the same
//! validation) as the API's `/v1/workspace/...` routes ([`convo_api::WorkspaceAdmin`]).
//!
//! Changes apply to sessions that open afterwards; a running session keeps its configuration.

use clap::{Args, Subcommand};
use convo_api::{
    ApiError, WorkspaceAdmin, WorkspaceId,
    app::parse_channel,
    app::types::{
        ComplianceIn, InactivityPing, PolicyOverridesIn, Rates, SettingsOut, TopUpRequest,
        TopUpsQuery,
    },
};
use convo_domain::{Channel, Gate, WindowMode};
use convo_store::{Actor, Store};
use serde::de::DeserializeOwned;

/// The configuration subcommands of `convo workspace`.
#[derive(Debug, Subcommand)]
pub(crate) enum SettingsCommand {
    /// Sets a channel's prices, in minor units.
    SetRates(SetRates),
    /// Sets a channel's window policy overrides; a flag not given keeps the channel's default
    /// (none at all restores the defaults).
    SetPolicy(SetPolicy),
    /// Sets the help and opt-out/opt-in confirmation texts (those not given keep their value).
    SetCompliance(SetCompliance),
    /// Sets the inactivity ping (a text or a registered template), or turns it off (--off).
    SetPing(SetPing),
    /// Credits the balance, recording who (--by) and why (--reason) in the ledger.
    TopUp(TopUp),
    /// Prints the settings, the balance and the latest top-ups as JSON.
    Show(Show),
}

/// `convo workspace set-rates`.
#[derive(Debug, Args)]
pub(crate) struct SetRates {
    /// The workspace.
    #[arg(long)]
    workspace: String,
    /// whatsapp, sms, rcs, messenger, instagram or email.
    #[arg(long)]
    channel: String,
    /// Held when a billing session's first free-form send goes out.
    #[arg(long)]
    conversation_unit: u64,
    /// Per business-initiated message (MESSAGE).
    #[arg(long)]
    message: u64,
    /// Per broadcast message (NEWSLETTER).
    #[arg(long)]
    newsletter: u64,
}

/// `convo workspace set-policy`.
#[derive(Debug, Args)]
pub(crate) struct SetPolicy {
    /// The workspace.
    #[arg(long)]
    workspace: String,
    /// whatsapp, sms, rcs, messenger, instagram or email.
    #[arg(long)]
    channel: String,
    /// window, until_opt_in or never.
    #[arg(long, value_parser = snake_case::<Gate>)]
    gate: Option<Gate>,
    /// fixed or sliding.
    #[arg(long, value_parser = snake_case::<WindowMode>)]
    mode: Option<WindowMode>,
    /// The window's length in seconds.
    #[arg(long)]
    window_secs: Option<u64>,
    /// A billing session's length in seconds.
    #[arg(long)]
    billing_session_secs: Option<u64>,
    /// The human-agent allowance in seconds (0: none).
    #[arg(long)]
    human_agent_secs: Option<u64>,
}

/// `convo workspace set-compliance`.
#[derive(Debug, Args)]
pub(crate) struct SetCompliance {
    /// The workspace.
    #[arg(long)]
    workspace: String,
    /// The reply to HELP / INFO.
    #[arg(long)]
    help_text: Option<String>,
    /// The one confirmation sent after an opt-out (STOP).
    #[arg(long)]
    opt_out_confirmation: Option<String>,
    /// The confirmation sent after an opt-in (START).
    #[arg(long)]
    opt_in_confirmation: Option<String>,
}

/// `convo workspace set-ping`.
#[derive(Debug, Args)]
pub(crate) struct SetPing {
    /// The workspace.
    #[arg(long)]
    workspace: String,
    /// Seconds of silence after the contact's latest message.
    #[arg(long, required_unless_present = "off")]
    after_secs: Option<u64>,
    /// The text to send.
    #[arg(long, conflicts_with = "template")]
    text: Option<String>,
    /// Its subject line (e-mail).
    #[arg(long)]
    subject: Option<String>,
    /// A template of the workspace's registry to send instead.
    #[arg(long)]
    template: Option<String>,
    /// Turn the ping off.
    #[arg(long, conflicts_with_all = ["after_secs", "text", "subject", "template"])]
    off: bool,
}

/// `convo workspace top-up`.
#[derive(Debug, Args)]
pub(crate) struct TopUp {
    /// The workspace.
    #[arg(long)]
    workspace: String,
    /// How much, in minor units.
    #[arg(long)]
    amount: u64,
    /// Why (kept in the ledger).
    #[arg(long)]
    reason: String,
    /// Who is topping up (kept in the ledger).
    #[arg(long)]
    by: String,
    /// Applies the top-up once: running it again with the same key credits nothing (the
    /// API's Idempotency-Key space, so an API retry with the key is the same top-up too).
    #[arg(long)]
    idempotency_key: Option<String>,
}

/// `convo workspace show`.
#[derive(Debug, Args)]
pub(crate) struct Show {
    /// The workspace.
    #[arg(long)]
    workspace: String,
}

/// A value spelled as the API spells it (`until_opt_in`, `fixed`).
fn snake_case<T: DeserializeOwned>(value: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(value.to_owned())).map_err(|e| e.to_string())
}

/// The flag an API field comes from.
fn flag(field: &str) -> String {
    if field == "help" {
        return "--help-text".to_owned();
    }
    if field.starts_with("variables") {
        return "--variable".to_owned();
    }
    format!("--{}", field.replace('_', "-"))
}

/// An application error as the CLI reports it: the flag at fault, then what is wrong.
pub(crate) fn cli_error(e: ApiError) -> anyhow::Error {
    match &e.field {
        Some(field) => anyhow::anyhow!("{}: {}", flag(field), e.message),
        None => anyhow::anyhow!("{}", e.message),
    }
}

fn rates_line(ws: &str, channel: Channel, s: &SettingsOut) -> String {
    let r = s.rates[&channel];
    format!(
        "{} rates of {ws}: conversation_unit {}, message {}, newsletter {}",
        channel.as_str(),
        r.conversation_unit,
        r.message,
        r.newsletter
    )
}

fn policy_line(ws: &str, channel: Channel, s: &SettingsOut) -> String {
    let p = s.policies[&channel].effective;
    format!(
        "{} policy of {ws}: gate {}, {} window of {} s, billing session {} s, human agent {} s",
        channel.as_str(),
        spell(p.gate),
        spell(p.mode),
        p.window_secs,
        p.billing_session_secs,
        p.human_agent_secs
    )
}

/// A snake-case enum's serde spelling, for the summary lines.
fn spell(value: impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn ping_line(ws: &str, s: &SettingsOut) -> String {
    match &s.inactivity_ping {
        None => format!("inactivity ping of {ws}: off"),
        Some(p) => match (&p.text, &p.template) {
            (_, Some(t)) => {
                format!("inactivity ping of {ws}: after {} s, template {t}", p.after_secs)
            }
            (text, None) => format!(
                "inactivity ping of {ws}: after {} s, text {:?}",
                p.after_secs,
                text.as_deref().unwrap_or_default()
            ),
        },
    }
}

/// Runs `command` on `store` and answers what to print.
pub(crate) async fn run(store: &Store, command: SettingsCommand) -> anyhow::Result<String> {
    let admin = WorkspaceAdmin::new(store.clone());
    let out = match command {
        SettingsCommand::SetRates(a) => {
            let ws = WorkspaceId(a.workspace);
            let rates = Rates {
                conversation_unit: a.conversation_unit,
                message: a.message,
                newsletter: a.newsletter,
            };
            let channel = parse_channel("channel", &a.channel).map_err(cli_error)?;
            let s = admin.set_rates(&ws, channel.as_str(), rates).await.map_err(cli_error)?;
            rates_line(ws.as_str(), channel, &s)
        }
        SettingsCommand::SetPolicy(a) => {
            let ws = WorkspaceId(a.workspace);
            let overrides = PolicyOverridesIn {
                gate: a.gate,
                mode: a.mode,
                window_secs: a.window_secs,
                billing_session_secs: a.billing_session_secs,
                human_agent_secs: a.human_agent_secs,
            };
            let channel = parse_channel("channel", &a.channel).map_err(cli_error)?;
            let s = admin.set_policy(&ws, channel.as_str(), overrides).await.map_err(cli_error)?;
            policy_line(ws.as_str(), channel, &s)
        }
        SettingsCommand::SetCompliance(a) => {
            if a.help_text.is_none()
                && a.opt_out_confirmation.is_none()
                && a.opt_in_confirmation.is_none()
            {
                anyhow::bail!(
                    "give --help-text, --opt-out-confirmation and/or --opt-in-confirmation"
                );
            }
            let ws = WorkspaceId(a.workspace);
            let texts = ComplianceIn {
                help: a.help_text,
                opt_out_confirmation: a.opt_out_confirmation,
                opt_in_confirmation: a.opt_in_confirmation,
            };
            let s = admin.set_compliance(&ws, texts).await.map_err(cli_error)?;
            format!(
                "compliance texts of {}:\n  help: {}\n  opt-out confirmation: {}\n  opt-in confirmation: {}",
                ws.as_str(),
                s.compliance.help,
                s.compliance.opt_out_confirmation,
                s.compliance.opt_in_confirmation
            )
        }
        SettingsCommand::SetPing(a) => {
            let ws = WorkspaceId(a.workspace);
            let s = if a.off {
                admin.clear_inactivity_ping(&ws).await
            } else {
                let ping = InactivityPing {
                    after_secs: a.after_secs.unwrap_or_default(),
                    text: a.text,
                    subject: a.subject,
                    template: a.template,
                };
                admin.set_inactivity_ping(&ws, ping).await
            }
            .map_err(cli_error)?;
            ping_line(ws.as_str(), &s)
        }
        SettingsCommand::TopUp(a) => {
            let ws = WorkspaceId(a.workspace);
            let req = TopUpRequest { amount: a.amount, reason: a.reason };
            let key = a.idempotency_key.as_deref();
            let t = admin.top_up(&ws, Actor::Operator(a.by), req, key).await.map_err(cli_error)?;
            let by = t.by.as_ref().map(|b| format!("{} {}", b.kind, b.id)).unwrap_or_default();
            let b = t.balance_after.unwrap_or_default();
            format!(
                "top-up {} of {} to {} by {by}: balance free {}, reserved {}, total {}",
                t.id,
                t.amount,
                ws.as_str(),
                b.free,
                b.reserved,
                b.total
            )
        }
        SettingsCommand::Show(a) => {
            let ws = WorkspaceId(a.workspace);
            let settings = admin.settings(&ws).await.map_err(cli_error)?;
            let balance = admin.balance(&ws).await.map_err(cli_error)?;
            let top_ups =
                admin.top_ups(&ws, TopUpsQuery { limit: Some(20) }).await.map_err(cli_error)?.data;
            serde_json::to_string_pretty(&serde_json::json!({
                "settings": settings,
                "balance": balance,
                "top_ups": top_ups,
            }))?
        }
    };
    Ok(out)
}

#[cfg(test)]
mod tests;
