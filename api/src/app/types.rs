//! The application layer's inputs and outputs: the JSON shapes of the HTTP API, shared with
//! the gRPC transport's conversions.
//!
//! Inputs reject unknown fields (`deny_unknown_fields`), so a misspelt optional field is an
//! error naming it rather than a silently ignored value. Times go out as RFC 3339 strings in
//! UTC; money as integer minor units.
//!
//! Every type here derives [`JsonSchema`] next to its serde derives, and the OpenAPI document
//! (`GET /openapi.json`) takes its schemas from those derives, so it follows the serde attributes
//! (`deny_unknown_fields`, `rename_all`, `untagged`, defaults) rather than a hand-kept copy.

mod money;
mod statuses;
mod workspace;

use std::collections::BTreeMap;

use convo_domain::{
    Balance, Channel, MessageType,
    rich::{Card, Carousel, Suggestion},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use money::{Amount, BillingBalanceOut, TierOut};
pub use statuses::{MessageOut, SandboxStatus, StatusError, StatusOut};
pub use workspace::{
    ActorOut, ChannelPolicyOut, ComplianceIn, ComplianceOut, CreateTemplateRequest, InactivityPing,
    PolicyOverridesIn, Rates, SettingsOut, SettingsPatch, TemplateOut, TemplateQuery, TopUpOut,
    TopUpRequest, TopUpsQuery, WindowPolicyOut,
};

/// A template reference: its approved name, and values for its placeholders.
///
/// `variables` takes one of two shapes: a flat map from placeholder name to value
/// (`{"1": "Ada", "2": "#42"}`, every component's placeholders in one map), or the structured
/// shape `{"body": [...], "header": "...", "buttons": [...], "cards": [{"body", "header",
/// "buttons"}]}` with values in placeholder order per component. A template in the workspace's
/// registry has its values checked (missing, extra or non-string values are 422s naming them)
/// and rendered; any other template is sent by name with the values given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    /// The approved template's name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Values for the template's placeholders.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[schemars(with = "Option<VariablesShape>")]
    pub variables: serde_json::Value,
}

impl Eq for TemplateRef {}

/// The two shapes of [`TemplateRef::variables`] (for the schema).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum VariablesShape {
    /// Placeholder name to value.
    Flat(BTreeMap<String, String>),
    /// Values per component, in placeholder order (`null` reads as absent).
    Structured {
        /// The body's values.
        #[serde(default)]
        body: Option<Vec<String>>,
        /// The header's value.
        #[serde(default)]
        header: Option<String>,
        /// One value per button with a placeholder, in order.
        #[serde(default)]
        buttons: Option<Vec<String>>,
        /// One entry per carousel card.
        #[serde(default)]
        cards: Option<Vec<CardShape>>,
    },
}

/// One card's values (for the schema).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct CardShape {
    #[serde(default)]
    body: Option<Vec<String>>,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    buttons: Option<Vec<String>>,
}

/// `POST /v1/conversations/compose`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComposeRequest {
    /// The channel's public id (`GET /v1/channels`).
    pub channel_id: String,
    /// An existing contact.
    #[serde(default)]
    pub contact_id: Option<String>,
    /// Find or create the contact by e-mail.
    #[serde(default)]
    pub contact_email: Option<String>,
    /// Find or create the contact by E.164 phone number.
    #[serde(default)]
    pub contact_phone: Option<String>,
    /// The name for a contact created by this compose.
    #[serde(default)]
    pub contact_name: Option<String>,
    /// Subject line; required on e-mail.
    #[serde(default)]
    pub subject: Option<String>,
    /// The first message's text (sent free-form when a window allows it).
    pub content: String,
    /// The template sent instead when no window is open on a gated channel.
    #[serde(default)]
    pub template: Option<TemplateRef>,
    /// The regulatory classification of every message of the conversation (RBM's
    /// `messageTrafficType`: `TRANSACTION`, `PROMOTION`, ...), held to the use case the
    /// channel's sender was approved for, as on `POST /v1/messages`.
    #[serde(default)]
    pub traffic_type: Option<String>,
}

/// 202 answer of compose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ComposeAccepted {
    /// The conversation's id.
    pub conversation_id: String,
    /// `pending`, or the current status when a retried compose finds it running.
    pub status: String,
}

/// One recipient of a proactive campaign: an address string, or an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Recipient {
    /// An E.164 phone number, an e-mail address or a contact id.
    Address(String),
    /// Spelled out.
    Detailed(RecipientDetail),
}

/// A recipient spelled out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientDetail {
    /// An existing contact.
    #[serde(default)]
    pub contact_id: Option<String>,
    /// E.164 phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// The name for a created contact.
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /v1/conversations/proactive`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProactiveRequest {
    /// The channel's public id.
    pub channel_id: String,
    /// The template every recipient gets.
    pub template: TemplateRef,
    /// Who gets it (1 to 1,000).
    pub recipients: Vec<Recipient>,
    /// A person owns the conversations, not a bot (the proactive-conversation API's
    /// `liveAgent`): the human agent `user_id` names, whose replies are tagged as a person's.
    #[serde(default)]
    pub live_agent: bool,
    /// The human agent of a `live_agent` request (required with it).
    #[serde(default)]
    pub user_id: Option<String>,
    /// The bot that owns the conversations (default `api`; not with `live_agent`).
    #[serde(default)]
    pub bot_id: Option<String>,
    /// A routing label, echoed back.
    #[serde(default)]
    pub queue: Option<String>,
    /// The regulatory classification of every message of the conversation (RBM's
    /// `messageTrafficType`: `TRANSACTION`, `PROMOTION`, ...), held to the use case the
    /// channel's sender was approved for, as on `POST /v1/messages`.
    #[serde(default)]
    pub traffic_type: Option<String>,
}

/// One recipient's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProactiveResult {
    /// The recipient as given (its address or contact id).
    pub recipient: String,
    /// The conversation started for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// `pending` when started; `duplicate` for a recipient listed before (it shares the
    /// first listing's conversation and is messaged once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// For a `duplicate`: the position of the recipient's first listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<usize>,
    /// Why this recipient got nothing; the others are unaffected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

/// 202 answer of proactive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProactiveAccepted {
    /// One entry per recipient, in order.
    pub conversations: Vec<ProactiveResult>,
    /// How many were started.
    pub accepted: usize,
    /// How many failed.
    pub failed: usize,
    /// How many were listed again and messaged once.
    #[serde(default)]
    pub duplicates: usize,
    /// The request's queue label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

/// A channel as `GET /v1/channels` lists it (no provider credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelOut {
    /// Public id.
    pub id: String,
    /// `whatsapp`, `sms`, ...
    pub kind: Channel,
    /// The provider carrying it.
    pub provider: String,
    /// The business's address on it.
    pub address: String,
    /// Disabled channels take no sends.
    pub enabled: bool,
}

/// A list envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "{T}List")]
pub struct List<T> {
    /// The items.
    pub data: Vec<T>,
}

/// A contact's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WindowOut {
    /// The contact.
    pub contact_id: String,
    /// `open` or `closed` (a contact with no session reads as closed).
    pub status: String,
    /// Whether free-form may be sent now.
    pub open: bool,
    /// The channel of the contact's session, if one ever ran.
    pub channel: Option<Channel>,
    /// When the window opened.
    pub opened_at: Option<String>,
    /// Until when free-form is allowed.
    pub expires_at: Option<String>,
    /// When the current billing session ends.
    pub billing_session_ends_at: Option<String>,
    /// Why the latest window closed (`EXPIRED`, `EXPLICIT`, `COMPLIANCE_STOP`).
    pub close_reason: Option<String>,
    /// The next send rides on a billing session that already holds its unit.
    pub in_session: bool,
    /// The contact's latest message in the window.
    pub last_inbound_at: Option<String>,
}

/// `POST /v1/windows/{contact}/close` takes an empty body or `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseWindowRequest {}

/// The body of a conversation message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TextBody {
    /// The text.
    pub body: String,
    /// RCS suggested replies and actions under it (RCS conversations only; the shape and limits
    /// of `POST /v1/messages`' `content.suggestions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
}

/// `POST /v1/conversations/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConversationMessageRequest {
    /// Free-form: needs an open window.
    Text {
        /// The text.
        text: TextBody,
    },
    /// A template: allowed with no window, and may open one when the contact replies.
    Template {
        /// The template.
        template: TemplateRef,
    },
}

/// `POST /v1/conversations/{id}/take-over`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TakeOverRequest {
    /// The human agent taking over (1 to 200 characters).
    #[schemars(length(min = 1))]
    pub agent_id: String,
}

/// `POST /v1/conversations/{id}/resolve` (empty body allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// Also close the contact's window (default `true`).
    #[serde(default = "yes")]
    pub close_window: bool,
}

impl Default for ResolveRequest {
    fn default() -> Self {
        Self { close_window: true }
    }
}

const fn yes() -> bool {
    true
}

/// `{ "ok": true }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OkResponse {
    /// Always true.
    pub ok: bool,
}

impl OkResponse {
    /// `{ "ok": true }`.
    pub const TRUE: OkResponse = OkResponse { ok: true };
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConversationMessageOut {
    /// The message id.
    pub message_id: String,
    /// The channel it went or came on: the conversation's, unless the contact moved to
    /// another channel (their session and this conversation's replies follow them).
    pub channel: Channel,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// The text, or `template:{name}`.
    pub text: String,
    /// When.
    pub at: Option<String>,
    /// An outbound message's delivery status (`queued`, `sent`, `delivered`, `read`,
    /// `failed`), when the message log has it.
    #[serde(default)]
    pub status: Option<String>,
    /// Its status history, oldest first (`GET /v1/messages/{id}` has the same).
    #[serde(default)]
    pub statuses: Vec<StatusOut>,
}

/// `GET /v1/contacts/{contact}`, and the contact of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContactOut {
    /// The id (`ct_...`).
    pub contact_id: String,
    /// E.164, if known.
    pub phone: Option<String>,
    /// The e-mail address, if known.
    pub email: Option<String>,
    /// The display name (a compose's `contact_name`, or the provider's profile name).
    pub name: Option<String>,
    /// `unknown`, `opted_in` or `opted_out`, over every channel of the workspace.
    pub consent: String,
    /// When the consent last changed, if it did.
    pub consent_changed_at: Option<String>,
    /// When the contact was created.
    pub created_at: String,
}

/// `GET /v1/conversations/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConversationOut {
    /// The id.
    pub conversation_id: String,
    /// `pending`, `awaiting_reply`, `active`, `resolved`, `expired` or `failed`.
    pub status: String,
    /// The channel.
    pub channel: Channel,
    /// The channel's public id.
    pub channel_id: String,
    /// The contact, once resolved.
    pub contact_id: Option<String>,
    /// The contact as `GET /v1/contacts/{id}` shows it, once resolved.
    #[serde(default)]
    pub contact: Option<ContactOut>,
    /// `{kind: bot|human, id}`.
    pub assignee: serde_json::Value,
    /// Oldest first.
    pub messages: Vec<ConversationMessageOut>,
    /// Why it failed or ended, as `{code, message}`.
    pub error: Option<serde_json::Value>,
    /// The contact's window.
    pub window: Option<WindowOut>,
    /// When it was composed.
    pub created_at: String,
}

/// `message_type` of `POST /v1/messages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestedType {
    /// Business-initiated, billed per message.
    Message,
    /// Free-form inside an open window, billed by the conversation unit.
    Conversation,
    /// Broadcast, billed per message at the newsletter price.
    Newsletter,
}

/// `content` of `POST /v1/messages`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageContent {
    /// Free-form text.
    #[serde(default)]
    pub text: Option<String>,
    /// Subject line (e-mail).
    #[serde(default)]
    pub subject: Option<String>,
    /// An approved template (required for NEWSLETTER; MESSAGE outside a window on gated
    /// channels).
    #[serde(default)]
    pub template: Option<TemplateRef>,
    /// RCS suggested replies and actions under the message (at most 11), each one of
    /// `{reply: {text, postback_data}}`, `{open_url: {text, postback_data, url}}`,
    /// `{dial: {text, postback_data, phone_number}}`, `{share_location: {text, postback_data}}`.
    /// Labels are at most 25 characters, postback data 2048.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
    /// An RCS standalone rich card (instead of `text`): title (≤ 200 characters), description
    /// (≤ 2000), media, up to 4 suggestions, `orientation` and `thumbnail_alignment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rich_card: Option<Card>,
    /// An RCS carousel (instead of `text`): 2 to 10 cards and their `card_width`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carousel: Option<Carousel>,
}

/// `POST /v1/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    /// E.164 phone number, e-mail address or contact id.
    pub to: String,
    /// A channel kind (`whatsapp`) or a channel's public id (`ch_...`). Without it the send
    /// goes on the channel of the contact's open window: the one they wrote on last.
    #[serde(default)]
    pub channel: Option<String>,
    /// How the message is meant and billed.
    pub message_type: RequestedType,
    /// What to send.
    pub content: MessageContent,
    /// The regulatory classification: `AUTHENTICATION`, `TRANSACTION`, `PROMOTION`,
    /// `SERVICEREQUEST` or `ACKNOWLEDGEMENT` (any case; `transactional`, `promotional`,
    /// `marketing` and `otp` read as theirs), held to the use case the channel's sender was
    /// approved for (a 422 names the values it takes). RBM receives it as
    /// `messageTrafficType`.
    #[serde(default)]
    pub traffic_type: Option<String>,
}

/// The billing block of an accepted send, as the RCS conversation API documents it: amounts in
/// the currency's major units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BillingOut {
    /// The channel.
    pub channel: Channel,
    /// How the send was billed.
    pub message_type: MessageType,
    /// A session (an open window) exists for the pair: `true` for every in-window send, the
    /// first included.
    pub in_session: bool,
    /// The ISO 4217 currency of the amounts (`EUR`).
    pub currency: String,
    /// The conversation-unit hold it placed: the unit on the billing session's first send,
    /// 0 after.
    pub hold_amount: Amount,
    /// What this send costs.
    pub message_price: Amount,
    /// The workspace's balance in the ledger right after it.
    pub balance: BillingBalanceOut,
    /// The channel's volume tier this month, when its rate card has tiers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<TierOut>,
}

/// `{free, reserved, total}` in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BalanceOut {
    /// Available for new holds.
    pub free: u64,
    /// Held by open holds.
    pub reserved: u64,
    /// Free plus reserved.
    pub total: u64,
}

impl From<Balance> for BalanceOut {
    fn from(b: Balance) -> Self {
        Self { free: b.free.minor(), reserved: b.reserved.minor(), total: b.total.minor() }
    }
}

/// 202 answer of a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MessageAccepted {
    /// The message id (derived from the Idempotency-Key when one is given).
    pub message_id: String,
    /// `queued`.
    pub status: String,
    /// When the API accepted it.
    pub created_at: String,
    /// Until when free-form is allowed, if a window is open.
    pub conversation_expires_at: Option<String>,
    /// The contact it went to.
    pub contact_id: String,
    /// The send's traffic type in RBM's spelling (`TRANSACTION`), as the provider got it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_type: Option<String>,
    /// How it was billed.
    pub billing: BillingOut,
}

/// `POST /v1/inbound/sandbox`: a contact's message as the sandbox simulates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxInbound {
    /// The contact's address (E.164, or e-mail on the e-mail channel).
    pub from: String,
    /// The business address it was sent to; must be the channel's when given.
    #[serde(default)]
    pub to: Option<String>,
    /// A channel kind (`whatsapp`) or a channel's public id.
    pub channel: String,
    /// The text.
    pub text: String,
    /// The postback data of the RCS suggestion the contact tapped (RCS channels only), carried
    /// to the webhooks and the message log beside the text.
    #[serde(default)]
    pub postback_data: Option<String>,
    /// The provider's id (de-duplicated); generated when absent.
    #[serde(default)]
    pub provider_message_id: Option<String>,
    /// When the contact sent it (RFC 3339).
    #[serde(default)]
    pub timestamp: Option<String>,
}

/// What an inbound request did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InboundOut {
    /// Messages handed to sessions.
    pub received: usize,
    /// Of those, repeats of messages already received.
    pub duplicates: usize,
    /// Delivery statuses applied to the message log.
    pub statuses: usize,
    /// Entries skipped (unknown business number, unsupported event).
    pub ignored: usize,
    /// The contacts the messages came from.
    pub contact_ids: Vec<String>,
}

/// `POST /v1/webhook-endpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpoint {
    /// Where deliveries are POSTed (http or https).
    pub url: String,
    /// Event types (`conversation.ended`, `conversation.*`); empty or absent means all.
    #[serde(default)]
    pub event_types: Vec<String>,
}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookEndpointOut {
    /// Id (`ep_...`).
    pub id: String,
    /// Its URL.
    pub url: String,
    /// Event types it receives (empty: all).
    pub event_types: Vec<String>,
    /// Whether it receives deliveries.
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// The signing secret (`whsec_...`): only in the answer to its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// When it was created.
    pub created_at: String,
}

/// Filters of `GET /v1/webhook-deliveries`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// `pending`, `delivered`, `failed` or `cancelled`.
    #[serde(default)]
    #[schemars(extend("enum" = ["pending", "delivered", "failed", "cancelled"]))]
    pub status: Option<String>,
    /// Only this endpoint's.
    #[serde(default)]
    pub endpoint_id: Option<String>,
    /// Only this event's.
    #[serde(default)]
    pub event_id: Option<String>,
    /// At most this many, newest first (1 to 1,000; default 100).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
}

/// One delivery of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryOut {
    /// Id (`dlv_...`).
    pub id: String,
    /// The event (its `webhook-id`).
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// `pending`, `delivered`, `failed` or `cancelled`.
    pub status: String,
    /// Attempts so far.
    pub attempts: u32,
    /// The last attempt's HTTP status.
    pub last_status: Option<u16>,
    /// The last attempt's transport error.
    pub last_error: Option<String>,
    /// When the last attempt started.
    pub last_attempt_at: Option<String>,
    /// When the next attempt is due.
    pub next_attempt_at: Option<String>,
    /// When the event was enqueued.
    pub created_at: String,
}
