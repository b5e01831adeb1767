//! Signed webhook delivery: the [`WebhookDispatcher`] that drains the store's outbox.
//!
//! The flow: the workflow's activity calls [`convo_store::Store::enqueue_webhook`] (one short
//! transaction, idempotent on the event id), which writes one delivery per matching endpoint.
//! A dispatcher running in the worker process claims due deliveries, POSTs them signed
//! ([`convo_store::webhooks::signing`]), logs every attempt and reschedules failures on
//! [`DispatcherConfig::retry_schedule`]. All state is in the database, so a crash or restart
//! loses nothing; delivery is at least once and receivers de-duplicate on `webhook-id`.

mod dispatcher;

pub use dispatcher::{DispatcherConfig, DispatcherHandle, WebhookDispatcher};
