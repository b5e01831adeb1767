//! Names and shapes shared by the workflows, the activities, the worker and the API.
//!
//! # Why the activity contracts live here
//! Activities are declared with `#[activity_definitions]` in this crate and implemented in
//! `convo-activities` with `#[activity(definition = convo_workflows::contracts::EmitConversationEnded)]`.
//! That keeps the dependency arrow pointing from adapters to workflows (workflows never link
//! HTTP clients or secrets), and the macro checks the implementation's name, input and output
//! types against the definition **at compile time**.
//!
//! The macro puts its marker structs in a private module named after the type
//! (`SessionWindowActivities` → `session_window_activities`), so each marker is re-exported
//! below (`pub use session_window_activities::EmitConversationEnded`); without that, no other
//! crate could name it in `definition = ..`. Workflows call the activity through the associated
//! constant, `SessionWindowActivities::emit_conversation_ended`.

use convo_domain::CloseReason;
use serde::{Deserialize, Serialize};
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

/// The task queue convo's worker polls.
pub const TASK_QUEUE: &str = "convo";

/// Workflow type of [`crate::SessionWindowWorkflow`].
pub const SESSION_WINDOW_WORKFLOW: &str = "SessionWindowWorkflow";

/// Signal: the contact sent a message ([`crate::InboundMessage`]).
pub const SIGNAL_INBOUND: &str = "inbound";
/// Signal: close the window now (no payload).
pub const SIGNAL_CLOSE: &str = "close";
/// Query: the window's current [`crate::WindowState`].
pub const QUERY_STATE: &str = "state";

/// Activity type: record that a conversation ended.
pub const ACTIVITY_EMIT_CONVERSATION_ENDED: &str = "emit_conversation_ended";

/// `ApplicationFailure` type names activities use for permanent failures. Workflows and retry
/// policies match on these stable strings, never on messages.
pub mod error_types {
    /// The activity input is malformed; retrying cannot help.
    pub const INVALID_EVENT: &str = "InvalidEvent";
    /// The event sink refused the event permanently.
    pub const EVENT_REJECTED: &str = "EventRejected";
}

/// The one `SessionWindowWorkflow` per workspace and contact: `session/{workspace}/{contact}`.
///
/// Using it as the workflow id makes Temporal enforce "at most one open window per contact".
pub fn session_workflow_id(workspace_id: &str, contact_id: &str) -> String {
    format!("session/{workspace_id}/{contact_id}")
}

/// Input of [`SessionWindowActivities::emit_conversation_ended`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationEnded {
    /// Workspace that owns the conversation.
    pub workspace_id: String,
    /// The contact on the other side.
    pub contact_id: String,
    /// Why the window closed.
    pub reason: CloseReason,
    /// Inbound messages received while the window was open (signals, not the opening one).
    pub inbound_messages: u32,
}

/// Activity contracts of the session-window workflow.
pub struct SessionWindowActivities;

#[activity_definitions]
impl SessionWindowActivities {
    /// Records a `conversation.ended` event and returns its id. The id is derived from the
    /// workflow run and the reason, so a retried attempt returns the same id.
    #[activity(name = ACTIVITY_EMIT_CONVERSATION_ENDED)]
    pub async fn emit_conversation_ended(
        input: ConversationEnded,
    ) -> Result<String, ActivityError> {
        unimplemented!()
    }
}

pub use session_window_activities::EmitConversationEnded;

#[cfg(test)]
mod tests {
    use temporalio_common::ActivityDefinition;

    use super::*;

    #[test]
    fn workflow_id_scheme() {
        assert_eq!(session_workflow_id("ws_1", "c_42"), "session/ws_1/c_42");
    }

    #[test]
    fn activity_name_is_the_contract_constant() {
        assert_eq!(
            ActivityDefinition::name(&SessionWindowActivities::emit_conversation_ended),
            ACTIVITY_EMIT_CONVERSATION_ENDED
        );
        // The re-exported marker is the same type the constant has.
        let _: EmitConversationEnded = SessionWindowActivities::emit_conversation_ended;
    }
}
