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

    /// Midnight UTC of the first day of this instant's month (billing volumes count from it).
    pub fn month_start(self) -> Timestamp {
        let (year, month, _) = civil_from_days(self.0 / 86_400_000);
        let days = days_from_civil(year, month, 1).unwrap_or(0);
        Timestamp(days * 86_400_000)
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is not earlier.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// RFC 3339 in UTC with milliseconds, always: `2026-12-02T10:00:00.000Z`. convo's one
    /// time format, in API answers, webhook payloads and error messages.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0 / 1000;
        let millis = self.0 % 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days);
        let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
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

/// RFC 3339 with milliseconds ([`Timestamp::to_rfc3339`]), so messages that name an instant
/// read like the API's own times.
impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// `#[serde(with = "convo_domain::time::rfc3339")]`: a [`Timestamp`] as an RFC 3339 string
/// with milliseconds, for API and webhook JSON. (Workflow payloads keep the bare number.)
pub mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use super::Timestamp;

    /// Writes `t` as `2026-12-02T10:00:00.000Z`.
    pub fn serialize<S: Serializer>(t: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&t.to_rfc3339())
    }

    /// Reads what [`serialize`] writes (UTC, `Z`, zero to three fraction digits).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_rfc3339(&text)
            .ok_or_else(|| D::Error::custom(format!("not an RFC 3339 UTC time: {text:?}")))
    }

    /// The same for an `Option<Timestamp>` (`null` for `None`).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        use super::Timestamp;

        /// Writes `Some(t)` as a string, `None` as `null`.
        pub fn serialize<S: Serializer>(
            t: &Option<Timestamp>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, serializer),
                None => serializer.serialize_none(),
            }
        }

        /// Reads a string or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Timestamp>, D::Error> {
            #[derive(Deserialize)]
            struct Wrap(#[serde(with = "super")] Timestamp);
            Ok(Option::<Wrap>::deserialize(deserializer)?.map(|Wrap(t)| t))
        }
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian date (Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let y = if month <= 2 { year.checked_sub(1)? } else { year };
    let era = y / 400;
    let yoe = y % 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.fff]Z` (UTC, as [`Timestamp::to_rfc3339`] writes it); `None`
/// for anything else.
pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let s = text.get(r)?;
        if s.bytes().all(|c| c.is_ascii_digit()) { s.parse().ok() } else { None }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, m, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = text.get(19..)?.strip_suffix('Z')?;
    let millis = match rest.strip_prefix('.') {
        None if rest.is_empty() => 0,
        Some(f) if (1..=3).contains(&f.len()) && f.bytes().all(|c| c.is_ascii_digit()) => {
            f.parse::<u64>().ok()? * 10u64.pow(3 - u32::try_from(f.len()).ok()?)
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    let t = Timestamp::from_epoch_millis(((days * 86_400 + h * 3600 + m * 60 + s) * 1000) + millis);
    // A day past the month's end (`02-30`) would land in the next month.
    (civil_from_days(days) == (year, month, day)).then_some(t)
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
        assert_eq!(Timestamp::EPOCH.to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp::from_epoch_secs(951_782_400).to_rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_epoch_millis(1_796_205_600_123).to_rfc3339(),
            "2026-12-02T10:00:00.123Z"
        );
        assert_eq!(
            Timestamp::from_epoch_secs(4_107_542_399).to_rfc3339(),
            "2100-02-28T23:59:59.000Z"
        );
        assert_eq!(Timestamp::from_epoch_millis(1_500).to_string(), "1970-01-01T00:00:01.500Z");
    }

    #[test]
    fn rfc3339_serde_round_trips_and_refuses_other_forms() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct T {
            #[serde(with = "rfc3339")]
            at: Timestamp,
            #[serde(with = "rfc3339::option")]
            maybe: Option<Timestamp>,
        }
        let t = T { at: Timestamp::from_epoch_millis(1_796_205_600_123), maybe: None };
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"at":"2026-12-02T10:00:00.123Z","maybe":null}"#);
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), t);
        for bad in ["1796205600123", r#""2026-02-30T00:00:00Z""#, r#""2026-12-02 10:00:00Z""#] {
            let text = format!(r#"{{"at":{bad},"maybe":null}}"#);
            assert!(serde_json::from_str::<T>(&text).is_err(), "{bad}");
        }
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
            let time = format!("{:02}:{:02}:{:02}.000Z", secs / 3600, secs % 3600 / 60, secs % 60);
            proptest::prop_assert!(text.ends_with(&time));
            proptest::prop_assert_eq!(parse_rfc3339(&text), Some(t));
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

#[cfg(test)]
mod month_tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_month_starts_at_midnight_of_its_first_day() {
        let t = parse_rfc3339("2026-12-02T10:40:00.123Z").unwrap();
        assert_eq!(t.month_start().to_rfc3339(), "2026-12-01T00:00:00.000Z");
        let leap = parse_rfc3339("2024-02-29T23:59:59.999Z").unwrap();
        assert_eq!(leap.month_start().to_rfc3339(), "2024-02-01T00:00:00.000Z");
    }

    proptest! {
        /// The month's start is never after the instant, less than 31 days before it, on day 1
        /// at midnight, and the same for every instant of that month.
        #[test]
        fn month_start_is_the_first_midnight(millis in 0u64..4_102_444_800_000) {
            let t = Timestamp::from_epoch_millis(millis);
            let start = t.month_start();
            prop_assert!(start <= t);
            prop_assert!(t.saturating_since(start) < Duration::from_secs(31 * 86_400));
            prop_assert!(start.to_rfc3339().ends_with("-01T00:00:00.000Z"));
            prop_assert_eq!(start.month_start(), start);
        }
    }
}
