//! What a webhook is before it is delivered: the event body ([`event_body`]), the payloads of
//! the `conversation.*` and `message.*` events ([`payload`]), Standard Webhooks signatures
//! ([`signing`]) and the destination policy an endpoint's URL must meet ([`destination`]).
//!
//! The outbox itself is the store's ([`crate::Store::enqueue_webhook`]); the dispatcher that
//! drains it is `convo_activities::webhooks`.

pub mod destination;
pub mod payload;
pub mod signing;

use convo_domain::Timestamp;
use serde::Serialize;

pub use destination::Destinations;
pub use signing::{SignatureError, generate_secret, sign, signed_headers, verify};

/// The envelope every webhook body has: `{"type", "timestamp", "data"}`, in that order.
#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    data: &'a serde_json::Value,
}

/// The body of an event of `event_type` that occurred at `occurred_at`: `timestamp` is when the
/// event happened (RFC 3339, UTC, milliseconds), not when an attempt was made; attempts carry
/// their own time in `webhook-timestamp`.
pub fn event_body(event_type: &str, occurred_at: Timestamp, data: &serde_json::Value) -> String {
    let envelope = Envelope { event_type, timestamp: rfc3339(occurred_at), data };
    // A struct of strings and a `Value` always serialises.
    serde_json::to_string(&envelope).unwrap_or_default()
}

/// `t` as RFC 3339 in UTC with millisecond precision (`2021-02-24T14:22:10.000Z`).
pub fn rfc3339(t: Timestamp) -> String {
    let millis = i64::try_from(t.as_epoch_millis()).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_type_timestamp_data() {
        let data = serde_json::json!({"reason": "EXPIRED"});
        let body = event_body(
            "conversation.ended",
            Timestamp::from_epoch_millis(1_614_265_330_250),
            &data,
        );
        assert_eq!(
            body,
            r#"{"type":"conversation.ended","timestamp":"2021-02-25T15:02:10.250Z","data":{"reason":"EXPIRED"}}"#
        );
    }
}
