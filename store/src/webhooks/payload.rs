//! The `data` of `conversation.*` webhooks: what a consumer (a human inbox, an AI agent) needs
//! to act on an event without calling back: the contact, the channel, the window, the linked
//! conversation, and per event the message or the close.
//!
//! The session workflow hands over ids and times ([`convo_domain::window::Webhook`]); the
//! activity enriches them here from the store (the contact card, the message log). Every time
//! is RFC 3339 in UTC with milliseconds. The OpenAPI document's `webhooks` section describes the
//! same shapes (`ConversationStartedEvent`, ...), and an end-to-end test validates real
//! deliveries against it.

use convo_domain::{Channel, Direction, MessageId, Money, Timestamp, window::WindowFacts};
use serde_json::{Map, Value, json};

use crate::{Contact, MessageRecord};

/// The webhook announcing a message's delivery status change.
pub const STATUS_UPDATED: &str = "message.status_updated";

/// The stable id of the `message.status_updated` event for `message` reaching `status`: one
/// per status, whoever reports it first (the send's own outcome, or the provider's callback).
pub fn status_event_id(message: &MessageId, status: convo_domain::DeliveryStatus) -> String {
    format!("evt_{}_status_{}", message.as_str(), status.as_str())
}

/// The `data` of `message.status_updated`: `m` moved from `previous` to `report`'s status.
pub fn status_updated(
    workspace_id: &str,
    m: &MessageRecord,
    previous: convo_domain::DeliveryStatus,
    report: &crate::StatusReport,
) -> Value {
    let failed = report.status == convo_domain::DeliveryStatus::Failed;
    json!({
        "workspace_id": workspace_id,
        "message_id": m.id.as_str(),
        "contact_id": m.contact_id,
        "channel": m.channel,
        "provider_message_id": m.provider_message_id,
        "status": report.status,
        "previous_status": previous,
        "error": failed.then(|| json!({"code": report.error_code, "message": report.error_message})),
        "source": report.source,
        "provider_at": report.provider_at.map(|t| t.to_rfc3339()),
    })
}

/// The stable id of a session's `conversation`th window: `win_{session}_c{n}`.
pub fn window_id(session_id: &str, conversation: u32) -> String {
    format!("win_{session_id}_c{conversation}")
}

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

/// What every `conversation.*` event carries.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// The workspace.
    pub workspace_id: &'a str,
    /// The session (`session/{workspace}/{contact}`).
    pub session_id: &'a str,
    /// The contact's id.
    pub contact_id: &'a str,
    /// The contact card, if the store still has it.
    pub contact: Option<&'a Contact>,
    /// The window's channel.
    pub channel: Channel,
    /// The window's ordinal within the session.
    pub conversation: u32,
    /// The window's facts (opened, expires, kind), once it has some.
    pub window: Option<WindowFacts>,
    /// The composed conversation the window belongs to, if any.
    pub linked_conversation: Option<&'a str>,
}

impl Subject<'_> {
    /// The common fields, to which each event adds its own.
    pub fn data(&self) -> Map<String, Value> {
        let address = self.contact.and_then(|c| match self.channel {
            Channel::Email => c.email.clone(),
            _ => c.phone.clone(),
        });
        let display_name = self.contact.and_then(|c| c.name.clone());
        let window = self.window;
        let mut data = Map::new();
        data.insert("workspace_id".into(), self.workspace_id.into());
        data.insert("session_id".into(), self.session_id.into());
        data.insert("contact_id".into(), self.contact_id.into());
        data.insert(
            "contact".into(),
            json!({"id": self.contact_id, "address": address, "display_name": display_name}),
        );
        data.insert("channel".into(), json!(self.channel));
        data.insert("conversation".into(), self.conversation.into());
        data.insert(
            "window".into(),
            json!({
                "id": window_id(self.session_id, self.conversation),
                "ordinal": self.conversation,
                "opened_at": time(window.map(|w| w.opened_at)),
                "expires_at": time(window.map(|w| w.expires_at)),
                "billing_session_ends_at": time(window.and_then(|w| w.billing_session_ends_at)),
            }),
        );
        data.insert(
            "linked_conversation".into(),
            self.linked_conversation.map_or(Value::Null, |id| json!({"id": id})),
        );
        data
    }
}

/// The message as the webhook shows it, from its log record when there is one.
pub fn message(
    id: &MessageId,
    direction: Direction,
    channel: Channel,
    at: Timestamp,
    record: Option<&MessageRecord>,
    agent_id: Option<&str>,
) -> Value {
    let direction_name = match direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    };
    let stored = record.map(|r| &r.content);
    let Shown { text, content, template, postback_data } = shown(direction, stored);
    let sender = match (direction, stored.and_then(|c| c.get("sender")).and_then(Value::as_str)) {
        (Direction::Inbound, _) => json!({"type": "contact"}),
        (Direction::Outbound, Some("human_agent")) => {
            json!({"type": "human_agent", "agent_id": agent_id})
        }
        (Direction::Outbound, _) => json!({"type": "automated"}),
    };
    json!({
        "id": id.as_str(),
        "direction": direction_name,
        // The channel the message itself went or came on (the session may have moved since).
        "channel": record.map_or(channel, |r| r.channel),
        "at": at.to_rfc3339(),
        "text": text,
        "content": content,
        "template": template,
        "sender": sender,
        "provider_message_id": record.and_then(|r| r.provider_message_id.clone()),
        "postback_data": postback_data,
    })
}

/// What a logged message says, as webhooks and `GET /v1/messages/{id}` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// Its text: an inbound's text, a send's text, a template's rendering, rich content's
    /// text, card titles, descriptions and labels; `null` when unknown.
    pub text: Value,
    /// A send's content as convo carried it (`{kind: text|template|rich, ...}`); `null` for an
    /// inbound.
    pub content: Value,
    /// A template send's `{name, language, variables}`; `null` otherwise.
    pub template: Value,
    /// An inbound tap's postback data (an RCS suggestion); `null` otherwise.
    pub postback_data: Value,
}

/// What the message log's `stored` content of a message in `direction` says.
pub fn shown(direction: Direction, stored: Option<&Value>) -> Shown {
    if direction == Direction::Inbound {
        let field = |k: &str| stored.and_then(|c| c.get(k)).cloned().unwrap_or(Value::Null);
        return Shown {
            text: field("text"),
            content: Value::Null,
            template: Value::Null,
            postback_data: field("postback_data"),
        };
    }
    let content = stored.and_then(|c| c.get("content")).cloned().unwrap_or(Value::Null);
    let template = template(&content);
    let text = match content.get("kind").and_then(Value::as_str) {
        Some("text") => content.get("body").cloned().unwrap_or(Value::Null),
        Some("template") => rendered(&content),
        Some("rich") => serde_json::from_value::<convo_domain::rich::Rich>(content.clone())
            .map_or(Value::Null, |r| Value::String(r.plain())),
        _ => content.get("text").filter(|t| t.is_string()).cloned().unwrap_or(Value::Null),
    };
    Shown { text, content, template, postback_data: Value::Null }
}

/// `{name, language, variables}` of a template content, with every placeholder's value by
/// name (header, body, then buttons and cards); `null` for any other content.
fn template(content: &Value) -> Value {
    if content.get("kind").and_then(Value::as_str) != Some("template") {
        return Value::Null;
    }
    let params = content.get("params");
    let mut variables = Map::new();
    let mut collect = |list: Option<&Value>| {
        for p in list.and_then(Value::as_array).into_iter().flatten() {
            if let (Some(name), Some(value)) =
                (p.get("name").and_then(Value::as_str), p.get("value").and_then(Value::as_str))
            {
                variables.entry(name.to_owned()).or_insert_with(|| value.into());
            }
        }
    };
    for part in ["header", "body", "buttons"] {
        collect(params.and_then(|p| p.get(part)));
    }
    for card in params.and_then(|p| p.get("cards")).and_then(Value::as_array).into_iter().flatten()
    {
        for part in ["header", "body", "buttons"] {
            collect(card.get(part));
        }
    }
    json!({
        "name": content.get("name").cloned().unwrap_or(Value::Null),
        "language": params.and_then(|p| p.get("language")).cloned().unwrap_or(Value::Null),
        "variables": variables,
    })
}

/// The text a template send rendered to, when the registry had the template.
fn rendered(content: &Value) -> Value {
    match content.get("params").and_then(|p| p.get("text")) {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Object(o)) => {
            o.get("body").filter(|b| b.is_string()).cloned().unwrap_or_default()
        }
        _ => Value::Null,
    }
}

/// How billing resolved for a closed window: `charged` (something was charged), `released`
/// (holds were released and nothing charged) or `none`; amounts in minor units.
pub fn billing(sessions: u32, charged: Money, released: Money, currency: &str) -> Value {
    let outcome = if charged > Money::ZERO {
        "charged"
    } else if released > Money::ZERO {
        "released"
    } else {
        "none"
    };
    let major = |m| convo_domain::billing::currency::major_units(m, currency);
    json!({"outcome": outcome, "sessions": sessions, "currency": currency,
        "charged": major(charged), "released": major(released)})
}

/// The window facts a stored `conversation.started` body carries (for events whose session did
/// not hand them over: an old history, or the reconciler).
pub fn facts_from_started(data: &Value) -> Option<WindowFacts> {
    let window = data.get("window");
    let read = |field: &str| {
        window
            .and_then(|w| w.get(field))
            .or_else(|| data.get(field))
            .and_then(Value::as_str)
            .and_then(convo_domain::time::parse_rfc3339)
    };
    Some(WindowFacts {
        opened_at: read("opened_at")?,
        expires_at: read("expires_at")?,
        billing_session_ends_at: read("billing_session_ends_at"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_variables_are_flattened_by_name() {
        let content = json!({"kind": "template", "name": "order_followup", "params": {
            "language": "en",
            "body": [{"name": "1", "value": "Ada"}, {"name": "2", "value": "A-17"}],
            "buttons": [{"index": 0, "sub_type": "url", "name": "1", "value": "x"}],
        }});
        assert_eq!(
            template(&content),
            json!({"name": "order_followup", "language": "en", "variables": {"1": "Ada", "2": "A-17"}})
        );
        assert_eq!(template(&json!({"kind": "text", "body": "hi"})), Value::Null);
    }

    #[test]
    fn billing_names_its_outcome() {
        let charged = billing(1, Money::from_minor(50), Money::ZERO, "EUR");
        assert_eq!(charged["outcome"], "charged");
        let expected = json!({"charged": 0.5, "currency": "EUR", "outcome": "charged",
            "released": 0.0, "sessions": 1});
        assert_eq!(charged, expected);
        assert_eq!(billing(1, Money::ZERO, Money::from_minor(50), "JPY")["released"], 50.0);
        assert_eq!(billing(0, Money::ZERO, Money::ZERO, "EUR")["outcome"], "none");
    }
}
