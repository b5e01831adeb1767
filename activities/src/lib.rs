//! `convo-activities`: implementations of the activity contracts declared in
//! `convo_workflows::contracts`.
//!
//! Activities are where convo touches the outside world, behind small ports (traits held as
//! `Arc<dyn ..>`) so tests can substitute in-memory fakes. Every error is classified explicitly
//! as retryable or permanent before it reaches Temporal (see [`session_window::EmitError`]).
//!
//! # Layout
//! - [`events`]: the `conversation.ended` event, its deterministic id, the [`EventSink`] port and
//!   the in-memory [`MemoryEventSink`]. Signed webhook delivery comes later behind the same port.
//! - [`session_window`]: [`SessionWindowActivities`], the implementation of
//!   `emit_conversation_ended`.

pub mod events;
pub mod session_window;

pub use events::{ConversationEndedEvent, EventSink, MemoryEventSink, SinkError};
pub use session_window::{EmitError, SessionWindowActivities};
