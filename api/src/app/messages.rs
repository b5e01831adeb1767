//! `POST /v1/messages`: one message to a contact, through the contact's session window.
//!
//! # How `message_type` maps onto the session
//! | `message_type` | content | session send | billed |
//! |---|---|---|---|
//! | `CONVERSATION` | `text` | free-form, after checking a window is open (422 `no_active_session` otherwise; the session's gate decides again) | the billing session's conversation unit (hold on its first send) |
//! | `MESSAGE` | `template` | template, `MESSAGE` | per message |
//! | `MESSAGE` | `text` only | free-form: sent in an open window (billed as `CONVERSATION`), or on an ungated channel outside one (per message); a gated channel with no window is 422 `no_active_session`, never a silent downgrade | as it went |
//! | `NEWSLETTER` | `template` (required) | template, `NEWSLETTER` | per message, at the newsletter price |
//!
//! The answer's `billing.message_type` says how the send was actually billed.

use convo_activities::store::Contact;
use convo_domain::{Channel, MessageType, Money, Sender};
use convo_workflows::contracts::{
    SendError, SendKind, SendReceipt, SendRequest, SessionSendOutcome,
};

use super::{
    App, WorkspaceId, optional_text, rfc3339,
    types::{BillingOut, MessageAccepted, RequestedType, SendMessageRequest},
};
use crate::error::{ApiError, codes};

/// The receipt of a send the session accepted, or its refusal as an [`ApiError`].
pub(crate) fn sent(outcome: SessionSendOutcome) -> Result<SendReceipt, ApiError> {
    match outcome {
        SessionSendOutcome::Sent(receipt) => Ok(receipt),
        SessionSendOutcome::Refused(e) => Err(e.into()),
    }
}

/// The API's answer for an accepted send.
pub(crate) fn accepted(
    receipt: SendReceipt,
    channel: Channel,
    message_type: MessageType,
    contact_id: String,
    created_at: String,
    traffic_type: Option<String>,
) -> MessageAccepted {
    let billing = receipt.billing;
    MessageAccepted {
        message_id: receipt.message_id,
        status: "queued".to_owned(),
        created_at,
        conversation_expires_at: receipt.conversation_expires_at.map(rfc3339),
        contact_id,
        traffic_type,
        billing: BillingOut {
            channel,
            message_type,
            in_session: billing.in_session,
            hold_amount: billing.hold_amount.minor(),
            message_price: billing.message_price.minor(),
            balance: billing.balance.map(Into::into).unwrap_or_default(),
        },
    }
}

impl App {
    /// A send through the contact's session ([`convo_activities::Sessions::send`], which also
    /// retries a send whose run completed under it), bounded by the send timeout.
    pub(crate) async fn session_send(
        &self,
        ws: &WorkspaceId,
        contact_id: &str,
        channel: Channel,
        request: SendRequest,
    ) -> Result<SessionSendOutcome, ApiError> {
        let send = self.sessions().send(ws.as_str(), contact_id, channel, request);
        Ok(self.with_send_timeout(send).await??)
    }

    /// `POST /v1/messages`; see the module docs for how `message_type` is carried out. The
    /// message id derives from the Idempotency-Key, so a retried send never sends twice.
    pub async fn send_message(
        &self,
        ws: &WorkspaceId,
        req: SendMessageRequest,
        idempotency_key: Option<&str>,
    ) -> Result<MessageAccepted, ApiError> {
        let channel = self.resolve_channel(ws, &req.channel, "channel").await?;
        let content = &req.content;
        for (field, given) in [
            ("content.suggestions", content.suggestions.is_some()),
            ("content.rich_card", content.rich_card.is_some()),
            ("content.carousel", content.carousel.is_some()),
        ] {
            if given {
                return Err(ApiError::validation(
                    field,
                    "rich RCS content is not supported by convo's providers yet; send text or a template",
                ));
            }
        }
        let text =
            optional_text("content.text", content.text.as_deref(), super::compose::MAX_TEXT)?;
        let subject = optional_text("content.subject", content.subject.as_deref(), 998)?;
        let template = content
            .template
            .as_ref()
            .map(|t| super::template_name("content.template.name", &t.name))
            .transpose()?;
        let traffic_type = optional_text("traffic_type", req.traffic_type.as_deref(), 50)?;
        let (kind, billed_as) = match (req.message_type, text, template) {
            (RequestedType::Conversation, Some(_), Some(_)) => {
                return Err(ApiError::validation(
                    "content.template",
                    "CONVERSATION sends free-form text; templates are MESSAGE or NEWSLETTER",
                ));
            }
            (RequestedType::Conversation, Some(text), None) => {
                (SendKind::Freeform { text, subject, sender: Sender::Automated }, None)
            }
            (RequestedType::Conversation, None, _) => {
                return Err(ApiError::validation("content.text", "CONVERSATION needs text"));
            }
            (RequestedType::Message, _, Some(template)) => (
                SendKind::Template { template, message_type: MessageType::Message },
                Some(MessageType::Message),
            ),
            (RequestedType::Message, Some(text), None) => {
                (SendKind::Freeform { text, subject, sender: Sender::Automated }, None)
            }
            (RequestedType::Message, None, None) => {
                return Err(ApiError::validation("content.text", "give text or a template"));
            }
            (RequestedType::Newsletter, _, Some(template)) => (
                SendKind::Template { template, message_type: MessageType::Newsletter },
                Some(MessageType::Newsletter),
            ),
            (RequestedType::Newsletter, _, None) => {
                return Err(ApiError::validation(
                    "content.template",
                    "NEWSLETTER is sent as an approved template",
                ));
            }
        };
        let contact: Contact = if req.message_type == RequestedType::Conversation {
            // A contact who never wrote has no window: no contact is created for it.
            let contact = self.find_contact(ws, &req.to, "to").await?.ok_or_else(no_window)?;
            let view = self.session_view(ws, &contact.id).await?;
            if !view.as_ref().is_some_and(|v| v.window.open) {
                // An opted-out contact has no window either, but the opt-out is what the caller
                // must act on: it blocks templates too. A running session knows it before the
                // store does (its consent record is an activity that may still be running).
                let consent = match view.map(|v| v.window.consent) {
                    Some(c @ convo_domain::Consent::OptedOut { .. }) => c,
                    _ => self.store().consent(ws.as_str(), &contact.id).await?,
                };
                if let convo_domain::Consent::OptedOut { at } = consent {
                    return Err(ApiError::from(SendError {
                        code: codes::CONTACT_OPTED_OUT.to_owned(),
                        message: format!("the contact opted out at {at}"),
                    }));
                }
                return Err(no_window());
            }
            contact
        } else {
            self.find_or_create_contact(ws, &req.to, None, "to").await?
        };
        let message_id = Self::derived_id("msg", ws, idempotency_key, "messages");
        let created_at = rfc3339(super::now());
        let request =
            SendRequest { message_id, channel: channel.channel, kind, conversation_id: None };
        let receipt = sent(self.session_send(ws, &contact.id, channel.channel, request).await?)?;
        let billed_as =
            billed_as.unwrap_or_else(|| freeform_billing(receipt.billing.message_price));
        Ok(accepted(receipt, channel.channel, billed_as, contact.id, created_at, traffic_type))
    }
}

/// The domain bills in-window free-form by the conversation unit (no per-message price) and
/// free-form outside a window (ungated channels) per message.
fn freeform_billing(message_price: Money) -> MessageType {
    if message_price.is_zero() { MessageType::Conversation } else { MessageType::Message }
}

fn no_window() -> ApiError {
    ApiError::from(SendError {
        code: codes::NO_ACTIVE_SESSION.to_owned(),
        message: "the contact has no open window; send a template (MESSAGE) to re-engage"
            .to_owned(),
    })
}
