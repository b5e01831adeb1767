//! RBM's envelopes: any body decodes or is refused without a panic, and so does the base64
//! event inside; the signature covers the decoded event's exact bytes.
#![no_main]

use convo_wire::{rbm, signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = rbm::Envelope::parse(data) {
        let _ = envelope.verification();
        if let Ok((bytes, event)) = envelope.event() {
            let _ = (event.user_text(), event.contact_message_from(), event.sent_at());
            let header = signature::rbm_sign("client-token", &bytes);
            assert!(signature::rbm_ok("client-token", &bytes, &header));
            assert!(!signature::rbm_ok("other-token", &bytes, &header));
        }
    }
    let _ = signature::rbm_ok("client-token", data, &String::from_utf8_lossy(data));
});
