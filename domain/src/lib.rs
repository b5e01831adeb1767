//! `convo-domain`: the pure rules of convo, with no I/O, no clocks and no Temporal.
//!
//! Everything here is a plain value or a total function. Time is always an **input**
//! ([`Timestamp`]), never read, so the same code runs inside a deterministic Temporal workflow,
//! in an activity, in the API and in property tests.
//!
//! # Layout
//! - [`time`]: [`Timestamp`], whole milliseconds since the Unix epoch.
//! - [`channel`]: [`Channel`] and its per-channel [`WindowPolicy`] (fixed or sliding, gated or
//!   not, billing session length).
//! - [`window`]: the customer-service window itself: [`window::expiry`], [`Window`] (open, record
//!   a message, is it open at `t`?) and [`CloseReason`].
#![warn(missing_docs)]

pub mod channel;
pub mod time;
pub mod window;

pub use channel::{Channel, WindowMode, WindowPolicy};
pub use time::Timestamp;
pub use window::{CloseReason, Direction, Window};
