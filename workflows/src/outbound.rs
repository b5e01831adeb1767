//! `OutboundConversationWorkflow`: one composed conversation, from the first message to its
//! resolution.
//!
//! `pending` → resolve the contact (by id, or find-or-create by phone or e-mail) → check
//! consent → send the first message through the contact's session window (free-form if the
//! window allows it, else the compose's template; never a silent downgrade) → `awaiting_reply`
//! until the contact answers or the reply timeout passes (`expired`) → `active` → `resolved`,
//! or `expired` / `failed` when the window ends on its own or the contact opts out.
//!
//! Since [`PATCH_OPS_VISIBILITY`] the run keeps its search attributes (workspace, contact,
//! address, channel, status) and its memo's contact and session current ([`crate::ops`]).
//!
//! Every send, the first one and agents' replies alike, goes through the session's `send`
//! update (by an activity), so the window's gate, billing and consent apply to them exactly as
//! to any other send.

use std::{pin::pin, time::Duration};

use convo_domain::{Channel, CloseReason, Direction, ErrorCode, MessageType, Sender, Timestamp};
use temporalio_common::{RetryPolicy, protos::temporal::api::failure::v1::failure::FailureInfo};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityCloseTimeouts, ActivityOptions, CancellableFuture, SyncWorkflowContext, TimerOptions,
    TimerResult, WorkflowContext, WorkflowContextView, WorkflowResult, WorkflowTermination, select,
};

use crate::contracts::{
    AgentReply, Assignee, CloseSessionInput, ComposeInput, ContactCard, ConversationActivities,
    ConversationMessage, ConversationStatus, ConversationView, InboundMessage,
    OUTBOUND_CONVERSATION_WORKFLOW, Resolve, ResolveContactInput, SendError, SendKind, SendReceipt,
    SendRequest, SessionSendInput, SessionSendOutcome, TakeOver, Timeline, WindowClosed,
    error_types, names, session_workflow_id,
};
use crate::ops;
pub use crate::session_window::PATCH_OPS_VISIBILITY;

/// Patch: a reply that arrives while the first message is still being sent (the contact
/// answered within the send's round trip) makes the conversation active once the send is
/// done, instead of being overwritten by `awaiting_reply` and left waiting for a reply it
/// already has.
pub const PATCH_EARLY_REPLY: &str = "early-reply";

type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// The outbound-conversation workflow. See the module docs.
#[workflow]
pub struct OutboundConversationWorkflow {
    input: ComposeInput,
    view: ConversationView,
    window_closed: Option<CloseReason>,
    resolve_requested: Option<Resolve>,
    replies_in_flight: u32,
    /// The resolved contact's address and name.
    card: Option<ContactCard>,
    /// What this run has published to visibility so far.
    published: ops::Published,
    /// The channel of the contact's latest reply when it is not the conversation's own: the
    /// contact's session follows them there, and so do this conversation's sends.
    reply_channel: Option<Channel>,
    /// The order of the view's messages: the order they began in.
    timeline: Timeline,
}

#[workflow_methods]
impl OutboundConversationWorkflow {
    /// A conversation that has not started yet.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: ComposeInput) -> Self {
        let view = ConversationView {
            conversation_id: input.conversation_id.clone(),
            status: ConversationStatus::Pending,
            contact_id: None,
            contact_created: false,
            messages: Vec::new(),
            assignee: input.assignee.clone(),
            error: None,
        };
        Self {
            input,
            view,
            window_closed: None,
            resolve_requested: None,
            replies_in_flight: 0,
            card: None,
            published: ops::Published::default(),
            reply_channel: None,
            timeline: Timeline::default(),
        }
    }

    /// Runs the conversation to its end and returns its final view.
    #[run(name = OUTBOUND_CONVERSATION_WORKFLOW)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<ConversationView> {
        let input = ctx.state(|s| s.input.clone());
        publish(ctx);
        if let Err(e) = check_compose(&input) {
            return Ok(finish(ctx, ConversationStatus::Failed, Some(e)));
        }

        let resolve = ResolveContactInput {
            workspace_id: input.workspace_id.clone(),
            target: input.to.clone(),
            channel: Some(input.channel),
        };
        let contact = match ctx
            .execute_activity(
                ConversationActivities::resolve_contact,
                resolve,
                quick_options("resolve the contact"),
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                // The activity's own failure type (`not_found`, `validation_failed`, ...);
                // a store that stayed unreachable through every retry is `unavailable`.
                let error = SendError { code: failure_code(&e), message: reason(&e) };
                return Ok(finish(ctx, ConversationStatus::Failed, Some(error)));
            }
        };
        ctx.state_mut(|s| {
            s.view.contact_id = Some(contact.contact_id.clone());
            s.view.contact_created = contact.created;
            s.card.clone_from(&contact.card);
        });
        publish(ctx);
        if let convo_domain::Consent::OptedOut { at } = contact.consent {
            let error = SendError {
                code: ErrorCode::ContactOptedOut,
                message: format!("contact opted out at {at}"),
            };
            return Ok(finish(ctx, ConversationStatus::Failed, Some(error)));
        }

        if let Err(error) = send_first(ctx, &input, &contact.contact_id).await {
            return Ok(finish(ctx, ConversationStatus::Failed, Some(error)));
        }
        let replied =
            ctx.state(|s| s.view.messages.iter().any(|m| m.direction == Direction::Inbound));
        let status = if replied && ctx.patched(PATCH_EARLY_REPLY) {
            ConversationStatus::Active
        } else {
            ConversationStatus::AwaitingReply
        };
        ctx.state_mut(|s| s.view.status = status);
        publish(ctx);

        // A reply that came in during the first send needs no wait.
        if status == ConversationStatus::AwaitingReply {
            let timeout = Duration::from_secs(input.reply_timeout_secs.max(1));
            let timer =
                ctx.timer(TimerOptions::builder(timeout).summary("reply timeout".into()).build());
            let mut timer = pin!(timer);
            select! {
                fired = timer.as_mut() => match fired {
                    TimerResult::Fired => {
                        let error = SendError { code: ErrorCode::ReplyTimeout, message: format!("no reply within {}s", timeout.as_secs()) };
                        return Ok(finish(ctx, ConversationStatus::Expired, Some(error)));
                    }
                    TimerResult::Cancelled => return Err(WorkflowTermination::cancelled()),
                },
                woke = ctx.wait_condition(|s: &Self| s.view.status != ConversationStatus::AwaitingReply || s.resolve_requested.is_some() || s.window_closed.is_some()) => {
                    woke?;
                    timer.cancel();
                }
            }
        }
        publish(ctx);

        ctx.wait_condition(|s: &Self| s.resolve_requested.is_some() || s.window_closed.is_some())
            .await?;
        // Replies in flight finish (and are recorded) before the conversation ends.
        ctx.wait_condition(|s: &Self| s.replies_in_flight == 0).await?;
        let (resolve, closed) = ctx.state(|s| (s.resolve_requested.clone(), s.window_closed));
        if let Some(resolve) = resolve {
            if resolve.close_window {
                let close = CloseSessionInput {
                    workspace_id: input.workspace_id.clone(),
                    contact_id: contact.contact_id.clone(),
                };
                ctx.execute_activity(
                    ConversationActivities::close_session,
                    close,
                    quick_options("close the contact's window"),
                )
                .await?;
            }
            return Ok(finish(ctx, ConversationStatus::Resolved, None));
        }
        let (status, error) = match closed {
            Some(CloseReason::ComplianceStop) => (
                ConversationStatus::Failed,
                Some(SendError {
                    code: ErrorCode::ContactOptedOut,
                    message: "the contact opted out".into(),
                }),
            ),
            Some(CloseReason::Explicit) => (ConversationStatus::Resolved, None),
            Some(CloseReason::Expired) | None => (
                ConversationStatus::Expired,
                Some(SendError {
                    code: ErrorCode::WindowExpired,
                    message: "the session window expired".into(),
                }),
            ),
        };
        Ok(finish(ctx, status, error))
    }

    /// The contact replied (signalled by the session window this conversation sent through).
    #[signal(name = names::SIGNAL_CONTACT_REPLIED)]
    pub fn contact_replied(
        &mut self,
        ctx: &mut SyncWorkflowContext<Self>,
        message: InboundMessage,
    ) {
        let at = message.sent_at.or_else(|| ctx.workflow_time().map(Timestamp::from_system_time));
        if self.view.messages.iter().any(|m| m.message_id == message.message_id) {
            return;
        }
        let channel = message.channel().filter(|c| *c != self.input.channel);
        self.reply_channel = channel;
        let begun = self.timeline.begin();
        self.timeline.place(
            &mut self.view.messages,
            begun,
            ConversationMessage {
                message_id: message.message_id,
                direction: Direction::Inbound,
                text: message.text,
                at,
                channel,
            },
        );
        if self.view.status == ConversationStatus::AwaitingReply {
            self.view.status = ConversationStatus::Active;
        }
    }

    /// The session's window closed.
    #[signal(name = names::SIGNAL_WINDOW_CLOSED)]
    pub fn window_closed(&mut self, _ctx: &mut SyncWorkflowContext<Self>, closed: WindowClosed) {
        if matches!(
            self.view.status,
            ConversationStatus::Active | ConversationStatus::AwaitingReply
        ) {
            self.window_closed = Some(closed.reason);
        }
    }

    /// Only an open conversation takes replies.
    #[update_validator(reply)]
    pub fn validate_reply(
        &self,
        _ctx: &WorkflowContextView,
        reply: &AgentReply,
    ) -> Result<(), HandlerError> {
        if reply.text.trim().is_empty() {
            return Err(Box::new(SendError {
                code: ErrorCode::ValidationFailed,
                message: "text must not be empty".into(),
            }));
        }
        self.open_for_replies()
    }

    /// An agent's reply, through the window's gate (a human agent's reply is tagged as such, so
    /// channels with a human-agent allowance apply it).
    #[update(name = names::UPDATE_REPLY)]
    pub async fn reply(
        ctx: &mut WorkflowContext<Self>,
        reply: AgentReply,
    ) -> Result<SendReceipt, HandlerError> {
        let (input, contact, sender) = ctx.state(|s| {
            let sender = match s.view.assignee {
                Assignee::Human { .. } => Sender::HumanAgent,
                Assignee::Bot { .. } => Sender::Automated,
            };
            (s.input.clone(), s.view.contact_id.clone(), sender)
        });
        let contact = contact.ok_or("no contact resolved yet")?;
        let subject = (input.channel == Channel::Email)
            .then(|| input.first_message.subject.clone())
            .flatten();
        let (kind, shown) = match &reply.rich {
            Some(rich) => (SendKind::Rich { rich: rich.clone(), sender }, rich.plain()),
            None => (
                SendKind::Freeform { text: reply.text.clone(), subject, sender },
                reply.text.clone(),
            ),
        };
        let begun = ctx.state_mut(|s| {
            s.replies_in_flight += 1;
            s.timeline.begin()
        });
        let sent = session_send(ctx, &input, &contact, reply.message_id.clone(), kind).await;
        let at = ctx.workflow_time().map(Timestamp::from_system_time);
        ctx.state_mut(|s| {
            s.replies_in_flight -= 1;
            if let Ok((receipt, channel)) = &sent {
                s.record_outbound(begun, receipt, &shown, at, *channel);
            }
        });
        Ok(sent?.0)
    }

    /// A human takes over from a bot.
    #[update_validator(take_over)]
    pub fn validate_take_over(
        &self,
        _ctx: &WorkflowContextView,
        t: &TakeOver,
    ) -> Result<(), HandlerError> {
        if t.agent_id.trim().is_empty() {
            return Err(Box::new(SendError {
                code: ErrorCode::ValidationFailed,
                message: "agent_id must not be empty".into(),
            }));
        }
        self.open_for_replies()
    }

    /// A human takes over: later replies are sent as a human agent's.
    #[update(name = names::UPDATE_TAKE_OVER)]
    pub fn take_over(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        t: TakeOver,
    ) -> ConversationView {
        self.view.assignee = Assignee::Human { id: t.agent_id };
        self.view.clone()
    }

    /// Resolving is allowed once per conversation, while it is open.
    #[update_validator(resolve)]
    pub fn validate_resolve(
        &self,
        _ctx: &WorkflowContextView,
        _r: &Resolve,
    ) -> Result<(), HandlerError> {
        if self.resolve_requested.is_some() {
            return Ok(());
        }
        self.open_for_replies()
    }

    /// Resolves the conversation (and, by default, closes the contact's window).
    #[update(name = names::UPDATE_RESOLVE)]
    pub fn resolve(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        r: Resolve,
    ) -> ConversationStatus {
        self.resolve_requested.get_or_insert(r);
        self.view.status
    }

    /// Status, messages and assignee.
    #[query(name = names::QUERY_CONVERSATION)]
    pub fn conversation(&self, _ctx: &WorkflowContextView) -> ConversationView {
        self.view.clone()
    }

    /// What the run waits for, for `temporal workflow stack` and the UI's "Call Stack" tab
    /// (the Rust SDK has no coroutine stack to dump; this is the workflow's own account).
    #[query(name = "__stack_trace")]
    pub fn stack_trace(&self, ctx: &WorkflowContextView) -> String {
        let waiting = match self.view.status {
            ConversationStatus::Pending => {
                "resolving the contact or sending the first message (see pending activities)"
            }
            ConversationStatus::AwaitingReply => {
                "the contact's reply, the reply timeout, a resolve or the window closing"
            }
            ConversationStatus::Active if self.replies_in_flight > 0 => {
                "replies in flight (activity session_send), then a resolve or the window closing"
            }
            ConversationStatus::Active => "a resolve or the window closing",
            _ if self.resolve_requested.is_some() => "closing the contact's window",
            _ => "nothing: the conversation has ended",
        };
        format!(
            "{OUTBOUND_CONVERSATION_WORKFLOW} {}\nwaiting for: {waiting}\n{}",
            ctx.workflow_id(),
            self.details()
        )
    }
}

impl OutboundConversationWorkflow {
    /// The UI's "Current Details", in Markdown.
    fn details(&self) -> String {
        let v = &self.view;
        let contact = match &v.contact_id {
            Some(id) => ops::contact_label(id, self.card.as_ref()),
            None => "a contact not resolved yet".to_owned(),
        };
        let mut out = format!(
            "**{}** {} conversation with {contact}\n\n",
            ops::status_name(v.status),
            ops::channel_title(self.input.channel)
        );
        let who = match &v.assignee {
            Assignee::Human { id } => format!("human agent `{id}`"),
            Assignee::Bot { id } => format!("bot `{id}`"),
        };
        out.push_str(&format!("- handled by {who}\n"));
        let (sent, received) = v.messages.iter().fold((0, 0), |(o, i), m| match m.direction {
            Direction::Outbound => (o + 1, i),
            Direction::Inbound => (o, i + 1),
        });
        out.push_str(&format!("- messages: {sent} sent, {received} received\n"));
        if self.replies_in_flight > 0 {
            out.push_str(&format!("- replies in flight: {}\n", self.replies_in_flight));
        }
        if let Some(e) = &v.error {
            out.push_str(&format!("- ended: `{}` {}\n", e.code, e.message));
        }
        out
    }

    /// The search attributes and memo this run should show now.
    fn publication(&mut self) -> ops::Publication {
        let wanted = ops::conversation_attributes(
            &self.input.workspace_id,
            self.view.contact_id.as_deref(),
            self.card.as_ref(),
            self.input.channel,
            self.view.status,
        );
        let session = self
            .view
            .contact_id
            .as_deref()
            .map(|c| session_workflow_id(&self.input.workspace_id, c));
        let memo = [(ops::memo::SESSION, session)];
        self.published.diff(&wanted, &memo)
    }

    fn open_for_replies(&self) -> Result<(), HandlerError> {
        match self.view.status {
            ConversationStatus::AwaitingReply | ConversationStatus::Active
                if self.resolve_requested.is_none() && self.window_closed.is_none() =>
            {
                Ok(())
            }
            status => Err(Box::new(SendError {
                code: ErrorCode::ConversationClosed,
                message: format!("the conversation is {status:?}").to_lowercase(),
            })),
        }
    }

    /// An outbound message, on the channel it went out on: a reply that arrives on another
    /// channel while it is in flight moves the conversation, not the message already sent.
    /// A sent message, placed where its send began (a reply that arrived meanwhile comes
    /// after it) and timed when the session handed it to the provider (`now` for answers
    /// recorded before receipts carried that).
    fn record_outbound(
        &mut self,
        begun: u64,
        receipt: &SendReceipt,
        text: &str,
        now: Option<Timestamp>,
        channel: Channel,
    ) {
        let message = ConversationMessage {
            message_id: receipt.message_id.clone(),
            direction: Direction::Outbound,
            text: text.to_owned(),
            at: receipt.accepted_at.or(now),
            channel: Some(channel),
        };
        self.timeline.place(&mut self.view.messages, begun, message);
    }
}

/// Compose input checks that need no I/O; each names the field.
fn check_compose(input: &ComposeInput) -> Result<(), SendError> {
    let invalid = |message: &str| {
        Err(SendError { code: ErrorCode::ValidationFailed, message: message.into() })
    };
    let first = &input.first_message;
    if first.text.as_deref().is_none_or(|t| t.trim().is_empty())
        && first.template.as_deref().is_none_or(|t| t.trim().is_empty())
    {
        return invalid("first_message: give text, a template, or both");
    }
    if input.channel == Channel::Email
        && first.text.is_some()
        && first.subject.as_deref().is_none_or(|s| s.trim().is_empty())
    {
        return invalid("first_message.subject is required on email");
    }
    Ok(())
}

/// The first message: free-form if the window (or an ungated channel) allows it, else the
/// template. A refusal other than `no_active_session` is final.
async fn send_first(
    ctx: &WorkflowContext<OutboundConversationWorkflow>,
    input: &ComposeInput,
    contact: &str,
) -> Result<(), SendError> {
    let first = &input.first_message;
    let sender = match input.assignee {
        Assignee::Human { .. } => Sender::HumanAgent,
        Assignee::Bot { .. } => Sender::Automated,
    };
    let base_id = format!("{}-first", input.conversation_id);
    let begun = ctx.state_mut(|s| s.timeline.begin());
    if let Some(text) = &first.text {
        let kind =
            SendKind::Freeform { text: text.clone(), subject: first.subject.clone(), sender };
        match session_send(ctx, input, contact, base_id.clone(), kind).await {
            Ok((receipt, channel)) => {
                let at = ctx.workflow_time().map(Timestamp::from_system_time);
                ctx.state_mut(|s| s.record_outbound(begun, &receipt, text, at, channel));
                return Ok(());
            }
            Err(e) if e.code == "no_active_session" && first.template.is_some() => {}
            Err(e) => return Err(e),
        }
    }
    let Some(template) = &first.template else {
        return Err(SendError {
            code: ErrorCode::NoActiveSession,
            message: "no window is open and the compose has no template".into(),
        });
    };
    let kind = SendKind::Template {
        template: template.clone(),
        message_type: MessageType::Message,
        params: Box::new(first.template_params.clone()),
    };
    let (receipt, channel) =
        session_send(ctx, input, contact, format!("{base_id}-template"), kind).await?;
    let at = ctx.workflow_time().map(Timestamp::from_system_time);
    let shown = format!("template:{template}");
    ctx.state_mut(|s| s.record_outbound(begun, &receipt, &shown, at, channel));
    Ok(())
}

async fn session_send(
    ctx: &WorkflowContext<OutboundConversationWorkflow>,
    input: &ComposeInput,
    contact: &str,
    message_id: String,
    kind: SendKind,
) -> Result<(SendReceipt, Channel), SendError> {
    // Where the contact's latest reply came from: their session follows them there.
    let channel = ctx.state(|s| s.reply_channel).unwrap_or(input.channel);
    let send = SessionSendInput {
        workspace_id: input.workspace_id.clone(),
        contact_id: contact.to_owned(),
        channel,
        request: SendRequest {
            message_id,
            channel,
            kind,
            conversation_id: Some(input.conversation_id.clone()),
            // The person the conversation is assigned to writes it (the message log and the
            // webhooks name them).
            agent_id: ctx.state(|s| match &s.view.assignee {
                Assignee::Human { id } => Some(id.clone()),
                Assignee::Bot { .. } => None,
            }),
            traffic_type: input.traffic_type,
        },
    };
    let summary = format!("send {} through the session", send.request.message_id);
    match ctx
        .execute_activity(ConversationActivities::session_send, send, send_options(summary))
        .await
    {
        Ok(SessionSendOutcome::Sent(receipt)) => Ok((receipt, channel)),
        Ok(SessionSendOutcome::Refused(e)) => Err(e),
        Err(e) => Err(SendError { code: ErrorCode::ProviderRejected, message: reason(&e) }),
    }
}

fn finish(
    ctx: &WorkflowContext<OutboundConversationWorkflow>,
    status: ConversationStatus,
    error: Option<SendError>,
) -> ConversationView {
    let view = ctx.state_mut(|s| {
        s.view.status = status;
        s.view.error = error;
        s.view.clone()
    });
    publish(ctx);
    view
}

/// Brings the run's search attributes, memo and current details up to date.
fn publish(ctx: &WorkflowContext<OutboundConversationWorkflow>) {
    crate::publish::publish(
        ctx,
        OutboundConversationWorkflow::details,
        OutboundConversationWorkflow::publication,
    );
}

fn reason(e: &temporalio_workflow::ActivityExecutionError) -> String {
    let mut message = e.to_string();
    let mut failure = e.failure();
    while let Some(f) = failure {
        message = f.message.clone();
        failure = f.cause.as_deref();
    }
    message
}

/// The stable code an activity failed with: its application failure's type when that names a
/// code, else `unavailable` (a timeout, or retries exhausted on an outage).
fn failure_code(e: &temporalio_workflow::ActivityExecutionError) -> ErrorCode {
    let mut code = None;
    let mut failure = e.failure();
    while let Some(f) = failure {
        if let Some(FailureInfo::ApplicationFailureInfo(info)) = &f.failure_info {
            code = ErrorCode::parse(&info.r#type).or(code);
        }
        failure = f.cause.as_deref();
    }
    code.unwrap_or(ErrorCode::Unavailable)
}

fn quick_options(summary: &str) -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: Duration::from_secs(3600),
        start_to_close: Duration::from_secs(30),
    })
    .retry_policy(
        RetryPolicy::builder()
            .initial_interval(Duration::from_secs(1))
            .backoff_coefficient(2.0)
            .maximum_interval(Duration::from_secs(60))
            .non_retryable_error_types([error_types::VALIDATION_FAILED, error_types::NOT_FOUND])
            .build(),
    )
    .summary(summary.to_owned())
    .build()
}

/// A session send can wait on a provider outage (the session's own send activity retries for
/// up to six hours), so this activity is long and retried only on infrastructure failures;
/// the update id is the message id, so a retry attaches to the same send.
fn send_options(summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(7 * 3600))
        .heartbeat_timeout(Duration::from_secs(120))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(60))
                .maximum_attempts(20)
                .non_retryable_error_types([error_types::VALIDATION_FAILED, error_types::NOT_FOUND])
                .build(),
        )
        .summary(summary)
        .build()
}
