//! `convo-workflows`: convo's deterministic Temporal workflows and the contracts around them.
//!
//! Workflow code here only *interprets* decisions made by `convo-domain` (when a window ends)
//! as Temporal commands (timers, activities). It does no I/O and reads no clock: `clippy.toml`
//! bans the obvious escape hatches, and the SDK's runtime detector catches foreign futures.
//!
//! This crate depends on `temporalio-workflow`/`-macros`/`-common` only, never on
//! `temporalio-sdk` or `convo-activities`, so the API can use the typed handles without linking
//! the worker runtime or any activity adapter.
//!
//! # Layout
//! - [`contracts`]: task queue, workflow-id scheme, signal/query/activity names and the activity
//!   contracts (`#[activity_definitions]`) that `convo-activities` implements.
//! - [`session_window`]: [`SessionWindowWorkflow`], one per workspace + contact: a durable expiry
//!   timer, fixed or sliding, then a `conversation ended` event.

pub mod contracts;
pub mod session_window;

pub use session_window::{
    InboundMessage, SessionWindowInput, SessionWindowWorkflow, WindowState, WindowSummary,
};
