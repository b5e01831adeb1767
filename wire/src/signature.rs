//! Each provider's webhook signature, checked in constant time. A header that is missing its
//! prefix, is not valid hex or base64, or has the wrong length simply does not verify.

use base64::{Engine, engine::general_purpose::STANDARD};
use ring::hmac;

/// Meta's `X-Hub-Signature-256`: `sha256=<hex>` HMAC-SHA256 of the exact body under the app
/// secret.
pub fn meta_ok(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix("sha256=") else { return false };
    let Some(tag) = decode_hex(hex) else { return false };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::verify(&key, body, &tag).is_ok()
}

/// The `X-Hub-Signature-256` header Meta would send for `body` (for tests and tools).
pub fn meta_sign(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The string Twilio signs: the full URL, then every POST parameter's name and value, sorted
/// by name (and value, for repeated names).
fn twilio_data(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    data
}

/// Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1, under the auth token, of the URL followed by
/// each parameter's name and value, sorted by name.
pub fn twilio_ok(token: &str, url: &str, params: &[(String, String)], header: &str) -> bool {
    let Ok(tag) = STANDARD.decode(header.trim()) else { return false };
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes());
    hmac::verify(&key, twilio_data(url, params).as_bytes(), &tag).is_ok()
}

/// The `X-Twilio-Signature` Twilio would send (for tests and tools).
pub fn twilio_sign(token: &str, url: &str, params: &[(String, String)]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes());
    STANDARD.encode(hmac::sign(&key, twilio_data(url, params).as_bytes()).as_ref())
}

/// RBM's `X-Goog-Signature`: base64 HMAC-SHA512 of the decoded event under the client token.
pub fn rbm_ok(token: &str, event: &[u8], header: &str) -> bool {
    let Ok(tag) = STANDARD.decode(header.trim()) else { return false };
    let key = hmac::Key::new(hmac::HMAC_SHA512, token.as_bytes());
    hmac::verify(&key, event, &tag).is_ok()
}

/// The `X-Goog-Signature` RBM would send (for tests and tools).
pub fn rbm_sign(token: &str, event: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA512, token.as_bytes());
    STANDARD.encode(hmac::sign(&key, event).as_ref())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn meta_signatures_verify_only_with_the_secret_and_the_exact_body() {
        let body = br#"{"entry":[]}"#;
        let header = meta_sign("s3cret", body);
        assert!(meta_ok("s3cret", body, &header));
        assert!(!meta_ok("other", body, &header));
        assert!(!meta_ok("s3cret", br#"{"entry": []}"#, &header));
        assert!(!meta_ok("s3cret", body, header.trim_start_matches("sha256=")));
        assert!(!meta_ok("s3cret", body, "sha256=zz"));
    }

    /// The signed string is the URL followed by the parameters sorted by name, whatever order
    /// they arrived in (computed here by hand, as Twilio's documentation spells it); any change
    /// to the URL, a value or the token breaks it.
    #[test]
    fn twilio_signatures_cover_url_and_sorted_params() {
        let url = "https://example.com/myapp";
        let data = format!("{url}BodyhiFrom+12349013030To+18005551212");
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, b"12345");
        let sig = STANDARD.encode(hmac::sign(&key, data.as_bytes()).as_ref());
        let params = |body: &str| -> Vec<(String, String)> {
            [("To", "+18005551212"), ("From", "+12349013030"), ("Body", body)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        };
        assert_eq!(twilio_sign("12345", url, &params("hi")), sig);
        assert!(twilio_ok("12345", url, &params("hi"), &sig));
        assert!(!twilio_ok("12345", url, &params("ho"), &sig));
        assert!(!twilio_ok("12345", "https://example.com/other", &params("hi"), &sig));
        assert!(!twilio_ok("54321", url, &params("hi"), &sig));
        assert!(!twilio_ok("12345", url, &params("hi"), "not base64!"));
    }

    proptest! {
        /// A signature verifies for its own secret and body, and for no changed body.
        #[test]
        fn each_scheme_verifies_exactly_what_it_signed(
            secret in ".{0,40}",
            body in proptest::collection::vec(any::<u8>(), 0..200),
            flip in any::<prop::sample::Index>(),
        ) {
            prop_assert!(meta_ok(&secret, &body, &meta_sign(&secret, &body)));
            prop_assert!(rbm_ok(&secret, &body, &rbm_sign(&secret, &body)));
            if !body.is_empty() {
                let mut changed = body.clone();
                let i = flip.index(changed.len());
                changed[i] ^= 0x01;
                prop_assert!(!meta_ok(&secret, &changed, &meta_sign(&secret, &body)));
                prop_assert!(!rbm_ok(&secret, &changed, &rbm_sign(&secret, &body)));
            }
        }
    }
}
