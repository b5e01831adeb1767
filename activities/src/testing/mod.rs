//! Test helpers shipped from the library behind the `testing` feature, so other crates' tests
//! (the end-to-end suite) can use them. Not part of the public API.

mod webhook_receiver;

pub use webhook_receiver::{ReceivedWebhook, Reply, WebhookReceiver};
