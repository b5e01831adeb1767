//! Inbound messages and delivery statuses from providers.
//!
//! Provider webhooks carry no API key: they are authenticated by their signature, made with a
//! secret of the receiving channel (Meta's app secret, Twilio's auth token), and the receiving
//! address tells which workspace they belong to. Every signature is checked before anything is
//! recorded, so a forged request leaves no trace. The sandbox's inbound, a development aid, is
//! authenticated with the workspace's API key instead.

use convo_client::{Inbound, InboundAccepted};
use convo_domain::{Channel, DeliveryStatus, Timestamp};
use convo_store::{ChannelConfig, StatusReport, normalize_delivered_phone};
use convo_wire::{meta, rbm, signature, twilio};

use super::{
    App, WorkspaceId, required_text,
    types::{InboundOut, SandboxInbound},
};
use crate::error::{ApiError, ErrorCode};

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

fn config_str<'a>(channel: &'a ChannelConfig, key: &str) -> Option<&'a str> {
    channel.config.get(key).and_then(|v| v.as_str()).filter(|s| !s.is_empty())
}

fn same_phone(a: &str, b: &str) -> bool {
    match (normalize_delivered_phone(a), normalize_delivered_phone(b)) {
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
            .gateway()
            .inbound(inbound)
            .await
            .map_err(|e| super::rename_field(e.into(), "from"))?;
        let mut out = InboundOut::default();
        handed(&mut out, accepted);
        Ok(out)
    }

    /// `POST /v1/inbound/whatsapp`: Meta's webhook (messages and statuses). The receiving
    /// `phone_number_id` names the channel (its configuration's `phone_number_id`, or its
    /// sender); the body must be signed with that channel's `app_secret` (or the
    /// configured default). Every change is verified before any is processed; changes for
    /// numbers no workspace has are acknowledged and ignored, so Meta stops retrying them.
    pub async fn inbound_whatsapp(&self, req: WhatsappInbound) -> Result<InboundOut, ApiError> {
        let header = req.signature.as_deref().ok_or_else(bad_signature)?;
        let default_secret = self.settings().whatsapp_app_secret.as_deref();
        let payload = match meta::Webhook::parse(&req.body) {
            Ok(p) => p,
            Err(e) => {
                // Only a correctly signed body earns an answer about its content.
                return Err(match default_secret {
                    Some(s) if signature::meta_ok(s, &req.body, header) => {
                        ApiError::malformed(format!("not a WhatsApp webhook payload: {e}"))
                    }
                    _ => bad_signature(),
                });
            }
        };
        let channels = self.store().channels_of_kind(Channel::Whatsapp).await?;
        let mut work = Vec::new();
        let mut out = InboundOut::default();
        for value in payload.into_values() {
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
            if !secret.is_some_and(|s| signature::meta_ok(s, &req.body, header)) {
                return Err(bad_signature());
            }
            work.push((channel.clone(), value));
        }
        if work.is_empty() && out.ignored == 0 {
            // Nothing addressed to anyone: still require a valid signature to say so.
            if !default_secret.is_some_and(|s| signature::meta_ok(s, &req.body, header)) {
                return Err(bad_signature());
            }
        }
        for (channel, value) in work {
            let ws = WorkspaceId(channel.workspace_id.clone());
            for m in &value.messages {
                let inbound = Inbound {
                    workspace_id: ws.0.clone(),
                    channel: Channel::Whatsapp,
                    from: m.sender(),
                    name: value.contact_name(&m.from),
                    message_id: m.id.clone(),
                    text: m.text(),
                    postback_data: None,
                    sent_at: m.sent_at(),
                };
                handed(&mut out, self.gateway().inbound(inbound).await?);
            }
            for s in &value.statuses {
                let status = DeliveryStatus::from_whatsapp(&s.status);
                if self.apply_status(&ws, &s.id, status, s.error(), "whatsapp", s.at()).await? {
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
            _ => Err(ApiError::new(ErrorCode::Forbidden, "verification failed")),
        }
    }

    /// `POST /v1/inbound/twilio`: an incoming SMS (`From`, `To`, `Body`, `MessageSid`) or a
    /// status callback (`MessageStatus`, `MessageSid`, `ErrorCode`). The business number (`To`
    /// of a message, `From` of a status) names the SMS channel, whose configured `auth_token`
    /// must have signed the request.
    pub async fn inbound_twilio(&self, req: TwilioInbound) -> Result<InboundOut, ApiError> {
        let header = req.signature.as_deref().ok_or_else(bad_signature)?;
        let form = twilio::Form::parse(&req.body);
        let event = form.event();
        let ours = event.business_number();
        let channels = self.store().channels_of_kind(Channel::Sms).await?;
        let channel = channels
            .iter()
            .find(|c| !ours.is_empty() && same_phone(&c.sender, ours))
            .ok_or_else(bad_signature)?;
        let token = config_str(channel, "auth_token").ok_or_else(bad_signature)?;
        if !signature::twilio_ok(token, &req.url, &form.params, header) {
            return Err(bad_signature());
        }
        let ws = WorkspaceId(channel.workspace_id.clone());
        if event.sid().is_empty() {
            return Err(ApiError::validation("MessageSid", "is required"));
        }
        let mut out = InboundOut::default();
        match event {
            twilio::Event::Status { sid, status, error_code, error_message, .. } => {
                let error = (error_code.map(str::to_owned), error_message.map(str::to_owned));
                let status = DeliveryStatus::from_twilio(status);
                if self.apply_status(&ws, sid, status, error, "twilio", None).await? {
                    out.statuses = 1;
                } else {
                    out.ignored = 1;
                }
            }
            twilio::Event::Message { sid, from, body, .. } => {
                let inbound = Inbound {
                    workspace_id: ws.0.clone(),
                    channel: Channel::Sms,
                    from: from.to_owned(),
                    name: None,
                    message_id: sid.to_owned(),
                    text: body.to_owned(),
                    postback_data: None,
                    sent_at: None,
                };
                let accepted = self
                    .gateway()
                    .inbound(inbound)
                    .await
                    .map_err(|e| super::rename_field(e.into(), "From"))?;
                handed(&mut out, accepted);
            }
        }
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
        let channels = self.store().channels_of_kind(Channel::Rcs).await?;
        let envelope = rbm::Envelope::parse(&req.body).map_err(|_| bad_signature())?;
        if let Some((token, secret)) = envelope.verification() {
            return if channels.iter().any(|c| config_str(c, "client_token") == Some(token)) {
                Ok(RbmAnswer::Verified(secret.to_owned()))
            } else {
                Err(ApiError::new(ErrorCode::Forbidden, "unknown client token"))
            };
        }
        let header = req.signature.as_deref().ok_or_else(bad_signature)?;
        let (event_bytes, event) = envelope.event().map_err(|_| bad_signature())?;
        let agent = event.agent_id.as_deref().unwrap_or_default();
        let channel = channels
            .iter()
            .find(|c| {
                !agent.is_empty() && (config_str(c, "agent_id") == Some(agent) || c.sender == agent)
            })
            .ok_or_else(bad_signature)?;
        let token = config_str(channel, "client_token").ok_or_else(bad_signature)?;
        if !signature::rbm_ok(token, &event_bytes, header) {
            return Err(bad_signature());
        }
        let ws = WorkspaceId(channel.workspace_id.clone());
        let mut out = InboundOut::default();
        let status = event.event_type.as_deref().and_then(DeliveryStatus::from_rbm);
        let at = event.sent_at();
        let id = event.message_id.clone().unwrap_or_default();
        if let Some(from) = event.contact_message_from() {
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
                .gateway()
                .inbound(inbound)
                .await
                .map_err(|e| super::rename_field(e.into(), "senderPhoneNumber"))?;
            handed(&mut out, accepted);
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
                        Ok(_) | Err(convo_store::StoreError::NotFound { .. }) => None,
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
        message: convo_store::MessageRecord,
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

/// Counts a message handed to its session into the request's answer.
fn handed(out: &mut InboundOut, accepted: InboundAccepted) {
    out.received += 1;
    out.duplicates += usize::from(accepted.duplicate);
    out.contact_ids.push(accepted.contact_id);
}
