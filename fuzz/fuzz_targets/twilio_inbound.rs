//! Twilio's form posts: any body decodes to parameters and to a message or a status without
//! a panic, and the signature covers the URL and every parameter.
#![no_main]

use convo_wire::{signature, twilio};
use libfuzzer_sys::fuzz_target;

const URL: &str = "https://convo.example/v1/inbound/twilio";

fuzz_target!(|data: &[u8]| {
    // The first byte says how much of the rest is the auth token; the remainder is the body.
    let (token, body) = match data.split_first() {
        Some((n, rest)) => rest.split_at(usize::from(*n % 33).min(rest.len())),
        None => return,
    };
    let token = String::from_utf8_lossy(token);
    let form = twilio::Form::parse(body);
    let event = form.event();
    let _ = (event.business_number(), event.sid());
    let header = signature::twilio_sign(&token, URL, &form.params);
    assert!(signature::twilio_ok(&token, URL, &form.params, &header));
    assert!(!signature::twilio_ok(&token, &format!("{URL}?x"), &form.params, &header));
    let mut more = form.params.clone();
    more.push(("Injected".to_owned(), "1".to_owned()));
    assert!(!signature::twilio_ok(&token, URL, &more, &header));
    let _ = signature::twilio_ok(&token, URL, &form.params, &String::from_utf8_lossy(body));
});
