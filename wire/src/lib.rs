//! What providers post to convo, decoded and authenticated without I/O: Meta's WhatsApp Cloud
//! API webhooks ([`meta`]), Twilio's form posts ([`twilio`]), RBM's Pub/Sub-style envelopes
//! ([`rbm`]), and each provider's signature scheme ([`signature`]); and what the sandbox
//! provider records of a send ([`sandbox`]).
//!
//! The decoders are lenient where providers add fields and total on any input: they return an
//! error, never panic, for whatever bytes arrive (the `fuzz/` targets hold them to that). The
//! API layer looks up the receiving channel and applies what they decode.

pub mod meta;
pub mod rbm;
pub mod sandbox;
pub mod signature;
pub mod twilio;
