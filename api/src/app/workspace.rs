//! A workspace's configuration: rates, window policies, compliance texts and the inactivity
//! ping (balance top-ups are in [`super::balance`], the template registry in
//! [`super::templates`]).
//!
//! These operations need only the store, so they live on [`WorkspaceAdmin`] rather than on
//! [`App`] itself: the HTTP and gRPC transports reach them through [`App::workspace`], and
//! `convo workspace …` / `convo template …` run the very same functions on a store, with no
//! Temporal client. Every change is validated first (a 422 `validation_failed` naming the
//! field) and then written in one atomic update of the workspace's settings.
//!
//! Sessions read the settings when they open, so a change applies to sessions that open
//! afterwards; a running session keeps the configuration it started with.

use convo_domain::{
    Channel, ComplianceTexts, Money, PolicyOverrides, RateCard, WorkspaceSettings,
    billing::VolumeTier,
    window::{Content, InactivityPing as DomainPing},
};
use convo_store::{Store, Workspace};

use super::{
    App, WorkspaceId, required_text,
    types::{
        ChannelPolicyOut, ComplianceIn, ComplianceOut, InactivityPing, PolicyOverridesIn, Rates,
        SettingsOut, SettingsPatch, WindowPolicyOut,
    },
};
use crate::error::ApiError;

/// The longest window, billing session, human-agent allowance or ping delay: 366 days.
pub const MAX_SECS: u64 = 366 * 24 * 3600;
/// The longest compliance text or ping text (Twilio's limit for one SMS body).
const MAX_REPLY: usize = 1_600;
/// The largest price or top-up the ledger can hold.
const MAX_MINOR: u64 = i64::MAX as u64;

/// The workspace configuration operations, over the store alone. Cheap to clone.
#[derive(Debug, Clone)]
pub struct WorkspaceAdmin {
    store: Store,
}

impl App {
    /// The workspace configuration operations (settings, balance, templates), for the
    /// transports.
    pub fn workspace(&self) -> WorkspaceAdmin {
        WorkspaceAdmin::new(self.store().clone())
    }
}

/// `field` under `prefix` (`rates.whatsapp.` + `message`).
fn under(prefix: &str, field: &str) -> String {
    format!("{prefix}{field}")
}

/// A channel named by its kind, as in a path (`/v1/workspace/rates/{channel}`).
pub fn parse_channel(field: &str, value: &str) -> Result<Channel, ApiError> {
    Channel::ALL.into_iter().find(|c| c.as_str() == value.trim()).ok_or_else(|| {
        ApiError::validation(
            field,
            format!(
                "unknown channel {value:?}: use whatsapp, sms, rcs, messenger, instagram or email"
            ),
        )
    })
}

pub(super) fn amount(field: String, value: u64) -> Result<Money, ApiError> {
    if value > MAX_MINOR {
        return Err(ApiError::validation(field, format!("must be at most {MAX_MINOR}")));
    }
    Ok(Money::from_minor(value))
}

/// Prices, checked against the ledger's range.
fn rate_card(prefix: &str, r: Rates) -> Result<RateCard, ApiError> {
    Ok(RateCard {
        conversation_unit: amount(under(prefix, "conversation_unit"), r.conversation_unit)?,
        message: amount(under(prefix, "message"), r.message)?,
        newsletter: amount(under(prefix, "newsletter"), r.newsletter)?,
    })
}

fn seconds(field: String, value: Option<u64>) -> Result<Option<u64>, ApiError> {
    match value {
        Some(v) if v > MAX_SECS => {
            Err(ApiError::validation(field, format!("must be at most {MAX_SECS} (366 days)")))
        }
        v => Ok(v),
    }
}

/// Overrides, validated by the domain against the channel's default policy.
fn policy_overrides(
    prefix: &str,
    channel: Channel,
    o: PolicyOverridesIn,
) -> Result<PolicyOverrides, ApiError> {
    let overrides = PolicyOverrides {
        gate: o.gate,
        mode: o.mode,
        window_secs: seconds(under(prefix, "window_secs"), o.window_secs)?,
        billing_session_secs: seconds(
            under(prefix, "billing_session_secs"),
            o.billing_session_secs,
        )?,
        human_agent_secs: seconds(under(prefix, "human_agent_secs"), o.human_agent_secs)?,
    };
    channel.default_policy().with_overrides(&overrides).map_err(|e| match e {
        convo_domain::channel::Error::ValidationFailed { field, reason } => {
            ApiError::validation(under(prefix, &field), reason)
        }
        other => ApiError::validation(prefix.trim_end_matches('.'), other.to_string()),
    })?;
    Ok(overrides)
}

fn reply_text(field: String, value: &str) -> Result<String, ApiError> {
    required_text(&field, value, MAX_REPLY)
}

/// The compliance texts with those `c` gives replaced.
fn compliance(
    prefix: &str,
    c: &ComplianceIn,
    current: &ComplianceTexts,
) -> Result<ComplianceTexts, ApiError> {
    let pick = |field: &str, given: &Option<String>, current: &str| match given {
        Some(text) => reply_text(under(prefix, field), text),
        None => Ok(current.to_owned()),
    };
    Ok(ComplianceTexts {
        help: pick("help", &c.help, &current.help)?,
        opt_out_confirmation: pick(
            "opt_out_confirmation",
            &c.opt_out_confirmation,
            &current.opt_out_confirmation,
        )?,
        opt_in_confirmation: pick(
            "opt_in_confirmation",
            &c.opt_in_confirmation,
            &current.opt_in_confirmation,
        )?,
    })
}

fn rates_out(card: RateCard) -> Rates {
    Rates {
        conversation_unit: card.conversation_unit.minor(),
        message: card.message.minor(),
        newsletter: card.newsletter.minor(),
    }
}

fn overrides_out(o: PolicyOverrides) -> PolicyOverridesIn {
    PolicyOverridesIn {
        gate: o.gate,
        mode: o.mode,
        window_secs: o.window_secs,
        billing_session_secs: o.billing_session_secs,
        human_agent_secs: o.human_agent_secs,
    }
}

fn ping_out(p: &DomainPing) -> InactivityPing {
    match &p.content {
        Content::Text { body, subject } => InactivityPing {
            after_secs: p.after_secs,
            text: Some(body.clone()),
            subject: subject.clone(),
            template: None,
        },
        Content::Template { name, .. } => InactivityPing {
            after_secs: p.after_secs,
            template: Some(name.clone()),
            ..InactivityPing::default()
        },
        // Settings take text or a template for the ping; rich content reads as its text.
        Content::Rich(rich) => InactivityPing {
            after_secs: p.after_secs,
            text: Some(rich.plain()),
            ..InactivityPing::default()
        },
    }
}

/// The settings as the API shows them: every channel's effective rates and policy.
pub(crate) fn settings_out(w: &Workspace) -> Result<SettingsOut, ApiError> {
    let s = &w.settings;
    let mut policies = std::collections::BTreeMap::new();
    for channel in Channel::ALL {
        let p = s.policy_for(channel).map_err(|e| {
            ApiError::internal(format!("the stored {channel:?} policy is invalid: {e}"))
        })?;
        let overrides = s.overrides.get(&channel).copied().unwrap_or_default();
        let effective = WindowPolicyOut {
            gate: p.gate,
            mode: p.mode,
            window_secs: p.window_secs,
            billing_session_secs: p.billing_session_secs,
            human_agent_secs: p.human_agent_secs,
        };
        policies
            .insert(channel, ChannelPolicyOut { overrides: overrides_out(overrides), effective });
    }
    Ok(SettingsOut {
        workspace_id: w.id.clone(),
        rates: Channel::ALL.into_iter().map(|c| (c, rates_out(s.rates.for_channel(c)))).collect(),
        policies,
        compliance: ComplianceOut {
            help: s.compliance.help.clone(),
            opt_out_confirmation: s.compliance.opt_out_confirmation.clone(),
            opt_in_confirmation: s.compliance.opt_in_confirmation.clone(),
        },
        inactivity_ping: s.inactivity_ping.as_ref().map(ping_out),
        currency: s.currency().to_owned(),
        volume_tiers: s.volume_tiers.clone(),
        use_cases: s.use_cases.clone(),
    })
}

/// One validated change of the settings, applied inside the store's atomic update.
#[derive(Debug, Default)]
struct Change {
    rates: Vec<(Channel, RateCard)>,
    policies: Vec<(Channel, PolicyOverrides)>,
    compliance: Option<ComplianceTexts>,
    ping: Option<Option<DomainPing>>,
    currency: Option<String>,
    tiers: Vec<(Channel, Vec<VolumeTier>)>,
    use_cases: Vec<(Channel, Option<convo_domain::UseCase>)>,
}

impl Change {
    fn apply(self, s: &mut WorkspaceSettings) {
        for (channel, card) in self.rates {
            s.rates = std::mem::take(&mut s.rates).with(channel, card);
        }
        for (channel, overrides) in self.policies {
            if overrides == PolicyOverrides::default() {
                s.overrides.remove(&channel);
            } else {
                s.overrides.insert(channel, overrides);
            }
        }
        if let Some(texts) = self.compliance {
            s.compliance = texts;
        }
        if let Some(ping) = self.ping {
            s.inactivity_ping = ping;
        }
        if let Some(currency) = self.currency {
            s.currency = Some(currency);
        }
        for (channel, use_case) in self.use_cases {
            match use_case {
                Some(u) => s.use_cases.insert(channel, u),
                None => s.use_cases.remove(&channel),
            };
        }
        for (channel, tiers) in self.tiers {
            if tiers.is_empty() {
                s.volume_tiers.remove(&channel);
            } else {
                s.volume_tiers.insert(channel, tiers);
            }
        }
    }
}

impl WorkspaceAdmin {
    /// The operations over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The store.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The workspace; 404 when there is none (only the CLI can name one that does not exist).
    pub(crate) async fn existing(&self, ws: &WorkspaceId) -> Result<Workspace, ApiError> {
        Ok(self.store.workspace(ws.as_str()).await?)
    }

    async fn apply(&self, ws: &WorkspaceId, change: Change) -> Result<SettingsOut, ApiError> {
        let updated =
            self.store.update_workspace_settings(ws.as_str(), move |s| change.apply(s)).await?;
        settings_out(&updated)
    }

    /// `GET /v1/workspace/settings`.
    pub async fn settings(&self, ws: &WorkspaceId) -> Result<SettingsOut, ApiError> {
        settings_out(&self.existing(ws).await?)
    }

    /// `PATCH /v1/workspace/settings`: changes what the body names (fields are named with
    /// their path: `rates.whatsapp.message`, `policies.sms.window_secs`, `compliance.help`,
    /// `inactivity_ping.after_secs`), all or nothing.
    pub async fn update_settings(
        &self,
        ws: &WorkspaceId,
        patch: SettingsPatch,
    ) -> Result<SettingsOut, ApiError> {
        let current = self.existing(ws).await?;
        let mut change = Change::default();
        for (channel, rates) in patch.rates {
            let prefix = format!("rates.{}.", channel.as_str());
            change.rates.push((channel, rate_card(&prefix, rates)?));
        }
        for (channel, overrides) in patch.policies {
            let prefix = format!("policies.{}.", channel.as_str());
            change.policies.push((channel, policy_overrides(&prefix, channel, overrides)?));
        }
        if let Some(c) = &patch.compliance {
            change.compliance = Some(compliance("compliance.", c, &current.settings.compliance)?);
        }
        for (channel, tiers) in patch.volume_tiers {
            if !tiers.is_empty() {
                convo_domain::billing::tiers::validate_tiers(&tiers).map_err(|(at, why)| {
                    ApiError::validation(format!("volume_tiers.{}{at}", channel.as_str()), why)
                })?;
            }
            change.tiers.push((channel, tiers));
        }
        change.use_cases = patch.use_cases.into_iter().collect();
        if let Some(code) = patch.currency {
            if !convo_domain::billing::currency::is_currency_code(&code) {
                return Err(ApiError::validation(
                    "currency",
                    "must be an ISO 4217 code: three upper-case letters (EUR)",
                ));
            }
            if code != current.settings.currency() {
                let balance = self.store.balance(ws.as_str()).await?;
                if !balance.total.is_zero() || !balance.reserved.is_zero() {
                    return Err(ApiError::conflict(format!(
                        "the ledger holds {} {} in minor units; the currency can change only while it holds nothing",
                        balance.total.minor(),
                        current.settings.currency()
                    )));
                }
            }
            change.currency = Some(code);
        }
        change.ping = match patch.inactivity_ping {
            None => None,
            Some(None) => Some(None),
            Some(Some(ping)) => Some(Some(self.ping(ws, "inactivity_ping.", ping).await?)),
        };
        self.apply(ws, change).await
    }

    /// `PUT /v1/workspace/rates/{channel}`: the channel's prices.
    pub async fn set_rates(
        &self,
        ws: &WorkspaceId,
        channel: &str,
        rates: Rates,
    ) -> Result<SettingsOut, ApiError> {
        let channel = parse_channel("channel", channel)?;
        let card = rate_card("", rates)?;
        self.apply(ws, Change { rates: vec![(channel, card)], ..Change::default() }).await
    }

    /// `PUT /v1/workspace/policies/{channel}`: the channel's overrides, replacing the old ones
    /// (`{}` restores the channel's defaults), validated by the domain.
    pub async fn set_policy(
        &self,
        ws: &WorkspaceId,
        channel: &str,
        overrides: PolicyOverridesIn,
    ) -> Result<SettingsOut, ApiError> {
        let channel = parse_channel("channel", channel)?;
        let overrides = policy_overrides("", channel, overrides)?;
        self.apply(ws, Change { policies: vec![(channel, overrides)], ..Change::default() }).await
    }

    /// `PUT /v1/workspace/compliance`: the help and confirmation texts given (absent ones keep
    /// their value).
    pub async fn set_compliance(
        &self,
        ws: &WorkspaceId,
        texts: ComplianceIn,
    ) -> Result<SettingsOut, ApiError> {
        let current = self.existing(ws).await?;
        let texts = compliance("", &texts, &current.settings.compliance)?;
        self.apply(ws, Change { compliance: Some(texts), ..Change::default() }).await
    }

    /// `PUT /v1/workspace/inactivity-ping`.
    pub async fn set_inactivity_ping(
        &self,
        ws: &WorkspaceId,
        ping: InactivityPing,
    ) -> Result<SettingsOut, ApiError> {
        self.existing(ws).await?;
        let ping = self.ping(ws, "", ping).await?;
        self.apply(ws, Change { ping: Some(Some(ping)), ..Change::default() }).await
    }

    /// `DELETE /v1/workspace/inactivity-ping`: no ping from now on (idempotent).
    pub async fn clear_inactivity_ping(&self, ws: &WorkspaceId) -> Result<SettingsOut, ApiError> {
        self.apply(ws, Change { ping: Some(None), ..Change::default() }).await
    }

    /// A ping, validated: a delay of 1 s to 366 days and exactly one of a non-empty text or
    /// a template of the registry.
    async fn ping(
        &self,
        ws: &WorkspaceId,
        prefix: &str,
        p: InactivityPing,
    ) -> Result<DomainPing, ApiError> {
        if p.after_secs == 0 {
            return Err(ApiError::validation(under(prefix, "after_secs"), "must be positive"));
        }
        seconds(under(prefix, "after_secs"), Some(p.after_secs))?;
        let content = match (&p.text, &p.template) {
            (Some(_), Some(_)) => {
                return Err(ApiError::validation(
                    under(prefix, "template"),
                    "give text or template, not both",
                ));
            }
            (None, None) => {
                return Err(ApiError::validation(under(prefix, "text"), "give text or template"));
            }
            (Some(text), None) => Content::Text {
                body: reply_text(under(prefix, "text"), text)?,
                subject: super::optional_text(
                    &under(prefix, "subject"),
                    p.subject.as_deref(),
                    998,
                )?,
            },
            (None, Some(name)) => {
                if p.subject.is_some() {
                    return Err(ApiError::validation(
                        under(prefix, "subject"),
                        "goes only with text (a template has its own)",
                    ));
                }
                let field = under(prefix, "template");
                let name = super::template_name(&field, name)?;
                // A registered template without placeholders goes out rendered.
                // The ping goes out on whichever channel the session is on: the name must be
                // registered on one at least.
                let params = match self.store.templates_named(ws.as_str(), &name).await?.first() {
                    Some(t) => super::templates::resolve(&field, t, &serde_json::Value::Null)
                        .unwrap_or_default(),
                    None => {
                        return Err(ApiError::validation(
                            field,
                            format!("no template {name:?} in this workspace"),
                        ));
                    }
                };
                Content::Template { name, params: Box::new(params) }
            }
        };
        let ping = DomainPing { after_secs: p.after_secs, content };
        // The domain's own check, on a configuration carrying the ping.
        let mut config = convo_domain::window::Config::new(Channel::Sms);
        config.inactivity_ping = Some(ping.clone());
        config
            .validate()
            .map_err(|e| ApiError::validation(prefix.trim_end_matches('.'), e.to_string()))?;
        Ok(ping)
    }
}
