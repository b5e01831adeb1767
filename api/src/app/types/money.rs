//! Money as a send's billing block shows it: the ledger's integer minor units rendered in the
//! currency's major units (`25` cents → `0.25`), with the currency named.

use std::borrow::Cow;

use convo_domain::{
    Balance, Channel, Money,
    billing::{
        VolumeTier,
        currency::{DEFAULT_CURRENCY, minor_exponent},
        tiers::current_tier,
    },
};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize, Serializer};

/// An amount in major units, as a JSON number. It is rendered from integer minor units, never
/// computed in floating point: the number written is the decimal the ledger holds, exactly
/// (up to 15 significant digits, 10^13 major units, every amount a balance can hold is that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    minor: u64,
    exponent: u32,
}

impl Amount {
    /// `money` in `currency` (its ISO 4217 exponent).
    pub fn new(money: Money, currency: &str) -> Self {
        Self { minor: money.minor(), exponent: minor_exponent(currency) }
    }

    /// The ledger's minor units (what gRPC answers carry).
    pub fn minor(self) -> u64 {
        self.minor
    }

    /// An amount read back from its major units in `currency` (a stored answer replayed): the
    /// nearest minor unit, which is the one it was rendered from.
    pub fn from_major(major: f64, currency: &str) -> Self {
        let exponent = minor_exponent(currency);
        let scaled = (major * 10f64.powi(exponent as i32)).round();
        // Saturating: a negative or non-finite number was never rendered by convo.
        let minor = if scaled.is_finite() && scaled > 0.0 { scaled as u64 } else { 0 };
        Self { minor, exponent }
    }

    /// An amount an older stored answer gave in minor units.
    fn from_minor_units(minor: f64, currency: &str) -> Self {
        Self::from_major(minor / 10f64.powi(minor_exponent(currency) as i32), currency)
    }

    /// The exact decimal (`"49.75"`).
    pub fn decimal(self) -> String {
        Money::from_minor(self.minor).to_major(self.exponent)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The shortest double that reads back as this decimal prints as this decimal: at 15
        // significant digits or fewer, no two decimals share a double.
        serializer.serialize_f64(self.decimal().parse().unwrap_or(0.0))
    }
}

impl JsonSchema for Amount {
    fn schema_name() -> Cow<'static, str> {
        "Amount".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "number",
            "minimum": 0,
            "description": "An amount in the currency's major units (0.25), rendered exactly from the ledger's integer minor units."
        })
    }
}

/// `{free, reserved, total}` in the currency's major units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BillingBalanceOut {
    /// Available for new holds.
    pub free: Amount,
    /// Held by open holds.
    pub reserved: Amount,
    /// Free plus reserved.
    pub total: Amount,
}

impl BillingBalanceOut {
    /// The ledger's balance in `currency`.
    pub fn new(balance: Balance, currency: &str) -> Self {
        Self {
            free: Amount::new(balance.free, currency),
            reserved: Amount::new(balance.reserved, currency),
            total: Amount::new(balance.total, currency),
        }
    }
}

/// The channel's volume tier this month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TierOut {
    /// The channel.
    pub channel: Channel,
    /// The tier the month's volume falls in (`tier_1`).
    pub current: String,
    /// Messages sent on the channel since the month began (UTC), this one included.
    pub volume_used: u64,
}

impl TierOut {
    /// The tier `volume_used` falls in among `tiers`; none when the channel has no tiers.
    pub fn new(channel: Channel, tiers: &[VolumeTier], volume_used: u64) -> Option<Self> {
        let tier = current_tier(tiers, volume_used)?;
        Some(Self { channel, current: tier.name.clone(), volume_used })
    }
}

/// A [`super::BillingOut`] as a stored answer holds it (idempotent replays read it back):
/// amounts as numbers, put back into minor units with the currency beside them. An answer
/// stored before amounts were shown in major units has no `currency`: its numbers are minor
/// units of the default currency, and replay as such.
#[derive(Deserialize)]
struct BillingWire {
    channel: Channel,
    message_type: convo_domain::MessageType,
    in_session: bool,
    #[serde(default)]
    currency: Option<String>,
    hold_amount: f64,
    message_price: f64,
    balance: BalanceWire,
    #[serde(default)]
    tier: Option<TierOut>,
}

#[derive(Deserialize)]
struct BalanceWire {
    free: f64,
    reserved: f64,
    total: f64,
}

impl<'de> Deserialize<'de> for super::BillingOut {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BillingWire::deserialize(deserializer).map(Into::into)
    }
}

impl From<BillingWire> for super::BillingOut {
    fn from(w: BillingWire) -> Self {
        let (currency, amount): (String, fn(f64, &str) -> Amount) = match w.currency {
            Some(c) => (c, Amount::from_major),
            None => (DEFAULT_CURRENCY.to_owned(), Amount::from_minor_units),
        };
        let c = currency.as_str();
        Self {
            channel: w.channel,
            message_type: w.message_type,
            in_session: w.in_session,
            hold_amount: amount(w.hold_amount, c),
            message_price: amount(w.message_price, c),
            balance: BillingBalanceOut {
                free: amount(w.balance.free, c),
                reserved: amount(w.balance.reserved, c),
                total: amount(w.balance.total, c),
            },
            tier: w.tier,
            currency,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_seed_answer_renders_as_documented() {
        let balance = Balance {
            free: Money::from_minor(4975),
            reserved: Money::from_minor(25),
            total: Money::from_minor(5000),
        };
        let out = serde_json::to_string(&BillingBalanceOut::new(balance, "EUR")).unwrap();
        assert_eq!(out, r#"{"free":49.75,"reserved":0.25,"total":50.0}"#);
        let yen = serde_json::to_string(&Amount::new(Money::from_minor(120), "JPY")).unwrap();
        assert_eq!(yen, "120.0");
        let dinar = serde_json::to_string(&Amount::new(Money::from_minor(7), "KWD")).unwrap();
        assert_eq!(dinar, "0.007");
    }

    proptest! {
        /// What a client parses is the ledger's decimal, to the last minor unit.
        #[test]
        fn rendering_never_drifts(minor in 0u64..1_000_000_000_000_000, exponent in 0u32..4) {
            let amount = Amount { minor, exponent };
            let written = serde_json::to_string(&amount).unwrap();
            let read: f64 = written.parse().unwrap();
            let scaled = format!("{read:.prec$}", prec = exponent as usize);
            prop_assert_eq!(scaled, amount.decimal());
        }

        /// An answer stored in minor units, before the currency was named, replays as it was.
        #[test]
        fn a_legacy_stored_answer_replays_in_minor_units(minor in 0u64..1_000_000_000_000) {
            let stored = serde_json::json!({"channel": "sms", "message_type": "MESSAGE",
                "in_session": false, "hold_amount": 0, "message_price": minor,
                "balance": {"free": minor, "reserved": 0, "total": minor}});
            let billing: super::super::BillingOut = serde_json::from_value(stored).unwrap();
            prop_assert_eq!(billing.message_price.minor(), minor);
            prop_assert_eq!(billing.currency.as_str(), DEFAULT_CURRENCY);
        }

        /// A stored answer replays with the amounts it was given.
        #[test]
        fn a_replayed_amount_is_the_one_rendered(minor in 0u64..1_000_000_000_000_000) {
            for currency in ["EUR", "JPY", "KWD"] {
                let amount = Amount::new(Money::from_minor(minor), currency);
                let written: f64 = serde_json::to_string(&amount).unwrap().parse().unwrap();
                prop_assert_eq!(Amount::from_major(written, currency), amount);
            }
        }
    }
}
