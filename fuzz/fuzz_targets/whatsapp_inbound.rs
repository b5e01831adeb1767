//! Meta's webhook: any body decodes or is refused without a panic, everything the API reads
//! of a decoded one can be read, and the signature check accepts exactly Meta's signature of
//! the exact body.
#![no_main]

use convo_wire::{meta, signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte says how much of the rest is the app secret; the remainder is the body.
    let (secret, body) = match data.split_first() {
        Some((n, rest)) => rest.split_at(usize::from(*n % 33).min(rest.len())),
        None => return,
    };
    let secret = String::from_utf8_lossy(secret);
    if let Ok(webhook) = meta::Webhook::parse(body) {
        for value in webhook.into_values() {
            for m in &value.messages {
                let _ = (m.text(), m.sender(), m.sent_at(), value.contact_name(&m.from));
            }
            for s in &value.statuses {
                let _ = (s.at(), s.error());
            }
        }
    }
    let header = signature::meta_sign(&secret, body);
    assert!(signature::meta_ok(&secret, body, &header));
    // A header made of the input itself verifies only if it is that signature.
    let forged = format!("sha256={}", String::from_utf8_lossy(body));
    assert_eq!(signature::meta_ok(&secret, body, &forged), forged.trim() == header);
    if let Some((last, head)) = body.split_last() {
        let mut changed = head.to_vec();
        changed.push(last ^ 0x80);
        assert!(!signature::meta_ok(&secret, &changed, &header));
    }
});
