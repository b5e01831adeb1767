//! The shapes of workspace configuration: settings (rates, window policies, compliance texts,
//! the inactivity ping), balance top-ups and the template registry.

use std::collections::BTreeMap;

use convo_domain::{Channel, Gate, UseCase, WindowMode, billing::VolumeTier};
use convo_store::{
    TemplateButton, TemplateCard, TemplateCategory, TemplateComponents, TemplateStatus,
};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::BalanceOut;

/// The channel kinds, the keys of the per-channel maps.
const CHANNELS: [&str; 6] = ["whatsapp", "sms", "rcs", "messenger", "instagram", "email"];

/// A channel's prices, in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    /// Held when a billing session's first free-form send goes out; charged if the session
    /// carried a send, released otherwise.
    pub conversation_unit: u64,
    /// Per business-initiated message (`MESSAGE`).
    pub message: u64,
    /// Per broadcast message (`NEWSLETTER`).
    pub newsletter: u64,
}

/// Changes to a channel's default window policy; an absent field keeps the channel's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PolicyOverrides")]
pub struct PolicyOverridesIn {
    /// Whether free-form sends need an open window: `window`, `until_opt_in` or `never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
    /// `fixed` (the window ends `window_secs` after it opened) or `sliding` (after the latest
    /// message from the contact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WindowMode>,
    /// The window's length in seconds (1 to 31,622,400: 366 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 31_622_400))]
    pub window_secs: Option<u64>,
    /// A billing session's length in seconds (1 to 31,622,400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 31_622_400))]
    pub billing_session_secs: Option<u64>,
    /// How long a human agent may still reply free-form (0: no allowance; else at least
    /// `window_secs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 31_622_400))]
    pub human_agent_secs: Option<u64>,
}

/// The window policy in force on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WindowPolicyOut {
    /// Whether free-form sends need an open window.
    pub gate: Gate,
    /// Fixed or sliding.
    pub mode: WindowMode,
    /// The window's length in seconds.
    pub window_secs: u64,
    /// A billing session's length in seconds.
    pub billing_session_secs: u64,
    /// The human-agent allowance in seconds (0: none).
    pub human_agent_secs: u64,
}

/// A channel's policy: what the workspace overrides, and the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelPolicyOut {
    /// The workspace's overrides (empty: the channel's defaults).
    pub overrides: PolicyOverridesIn,
    /// The policy sessions opening now get.
    pub effective: WindowPolicyOut,
}

/// Replies to compliance keywords. In a request, an absent text keeps its current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ComplianceTextsUpdate")]
pub struct ComplianceIn {
    /// The reply to HELP / INFO (1 to 1,600 characters).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub help: Option<String>,
    /// The one confirmation sent after an opt-out (STOP and its synonyms).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub opt_out_confirmation: Option<String>,
    /// The confirmation sent when an opted-out contact opts back in (START).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub opt_in_confirmation: Option<String>,
}

/// Replies to compliance keywords.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "ComplianceTexts")]
pub struct ComplianceOut {
    /// The reply to HELP / INFO.
    pub help: String,
    /// The one confirmation sent after an opt-out.
    pub opt_out_confirmation: String,
    /// The confirmation sent after an opt-in.
    pub opt_in_confirmation: String,
}

/// The inactivity ping: after how long without a message from the contact, and what it sends,
/// a `text` (a free-form send, gated like any other) or a registered `template` (exactly one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InactivityPing {
    /// Seconds of silence after the contact's latest message (1 to 31,622,400).
    #[schemars(range(min = 1, max = 31_622_400))]
    pub after_secs: u64,
    /// The text to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Its subject line (e-mail); only with `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The name of a template in the workspace's registry, sent instead of a text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// `PATCH /v1/workspace/settings`: only what the body names changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// Per channel, its new prices.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"enum": CHANNELS}))]
    pub rates: BTreeMap<Channel, Rates>,
    /// Per channel, its new overrides (replacing the old ones; `{}` restores the defaults).
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"enum": CHANNELS}))]
    pub policies: BTreeMap<Channel, PolicyOverridesIn>,
    /// New compliance texts (absent ones keep their value).
    #[serde(default)]
    pub compliance: Option<ComplianceIn>,
    /// A new inactivity ping; `null` turns it off, absent leaves it.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<InactivityPing>")]
    pub inactivity_ping: Option<Option<InactivityPing>>,
    /// The ISO 4217 currency amounts are in (`EUR`); only while the ledger holds no money,
    /// since every amount is stored in its minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Per channel, its monthly volume tiers (replacing the old ones; `[]` removes them):
    /// bands with increasing `up_to` bounds, the last one unbounded or not.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"enum": CHANNELS}))]
    pub volume_tiers: BTreeMap<Channel, Vec<VolumeTier>>,
    /// Per channel, the use case its sender (an RBM agent) was approved for: `otp`,
    /// `transactional`, `promotional` or `multi_use`, which bounds the `traffic_type` of its
    /// sends; `null` removes it (any traffic type).
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"enum": CHANNELS}))]
    pub use_cases: BTreeMap<Channel, Option<UseCase>>,
}

/// A field that is present (possibly `null`) reads as `Some(value)`, so `null` and absent differ.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A workspace's settings, as sessions that open from now on get them (running sessions keep
/// the configuration they started with).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SettingsOut {
    /// The workspace.
    pub workspace_id: String,
    /// Every channel's prices.
    pub rates: BTreeMap<Channel, Rates>,
    /// Every channel's window policy.
    pub policies: BTreeMap<Channel, ChannelPolicyOut>,
    /// Replies to compliance keywords.
    pub compliance: ComplianceOut,
    /// The inactivity ping, if one is set.
    pub inactivity_ping: Option<InactivityPing>,
    /// The ISO 4217 currency of every amount (stored in its minor units).
    pub currency: String,
    /// Per channel with tiers, its monthly volume tiers.
    pub volume_tiers: BTreeMap<Channel, Vec<VolumeTier>>,
    /// Per channel with one, the use case its sender was approved for.
    pub use_cases: BTreeMap<Channel, UseCase>,
}

/// `POST /v1/workspace/balance/top-ups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    /// How much to credit, in minor units (positive).
    #[schemars(range(min = 1))]
    pub amount: u64,
    /// Why (1 to 500 characters), kept in the ledger.
    #[schemars(length(min = 1, max = 500))]
    pub reason: String,
}

/// Who made a top-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ActorOut {
    /// `api_key` or `operator` (the CLI's `--by`).
    pub kind: String,
    /// The API key's id, or the operator's name.
    pub id: String,
}

/// A credit of the ledger: a top-up, or an opening balance (no author, no reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TopUpOut {
    /// Its id (`tu_...`; derived from the Idempotency-Key when there is one).
    pub id: String,
    /// The amount credited, in minor units.
    pub amount: u64,
    /// Why.
    pub reason: Option<String>,
    /// Who.
    pub by: Option<ActorOut>,
    /// When.
    pub created_at: String,
    /// The balance right after it.
    pub balance_after: Option<BalanceOut>,
}

/// Filters of `GET /v1/workspace/balance/top-ups`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpsQuery {
    /// At most this many, newest first (1 to 1,000; default 100).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
}

/// Which template of a name `GET` and `DELETE /v1/templates/{name}` mean.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateQuery {
    /// The template's channel (`whatsapp`); needed only when the name is registered on more
    /// than one.
    #[serde(default)]
    #[schemars(with = "Option<Channel>")]
    pub channel: Option<String>,
}

/// `POST /v1/templates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplateRequest {
    /// Unique in the workspace: 1 to 512 letters, digits, `_`, `-` and `.`.
    pub name: String,
    /// The channel it is for.
    pub channel: Channel,
    /// Its language: 2 to 15 letters, digits, `_` and `-` (`en`, `en_US`, `pt-BR`).
    pub language: String,
    /// The text (1 to 4,096 characters), with `{{1}}`, `{{2}}`, ... or `{{name}}`
    /// placeholders (not both kinds).
    pub body: String,
    /// The variables the body uses, each exactly once (`["1", "2"]`, or names); positional
    /// ones are numbered 1 to n.
    #[serde(default)]
    pub variables: Vec<String>,
    /// `MARKETING`, `UTILITY` (the default) or `AUTHENTICATION`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub category: Option<TemplateCategory>,
    /// `APPROVED` (the default), `PENDING` or `REJECTED`; only approved templates are sent.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub status: Option<TemplateStatus>,
    /// A header line, with at most one placeholder.
    #[serde(default)]
    pub header: Option<String>,
    /// A footer line, without placeholders.
    #[serde(default)]
    pub footer: Option<String>,
    /// An e-mail template's subject line; its placeholders are the body's.
    #[serde(default)]
    pub subject: Option<String>,
    /// Buttons: `{"kind": "quick_reply"|"url"|"phone_number", "text", "url"?, "phone_number"?}`;
    /// a URL may end in one placeholder.
    #[serde(default)]
    #[schemars(with = "Vec<serde_json::Value>")]
    pub buttons: Vec<TemplateButton>,
    /// Carousel cards: `{"header"?, "body", "buttons"?}`, the header being the card's image
    /// URL (or a placeholder for it).
    #[serde(default)]
    #[schemars(with = "Vec<serde_json::Value>")]
    pub cards: Vec<TemplateCard>,
}

/// A registered template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateOut {
    /// Its name.
    pub name: String,
    /// The channel it is for.
    pub channel: Channel,
    /// Its language.
    pub language: String,
    /// The text.
    pub body: String,
    /// The declared variables, in order.
    pub variables: Vec<String>,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    #[schemars(with = "String")]
    pub category: TemplateCategory,
    /// `APPROVED`, `PENDING` or `REJECTED`.
    #[schemars(with = "String")]
    pub status: TemplateStatus,
    /// The header, footer, subject, buttons and cards it has.
    #[schemars(with = "serde_json::Value")]
    pub components: TemplateComponents,
    /// When it was registered.
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_keys_are_every_channel() {
        assert_eq!(CHANNELS, Channel::ALL.map(Channel::as_str));
    }
}
