//! Read access to [`State`] and the [`View`] a query returns.

use serde::{Deserialize, Serialize};

use super::{BillingSession, Config, SessionHold, State, Timers, Totals};
use crate::{Channel, CloseReason, Consent, Timestamp, Window, window::TimerKind};

impl State {
    /// A fresh, idle session: no window yet, the contact's consent as the store has it.
    pub fn new(config: Config, consent: Consent) -> Self {
        Self {
            config,
            consent,
            window: None,
            conversation: 0,
            closing: Vec::new(),
            sessions: Vec::new(),
            next_session: 0,
            pending: Vec::new(),
            timers: Timers::default(),
            last_user_inbound: None,
            ping_sent_for: None,
            totals: Totals::default(),
            last_balance: None,
            webhook_seq: 0,
            last_close: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The contact's consent.
    pub fn consent(&self) -> Consent {
        self.consent
    }

    /// The open window, if any (none while a teardown resolves).
    pub fn window(&self) -> Option<&Window> {
        self.window.as_ref()
    }

    /// The deadline of the running timer `kind`.
    pub fn armed_timer(&self, kind: TimerKind) -> Option<Timestamp> {
        self.timers.get(kind)
    }

    /// Why the latest window closed.
    pub fn last_close(&self) -> Option<CloseReason> {
        self.last_close
    }

    /// Business sends in flight (waiting for a hold or the provider).
    pub fn pending_sends(&self) -> usize {
        self.pending.len()
    }

    /// Nothing open and nothing in flight: a workflow can complete.
    pub fn is_idle(&self) -> bool {
        self.window.is_none()
            && self.closing.is_empty()
            && self.pending.is_empty()
            && self.sessions.is_empty()
    }

    pub(crate) fn current_session(&self) -> Option<&BillingSession> {
        self.sessions.iter().find(|b| !b.ended)
    }

    /// Both clocks and the rest of the state, as a query answers it.
    pub fn view(&self) -> View {
        let w = self.window.as_ref();
        let current = self.current_session().filter(|_| w.is_some());
        View {
            channel: self.config.channel,
            consent: self.consent,
            open: w.is_some(),
            opened_at: w.map(Window::opened_at),
            last_inbound_at: w.map(Window::last_inbound_at),
            expires_at: w.map(Window::expires_at),
            human_agent_expires_at: w.and_then(Window::human_agent_expires_at),
            billing_session_ends_at: current.map(|b| b.ends_at),
            in_session: current
                .is_some_and(|b| matches!(b.hold, SessionHold::Free | SessionHold::Placed { .. })),
            conversation: self.conversation,
            closing: self.closing.first().map(|c| c.reason),
            last_close: self.last_close,
            pending_sends: u32::try_from(self.pending.len()).unwrap_or(u32::MAX),
            inbound_messages: self.totals.inbound,
            outbound_messages: self.totals.outbound,
        }
    }
}

/// A snapshot of a session for queries and the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// The channel.
    pub channel: Channel,
    /// The contact's consent.
    pub consent: Consent,
    /// Whether a window is open.
    pub open: bool,
    /// When it opened.
    pub opened_at: Option<Timestamp>,
    /// The latest user message in it.
    pub last_inbound_at: Option<Timestamp>,
    /// Until when free-form is allowed.
    pub expires_at: Option<Timestamp>,
    /// Until when a human agent may still send free-form.
    pub human_agent_expires_at: Option<Timestamp>,
    /// When the current billing session ends.
    pub billing_session_ends_at: Option<Timestamp>,
    /// The current billing session already holds its unit: the next send is `in_session`.
    pub in_session: bool,
    /// Ordinal of the current (or latest) window, as webhooks carry it.
    pub conversation: u32,
    /// A teardown in progress, waiting for sends in flight.
    pub closing: Option<CloseReason>,
    /// Why the latest window closed.
    pub last_close: Option<CloseReason>,
    /// Business sends in flight.
    pub pending_sends: u32,
    /// User messages in the current conversation.
    pub inbound_messages: u32,
    /// Business messages accepted in the current conversation.
    pub outbound_messages: u32,
}
