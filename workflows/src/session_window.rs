//! `SessionWindowWorkflow`: one customer-service window per workspace + contact.
//!
//! The window opens when the workflow starts (the contact's first inbound message), and a durable
//! timer runs until the end [`convo_domain::window`] computes. On a sliding policy each `inbound`
//! signal moves the end: the running timer is **cancelled explicitly** with
//! [`CancellableFuture::cancel`] (dropping the future does not send `CancelTimer`, so the old
//! timer would still fire later) and a new one starts, measured from the inbound's workflow time.
//! On a fixed policy inbounds are counted but the timer keeps running.
//!
//! When the timer fires (`EXPIRED`) or a `close` signal arrives (`EXPLICIT`), the workflow runs
//! `emit_conversation_ended` once and completes with a [`WindowSummary`].
//!
//! Determinism: time comes only from `workflow_time()` (the activation's timestamp), and the only
//! effects are Temporal commands.

use std::{pin::pin, time::Duration};

use convo_domain::{Channel, CloseReason, Direction, Timestamp, Window, WindowPolicy};
use serde::{Deserialize, Serialize};
use temporalio_common::{RetryPolicy, error::ApplicationFailure};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityOptions, CancellableFuture, SyncWorkflowContext, TimerOptions, TimerResult,
    WorkflowContext, WorkflowContextView, WorkflowResult, WorkflowTermination, select,
};

use crate::contracts::{
    ConversationEnded, QUERY_STATE, SESSION_WINDOW_WORKFLOW, SIGNAL_CLOSE, SIGNAL_INBOUND,
    SessionWindowActivities, error_types,
};

/// Input of [`SessionWindowWorkflow`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionWindowInput {
    /// Workspace that owns the conversation.
    pub workspace_id: String,
    /// The contact on the other side.
    pub contact_id: String,
    /// Channel the conversation happens on.
    pub channel: Channel,
    /// Window policy in force (usually `channel.default_policy()`).
    pub policy: WindowPolicy,
}

/// Payload of the `inbound` signal: a message from the contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// Message text.
    pub text: String,
    /// The provider's id for the message (for correlation and de-duplication upstream).
    pub provider_message_id: String,
}

/// Answer of the `state` query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowState {
    /// Channel of the conversation.
    pub channel: Channel,
    /// The window, once the workflow has run its first task.
    pub window: Option<Window>,
    /// Inbound messages received through the `inbound` signal.
    pub inbound_messages: u32,
    /// Provider id of the latest inbound message.
    pub last_provider_message_id: Option<String>,
    /// Set once the workflow has decided to close.
    pub close_reason: Option<CloseReason>,
}

/// Result of [`SessionWindowWorkflow`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSummary {
    /// Why the window closed.
    pub close_reason: CloseReason,
    /// Inbound messages received while the window was open.
    pub inbound_messages: u32,
    /// Id of the `conversation.ended` event the activity recorded.
    pub ended_event_id: String,
}

/// The session-window workflow. See the module docs for its behaviour.
#[workflow]
pub struct SessionWindowWorkflow {
    input: SessionWindowInput,
    window: Option<Window>,
    inbound_messages: u32,
    last_provider_message_id: Option<String>,
    close_requested: bool,
    close_reason: Option<CloseReason>,
}

#[workflow_methods]
impl SessionWindowWorkflow {
    /// Builds the initial state from the input.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: SessionWindowInput) -> Self {
        Self {
            input,
            window: None,
            inbound_messages: 0,
            last_provider_message_id: None,
            close_requested: false,
            close_reason: None,
        }
    }

    /// Runs the window until it expires or is closed, then emits the ended event.
    #[run(name = SESSION_WINDOW_WORKFLOW)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<WindowSummary> {
        let reason = loop {
            let now = workflow_now(ctx.workflow_time())
                .ok_or_else(|| ApplicationFailure::new("workflow time unavailable"))?;
            let (expires_at, close_requested) =
                ctx.state_mut(|s| (s.window_or_open(now).expires_at(), s.close_requested));
            if close_requested {
                break CloseReason::Explicit;
            }
            let remaining = expires_at.saturating_since(now);
            if remaining.is_zero() {
                break CloseReason::Expired;
            }

            let timer = ctx.timer(
                TimerOptions::builder(remaining)
                    .summary("session window expiry".to_owned())
                    .build(),
            );
            let mut timer = pin!(timer);
            select! {
                fired = timer.as_mut() => match fired {
                    TimerResult::Fired => break CloseReason::Expired,
                    // Timers inherit the workflow's cancellation token, so this is a cancel
                    // request for the whole workflow: stop without emitting.
                    TimerResult::Cancelled => return Err(WorkflowTermination::cancelled()),
                },
                changed = ctx.wait_condition(move |s: &Self| {
                    s.close_requested || s.window.map(|w| w.expires_at()) != Some(expires_at)
                }) => {
                    changed?;
                    // Explicitly: a dropped timer future is not cancelled on the server.
                    timer.cancel();
                }
            }
        };

        let ended = ctx.state_mut(|s| {
            s.close_reason = Some(reason);
            ConversationEnded {
                workspace_id: s.input.workspace_id.clone(),
                contact_id: s.input.contact_id.clone(),
                reason,
                inbound_messages: s.inbound_messages,
            }
        });
        let inbound_messages = ended.inbound_messages;
        let ended_event_id = ctx
            .execute_activity(
                SessionWindowActivities::emit_conversation_ended,
                ended,
                emit_activity_options(),
            )
            .await?;
        Ok(WindowSummary { close_reason: reason, inbound_messages, ended_event_id })
    }

    /// The contact sent a message: count it and, on a sliding policy, move the window's end.
    #[signal(name = SIGNAL_INBOUND)]
    pub fn inbound(&mut self, ctx: &mut SyncWorkflowContext<Self>, message: InboundMessage) {
        self.inbound_messages += 1;
        self.last_provider_message_id = Some(message.provider_message_id);
        if self.close_reason.is_some() {
            return;
        }
        if let Some(now) = workflow_now(ctx.workflow_time()) {
            // `Err(Expired)`: the message arrived at or after the end. The window stays as is
            // and the run loop closes it as EXPIRED in this same task.
            let _ = self.window_or_open(now).record(Direction::Inbound, now);
        }
    }

    /// Close the window now, with reason `EXPLICIT`.
    #[signal(name = SIGNAL_CLOSE)]
    pub fn close(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.close_requested = true;
    }

    /// The window's current state.
    #[query(name = QUERY_STATE)]
    pub fn state(&self, _ctx: &WorkflowContextView) -> WindowState {
        WindowState {
            channel: self.input.channel,
            window: self.window,
            inbound_messages: self.inbound_messages,
            last_provider_message_id: self.last_provider_message_id.clone(),
            close_reason: self.close_reason,
        }
    }
}

impl SessionWindowWorkflow {
    /// The window, opened at `now` if this is the first time anyone needs it (the run loop's
    /// first iteration, or a signal delivered together with the start).
    fn window_or_open(&mut self, now: Timestamp) -> &mut Window {
        let policy = self.input.policy;
        self.window.get_or_insert_with(|| Window::open(policy, now))
    }
}

fn workflow_now(t: Option<std::time::SystemTime>) -> Option<Timestamp> {
    t.map(Timestamp::from_system_time)
}

/// Emitting is cheap and idempotent (the event id is derived from the run), so retry
/// transient failures for a while, but never the permanent ones.
fn emit_activity_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(60))
                .maximum_attempts(20)
                .non_retryable_error_types([
                    error_types::INVALID_EVENT,
                    error_types::EVENT_REJECTED,
                ])
                .build(),
        )
        .build()
}
