//! `SessionWindowWorkflow`: one contact's session in one workspace, driven by the pure
//! [`convo_domain::window::decide`].
//!
//! The workflow is an interpreter. Every signal, update and timer becomes a domain
//! [`Event`]; `decide` returns the next state and a list of [`Effect`]s, which the workflow
//! carries out in order: holds and sends become activities whose answers are fed back as
//! events (`HoldPlaced`, `ProviderAccepted`, …), webhooks are queued through an activity, and
//! refusals answer the waiting update. Nothing here decides policy.
//!
//! - **Timers.** The domain state says which of its timers (expiry, billing session,
//!   inactivity ping) run and when; the run loop keeps exactly one Temporal timer, at the
//!   earliest of them, and restarts it whenever the state changes. A replaced timer is
//!   cancelled explicitly: a dropped timer future is not cancelled on the server.
//! - **Sends** go through the `send` update. Its validator runs the domain's `validate`
//!   (`no_active_session`, `contact_opted_out`, `validation_failed`) so a refused send writes
//!   no history and reaches no provider; the handler places the hold, runs the provider send and
//!   answers with the message id, `conversation_expires_at` and the billing block. A retried
//!   update with the same message id gets the first answer.
//! - **Ending.** When the domain closes the last window (`EXPIRED`, `EXPLICIT`,
//!   `COMPLIANCE_STOP`) and nothing is in flight, the run completes; a later inbound starts a
//!   new run under the same id (signal-with-start).
//! - **Continue-as-new** before the history grows large: the domain state (timers included),
//!   the session id and the recent send answers move to the next run, so no message, hold or
//!   timer is lost.
//!
//! - **Operators' view** ([`crate::ops`]): since [`PATCH_OPS_VISIBILITY`] each run keeps its
//!   search attributes (workspace, contact, address, channel, window state, close reason) and
//!   its memo's linked conversation current, upserting only what changed after each decision;
//!   the UI's "Current Details" and the `__stack_trace` query describe what the run waits for.
//!
//! Determinism: time comes only from `workflow_time()`; the only effects are commands.

use std::{collections::VecDeque, pin::pin, time::Duration};

use convo_domain::{
    Balance, CloseReason, ErrorCode, Money, Timestamp,
    window::{Content, Effect, Event, OutboundMessage, State, TimerKind, decide, validate},
};
use serde::{Deserialize, Serialize};
use temporalio_common::{RetryPolicy, protos::temporal::api::failure::v1::failure::FailureInfo};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityCloseTimeouts, ActivityExecutionError, ActivityOptions, CancellableFuture,
    ContinueAsNewOptions, SignalWorkflowOptions, TimerOptions, TimerResult, WorkflowContext,
    WorkflowContextView, WorkflowResult, WorkflowTermination, select,
};

use crate::{
    contracts::{
        Carried, ConsentRecord, ContactCard, HoldRequest, HoldResolution, InboundMessage,
        ProviderSend, SESSION_WINDOW_WORKFLOW, SendError, SendReceipt, SendRecord, SendRequest,
        SendTrouble, SessionActivities, SessionInput, SessionSummary, SessionView, WebhookEmit,
        WindowClosed, conversation_workflow_id, error_types, io_task_queue, names,
    },
    ops,
    outbound::OutboundConversationWorkflow,
};

/// Past this many events the run continues as new, even if the server did not suggest it.
const HISTORY_LIMIT: u32 = 8_000;
/// Answered sends remembered for idempotent retries (and carried across continue-as-new).
const ANSWERS_KEPT: usize = 64;
/// Patch: an inbound message names the open conversation it answers (none unlinks), and a
/// compliance keyword is not signalled to the conversation as a reply.
pub const PATCH_REPLY_ROUTING: &str = "inbound-reply-routing";
/// Patch: the run publishes its search attributes and memo (see [`crate::ops`]).
pub const PATCH_OPS_VISIBILITY: &str = "ops-visibility";
/// Patch: an inbound message on another channel moves the session to that channel
/// ([`Event::ChannelChanged`]); sends stay on the channel they were asked for.
pub const PATCH_FOLLOW_CHANNEL: &str = "follow-contact-channel";
/// Patch: a routed inbound message goes to the conversation it was routed to when it
/// arrived, not to one a send linked while the message was being handled (a compose into an
/// open window would otherwise be told of the message that opened the window as its reply).
pub const PATCH_ROUTE_AT_RECEIPT: &str = "route-reply-at-receipt";

/// One answered send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Answer {
    message_id: String,
    result: Result<SendReceipt, SendError>,
}

/// The session-window workflow. See the module docs.
#[workflow]
pub struct SessionWindowWorkflow {
    workspace_id: String,
    contact_id: String,
    contact: Option<ContactCard>,
    session_id: String,
    state: State,
    linked_conversation: Option<String>,
    runs: u32,
    /// What this run has published to visibility so far.
    published: ops::Published,
    /// Bumped on every state change, so the run loop re-arms its timer.
    version: u64,
    /// Handlers that are carrying out effects; the run ends only when none is.
    busy: u32,
    /// Times `busy` dropped to zero: the run loop wakes on it to complete or continue as new.
    settles: u64,
    /// Sends in flight by message id, and the answers of finished ones.
    in_flight: Vec<String>,
    /// Sends in flight whose provider call failed and is being retried (latest failure each).
    troubled: Vec<SendTrouble>,
    /// The human agent of each send in flight that names one, for its provider send.
    agents: std::collections::BTreeMap<String, String>,
    /// The channel each send in flight was asked for, when the session has moved since (it
    /// goes out there, not on the channel the session follows now).
    send_channels: std::collections::BTreeMap<String, convo_domain::Channel>,
    /// The traffic type of each send in flight that names one, for its provider send.
    send_traffic: std::collections::BTreeMap<String, convo_domain::TrafficType>,
    answers: VecDeque<Answer>,
    /// The latest inbound message ids: providers retry webhooks.
    recent_inbound: VecDeque<String>,
    last_close: Option<CloseReason>,
    /// Windows closed by this run (each close tells the linked conversation).
    closes: u32,
    /// The latest workflow time seen: validators have no clock of their own, and the handler
    /// decides again with the activation's time, so a stale read can only admit a send that
    /// the domain then refuses.
    clock: Timestamp,
}

#[workflow_methods]
impl SessionWindowWorkflow {
    /// A fresh session, or the next run of one that continued as new.
    #[init]
    pub fn new(ctx: &WorkflowContextView, input: SessionInput) -> Self {
        // The first run of the chain names the session: a retry or a reset (whose new run
        // keeps the chain's first run id) re-emits the same logical events under the same ids.
        let first = match ctx.first_execution_run_id() {
            "" => ctx.run_id(),
            first => first,
        };
        let carried = input.carried.unwrap_or_else(|| Carried {
            session_id: first.to_owned(),
            state: State::new(input.config, input.consent),
            linked_conversation: None,
            runs: 0,
            recent_inbound: Vec::new(),
            answers: Vec::new(),
        });
        Self {
            workspace_id: input.workspace_id,
            contact_id: input.contact_id,
            contact: input.contact,
            published: ops::Published::default(),
            session_id: carried.session_id,
            state: carried.state,
            linked_conversation: carried.linked_conversation,
            runs: carried.runs + 1,
            version: 0,
            busy: 0,
            settles: 0,
            in_flight: Vec::new(),
            troubled: Vec::new(),
            agents: std::collections::BTreeMap::new(),
            send_channels: std::collections::BTreeMap::new(),
            send_traffic: std::collections::BTreeMap::new(),
            recent_inbound: carried.recent_inbound.into(),
            answers: carried
                .answers
                .into_iter()
                .map(|(message_id, result)| Answer { message_id, result })
                .collect(),
            last_close: None,
            closes: 0,
            clock: Timestamp::from_epoch_millis(0),
        }
    }

    /// Keeps the earliest domain timer armed until the session is idle, then completes.
    #[run(name = SESSION_WINDOW_WORKFLOW)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<SessionSummary> {
        publish(ctx);
        loop {
            let idle = ctx.state(|s| s.busy == 0 && s.state.is_idle());
            // Idle with nothing running: every window closed and settled, or the run was
            // started by an update its validator rejected (nothing happened at all).
            if idle && ctx.all_handlers_finished() {
                break;
            }
            if ctx.state(|s| s.busy == 0 && s.in_flight.is_empty())
                && ctx.all_handlers_finished()
                && (ctx.continue_as_new_suggested() || ctx.history_length() > HISTORY_LIMIT)
            {
                let next = ctx.state(Self::carry);
                ctx.continue_as_new(next, ContinueAsNewOptions::default())?;
            }

            let now = now(ctx.workflow_time());
            ctx.state_mut(|s| s.clock = s.clock.max(now));
            let due = ctx.state(|s| next_timer(&s.state));
            // One Temporal timer at the earliest domain deadline. It is kept across state
            // changes that leave that deadline alone (most sends and inbounds), so history
            // gets a cancel and a new timer only when the deadline really moves.
            let Some((kind, at)) = due else {
                loop {
                    let settles = ctx.state(|s| s.settles);
                    ctx.wait_condition(move |s: &Self| {
                        next_timer(&s.state).is_some() || s.settles != settles
                    })
                    .await?;
                    if ctx.state(|s| next_timer(&s.state)).is_some() || wants_exit(ctx) {
                        break;
                    }
                }
                continue;
            };
            let wait = at.saturating_since(now).max(Duration::from_millis(1));
            let summary = format!("{kind:?}").to_lowercase();
            let timer = ctx.timer(TimerOptions::builder(wait).summary(summary).build());
            let mut timer = pin!(timer);
            loop {
                let settles = ctx.state(|s| s.settles);
                let moved_or_settled =
                    move |s: &Self| next_timer(&s.state) != due || s.settles != settles;
                select! {
                    fired = timer.as_mut() => {
                        match fired {
                            TimerResult::Fired => fire_due(ctx).await,
                            TimerResult::Cancelled => return Err(WorkflowTermination::cancelled()),
                        }
                        break;
                    },
                    woke = ctx.wait_condition(moved_or_settled) => {
                        woke?;
                        if ctx.state(|s| next_timer(&s.state)) != due || wants_exit(ctx) {
                            timer.cancel();
                            break;
                        }
                    }
                }
            }
        }
        Ok(ctx.state(|s| SessionSummary {
            session_id: s.session_id.clone(),
            close_reason: s.last_close,
            conversations: s.state.view().conversation,
        }))
    }

    /// The contact sent a message (a reply, an unprompted inbound, or a compliance keyword).
    ///
    /// The session stays busy until the linked conversation has heard of the reply: the run
    /// loop re-checks whether it may end only when the last busy handler leaves, so a signal
    /// sent after that would leave a closed session waiting forever. Since
    /// [`PATCH_REPLY_ROUTING`], the message names the conversation the reply belongs to (none
    /// once that conversation ended, which unlinks it), and a compliance keyword (STOP, START,
    /// HELP) is not a reply: the conversation hears of a STOP as the window closing.
    #[signal(name = names::SIGNAL_INBOUND)]
    pub async fn inbound(ctx: &mut WorkflowContext<Self>, message: InboundMessage) {
        let routed = ctx.patched(PATCH_REPLY_ROUTING);
        let repeat = ctx.state_mut(|s| {
            if s.recent_inbound.contains(&message.message_id) {
                return true;
            }
            s.recent_inbound.push_back(message.message_id.clone());
            while s.recent_inbound.len() > ANSWERS_KEPT {
                s.recent_inbound.pop_front();
            }
            if routed {
                s.linked_conversation.clone_from(&message.conversation_id);
            } else if let Some(conversation) = &message.conversation_id {
                s.linked_conversation = Some(conversation.clone());
            }
            false
        });
        if repeat {
            return;
        }
        let event = Event::InboundMessage {
            message_id: convo_domain::MessageId::new(message.message_id.clone()),
            text: message.text.clone(),
            sent_at: message.sent_at,
        };
        enter(ctx);
        // The contact wrote on another channel: the session follows it there first.
        let current = ctx.state(|s| s.state.config().channel);
        if let Some(on) = message.channel.as_deref()
            && on.config.channel != current
            && ctx.patched(PATCH_FOLLOW_CHANNEL)
        {
            ctx.state_mut(|s| {
                if on.contact.is_some() {
                    s.contact.clone_from(&on.contact);
                }
            });
            interpret(ctx, Event::ChannelChanged { config: Box::new(on.config.clone()) }).await;
        }
        let closes = ctx.state(|s| s.closes);
        interpret(ctx, event).await;
        let keyword = if routed { convo_domain::compliance::classify(&message.text) } else { None };
        let (mut linked, closed) =
            ctx.state(|s| (s.linked_conversation.clone(), s.closes != closes));
        if routed && linked != message.conversation_id && ctx.patched(PATCH_ROUTE_AT_RECEIPT) {
            linked.clone_from(&message.conversation_id);
        }
        // The conversation may already have ended; that is not the session's problem.
        match (linked, keyword) {
            (Some(conversation), None) => {
                let _ = ctx
                    .external_workflow(conversation_workflow_id(&conversation), None)
                    .signal(
                        OutboundConversationWorkflow::contact_replied,
                        message,
                        SignalWorkflowOptions::default(),
                    )
                    .await;
            }
            // An opt-out with no window to close still ends the conversation's chance.
            (Some(conversation), Some(convo_domain::Keyword::OptOut)) if !closed => {
                tell_window_closed(ctx, &conversation, CloseReason::ComplianceStop).await;
            }
            _ => {}
        }
        leave(ctx);
    }

    /// Close the window now (`EXPLICIT`). Idempotent: closing a closed window changes nothing.
    #[signal(name = names::SIGNAL_CLOSE)]
    pub async fn close(ctx: &mut WorkflowContext<Self>) {
        run_handler(ctx, Event::CloseRequested).await;
    }

    /// The contact's consent changed elsewhere (another channel, the API).
    #[signal(name = names::SIGNAL_CONSENT)]
    pub async fn consent_changed(ctx: &mut WorkflowContext<Self>, consent: convo_domain::Consent) {
        run_handler(ctx, Event::ConsentChanged { consent }).await;
    }

    /// A send's provider call failed and Temporal retries it (the `send_message` activity
    /// reports its first failed attempt): operators see it in the run's `ConvoProblem` search
    /// attribute and details until the send is answered. A report about a send no longer in
    /// flight changes nothing.
    #[signal(name = names::SIGNAL_SEND_TROUBLE)]
    pub async fn send_trouble(ctx: &mut WorkflowContext<Self>, trouble: SendTrouble) {
        let known = ctx.state_mut(|s| {
            if !s.in_flight.contains(&trouble.message_id) {
                return false;
            }
            s.troubled.retain(|t| t.message_id != trouble.message_id);
            s.troubled.push(trouble);
            true
        });
        if known {
            publish(ctx);
        }
    }

    /// Refuses a send the window does not allow, before anything is written to history.
    #[update_validator(send)]
    pub fn validate_send(
        &self,
        _ctx: &WorkflowContextView,
        request: &SendRequest,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if self.answer(&request.message_id).is_some()
            || self.in_flight.contains(&request.message_id)
        {
            return Ok(());
        }
        let channel = self.state.config().channel;
        if request.channel != channel {
            return Err(Box::new(SendError {
                code: ErrorCode::ChannelMismatch,
                message: format!(
                    "the contact is reached on {channel} now (the channel of their latest \
                     message); send on {channel}, not {}",
                    request.channel
                ),
            }));
        }
        validate(&self.state, &send_event(request), self.clock)
            .map_err(|e| Box::new(send_error(&e)) as Box<dyn std::error::Error + Send + Sync>)
    }

    /// A business send through the window's gate.
    #[update(name = names::UPDATE_SEND)]
    pub async fn send(
        ctx: &mut WorkflowContext<Self>,
        request: SendRequest,
    ) -> Result<SendReceipt, Box<dyn std::error::Error + Send + Sync>> {
        let id = request.message_id.clone();
        let first = ctx.state_mut(|s| {
            if s.answer(&id).is_some() || s.in_flight.contains(&id) {
                return false;
            }
            s.in_flight.push(id.clone());
            if let Some(agent) = &request.agent_id {
                s.agents.insert(id.clone(), agent.clone());
            }
            s.send_channels.insert(id.clone(), request.channel);
            if let Some(t) = request.traffic_type {
                s.send_traffic.insert(id.clone(), t);
            }
            if let Some(conversation) = &request.conversation_id {
                s.linked_conversation = Some(conversation.clone());
            }
            true
        });
        if first {
            run_handler(ctx, send_event(&request)).await;
        }
        ctx.wait_condition(|s: &Self| s.answer(&id).is_some()).await?;
        let answer = ctx.state(|s| s.answer(&id).cloned()).ok_or("send answer lost")?;
        answer.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
    }

    /// The full window state: both clocks, consent, billing, counts and recent sends.
    #[query(name = names::QUERY_STATE)]
    pub fn state(&self, _ctx: &WorkflowContextView) -> SessionView {
        SessionView {
            session_id: self.session_id.clone(),
            workspace_id: self.workspace_id.clone(),
            contact_id: self.contact_id.clone(),
            window: self.state.view(),
            linked_conversation: self.linked_conversation.clone(),
            runs: self.runs,
            sends: self
                .answers
                .iter()
                .map(|a| SendRecord {
                    message_id: a.message_id.clone(),
                    outcome: match &a.result {
                        Ok(_) => "accepted".to_owned(),
                        Err(e) => e.code.as_str().to_owned(),
                    },
                })
                .collect(),
        }
    }

    /// What the run waits for, for `temporal workflow stack` and the UI's "Call Stack" tab.
    /// The Rust SDK has no coroutine stack to dump, so this is the workflow's own account:
    /// the timer it keeps, the handlers at work and the sends in flight (their attempts and
    /// last failure are the server's: `temporal workflow describe`).
    #[query(name = "__stack_trace")]
    pub fn stack_trace(&self, ctx: &WorkflowContextView) -> String {
        let mut out = format!(
            "{SESSION_WINDOW_WORKFLOW} {} (session {}, run {} of the chain)\n",
            ctx.workflow_id(),
            self.session_id,
            self.runs
        );
        match next_timer(&self.state) {
            Some((kind, at)) => out.push_str(&format!(
                "run loop: waiting for timer `{}` (fires {}) or a state change\n",
                format!("{kind:?}").to_lowercase(),
                ops::instant(at)
            )),
            None => out.push_str("run loop: no timer armed; waiting for handlers to settle\n"),
        }
        out.push_str(&format!("handlers at work: {}\n", self.busy));
        if self.in_flight.is_empty() {
            out.push_str("sends in flight: none\n");
        } else {
            out.push_str(&format!(
                "sends in flight: {} (activity send_message; see pending activities)\n",
                self.in_flight.join(", ")
            ));
        }
        out.push_str(&self.details());
        out
    }
}

impl SessionWindowWorkflow {
    /// The UI's "Current Details": the window, billing, consent and link, in Markdown.
    fn details(&self) -> String {
        let v = self.state.view();
        let mut out = String::new();
        let label = ops::contact_label(&self.contact_id, self.contact.as_ref());
        if v.open {
            let channel = ops::channel_title(v.channel);
            out.push_str(&format!("**Window open** with {label} on {channel}"));
            if let Some(at) = v.expires_at {
                out.push_str(&format!(", free-form until {}", ops::instant(at)));
            }
            out.push('\n');
        } else if let Some(reason) = v.last_close {
            out.push_str(&format!("**Window closed** ({reason}) with {label}\n"));
        } else {
            out.push_str(&format!("**No window open** with {label}; templates only\n"));
        }
        if let Some(reason) = v.closing {
            out.push_str(&format!("closing ({reason}) once sends in flight finish\n"));
        }
        // A blank line, so Markdown renders what follows as a list.
        out.push('\n');
        out.push_str(&format!(
            "- messages: {} in, {} out in window #{}\n",
            v.inbound_messages, v.outbound_messages, v.conversation
        ));
        if let Some(end) = v.billing_session_ends_at {
            out.push_str(&format!(
                "- billing: session until {}{}\n",
                ops::instant(end),
                if v.in_session { ", unit held" } else { "" }
            ));
        }
        out.push_str(&format!("- consent: {}\n", consent_name(v.consent)));
        if let Some(c) = &self.linked_conversation {
            out.push_str(&format!("- replies go to conversation `{c}`\n"));
        }
        for t in &self.troubled {
            out.push_str(&format!(
                "- **send `{}` failing**, retried by Temporal (attempt {} failed: {})\n",
                t.message_id, t.attempt, t.error
            ));
        }
        out
    }

    /// The search attributes and memo this run should show now.
    fn publication(&mut self) -> ops::Publication {
        let v = self.state.view();
        let wanted = ops::session_attributes(
            &self.workspace_id,
            &self.contact_id,
            self.contact.as_ref(),
            v.channel,
            ops::window_state(v.open, v.conversation > 0),
            v.last_close,
            (!self.troubled.is_empty()).then_some(ops::SEND_RETRYING),
        );
        let memo = [(ops::memo::CONVERSATION, self.linked_conversation.clone())];
        self.published.diff(&wanted, &memo)
    }

    fn answer(&self, message_id: &str) -> Option<&Result<SendReceipt, SendError>> {
        self.answers.iter().find(|a| a.message_id == message_id).map(|a| &a.result)
    }

    fn record_answer(&mut self, message_id: &str, result: Result<SendReceipt, SendError>) {
        self.in_flight.retain(|m| m != message_id);
        self.agents.remove(message_id);
        self.send_channels.remove(message_id);
        self.send_traffic.remove(message_id);
        self.troubled.retain(|t| t.message_id != message_id);
        if self.answer(message_id).is_none() {
            self.answers.push_back(Answer { message_id: message_id.to_owned(), result });
            while self.answers.len() > ANSWERS_KEPT {
                self.answers.pop_front();
            }
        }
    }

    /// Applies one event to the domain state and returns the effects to carry out.
    fn apply(&mut self, event: &Event, now: Timestamp) -> Vec<Effect> {
        self.clock = self.clock.max(now);
        let decision = decide(&self.state, event, now);
        self.state = decision.next;
        self.version += 1;
        decision.effects
    }

    fn carry(&self) -> SessionInput {
        SessionInput {
            workspace_id: self.workspace_id.clone(),
            contact_id: self.contact_id.clone(),
            config: self.state.config().clone(),
            consent: self.state.consent(),
            contact: self.contact.clone(),
            carried: Some(Carried {
                session_id: self.session_id.clone(),
                state: self.state.clone(),
                linked_conversation: self.linked_conversation.clone(),
                runs: self.runs,
                recent_inbound: self.recent_inbound.iter().cloned().collect(),
                answers: self
                    .answers
                    .iter()
                    .map(|a| (a.message_id.clone(), a.result.clone()))
                    .collect(),
            }),
        }
    }
}

fn now(t: Option<std::time::SystemTime>) -> Timestamp {
    // The SDK sets workflow time before any code runs; the epoch is only a type-level fallback.
    t.map(Timestamp::from_system_time).unwrap_or(Timestamp::from_epoch_millis(0))
}

/// Whether the run should stop waiting: nothing in flight and either nothing left to do or
/// a history long enough to continue as new.
fn wants_exit(ctx: &WorkflowContext<SessionWindowWorkflow>) -> bool {
    ctx.state(|s| s.busy == 0 && s.in_flight.is_empty())
        && ctx.all_handlers_finished()
        && (ctx.state(|s| s.state.is_idle())
            || ctx.continue_as_new_suggested()
            || ctx.history_length() > HISTORY_LIMIT)
}

/// The earliest running domain timer.
fn next_timer(state: &State) -> Option<(TimerKind, Timestamp)> {
    TimerKind::ALL
        .into_iter()
        .filter_map(|k| state.armed_timer(k).map(|at| (k, at)))
        .min_by_key(|(_, at)| *at)
}

/// Feeds every timer that is due to the domain, earliest first.
async fn fire_due(ctx: &WorkflowContext<SessionWindowWorkflow>) {
    loop {
        let now = now(ctx.workflow_time());
        match ctx.state(|s| next_timer(&s.state)) {
            Some((kind, at)) if at <= now => {
                interpret(ctx, Event::TimerFired { timer: kind }).await;
            }
            _ => return,
        }
    }
}

/// A handler's share of the work: marks the session busy while it carries out its effects.
async fn run_handler(ctx: &WorkflowContext<SessionWindowWorkflow>, event: Event) {
    enter(ctx);
    interpret(ctx, event).await;
    leave(ctx);
}

/// A handler starts work the run must not end under.
fn enter(ctx: &WorkflowContext<SessionWindowWorkflow>) {
    ctx.state_mut(|s| s.busy += 1);
}

/// A handler's work is done; the last one out wakes the run loop to see whether it may end.
fn leave(ctx: &WorkflowContext<SessionWindowWorkflow>) {
    ctx.state_mut(|s| {
        s.busy -= 1;
        if s.busy == 0 {
            s.settles += 1;
        }
    });
}

/// Decides `event`, then carries out the effects in order. An effect whose answer is another
/// event (a hold, a provider send) is decided at once and its effects run next, before the
/// rest of the list, so a send's outcome is known before later effects run.
async fn interpret(ctx: &WorkflowContext<SessionWindowWorkflow>, event: Event) {
    let at = now(ctx.workflow_time());
    let mut queue: VecDeque<Effect> = ctx.state_mut(|s| s.apply(&event, at)).into();
    while let Some(effect) = queue.pop_front() {
        if let Some(feedback) = carry_out(ctx, effect).await {
            let at = now(ctx.workflow_time());
            let more = ctx.state_mut(|s| s.apply(&feedback, at));
            for effect in more.into_iter().rev() {
                queue.push_front(effect);
            }
        }
    }
    publish(ctx);
}

/// Brings the run's search attributes, memo and current details up to date.
fn publish(ctx: &WorkflowContext<SessionWindowWorkflow>) {
    crate::publish::publish(
        ctx,
        SessionWindowWorkflow::details,
        SessionWindowWorkflow::publication,
    );
}

fn consent_name(consent: convo_domain::Consent) -> &'static str {
    match consent {
        convo_domain::Consent::Unknown => "unknown",
        convo_domain::Consent::OptedIn { .. } => "opted in",
        convo_domain::Consent::OptedOut { .. } => "opted out",
    }
}

async fn carry_out(ctx: &WorkflowContext<SessionWindowWorkflow>, effect: Effect) -> Option<Event> {
    let (workspace_id, contact_id, channel) =
        ctx.state(|s| (s.workspace_id.clone(), s.contact_id.clone(), s.state.config().channel));
    match effect {
        // The run loop arms one Temporal timer at the earliest deadline the state holds.
        Effect::StartTimer { .. } | Effect::CancelTimer { .. } => None,
        Effect::PlaceHold { hold_id, amount, .. } => {
            let summary = format!("hold {amount} for {}", hold_id.as_str());
            let request = HoldRequest { workspace_id, hold_id: hold_id.clone(), amount };
            let answer = ctx
                .execute_activity(
                    SessionActivities::place_hold,
                    request,
                    store_options(ctx, summary),
                )
                .await;
            Some(match answer {
                Ok(a) if a.placed => Event::HoldPlaced { hold_id, balance: a.balance },
                Ok(a) => Event::HoldRefused { hold_id, balance: a.balance },
                // The ledger stayed unreachable for the whole retry budget: refuse the send
                // rather than send unbilled.
                Err(_) => Event::HoldRefused { hold_id, balance: Balance::new(Money::ZERO) },
            })
        }
        Effect::ChargeHold { hold_id, .. } => resolve_hold(ctx, workspace_id, hold_id, true).await,
        Effect::ReleaseHold { hold_id, .. } => {
            resolve_hold(ctx, workspace_id, hold_id, false).await
        }
        Effect::Send { message, billing, conversation_expires_at } => {
            let message_id = message.id.clone();
            let (conversation_id, agent_id, asked, traffic_type) = ctx.state_mut(|s| {
                (
                    s.linked_conversation.clone(),
                    s.agents.remove(message_id.as_str()),
                    s.send_channels.get(message_id.as_str()).copied(),
                    s.send_traffic.get(message_id.as_str()).copied(),
                )
            });
            let channel = asked.unwrap_or(channel);
            let summary = format!("send {} on {channel}", message_id.as_str());
            let send = ProviderSend {
                workspace_id,
                contact_id,
                channel,
                message,
                conversation_id,
                agent_id,
                traffic_type,
            };
            let accepted_at = Some(now(ctx.workflow_time()));
            let sent = ctx
                .execute_activity(SessionActivities::send_message, send, send_options(ctx, summary))
                .await;
            let (event, result) = match sent {
                Ok(sent) => (
                    Event::ProviderAccepted { message_id: message_id.clone() },
                    Ok(SendReceipt {
                        message_id: message_id.as_str().to_owned(),
                        provider_message_id: sent.provider_message_id,
                        conversation_expires_at,
                        billing,
                        accepted_at,
                    }),
                ),
                Err(e) => {
                    let reason = failure_of(&e);
                    let code = ErrorCode::ProviderRejected;
                    (
                        Event::ProviderRejected {
                            message_id: message_id.clone(),
                            reason: reason.clone(),
                        },
                        Err(SendError { code, message: reason }),
                    )
                }
            };
            ctx.state_mut(|s| s.record_answer(message_id.as_str(), result));
            Some(event)
        }
        Effect::SendConfirmation { message_id, text, .. } => {
            let subject =
                (channel == convo_domain::Channel::Email).then(|| "Your preferences".to_owned());
            let message = OutboundMessage {
                id: message_id,
                content: Content::Text { body: text, subject },
                message_type: convo_domain::MessageType::Message,
                sender: convo_domain::Sender::Automated,
                human_agent_tag: false,
            };
            let summary = format!("send confirmation {} on {channel}", message.id.as_str());
            let send = ProviderSend {
                workspace_id,
                contact_id,
                channel,
                message,
                conversation_id: None,
                agent_id: None,
                // RBM's class for a reply to the contact's own message (STOP, HELP).
                traffic_type: Some(convo_domain::TrafficType::Acknowledgement),
            };
            // A confirmation is a courtesy the law allows, not a billed send: a failure is
            // recorded by the activity's message log and changes nothing here.
            let _ = ctx
                .execute_activity(SessionActivities::send_message, send, send_options(ctx, summary))
                .await;
            None
        }
        Effect::RecordConsent { consent } => {
            let message_id =
                convo_domain::MessageId::new(format!("consent-{}", ctx.state(|s| s.version)));
            let record = ConsentRecord { workspace_id, contact_id, consent, message_id };
            let consent = record.consent;
            let _ = ctx
                .execute_activity(
                    SessionActivities::record_consent,
                    record,
                    store_options(ctx, format!("record consent: {}", consent_name(consent))),
                )
                .await;
            None
        }
        Effect::EmitWebhook(webhook) => {
            let (session_id, linked_conversation) =
                ctx.state(|s| (s.session_id.clone(), s.linked_conversation.clone()));
            let occurred_at = Some(now(ctx.workflow_time()));
            let emit = WebhookEmit {
                workspace_id,
                contact_id,
                session_id,
                webhook,
                logical_ids: true,
                occurred_at,
                linked_conversation,
                channel: Some(channel),
            };
            let summary = format!("queue {}", emit.event_type());
            let _ = ctx
                .execute_activity(
                    SessionActivities::emit_webhook,
                    emit,
                    store_options(ctx, summary),
                )
                .await;
            None
        }
        Effect::Reject { message_id, error } => {
            ctx.state_mut(|s| s.record_answer(message_id.as_str(), Err(send_error(&error))));
            None
        }
        Effect::Close { reason, .. } => {
            let linked = ctx.state_mut(|s| {
                s.last_close = Some(reason);
                s.closes += 1;
                s.linked_conversation.clone()
            });
            if let Some(conversation) = linked {
                tell_window_closed(ctx, &conversation, reason).await;
            }
            None
        }
    }
}

/// Tells the linked conversation its window closed. It may already have ended; that is not
/// the session's problem.
async fn tell_window_closed(
    ctx: &WorkflowContext<SessionWindowWorkflow>,
    conversation: &str,
    reason: CloseReason,
) {
    let _ = ctx
        .external_workflow(conversation_workflow_id(conversation), None)
        .signal(
            OutboundConversationWorkflow::window_closed,
            WindowClosed { reason },
            SignalWorkflowOptions::default(),
        )
        .await;
}

async fn resolve_hold(
    ctx: &WorkflowContext<SessionWindowWorkflow>,
    workspace_id: String,
    hold_id: convo_domain::HoldId,
    charge: bool,
) -> Option<Event> {
    let summary = format!("{} {}", if charge { "charge" } else { "release" }, hold_id.as_str());
    let request = HoldResolution { workspace_id, hold_id, charge };
    // Holds are resolved idempotently by id; a failure after the whole retry budget leaves the
    // hold open in the ledger for ops to settle, visible as `reserved`.
    let _ = ctx
        .execute_activity(SessionActivities::resolve_hold, request, store_options(ctx, summary))
        .await;
    None
}

fn send_event(request: &SendRequest) -> Event {
    request.event()
}

fn send_error(e: &convo_domain::window::Error) -> SendError {
    SendError { code: e.code(), message: e.to_string() }
}

/// Why a send failed for good: the innermost application failure's type and message (the
/// provider's class, such as `InvalidRecipient` or `OutsideWindow`, and its words).
fn failure_of(e: &ActivityExecutionError) -> String {
    let mut reason = e.to_string();
    let mut failure = e.failure();
    while let Some(f) = failure {
        if let Some(FailureInfo::ApplicationFailureInfo(info)) = &f.failure_info {
            reason = if info.r#type.is_empty() {
                f.message.clone()
            } else {
                format!("{}: {}", info.r#type, f.message)
            };
        }
        failure = f.cause.as_deref();
    }
    reason
}

/// Ledger, consent and webhook-queue writes: idempotent, cheap, retried until the store
/// answers. Only bad input fails for good.
fn store_options(ctx: &WorkflowContext<SessionWindowWorkflow>, summary: String) -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: Duration::from_secs(24 * 3600),
        start_to_close: Duration::from_secs(30),
    })
    .retry_policy(
        RetryPolicy::builder()
            .initial_interval(Duration::from_secs(1))
            .backoff_coefficient(2.0)
            .maximum_interval(Duration::from_secs(300))
            .non_retryable_error_types([error_types::VALIDATION_FAILED, error_types::NOT_FOUND])
            .build(),
    )
    .task_queue(io_task_queue(ctx.task_queue()))
    .summary(summary)
    .build()
}

/// Provider sends: transient failures (outages, 429, 5xx) are retried with backoff for up to
/// six hours; the activity marks permanent refusals non-retryable. The message id is the
/// provider idempotency key, so a retry never sends twice.
fn send_options(ctx: &WorkflowContext<SessionWindowWorkflow>, summary: String) -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: Duration::from_secs(6 * 3600),
        start_to_close: Duration::from_secs(60),
    })
    .retry_policy(
        RetryPolicy::builder()
            .initial_interval(Duration::from_secs(2))
            .backoff_coefficient(2.0)
            .maximum_interval(Duration::from_secs(600))
            .build(),
    )
    .task_queue(io_task_queue(ctx.task_queue()))
    .summary(summary)
    .build()
}
