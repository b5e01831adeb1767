//! `convo-domain`: the pure rules of convo, with no I/O, no clocks and no Temporal.
//!
//! Everything here is a plain value or a total function. Time is always an **input**
//! ([`Timestamp`]), never read, so the same code runs inside a deterministic Temporal workflow,
//! in an activity, in the API and in property tests. Every public type derives serde, because
//! workflows carry them as payloads.
//!
//! # Layout
//! - [`time`]: [`Timestamp`], whole milliseconds since the Unix epoch.
//! - [`ids`]: [`MessageId`] and [`HoldId`], the keys sends and holds are correlated and
//!   de-duplicated on.
//! - [`channel`]: the six [`Channel`]s and their default [`WindowPolicy`] (gate, window length,
//!   fixed or sliding, billing session, human-agent allowance); [`PolicyOverrides`].
//! - [`compliance`]: opt-out / opt-in / help keywords ([`compliance::classify`]), the contact's
//!   [`Consent`], [`ComplianceTexts`].
//! - [`billing`]: [`Money`] in minor units, [`RateCard`]s, the [`Ledger`] with its
//!   [`Balance`] `{free, reserved, total}` and holds, and the [`BillingBlock`] of a send.
//! - [`delivery`]: a message's [`DeliveryStatus`] and the ordering rule provider reports go
//!   through ([`delivery::transition`]).
//! - [`rich`]: RCS rich content ([`rich::Rich`]: text with suggestions, a rich card, a
//!   carousel) and RBM's limits ([`rich::Rich::validate`]).
//! - [`window`]: the session state machine, [`window::decide`]`(state, event, now) ->
//!   `[`window::Decision`], plus the window clock ([`Window`]) and [`CloseReason`].
//! - [`workspace`]: [`WorkspaceSettings`], which give a channel its [`window::Config`].
//!
//! Each module has its own `Error` (thiserror) with a stable `code()`: `no_active_session`,
//! `contact_opted_out`, `insufficient_balance`, `validation_failed`.
#![warn(missing_docs)]

pub mod billing;
pub mod channel;
pub mod compliance;
pub mod delivery;
pub mod error_code;
pub mod ids;
pub mod rich;
pub mod time;
pub mod traffic;
pub mod window;
pub mod workspace;

pub use billing::{
    Balance, BillingBlock, BillingOutcome, Ledger, MessageType, Money, RateCard, RateTable,
};
pub use channel::{Channel, DAY_SECS, Gate, HOUR_SECS, PolicyOverrides, WindowMode, WindowPolicy};
pub use compliance::{ComplianceTexts, Consent, Keyword};
pub use delivery::DeliveryStatus;
pub use error_code::ErrorCode;
pub use ids::{HoldId, MessageId};
pub use time::Timestamp;
pub use traffic::{TrafficType, UseCase};
pub use window::{CloseReason, Direction, Sender, Window};
pub use workspace::WorkspaceSettings;
