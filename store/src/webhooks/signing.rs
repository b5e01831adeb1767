//! Standard Webhooks signatures (<https://www.standardwebhooks.com>).
//!
//! A delivery carries `webhook-id` (the event id, the receiver's de-duplication key),
//! `webhook-timestamp` (unix seconds of the attempt) and `webhook-signature`, a space-separated
//! list of `v1,<base64 HMAC-SHA256>` over `"{id}.{timestamp}.{body}"`. The HMAC key is the
//! base64-decoded part of a `whsec_...` secret. Receivers reject timestamps more than
//! [`TOLERANCE`] away from their clock, which bounds replays; the list form lets a sender sign
//! with an old and a new secret while a secret is rotated.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::STANDARD};
use http::{HeaderMap, HeaderValue};
use ring::{
    hmac,
    rand::{SecureRandom, SystemRandom},
};

/// The event id header.
pub const HEADER_ID: &str = "webhook-id";
/// The attempt time header (unix seconds).
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The signatures header.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// How far a timestamp may be from the receiver's clock, either way.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// The prefix of every secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a generated secret (the spec allows 24 to 64).
const SECRET_BYTES: usize = 24;

/// Why a signature could not be made or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The secret is not `whsec_` + base64 (or bare base64).
    #[error("the webhook secret is not valid base64")]
    InvalidSecret,
    /// A required header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but malformed.
    #[error("malformed header {0}")]
    InvalidHeader(&'static str),
    /// The timestamp is further than [`TOLERANCE`] from now (a replay, or a skewed clock).
    #[error("timestamp {timestamp} is outside the tolerance around {now}")]
    TimestampOutOfTolerance {
        /// The header's timestamp.
        timestamp: i64,
        /// The receiver's clock.
        now: i64,
    },
    /// No `v1` signature in the header matches the body.
    #[error("no matching signature")]
    NoMatchingSignature,
}

/// A new secret: `whsec_` + base64 of 24 random bytes from the OS generator.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    // The OS generator fails only on a broken platform, where no secret would be safe anyway.
    SystemRandom::new().fill(&mut bytes).expect("the OS random number generator failed");
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

fn key(secret: &str) -> Result<hmac::Key, SignatureError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let bytes = STANDARD.decode(encoded).map_err(|_| SignatureError::InvalidSecret)?;
    if bytes.is_empty() {
        return Err(SignatureError::InvalidSecret);
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    content
}

/// The `webhook-signature` value (`v1,<base64>`) of `body` sent as event `id` at `timestamp`
/// (unix seconds).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignatureError> {
    let tag = hmac::sign(&key(secret)?, &signed_content(id, timestamp, body));
    Ok(format!("v1,{}", STANDARD.encode(tag.as_ref())))
}

/// The three headers of a delivery attempt.
pub fn signed_headers(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<HeaderMap, SignatureError> {
    let signature = sign(secret, id, timestamp, body)?;
    let value =
        |v: &str, name| HeaderValue::from_str(v).map_err(|_| SignatureError::InvalidHeader(name));
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_ID, value(id, HEADER_ID)?);
    headers.insert(HEADER_TIMESTAMP, value(&timestamp.to_string(), HEADER_TIMESTAMP)?);
    headers.insert(HEADER_SIGNATURE, value(&signature, HEADER_SIGNATURE)?);
    Ok(headers)
}

/// Unix seconds of `t` (negative before the epoch).
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Checks a delivery as a receiver must: the timestamp within [`TOLERANCE`] of `now`, and at
/// least one `v1` signature of the header matching `body` (the raw bytes, before any JSON
/// parsing). Comparison is constant-time. Returns the event id on success.
pub fn verify(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<String, SignatureError> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .ok_or(SignatureError::MissingHeader(name))?
            .to_str()
            .map_err(|_| SignatureError::InvalidHeader(name))
    };
    let id = header(HEADER_ID)?;
    let timestamp: i64 = header(HEADER_TIMESTAMP)?
        .trim()
        .parse()
        .map_err(|_| SignatureError::InvalidHeader(HEADER_TIMESTAMP))?;
    let signatures = header(HEADER_SIGNATURE)?;
    let key = key(secret)?;
    let now = unix_seconds(now);
    let tolerance = i64::try_from(TOLERANCE.as_secs()).unwrap_or(i64::MAX);
    if timestamp.abs_diff(now) > tolerance.unsigned_abs() {
        return Err(SignatureError::TimestampOutOfTolerance { timestamp, now });
    }
    let content = signed_content(id, timestamp, body);
    let matched = signatures
        .split(' ')
        .filter_map(|s| s.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, sig)| STANDARD.decode(sig).ok())
        .any(|sig| hmac::verify(&key, &content, &sig).is_ok());
    if matched { Ok(id.to_owned()) } else { Err(SignatureError::NoMatchingSignature) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification and its reference libraries.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1_614_265_330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn at(secs: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap())
    }

    #[test]
    fn matches_the_specification_example() {
        let sig = sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.as_bytes()).unwrap();
        assert_eq!(sig, SPEC_SIGNATURE);
        let headers =
            signed_headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.as_bytes()).unwrap();
        assert_eq!(headers[HEADER_SIGNATURE], SPEC_SIGNATURE);
        let id = verify(SPEC_SECRET, &headers, SPEC_BODY.as_bytes(), at(SPEC_TIMESTAMP)).unwrap();
        assert_eq!(id, SPEC_ID);
    }

    #[test]
    fn tolerance_is_five_minutes_either_way() {
        let body = SPEC_BODY.as_bytes();
        let headers = signed_headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, body).unwrap();
        for skew in [-300, 300] {
            assert!(verify(SPEC_SECRET, &headers, body, at(SPEC_TIMESTAMP + skew)).is_ok());
        }
        for skew in [-301, 301] {
            assert_eq!(
                verify(SPEC_SECRET, &headers, body, at(SPEC_TIMESTAMP + skew)),
                Err(SignatureError::TimestampOutOfTolerance {
                    timestamp: SPEC_TIMESTAMP,
                    now: SPEC_TIMESTAMP + skew
                })
            );
        }
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let body = SPEC_BODY.as_bytes();
        let mut headers = signed_headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, body).unwrap();
        let other = generate_secret();
        let stale = sign(&other, SPEC_ID, SPEC_TIMESTAMP, body).unwrap();
        let list = format!("v1a,bm90LWVkMjU1MTk= {stale} {SPEC_SIGNATURE} garbage");
        headers.insert(HEADER_SIGNATURE, HeaderValue::from_str(&list).unwrap());
        assert!(verify(SPEC_SECRET, &headers, body, at(SPEC_TIMESTAMP)).is_ok());
        headers.insert(HEADER_SIGNATURE, HeaderValue::from_str(&stale).unwrap());
        assert_eq!(
            verify(SPEC_SECRET, &headers, body, at(SPEC_TIMESTAMP)),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn tampering_and_missing_headers_are_rejected() {
        let body = SPEC_BODY.as_bytes();
        let headers = signed_headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, body).unwrap();
        let now = at(SPEC_TIMESTAMP);
        assert_eq!(
            verify(SPEC_SECRET, &headers, br#"{"test": 2432232315}"#, now),
            Err(SignatureError::NoMatchingSignature)
        );
        let mut other_id = headers.clone();
        other_id.insert(HEADER_ID, HeaderValue::from_static("msg_other"));
        assert_eq!(
            verify(SPEC_SECRET, &other_id, body, now),
            Err(SignatureError::NoMatchingSignature)
        );
        for name in [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE] {
            let mut h = headers.clone();
            h.remove(name);
            assert_eq!(
                verify(SPEC_SECRET, &h, body, now),
                Err(SignatureError::MissingHeader(name))
            );
        }
        let mut bad_ts = headers.clone();
        bad_ts.insert(HEADER_TIMESTAMP, HeaderValue::from_static("yesterday"));
        assert_eq!(
            verify(SPEC_SECRET, &bad_ts, body, now),
            Err(SignatureError::InvalidHeader(HEADER_TIMESTAMP))
        );
        assert_eq!(verify("whsec_!!!", &headers, body, now), Err(SignatureError::InvalidSecret));
    }

    #[test]
    fn generated_secrets_are_fresh_and_usable() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        let raw = STANDARD.decode(a.strip_prefix(SECRET_PREFIX).unwrap()).unwrap();
        assert_eq!(raw.len(), SECRET_BYTES);
        // A bare base64 secret (without the prefix) is the same key.
        let bare = a.strip_prefix(SECRET_PREFIX).unwrap();
        assert_eq!(sign(&a, "id", 1, b"x").unwrap(), sign(bare, "id", 1, b"x").unwrap());
    }
}
