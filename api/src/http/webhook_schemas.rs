//! The OpenAPI 3.1 `webhooks` section: what convo POSTs to a workspace's endpoints.
//!
//! Hand-written, unlike the request and response schemas: the bodies are built by the worker
//! (`convo_store::webhooks::payload`), not by a type of this crate. They are pinned by an
//! end-to-end test (tests/e2e/webhook_payloads.rs) that validates real deliveries, received by
//! a signature-verifying receiver from `convo serve`, against these schemas; every object is
//! closed (`additionalProperties: false`), so a field added to a payload must be added here.

use serde_json::{Map, Value, json};

/// The event types and their body schemas.
pub(crate) const EVENTS: [(&str, &str, &str); 4] = [
    (
        "conversation.started",
        "ConversationStartedEvent",
        "A window opened on a contact's message. Carries that message.",
    ),
    (
        "conversation.message_exchanged",
        "ConversationMessageExchangedEvent",
        "A message went either way: the contact's (`direction: inbound`), or a business send the provider accepted (`outbound`). Carries the message: an agent replies to what it reads here.",
    ),
    (
        "conversation.ended",
        "ConversationEndedEvent",
        "A window closed. Carries the close reason and how billing resolved. Sent by the session, or by the reconciler for a session run that ended abnormally (`TERMINATED`, `FAILED`, `TIMED_OUT`, `CANCELED`, with a `temporal` block).",
    ),
    (
        "message.status_updated",
        "MessageStatusUpdatedEvent",
        "An outbound message's delivery status moved forward (`sent`, `delivered`, `read`, or `failed` with the provider's error), as a provider callback or the sandbox reported it. One per change; repeats and stale reports send nothing new. The envelope's `timestamp` is when convo applied it.",
    ),
];

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn nullable(schema: Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}]})
}

fn nullable_string(description: &str) -> Value {
    json!({"type": ["string", "null"], "description": description})
}

/// The OpenAPI `webhooks` object.
pub(crate) fn webhooks() -> Value {
    let headers = [
        ("webhook-id", "The event id: the same on every attempt; de-duplicate on it."),
        (
            "webhook-timestamp",
            "When this attempt was sent (wall clock, Unix seconds); reject it beyond 5 minutes of skew.",
        ),
        (
            "webhook-signature",
            "`v1,<base64 HMAC-SHA256 of \"{webhook-id}.{webhook-timestamp}.{body}\">` under the endpoint's `whsec_` secret (Standard Webhooks).",
        ),
    ];
    let parameters: Vec<Value> = headers
        .iter()
        .map(|(name, description)| {
            json!({"name": name, "in": "header", "required": true, "description": description,
                   "schema": {"type": "string"}})
        })
        .collect();
    let mut out = Map::new();
    for (event_type, schema, summary) in EVENTS {
        out.insert(
            event_type.to_owned(),
            json!({"post": {
                "summary": summary,
                "parameters": parameters,
                "requestBody": {"required": true, "content": {"application/json": {"schema": reference(schema)}}},
                "responses": {
                    "2XX": {"description": "Delivered. Any other answer is retried on the endpoint's schedule; 410 Gone disables the endpoint."}
                }
            }}),
        );
    }
    Value::Object(out)
}

/// The components the `webhooks` section refers to.
pub(crate) fn schemas() -> Map<String, Value> {
    let time = reference("WebhookTime");
    let channel = json!({"type": "string", "enum": ["whatsapp", "sms", "rcs", "messenger", "instagram", "email"]});
    let common = |extra: Value, required_extra: &[&str]| -> Value {
        let mut properties = json!({
            "workspace_id": {"type": "string"},
            "session_id": {"type": "string", "description": "The contact's session (the first run of its chain)."},
            "seq": {"type": ["integer", "null"], "minimum": 0, "description": "Grows by one per event of the session: discard a delivery older than one already applied."},
            "contact_id": {"type": "string", "description": "The same as `contact.id`."},
            "contact": reference("WebhookContact"),
            "channel": channel,
            "conversation": {"type": ["integer", "null"], "minimum": 0, "description": "The window's ordinal within the session (`window.ordinal`); null for a message sent with no window open."},
            "window": nullable(reference("WebhookWindow")),
            "linked_conversation": nullable(reference("WebhookLinkedConversation")),
        });
        let mut required: Vec<Value> = [
            "workspace_id",
            "session_id",
            "seq",
            "contact_id",
            "contact",
            "channel",
            "conversation",
            "window",
            "linked_conversation",
        ]
        .iter()
        .map(|s| json!(s))
        .collect();
        if let (Some(p), Value::Object(extra)) = (properties.as_object_mut(), extra) {
            p.extend(extra);
        }
        required.extend(required_extra.iter().map(|s| json!(s)));
        json!({"type": "object", "additionalProperties": false, "properties": properties, "required": required})
    };
    let envelope = |event_type: &str, data: Value| -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "description": "Standard Webhooks envelope.",
            "properties": {
                "type": {"const": event_type},
                "timestamp": {"allOf": [time.clone()], "description": "When the event occurred, on the session's clock (the same clock as the window's times)."},
                "data": data,
            },
            "required": ["type", "timestamp", "data"],
        })
    };
    let started = common(json!({"message": nullable(reference("WebhookMessage"))}), &["message"]);
    let exchanged = common(
        json!({
            "message_id": {"type": "string"},
            "direction": {"enum": ["inbound", "outbound"]},
            "at": time,
            "expires_at": nullable(time.clone()),
            "message": reference("WebhookMessage"),
        }),
        &["message_id", "direction", "at", "expires_at", "message"],
    );
    let ended = common(
        json!({
            "reason": {"enum": ["EXPIRED", "EXPLICIT", "COMPLIANCE_STOP", "TERMINATED", "FAILED", "TIMED_OUT", "CANCELED"]},
            "at": time,
            "inbound_messages": {"type": "integer", "minimum": 0},
            "outbound_messages": {"type": "integer", "minimum": 0},
            "billing": reference("WebhookBilling"),
            "temporal": {
                "type": "object", "additionalProperties": false,
                "description": "Only from the reconciler: the run that ended without closing its window.",
                "properties": {"run_id": {"type": "string"}, "detail": {"type": "string"}},
                "required": ["run_id", "detail"],
            },
        }),
        &["reason", "at", "inbound_messages", "outbound_messages", "billing"],
    );
    let mut out = Map::new();
    out.insert(
        "WebhookTime".into(),
        json!({"type": "string", "format": "date-time",
               "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
               "description": "RFC 3339 in UTC with milliseconds."}),
    );
    out.insert(
        "WebhookContact".into(),
        json!({"type": "object", "additionalProperties": false,
               "properties": {
                   "id": {"type": "string"},
                   "address": nullable_string("Where the contact is reached on the channel: E.164 number, or e-mail address."),
                   "display_name": nullable_string("The contact's name, if known."),
               },
               "required": ["id", "address", "display_name"]}),
    );
    out.insert(
        "WebhookWindow".into(),
        json!({"type": "object", "additionalProperties": false,
               "properties": {
                   "id": {"type": "string", "description": "`win_{session_id}_c{ordinal}`."},
                   "ordinal": {"type": "integer", "minimum": 1},
                   "opened_at": nullable(time.clone()),
                   "expires_at": {"anyOf": [time.clone(), {"type": "null"}], "description": "Until when free-form is allowed (for `ended`: as it stood when the window closed)."},
                   "billing_session_ends_at": nullable(time.clone()),
               },
               "required": ["id", "ordinal", "opened_at", "expires_at", "billing_session_ends_at"]}),
    );
    out.insert(
        "WebhookLinkedConversation".into(),
        json!({"type": "object", "additionalProperties": false,
               "description": "The outbound conversation (`/v1/conversations/{id}`) the session is linked to.",
               "properties": {"id": {"type": "string"}}, "required": ["id"]}),
    );
    out.insert(
        "WebhookMessage".into(),
        json!({"type": "object", "additionalProperties": false,
               "properties": {
                   "id": {"type": "string"},
                   "direction": {"enum": ["inbound", "outbound"]},
                   "channel": channel,
                   "at": time,
                   "text": nullable_string("The text: the contact's message, a free-form body, or a template as rendered."),
                   "content": {"type": ["object", "null"], "description": "An outbound message's content as sent (`kind`: `text`, `template`, ...).",
                               "properties": {"kind": {"type": "string"}}, "required": ["kind"]},
                   "template": nullable(reference("WebhookTemplate")),
                   "sender": reference("WebhookSender"),
                   "provider_message_id": nullable_string("The provider's id for the message."),
                   "postback_data": nullable_string("An inbound tap's postback data: the RCS suggested reply or action the contact chose."),
               },
               "required": ["id", "direction", "channel", "at", "text", "content", "template", "sender", "provider_message_id", "postback_data"]}),
    );
    out.insert(
        "WebhookTemplate".into(),
        json!({"type": "object", "additionalProperties": false,
               "properties": {
                   "name": {"type": "string"},
                   "language": {"type": ["string", "null"]},
                   "variables": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Every placeholder's value by name."},
               },
               "required": ["name", "language", "variables"]}),
    );
    out.insert(
        "WebhookSender".into(),
        json!({"oneOf": [
            {"type": "object", "additionalProperties": false, "properties": {"type": {"const": "contact"}}, "required": ["type"]},
            {"type": "object", "additionalProperties": false, "properties": {"type": {"const": "automated"}}, "required": ["type"]},
            {"type": "object", "additionalProperties": false,
             "properties": {"type": {"const": "human_agent"}, "agent_id": {"type": ["string", "null"]}},
             "required": ["type", "agent_id"]},
        ]}),
    );
    out.insert(
        "WebhookBilling".into(),
        json!({"type": "object", "additionalProperties": false,
               "properties": {
                   "outcome": {"enum": ["charged", "released", "none"], "description": "`charged` if anything was charged, else `released` if holds were released, else `none`."},
                   "sessions": {"type": "integer", "minimum": 0, "description": "Billing sessions with at least one send."},
                   "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "The ISO 4217 currency of the amounts."},
                   "charged": {"type": "number", "minimum": 0, "description": "Charged, in the currency's major units (0.25), rendered exactly from the ledger's minor units."},
                   "released": {"type": "number", "minimum": 0, "description": "Released back to the balance, in major units."},
                   "holds": {"type": "array", "items": {"type": "string"}, "description": "Only from the reconciler: the holds it released."},
               },
               "required": ["outcome", "sessions", "currency", "charged", "released"]}),
    );
    out.insert(EVENTS[0].1.into(), envelope(EVENTS[0].0, started));
    out.insert(EVENTS[1].1.into(), envelope(EVENTS[1].0, exchanged));
    out.insert(EVENTS[2].1.into(), envelope(EVENTS[2].0, ended));
    let status = json!({"enum": ["queued", "sent", "delivered", "read", "failed"]});
    let status_updated = json!({"type": "object", "additionalProperties": false,
        "properties": {
            "workspace_id": {"type": "string"},
            "message_id": {"type": "string", "description": "convo's id (`GET /v1/messages/{id}`)."},
            "contact_id": {"type": "string"},
            "channel": channel,
            "provider_message_id": nullable_string("The provider's id for the message."),
            "status": status.clone(),
            "previous_status": status,
            "error": nullable(json!({"type": "object", "additionalProperties": false,
                "properties": {"code": {"type": ["string", "null"]}, "message": {"type": ["string", "null"]}},
                "required": ["code", "message"],
                "description": "For `failed`: the provider's error code (`131047`, `30003`) and text."})),
            "source": {"enum": ["convo", "whatsapp", "twilio", "rbm", "sandbox"], "description": "Who reported it: `convo` for the send's own outcome (the provider took it: `sent`; refused it: `failed`), else the provider's callback or the sandbox."},
            "provider_at": nullable(json!({"allOf": [time.clone()], "description": "When the provider says it happened."})),
        },
        "required": ["workspace_id", "message_id", "contact_id", "channel", "provider_message_id",
                     "status", "previous_status", "error", "source", "provider_at"]});
    out.insert(EVENTS[3].1.into(), envelope(EVENTS[3].0, status_updated));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator(doc: &Value, name: &str) -> jsonschema::Validator {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/components/schemas/{name}"),
            "components": doc["components"],
        });
        jsonschema::draft202012::new(&root).unwrap()
    }

    #[test]
    fn every_event_is_documented_and_its_schema_compiles() {
        let doc = super::super::openapi::document();
        for (event_type, schema, _) in EVENTS {
            let body = &doc["webhooks"][event_type]["post"]["requestBody"];
            assert_eq!(
                body["content"]["application/json"]["schema"]["$ref"],
                format!("#/components/schemas/{schema}")
            );
            validator(&doc, schema);
        }
    }

    #[test]
    fn times_are_rfc3339_with_milliseconds() {
        let doc = super::super::openapi::document();
        let time = validator(&doc, "WebhookTime");
        assert!(time.is_valid(&json!("2026-12-02T10:00:00.000Z")));
        for bad in
            [json!("2026-12-02T10:00:00Z"), json!(1_796_205_600_000_u64), json!("1796205600000ms")]
        {
            assert!(!time.is_valid(&bad), "{bad}");
        }
    }
}
