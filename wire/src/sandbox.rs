//! What the sandbox provider records of a send ([`RecordedSend`]), and the [`Outbox`] the API
//! reads it through.
//!
//! The sandbox (in `convo-activities`) stands in for the real providers in development and in
//! tests: it takes sends on their real wire formats and keeps them. The API shows them
//! (`GET /v1/sandbox/outbox`) and lets the sandbox's channels take simulated traffic, through
//! this trait, so that it links no provider code.

use std::fmt;

use convo_domain::{
    Channel, Timestamp,
    window::{Content, TemplateText},
};
use serde::{Deserialize, Serialize};

/// One send the sandbox accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedSend {
    /// 1-based order of acceptance (restarts after a clear).
    pub seq: u64,
    /// The channel it arrived on.
    pub channel: Channel,
    /// Sender: WhatsApp phone-number id, Twilio `From`, RBM agent id, SMTP `MAIL FROM`.
    pub from: String,
    /// Recipient.
    pub to: String,
    /// What it said (e-mail: decoded body and subject).
    pub content: Content,
    /// The idempotency key the adapter presented, if any.
    pub idempotency_key: Option<String>,
    /// The id the sandbox answered.
    pub provider_message_id: String,
    /// Human-agent tag (native endpoint only; the real-shaped APIs carry none).
    pub human_agent_tag: bool,
    /// Template language, when the wire format has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_language: Option<String>,
    /// Template parameters, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_params: Vec<String>,
    /// A template send as the contact sees it: the registered template filled with the values
    /// the wire carried (WhatsApp components, Twilio `ContentVariables`). Absent for text (RBM
    /// and e-mail carry the rendered text itself) and for templates the registry does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered: Option<TemplateText>,
    /// E-mail headers as received (unfolded, encoded words decoded); empty for other channels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// The traffic type the wire carried (RBM's `messageTrafficType`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_type: Option<String>,
    /// When the sandbox accepted it (wall clock).
    pub at: Timestamp,
}

impl RecordedSend {
    /// The first e-mail header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A sandbox provider, as the API sees it.
pub trait Outbox: Send + Sync + fmt::Debug {
    /// Every send it accepted, oldest first.
    fn sends(&self) -> Vec<RecordedSend>;

    /// Whether a channel whose provider is `provider`, configured with `config` (the
    /// channel's stored provider configuration), is carried by this sandbox: only such
    /// channels take simulated traffic.
    fn carries(&self, provider: &str, config: &serde_json::Value) -> bool;
}
