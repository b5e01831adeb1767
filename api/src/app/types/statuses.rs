//! Delivery statuses: `GET /v1/messages/{id}` and `POST /v1/inbound/sandbox/statuses`.

use convo_domain::{Channel, DeliveryStatus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One entry of a message's status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusOut {
    /// `queued`, `sent`, `delivered`, `read` or `failed`.
    pub status: DeliveryStatus,
    /// When convo recorded it (RFC 3339).
    pub at: String,
    /// When the provider says it happened, if it says.
    pub provider_at: Option<String>,
    /// `whatsapp`, `twilio`, `rbm`, `sandbox`, or `convo` (the send's own outcome).
    pub source: String,
    /// For `failed`: the provider's error, `{code, message}`.
    pub error: Option<StatusError>,
}

/// A provider's delivery error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusError {
    /// The provider's code (`131047`, `30003`), when it gave one.
    pub code: Option<String>,
    /// The provider's text, when it gave one.
    pub message: Option<String>,
}

/// `GET /v1/messages/{id}`: a message of the log, with its status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MessageOut {
    /// The id.
    pub message_id: String,
    /// The contact.
    pub contact_id: String,
    /// The channel.
    pub channel: Channel,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// What it says as text: the text, a template's rendering, or rich content's text, card
    /// titles and descriptions and suggestion labels.
    pub text: Option<String>,
    /// A send's content as convo carried it: `{kind: "text", body, subject}`,
    /// `{kind: "template", name, params}` or `{kind: "rich", text, rich_card, carousel,
    /// suggestions}`; absent for inbound messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<serde_json::Value>,
    /// An outbound message's delivery status (`queued`, `sent`, `delivered`, `read`,
    /// `failed`); `received` for inbound messages.
    pub status: String,
    /// The provider's id, once it accepted the message.
    pub provider_message_id: Option<String>,
    /// The provider's error, for a failed message.
    pub error: Option<String>,
    /// How the status got where it is, oldest first (empty for inbound messages).
    pub statuses: Vec<StatusOut>,
    /// When it was sent or received.
    pub created_at: String,
    /// When its status last changed.
    pub updated_at: String,
}

/// `POST /v1/inbound/sandbox/statuses`: a delivery status as a provider would report it, for
/// development and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxStatus {
    /// convo's message id (`POST /v1/messages` answers it); or give `provider_message_id`.
    #[serde(default)]
    pub message_id: Option<String>,
    /// The provider's id of the message (the sandbox's `sbx_...`).
    #[serde(default)]
    pub provider_message_id: Option<String>,
    /// `sent`, `delivered`, `read` or `failed`.
    #[schemars(extend("enum" = ["sent", "delivered", "read", "failed"]))]
    pub status: String,
    /// For `failed`: the provider's error code to simulate (`131047`, `30003`, `63016`).
    #[serde(default)]
    pub error_code: Option<String>,
    /// For `failed`: the provider's error text.
    #[serde(default)]
    pub error_message: Option<String>,
    /// When the provider says it happened (RFC 3339).
    #[serde(default)]
    pub timestamp: Option<String>,
}
