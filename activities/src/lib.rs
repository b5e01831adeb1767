//! `convo-activities`: implementations of the activity contracts declared in
//! `convo_workflows::contracts`.
//!
//! Activities are where convo touches the outside world: the session and conversation
//! activities, the channel providers (and the sandbox that stands in for them), the webhook
//! dispatcher and the reconciler. Every error is classified explicitly as retryable or
//! permanent before it reaches Temporal. The store is `convo-store`, the client side of
//! Temporal `convo-client`; this crate is linked by the worker, never by the API.

pub mod conversation;
pub mod providers;
pub mod reconcile;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhooks;

pub use conversation::ConversationActivitiesImpl;
pub use session::SessionActivitiesImpl;
