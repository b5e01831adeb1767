//! Names and shapes shared by the workflows, the activities, the worker and the API.
//!
//! # Why the activity contracts live here
//! Activities are declared with `#[activity_definitions]` in this crate and implemented in
//! `convo-activities` with `#[activity(definition = convo_workflows::contracts::PlaceHold)]`.
//! That keeps the dependency arrow pointing from adapters to workflows (workflows never link
//! HTTP clients, databases or secrets), and the macro checks the implementation's name, input
//! and output types against the definition **at compile time**.
//!
//! The macro puts its marker structs in a private module named after the type
//! (`SessionActivities` → `session_activities`), so each marker is re-exported below; without
//! that, no other crate could name it in `definition = ..`.

use convo_domain::{
    Balance, Channel, Consent, ErrorCode, HoldId, MessageId, MessageType, Money, Sender, Timestamp,
    window::{Config, OutboundMessage, State, TemplateParams, Webhook},
};
use serde::{Deserialize, Serialize};
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

/// The task queue convo's worker polls.
pub const TASK_QUEUE: &str = "convo";

/// The task queue of the session window's activities (holds, provider sends, consent,
/// webhooks), polled by a worker of its own.
///
/// They must never share activity slots with activities that wait on workflows (the
/// conversation's `session_send` waits for a session's update, which needs these): with one
/// pool, enough waiting `session_send`s take every slot and the sessions they wait on can no
/// longer run theirs.
pub fn io_task_queue(task_queue: &str) -> String {
    format!("{task_queue}.io")
}

/// Workflow type of [`crate::SessionWindowWorkflow`].
pub const SESSION_WINDOW_WORKFLOW: &str = "SessionWindowWorkflow";
/// Workflow type of [`crate::OutboundConversationWorkflow`].
pub const OUTBOUND_CONVERSATION_WORKFLOW: &str = "OutboundConversationWorkflow";

/// The one `SessionWindowWorkflow` per workspace and contact: `session/{workspace}/{contact}`.
///
/// Using it as the workflow id makes Temporal enforce "at most one session per contact".
pub fn session_workflow_id(workspace_id: &str, contact_id: &str) -> String {
    format!("session/{workspace_id}/{contact_id}")
}

/// The `OutboundConversationWorkflow` of a composed conversation: `conversation/{id}`.
pub fn conversation_workflow_id(conversation_id: &str) -> String {
    format!("conversation/{conversation_id}")
}

/// Signal, update and query names. They are part of the wire contract with running workflows:
/// renaming one breaks every open session.
pub mod names {
    /// Session signal: the contact sent a message.
    pub const SIGNAL_INBOUND: &str = "inbound";
    /// Session signal: close the window now (`EXPLICIT`, idempotent).
    pub const SIGNAL_CLOSE: &str = "close";
    /// Session signal: the contact's consent changed outside this session.
    pub const SIGNAL_CONSENT: &str = "consent_changed";
    /// A provider send failed and Temporal retries it (sent by the `send_message` activity).
    pub const SIGNAL_SEND_TROUBLE: &str = "send_trouble";
    /// Session update: a business send through the window's gate.
    pub const UPDATE_SEND: &str = "send";
    /// Session query: the full window state.
    pub const QUERY_STATE: &str = "state";

    /// Conversation signal: the contact replied (sent by the session).
    pub const SIGNAL_CONTACT_REPLIED: &str = "contact_replied";
    /// Conversation signal: the session's window closed (sent by the session).
    pub const SIGNAL_WINDOW_CLOSED: &str = "window_closed";
    /// Conversation update: an agent's reply, through the window's gate.
    pub const UPDATE_REPLY: &str = "reply";
    /// Conversation update: a human takes over from a bot.
    pub const UPDATE_TAKE_OVER: &str = "take_over";
    /// Conversation update: the conversation is resolved.
    pub const UPDATE_RESOLVE: &str = "resolve";
    /// Conversation query: status, messages and assignee.
    pub const QUERY_CONVERSATION: &str = "conversation";
}

/// `ApplicationFailure` type names. Workflows, retry policies and the API match on these
/// stable strings, never on messages.
pub mod error_types {
    use convo_domain::ErrorCode;

    /// Bad activity input; retrying cannot help.
    pub const VALIDATION_FAILED: &str = ErrorCode::ValidationFailed.as_str();
    /// The referenced record does not exist.
    pub const NOT_FOUND: &str = ErrorCode::NotFound.as_str();
    /// The workspace has no configured provider for the channel.
    pub const CHANNEL_NOT_CONFIGURED: &str = ErrorCode::ChannelNotConfigured.as_str();
    /// The provider refused the message for good.
    pub const PROVIDER_REJECTED: &str = ErrorCode::ProviderRejected.as_str();
}

// ---- session window ------------------------------------------------------------------------

/// Input of [`crate::SessionWindowWorkflow`]: everything it needs that does not change while a
/// run lives, plus the carried state when it continues as new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInput {
    /// The workspace.
    pub workspace_id: String,
    /// The contact.
    pub contact_id: String,
    /// The channel's configuration, resolved from the workspace's settings when the session
    /// started.
    pub config: Config,
    /// The contact's consent as the store had it when the session started.
    pub consent: Consent,
    /// Who the contact is, for the operators' view (search attributes, memo, summaries);
    /// `None` in inputs recorded before it existed.
    #[serde(default)]
    pub contact: Option<ContactCard>,
    /// Set by continue-as-new: the session's id (webhook ids derive from it), its state and
    /// its linked conversation. `None` for a fresh session.
    pub carried: Option<Carried>,
}

/// A contact as operators find it: the address on the session's channel and the name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactCard {
    /// E.164 for phone channels, the e-mail address for e-mail.
    pub address: Option<String>,
    /// The display name, if known.
    pub name: Option<String>,
}

/// What one run hands the next when it continues as new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// The session id, chosen by the first run; stable across continue-as-new.
    pub session_id: String,
    /// The domain state, timers included.
    pub state: State,
    /// The outbound conversation the session reports replies to.
    pub linked_conversation: Option<String>,
    /// Runs so far, including this one.
    pub runs: u32,
    /// Ids of the latest inbound messages, so a provider's retry is not counted twice.
    #[serde(default)]
    pub recent_inbound: Vec<String>,
    /// Answers of the latest sends, so a retried send gets its first answer.
    #[serde(default)]
    pub answers: Vec<(String, Result<SendReceipt, SendError>)>,
}

/// Payload of the `inbound` signal: a message from the contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The provider's id of the message.
    pub message_id: String,
    /// Its text. Compliance keywords match the whole trimmed text.
    pub text: String,
    /// When the contact sent it, per the provider.
    pub sent_at: Option<Timestamp>,
    /// The outbound conversation this message answers, if the inbound path found one (the
    /// latest composed conversation still waiting on this contact). The session links to it
    /// and reports replies and its close to it.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// The channel it arrived on, with the workspace's configuration for it and the contact as
    /// reached there: a session on another channel follows the contact to this one (absent in
    /// messages recorded before sessions followed the contact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Box<InboundChannel>>,
}

/// The channel an inbound message arrived on (see [`InboundMessage::channel`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundChannel {
    /// The workspace's configuration of the channel (its policy, rates, texts).
    pub config: convo_domain::window::Config,
    /// The contact as operators find it on this channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<ContactCard>,
}

impl InboundMessage {
    /// The channel it arrived on, when it says.
    pub fn channel(&self) -> Option<Channel> {
        self.channel.as_ref().map(|c| c.config.channel)
    }
}

/// What a business send asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SendKind {
    /// Free-form text: only inside an open window on gated channels.
    Freeform {
        /// The text.
        text: String,
        /// Subject line (e-mail).
        subject: Option<String>,
        /// Who writes it.
        #[serde(default)]
        sender: Sender,
    },
    /// RCS rich content (text with suggestions, a rich card, a carousel): free-form, so gated
    /// like text, and RCS only.
    Rich {
        /// What to send, already held to RBM's limits by the API.
        rich: Box<convo_domain::rich::Rich>,
        /// Who writes it.
        #[serde(default)]
        sender: Sender,
    },
    /// An approved template: allowed with no window open.
    Template {
        /// The template's name.
        template: String,
        /// `MESSAGE` or `NEWSLETTER`.
        message_type: MessageType,
        /// Its placeholders' values, checked against the registry (absent in sends recorded
        /// before templates carried values).
        #[serde(default, skip_serializing_if = "TemplateParams::is_empty")]
        params: Box<TemplateParams>,
    },
}

/// Input of the session's `send` update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRequest {
    /// The caller's idempotency key; also the provider idempotency key and the update id.
    pub message_id: String,
    /// The channel the caller means to send on. A session runs on one channel at a time (the
    /// one its window opened on); a send for another channel is refused `channel_mismatch`
    /// rather than carried on the wrong one.
    pub channel: Channel,
    /// What to send.
    pub kind: SendKind,
    /// The outbound conversation this send belongs to, which the session then reports replies
    /// to.
    pub conversation_id: Option<String>,
    /// The human agent who wrote it (a conversation assigned to a person), for the message log
    /// and the webhooks; absent for automated sends and in requests recorded before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The caller's regulatory classification, checked against the channel's approved use
    /// case before the update; the provider gets it (RBM's `messageTrafficType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_type: Option<convo_domain::TrafficType>,
}

impl SendRequest {
    /// The domain event this send is.
    pub fn event(&self) -> convo_domain::window::Event {
        use convo_domain::window::Event;
        let message_id = convo_domain::MessageId::new(self.message_id.clone());
        match &self.kind {
            SendKind::Freeform { text, subject, sender } => Event::FreeformSendRequested {
                message_id,
                text: text.clone(),
                subject: subject.clone(),
                sender: *sender,
            },
            SendKind::Rich { rich, sender } => {
                Event::RichSendRequested { message_id, rich: rich.clone(), sender: *sender }
            }
            SendKind::Template { template, message_type, params } => Event::TemplateSendRequested {
                message_id,
                template: template.clone(),
                message_type: *message_type,
                params: params.clone(),
            },
        }
    }
}

/// Answer of the session's `send` update for a message the provider accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReceipt {
    /// The message.
    pub message_id: String,
    /// The provider's id for it.
    pub provider_message_id: String,
    /// Until when free-form is allowed, if a window is open.
    pub conversation_expires_at: Option<Timestamp>,
    /// The billing block.
    pub billing: convo_domain::BillingBlock,
    /// When the session handed it to the provider, on the workflow clock (the clock of
    /// `conversation_expires_at`); absent in answers recorded before it was carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<Timestamp>,
}

/// The error of a refused or failed send, carried as the update's failure message
/// `"{code}: {message}"` so every client can read the stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SendError {
    /// Stable code: `no_active_session`, `contact_opted_out`, `insufficient_balance`,
    /// `validation_failed`, `provider_rejected`, `session_closing`, ...
    pub code: ErrorCode,
    /// What happened.
    pub message: String,
}

impl SendError {
    /// Parses a failure message written by [`SendError`]'s `Display`: `None` unless it starts
    /// with a known code.
    pub fn parse(message: &str) -> Option<SendError> {
        let (code, rest) = message.split_once(": ")?;
        Some(SendError { code: ErrorCode::parse(code)?, message: rest.to_owned() })
    }
}

/// Answer of the session's `state` query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// The session id (stable across continue-as-new).
    pub session_id: String,
    /// The workspace.
    pub workspace_id: String,
    /// The contact.
    pub contact_id: String,
    /// Both clocks and the rest of the domain state.
    #[serde(flatten)]
    pub window: convo_domain::window::View,
    /// The linked outbound conversation.
    pub linked_conversation: Option<String>,
    /// Runs of this session so far (continue-as-new).
    pub runs: u32,
    /// Sends the session answered, with their outcome, newest last.
    pub sends: Vec<SendRecord>,
}

/// One business send as the session saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRecord {
    /// The message.
    pub message_id: String,
    /// `accepted`, `rejected` or the refusal's code.
    pub outcome: String,
}

/// Result of [`crate::SessionWindowWorkflow`]: how its last window ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// The session id.
    pub session_id: String,
    /// Why the last window closed; `None` if the run only carried sends with no window.
    pub close_reason: Option<convo_domain::CloseReason>,
    /// Windows opened in this session.
    pub conversations: u32,
}

/// Input of [`SessionActivities::place_hold`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRequest {
    /// The workspace whose balance is held.
    pub workspace_id: String,
    /// The hold (idempotency key in the ledger).
    pub hold_id: HoldId,
    /// How much.
    pub amount: Money,
}

/// Output of [`SessionActivities::place_hold`]: a refusal is an answer, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldAnswer {
    /// Whether the hold was placed.
    pub placed: bool,
    /// The balance after the attempt.
    pub balance: Balance,
}

/// Input of [`SessionActivities::resolve_hold`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldResolution {
    /// The workspace.
    pub workspace_id: String,
    /// The hold.
    pub hold_id: HoldId,
    /// Charge it (`true`) or release it.
    pub charge: bool,
}

/// Input of [`SessionActivities::send_message`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSend {
    /// The workspace (its channel configuration names the provider).
    pub workspace_id: String,
    /// The recipient.
    pub contact_id: String,
    /// The channel.
    pub channel: Channel,
    /// The message; its id is the provider idempotency key.
    pub message: OutboundMessage,
    /// The outbound conversation it belongs to, for the message log.
    pub conversation_id: Option<String>,
    /// The human agent who wrote it, for the message log (see [`SendRequest::agent_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Its regulatory classification (see [`SendRequest::traffic_type`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_type: Option<convo_domain::TrafficType>,
}

/// Output of [`SessionActivities::send_message`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSent {
    /// The provider's id for the message.
    pub provider_message_id: String,
}

/// Payload of the session's `send_trouble` signal: a provider send failed in a way Temporal
/// retries (an outage, a 429, a 5xx). The session shows it to operators until the send is
/// answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendTrouble {
    /// The message.
    pub message_id: String,
    /// The attempt that failed (1 for the first).
    pub attempt: u32,
    /// The failure, as the provider adapter put it.
    pub error: String,
}

/// Input of [`SessionActivities::record_consent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// The workspace.
    pub workspace_id: String,
    /// The contact.
    pub contact_id: String,
    /// The new consent (every channel of the workspace).
    pub consent: Consent,
    /// The keyword message that changed it.
    pub message_id: MessageId,
}

/// Output of [`SessionActivities::record_consent`]: what the store now holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecorded {
    /// The contact.
    pub contact_id: String,
    /// The consent recorded.
    pub consent: Consent,
}

/// Output of [`SessionActivities::emit_webhook`]: the event and its deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookQueued {
    /// The event id (the same for every retry of the same logical event).
    pub event_id: String,
    /// `conversation.started`, ….
    pub event_type: String,
    /// One delivery per matching endpoint (none when the workspace has no endpoint for it).
    pub deliveries: Vec<String>,
}

/// Input of [`SessionActivities::emit_webhook`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEmit {
    /// The workspace whose endpoints receive it.
    pub workspace_id: String,
    /// The contact.
    pub contact_id: String,
    /// The session (the first run of its chain: the same across continue-as-new, retries and
    /// resets); with the event's logical identity it makes the event id.
    pub session_id: String,
    /// The event.
    pub webhook: Webhook,
    /// Event ids name the logical event ([`WebhookEmit::event_id`]). `false` (the default, for
    /// inputs recorded before this field existed) keeps the old per-session sequence ids, so
    /// an activity retried across an upgrade enqueues under the id it had.
    #[serde(default)]
    pub logical_ids: bool,
    /// When the session emitted it, on the workflow clock: the envelope's `timestamp`, so it
    /// agrees with the window's times (absent in inputs recorded before it was carried: the
    /// activity then uses the event's own time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<Timestamp>,
    /// The outbound conversation the session is linked to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_conversation: Option<String>,
    /// The session's channel (absent in inputs recorded before it was carried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
}

impl WebhookEmit {
    /// The same for every attempt of the activity, every replay, and every re-execution of the
    /// same logical event after a reset:
    /// - `evt_{session}_c{n}_started` and `evt_{session}_c{n}_ended` for the session's `n`th
    ///   window;
    /// - `evt_{session}_m_{message}_{direction}` for a message.
    ///
    /// A sequence number would not do: a reset re-runs the session from a chosen point, where
    /// updates are not re-applied, so the same event can come later in the sequence.
    pub fn event_id(&self) -> String {
        let session = &self.session_id;
        if !self.logical_ids {
            let seq = match &self.webhook {
                Webhook::ConversationStarted { seq, .. }
                | Webhook::MessageExchanged { seq, .. }
                | Webhook::ConversationEnded { seq, .. } => *seq,
            };
            return format!("evt_{session}_{seq}");
        }
        match &self.webhook {
            Webhook::ConversationStarted { conversation, .. } => {
                format!("evt_{session}_c{conversation}_started")
            }
            Webhook::ConversationEnded { conversation, .. } => {
                format!("evt_{session}_c{conversation}_ended")
            }
            Webhook::MessageExchanged { message_id, direction, .. } => {
                let direction = match direction {
                    convo_domain::Direction::Inbound => "in",
                    convo_domain::Direction::Outbound => "out",
                };
                format!("evt_{session}_m_{}_{direction}", message_id.as_str())
            }
        }
    }

    /// The Standard Webhooks event type: `conversation.started` and so on.
    pub fn event_type(&self) -> &'static str {
        match &self.webhook {
            Webhook::ConversationStarted { .. } => "conversation.started",
            Webhook::MessageExchanged { .. } => "conversation.message_exchanged",
            Webhook::ConversationEnded { .. } => "conversation.ended",
        }
    }
}

/// Activity contracts of the session-window workflow.
pub struct SessionActivities;

#[activity_definitions]
impl SessionActivities {
    /// Reserves `amount` of the workspace's free balance; a refusal is `placed: false`.
    #[activity(name = "place_hold")]
    pub async fn place_hold(input: HoldRequest) -> Result<HoldAnswer, ActivityError> {
        unimplemented!()
    }

    /// Charges or releases an open hold (idempotent).
    #[activity(name = "resolve_hold")]
    pub async fn resolve_hold(input: HoldResolution) -> Result<Balance, ActivityError> {
        unimplemented!()
    }

    /// Hands a message to the channel's provider. Permanent refusals are non-retryable
    /// failures typed with the provider's error class.
    #[activity(name = "send_message")]
    pub async fn send_message(input: ProviderSend) -> Result<ProviderSent, ActivityError> {
        unimplemented!()
    }

    /// Persists the contact's consent for the workspace. (`None` is how results recorded
    /// before the answer existed read: the unit value.)
    #[activity(name = "record_consent")]
    pub async fn record_consent(
        input: ConsentRecord,
    ) -> Result<Option<ConsentRecorded>, ActivityError> {
        unimplemented!()
    }

    /// Queues a signed webhook for delivery to the workspace's endpoints (idempotent on the
    /// event id).
    #[activity(name = "emit_webhook")]
    pub async fn emit_webhook(input: WebhookEmit) -> Result<Option<WebhookQueued>, ActivityError> {
        unimplemented!()
    }
}

pub use session_activities::{EmitWebhook, PlaceHold, RecordConsent, ResolveHold, SendMessage};

// ---- outbound conversation -----------------------------------------------------------------

/// Who a composed conversation goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum ContactTarget {
    /// An existing contact.
    Id {
        /// Its id.
        contact_id: String,
    },
    /// Find or create by phone (E.164).
    Phone {
        /// The number.
        phone: String,
        /// The name, for a new contact.
        name: Option<String>,
    },
    /// Find or create by e-mail address.
    Email {
        /// The address.
        email: String,
        /// The name, for a new contact.
        name: Option<String>,
    },
}

/// The first message of a composed conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstMessage {
    /// Free-form text, sent if a window is open (or the channel is not gated).
    pub text: Option<String>,
    /// Subject line; required on e-mail.
    pub subject: Option<String>,
    /// Template to send when free-form is not allowed. Without one, a gated channel with no
    /// window fails the compose with `no_active_session`: never silently downgraded.
    pub template: Option<String>,
    /// The template's values (absent in composes recorded before templates carried values).
    #[serde(default, skip_serializing_if = "TemplateParams::is_empty")]
    pub template_params: TemplateParams,
}

/// Who handles the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Assignee {
    /// A bot or automation.
    Bot {
        /// Its id.
        id: String,
    },
    /// A person.
    Human {
        /// Their id.
        id: String,
    },
}

/// Input of [`crate::OutboundConversationWorkflow`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeInput {
    /// The conversation's id (the workflow id is `conversation/{id}`).
    pub conversation_id: String,
    /// The workspace.
    pub workspace_id: String,
    /// The channel.
    pub channel: Channel,
    /// The recipient.
    pub to: ContactTarget,
    /// The first message.
    pub first_message: FirstMessage,
    /// How long to wait for the contact's reply.
    pub reply_timeout_secs: u64,
    /// Who writes (a campaign's bot, or an agent).
    pub assignee: Assignee,
    /// The regulatory classification of its every send (RBM's `messageTrafficType`), checked
    /// against the channel's approved use case before the conversation starts; absent in
    /// conversations started before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_type: Option<convo_domain::TrafficType>,
}

/// Lifecycle of a composed conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Resolving the contact, checking consent, sending the first message.
    Pending,
    /// The first message went out; waiting for the contact.
    AwaitingReply,
    /// The contact replied.
    Active,
    /// Resolved by an agent.
    Resolved,
    /// No reply in time, or the window expired.
    Expired,
    /// Could not be carried out (see `error`).
    Failed,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationMessage {
    /// The message id.
    pub message_id: String,
    /// `inbound` or `outbound`.
    pub direction: convo_domain::Direction,
    /// The text, or the template's name.
    pub text: String,
    /// When (workflow time).
    pub at: Option<Timestamp>,
    /// The channel it went or came on, when it is not the conversation's own (the contact
    /// moved; absent otherwise and in views recorded before sessions followed the contact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
}

/// Answer of the conversation's query and result of the workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationView {
    /// The conversation id.
    pub conversation_id: String,
    /// The status.
    pub status: ConversationStatus,
    /// The resolved contact.
    pub contact_id: Option<String>,
    /// Whether the contact was created by this compose.
    pub contact_created: bool,
    /// The messages, oldest first.
    pub messages: Vec<ConversationMessage>,
    /// Who handles it.
    pub assignee: Assignee,
    /// Why it failed or ended, as a stable code.
    pub error: Option<SendError>,
}

/// Where messages go in a conversation's view: in the order they began (an inbound when it
/// arrived, an outbound when its send started), whatever order they finish in. A reply that
/// arrives while a send is in flight, even in the workflow task that carries the send's
/// result (sdk-core hands a signal over before an activity result), comes after that send.
/// Provider timestamps cannot order them: WhatsApp's are whole seconds.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// When each placed message began, in view order.
    begun: Vec<u64>,
    next: u64,
}

impl Timeline {
    /// A message begins now: its place among the others.
    pub fn begin(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// Adds `message`, which began at `begun`, to `messages` (kept by this timeline alone).
    pub fn place(
        &mut self,
        messages: &mut Vec<ConversationMessage>,
        begun: u64,
        message: ConversationMessage,
    ) {
        let at = self.begun.partition_point(|b| *b <= begun).min(messages.len());
        self.begun.insert(at, begun);
        messages.insert(at, message);
    }
}

/// Input of the conversation's `reply` update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReply {
    /// Idempotency key of the reply.
    pub message_id: String,
    /// The text.
    pub text: String,
    /// RCS rich content to send instead of plain `text` (its text with suggestions), already
    /// held to RBM's limits; absent for plain replies and in replies recorded before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rich: Option<Box<convo_domain::rich::Rich>>,
}

/// Input of the conversation's `take_over` update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeOver {
    /// The human agent taking over.
    pub agent_id: String,
}

/// Input of the conversation's `resolve` update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolve {
    /// Also close the contact's window now (`EXPLICIT`), settling its billing.
    #[serde(default = "yes")]
    pub close_window: bool,
}

const fn yes() -> bool {
    true
}

/// Payload of the conversation's `window_closed` signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowClosed {
    /// Why.
    pub reason: convo_domain::CloseReason,
}

/// Input of [`ConversationActivities::resolve_contact`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveContactInput {
    /// The workspace.
    pub workspace_id: String,
    /// Who.
    pub target: ContactTarget,
    /// The conversation's channel: which of the contact's addresses the answer names
    /// (absent in inputs recorded before it existed).
    #[serde(default)]
    pub channel: Option<Channel>,
}

/// Output of [`ConversationActivities::resolve_contact`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedContact {
    /// The contact's id.
    pub contact_id: String,
    /// Created by this call.
    pub created: bool,
    /// Its consent in the workspace.
    pub consent: Consent,
    /// Its address on the conversation's channel and its name (absent in results recorded
    /// before they were returned).
    #[serde(default)]
    pub card: Option<ContactCard>,
}

/// Input of [`ConversationActivities::session_send`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSendInput {
    /// The workspace.
    pub workspace_id: String,
    /// The contact.
    pub contact_id: String,
    /// The channel (used when the send has to start the session).
    pub channel: Channel,
    /// The send.
    pub request: SendRequest,
}

/// Output of [`ConversationActivities::session_send`]: a refusal is an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SessionSendOutcome {
    /// Sent.
    Sent(SendReceipt),
    /// Refused or failed, with its stable code.
    Refused(SendError),
}

/// Input of [`ConversationActivities::close_session`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseSessionInput {
    /// The workspace.
    pub workspace_id: String,
    /// The contact.
    pub contact_id: String,
}

/// Output of [`ConversationActivities::close_session`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClosed {
    /// Whether a session was running to take the close.
    pub closed: bool,
}

/// Activity contracts of the outbound-conversation workflow.
pub struct ConversationActivities;

#[activity_definitions]
impl ConversationActivities {
    /// Finds the contact by id, or finds or creates it by phone or e-mail.
    #[activity(name = "resolve_contact")]
    pub async fn resolve_contact(
        input: ResolveContactInput,
    ) -> Result<ResolvedContact, ActivityError> {
        unimplemented!()
    }

    /// Sends through the contact's session window (update-with-start on
    /// `session/{workspace}/{contact}`), so the gate, the billing and the consent check are the
    /// window's.
    #[activity(name = "session_send")]
    pub async fn session_send(
        input: SessionSendInput,
    ) -> Result<SessionSendOutcome, ActivityError> {
        unimplemented!()
    }

    /// Closes the contact's window (`EXPLICIT`) if one is running.
    #[activity(name = "close_session")]
    pub async fn close_session(
        input: CloseSessionInput,
    ) -> Result<Option<SessionClosed>, ActivityError> {
        unimplemented!()
    }
}

pub use conversation_activities::{CloseSession, ResolveContact, SessionSend};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_id_schemes() {
        assert_eq!(session_workflow_id("ws_1", "c_42"), "session/ws_1/c_42");
        assert_eq!(conversation_workflow_id("cv_7"), "conversation/cv_7");
    }

    #[test]
    fn send_error_round_trips_through_its_message() {
        let e = SendError { code: ErrorCode::NoActiveSession, message: "no window: open".into() };
        assert_eq!(SendError::parse(&e.to_string()), Some(e));
        assert_eq!(SendError::parse("Something else: x"), None);
    }

    fn message(n: usize, at: Option<u64>) -> ConversationMessage {
        ConversationMessage {
            message_id: format!("m{n}"),
            direction: convo_domain::Direction::Outbound,
            text: String::new(),
            at: at.map(Timestamp::from_epoch_millis),
            channel: None,
        }
    }

    /// The CI flake: the template's send started, the contact's reply arrived and was
    /// handled in the task that also carried the send's result.
    #[test]
    fn a_send_started_before_a_reply_is_shown_before_it() {
        let (mut timeline, mut messages) = (Timeline::default(), Vec::new());
        let template = timeline.begin();
        let reply = timeline.begin();
        timeline.place(&mut messages, reply, message(1, Some(1)));
        timeline.place(&mut messages, template, message(0, Some(0)));
        let answer = timeline.begin();
        timeline.place(&mut messages, answer, message(2, Some(2)));
        let ids: Vec<_> = messages.iter().map(|m| m.message_id.as_str()).collect();
        assert_eq!(ids, ["m0", "m1", "m2"]);
    }

    use proptest::prelude::*;

    proptest::proptest! {
        /// Whatever order messages finish in, the view lists them in the order they began,
        /// and loses none.
        #[test]
        fn messages_are_shown_in_the_order_they_began(
            finish in proptest::sample::subsequence((0..24usize).collect::<Vec<_>>(), 0..=24)
                .prop_shuffle(),
        ) {
            let mut timeline = Timeline::default();
            let begun: Vec<u64> = (0..24).map(|_| timeline.begin()).collect();
            let mut messages = Vec::new();
            for &n in &finish {
                timeline.place(&mut messages, begun[n], message(n, None));
            }
            let mut want = finish.clone();
            want.sort_unstable();
            let got: Vec<String> = messages.iter().map(|m| m.message_id.clone()).collect();
            let want: Vec<String> = want.iter().map(|n| format!("m{n}")).collect();
            prop_assert_eq!(got, want);
        }
    }
}
