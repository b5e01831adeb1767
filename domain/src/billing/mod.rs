//! Billing: money, per-channel rates, the workspace balance with its holds, and the billing
//! blocks the session reports.
//!
//! The model is Arowana's (channels.md §1.2) and WhatsApp's legacy conversation pricing: the
//! first in-window free-form send of a billing session places a **hold** of one conversation
//! unit (`in_session: true`, `hold_amount` and `message_price` the unit: a session exists for
//! the pair once a window is open); later sends in the same session are free (`in_session:
//! true`, `hold_amount: 0`, `message_price: 0`). When
//! the session resolves, the hold is charged if any in-session message was accepted by the
//! provider and released otherwise. Business-initiated sends outside a window (templates,
//! `MESSAGE`/`NEWSLETTER` types) are priced per message: their hold is charged when the provider
//! accepts the message and released when it rejects it.
//!
//! The [`Ledger`] is the pure model of a workspace's balance: `free + reserved == total`, and
//! `reserved` is always the sum of the open holds. A hold that `free` cannot cover is refused
//! with `insufficient_balance`, so the balance never goes negative.

pub mod currency;
mod error;
mod ledger;
mod money;
pub mod tiers;

use serde::{Deserialize, Serialize};

pub use error::Error;
pub use ledger::{Balance, Ledger, Resolution};
pub use money::{MessageType, Money, RateCard, RateTable};
pub use tiers::VolumeTier;

/// The billing part of a send's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingBlock {
    /// A session (an open window) exists for the pair: always for a `CONVERSATION` send, the
    /// first of its billing session included, as the RCS conversation API reports it.
    pub in_session: bool,
    /// The conversation-unit hold this send placed (0 unless it opened the session's billing).
    pub hold_amount: Money,
    /// What this send costs: the conversation unit for the send that opened the billing
    /// session (0 for the rest of it), or the message type's per-message price.
    pub message_price: Money,
    /// The workspace balance as last reported by the ledger, if known.
    pub balance: Option<Balance>,
}

/// What billing did over one conversation, reported in `conversation.ended`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingOutcome {
    /// Billing sessions that placed (or needed no) hold: sessions with at least one send.
    pub sessions: u32,
    /// Total charged (conversation units and per-message prices).
    pub charged: Money,
    /// Total released back to `free`.
    pub released: Money,
}
