//! The application layer's door to the workflows: inbound messages, sends, closes and
//! composes, as Temporal client calls plus the store reads they need.
//!
//! The API (HTTP and gRPC) and the outbound-conversation activities both go through
//! [`Sessions`], so there is one place that knows how a session is addressed
//! (`session/{workspace}/{contact}`), started (signal-with-start on an inbound,
//! update-with-start on a send) and configured (the workspace's settings for the channel and
//! the contact's stored consent).

use convo_domain::{Channel, Direction, ErrorCode, MessageId, Timestamp};
use convo_workflows::{
    OutboundConversationWorkflow, SessionWindowWorkflow,
    contracts::{
        ComposeInput, ContactCard, ContactTarget, InboundChannel, InboundMessage, SendError,
        SendRequest, SessionInput, SessionSendOutcome, WindowClosed, conversation_workflow_id,
        session_workflow_id,
    },
    ops,
};
use temporalio_client::{
    Client, WorkflowDescribeOptions, WorkflowExecuteUpdateOptions, WorkflowExecutionStatus,
    WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowSignalOptions, WorkflowStartOptions,
    WorkflowUpdateWithStartOptions,
    errors::{
        WorkflowInteractionError, WorkflowStartError, WorkflowUpdateError,
        WorkflowUpdateWithStartError,
    },
};
use temporalio_common::MemoValues;

use convo_store::{Contact, ContactLookup, MessageStatus, NewMessage, Store, StoreError};

/// Why a gateway call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The workspace's settings give no valid configuration for the channel.
    #[error("invalid configuration for channel {channel}: {message}")]
    Config {
        /// The channel.
        channel: Channel,
        /// What is wrong.
        message: String,
    },
    /// Temporal could not be reached or refused the call.
    #[error("temporal: {0}")]
    Temporal(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The conversation id is already in use.
    #[error("conversation {0} already exists")]
    ConversationExists(String),
}

impl GatewayError {
    /// Whether retrying may help (an outage rather than an answer about the request).
    pub fn is_retryable(&self) -> bool {
        match self {
            GatewayError::Store(e) => e.is_retryable(),
            GatewayError::Temporal(_) => true,
            GatewayError::Config { .. } | GatewayError::ConversationExists(_) => false,
        }
    }

    /// Stable code for API errors and activity failure types.
    pub fn code(&self) -> ErrorCode {
        match self {
            GatewayError::Store(e) => e.code(),
            GatewayError::Config { .. } => ErrorCode::ChannelNotConfigured,
            GatewayError::Temporal(_) => ErrorCode::Unavailable,
            GatewayError::ConversationExists(_) => ErrorCode::Conflict,
        }
    }
}

/// An inbound message as a provider webhook reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The workspace the receiving number or address belongs to.
    pub workspace_id: String,
    /// The channel it arrived on.
    pub channel: Channel,
    /// The contact's address: E.164 phone for WhatsApp/SMS/RCS, e-mail for e-mail, the
    /// platform's user id otherwise.
    pub from: String,
    /// The contact's name, if the provider gives one.
    pub name: Option<String>,
    /// The provider's message id (de-duplicated).
    pub message_id: String,
    /// The text.
    pub text: String,
    /// The postback data of the suggested reply or action the contact tapped (RCS), which the
    /// message log and webhooks carry beside the text.
    pub postback_data: Option<String>,
    /// When the contact sent it, per the provider.
    pub sent_at: Option<Timestamp>,
}

/// What an inbound message reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundAccepted {
    /// The contact (created on first contact).
    pub contact_id: String,
    /// The session workflow that received it.
    pub workflow_id: String,
    /// The provider retried a message already received; nothing was signalled again.
    pub duplicate: bool,
}

/// Sessions and conversations, through the Temporal client.
#[derive(Clone)]
pub struct Sessions {
    client: Client,
    store: Store,
    task_queue: String,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").field("task_queue", &self.task_queue).finish_non_exhaustive()
    }
}

impl Sessions {
    /// Sessions on `task_queue`, where convo's worker runs.
    pub fn new(client: Client, store: Store, task_queue: impl Into<String>) -> Self {
        Self { client, store, task_queue: task_queue.into() }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The Temporal client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A contact's message: log it, find (or create) the contact, and signal-with-start its
    /// session. The log write comes first, so a message Temporal could not take is still on
    /// record and the provider's retry delivers it; a repeat of a logged message whose signal
    /// is signalled again, because only the session knows whether the first signal arrived; it
    /// ignores message ids it has seen.
    pub async fn inbound(&self, inbound: Inbound) -> Result<InboundAccepted, GatewayError> {
        let lookup = match inbound.channel {
            Channel::Email => ContactLookup {
                email: Some(inbound.from.clone()),
                name: inbound.name.clone(),
                ..Default::default()
            },
            _ => ContactLookup {
                phone: Some(inbound.from.clone()),
                name: inbound.name.clone(),
                ..Default::default()
            },
        };
        let (contact, _) = self.store.find_or_create_sender(&inbound.workspace_id, lookup).await?;
        let message_id = MessageId::new(inbound.message_id.clone());
        let (_, created) = self
            .store
            .record_message(&NewMessage {
                id: message_id.clone(),
                workspace_id: inbound.workspace_id.clone(),
                contact_id: contact.id.clone(),
                channel: inbound.channel,
                direction: Direction::Inbound,
                content: match &inbound.postback_data {
                    Some(data) => {
                        serde_json::json!({ "text": inbound.text, "postback_data": data })
                    }
                    None => serde_json::json!({ "text": inbound.text }),
                },
                status: MessageStatus::Received,
                provider_message_id: Some(inbound.message_id.clone()),
                at: inbound.sent_at,
            })
            .await?;
        let workflow_id = session_workflow_id(&inbound.workspace_id, &contact.id);
        let conversation_id = self.waiting_conversation(&inbound.workspace_id, &contact.id).await?;
        let input = self.session_input(&inbound.workspace_id, &contact.id, inbound.channel).await?;
        let options = self.session_start_options(&input);
        let message = InboundMessage {
            message_id: inbound.message_id.clone(),
            text: inbound.text.clone(),
            sent_at: inbound.sent_at,
            conversation_id,
            channel: Some(Box::new(InboundChannel {
                config: input.config.clone(),
                contact: input.contact.clone(),
            })),
        };
        // Signal-with-start meeting a run that completes under it is answered "not found" by
        // a server that checks the run before signalling it (sdk-java's test server does);
        // the Temporal server starts the next run instead. Either way the signal is due to a
        // run: it is tried again, and a retry is harmless (the message id dedups it).
        let mut attempt = 0;
        loop {
            let sent = self
                .client
                .signal_with_start_workflow(
                    SessionWindowWorkflow::run,
                    input.clone(),
                    SessionWindowWorkflow::inbound,
                    message.clone(),
                    options.clone(),
                )
                .await;
            match sent {
                Ok(_) => break,
                Err(WorkflowStartError::Rpc(status))
                    if status.code() == tonic::Code::NotFound
                        && attempt + 1 < COMPLETED_RUN_RETRIES =>
                {
                    attempt += 1;
                    tokio::time::sleep(COMPLETED_RUN_BACKOFF * attempt).await;
                }
                Err(e) => return Err(GatewayError::Temporal(e.into())),
            }
        }
        if convo_domain::compliance::classify(&inbound.text) == Some(convo_domain::Keyword::OptOut)
        {
            self.end_open_conversations(&inbound.workspace_id, &contact.id).await?;
        }
        Ok(InboundAccepted { contact_id: contact.id, workflow_id, duplicate: !created })
    }

    /// An opt-out ends every conversation still open with the contact, not only the one the
    /// session links (which the session tells itself): each hears that the window closed for
    /// `COMPLIANCE_STOP` and fails `contact_opted_out`. Telling one twice changes nothing, so
    /// a provider's retry of the STOP is harmless.
    async fn end_open_conversations(
        &self,
        workspace_id: &str,
        contact_id: &str,
    ) -> Result<(), GatewayError> {
        let stop = WindowClosed { reason: convo_domain::CloseReason::ComplianceStop };
        for conversation in self.running_conversations(workspace_id, contact_id).await? {
            let handle = self.client.get_workflow_handle::<OutboundConversationWorkflow>(
                conversation_workflow_id(&conversation),
            );
            match handle
                .signal(
                    OutboundConversationWorkflow::window_closed,
                    stop,
                    WorkflowSignalOptions::default(),
                )
                .await
            {
                // It ended in between.
                Ok(()) | Err(WorkflowInteractionError::NotFound(_)) => {}
                Err(e) => return Err(GatewayError::Temporal(e.into())),
            }
        }
        Ok(())
    }

    /// A business send through the contact's window. Refusals (`no_active_session`,
    /// `contact_opted_out`, `insufficient_balance`, …) are answers, not errors.
    ///
    /// A running session takes the send as an update. With none running, the send is first
    /// decided against a session that would start now (the pure domain, on the workspace's
    /// configuration and the contact's consent): what it would refuse is refused here, and
    /// no run is started for nothing. Otherwise (a template, or a channel that does not gate
    /// free-form) update-with-start starts the session, which ends once it is settled. An
    /// inbound that starts the session in between is no race: update-with-start attaches to
    /// the running session.
    ///
    /// A run that completes while it holds the update (a window that just closed: Temporal
    /// fails the update "because the Workflow completed") is no answer: the send is tried
    /// again, through update-with-start, which starts the next run once the old one is gone.
    /// The message id is the update id, so a retry never sends twice.
    pub async fn send(
        &self,
        workspace_id: &str,
        contact_id: &str,
        channel: Channel,
        request: SendRequest,
    ) -> Result<SessionSendOutcome, GatewayError> {
        let mut running = true;
        for attempt in 0..COMPLETED_RUN_RETRIES {
            let outcome = if running {
                self.send_to_running(workspace_id, contact_id, &request).await?
            } else {
                None
            };
            let outcome = match outcome {
                Some(outcome) => outcome,
                None => self.send_with_start(workspace_id, contact_id, channel, &request).await?,
            };
            match outcome {
                SendAttempt::Answered(outcome) => return Ok(outcome),
                SendAttempt::RunCompleted => {
                    running = false;
                    tokio::time::sleep(COMPLETED_RUN_BACKOFF * (attempt + 1)).await;
                }
            }
        }
        Ok(SessionSendOutcome::Refused(SendError {
            code: ErrorCode::SendFailed,
            message: "the contact's session kept completing under the send; try again".to_owned(),
        }))
    }

    /// The send as an update of the running session; `None` when no session runs.
    async fn send_to_running(
        &self,
        workspace_id: &str,
        contact_id: &str,
        request: &SendRequest,
    ) -> Result<Option<SendAttempt>, GatewayError> {
        let workflow_id = session_workflow_id(workspace_id, contact_id);
        let handle = self.client.get_workflow_handle::<SessionWindowWorkflow>(workflow_id);
        let options =
            WorkflowExecuteUpdateOptions::builder().update_id(request.message_id.clone()).build();
        match handle.execute_update(SessionWindowWorkflow::send, request.clone(), options).await {
            Ok(receipt) => Ok(Some(SendAttempt::Answered(SessionSendOutcome::Sent(receipt)))),
            Err(WorkflowUpdateError::Failed(failure)) => Ok(Some(attempt_of(&failure.message))),
            // No session runs (never started, or its last run completed).
            Err(WorkflowUpdateError::NotFound(_)) => Ok(None),
            Err(e) => Err(GatewayError::Temporal(e.into())),
        }
    }

    /// The send decided against a fresh session, then, if that would take it,
    /// update-with-start.
    async fn send_with_start(
        &self,
        workspace_id: &str,
        contact_id: &str,
        channel: Channel,
        request: &SendRequest,
    ) -> Result<SendAttempt, GatewayError> {
        let input = self.session_input(workspace_id, contact_id, channel).await?;
        let fresh = convo_domain::window::State::new(input.config.clone(), input.consent);
        let now = Timestamp::from_system_time(std::time::SystemTime::now());
        if let Err(e) = convo_domain::window::validate(&fresh, &request.event(), now) {
            let refusal = SendError { code: e.code(), message: e.to_string() };
            return Ok(SendAttempt::Answered(SessionSendOutcome::Refused(refusal)));
        }
        let (memo, summary, details) = session_metadata(&input);
        let options = WorkflowUpdateWithStartOptions::new(
            self.task_queue.clone(),
            session_workflow_id(workspace_id, contact_id),
            WorkflowIdConflictPolicy::UseExisting,
        )
        .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
        .update_id(request.message_id.clone())
        .memo(memo)
        .static_summary(summary)
        .static_details(details)
        .build();
        let result = self
            .client
            .execute_update_with_start_workflow(
                SessionWindowWorkflow::run,
                input,
                SessionWindowWorkflow::send,
                request.clone(),
                options,
            )
            .await;
        match result {
            Ok(receipt) => Ok(SendAttempt::Answered(SessionSendOutcome::Sent(receipt))),
            Err(WorkflowUpdateWithStartError::Update(WorkflowUpdateError::Failed(failure))) => {
                Ok(attempt_of(&failure.message))
            }
            Err(e) => Err(GatewayError::Temporal(e.into())),
        }
    }

    /// Closes the contact's window (`EXPLICIT`). No session running is not an error.
    pub async fn close(&self, workspace_id: &str, contact_id: &str) -> Result<bool, GatewayError> {
        let handle = self.client.get_workflow_handle::<SessionWindowWorkflow>(session_workflow_id(
            workspace_id,
            contact_id,
        ));
        match handle
            .signal(SessionWindowWorkflow::close, (), WorkflowSignalOptions::default())
            .await
        {
            Ok(()) => Ok(true),
            Err(WorkflowInteractionError::NotFound(_)) => Ok(false),
            Err(e) => Err(GatewayError::Temporal(e.into())),
        }
    }

    /// Starts the outbound conversation `input` describes.
    pub async fn compose(&self, input: ComposeInput) -> Result<String, GatewayError> {
        let workflow_id = conversation_workflow_id(&input.conversation_id);
        // The summary names the contact as the compose does; a contact given by id is looked
        // up (one that does not exist fails in the workflow, with its error).
        let (contact_id, card) = match &input.to {
            ContactTarget::Id { contact_id } => {
                match self.store.contact(&input.workspace_id, contact_id).await {
                    Ok(c) => (Some(c.id.clone()), contact_card(&c, Some(input.channel))),
                    Err(_) => (Some(contact_id.clone()), ContactCard::default()),
                }
            }
            ContactTarget::Phone { phone, name } => {
                (None, ContactCard { address: Some(phone.clone()), name: name.clone() })
            }
            ContactTarget::Email { email, name } => {
                (None, ContactCard { address: Some(email.clone()), name: name.clone() })
            }
        };
        let label =
            ops::contact_label(contact_id.as_deref().unwrap_or("a new contact"), Some(&card));
        let mut memo = MemoValues::new();
        memo.insert(ops::memo::CHANNEL, input.channel.as_str().to_owned());
        memo.insert(ops::memo::CONTACT, contact_memo(contact_id.as_deref(), &card));
        let options = WorkflowStartOptions::new(self.task_queue.clone(), workflow_id.clone())
            .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
            .memo(memo)
            .static_summary(ops::conversation_summary(input.channel, &label))
            .static_details(format!(
                "Workspace `{}`, conversation `{}`.",
                input.workspace_id, input.conversation_id
            ))
            .build();
        match self.client.start_workflow(OutboundConversationWorkflow::run, input, options).await {
            Ok(_) => Ok(workflow_id),
            Err(WorkflowStartError::AlreadyStarted { .. }) => {
                Err(GatewayError::ConversationExists(workflow_id))
            }
            Err(e) => Err(GatewayError::Temporal(e.into())),
        }
    }

    /// The session input for a contact on a channel: the workspace's configuration and the
    /// contact's stored consent.
    pub async fn session_input(
        &self,
        workspace_id: &str,
        contact_id: &str,
        channel: Channel,
    ) -> Result<SessionInput, GatewayError> {
        let workspace = self.store.workspace(workspace_id).await?;
        let config = workspace
            .settings
            .config_for(channel)
            .map_err(|e| GatewayError::Config { channel, message: e.to_string() })?;
        let consent = self.store.consent(workspace_id, contact_id).await?;
        let contact = self.store.contact(workspace_id, contact_id).await?;
        Ok(SessionInput {
            workspace_id: workspace_id.to_owned(),
            contact_id: contact_id.to_owned(),
            config,
            consent,
            contact: Some(contact_card(&contact, Some(channel))),
            carried: None,
        })
    }

    fn session_start_options(&self, input: &SessionInput) -> WorkflowStartOptions {
        let (memo, summary, details) = session_metadata(input);
        WorkflowStartOptions::new(
            self.task_queue.clone(),
            session_workflow_id(&input.workspace_id, &input.contact_id),
        )
        .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
        .memo(memo)
        .static_summary(summary)
        .static_details(details)
        .build()
    }

    /// The latest composed conversation whose messages went to this contact, if it still
    /// runs: the one a reply answers. A conversation that ended (resolved, expired, failed)
    /// takes no replies, and naming none unlinks it from the session.
    async fn waiting_conversation(
        &self,
        workspace_id: &str,
        contact_id: &str,
    ) -> Result<Option<String>, GatewayError> {
        let Some(latest) = self.conversations_of(workspace_id, contact_id).await?.pop() else {
            return Ok(None);
        };
        Ok(self.is_running(&latest).await?.then_some(latest))
    }

    /// The composed conversations that sent this contact a message, oldest first, each once.
    async fn conversations_of(
        &self,
        workspace_id: &str,
        contact_id: &str,
    ) -> Result<Vec<String>, GatewayError> {
        let messages = self.store.messages(workspace_id, contact_id).await?;
        let mut ids: Vec<String> = Vec::new();
        for id in messages
            .iter()
            .filter(|m| m.direction == Direction::Outbound)
            .filter_map(|m| m.content.get("conversation_id")?.as_str().map(str::to_owned))
        {
            ids.retain(|known| *known != id);
            ids.push(id);
        }
        Ok(ids)
    }

    /// The contact's composed conversations that still run.
    async fn running_conversations(
        &self,
        workspace_id: &str,
        contact_id: &str,
    ) -> Result<Vec<String>, GatewayError> {
        let mut running = Vec::new();
        for id in self.conversations_of(workspace_id, contact_id).await? {
            if self.is_running(&id).await? {
                running.push(id);
            }
        }
        Ok(running)
    }

    async fn is_running(&self, conversation_id: &str) -> Result<bool, GatewayError> {
        let handle = self.client.get_workflow_handle::<OutboundConversationWorkflow>(
            conversation_workflow_id(conversation_id),
        );
        match handle.describe(WorkflowDescribeOptions::default()).await {
            Ok(d) => Ok(d.status() == WorkflowExecutionStatus::Running),
            Err(WorkflowInteractionError::NotFound(_)) => Ok(false),
            Err(e) => Err(GatewayError::Temporal(e.into())),
        }
    }
}

/// A contact as operators find it: its address on `channel` (the e-mail for e-mail, the phone
/// for the rest; whichever it has when no channel is given) and its name.
pub fn contact_card(contact: &Contact, channel: Option<Channel>) -> ContactCard {
    let address = match channel {
        Some(channel) => contact.address_on(channel),
        None => contact.phone.clone().or_else(|| contact.email.clone()),
    };
    ContactCard { address, name: contact.name.clone() }
}

/// The memo's `contact` field: `{ "id", "address", "name" }`.
fn contact_memo(contact_id: Option<&str>, card: &ContactCard) -> serde_json::Value {
    serde_json::json!({ "id": contact_id, "address": card.address, "name": card.name })
}

/// The memo, static summary and static details a session starts with.
fn session_metadata(input: &SessionInput) -> (MemoValues, String, String) {
    let channel = input.config.channel;
    let card = input.contact.clone().unwrap_or_default();
    let mut memo = MemoValues::new();
    memo.insert(ops::memo::CHANNEL, channel.as_str().to_owned());
    memo.insert(ops::memo::CONTACT, contact_memo(Some(&input.contact_id), &card));
    (
        memo,
        ops::session_summary(channel, &input.contact_id, input.contact.as_ref()),
        ops::session_details(&input.workspace_id, &input.contact_id),
    )
}

/// Times a send is tried when the run that held it completed under it.
const COMPLETED_RUN_RETRIES: u32 = 5;
/// Wait before the next try, times the attempt: the completing run needs a moment to close.
const COMPLETED_RUN_BACKOFF: std::time::Duration = std::time::Duration::from_millis(25);

/// One try of a send.
enum SendAttempt {
    /// The session answered: sent or refused.
    Answered(SessionSendOutcome),
    /// The run completed while it held the update: try again.
    RunCompleted,
}

/// An update failure: the session's refusal, or a run that completed under the update.
fn attempt_of(message: &str) -> SendAttempt {
    if message.contains("completed before the Update completed") {
        SendAttempt::RunCompleted
    } else {
        SendAttempt::Answered(SessionSendOutcome::Refused(refusal(message)))
    }
}

/// Reads a refusal's stable code from an update failure's message.
fn refusal(message: &str) -> SendError {
    SendError::parse(message)
        .unwrap_or_else(|| SendError { code: ErrorCode::SendFailed, message: message.to_owned() })
}
