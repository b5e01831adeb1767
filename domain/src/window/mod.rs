//! The session window: one contact's conversation in one workspace, as a pure state machine.
//!
//! [`decide`]`(state, event, now) -> `[`Decision`]` { next, effects }` is the whole behaviour.
//! Events are user messages (compliance keywords included), send requests, answers from the
//! ledger and the provider, consent changes, close requests and timers. Effects are what a host
//! (the `SessionWindowWorkflow`) carries out: timers, holds, sends, compliance replies, consent
//! records, webhooks, refusals and the close.
//!
//! - A user message opens a window (`conversation.started`) or, on a sliding policy, moves its
//!   end. Business messages never do.
//! - A free-form send with no window open on a gated channel is refused `no_active_session`,
//!   never downgraded; any business send to an opted-out contact is refused `contact_opted_out`.
//! - The first in-window free-form send of a billing session asks the ledger for a hold of one
//!   conversation unit and goes out once it is placed (`insufficient_balance` and nothing sent
//!   if refused), reported `in_session: true` with the unit as its hold and price; later sends
//!   in the session are `in_session: true, hold_amount: 0`. When the
//!   session ends (its timer, or the window's teardown) the hold is charged if the provider
//!   accepted any of its messages and released otherwise.
//! - STOP records the opt-out, sends the one confirmation and tears the window down
//!   (`COMPLIANCE_STOP`); START re-opts in; HELP gets the workspace's help text.
//! - Teardown (`EXPIRED`, `EXPLICIT`, `COMPLIANCE_STOP`) waits for sends in flight, resolves
//!   billing, then emits `conversation.ended` and `Close`.
//!
//! [`Window`] is the clock on its own: both the free-form end and the human-agent allowance.

mod clock;
mod decide;
mod effect;
mod error;
mod event;
mod state;
mod template;

#[cfg(test)]
mod tests;

pub use clock::{Direction, Recorded, Window, expiry, human_agent_expiry};
pub use decide::{decide, validate};
pub use effect::{CloseReason, Content, Decision, Effect, OutboundMessage, Webhook, WindowFacts};
pub use error::Error;
pub use event::{Event, Sender, TimerKind};
pub use state::{Config, InactivityPing, State, View};
pub use template::{
    TemplateButtonParam, TemplateCardParams, TemplateParam, TemplateParams, TemplateText,
};
