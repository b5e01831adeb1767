//! The OpenAPI 3.1 document served at `/openapi.json`.
//!
//! It is built from [`OPERATIONS`], a table kept next to the router, with request and response
//! schemas written against the types in [`crate::app::types`]; a test checks that every route
//! the router serves is in the table and the other way round.

use serde_json::{Map, Value, json};

/// One documented operation.
pub(crate) struct Operation {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) summary: &'static str,
    /// Needs an API key.
    pub(crate) auth: bool,
    /// Honours Idempotency-Key.
    pub(crate) idempotent: bool,
    /// Name of the request body's schema in `components.schemas`.
    pub(crate) request: Option<&'static str>,
    /// The success status and its schema's name.
    pub(crate) response: (u16, Option<&'static str>),
}

macro_rules! op {
    ($m:literal $p:literal, $s:literal, auth=$a:literal, idem=$i:literal, req=$r:expr, res=($st:literal, $rs:expr)) => {
        Operation {
            method: $m,
            path: $p,
            summary: $s,
            auth: $a,
            idempotent: $i,
            request: $r,
            response: ($st, $rs),
        }
    };
}

/// Every route of [`super::router`].
pub(crate) const OPERATIONS: &[Operation] = &[
    op!("post" "/v1/conversations/compose", "Start a conversation with one contact", auth=true, idem=true, req=Some("ComposeRequest"), res=(202, Some("ComposeAccepted"))),
    op!("post" "/v1/conversations/proactive", "Start one templated conversation per recipient", auth=true, idem=true, req=Some("ProactiveRequest"), res=(202, Some("ProactiveAccepted"))),
    op!("get" "/v1/conversations/{id}", "A conversation: status, messages, assignee, window", auth=true, idem=false, req=None, res=(200, Some("Conversation"))),
    op!("post" "/v1/conversations/{id}/messages", "Send in a conversation (text needs an open window)", auth=true, idem=true, req=Some("ConversationMessage"), res=(202, Some("MessageAccepted"))),
    op!("post" "/v1/conversations/{id}/take-over", "A human agent takes over", auth=true, idem=true, req=Some("TakeOver"), res=(200, Some("Ok"))),
    op!("post" "/v1/conversations/{id}/resolve", "Resolve (and close the window)", auth=true, idem=true, req=Some("Resolve"), res=(200, Some("Ok"))),
    op!("get" "/v1/channels", "The workspace's channels", auth=true, idem=false, req=None, res=(200, Some("ChannelList"))),
    op!("post" "/v1/messages", "Send one message (MESSAGE, CONVERSATION or NEWSLETTER)", auth=true, idem=true, req=Some("SendMessage"), res=(202, Some("MessageAccepted"))),
    op!("get" "/v1/windows/{contact}", "A contact's window (E.164, e-mail or contact id)", auth=true, idem=false, req=None, res=(200, Some("Window"))),
    op!("post" "/v1/windows/{contact}/close", "Close a contact's window (idempotent)", auth=true, idem=true, req=None, res=(200, Some("Window"))),
    op!("post" "/v1/inbound/sandbox", "Simulate a contact's message", auth=true, idem=true, req=Some("SandboxInbound"), res=(202, Some("Inbound"))),
    op!("post" "/v1/inbound/whatsapp", "Meta WhatsApp webhook (X-Hub-Signature-256)", auth=false, idem=false, req=Some("Object"), res=(200, Some("Inbound"))),
    op!("get" "/v1/inbound/whatsapp", "Meta's subscription handshake", auth=false, idem=false, req=None, res=(200, None)),
    op!("post" "/v1/inbound/twilio", "Twilio SMS webhook and status callback (X-Twilio-Signature)", auth=false, idem=false, req=None, res=(200, None)),
    op!("get" "/v1/sandbox/outbox", "Sends the sandbox provider received, newest last", auth=true, idem=false, req=None, res=(200, Some("Object"))),
    op!("post" "/v1/webhook-endpoints", "Subscribe a URL (the answer has its signing secret)", auth=true, idem=true, req=Some("CreateWebhookEndpoint"), res=(201, Some("WebhookEndpoint"))),
    op!("get" "/v1/webhook-endpoints", "The workspace's webhook endpoints", auth=true, idem=false, req=None, res=(200, Some("WebhookEndpointList"))),
    op!("delete" "/v1/webhook-endpoints/{id}", "Delete a webhook endpoint", auth=true, idem=false, req=None, res=(204, None)),
    op!("get" "/v1/webhook-deliveries", "The webhook delivery log, newest first", auth=true, idem=false, req=None, res=(200, Some("DeliveryList"))),
    op!("get" "/healthz", "Liveness", auth=false, idem=false, req=None, res=(200, None)),
    op!("get" "/readyz", "Readiness: Temporal and the database reachable", auth=false, idem=false, req=None, res=(200, None)),
    op!("get" "/metrics", "Prometheus metrics", auth=false, idem=false, req=None, res=(200, None)),
    op!("get" "/openapi.json", "This document", auth=false, idem=false, req=None, res=(200, None)),
];

fn s(t: &str) -> Value {
    json!({"type": t})
}

fn nullable(t: &str) -> Value {
    json!({"type": [t, "null"]})
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn object(required: &[&str], props: Value) -> Value {
    json!({"type": "object", "required": required, "properties": props, "additionalProperties": false})
}

fn schemas() -> Value {
    let template = object(
        &["name"],
        json!({"name": s("string"), "variables": {"type": "object", "additionalProperties": s("string")}}),
    );
    let window = json!({"type": "object", "properties": {
        "contact_id": s("string"), "status": {"enum": ["open", "closed"]}, "open": s("boolean"),
        "channel": nullable("string"), "opened_at": nullable("string"), "expires_at": nullable("string"),
        "billing_session_ends_at": nullable("string"),
        "close_reason": {"enum": ["EXPIRED", "EXPLICIT", "COMPLIANCE_STOP", null]},
        "in_session": s("boolean"), "last_inbound_at": nullable("string")}});
    let list = |item: Value| json!({"type": "object", "properties": {"data": {"type": "array", "items": item}}});
    json!({
        "Error": {"type": "object", "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"enum": ["no_active_session", "contact_opted_out", "insufficient_balance", "validation_failed", "not_found", "unauthorized",
                              "idempotency_key_reused", "idempotency_key_in_use", "rate_limited", "channel_mismatch", "provider_rejected", "conflict",
                              "conversation_closed", "unavailable", "payload_too_large", "unsupported_media_type", "method_not_allowed",
                              "channel_not_configured", "internal"]},
            "message": s("string"), "field": s("string")}}}},
        "Object": s("object"),
        "Template": template,
        "ComposeRequest": object(&["channel_id", "content"], json!({
            "channel_id": s("string"), "contact_id": s("string"), "contact_email": s("string"), "contact_phone": s("string"),
            "contact_name": s("string"), "subject": s("string"), "content": s("string"), "template": r("Template")})),
        "ComposeAccepted": json!({"type": "object", "properties": {"conversation_id": s("string"), "status": s("string")}}),
        "ProactiveRequest": object(&["channel_id", "template", "recipients"], json!({
            "channel_id": s("string"), "template": r("Template"),
            "recipients": {"type": "array", "items": {"oneOf": [s("string"), object(&[], json!({"contact_id": s("string"), "phone": s("string"), "email": s("string"), "name": s("string")}))]}},
            "live_agent": s("string"), "bot_id": s("string"), "queue": s("string")})),
        "ProactiveAccepted": json!({"type": "object", "properties": {"accepted": s("integer"), "failed": s("integer"), "queue": s("string"),
            "conversations": {"type": "array", "items": {"type": "object", "properties": {"recipient": s("string"), "conversation_id": s("string"), "status": s("string"), "error": r("Error")}}}}}),
        "Conversation": json!({"type": "object", "properties": {"conversation_id": s("string"),
            "status": {"enum": ["pending", "awaiting_reply", "active", "resolved", "expired", "failed"]},
            "channel": s("string"), "channel_id": s("string"), "contact_id": nullable("string"), "assignee": s("object"),
            "messages": {"type": "array", "items": {"type": "object", "properties": {"message_id": s("string"), "direction": {"enum": ["inbound", "outbound"]}, "text": s("string"), "at": nullable("string")}}},
            "error": nullable("object"), "window": window.clone(), "created_at": s("string")}}),
        "ConversationMessage": {"oneOf": [
            object(&["type", "text"], json!({"type": {"const": "text"}, "text": object(&["body"], json!({"body": s("string")}))})),
            object(&["type", "template"], json!({"type": {"const": "template"}, "template": r("Template")}))]},
        "TakeOver": object(&["agent_id"], json!({"agent_id": s("string")})),
        "Resolve": object(&[], json!({"close_window": s("boolean")})),
        "Ok": json!({"type": "object", "properties": {"ok": s("boolean")}}),
        "ChannelList": list(json!({"type": "object", "properties": {"id": s("string"), "kind": s("string"), "provider": s("string"), "address": s("string"), "enabled": s("boolean")}})),
        "SendMessage": object(&["to", "channel", "message_type", "content"], json!({
            "to": s("string"), "channel": s("string"), "message_type": {"enum": ["MESSAGE", "CONVERSATION", "NEWSLETTER"]},
            "content": object(&[], json!({"text": s("string"), "subject": s("string"), "template": r("Template"), "suggestions": {}, "rich_card": {}, "carousel": {}})),
            "traffic_type": s("string")})),
        "MessageAccepted": json!({"type": "object", "properties": {"message_id": s("string"), "status": {"const": "queued"}, "created_at": s("string"),
            "conversation_expires_at": nullable("string"), "contact_id": s("string"), "traffic_type": s("string"),
            "billing": {"type": "object", "properties": {"channel": s("string"), "message_type": {"enum": ["MESSAGE", "CONVERSATION", "NEWSLETTER"]},
                "in_session": s("boolean"), "hold_amount": s("integer"), "message_price": s("integer"),
                "balance": {"type": "object", "properties": {"free": s("integer"), "reserved": s("integer"), "total": s("integer")}}}}}}),
        "Window": window,
        "SandboxInbound": object(&["from", "channel", "text"], json!({"from": s("string"), "to": s("string"), "channel": s("string"), "text": s("string"), "provider_message_id": s("string"), "timestamp": s("string")})),
        "Inbound": json!({"type": "object", "properties": {"received": s("integer"), "duplicates": s("integer"), "statuses": s("integer"), "ignored": s("integer"), "contact_ids": {"type": "array", "items": s("string")}}}),
        "CreateWebhookEndpoint": object(&["url"], json!({"url": s("string"), "event_types": {"type": "array", "items": s("string")}})),
        "WebhookEndpoint": json!({"type": "object", "properties": {"id": s("string"), "url": s("string"), "event_types": {"type": "array", "items": s("string")}, "enabled": s("boolean"), "disabled_reason": nullable("string"), "secret": s("string"), "created_at": s("string")}}),
        "WebhookEndpointList": list(r("WebhookEndpoint")),
        "DeliveryList": list(json!({"type": "object", "properties": {"id": s("string"), "event_id": s("string"), "event_type": s("string"), "endpoint_id": s("string"),
            "status": {"enum": ["pending", "delivered", "failed", "cancelled"]}, "attempts": s("integer"), "last_status": nullable("integer"),
            "last_error": nullable("string"), "last_attempt_at": nullable("string"), "next_attempt_at": nullable("string"), "created_at": s("string")}})),
    })
}

fn parameters(op: &Operation) -> Vec<Value> {
    let mut params = Vec::new();
    for name in ["id", "contact"] {
        if op.path.contains(&format!("{{{name}}}")) {
            params
                .push(json!({"name": name, "in": "path", "required": true, "schema": s("string")}));
        }
    }
    if op.idempotent {
        params.push(json!({"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 255},
            "description": "Same key and body: the first answer is replayed. Another body: 422 idempotency_key_reused. Still running: 409 idempotency_key_in_use. Kept 24 h."}));
    }
    params
}

/// The OpenAPI document.
pub(crate) fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for op in OPERATIONS {
        let mut responses = Map::new();
        let ok = match op.response.1 {
            Some(schema) => {
                json!({"description": "success", "content": {"application/json": {"schema": r(schema)}}})
            }
            None => json!({"description": "success"}),
        };
        responses.insert(op.response.0.to_string(), ok);
        responses.insert(
            "default".to_owned(),
            json!({"description": "error", "content": {"application/json": {"schema": r("Error")}}}),
        );
        let mut operation =
            json!({"summary": op.summary, "parameters": parameters(op), "responses": responses});
        if let Some(schema) = op.request {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": r(schema)}}});
        }
        operation["security"] =
            if op.auth { json!([{"bearer": []}, {"apiKey": []}]) } else { json!([]) };
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "convo", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Conversation orchestration for business messaging. Errors are {\"error\": {\"code\", \"message\", \"field\"?}}."},
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(schemas.contains_key(&name), "missing schema {name}");
        }
    }
}
