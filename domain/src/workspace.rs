//! A workspace's settings and the session [`Config`] they give each channel.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    Channel, ComplianceTexts, PolicyOverrides, RateTable, UseCase, WindowPolicy,
    billing::{VolumeTier, currency::DEFAULT_CURRENCY},
    channel,
    window::{Config, Error, InactivityPing},
};

/// What a workspace configures: policy overrides per channel, rates, compliance texts and the
/// optional inactivity ping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkspaceSettings {
    /// Changes to channels' default policies.
    pub overrides: BTreeMap<Channel, PolicyOverrides>,
    /// Prices per channel.
    pub rates: RateTable,
    /// Replies to compliance keywords.
    pub compliance: ComplianceTexts,
    /// Ping after this much silence, on every channel.
    pub inactivity_ping: Option<InactivityPing>,
    /// The ISO 4217 currency of every amount (minor units); [`DEFAULT_CURRENCY`] when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Per channel, the volume tiers of its rate card (absent: the channel has none).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volume_tiers: BTreeMap<Channel, Vec<VolumeTier>>,
    /// Per channel, the use case its sender was approved for, which bounds the traffic types
    /// its sends may carry (absent: any).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub use_cases: BTreeMap<Channel, UseCase>,
}

impl WorkspaceSettings {
    /// The currency amounts are in.
    pub fn currency(&self) -> &str {
        self.currency.as_deref().unwrap_or(DEFAULT_CURRENCY)
    }

    /// The policy in force on `channel`: its default with this workspace's overrides.
    pub fn policy_for(&self, channel: Channel) -> Result<WindowPolicy, channel::Error> {
        let base = channel.default_policy();
        match self.overrides.get(&channel) {
            Some(overrides) => base.with_overrides(overrides),
            None => Ok(base),
        }
    }

    /// The session configuration for `channel`, validated.
    pub fn config_for(&self, channel: Channel) -> Result<Config, Error> {
        let config = Config {
            channel,
            policy: self.policy_for(channel)?,
            rates: self.rates.for_channel(channel),
            compliance: self.compliance.clone(),
            inactivity_ping: self.inactivity_ping.clone(),
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DAY_SECS, Gate, Money, RateCard, WindowMode, window::Content};

    #[test]
    fn overrides_and_rates_reach_the_config() {
        let card = RateCard { conversation_unit: Money::from_minor(40), ..RateCard::default() };
        let mut settings = WorkspaceSettings {
            rates: RateTable::default().with(Channel::Whatsapp, card),
            ..WorkspaceSettings::default()
        };
        settings.overrides.insert(
            Channel::Whatsapp,
            PolicyOverrides { mode: Some(WindowMode::Fixed), ..PolicyOverrides::default() },
        );
        let wa = settings.config_for(Channel::Whatsapp).unwrap();
        assert_eq!(wa.policy.mode, WindowMode::Fixed);
        assert_eq!(wa.rates, card);
        let sms = settings.config_for(Channel::Sms).unwrap();
        assert_eq!((sms.policy.gate, sms.rates), (Gate::UntilOptIn, RateCard::default()));
    }

    #[test]
    fn invalid_settings_are_validation_failures() {
        let mut settings = WorkspaceSettings::default();
        settings.overrides.insert(
            Channel::Email,
            PolicyOverrides { window_secs: Some(0), ..PolicyOverrides::default() },
        );
        assert_eq!(settings.config_for(Channel::Email).unwrap_err().code(), "validation_failed");
        let ping = |after_secs, body: &str| InactivityPing {
            after_secs,
            content: Content::Text { body: body.to_owned(), subject: None },
        };
        for bad in [ping(0, "still there?"), ping(DAY_SECS, "  ")] {
            let settings =
                WorkspaceSettings { inactivity_ping: Some(bad), ..WorkspaceSettings::default() };
            assert_eq!(settings.config_for(Channel::Sms).unwrap_err().code(), "validation_failed");
        }
    }

    #[test]
    fn settings_deserialize_from_sparse_json() {
        let json = r#"{"overrides":{"whatsapp":{"mode":"fixed"}},"rates":{"rcs":{"conversation_unit":50,"message":5,"newsletter":1}}}"#;
        let settings: WorkspaceSettings = serde_json::from_str(json).unwrap();
        assert_eq!(settings.policy_for(Channel::Whatsapp).unwrap().mode, WindowMode::Fixed);
        assert_eq!(settings.rates.for_channel(Channel::Rcs).message, Money::from_minor(5));
        assert_eq!(settings.compliance, ComplianceTexts::default());
    }
}
