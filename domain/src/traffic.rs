//! Traffic types and the use cases that approve them.
//!
//! A business message carries a regulatory classification, its **traffic type**: RBM's
//! `messageTrafficType` (`AUTHENTICATION`, `TRANSACTION`, `PROMOTION`, `SERVICEREQUEST`,
//! `ACKNOWLEDGEMENT`), which the RCS conversation API calls `traffic_type` and requires to
//! match the agent's approved **use case**. RBM approves an agent for one of four use cases
//! (OTP, transactional, promotional, multi-use); each admits only some traffic types:
//!
//! | use case | traffic types |
//! |---|---|
//! | `otp` | `AUTHENTICATION`, `ACKNOWLEDGEMENT` |
//! | `transactional` | `TRANSACTION`, `SERVICEREQUEST`, `ACKNOWLEDGEMENT` |
//! | `promotional` | `PROMOTION`, `SERVICEREQUEST`, `ACKNOWLEDGEMENT` |
//! | `multi_use` | `TRANSACTION`, `PROMOTION`, `SERVICEREQUEST`, `ACKNOWLEDGEMENT` |
//!
//! A channel with no approved use case takes any traffic type.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A message's regulatory classification, spelled as RBM spells it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrafficType {
    /// One-time passwords and other authentication.
    Authentication,
    /// Notifications about a customer's existing products or services.
    Transaction,
    /// Sales and marketing.
    Promotion,
    /// An answer to something the contact asked for.
    #[serde(rename = "SERVICEREQUEST")]
    ServiceRequest,
    /// An acknowledgement of the contact's message (an opt-out confirmation).
    Acknowledgement,
}

impl TrafficType {
    /// Every traffic type, in RBM's order.
    pub const ALL: [TrafficType; 5] = [
        TrafficType::Authentication,
        TrafficType::Transaction,
        TrafficType::Promotion,
        TrafficType::ServiceRequest,
        TrafficType::Acknowledgement,
    ];

    /// RBM's spelling (`SERVICEREQUEST`).
    pub const fn as_str(self) -> &'static str {
        match self {
            TrafficType::Authentication => "AUTHENTICATION",
            TrafficType::Transaction => "TRANSACTION",
            TrafficType::Promotion => "PROMOTION",
            TrafficType::ServiceRequest => "SERVICEREQUEST",
            TrafficType::Acknowledgement => "ACKNOWLEDGEMENT",
        }
    }

    /// Reads a caller's spelling: RBM's in any case, with or without underscores
    /// (`TRANSACTION`, `service_request`), or the words the use cases are named by
    /// (`transactional`, `promotional`, `marketing`, `otp`).
    pub fn parse(value: &str) -> Option<TrafficType> {
        let folded: String = value
            .trim()
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let by_name = TrafficType::ALL.into_iter().find(|t| t.as_str() == folded);
        by_name.or(match folded.as_str() {
            "OTP" => Some(TrafficType::Authentication),
            "TRANSACTIONAL" => Some(TrafficType::Transaction),
            "PROMOTIONAL" | "MARKETING" => Some(TrafficType::Promotion),
            _ => None,
        })
    }
}

impl fmt::Display for TrafficType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a channel's sender (an RBM agent) was approved to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum UseCase {
    /// One-time passwords.
    Otp,
    /// Notifications, updates and alerts about existing products and services.
    Transactional,
    /// Sales, marketing and promotions.
    Promotional,
    /// Transactional and promotional messages in one conversation.
    MultiUse,
}

impl UseCase {
    /// Every use case.
    pub const ALL: [UseCase; 4] =
        [UseCase::Otp, UseCase::Transactional, UseCase::Promotional, UseCase::MultiUse];

    /// The traffic types it admits, in RBM's order.
    pub const fn allowed(self) -> &'static [TrafficType] {
        use TrafficType::*;
        match self {
            UseCase::Otp => &[Authentication, Acknowledgement],
            UseCase::Transactional => &[Transaction, ServiceRequest, Acknowledgement],
            UseCase::Promotional => &[Promotion, ServiceRequest, Acknowledgement],
            UseCase::MultiUse => &[Transaction, Promotion, ServiceRequest, Acknowledgement],
        }
    }

    /// Its spelling (`multi_use`).
    pub const fn as_str(self) -> &'static str {
        match self {
            UseCase::Otp => "otp",
            UseCase::Transactional => "transactional",
            UseCase::Promotional => "promotional",
            UseCase::MultiUse => "multi_use",
        }
    }
}

/// Why a traffic type was refused: the values the channel takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The use case that refused it; none when the value is not a traffic type at all.
    pub use_case: Option<UseCase>,
    /// The traffic types that would pass.
    pub allowed: &'static [TrafficType],
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed: Vec<&str> = self.allowed.iter().map(|t| t.as_str()).collect();
        write!(f, "must be one of {}", allowed.join(", "))?;
        if let Some(u) = self.use_case {
            write!(f, " (the channel's approved use case is {})", u.as_str())?;
        }
        Ok(())
    }
}

/// Checks a caller's traffic type against the channel's approved use case (none: any type).
pub fn check(value: &str, use_case: Option<UseCase>) -> Result<TrafficType, Refused> {
    let Some(traffic) = TrafficType::parse(value) else {
        let allowed = use_case.map_or(&TrafficType::ALL[..], UseCase::allowed);
        return Err(Refused { use_case: None, allowed });
    };
    match use_case {
        Some(u) if !u.allowed().contains(&traffic) => {
            Err(Refused { use_case: Some(u), allowed: u.allowed() })
        }
        _ => Ok(traffic),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_seeds_values_and_the_common_words_are_read() {
        assert_eq!(TrafficType::parse("TRANSACTION"), Some(TrafficType::Transaction));
        assert_eq!(TrafficType::parse("service_request"), Some(TrafficType::ServiceRequest));
        assert_eq!(TrafficType::parse("SERVICEREQUEST"), Some(TrafficType::ServiceRequest));
        assert_eq!(TrafficType::parse(" transactional "), Some(TrafficType::Transaction));
        assert_eq!(TrafficType::parse("marketing"), Some(TrafficType::Promotion));
        assert_eq!(TrafficType::parse("otp"), Some(TrafficType::Authentication));
        assert_eq!(TrafficType::parse("newsletter"), None);
        assert_eq!(TrafficType::parse(""), None);
    }

    #[test]
    fn a_use_case_refuses_what_it_was_not_approved_for_and_names_what_it_takes() {
        let refused = check("PROMOTION", Some(UseCase::Transactional)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "must be one of TRANSACTION, SERVICEREQUEST, ACKNOWLEDGEMENT \
             (the channel's approved use case is transactional)"
        );
        assert_eq!(
            check("TRANSACTION", Some(UseCase::Transactional)),
            Ok(TrafficType::Transaction)
        );
        assert_eq!(check("AUTHENTICATION", Some(UseCase::MultiUse)).unwrap_err().allowed.len(), 4);
        let unknown = check("bulk", None).unwrap_err();
        assert_eq!(unknown.allowed, &TrafficType::ALL[..]);
        assert_eq!(check("PROMOTION", None), Ok(TrafficType::Promotion));
    }

    #[test]
    fn wire_spellings_are_rbms() {
        for t in TrafficType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for u in UseCase::ALL {
            assert_eq!(serde_json::to_value(u).unwrap(), u.as_str());
        }
    }

    fn traffic() -> impl Strategy<Value = TrafficType> {
        prop::sample::select(TrafficType::ALL.to_vec())
    }

    fn use_case() -> impl Strategy<Value = Option<UseCase>> {
        prop::option::of(prop::sample::select(UseCase::ALL.to_vec()))
    }

    proptest! {
        /// Whatever passes is what was asked for and is among what the use case admits; what
        /// fails names a non-empty list that the value is not in.
        #[test]
        fn check_passes_exactly_the_admitted(t in traffic(), u in use_case(), lower in any::<bool>()) {
            let spelled = if lower { t.as_str().to_lowercase() } else { t.as_str().to_owned() };
            match check(&spelled, u) {
                Ok(got) => {
                    prop_assert_eq!(got, t);
                    prop_assert!(u.is_none_or(|u| u.allowed().contains(&t)));
                }
                Err(refused) => {
                    prop_assert!(!refused.allowed.is_empty());
                    prop_assert!(!refused.allowed.contains(&t));
                    prop_assert_eq!(refused.use_case, u);
                }
            }
        }

        /// Every spelling RBM accepts reads back as itself.
        #[test]
        fn rbm_spellings_round_trip(t in traffic()) {
            prop_assert_eq!(TrafficType::parse(t.as_str()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            prop_assert_eq!(serde_json::from_str::<TrafficType>(&json).unwrap(), t);
        }
    }
}
