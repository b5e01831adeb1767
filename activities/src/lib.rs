//! `convo-activities`: implementations of the activity contracts declared in
//! `convo_workflows::contracts`.
//!
//! Activities are where convo touches the outside world. Every error is classified explicitly
//! as retryable or permanent before it reaches Temporal.

pub mod conversation;
pub mod gateway;
pub mod metrics;
pub mod providers;
pub mod reconcile;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod session;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhooks;

pub use conversation::ConversationActivitiesImpl;
pub use gateway::{GatewayError, Inbound, InboundAccepted, Sessions};
pub use session::SessionActivitiesImpl;
