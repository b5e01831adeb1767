//! The session's state: its configuration, the contact's consent, the open window, billing
//! sessions and sends in flight.

use serde::{Deserialize, Serialize};

use super::{CloseReason, Content, Error, OutboundMessage, TimerKind, Window};
use crate::{
    BillingBlock, BillingOutcome, Channel, ComplianceTexts, Consent, HoldId, MessageId, Money,
    RateCard, Timestamp, WindowPolicy,
};

/// Send something after N seconds without a user message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InactivityPing {
    /// Seconds of silence after the latest user message.
    pub after_secs: u64,
    /// A configured text (a free-form send, gated like any other) or template.
    pub content: Content,
}

/// Everything about a session that does not change while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The channel.
    pub channel: Channel,
    /// The window policy in force (the channel's default with the workspace's overrides).
    pub policy: WindowPolicy,
    /// The channel's prices.
    pub rates: RateCard,
    /// Replies to compliance keywords.
    pub compliance: ComplianceTexts,
    /// The optional inactivity ping.
    pub inactivity_ping: Option<InactivityPing>,
}

impl Config {
    /// The channel's defaults: its default policy, free rates, default texts, no ping.
    pub fn new(channel: Channel) -> Self {
        Self {
            channel,
            policy: channel.default_policy(),
            rates: RateCard::default(),
            compliance: ComplianceTexts::default(),
            inactivity_ping: None,
        }
    }

    /// Checks the policy and the ping.
    pub fn validate(&self) -> Result<(), Error> {
        self.policy.validate()?;
        if let Some(ping) = &self.inactivity_ping {
            if ping.after_secs == 0 {
                return Err(Error::invalid("inactivity ping after_secs must be positive"));
            }
            let empty = match &ping.content {
                Content::Text { body, .. } => body.trim().is_empty(),
                Content::Template { name, .. } => name.trim().is_empty(),
                Content::Rich(rich) => rich.validate().is_err(),
            };
            if empty {
                return Err(Error::invalid("inactivity ping content must not be empty"));
            }
        }
        Ok(())
    }
}

/// The user message a window or a ping is anchored on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InboundRef {
    pub(crate) id: MessageId,
    pub(crate) at: Timestamp,
}

/// A closed conversation whose teardown waits for its sends in flight and its billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Closing {
    pub(crate) conversation: u32,
    pub(crate) reason: CloseReason,
    pub(crate) at: Timestamp,
    pub(crate) totals: Totals,
    /// The window when it closed (none in states recorded before it was kept).
    #[serde(default)]
    pub(crate) window: Option<crate::window::WindowFacts>,
}

/// The conversation-unit hold of one billing session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SessionHold {
    /// No free-form send yet.
    None,
    /// A send happened and the unit is zero: nothing to hold, later sends are in session.
    Free,
    /// Asked the ledger; sends wait for the answer.
    Pending { id: HoldId, amount: Money },
    /// Held; charged or released when the session resolves.
    Placed { id: HoldId, amount: Money },
}

/// One billing session: fixed from its start, never extended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BillingSession {
    pub(crate) ordinal: u32,
    pub(crate) conversation: u32,
    pub(crate) started_at: Timestamp,
    pub(crate) ends_at: Timestamp,
    /// Over (its end passed or the window closed); resolves once nothing is in flight.
    pub(crate) ended: bool,
    pub(crate) hold: SessionHold,
    /// Some in-session message was accepted by the provider.
    pub(crate) accepted: bool,
}

/// A business send in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) message: OutboundMessage,
    pub(crate) billing: BillingBlock,
    /// The hold it waits on (its session's, or its own per-message hold).
    pub(crate) hold: Option<HoldId>,
    /// The billing session it belongs to (`CONVERSATION` sends).
    pub(crate) session: Option<u32>,
    /// The conversation (window) it was requested in, if one was open.
    pub(crate) conversation: Option<u32>,
    /// Still waiting for the hold; not handed to the provider yet.
    pub(crate) awaiting_hold: bool,
}

/// Deadlines of the running timers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Timers {
    pub(crate) expiry: Option<Timestamp>,
    pub(crate) billing_session: Option<Timestamp>,
    pub(crate) inactivity: Option<Timestamp>,
}

impl Timers {
    pub(crate) fn get(&self, kind: TimerKind) -> Option<Timestamp> {
        match kind {
            TimerKind::Expiry => self.expiry,
            TimerKind::BillingSession => self.billing_session,
            TimerKind::Inactivity => self.inactivity,
        }
    }

    pub(crate) fn clear(&mut self, kind: TimerKind) {
        match kind {
            TimerKind::Expiry => self.expiry = None,
            TimerKind::BillingSession => self.billing_session = None,
            TimerKind::Inactivity => self.inactivity = None,
        }
    }
}

/// Counters of the current conversation, reported in `conversation.ended`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Totals {
    pub(crate) inbound: u32,
    pub(crate) outbound: u32,
    pub(crate) billing: BillingOutcome,
}

/// The whole state of one contact's session in one workspace. Only [`super::decide`] changes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub(crate) config: Config,
    pub(crate) consent: Consent,
    pub(crate) window: Option<Window>,
    /// Ordinal of the current (or latest) window; webhooks carry it.
    pub(crate) conversation: u32,
    /// Closed conversations still settling. A new window may open meanwhile.
    pub(crate) closing: Vec<Closing>,
    pub(crate) sessions: Vec<BillingSession>,
    pub(crate) next_session: u32,
    pub(crate) pending: Vec<Pending>,
    pub(crate) timers: Timers,
    pub(crate) last_user_inbound: Option<InboundRef>,
    pub(crate) ping_sent_for: Option<MessageId>,
    pub(crate) totals: Totals,
    pub(crate) last_balance: Option<crate::Balance>,
    pub(crate) webhook_seq: u64,
    pub(crate) last_close: Option<CloseReason>,
}

#[path = "state_view.rs"]
mod view;

pub use view::View;
