//! Business sends: gating, holds, provider outcomes, and the inactivity ping.

use super::Cx;
use crate::{
    BillingBlock, Channel, HoldId, MessageId, MessageType, Money, Timestamp,
    window::{
        Content, Effect, Error, Event, OutboundMessage, Sender, State,
        state::{Pending, SessionHold},
    },
};

/// A send request, from an event or from the inactivity ping.
pub(super) struct Request {
    id: MessageId,
    content: Content,
    sender: Sender,
    /// `None` for free-form; the template's message type otherwise.
    template: Option<MessageType>,
}

impl Request {
    pub(super) fn from_event(event: &Event) -> Option<Self> {
        match event {
            Event::FreeformSendRequested { message_id, text, subject, sender } => Some(Self {
                id: message_id.clone(),
                content: Content::Text { body: text.clone(), subject: subject.clone() },
                sender: *sender,
                template: None,
            }),
            Event::RichSendRequested { message_id, rich, sender } => Some(Self {
                id: message_id.clone(),
                content: Content::Rich(rich.clone()),
                sender: *sender,
                template: None,
            }),
            Event::TemplateSendRequested { message_id, template, message_type, params } => {
                Some(Self {
                    id: message_id.clone(),
                    content: Content::Template { name: template.clone(), params: params.clone() },
                    sender: Sender::Automated,
                    template: Some(*message_type),
                })
            }
            _ => None,
        }
    }
}

/// How an accepted request is billed and tagged.
pub(super) struct Plan {
    message_type: MessageType,
    human_agent_tag: bool,
}

/// The gate, in order: a malformed request (`validation_failed`), an opted-out contact
/// (`contact_opted_out`), free-form with no window open for this sender where the channel gates
/// (`no_active_session`). In-window free-form is `CONVERSATION`; anything else is per message.
pub(super) fn check(s: &State, req: &Request, now: Timestamp) -> Result<Plan, Error> {
    if req.id.as_str().trim().is_empty() {
        return Err(Error::invalid("message id must not be empty"));
    }
    if s.pending.iter().any(|p| p.message.id == req.id) {
        return Err(Error::invalid(format!("message {} is already in flight", req.id)));
    }
    match (&req.content, req.template) {
        (Content::Text { body, .. }, _) if body.trim().is_empty() => {
            return Err(Error::invalid("text must not be empty"));
        }
        (Content::Template { name, .. }, _) if name.trim().is_empty() => {
            return Err(Error::invalid("template name must not be empty"));
        }
        (Content::Rich(_), _) if s.config.channel != Channel::Rcs => {
            return Err(Error::invalid(format!(
                "rich content (suggestions, cards, carousels) is RCS only, not {}",
                s.config.channel
            )));
        }
        (Content::Rich(rich), _) => rich.validate().map_err(|e| Error::invalid(e.to_string()))?,
        (_, Some(MessageType::Conversation)) => {
            return Err(Error::invalid("a template is billed as MESSAGE or NEWSLETTER"));
        }
        _ => {}
    }
    s.consent.check_business_send()?;
    if let Some(message_type) = req.template {
        return Ok(Plan { message_type, human_agent_tag: false });
    }
    if let Some(tag) = s.window.and_then(|w| w.allows(req.sender, now)) {
        return Ok(Plan { message_type: MessageType::Conversation, human_agent_tag: tag });
    }
    if s.config.policy.gate.applies(s.consent.is_opted_in()) {
        return Err(Error::NoActiveSession { expired_at: s.window.map(|w| w.expires_at()) });
    }
    if s.config.channel == Channel::Email
        && matches!(&req.content, Content::Text { subject, .. }
            if subject.as_deref().is_none_or(|t| t.trim().is_empty()))
    {
        return Err(Error::invalid("an e-mail outside a conversation needs a subject"));
    }
    Ok(Plan { message_type: MessageType::Message, human_agent_tag: false })
}

impl Cx {
    fn block(&self, in_session: bool, hold_amount: Money, message_price: Money) -> BillingBlock {
        BillingBlock { in_session, hold_amount, message_price, balance: self.s.last_balance }
    }

    pub(super) fn request(&mut self, req: Request) {
        let plan = match check(&self.s, &req, self.now) {
            Ok(plan) => plan,
            Err(error) => return self.reject(req.id, error),
        };
        let message = OutboundMessage {
            id: req.id,
            content: req.content,
            message_type: plan.message_type,
            sender: req.sender,
            human_agent_tag: plan.human_agent_tag,
        };
        let rates = self.s.config.rates;
        if plan.message_type == MessageType::Conversation {
            let ordinal = self.ensure_session();
            let unit = rates.conversation_unit;
            let hold = self.session_mut(ordinal).map(|b| b.hold.clone());
            match hold {
                // Every CONVERSATION send rides on the session that exists for the pair, so
                // it is `in_session`; the first one carries the unit as its hold and price.
                Some(SessionHold::None) if unit.is_zero() => {
                    self.set_session_hold(ordinal, SessionHold::Free);
                    let billing = self.block(true, Money::ZERO, Money::ZERO);
                    self.send_now(message, billing, Some(ordinal), None);
                }
                Some(SessionHold::None) => {
                    let id = HoldId::for_message(&message.id);
                    self.set_session_hold(
                        ordinal,
                        SessionHold::Pending { id: id.clone(), amount: unit },
                    );
                    let billing = self.block(true, unit, unit);
                    self.await_hold(message, billing, id, unit, Some(ordinal));
                }
                Some(SessionHold::Pending { id, .. }) => {
                    // Queued behind the session's first send: sent (or refused) with it.
                    let billing = self.block(true, Money::ZERO, Money::ZERO);
                    let conversation = self.current_conversation();
                    self.s.pending.push(Pending {
                        message,
                        billing,
                        hold: Some(id),
                        session: Some(ordinal),
                        conversation,
                        awaiting_hold: true,
                    });
                }
                Some(SessionHold::Free | SessionHold::Placed { .. }) | None => {
                    let billing = self.block(true, Money::ZERO, Money::ZERO);
                    self.send_now(message, billing, Some(ordinal), None);
                }
            }
            self.settle_sessions();
        } else {
            let price = rates.price(plan.message_type);
            // `in_session` says whether a session (an open window) exists for the pair.
            let billing = self.block(self.s.window.is_some(), Money::ZERO, price);
            if price.is_zero() {
                self.send_now(message, billing, None, None);
            } else {
                let id = HoldId::for_message(&message.id);
                self.await_hold(message, billing, id, price, None);
            }
        }
    }

    fn set_session_hold(&mut self, ordinal: u32, hold: SessionHold) {
        if let Some(b) = self.session_mut(ordinal) {
            b.hold = hold;
        }
    }

    fn await_hold(
        &mut self,
        message: OutboundMessage,
        billing: BillingBlock,
        hold_id: HoldId,
        amount: Money,
        session: Option<u32>,
    ) {
        self.emit(Effect::PlaceHold {
            hold_id: hold_id.clone(),
            amount,
            message_id: message.id.clone(),
        });
        let conversation = self.current_conversation();
        self.s.pending.push(Pending {
            message,
            billing,
            hold: Some(hold_id),
            session,
            conversation,
            awaiting_hold: true,
        });
    }

    fn send_now(
        &mut self,
        message: OutboundMessage,
        billing: BillingBlock,
        session: Option<u32>,
        hold: Option<HoldId>,
    ) {
        let conversation_expires_at = self.s.window.map(|w| w.expires_at());
        self.emit(Effect::Send { message: message.clone(), billing, conversation_expires_at });
        let conversation = self.current_conversation();
        self.s.pending.push(Pending {
            message,
            billing,
            hold,
            session,
            conversation,
            awaiting_hold: false,
        });
    }

    /// The open window's conversation, if a window is open.
    pub(super) fn current_conversation(&self) -> Option<u32> {
        self.s.window.map(|_| self.s.conversation)
    }
}

#[path = "send_outcomes.rs"]
mod outcomes;
