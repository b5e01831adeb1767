//! Per-channel volume tiers: bands of monthly message volume a rate card names
//! (`tier_1` up to 1,000 messages, `tier_2` up to 10,000, `tier_3` beyond), which the billing
//! block of a send reports as `{channel, current, volume_used}`.

use serde::{Deserialize, Serialize};

/// One band: it covers volumes below `up_to` (and above the previous band's); the last band
/// may be unbounded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct VolumeTier {
    /// Its name (`tier_1`).
    pub name: String,
    /// The volume it ends at (exclusive); absent for the last, unbounded band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<u64>,
}

/// Checks a channel's bands: at least one, named, unique, with strictly increasing bounds and
/// only the last unbounded. The error names the band's position and field.
pub fn validate_tiers(tiers: &[VolumeTier]) -> Result<(), (String, String)> {
    let fail = |at: String, why: &str| Err((at, why.to_owned()));
    if tiers.is_empty() {
        return fail(String::new(), "needs at least one tier");
    }
    let mut previous: Option<u64> = None;
    for (i, tier) in tiers.iter().enumerate() {
        let name = tier.name.trim();
        if name.is_empty() || name.len() > 50 {
            return fail(format!("[{i}].name"), "must be 1 to 50 characters");
        }
        if tiers[..i].iter().any(|t| t.name.trim() == name) {
            return fail(format!("[{i}].name"), "is already a tier's name");
        }
        match tier.up_to {
            None if i + 1 != tiers.len() => {
                return fail(format!("[{i}].up_to"), "only the last tier may be unbounded");
            }
            Some(up_to) if previous.is_some_and(|p| up_to <= p) || up_to == 0 => {
                return fail(format!("[{i}].up_to"), "must be greater than the previous tier's");
            }
            _ => previous = tier.up_to,
        }
    }
    Ok(())
}

/// The band `used` messages fall in; past the last bounded band, the last band.
pub fn current_tier(tiers: &[VolumeTier], used: u64) -> Option<&VolumeTier> {
    tiers.iter().find(|t| t.up_to.is_none_or(|up_to| used < up_to)).or_else(|| tiers.last())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn tier(name: &str, up_to: Option<u64>) -> VolumeTier {
        VolumeTier { name: name.to_owned(), up_to }
    }

    #[test]
    fn bands_are_checked_and_found() {
        let tiers =
            [tier("tier_1", Some(1000)), tier("tier_2", Some(10_000)), tier("tier_3", None)];
        assert_eq!(validate_tiers(&tiers), Ok(()));
        assert_eq!(current_tier(&tiers, 312).map(|t| t.name.as_str()), Some("tier_1"));
        assert_eq!(current_tier(&tiers, 1000).map(|t| t.name.as_str()), Some("tier_2"));
        assert_eq!(current_tier(&tiers, 99_999).map(|t| t.name.as_str()), Some("tier_3"));
        let bounded = [tier("a", Some(10))];
        assert_eq!(current_tier(&bounded, 11).map(|t| t.name.as_str()), Some("a"));
        let field = |t: &[VolumeTier]| validate_tiers(t).unwrap_err().0;
        assert_eq!(field(&[]), "");
        assert_eq!(field(&[tier("a", None), tier("b", None)]), "[0].up_to");
        assert_eq!(field(&[tier("a", Some(10)), tier("b", Some(10))]), "[1].up_to");
        assert_eq!(field(&[tier("a", Some(10)), tier("a", None)]), "[1].name");
        assert_eq!(field(&[tier(" ", None)]), "[0].name");
    }

    proptest! {
        /// For valid bands, the tier of a volume is the first whose bound exceeds it, and a
        /// larger volume never falls in an earlier band.
        #[test]
        fn larger_volumes_never_fall_in_earlier_bands(
            steps in proptest::collection::vec(1u64..1000, 1..6),
            a in 0u64..10_000,
            b in 0u64..10_000,
        ) {
            let mut bound = 0;
            let mut tiers: Vec<VolumeTier> = steps
                .iter()
                .enumerate()
                .map(|(i, s)| { bound += s; tier(&format!("t{i}"), Some(bound)) })
                .collect();
            tiers.push(tier("top", None));
            prop_assert_eq!(validate_tiers(&tiers), Ok(()));
            let position = |used| tiers.iter().position(|t| Some(t) == current_tier(&tiers, used));
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(position(lo) <= position(hi));
            let t = current_tier(&tiers, lo).unwrap();
            prop_assert!(t.up_to.is_none_or(|u| lo < u));
        }
    }
}
