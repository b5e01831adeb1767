//! Opening and closing windows, billing sessions, and timers.

use std::collections::BTreeSet;

use super::Cx;
use crate::{
    MessageId, Timestamp,
    window::{
        CloseReason, Direction, Effect, TimerKind, Webhook, Window, WindowFacts,
        state::{BillingSession, Closing, InboundRef, SessionHold, Timers, Totals},
    },
};

impl Cx {
    /// Opens a window on the user message `id` sent at `at`. Does nothing if, measured from
    /// `at`, the window would already be over (a message delivered very late).
    pub(super) fn open_window(&mut self, id: &MessageId, at: Timestamp) {
        let window = Window::open(self.s.config.policy, at);
        if !window.is_open_at(self.now) {
            return;
        }
        self.s.window = Some(window);
        self.s.conversation += 1;
        let conversation = self.s.conversation;
        self.s.totals = Totals { inbound: 1, ..Totals::default() };
        self.s.last_user_inbound = Some(InboundRef { id: id.clone(), at });
        self.s.ping_sent_for = None;
        // The first billing session runs from the user message that opened the window (RCS:
        // "24 h from the user's reply"); later ones start at the send that needs one.
        if at.plus_secs(self.s.config.policy.billing_session_secs) > self.now {
            self.start_session(at);
        }
        let channel = self.s.config.channel;
        let billing_session_ends_at = self.s.current_session().map(|b| b.ends_at);
        self.webhook(|seq| Webhook::ConversationStarted {
            seq,
            conversation,
            channel,
            opened_at: at,
            expires_at: window.expires_at(),
            billing_session_ends_at,
            opening_message: Some(id.clone()),
        });
        let facts = self.window_facts();
        self.webhook(|seq| Webhook::MessageExchanged {
            seq,
            conversation: Some(conversation),
            message_id: id.clone(),
            direction: Direction::Inbound,
            at,
            expires_at: Some(window.expires_at()),
            window: facts,
        });
    }

    /// Closes the open window (no-op without one): no more free-form, its billing sessions
    /// end, and its teardown completes as soon as nothing of it is in flight.
    pub(super) fn begin_close(&mut self, reason: CloseReason) {
        let window = self.window_facts();
        if self.s.window.take().is_none() {
            return;
        }
        let conversation = self.s.conversation;
        let totals = std::mem::take(&mut self.s.totals);
        self.s.closing.push(Closing { conversation, reason, at: self.now, totals, window });
        for b in self.s.sessions.iter_mut().filter(|b| b.conversation == conversation) {
            b.ended = true;
        }
        self.settle_sessions();
        self.try_finalize();
    }

    /// Completes every teardown whose sends and billing have all resolved:
    /// `conversation.ended` with the billing outcome, then `Close`.
    pub(super) fn try_finalize(&mut self) {
        let settled = |s: &crate::window::State, c: u32| {
            !s.pending.iter().any(|p| p.conversation == Some(c))
                && !s.sessions.iter().any(|b| b.conversation == c)
        };
        while let Some(i) = self.s.closing.iter().position(|c| settled(&self.s, c.conversation)) {
            let closing = self.s.closing.remove(i);
            self.reconcile_timers();
            let (totals, at) = (closing.totals, closing.at.max(self.now));
            self.webhook(|seq| Webhook::ConversationEnded {
                seq,
                conversation: closing.conversation,
                reason: closing.reason,
                at,
                inbound_messages: totals.inbound,
                outbound_messages: totals.outbound,
                billing: totals.billing,
                window: closing.window,
            });
            self.emit(Effect::Close { reason: closing.reason, conversation: closing.conversation });
            self.s.last_close = Some(closing.reason);
        }
    }

    /// The open window's times, for the webhooks about it.
    pub(super) fn window_facts(&self) -> Option<WindowFacts> {
        let window = self.s.window?;
        Some(WindowFacts {
            opened_at: window.opened_at(),
            expires_at: window.expires_at(),
            billing_session_ends_at: self.s.current_session().map(|b| b.ends_at),
        })
    }

    /// The counters a resolution in `conversation` adds to: a closed conversation still
    /// settling, or the current one.
    pub(super) fn totals_for(&mut self, conversation: Option<u32>) -> &mut Totals {
        match conversation.and_then(|c| self.s.closing.iter().position(|x| x.conversation == c)) {
            Some(i) => &mut self.s.closing[i].totals,
            None => &mut self.s.totals,
        }
    }

    fn start_session(&mut self, at: Timestamp) -> u32 {
        let ordinal = self.s.next_session;
        self.s.next_session += 1;
        let conversation = self.s.conversation;
        self.s.sessions.push(BillingSession {
            ordinal,
            conversation,
            started_at: at,
            ends_at: at.plus_secs(self.s.config.policy.billing_session_secs),
            ended: false,
            hold: SessionHold::None,
            accepted: false,
        });
        ordinal
    }

    /// The billing session a `CONVERSATION` send at `now` belongs to, started if none runs.
    pub(super) fn ensure_session(&mut self) -> u32 {
        let now = self.now;
        if let Some(b) = self.s.sessions.iter_mut().find(|b| !b.ended) {
            if now < b.ends_at {
                return b.ordinal;
            }
            // Its timer has not been processed yet; it is over all the same.
            b.ended = true;
        }
        self.start_session(now)
    }

    pub(super) fn session_mut(&mut self, ordinal: u32) -> Option<&mut BillingSession> {
        self.s.sessions.iter_mut().find(|b| b.ordinal == ordinal)
    }

    /// Resolves every ended billing session whose outcome is known: the hold is charged as
    /// soon as an in-session message was accepted, and released once nothing of the session is
    /// in flight and none was.
    pub(super) fn settle_sessions(&mut self) {
        let busy: BTreeSet<u32> = self.s.pending.iter().filter_map(|p| p.session).collect();
        let (ready, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.s.sessions).into_iter().partition(|b| {
                b.ended
                    && !matches!(b.hold, SessionHold::Pending { .. })
                    && (b.accepted || !busy.contains(&b.ordinal))
            });
        self.s.sessions = keep;
        for b in ready {
            let billing = &mut self.totals_for(Some(b.conversation)).billing;
            match b.hold {
                SessionHold::Placed { id, amount } => {
                    billing.sessions += 1;
                    if b.accepted {
                        billing.charged = billing.charged.saturating_add(amount);
                        self.emit(Effect::ChargeHold { hold_id: id, amount });
                    } else {
                        billing.released = billing.released.saturating_add(amount);
                        self.emit(Effect::ReleaseHold { hold_id: id, amount });
                    }
                }
                SessionHold::Free => billing.sessions += 1,
                SessionHold::None | SessionHold::Pending { .. } => {}
            }
        }
    }

    /// A timer fired (and is the one the state runs).
    pub(super) fn on_timer(&mut self, kind: TimerKind) {
        self.s.timers.clear(kind);
        let now = self.now;
        match kind {
            TimerKind::Expiry => {
                if self.s.window.is_some_and(|w| !w.is_open_at(now)) {
                    self.begin_close(CloseReason::Expired);
                }
            }
            TimerKind::BillingSession => {
                if let Some(b) = self.s.sessions.iter_mut().find(|b| !b.ended)
                    && now >= b.ends_at
                {
                    b.ended = true;
                }
                self.settle_sessions();
            }
            TimerKind::Inactivity => self.ping(),
        }
    }

    fn desired_timers(&self) -> Timers {
        let window = self.s.window.as_ref();
        Timers {
            expiry: window.map(Window::closes_at),
            billing_session: window.and(self.s.current_session()).map(|b| b.ends_at),
            inactivity: self.ping_deadline(),
        }
    }

    fn ping_deadline(&self) -> Option<Timestamp> {
        let ping = self.s.config.inactivity_ping.as_ref()?;
        let window = self.s.window.as_ref()?;
        let last = self.s.last_user_inbound.as_ref()?;
        if self.s.consent.is_opted_out() || self.s.ping_sent_for.as_ref() == Some(&last.id) {
            return None;
        }
        let at = last.at.plus_secs(ping.after_secs);
        (at < window.closes_at()).then_some(at)
    }

    /// Makes the running timers the ones the state needs.
    pub(super) fn reconcile_timers(&mut self) {
        let desired = self.desired_timers();
        for timer in TimerKind::ALL {
            let (running, wanted) = (self.s.timers.get(timer), desired.get(timer));
            if running == wanted {
                continue;
            }
            if running.is_some() {
                self.emit(Effect::CancelTimer { timer });
            }
            if let Some(at) = wanted {
                self.emit(Effect::StartTimer { timer, at });
            }
        }
        self.s.timers = desired;
    }
}
