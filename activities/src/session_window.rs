//! Activities of the session-window workflow.

use std::sync::Arc;

use convo_workflows::contracts::{ConversationEnded, error_types};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::events::{ConversationEndedEvent, EventSink, SinkError, event_id};

/// Errors of `emit_conversation_ended`, classified before they reach Temporal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The input or the activity context is malformed. Permanent.
    #[error("invalid conversation-ended event: {0}")]
    Invalid(&'static str),
    /// The sink failed; retryable only if the sink says so.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

impl EmitError {
    /// Whether Temporal should retry the activity.
    pub fn is_retryable(&self) -> bool {
        matches!(self, EmitError::Sink(SinkError::Unavailable(_)))
    }

    /// The stable `ApplicationFailure` type name (what retry policies and workflows match on).
    pub fn type_name(&self) -> &'static str {
        match self {
            EmitError::Invalid(_) => error_types::INVALID_EVENT,
            EmitError::Sink(SinkError::Rejected(_)) => error_types::EVENT_REJECTED,
            EmitError::Sink(_) => "EventSinkUnavailable",
        }
    }

    /// Converts to the SDK error with an explicit retryability decision.
    ///
    /// A method rather than `?`: the SDK's blanket `From<E: Into<anyhow::Error>>` would make
    /// every error retryable (STYLE.md §4 item 8), and a direct `From` impl would clash with it.
    pub fn into_activity_error(self) -> ActivityError {
        let type_name = self.type_name().to_owned();
        let non_retryable = !self.is_retryable();
        ActivityError::application(
            ApplicationFailure::builder(self)
                .type_name(type_name)
                .non_retryable(non_retryable)
                .build(),
        )
    }
}

/// Implementation of `SessionWindowActivities` (see `convo_workflows::contracts`).
pub struct SessionWindowActivities {
    sink: Arc<dyn EventSink>,
}

impl SessionWindowActivities {
    /// Activities publishing to `sink`.
    pub fn new(sink: Arc<dyn EventSink>) -> Self {
        Self { sink }
    }

    /// The activity's logic without the Temporal context, so it can be tested directly.
    ///
    /// `workflow_id` and `run_id` come from the activity info; a standalone activity has none
    /// and is rejected, since the event id is derived from them.
    pub async fn emit(
        &self,
        workflow_id: Option<&str>,
        run_id: Option<&str>,
        input: ConversationEnded,
    ) -> Result<String, EmitError> {
        let workflow_id =
            workflow_id.filter(|s| !s.is_empty()).ok_or(EmitError::Invalid("no workflow id"))?;
        let run_id =
            run_id.filter(|s| !s.is_empty()).ok_or(EmitError::Invalid("no workflow run id"))?;
        if input.workspace_id.is_empty() {
            return Err(EmitError::Invalid("empty workspace_id"));
        }
        if input.contact_id.is_empty() {
            return Err(EmitError::Invalid("empty contact_id"));
        }
        let event = ConversationEndedEvent {
            event_id: event_id(workflow_id, run_id, input.reason),
            workflow_id: workflow_id.to_owned(),
            run_id: run_id.to_owned(),
            workspace_id: input.workspace_id,
            contact_id: input.contact_id,
            reason: input.reason,
            inbound_messages: input.inbound_messages,
        };
        self.sink.publish(&event).await?;
        tracing::info!(
            event_id = %event.event_id,
            workflow_id = %event.workflow_id,
            reason = %event.reason,
            "conversation ended"
        );
        Ok(event.event_id)
    }
}

#[activities]
impl SessionWindowActivities {
    /// Records the `conversation.ended` event and returns its id.
    #[activity(definition = convo_workflows::contracts::EmitConversationEnded)]
    pub async fn emit_conversation_ended(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ConversationEnded,
    ) -> Result<String, ActivityError> {
        let info = ctx.info();
        self.emit(info.workflow_id.as_deref(), info.workflow_run_id.as_deref(), input)
            .await
            .map_err(EmitError::into_activity_error)
    }
}

#[cfg(test)]
mod tests {
    use convo_domain::CloseReason;
    use futures::{executor::block_on, future::BoxFuture};

    use super::*;
    use crate::events::MemoryEventSink;

    fn input() -> ConversationEnded {
        ConversationEnded {
            workspace_id: "ws".to_owned(),
            contact_id: "c".to_owned(),
            reason: CloseReason::Expired,
            inbound_messages: 2,
        }
    }

    struct FailingSink(SinkError);

    impl EventSink for FailingSink {
        fn publish<'a>(
            &'a self,
            _: &'a ConversationEndedEvent,
        ) -> BoxFuture<'a, Result<(), SinkError>> {
            let err = self.0.clone();
            Box::pin(async move { Err(err) })
        }
    }

    #[test]
    fn emits_once_per_run_with_a_deterministic_id() {
        let sink = MemoryEventSink::new();
        let acts = SessionWindowActivities::new(Arc::new(sink.clone()));
        let first = block_on(acts.emit(Some("session/ws/c"), Some("run-1"), input())).unwrap();
        let retry = block_on(acts.emit(Some("session/ws/c"), Some("run-1"), input())).unwrap();
        assert_eq!(first, retry);
        let events = sink.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_id, first);
        assert_eq!((events[0].reason, events[0].inbound_messages), (CloseReason::Expired, 2));
    }

    #[test]
    fn invalid_input_is_permanent() {
        let acts = SessionWindowActivities::new(Arc::new(MemoryEventSink::new()));
        let err = block_on(acts.emit(None, Some("run"), input())).unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(err.type_name(), error_types::INVALID_EVENT);
        let mut bad = input();
        bad.contact_id.clear();
        let err = block_on(acts.emit(Some("wf"), Some("run"), bad)).unwrap_err();
        assert!(matches!(err, EmitError::Invalid("empty contact_id")));
    }

    #[test]
    fn sink_errors_keep_their_retryability() {
        let cases = [
            (SinkError::Unavailable("503".into()), true, "EventSinkUnavailable"),
            (SinkError::Rejected("400".into()), false, error_types::EVENT_REJECTED),
        ];
        for (sink_err, retryable, type_name) in cases {
            let acts = SessionWindowActivities::new(Arc::new(FailingSink(sink_err)));
            let err = block_on(acts.emit(Some("wf"), Some("run"), input())).unwrap_err();
            assert_eq!((err.is_retryable(), err.type_name()), (retryable, type_name));
            let ActivityError::Application(failure) = err.into_activity_error() else {
                panic!("expected an application failure");
            };
            assert_eq!(failure.is_non_retryable(), !retryable);
            assert_eq!(failure.type_name(), Some(type_name));
        }
    }
}
