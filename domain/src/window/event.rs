//! What can happen to a session: [`Event`] and its parts.

use serde::{Deserialize, Serialize};

use super::TemplateParams;
use crate::{Balance, Consent, HoldId, MessageId, MessageType, Timestamp};

/// Who writes a business message. Only matters where a policy grants a human-agent allowance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    /// A bot, an automation or the API on its own.
    #[default]
    Automated,
    /// A person replying (Meta's `HUMAN_AGENT` tag; never for automation).
    HumanAgent,
}

/// The session's durable timers. At most one of each kind runs at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// The window's end (slid or not by the policy); firing closes it as `EXPIRED`.
    Expiry,
    /// The end of the current billing session; firing resolves its hold.
    BillingSession,
    /// The inactivity ping, N hours after the latest user message.
    Inactivity,
}

impl TimerKind {
    /// Every kind.
    pub const ALL: [TimerKind; 3] =
        [TimerKind::Expiry, TimerKind::BillingSession, TimerKind::Inactivity];
}

/// Something that happened to the session, fed to [`super::decide`] with the time it is
/// processed at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The contact sent a message (a reply, an unprompted inbound, or a compliance keyword).
    InboundMessage {
        /// The provider's id of the message.
        message_id: MessageId,
        /// Its text; keywords match the whole trimmed text.
        text: String,
        /// When the contact sent it, per the provider; the window is measured from it (never
        /// from a time later than `now`). `None` uses `now`.
        sent_at: Option<Timestamp>,
    },
    /// The business wants to send a free-form message.
    FreeformSendRequested {
        /// The caller's idempotency key for this send.
        message_id: MessageId,
        /// The text.
        text: String,
        /// Subject line (e-mail; required when no window is open).
        subject: Option<String>,
        /// Who writes it.
        sender: Sender,
    },
    /// The business wants to send RCS rich content (text with suggestions, a rich card, a
    /// carousel): free-form, gated like text, and only on RCS.
    RichSendRequested {
        /// The caller's idempotency key for this send.
        message_id: MessageId,
        /// What to send.
        rich: Box<crate::rich::Rich>,
        /// Who writes it.
        sender: Sender,
    },
    /// The business wants to send a template (allowed without a window, never with an opt-out).
    TemplateSendRequested {
        /// The caller's idempotency key for this send.
        message_id: MessageId,
        /// The approved template's name.
        template: String,
        /// `MESSAGE` or `NEWSLETTER`.
        message_type: MessageType,
        /// The template's values, resolved against the registry.
        #[serde(default, skip_serializing_if = "TemplateParams::is_empty")]
        params: Box<TemplateParams>,
    },
    /// The ledger placed a hold the session asked for.
    HoldPlaced {
        /// The hold.
        hold_id: HoldId,
        /// The balance after placing it.
        balance: Balance,
    },
    /// The ledger refused a hold: the free balance could not cover it.
    HoldRefused {
        /// The hold.
        hold_id: HoldId,
        /// The balance that could not cover it.
        balance: Balance,
    },
    /// The provider accepted a message the session sent.
    ProviderAccepted {
        /// The message.
        message_id: MessageId,
    },
    /// The provider rejected a message for good (after the activity's retries).
    ProviderRejected {
        /// The message.
        message_id: MessageId,
        /// The provider's reason, for the record.
        reason: String,
    },
    /// The contact's consent changed elsewhere (another channel, an e-mail unsubscribe link,
    /// the API). An opt-out tears the window down with `COMPLIANCE_STOP`, without a confirmation.
    ConsentChanged {
        /// The new consent.
        consent: Consent,
    },
    /// Close the window now (`EXPLICIT`). Idempotent.
    CloseRequested,
    /// The contact wrote on another of the workspace's channels: the session follows the
    /// channel of the contact's latest inbound, so free-form replies go where the contact is.
    /// The open window, its billing session and holds are unchanged (the window keeps the clock
    /// it opened with); sends, gating and prices from now on are the new channel's.
    ChannelChanged {
        /// The new channel's configuration (the workspace's settings for it).
        config: Box<super::Config>,
    },
    /// A timer the session started fired.
    TimerFired {
        /// Which one.
        timer: TimerKind,
    },
}
