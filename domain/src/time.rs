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

    /// RFC 3339 in UTC: `2026-12-02T10:00:00Z`, with `.123` milliseconds when there are any.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0 / 1000;
        let millis = self.0 % 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days);
        let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
        if millis == 0 {
            format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
        } else {
            format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
        }
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`,
/// for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
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
    fn rfc3339_of_known_instants() {
        assert_eq!(Timestamp::EPOCH.to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp::from_epoch_secs(951_782_400).to_rfc3339(), "2000-02-29T00:00:00Z");
        assert_eq!(
            Timestamp::from_epoch_millis(1_796_205_600_123).to_rfc3339(),
            "2026-12-02T10:00:00.123Z"
        );
        assert_eq!(Timestamp::from_epoch_secs(4_107_542_399).to_rfc3339(), "2100-02-28T23:59:59Z");
    }

    proptest::proptest! {
        /// The formatted date agrees with counting days forward from the epoch.
        #[test]
        fn rfc3339_counts_days_like_the_calendar(days in 0u64..200_000, secs in 0u64..86_400) {
            let t = Timestamp::from_epoch_secs(days * 86_400 + secs);
            let text = t.to_rfc3339();
            let (y, mo, d) = walk_days(days);
            let date = format!("{y:04}-{mo:02}-{d:02}T");
            proptest::prop_assert!(text.starts_with(&date), "{} vs {}", text, date);
            let time = format!("{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60);
            proptest::prop_assert!(text.ends_with(&time));
        }
    }

    /// The date `days` after the epoch, by walking whole years and months.
    fn walk_days(mut days: u64) -> (u64, u64, u64) {
        let leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let mut year = 1970;
        loop {
            let len = if leap(year) { 366 } else { 365 };
            if days < len {
                break;
            }
            days -= len;
            year += 1;
        }
        let months = [31, if leap(year) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let mut month = 1;
        for len in months {
            if days < len {
                break;
            }
            days -= len;
            month += 1;
        }
        (year, month, days + 1)
    }

    #[test]
    fn serializes_as_a_bare_number_of_millis() {
        let json = serde_json::to_string(&Timestamp::from_epoch_secs(42)).unwrap();
        assert_eq!(json, "42000");
    }
}
