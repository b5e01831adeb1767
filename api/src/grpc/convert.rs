//! Conversions between the wire types of `convo.v1` and the application layer's inputs and
//! outputs. Nothing here validates beyond what the wire format cannot express (a missing
//! `oneof`, an unspecified enum): every rule lives in the application layer, which names
//! fields with the same dotted paths as the protos (`content.text`, `recipients[2]`).

use convo_domain::{Channel, MessageType};
use convo_proto::v1 as pb;

use crate::{
    app::types::{
        BillingOut, ChannelOut, ComposeAccepted, ComposeRequest, ContactOut,
        ConversationMessageRequest, ConversationOut, InboundOut, List, MessageAccepted,
        MessageContent, MessageOut, ProactiveAccepted, ProactiveRequest, ProactiveResult,
        Recipient, RecipientDetail, RequestedType, ResolveRequest, SandboxInbound,
        SendMessageRequest, StatusOut, TemplateRef, TextBody, WindowOut,
    },
    error::ApiError,
};

// ---- requests: wire → application -----------------------------------------------------------

/// The send's template: its flat `variables`, or the structured shape as the HTTP API takes
/// it (both at once is refused by the application, as over HTTP: the flat keys are not parts
/// of the structured shape).
fn template(t: pb::Template) -> TemplateRef {
    use serde_json::{Map, Value, json};
    let mut variables: Map<String, Value> =
        t.variables.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    if let Some(s) = t.structured {
        let card = |c: pb::TemplateCardValues| {
            let mut o = Map::new();
            o.insert("body".into(), json!(c.body));
            o.insert("buttons".into(), json!(c.buttons));
            if let Some(h) = c.header {
                o.insert("header".into(), json!(h));
            }
            Value::Object(o)
        };
        variables.insert("body".into(), json!(s.body));
        variables.insert("buttons".into(), json!(s.buttons));
        if let Some(h) = s.header {
            variables.insert("header".into(), json!(h));
        }
        if !s.cards.is_empty() {
            variables.insert("cards".into(), Value::Array(s.cards.into_iter().map(card).collect()));
        }
    }
    // No values is no `variables` at all, as a JSON body that leaves it out: the same
    // request, with the same Idempotency-Key fingerprint, over either transport.
    let variables = if variables.is_empty() { Value::Null } else { Value::Object(variables) };
    TemplateRef { name: t.name, variables }
}

/// `Compose`.
pub(crate) fn compose(r: pb::ComposeRequest) -> ComposeRequest {
    ComposeRequest {
        channel_id: r.channel_id,
        contact_id: r.contact_id,
        contact_email: r.contact_email,
        contact_phone: r.contact_phone,
        contact_name: r.contact_name,
        subject: r.subject,
        content: r.content,
        template: r.template.map(template),
        traffic_type: r.traffic_type,
    }
}

/// `Proactive`. A missing template reads as one with an empty name, which the application
/// refuses naming `template.name`.
pub(crate) fn proactive(r: pb::ProactiveRequest) -> Result<ProactiveRequest, ApiError> {
    let recipients = r
        .recipients
        .into_iter()
        .enumerate()
        .map(|(i, recipient)| match recipient.recipient {
            Some(pb::recipient::Recipient::Address(a)) => Ok(Recipient::Address(a)),
            Some(pb::recipient::Recipient::Detail(d)) => Ok(Recipient::Detailed(RecipientDetail {
                contact_id: d.contact_id,
                phone: d.phone,
                email: d.email,
                name: d.name,
            })),
            None => {
                Err(ApiError::validation(format!("recipients[{i}]"), "give an address or a detail"))
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(ProactiveRequest {
        channel_id: r.channel_id,
        template: template(r.template.unwrap_or_default()),
        recipients,
        live_agent: r.live_agent,
        user_id: r.user_id,
        bot_id: r.bot_id,
        queue: r.queue,
        traffic_type: r.traffic_type,
    })
}

/// `SendConversationMessage`: the conversation id and the message.
pub(crate) fn conversation_message(
    r: pb::SendConversationMessageRequest,
) -> Result<(String, ConversationMessageRequest), ApiError> {
    use pb::send_conversation_message_request::Body;
    let message = match r.body {
        Some(Body::Text(body)) => {
            ConversationMessageRequest::Text { text: TextBody { body, suggestions: Vec::new() } }
        }
        Some(Body::Template(t)) => ConversationMessageRequest::Template { template: template(t) },
        None => return Err(ApiError::validation("body", "give text or template")),
    };
    Ok((r.conversation_id, message))
}

/// The application names the free-form text of a conversation message `text.body` (the
/// HTTP shape); on the wire it is the `text` of the `body` oneof.
pub(crate) fn conversation_message_field(mut e: ApiError) -> ApiError {
    if e.field.as_deref() == Some("text.body") {
        e.field = Some("text".to_owned());
    }
    e
}

/// `Resolve`: `close_window` defaults to true.
pub(crate) fn resolve(r: pb::ResolveRequest) -> (String, ResolveRequest) {
    (r.conversation_id, ResolveRequest { close_window: r.close_window.unwrap_or(true) })
}

/// `google.protobuf.Value` as JSON.
/// A rich-content field given as a `google.protobuf.Value`, read in the HTTP API's JSON shape; a
/// value of the wrong shape is refused naming the field and the path inside it.
fn rich_part<T: serde::de::DeserializeOwned>(
    field: &str,
    value: Option<prost_types::Value>,
) -> Result<Option<T>, ApiError> {
    let Some(value) = value.map(json).filter(|v| !v.is_null()) else { return Ok(None) };
    serde_path_to_error::deserialize(value).map(Some).map_err(|e| {
        let path = e.path().to_string();
        let at =
            if path == "." { field.to_owned() } else { format!("{field}{}", path_suffix(&path)) };
        ApiError::validation(at, e.into_inner().to_string())
    })
}

/// `.title` or `[0].reply` for a serde path (`title`, `[0].reply`).
fn path_suffix(path: &str) -> String {
    if path.starts_with('[') { path.to_owned() } else { format!(".{path}") }
}

fn json(value: prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => b.into(),
        Some(Kind::NumberValue(n)) => {
            serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, Into::into)
        }
        Some(Kind::StringValue(s)) => s.into(),
        Some(Kind::ListValue(list)) => list.values.into_iter().map(json).collect(),
        Some(Kind::StructValue(s)) => s
            .fields
            .into_iter()
            .map(|(k, v)| (k, json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

/// JSON as a `google.protobuf.Value` (the inverse of [`json`]).
fn value(v: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(a) => {
            Kind::ListValue(prost_types::ListValue { values: a.into_iter().map(value).collect() })
        }
        serde_json::Value::Object(o) => Kind::StructValue(prost_types::Struct {
            fields: o.into_iter().map(|(k, v)| (k, value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// `SendMessage`. `MESSAGE_TYPE_UNSPECIFIED` (or an unknown number) is refused naming
/// `message_type`.
pub(crate) fn send_message(r: pb::SendMessageRequest) -> Result<SendMessageRequest, ApiError> {
    let message_type = match pb::MessageType::try_from(r.message_type) {
        Ok(pb::MessageType::Message) => RequestedType::Message,
        Ok(pb::MessageType::Conversation) => RequestedType::Conversation,
        Ok(pb::MessageType::Newsletter) => RequestedType::Newsletter,
        Ok(pb::MessageType::Unspecified) | Err(_) => {
            return Err(ApiError::validation(
                "message_type",
                "must be MESSAGE_TYPE_MESSAGE, MESSAGE_TYPE_CONVERSATION or MESSAGE_TYPE_NEWSLETTER",
            ));
        }
    };
    let content = r.content.unwrap_or_default();
    Ok(SendMessageRequest {
        to: r.to,
        channel: Some(r.channel).filter(|c| !c.trim().is_empty()),
        message_type,
        content: MessageContent {
            text: content.text,
            subject: content.subject,
            template: content.template.map(template),
            suggestions: rich_part("content.suggestions", content.suggestions)?.unwrap_or_default(),
            rich_card: rich_part("content.rich_card", content.rich_card)?,
            carousel: rich_part("content.carousel", content.carousel)?,
        },
        traffic_type: r.traffic_type,
    })
}

/// `Receive`.
pub(crate) fn inbound(r: pb::InboundMessage) -> SandboxInbound {
    SandboxInbound {
        from: r.from,
        to: r.to,
        channel: r.channel,
        text: r.text,
        provider_message_id: r.provider_message_id,
        timestamp: r.timestamp,
        postback_data: r.postback_data,
    }
}

// ---- answers: application → wire ------------------------------------------------------------

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn message_type(t: MessageType) -> pb::MessageType {
    match t {
        MessageType::Message => pb::MessageType::Message,
        MessageType::Conversation => pb::MessageType::Conversation,
        MessageType::Newsletter => pb::MessageType::Newsletter,
    }
}

fn channel(c: Channel) -> String {
    c.as_str().to_owned()
}

/// `{code, message, field?}` as the application writes per-item errors.
fn error_detail(value: &serde_json::Value) -> pb::ErrorDetail {
    let text = |key: &str| value[key].as_str().map(str::to_owned);
    pb::ErrorDetail {
        code: text("code").unwrap_or_default(),
        message: text("message").unwrap_or_default(),
        field: text("field"),
    }
}

/// `ListChannels`.
pub(crate) fn channels(list: List<ChannelOut>) -> pb::ListChannelsResponse {
    pb::ListChannelsResponse {
        channels: list
            .data
            .into_iter()
            .map(|c| pb::Channel {
                id: c.id,
                kind: channel(c.kind),
                provider: c.provider,
                address: c.address,
                enabled: c.enabled,
            })
            .collect(),
    }
}

/// `Compose`.
pub(crate) fn composed(c: ComposeAccepted) -> pb::ComposeResponse {
    pb::ComposeResponse { conversation_id: c.conversation_id, status: c.status }
}

/// `Proactive`.
pub(crate) fn proactive_accepted(p: ProactiveAccepted) -> pb::ProactiveResponse {
    pb::ProactiveResponse {
        conversations: p
            .conversations
            .into_iter()
            .map(|r: ProactiveResult| pb::ProactiveResult {
                recipient: r.recipient,
                conversation_id: r.conversation_id,
                status: r.status,
                error: r.error.as_ref().map(error_detail),
                duplicate_of: r.duplicate_of.map(count),
            })
            .collect(),
        accepted: count(p.accepted),
        failed: count(p.failed),
        queue: p.queue,
        duplicates: count(p.duplicates),
    }
}

/// `GetWindow`, `CloseWindow` and a conversation's window.
pub(crate) fn window(w: WindowOut) -> pb::Window {
    pb::Window {
        contact_id: w.contact_id,
        status: w.status,
        open: w.open,
        channel: w.channel.map(channel),
        opened_at: w.opened_at,
        expires_at: w.expires_at,
        billing_session_ends_at: w.billing_session_ends_at,
        close_reason: w.close_reason,
        in_session: w.in_session,
        last_inbound_at: w.last_inbound_at,
    }
}

/// `GetConversation`.
pub(crate) fn conversation(c: ConversationOut) -> pb::Conversation {
    let text = |key: &str| c.assignee[key].as_str().unwrap_or_default().to_owned();
    let assignee = pb::Assignee { kind: text("kind"), id: text("id") };
    pb::Conversation {
        conversation_id: c.conversation_id,
        status: c.status,
        channel: channel(c.channel),
        channel_id: c.channel_id,
        contact_id: c.contact_id,
        assignee: Some(assignee),
        messages: c
            .messages
            .into_iter()
            .map(|m| pb::ConversationMessage {
                message_id: m.message_id,
                direction: m.direction,
                text: m.text,
                at: m.at,
                channel: channel(m.channel),
                status: m.status,
                statuses: m.statuses.into_iter().map(message_status).collect(),
            })
            .collect(),
        error: c.error.as_ref().map(error_detail),
        window: c.window.map(window),
        created_at: c.created_at,
        contact: c.contact.map(contact),
    }
}

/// `GetContact` and a conversation's contact.
pub(crate) fn contact(c: ContactOut) -> pb::Contact {
    pb::Contact {
        contact_id: c.contact_id,
        phone: c.phone,
        email: c.email,
        name: c.name,
        consent: c.consent,
        consent_changed_at: c.consent_changed_at,
        created_at: c.created_at,
    }
}

fn message_status(s: StatusOut) -> pb::MessageStatus {
    let (error_code, error_message) = s.error.map_or((None, None), |e| (e.code, e.message));
    pb::MessageStatus {
        status: s.status.as_str().to_owned(),
        at: s.at,
        provider_at: s.provider_at,
        source: s.source,
        error_code,
        error_message,
    }
}

/// `GetMessage`.
pub(crate) fn message(m: MessageOut) -> pb::Message {
    pb::Message {
        message_id: m.message_id,
        contact_id: m.contact_id,
        channel: channel(m.channel),
        direction: m.direction,
        text: m.text,
        content: m.content.map(value),
        status: m.status,
        provider_message_id: m.provider_message_id,
        error: m.error,
        statuses: m.statuses.into_iter().map(message_status).collect(),
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

fn billing(b: BillingOut) -> pb::Billing {
    pb::Billing {
        channel: channel(b.channel),
        message_type: message_type(b.message_type).into(),
        in_session: b.in_session,
        hold_amount: b.hold_amount.minor(),
        message_price: b.message_price.minor(),
        balance: Some(pb::Balance {
            free: b.balance.free.minor(),
            reserved: b.balance.reserved.minor(),
            total: b.balance.total.minor(),
        }),
        currency: b.currency,
        tier: b.tier.map(|t| pb::Tier {
            channel: channel(t.channel),
            current: t.current,
            volume_used: t.volume_used,
        }),
    }
}

/// `SendMessage` and `SendConversationMessage`.
pub(crate) fn accepted(m: MessageAccepted) -> pb::MessageAccepted {
    pb::MessageAccepted {
        message_id: m.message_id,
        status: m.status,
        created_at: m.created_at,
        conversation_expires_at: m.conversation_expires_at,
        contact_id: m.contact_id,
        traffic_type: m.traffic_type,
        billing: Some(billing(m.billing)),
    }
}

/// `Receive`.
pub(crate) fn inbound_accepted(i: InboundOut) -> pb::InboundAccepted {
    pb::InboundAccepted {
        received: count(i.received),
        duplicates: count(i.duplicates),
        statuses: count(i.statuses),
        ignored: count(i.ignored),
        contact_ids: i.contact_ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_values_become_json() {
        use prost_types::{ListValue, Struct, Value, value::Kind};
        let v = |kind| Value { kind: Some(kind) };
        let card = v(Kind::StructValue(Struct {
            fields: [
                ("title".to_owned(), v(Kind::StringValue("Hi".into()))),
                (
                    "sizes".to_owned(),
                    v(Kind::ListValue(ListValue {
                        values: vec![v(Kind::NumberValue(1.5)), v(Kind::BoolValue(true))],
                    })),
                ),
            ]
            .into_iter()
            .collect(),
        }));
        assert_eq!(json(card), serde_json::json!({"title": "Hi", "sizes": [1.5, true]}));
    }

    #[test]
    fn unspecified_message_type_names_the_field() {
        let e = send_message(pb::SendMessageRequest::default()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("message_type"));
        let e = conversation_message(pb::SendConversationMessageRequest::default()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("body"));
    }

    #[test]
    fn structured_template_values_take_the_http_shape() {
        let t = pb::Template {
            name: "picks".into(),
            structured: Some(pb::TemplateValues {
                body: vec!["Ada".into()],
                header: None,
                buttons: vec![],
                cards: vec![pb::TemplateCardValues {
                    body: vec!["Mug".into()],
                    header: Some("https://img.example/m.png".into()),
                    buttons: vec!["mug".into()],
                }],
            }),
            ..Default::default()
        };
        assert_eq!(
            template(t).variables,
            serde_json::json!({"body": ["Ada"], "buttons": [], "cards": [
                {"body": ["Mug"], "header": "https://img.example/m.png", "buttons": ["mug"]}]})
        );
        let flat = pb::Template {
            name: "hello".into(),
            variables: [("1".to_owned(), "Ada".to_owned())].into_iter().collect(),
            ..Default::default()
        };
        assert_eq!(template(flat).variables, serde_json::json!({"1": "Ada"}));
    }
}
