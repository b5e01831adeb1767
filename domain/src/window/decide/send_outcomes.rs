//! Hold answers, provider answers and the inactivity ping.

use super::{Cx, Request};
use crate::{
    Balance, MessageId, MessageType,
    window::{
        Content, Direction, Effect, Error, Sender, Webhook,
        state::{Pending, SessionHold},
    },
};

impl Cx {
    /// The ledger placed `hold_id`: every send waiting on it goes out, unless the world changed
    /// meanwhile (the window closed, the contact opted out); a refused per-message send's hold
    /// is released at once.
    pub(in crate::window::decide) fn hold_placed(
        &mut self,
        hold_id: &crate::HoldId,
        balance: Balance,
    ) {
        self.s.last_balance = Some(balance);
        let mut known = false;
        for b in &mut self.s.sessions {
            if let SessionHold::Pending { id, amount } = &b.hold
                && id == hold_id
            {
                b.hold = SessionHold::Placed { id: id.clone(), amount: *amount };
                known = true;
            }
        }
        let waiting = |p: &Pending| p.awaiting_hold && p.hold.as_ref() == Some(hold_id);
        if !known && !self.s.pending.iter().any(waiting) {
            return; // A duplicate answer.
        }
        for mut p in std::mem::take(&mut self.s.pending) {
            if !waiting(&p) {
                self.s.pending.push(p);
                continue;
            }
            match self.recheck(&p) {
                Ok(tag) => {
                    p.awaiting_hold = false;
                    p.billing.balance = Some(balance);
                    p.message.human_agent_tag = tag;
                    let conversation_expires_at = self.s.window.map(|w| w.expires_at());
                    self.emit(Effect::Send {
                        message: p.message.clone(),
                        billing: p.billing,
                        conversation_expires_at,
                    });
                    self.s.pending.push(p);
                }
                Err(error) => {
                    if p.session.is_none() {
                        let amount = p.billing.message_price;
                        let billing = &mut self.totals_for(p.conversation).billing;
                        billing.released = billing.released.saturating_add(amount);
                        self.emit(Effect::ReleaseHold { hold_id: hold_id.clone(), amount });
                    }
                    self.reject(p.message.id, error);
                }
            }
        }
        self.settle_sessions();
        self.try_finalize();
    }

    /// Whether a send that waited for its hold may still go out, and with which tag: a
    /// free-form send only in the window it was requested in, if that is still open for it.
    fn recheck(&self, p: &Pending) -> Result<bool, Error> {
        self.s.consent.check_business_send()?;
        if p.message.message_type != MessageType::Conversation {
            return Ok(false);
        }
        self.s
            .window
            .filter(|_| p.conversation == self.current_conversation())
            .and_then(|w| w.allows(p.message.sender, self.now))
            .ok_or(Error::NoActiveSession { expired_at: self.s.window.map(|w| w.expires_at()) })
    }

    /// The ledger refused `hold_id`: every send waiting on it is refused with
    /// `insufficient_balance` and nothing is sent. The session's next send asks again.
    pub(in crate::window::decide) fn hold_refused(
        &mut self,
        hold_id: &crate::HoldId,
        balance: Balance,
    ) {
        self.s.last_balance = Some(balance);
        let mut session_amount = None;
        for b in &mut self.s.sessions {
            if let SessionHold::Pending { id, amount } = &b.hold
                && id == hold_id
            {
                session_amount = Some(*amount);
                b.hold = SessionHold::None;
            }
        }
        for p in std::mem::take(&mut self.s.pending) {
            if !(p.awaiting_hold && p.hold.as_ref() == Some(hold_id)) {
                self.s.pending.push(p);
                continue;
            }
            let required = match p.session {
                Some(_) => session_amount.unwrap_or(p.billing.hold_amount),
                None => p.billing.message_price,
            };
            self.reject(p.message.id, Error::InsufficientBalance { required, free: balance.free });
        }
        self.settle_sessions();
        self.try_finalize();
    }

    /// The provider accepted or rejected a message the session sent.
    pub(in crate::window::decide) fn provider_outcome(&mut self, id: &MessageId, accepted: bool) {
        let Some(idx) = self.s.pending.iter().position(|p| &p.message.id == id && !p.awaiting_hold)
        else {
            return; // Unknown, duplicate, or a compliance reply (not tracked).
        };
        let p = self.s.pending.remove(idx);
        let own_hold = p.hold.clone().filter(|_| p.session.is_none());
        let amount = p.billing.message_price;
        let conversation = p.conversation;
        if accepted {
            self.totals_for(conversation).outbound += 1;
            if let Some(b) = p.session.and_then(|o| self.session_mut(o)) {
                b.accepted = true;
            }
            if let Some(hold_id) = own_hold {
                let billing = &mut self.totals_for(conversation).billing;
                billing.charged = billing.charged.saturating_add(amount);
                self.emit(Effect::ChargeHold { hold_id, amount });
            }
            let expires_at = self.s.window.map(|w| w.expires_at());
            let at = self.now;
            let facts = self.window_facts();
            self.webhook(|seq| Webhook::MessageExchanged {
                seq,
                conversation,
                message_id: id.clone(),
                direction: Direction::Outbound,
                at,
                expires_at,
                window: facts,
            });
        } else if let Some(hold_id) = own_hold {
            let billing = &mut self.totals_for(conversation).billing;
            billing.released = billing.released.saturating_add(amount);
            self.emit(Effect::ReleaseHold { hold_id, amount });
        }
        self.settle_sessions();
        self.try_finalize();
    }

    /// The inactivity timer fired: send the configured ping, once per silence, through the same
    /// gate and billing as any send.
    pub(in crate::window::decide) fn ping(&mut self) {
        let (Some(last), Some(ping)) =
            (self.s.last_user_inbound.clone(), self.s.config.inactivity_ping.clone())
        else {
            return;
        };
        self.s.ping_sent_for = Some(last.id.clone());
        let template = match &ping.content {
            Content::Text { .. } | Content::Rich(_) => None,
            Content::Template { .. } => Some(MessageType::Message),
        };
        self.request(Request {
            id: MessageId::ping_after(&last.id),
            content: ping.content,
            sender: Sender::Automated,
            template,
        });
    }
}
