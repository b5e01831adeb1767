//! Points in time as plain values.
//!
//! Milliseconds, not seconds: a contact who replies within the same second as the window
//! opened (or as their previous message) must still slide a sliding window, and Temporal's
//! workflow time has millisecond resolution. An integer keeps arithmetic exact and `Ord`,
//! which the property tests rely on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in time: whole milliseconds since the Unix epoch (UTC).
///
/// Never read from a clock in this crate: callers pass it in (a workflow passes its workflow
/// time, an activity or the API the wall clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// A timestamp `millis` milliseconds after the Unix epoch.
    pub const fn from_epoch_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// A timestamp `secs` seconds after the Unix epoch (saturating).
    pub const fn from_epoch_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_epoch_millis(self) -> u64 {
        self.0
    }

    /// Converts a `SystemTime` (for example a workflow's `workflow_time()`), truncating to whole
    /// milliseconds. Times before the epoch clamp to the epoch. This reads no clock.
    pub fn from_system_time(t: SystemTime) -> Self {
        let millis = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        Self(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    /// The same instant as a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// `self + secs` seconds, saturating at the far future instead of overflowing.
    pub const fn plus_secs(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is not earlier.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_time_round_trip_truncates_to_millis() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_999);
        let ts = Timestamp::from_system_time(t);
        assert_eq!(ts.as_epoch_millis(), 1_700_000_000_123);
        assert_eq!(ts.to_system_time(), UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
    }

    #[test]
    fn before_the_epoch_clamps() {
        let t = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(Timestamp::from_system_time(t), Timestamp::EPOCH);
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Timestamp::from_epoch_millis(u64::MAX).plus_secs(1).as_epoch_millis(), u64::MAX);
        assert_eq!(Timestamp::from_epoch_secs(u64::MAX).as_epoch_millis(), u64::MAX);
        let (a, b) = (Timestamp::from_epoch_secs(10), Timestamp::from_epoch_millis(25_500));
        assert_eq!(b.saturating_since(a), Duration::from_millis(15_500));
        assert_eq!(a.saturating_since(b), Duration::ZERO);
    }

    #[test]
    fn serializes_as_a_bare_number_of_millis() {
        let json = serde_json::to_string(&Timestamp::from_epoch_secs(42)).unwrap();
        assert_eq!(json, "42000");
    }
}
