//! What the session asks its host to do: [`Effect`], carried by a [`Decision`].

use serde::{Deserialize, Serialize};

use super::{Direction, Error, Sender, State, TemplateParams, TimerKind};
use crate::{
    BillingBlock, BillingOutcome, Channel, Consent, HoldId, MessageId, MessageType, Money,
    Timestamp, compliance::Keyword,
};

/// Why a window closed. Serialized as the stable upper-case names webhooks and the API expose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CloseReason {
    /// The window's end passed without a user message that extended it.
    Expired,
    /// Someone closed it on purpose (an operator or the API).
    Explicit,
    /// The contact opted out.
    ComplianceStop,
}

impl CloseReason {
    /// The wire name (`"EXPIRED"`, `"EXPLICIT"`, `"COMPLIANCE_STOP"`), identical to the serde form.
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseReason::Expired => "EXPIRED",
            CloseReason::Explicit => "EXPLICIT",
            CloseReason::ComplianceStop => "COMPLIANCE_STOP",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a business message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    /// Free-form text.
    Text {
        /// The text.
        body: String,
        /// Subject line, for e-mail.
        subject: Option<String>,
    },
    /// An approved template.
    Template {
        /// Its name.
        name: String,
        /// Its placeholders' values and rendered text; empty for a template without values.
        #[serde(default, skip_serializing_if = "TemplateParams::is_empty")]
        params: Box<TemplateParams>,
    },
    /// RCS rich content: text with suggestions, a standalone rich card or a carousel.
    Rich(Box<crate::rich::Rich>),
}

impl Content {
    /// A template by name, with no values.
    pub fn template(name: impl Into<String>) -> Content {
        Content::Template { name: name.into(), params: Box::default() }
    }
}

/// A business message to hand to the channel provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Idempotency key: a retried send carries the same id.
    pub id: MessageId,
    /// What it says.
    pub content: Content,
    /// How it is billed.
    pub message_type: MessageType,
    /// Who wrote it.
    pub sender: Sender,
    /// Sent in the human-agent allowance after the standard window: tag it `HUMAN_AGENT`.
    pub human_agent_tag: bool,
}

/// Where a window stands when a webhook about it is emitted: the times every
/// `conversation.*` event carries, all on the session's (workflow) clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowFacts {
    /// When the user message that opened it was sent.
    pub opened_at: Timestamp,
    /// Until when free-form is (or was) allowed.
    pub expires_at: Timestamp,
    /// When the current billing session ends, if one runs.
    pub billing_session_ends_at: Option<Timestamp>,
}

/// A lifecycle webhook. `seq` grows by one per event of the session, so consumers can discard
/// stale deliveries (ordering is guaranteed by no webhook transport).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Webhook {
    /// A window opened.
    #[serde(rename = "conversation.started")]
    ConversationStarted {
        /// Per-session sequence number.
        seq: u64,
        /// Ordinal of the window within the session.
        conversation: u32,
        /// The channel.
        channel: Channel,
        /// When the user message that opened it was sent.
        opened_at: Timestamp,
        /// Until when free-form is allowed.
        expires_at: Timestamp,
        /// When the first billing session ends.
        billing_session_ends_at: Option<Timestamp>,
        /// The user message that opened it (absent in events recorded before it was carried).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        opening_message: Option<MessageId>,
    },
    /// A message went either way inside the conversation.
    #[serde(rename = "conversation.message_exchanged")]
    MessageExchanged {
        /// Per-session sequence number.
        seq: u64,
        /// The window it belongs to (none for a template sent with no window open).
        conversation: Option<u32>,
        /// The message.
        message_id: MessageId,
        /// Which way.
        direction: Direction,
        /// When (sent by the user, or accepted by the provider).
        at: Timestamp,
        /// The window's free-form end after this message, if a window is open.
        expires_at: Option<Timestamp>,
        /// The open window after this message (absent in events recorded before it was
        /// carried, and for a message with no window open).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<WindowFacts>,
    },
    /// A window closed.
    #[serde(rename = "conversation.ended")]
    ConversationEnded {
        /// Per-session sequence number.
        seq: u64,
        /// Ordinal of the window within the session.
        conversation: u32,
        /// Why.
        reason: CloseReason,
        /// When the teardown completed.
        at: Timestamp,
        /// User messages in the conversation.
        inbound_messages: u32,
        /// Business messages the provider accepted.
        outbound_messages: u32,
        /// How billing resolved.
        billing: BillingOutcome,
        /// The window as it stood when it closed (absent in events recorded before it was
        /// carried).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<WindowFacts>,
    },
}

/// One instruction to the host (the workflow), in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Start the timer `timer` to fire at `at`; feed back [`super::Event::TimerFired`]. An
    /// `at` already past (an overdue inactivity ping) means fire at once.
    StartTimer {
        /// Which timer.
        timer: TimerKind,
        /// When it fires.
        at: Timestamp,
    },
    /// Cancel the running timer `timer` (explicitly: a dropped timer still fires).
    CancelTimer {
        /// Which timer.
        timer: TimerKind,
    },
    /// Reserve `amount` in the ledger; feed back `HoldPlaced` or `HoldRefused`.
    PlaceHold {
        /// The hold's id.
        hold_id: HoldId,
        /// How much.
        amount: Money,
        /// The send waiting on it.
        message_id: MessageId,
    },
    /// Charge an open hold.
    ChargeHold {
        /// The hold.
        hold_id: HoldId,
        /// Its amount.
        amount: Money,
    },
    /// Release an open hold.
    ReleaseHold {
        /// The hold.
        hold_id: HoldId,
        /// Its amount.
        amount: Money,
    },
    /// Hand a message to the provider; feed back `ProviderAccepted` or `ProviderRejected`.
    Send {
        /// The message.
        message: OutboundMessage,
        /// The billing block for the send's answer.
        billing: BillingBlock,
        /// Until when free-form is allowed, if a window is open.
        conversation_expires_at: Option<Timestamp>,
    },
    /// Send a compliance reply (opt-out/opt-in confirmation or help text). Exempt from the
    /// opt-out block; not billed.
    SendConfirmation {
        /// Its id, derived from the keyword message.
        message_id: MessageId,
        /// Which keyword it answers.
        kind: Keyword,
        /// The workspace's text.
        text: String,
    },
    /// Persist the contact's consent for the workspace (every channel).
    RecordConsent {
        /// The new consent.
        consent: Consent,
    },
    /// Deliver a webhook.
    EmitWebhook(Webhook),
    /// Answer a send request with a refusal; nothing was sent and nothing is held for it.
    Reject {
        /// The refused send.
        message_id: MessageId,
        /// Why.
        error: Error,
    },
    /// A window closed and everything it held is resolved (`conversation.ended` was emitted
    /// just before). The host may complete once the next state [`State::is_idle`]: a new window
    /// can open in the same decision, or before an earlier teardown settles.
    Close {
        /// Why.
        reason: CloseReason,
        /// The window's ordinal.
        conversation: u32,
    },
}

/// The outcome of one event: the next state and the effects to carry out, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The state after the event.
    pub next: State,
    /// What to do, in order.
    pub effects: Vec<Effect>,
}

impl Decision {
    /// The refusal of send `message_id`, if this decision refused it.
    pub fn rejection(&self, message_id: &MessageId) -> Option<&Error> {
        self.effects.iter().find_map(|e| match e {
            Effect::Reject { message_id: id, error } if id == message_id => Some(error),
            _ => None,
        })
    }

    /// The messages this decision hands to the provider.
    pub fn sends(&self) -> impl Iterator<Item = (&OutboundMessage, &BillingBlock)> + '_ {
        self.effects.iter().filter_map(|e| match e {
            Effect::Send { message, billing, .. } => Some((message, billing)),
            _ => None,
        })
    }

    /// The reason of the `Close` effect, if the window closed.
    pub fn closed(&self) -> Option<CloseReason> {
        self.effects.iter().find_map(|e| match e {
            Effect::Close { reason, .. } => Some(*reason),
            _ => None,
        })
    }
}
