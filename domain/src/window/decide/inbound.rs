//! User messages, compliance keywords and consent changes.

use super::Cx;
use crate::{
    Consent, MessageId, Timestamp,
    compliance::{self, Keyword},
    window::{CloseReason, Direction, Effect, Webhook, state::InboundRef},
};

impl Cx {
    pub(super) fn on_inbound(&mut self, id: &MessageId, text: &str, sent_at: Option<Timestamp>) {
        // The provider's send time, never later than now (clock skew).
        let at = sent_at.map_or(self.now, |t| t.min(self.now));
        match compliance::classify(text) {
            Some(Keyword::OptOut) => return self.keyword_opt_out(id, at),
            Some(Keyword::OptIn) => self.opt_in(id),
            // Answering HELP is a reply the contact asked for, not a business-initiated send,
            // so an opt-out does not block it.
            Some(Keyword::Help) => self.compliance_reply(id, Keyword::Help),
            None => {}
        }
        self.user_message(id, at);
    }

    fn compliance_reply(&mut self, to: &MessageId, kind: Keyword) {
        let text = self.s.config.compliance.reply(kind).to_owned();
        self.emit(Effect::SendConfirmation { message_id: MessageId::reply_to(to), kind, text });
    }

    /// STOP and friends: record the opt-out for the workspace (every channel), send the one
    /// confirmation, and tear the window down with `COMPLIANCE_STOP`. A repeated STOP from an
    /// opted-out contact gets no second confirmation.
    fn keyword_opt_out(&mut self, id: &MessageId, at: Timestamp) {
        if !self.s.consent.is_opted_out() {
            self.s.consent = Consent::OptedOut { at: self.now };
            self.emit(Effect::RecordConsent { consent: self.s.consent });
            self.compliance_reply(id, Keyword::OptOut);
        }
        if self.s.window.is_some_and(|w| !w.is_open_at(at)) {
            // Over already (its timer is not processed yet): it expired, STOP did not close it.
            self.begin_close(CloseReason::Expired);
        }
        if let Some(window) = self.s.window {
            self.s.totals.inbound += 1;
            let conversation = Some(self.s.conversation);
            let facts = self.window_facts();
            self.webhook(|seq| Webhook::MessageExchanged {
                seq,
                conversation,
                message_id: id.clone(),
                direction: Direction::Inbound,
                at,
                expires_at: Some(window.expires_at()),
                window: facts,
            });
        }
        self.begin_close(CloseReason::ComplianceStop);
    }

    /// START/UNSTOP/YES: an opted-out contact opts back in and gets a confirmation; a contact
    /// with no recorded consent is recorded as opted in (which lifts SMS's gate).
    fn opt_in(&mut self, id: &MessageId) {
        match self.s.consent {
            Consent::OptedIn { .. } => {}
            Consent::OptedOut { .. } => {
                self.s.consent = Consent::OptedIn { at: self.now };
                self.emit(Effect::RecordConsent { consent: self.s.consent });
                self.compliance_reply(id, Keyword::OptIn);
            }
            Consent::Unknown => {
                self.s.consent = Consent::OptedIn { at: self.now };
                self.emit(Effect::RecordConsent { consent: self.s.consent });
            }
        }
    }

    /// The contact moved to another channel: the session's configuration becomes that
    /// channel's. The same channel, or a configuration that does not validate, changes nothing.
    pub(super) fn channel_changed(&mut self, config: &super::super::Config) {
        if config.channel != self.s.config.channel && config.validate().is_ok() {
            self.s.config = config.clone();
        }
    }

    /// A consent change recorded elsewhere. An opt-out closes the window (no confirmation: the
    /// channel it came from sent its own).
    pub(super) fn consent_changed(&mut self, consent: Consent) {
        self.s.consent = consent;
        if consent.is_opted_out() {
            self.begin_close(CloseReason::ComplianceStop);
        }
    }

    /// A user message (keywords included, STOP excepted): slides an open window, or opens one
    /// (even while the previous conversation's teardown still settles). An opted-out contact's
    /// messages open nothing.
    fn user_message(&mut self, id: &MessageId, at: Timestamp) {
        if self.s.consent.is_opted_out() {
            return;
        }
        if let Some(mut window) = self.s.window {
            if window.is_open_at(at) {
                // Cannot fail: the window is open at `at`. Only user messages get here, so only
                // they slide it.
                let _ = window.record(Direction::Inbound, at);
                self.s.window = Some(window);
                self.s.totals.inbound += 1;
                let conversation = Some(self.s.conversation);
                if self.s.last_user_inbound.as_ref().is_none_or(|r| at >= r.at) {
                    self.s.last_user_inbound = Some(InboundRef { id: id.clone(), at });
                }
                let facts = self.window_facts();
                self.webhook(|seq| Webhook::MessageExchanged {
                    seq,
                    conversation,
                    message_id: id.clone(),
                    direction: Direction::Inbound,
                    at,
                    expires_at: Some(window.expires_at()),
                    window: facts,
                });
                return;
            }
            // The expiry timer has not been processed yet, but the window is over.
            self.begin_close(CloseReason::Expired);
        }
        self.open_window(id, at);
    }
}
