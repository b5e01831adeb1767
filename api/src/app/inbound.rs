//! Inbound messages and delivery statuses from providers.
//!
//! Provider webhooks carry no API key: they are authenticated by their signature, made with a
//! secret of the receiving channel (Meta's app secret, Twilio's auth token), and the receiving
//! address tells which workspace they belong to. Every signature is checked before anything is
//! recorded, so a forged request leaves no trace. The sandbox's inbound, a development aid, is
//! authenticated with the workspace's API key instead.

use convo_activities::{
    Inbound,
    store::{ChannelConfig, StatusReport, normalize_phone},
};
use convo_domain::{Channel, DeliveryStatus, Timestamp};
use http::StatusCode;
use ring::hmac;
use serde::Deserialize;

use super::{
    App, WorkspaceId, required_text,
    types::{InboundOut, SandboxInbound},
};
use crate::error::{ApiError, codes};

/// A WhatsApp Cloud API webhook as received: the raw body (the signature covers its exact
/// bytes) and the `X-Hub-Signature-256` header.
#[derive(Debug, Clone)]
pub struct WhatsappInbound {
    /// The raw body.
    pub body: Vec<u8>,
    /// `sha256=<hex>`.
    pub signature: Option<String>,
}

/// A Twilio webhook as received: the URL Twilio posted to (it is signed), the raw form body and
/// the `X-Twilio-Signature` header.
#[derive(Debug, Clone)]
pub struct TwilioInbound {
    /// The full URL, scheme to query string.
    pub url: String,
    /// The raw `application/x-www-form-urlencoded` body.
    pub body: Vec<u8>,
    /// Base64 HMAC-SHA1.
    pub signature: Option<String>,
}

/// An RBM webhook as received: the raw body (a Pub/Sub-style envelope whose `message.data` is
/// the base64 agent event) and the `X-Goog-Signature` header.
#[derive(Debug, Clone)]
pub struct RbmInbound {
    /// The raw body.
    pub body: Vec<u8>,
    /// Base64 HMAC-SHA512 of the decoded `message.data` under the webhook's client token.
    pub signature: Option<String>,
}

/// What `POST /v1/inbound/rbm` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RbmAnswer {
    /// The webhook's verification request: echo its `secret` as plain text.
    Verified(String),
    /// Events applied.
    Applied(InboundOut),
}

fn bad_signature() -> ApiError {
    ApiError::unauthorized("the request's signature does not verify")
}

/// `sha256=<hex>` of the body with `secret`, compared in constant time.
fn meta_signature_ok(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix("sha256=") else { return false };
    let Some(tag) = decode_hex(hex) else { return false };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::verify(&key, body, &tag).is_ok()
}

/// Twilio's scheme: base64 HMAC-SHA1 of the URL followed by every POST parameter's name and
/// value, sorted by name.
fn twilio_signature_ok(token: &str, url: &str, params: &[(String, String)], header: &str) -> bool {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let Ok(tag) = STANDARD.decode(header.trim()) else { return false };
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes());
    hmac::verify(&key, data.as_bytes(), &tag).is_ok()
}

/// RBM's scheme: base64 HMAC-SHA512 of the decoded event under the client token.
fn rbm_signature_ok(token: &str, event: &[u8], header: &str) -> bool {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let Ok(tag) = STANDARD.decode(header.trim()) else { return false };
    let key = hmac::Key::new(hmac::HMAC_SHA512, token.as_bytes());
    hmac::verify(&key, event, &tag).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

fn config_str<'a>(channel: &'a ChannelConfig, key: &str) -> Option<&'a str> {
    channel.config.get(key).and_then(|v| v.as_str()).filter(|s| !s.is_empty())
}

fn same_phone(a: &str, b: &str) -> bool {
    match (normalize_phone(a), normalize_phone(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.trim() == b.trim(),
    }
}

pub(crate) fn parse_time(field: &str, value: &str) -> Result<Timestamp, ApiError> {
    let t = chrono::DateTime::parse_from_rfc3339(value.trim())
        .map_err(|e| ApiError::validation(field, format!("must be an RFC 3339 time: {e}")))?;
    let millis = u64::try_from(t.timestamp_millis())
        .map_err(|_| ApiError::validation(field, "must be after 1970"))?;
    Ok(Timestamp::from_epoch_millis(millis))
}

// ---- Meta's payload (lenient: Meta adds fields) -------------------------------------------

#[derive(Debug, Deserialize)]
struct MetaWebhook {
    #[serde(default)]
    entry: Vec<MetaEntry>,
}

#[derive(Debug, Deserialize)]
struct MetaEntry {
    #[serde(default)]
    changes: Vec<MetaChange>,
}

#[derive(Debug, Deserialize)]
struct MetaChange {
    #[serde(default)]
    value: MetaValue,
}

#[derive(Debug, Default, Deserialize)]
struct MetaValue {
    #[serde(default)]
    metadata: Option<MetaMetadata>,
    #[serde(default)]
    contacts: Vec<MetaContact>,
    #[serde(default)]
    messages: Vec<MetaMessage>,
    #[serde(default)]
    statuses: Vec<MetaStatus>,
}

#[derive(Debug, Deserialize)]
struct MetaMetadata {
    #[serde(default)]
    display_phone_number: String,
    #[serde(default)]
    phone_number_id: String,
}

#[derive(Debug, Deserialize)]
struct MetaContact {
    #[serde(default)]
    wa_id: String,
    #[serde(default)]
    profile: Option<MetaProfile>,
}

#[derive(Debug, Deserialize)]
struct MetaProfile {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MetaMessage {
    from: String,
    id: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    text: Option<MetaText>,
    #[serde(default)]
    button: Option<MetaText>,
    #[serde(default)]
    interactive: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct MetaText {
    #[serde(default, alias = "text")]
    body: String,
}

#[derive(Debug, Deserialize)]
struct MetaStatus {
    id: String,
    status: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    errors: Vec<MetaError>,
}

#[derive(Debug, Deserialize)]
struct MetaError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

// ---- RBM's payload -------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RbmEnvelope {
    #[serde(default)]
    client_token: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    message: Option<RbmPubsubMessage>,
}

#[derive(Debug, Deserialize)]
struct RbmPubsubMessage {
    data: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RbmEvent {
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    send_time: Option<String>,
    /// A contact's message: who sent it.
    #[serde(default)]
    sender_phone_number: Option<String>,
    /// A contact's text message.
    #[serde(default)]
    text: Option<String>,
    /// A contact's tap on a suggested reply or action.
    #[serde(default)]
    suggestion_response: Option<RbmSuggestionResponse>,
    /// A shared location.
    #[serde(default)]
    location: Option<serde_json::Value>,
    /// A sent file.
    #[serde(default)]
    user_file: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RbmSuggestionResponse {
    #[serde(default)]
    postback_data: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

impl RbmEvent {
    /// The text a session sees of a contact's message: its text, the label of the tapped
    /// suggestion, or `[location]` / `[file]` for what convo does not fetch.
    fn user_text(&self) -> String {
        if let Some(text) = &self.text {
            return text.clone();
        }
        if let Some(text) = self.suggestion_response.as_ref().and_then(|s| s.text.clone()) {
            return text;
        }
        if self.location.is_some() {
            return "[location]".to_owned();
        }
        if self.user_file.is_some() {
            return "[file]".to_owned();
        }
        "[unknown]".to_owned()
    }
}

impl MetaMessage {
    /// The text a session sees: the body of text messages, the label of a tapped button or
    /// list reply, and `[type]` for media, which convo does not fetch.
    fn text(&self) -> String {
        if let Some(t) = &self.text {
            return t.body.clone();
        }
        if let Some(b) = &self.button {
            return b.body.clone();
        }
        if let Some(i) = &self.interactive {
            for kind in ["button_reply", "list_reply"] {
                if let Some(title) =
                    i.get(kind).and_then(|r| r.get("title")).and_then(|t| t.as_str())
                {
                    return title.to_owned();
                }
            }
        }
        format!("[{}]", self.kind.as_deref().unwrap_or("unknown"))
    }

    fn sent_at(&self) -> Option<Timestamp> {
        self.timestamp.as_deref()?.parse::<u64>().ok().map(Timestamp::from_epoch_secs)
    }
}

impl App {
    /// `POST /v1/inbound/sandbox`: a contact's message on one of the workspace's channels, as
    /// the sandbox simulates it. It opens or extends the window and runs STOP/START/HELP like
    /// any provider's inbound.
    pub async fn inbound_sandbox(
        &self,
        ws: &WorkspaceId,
        req: SandboxInbound,
        idempotency_key: Option<&str>,
    ) -> Result<InboundOut, ApiError> {
        let channel = self.resolve_channel(ws, &req.channel, "channel").await?;
        self.sandbox_channel(&channel, "channel")?;
        if let Some(to) = req.to.as_deref().filter(|t| !t.trim().is_empty())
            && !same_phone(to, &channel.sender)
            && !to.trim().eq_ignore_ascii_case(channel.sender.trim())
        {
            return Err(ApiError::validation(
                "to",
                format!("the {} channel's address is {}", channel.channel, channel.sender),
            ));
        }
        let from = required_text("from", &req.from, 254)?;
        let text = required_text("text", &req.text, super::compose::MAX_TEXT)?;
        let postback_data = match super::optional_text(
            "postback_data",
            req.postback_data.as_deref(),
            convo_domain::rich::limits::POSTBACK_DATA,
        )? {
            Some(_) if channel.channel != Channel::Rcs => {
                return Err(ApiError::validation(
                    "postback_data",
                    "only RCS suggestions post back data",
                ));
            }
            data => data,
        };
        let sent_at = req.timestamp.as_deref().map(|t| parse_time("timestamp", t)).transpose()?;
        let message_id = match super::optional_text(
            "provider_message_id",
            req.provider_message_id.as_deref(),
            200,
        )? {
            Some(id) => id,
            None => Self::derived_id("sbx", ws, idempotency_key, "inbound"),
        };
        let inbound = Inbound {
            workspace_id: ws.as_str().to_owned(),
            channel: channel.channel,
            from,
            name: None,
            message_id,
            text,
            postback_data,
            sent_at,
        };
        let accepted = self
            .sessions()
            .inbound(inbound)
            .await
            .map_err(|e| super::rename_field(e.into(), "from"))?;
        Ok(InboundOut {
            received: 1,
            duplicates: usize::from(accepted.duplicate),
            contact_ids: vec![accepted.contact_id],
            ..InboundOut::default()
        })
    }

    /// `POST /v1/inbound/whatsapp`: Meta's webhook (messages and statuses). The receiving
    /// `phone_number_id` names the channel (its configuration's `phone_number_id`, or its
    /// sender); the body must be signed with that channel's `app_secret` (or the
    /// configured default). Every change is verified before any is processed; changes for
    /// numbers no workspace has are acknowledged and ignored, so Meta stops retrying them.
    pub async fn inbound_whatsapp(&self, req: WhatsappInbound) -> Result<InboundOut, ApiError> {
        let signature = req.signature.as_deref().ok_or_else(bad_signature)?;
        let default_secret = self.settings().whatsapp_app_secret.as_deref();
        let payload: MetaWebhook = match serde_json::from_slice(&req.body) {
            Ok(p) => p,
            Err(e) => {
                // Only a correctly signed body earns an answer about its content.
                return Err(match default_secret {
                    Some(s) if meta_signature_ok(s, &req.body, signature) => {
                        ApiError::malformed(format!("not a WhatsApp webhook payload: {e}"))
                    }
                    _ => bad_signature(),
                });
            }
        };
        let channels = self.store().channels_of_kind(Channel::Whatsapp).await?;
        let mut work = Vec::new();
        let mut out = InboundOut::default();
        for change in payload.entry.into_iter().flat_map(|e| e.changes) {
            let value = change.value;
            let Some(meta) = &value.metadata else {
                out.ignored += 1;
                continue;
            };
            let channel = channels.iter().find(|c| {
                config_str(c, "phone_number_id") == Some(meta.phone_number_id.as_str())
                    || c.sender == meta.phone_number_id
                    || (!meta.display_phone_number.is_empty()
                        && same_phone(&c.sender, &format!("+{}", meta.display_phone_number)))
            });
            let Some(channel) = channel else {
                out.ignored += 1;
                continue;
            };
            let secret = config_str(channel, "app_secret").or(default_secret);
            if !secret.is_some_and(|s| meta_signature_ok(s, &req.body, signature)) {
                return Err(bad_signature());
            }
            work.push((channel.clone(), value));
        }
        if work.is_empty() && out.ignored == 0 {
            // Nothing addressed to anyone: still require a valid signature to say so.
            if !default_secret.is_some_and(|s| meta_signature_ok(s, &req.body, signature)) {
                return Err(bad_signature());
            }
        }
        for (channel, value) in work {
            let ws = WorkspaceId(channel.workspace_id.clone());
            for m in &value.messages {
                let name = value
                    .contacts
                    .iter()
                    .find(|c| c.wa_id == m.from)
                    .and_then(|c| c.profile.as_ref()?.name.clone());
                let from =
                    if m.from.starts_with('+') { m.from.clone() } else { format!("+{}", m.from) };
                let inbound = Inbound {
                    workspace_id: ws.0.clone(),
                    channel: Channel::Whatsapp,
                    from,
                    name,
                    message_id: m.id.clone(),
                    text: m.text(),
                    postback_data: None,
                    sent_at: m.sent_at(),
                };
                let accepted = self.sessions().inbound(inbound).await?;
                out.received += 1;
                out.duplicates += usize::from(accepted.duplicate);
                out.contact_ids.push(accepted.contact_id);
            }
            for s in &value.statuses {
                let error = s.errors.first().map_or((None, None), |e| {
                    (e.code.map(|c| c.to_string()), e.title.clone().or_else(|| e.message.clone()))
                });
                let at = s
                    .timestamp
                    .as_deref()
                    .and_then(|t| t.parse::<u64>().ok())
                    .map(Timestamp::from_epoch_secs);
                let status = DeliveryStatus::from_whatsapp(&s.status);
                if self.apply_status(&ws, &s.id, status, error, "whatsapp", at).await? {
                    out.statuses += 1;
                } else {
                    out.ignored += 1;
                }
            }
        }
        Ok(out)
    }

    /// Meta's subscription handshake: echoes `hub.challenge` when `hub.verify_token` is the
    /// configured token.
    pub fn whatsapp_handshake(
        &self,
        mode: Option<&str>,
        token: Option<&str>,
        challenge: Option<&str>,
    ) -> Result<String, ApiError> {
        let expected = self.settings().whatsapp_verify_token.as_deref();
        match (mode, token, challenge, expected) {
            (Some("subscribe"), Some(t), Some(c), Some(e)) if t == e => Ok(c.to_owned()),
            _ => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                codes::UNAUTHORIZED,
                "verification failed",
            )),
        }
    }

    /// `POST /v1/inbound/twilio`: an incoming SMS (`From`, `To`, `Body`, `MessageSid`) or a
    /// status callback (`MessageStatus`, `MessageSid`, `ErrorCode`). The business number (`To`
    /// of a message, `From` of a status) names the SMS channel, whose configured `auth_token`
    /// must have signed the request.
    pub async fn inbound_twilio(&self, req: TwilioInbound) -> Result<InboundOut, ApiError> {
        let signature = req.signature.as_deref().ok_or_else(bad_signature)?;
        let params: Vec<(String, String)> =
            form_urlencoded::parse(&req.body).into_owned().collect();
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let status = param("MessageStatus").or(param("SmsStatus"));
        let is_status = status.is_some() && param("Body").is_none();
        let ours = if is_status { param("From") } else { param("To") }.unwrap_or_default();
        let ours = ours.strip_prefix("whatsapp:").unwrap_or(ours);
        let channels = self.store().channels_of_kind(Channel::Sms).await?;
        let channel = channels
            .iter()
            .find(|c| !ours.is_empty() && same_phone(&c.sender, ours))
            .ok_or_else(bad_signature)?;
        let token = config_str(channel, "auth_token").ok_or_else(bad_signature)?;
        if !twilio_signature_ok(token, &req.url, &params, signature) {
            return Err(bad_signature());
        }
        let ws = WorkspaceId(channel.workspace_id.clone());
        let sid = param("MessageSid").or(param("SmsSid")).unwrap_or_default();
        if sid.is_empty() {
            return Err(ApiError::validation("MessageSid", "is required"));
        }
        let mut out = InboundOut::default();
        if is_status {
            let text = |name: &str| param(name).filter(|c| !c.is_empty()).map(str::to_owned);
            let error = (text("ErrorCode"), text("ErrorMessage"));
            let status = DeliveryStatus::from_twilio(status.unwrap_or_default());
            if self.apply_status(&ws, sid, status, error, "twilio", None).await? {
                out.statuses = 1;
            } else {
                out.ignored = 1;
            }
            return Ok(out);
        }
        let from = param("From").unwrap_or_default();
        let inbound = Inbound {
            workspace_id: ws.0.clone(),
            channel: Channel::Sms,
            from: from.strip_prefix("whatsapp:").unwrap_or(from).to_owned(),
            name: None,
            message_id: sid.to_owned(),
            text: param("Body").unwrap_or_default().to_owned(),
            postback_data: None,
            sent_at: None,
        };
        let accepted = self
            .sessions()
            .inbound(inbound)
            .await
            .map_err(|e| super::rename_field(e.into(), "From"))?;
        out.received = 1;
        out.duplicates = usize::from(accepted.duplicate);
        out.contact_ids.push(accepted.contact_id);
        Ok(out)
    }

    /// `POST /v1/inbound/rbm`: RBM agent events. `DELIVERED` and `READ` events are delivery
    /// statuses of the message whose id (convo's, which RBM was given as `messageId`) they
    /// name; the agent (`agentId`, the RCS channel's `agent_id` or sender) names the channel,
    /// whose `client_token` must have signed the event. The webhook's verification request
    /// (`clientToken` and `secret`) is answered with the secret when the token is a channel's.
    /// A contact's message (`senderPhoneNumber` with `text`, a `suggestionResponse` carrying the
    /// tapped suggestion's label and postback data, a `location` or a `userFile`) reaches the
    /// contact's session like any inbound. Other events are acknowledged and ignored.
    pub async fn inbound_rbm(&self, req: RbmInbound) -> Result<RbmAnswer, ApiError> {
        use base64::{Engine, engine::general_purpose::STANDARD};
        let channels = self.store().channels_of_kind(Channel::Rcs).await?;
        let envelope: RbmEnvelope =
            serde_json::from_slice(&req.body).map_err(|_| bad_signature())?;
        if let (Some(token), Some(secret)) = (&envelope.client_token, &envelope.secret) {
            return if channels.iter().any(|c| config_str(c, "client_token") == Some(token)) {
                Ok(RbmAnswer::Verified(secret.clone()))
            } else {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    codes::UNAUTHORIZED,
                    "unknown client token",
                ))
            };
        }
        let signature = req.signature.as_deref().ok_or_else(bad_signature)?;
        let data = envelope.message.map(|m| m.data).ok_or_else(bad_signature)?;
        let event_bytes = STANDARD.decode(data.trim()).map_err(|_| bad_signature())?;
        let event: RbmEvent = serde_json::from_slice(&event_bytes).map_err(|_| bad_signature())?;
        let agent = event.agent_id.as_deref().unwrap_or_default();
        let channel = channels
            .iter()
            .find(|c| {
                !agent.is_empty() && (config_str(c, "agent_id") == Some(agent) || c.sender == agent)
            })
            .ok_or_else(bad_signature)?;
        let token = config_str(channel, "client_token").ok_or_else(bad_signature)?;
        if !rbm_signature_ok(token, &event_bytes, signature) {
            return Err(bad_signature());
        }
        let ws = WorkspaceId(channel.workspace_id.clone());
        let mut out = InboundOut::default();
        let status = event.event_type.as_deref().and_then(DeliveryStatus::from_rbm);
        let at = event
            .send_time
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
            .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
            .map(Timestamp::from_epoch_millis);
        let id = event.message_id.clone().unwrap_or_default();
        if let Some(from) =
            event.sender_phone_number.as_deref().filter(|_| event.event_type.is_none())
        {
            // A contact's message (text, a tapped suggestion, a location or a file).
            if id.is_empty() {
                return Err(ApiError::validation("messageId", "is required"));
            }
            let inbound = Inbound {
                workspace_id: ws.0.clone(),
                channel: Channel::Rcs,
                from: from.to_owned(),
                name: None,
                message_id: id.clone(),
                text: event.user_text(),
                postback_data: event.suggestion_response.and_then(|s| s.postback_data),
                sent_at: at,
            };
            let accepted = self
                .sessions()
                .inbound(inbound)
                .await
                .map_err(|e| super::rename_field(e.into(), "senderPhoneNumber"))?;
            out.received = 1;
            out.duplicates = usize::from(accepted.duplicate);
            out.contact_ids.push(accepted.contact_id);
            return Ok(RbmAnswer::Applied(out));
        }
        let applied = match status {
            Some(_) if !id.is_empty() => {
                // RBM names the message by the id convo gave it; the stored provider id is the
                // agent message's resource name.
                let message = match self.store().message_by_provider_id(ws.as_str(), &id).await? {
                    Some(m) => Some(m),
                    None => match self.store().message(&convo_domain::MessageId::new(&id)).await {
                        Ok(m) if m.workspace_id == ws.as_str() => Some(m),
                        Ok(_) | Err(convo_activities::store::StoreError::NotFound { .. }) => None,
                        Err(e) => return Err(e.into()),
                    },
                };
                match message {
                    Some(m) => {
                        self.apply_status_to(&ws, m, status, (None, None), "rbm", at).await?
                    }
                    None => false,
                }
            }
            _ => false,
        };
        if applied {
            out.statuses = 1;
        } else {
            out.ignored = 1;
        }
        Ok(RbmAnswer::Applied(out))
    }

    /// Applies a provider's delivery status report to the message of the workspace with that
    /// provider id ([`App::apply_delivery_report`]: forward only, one webhook per change, the
    /// late-failure release). Returns whether it was applied: `false` for an unknown message
    /// or a status that says nothing about delivery.
    async fn apply_status(
        &self,
        ws: &WorkspaceId,
        provider_message_id: &str,
        status: Option<DeliveryStatus>,
        error: (Option<String>, Option<String>),
        source: &str,
        provider_at: Option<Timestamp>,
    ) -> Result<bool, ApiError> {
        let Some(message) =
            self.store().message_by_provider_id(ws.as_str(), provider_message_id).await?
        else {
            return Ok(false);
        };
        self.apply_status_to(ws, message, status, error, source, provider_at).await
    }

    /// [`App::apply_status`] once the message is known.
    async fn apply_status_to(
        &self,
        ws: &WorkspaceId,
        message: convo_activities::store::MessageRecord,
        status: Option<DeliveryStatus>,
        error: (Option<String>, Option<String>),
        source: &str,
        provider_at: Option<Timestamp>,
    ) -> Result<bool, ApiError> {
        let Some(status) = status else { return Ok(false) };
        if message.direction != convo_domain::Direction::Outbound {
            return Ok(false);
        }
        let (error_code, error_message) =
            if status == DeliveryStatus::Failed { error } else { (None, None) };
        let report = StatusReport {
            status,
            error_code,
            error_message,
            source: source.to_owned(),
            provider_at,
        };
        self.apply_delivery_report(ws, &message, &report).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_meta(secret: &str, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        format!("sha256={}", super::super::hex(hmac::sign(&key, body).as_ref()))
    }

    #[test]
    fn meta_signatures_verify_only_with_the_secret_and_the_exact_body() {
        let sig = sign_meta("s3cret", b"{}");
        assert!(meta_signature_ok("s3cret", b"{}", &sig));
        assert!(!meta_signature_ok("other", b"{}", &sig));
        assert!(!meta_signature_ok("s3cret", b"{ }", &sig));
        assert!(!meta_signature_ok("s3cret", b"{}", "sha256=zz"));
        assert!(!meta_signature_ok("s3cret", b"{}", &sig.replace("sha256=", "")));
    }

    /// The signed string is the URL followed by the parameters sorted by name, whatever order
    /// they arrived in; any change to the URL or a value breaks it.
    #[test]
    fn twilio_signatures_cover_url_and_sorted_params() {
        use base64::{Engine, engine::general_purpose::STANDARD};
        let url = "https://example.com/myapp";
        let data = format!("{url}BodyhiFrom+12349013030To+18005551212");
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, b"12345");
        let sig = STANDARD.encode(hmac::sign(&key, data.as_bytes()).as_ref());
        let params = |body: &str| -> Vec<(String, String)> {
            [("To", "+18005551212"), ("From", "+12349013030"), ("Body", body)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        };
        assert!(twilio_signature_ok("12345", url, &params("hi"), &sig));
        assert!(!twilio_signature_ok("12345", url, &params("ho"), &sig));
        assert!(!twilio_signature_ok("12345", "https://example.com/other", &params("hi"), &sig));
        assert!(!twilio_signature_ok("54321", url, &params("hi"), &sig));
        assert!(!twilio_signature_ok("12345", url, &params("hi"), "not base64!"));
    }
}
