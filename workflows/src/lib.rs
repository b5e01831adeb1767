//! `convo-workflows`: convo's deterministic Temporal workflows and the contracts around them.
//!
//! Workflow code here only *interprets* decisions made by `convo-domain` as Temporal commands
//! (timers, activities, signals). It does no I/O and reads no clock: `clippy.toml` bans the
//! obvious escape hatches, and the SDK's runtime detector catches foreign futures.
//!
//! This crate depends on `temporalio-workflow`/`-macros`/`-common` only, never on
//! `temporalio-sdk` or `convo-activities`, so the API can use the typed handles without linking
//! the worker runtime or any activity adapter.
//!
//! # Layout
//! - [`contracts`]: task queue, workflow-id schemes, signal/update/query names, payloads and
//!   the activity contracts (`#[activity_definitions]`) that `convo-activities` implements.
//! - [`session_window`]: [`SessionWindowWorkflow`], one per workspace + contact, driven by
//!   `convo_domain::window::decide`.
//! - [`outbound`]: [`OutboundConversationWorkflow`], one per composed conversation.
//! - [`ops`]: what operators see in the Temporal UI and CLI: search attributes, memo,
//!   summaries, current details.

pub mod contracts;
pub mod ops;
pub mod outbound;
mod publish;
pub mod session_window;

pub use outbound::OutboundConversationWorkflow;
pub use session_window::SessionWindowWorkflow;
