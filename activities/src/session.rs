//! The session window's activities: ledger holds, provider sends, consent records and
//! webhook enqueueing. Each is idempotent on the id the workflow passes (hold id, message id,
//! event id), so Temporal's retries never double-charge, double-send or double-deliver.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use convo_domain::{
    Balance, Channel, Direction,
    window::{Webhook, WindowFacts},
};
use convo_workflows::{
    SessionWindowWorkflow,
    contracts::{
        ConsentRecord, ConsentRecorded, HoldAnswer, HoldRequest, HoldResolution, ProviderSend,
        ProviderSent, SendTrouble, WebhookEmit, WebhookQueued, error_types,
    },
};
use serde_json::{Map, Value};
use temporalio_client::{Client, WorkflowSignalOptions};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError, ActivityInfo};

use convo_store::{MessageStatus, NewMessage, OpenWindow, Store, StoreError, webhooks::payload};

use crate::providers::{self, Provider, ProviderConfig, SendRequest};

/// Turns a store error into an activity failure with an explicit retry decision: outages are
/// retried, answers about the request are not.
pub(crate) fn store_failure(e: StoreError) -> ActivityError {
    let type_name = e.code().as_str().to_owned();
    let non_retryable = !e.is_retryable();
    ActivityError::application(
        ApplicationFailure::builder(e).type_name(type_name).non_retryable(non_retryable).build(),
    )
}

fn permanent(type_name: &str, message: String) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(std::io::Error::other(message))
            .type_name(type_name.to_owned())
            .non_retryable(true)
            .build(),
    )
}

/// Built adapters by (workspace, channel), with the configuration each was built from.
type ProviderCache = HashMap<(String, Channel), (ProviderConfig, Arc<dyn Provider>)>;

/// Implementation of `convo_workflows::contracts::SessionActivities`.
pub struct SessionActivitiesImpl {
    store: Store,
    /// Reports failing sends to their session ([`SessionActivitiesImpl::reporting_to`]).
    client: Option<Client>,
    /// Adapters by (workspace, channel), rebuilt when the stored configuration changes.
    providers: Mutex<ProviderCache>,
}

impl std::fmt::Debug for SessionActivitiesImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionActivitiesImpl").finish_non_exhaustive()
    }
}

impl SessionActivitiesImpl {
    /// Activities over `store`.
    pub fn new(store: Store) -> Self {
        Self { store, client: None, providers: Mutex::new(HashMap::new()) }
    }

    /// Also tell the session when a provider send fails and will be retried (its first failed
    /// attempt, and every tenth after), so operators find stuck sends by the session's
    /// `ConvoProblem` search attribute.
    pub fn reporting_to(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Signals the send's session that the provider call failed and will be retried. A
    /// report that cannot be delivered is only logged: the activity's own retry goes on.
    async fn report_trouble(&self, info: &ActivityInfo, message_id: String, error: String) {
        let (Some(client), Some(workflow_id)) = (&self.client, &info.workflow_id) else {
            return;
        };
        let trouble = SendTrouble { message_id, attempt: info.attempt, error };
        let handle = client.get_workflow_handle::<SessionWindowWorkflow>(workflow_id.clone());
        let signal = handle.signal(
            SessionWindowWorkflow::send_trouble,
            trouble,
            WorkflowSignalOptions::default(),
        );
        match tokio::time::timeout(std::time::Duration::from_secs(5), signal).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(%workflow_id, error = %e, "cannot report a failing send"),
            Err(_) => tracing::warn!(%workflow_id, "reporting a failing send timed out"),
        }
    }

    async fn provider(
        &self,
        workspace_id: &str,
        channel: Channel,
    ) -> Result<(Arc<dyn Provider>, String), ActivityError> {
        let stored = match self.store.channel(workspace_id, channel).await {
            Ok(c) if c.enabled => c,
            Ok(_) => {
                return Err(permanent(
                    error_types::CHANNEL_NOT_CONFIGURED,
                    format!("channel {channel} is disabled for workspace {workspace_id}"),
                ));
            }
            Err(StoreError::NotFound { .. }) => {
                return Err(permanent(
                    error_types::CHANNEL_NOT_CONFIGURED,
                    format!("workspace {workspace_id} has no {channel} channel"),
                ));
            }
            Err(e) => return Err(store_failure(e)),
        };
        let config: ProviderConfig =
            serde_json::from_value(stored.config.clone()).map_err(|e| {
                permanent(error_types::CHANNEL_NOT_CONFIGURED, format!("provider config: {e}"))
            })?;
        let key = (workspace_id.to_owned(), channel);
        let mut cache = self.providers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((cached, provider)) = cache.get(&key)
            && *cached == config
        {
            return Ok((provider.clone(), stored.sender));
        }
        let provider = providers::build(&config).map_err(|e| e.into_activity_error())?;
        cache.insert(key, (config, provider.clone()));
        Ok((provider, stored.sender))
    }

    /// Sends one message: log it (idempotent on its id), hand it to the provider with the id
    /// as idempotency key, and log the outcome.
    pub async fn send(&self, input: ProviderSend) -> Result<ProviderSent, ActivityError> {
        let contact = self
            .store
            .contact(&input.workspace_id, &input.contact_id)
            .await
            .map_err(store_failure)?;
        let to = contact.address_on(input.channel).ok_or_else(|| {
            permanent(
                error_types::VALIDATION_FAILED,
                format!("contact {} has no address on {}", contact.id, input.channel),
            )
        })?;
        let (provider, from) = self.provider(&input.workspace_id, input.channel).await?;
        let message = &input.message;
        let (record, _) = self
            .store
            .record_message(&NewMessage {
                id: message.id.clone(),
                workspace_id: input.workspace_id.clone(),
                contact_id: input.contact_id.clone(),
                channel: input.channel,
                direction: Direction::Outbound,
                content: serde_json::json!({
                    "content": message.content,
                    "message_type": message.message_type,
                    "sender": message.sender,
                    "conversation_id": input.conversation_id,
                    "agent_id": input.agent_id,
                }),
                status: MessageStatus::Queued,
                provider_message_id: None,
                at: None,
            })
            .await
            .map_err(store_failure)?;
        if record.status == MessageStatus::Accepted
            && let Some(id) = record.provider_message_id.clone()
        {
            // A retry after a crash between the provider's answer and its announcement.
            self.announce_own_status(&input.workspace_id, &record).await?;
            return Ok(ProviderSent { provider_message_id: id });
        }
        let mut request =
            SendRequest::new(message.id.as_str(), input.channel, from, to, message.content.clone());
        request.human_agent_tag = message.human_agent_tag;
        request.traffic_type = input.traffic_type;
        match provider.send(&request).await {
            Ok(receipt) => {
                let record = self
                    .store
                    .set_message_status(
                        &message.id,
                        MessageStatus::Accepted,
                        Some(&receipt.provider_message_id),
                        None,
                    )
                    .await
                    .map_err(store_failure)?;
                self.announce_own_status(&input.workspace_id, &record).await?;
                Ok(ProviderSent { provider_message_id: receipt.provider_message_id })
            }
            Err(e) => {
                if !e.is_retryable() {
                    let record = self
                        .store
                        .set_message_status(
                            &message.id,
                            MessageStatus::Rejected,
                            None,
                            Some(&e.to_string()),
                        )
                        .await
                        .map_err(store_failure)?;
                    self.announce_own_status(&input.workspace_id, &record).await?;
                }
                tracing::warn!(message_id = %message.id.as_str(), error = %e, "provider send failed");
                Err(e.into_activity_error())
            }
        }
    }
}

impl SessionActivitiesImpl {
    /// The webhook's `data`: the session's ids and times, enriched from the store with the
    /// contact card and the message (see [`convo_store::webhooks::payload`]). Facts an older
    /// history did not hand over are read back from the window's `conversation.started`.
    /// Announces the send's own outcome (`queued` → `sent`, or `failed` with the provider's
    /// refusal) with `message.status_updated`, as a provider callback's change is announced,
    /// under the same event id, so whichever reports a status first announces it once. A
    /// message a callback already moved past that status is not announced again.
    async fn announce_own_status(
        &self,
        workspace_id: &str,
        record: &convo_store::MessageRecord,
    ) -> Result<(), ActivityError> {
        use convo_domain::DeliveryStatus;
        let status = match record.status {
            MessageStatus::Accepted => DeliveryStatus::Sent,
            MessageStatus::Rejected => DeliveryStatus::Failed,
            MessageStatus::Queued | MessageStatus::Received => return Ok(()),
        };
        if record.delivery_status != Some(status) {
            return Ok(());
        }
        let report = convo_store::StatusReport {
            status,
            error_code: None,
            error_message: record.error.clone(),
            source: "convo".to_owned(),
            provider_at: None,
        };
        let data = payload::status_updated(workspace_id, record, DeliveryStatus::Queued, &report);
        let event_id = payload::status_event_id(&record.id, status);
        self.store
            .enqueue_webhook(workspace_id, &event_id, payload::STATUS_UPDATED, data)
            .await
            .map_err(store_failure)?;
        Ok(())
    }

    /// The currency the workspace's amounts are in.
    async fn currency(&self, workspace_id: &str) -> Result<String, ActivityError> {
        let workspace = self.store.workspace(workspace_id).await.map_err(store_failure)?;
        Ok(workspace.settings.currency().to_owned())
    }

    async fn webhook_data(&self, input: &WebhookEmit) -> Result<Map<String, Value>, ActivityError> {
        let contact = match self.store.contact(&input.workspace_id, &input.contact_id).await {
            Ok(c) => Some(c),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(store_failure(e)),
        };
        let (conversation, mut window, seq) = match &input.webhook {
            Webhook::ConversationStarted {
                seq,
                conversation,
                opened_at,
                expires_at,
                billing_session_ends_at,
                ..
            } => (
                Some(*conversation),
                Some(WindowFacts {
                    opened_at: *opened_at,
                    expires_at: *expires_at,
                    billing_session_ends_at: *billing_session_ends_at,
                }),
                *seq,
            ),
            Webhook::MessageExchanged { seq, conversation, window, .. } => {
                (*conversation, *window, *seq)
            }
            Webhook::ConversationEnded { seq, conversation, window, .. } => {
                (Some(*conversation), *window, *seq)
            }
        };
        let started = match conversation {
            Some(c) if window.is_none() || input.channel.is_none() => self
                .store
                .webhook_event_data(
                    &input.workspace_id,
                    &format!("evt_{}_c{c}_started", input.session_id),
                )
                .await
                .map_err(store_failure)?,
            _ => None,
        };
        if window.is_none() {
            window = started.as_ref().and_then(payload::facts_from_started);
        }
        let message_id = match &input.webhook {
            Webhook::ConversationStarted { opening_message, .. } => opening_message.clone(),
            Webhook::MessageExchanged { message_id, .. } => Some(message_id.clone()),
            Webhook::ConversationEnded { .. } => None,
        };
        let record = match &message_id {
            Some(id) => match self.store.message(id).await {
                Ok(r) if r.workspace_id == input.workspace_id => Some(r),
                Ok(_) | Err(StoreError::NotFound { .. }) => None,
                Err(e) => return Err(store_failure(e)),
            },
            None => None,
        };
        // The person who wrote it, as the send recorded it (no question to the conversation,
        // which may itself be waiting on this session).
        let agent_id = record
            .as_ref()
            .filter(|r| r.content.get("sender").and_then(Value::as_str) == Some("human_agent"))
            .and_then(|r| r.content.get("agent_id")?.as_str().map(str::to_owned));
        let channel = match &input.webhook {
            Webhook::ConversationStarted { channel, .. } => Some(*channel),
            _ => None,
        }
        .or(record.as_ref().map(|r| r.channel))
        .or(input.channel)
        .or_else(|| {
            let c = started.as_ref()?.get("channel")?.clone();
            serde_json::from_value(c).ok()
        })
        .or_else(|| contact.as_ref().and_then(|c| c.email.as_ref()).map(|_| Channel::Email))
        .unwrap_or(Channel::Sms);
        let subject = payload::Subject {
            workspace_id: &input.workspace_id,
            session_id: &input.session_id,
            contact_id: &input.contact_id,
            contact: contact.as_ref(),
            channel,
            conversation: conversation.unwrap_or(0),
            window: window.filter(|_| conversation.is_some()),
            linked_conversation: input.linked_conversation.as_deref(),
        };
        let mut data = subject.data();
        if conversation.is_none() {
            // A template sent with no window open belongs to none.
            data.insert("conversation".into(), Value::Null);
            data.insert("window".into(), Value::Null);
        }
        data.insert("seq".into(), seq.into());
        match &input.webhook {
            Webhook::ConversationStarted { opened_at, .. } => {
                let message = message_id.as_ref().map_or(Value::Null, |id| {
                    payload::message(
                        id,
                        Direction::Inbound,
                        channel,
                        *opened_at,
                        record.as_ref(),
                        None,
                    )
                });
                data.insert("message".into(), message);
            }
            Webhook::MessageExchanged { message_id, direction, at, expires_at, .. } => {
                data.insert("message_id".into(), message_id.as_str().into());
                data.insert(
                    "direction".into(),
                    serde_json::to_value(direction).unwrap_or_default(),
                );
                data.insert("at".into(), at.to_rfc3339().into());
                data.insert(
                    "expires_at".into(),
                    expires_at.map_or(Value::Null, |t| t.to_rfc3339().into()),
                );
                let message = payload::message(
                    message_id,
                    *direction,
                    channel,
                    *at,
                    record.as_ref(),
                    agent_id.as_deref(),
                );
                data.insert("message".into(), message);
            }
            Webhook::ConversationEnded {
                reason,
                at,
                inbound_messages,
                outbound_messages,
                billing,
                ..
            } => {
                data.insert("reason".into(), reason.as_str().into());
                data.insert("at".into(), at.to_rfc3339().into());
                data.insert("inbound_messages".into(), (*inbound_messages).into());
                data.insert("outbound_messages".into(), (*outbound_messages).into());
                data.insert(
                    "billing".into(),
                    payload::billing(
                        billing.sessions,
                        billing.charged,
                        billing.released,
                        &self.currency(&input.workspace_id).await?,
                    ),
                );
            }
        }
        Ok(data)
    }
}

#[activities]
impl SessionActivitiesImpl {
    /// Reserves the amount; a refusal is an answer (`placed: false`).
    #[activity(definition = convo_workflows::contracts::PlaceHold)]
    pub async fn place_hold(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: HoldRequest,
    ) -> Result<HoldAnswer, ActivityError> {
        match self.store.place_hold(&input.workspace_id, input.hold_id, input.amount).await {
            Ok(balance) => Ok(HoldAnswer { placed: true, balance }),
            Err(StoreError::InsufficientBalance { balance, .. }) => {
                Ok(HoldAnswer { placed: false, balance })
            }
            Err(e) => Err(store_failure(e)),
        }
    }

    /// Charges or releases a hold.
    #[activity(definition = convo_workflows::contracts::ResolveHold)]
    pub async fn resolve_hold(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: HoldResolution,
    ) -> Result<Balance, ActivityError> {
        let result = if input.charge {
            self.store.charge_hold(&input.workspace_id, &input.hold_id).await
        } else {
            self.store.release_hold(&input.workspace_id, &input.hold_id).await
        };
        result.map_err(store_failure)
    }

    /// Hands a message to the channel's provider.
    #[activity(definition = convo_workflows::contracts::SendMessage)]
    pub async fn send_message(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ProviderSend,
    ) -> Result<ProviderSent, ActivityError> {
        let message_id = input.message.id.as_str().to_owned();
        let result = self.send(input).await;
        if let Err(ActivityError::Application(failure)) = &result
            && !failure.is_non_retryable()
        {
            let info = ctx.info();
            if info.attempt <= 1 || info.attempt.is_multiple_of(10) {
                let error = match failure.type_name() {
                    Some(t) if !t.is_empty() => format!("{t}: {}", failure.source_error()),
                    _ => failure.source_error().to_string(),
                };
                self.report_trouble(info, message_id, error).await;
            }
        }
        result
    }

    /// Stores the contact's consent for the workspace.
    #[activity(definition = convo_workflows::contracts::RecordConsent)]
    pub async fn record_consent(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: ConsentRecord,
    ) -> Result<Option<ConsentRecorded>, ActivityError> {
        self.store
            .record_consent(&input.workspace_id, &input.contact_id, input.consent, "keyword")
            .await
            .map_err(store_failure)?;
        Ok(Some(ConsentRecorded { contact_id: input.contact_id, consent: input.consent }))
    }

    /// Queues the webhook for every matching endpoint of the workspace.
    #[activity(definition = convo_workflows::contracts::EmitWebhook)]
    pub async fn emit_webhook(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: WebhookEmit,
    ) -> Result<Option<WebhookQueued>, ActivityError> {
        let data = self.webhook_data(&input).await?;
        let event_id = input.event_id();
        let occurred_at = input.occurred_at.or(match &input.webhook {
            Webhook::ConversationStarted { opened_at, .. } => Some(*opened_at),
            Webhook::MessageExchanged { at, .. } | Webhook::ConversationEnded { at, .. } => {
                Some(*at)
            }
        });
        let deliveries = self
            .store
            .enqueue_webhook_at(
                &input.workspace_id,
                &event_id,
                input.event_type(),
                Value::Object(data),
                occurred_at,
            )
            .await
            .map_err(store_failure)?;
        // What the reconciler checks: a window reported open and never reported ended.
        match &input.webhook {
            Webhook::ConversationStarted { conversation, channel, opened_at, .. } => {
                let window = OpenWindow {
                    session_id: input.session_id.clone(),
                    conversation: *conversation,
                    workspace_id: input.workspace_id.clone(),
                    contact_id: input.contact_id.clone(),
                    channel: *channel,
                    opened_at: *opened_at,
                };
                self.store.window_opened(&window).await.map_err(store_failure)?;
            }
            Webhook::ConversationEnded { conversation, .. } => {
                self.store
                    .window_ended(&input.session_id, *conversation)
                    .await
                    .map_err(store_failure)?;
            }
            Webhook::MessageExchanged { .. } => {}
        }
        let event_type = input.event_type().to_owned();
        Ok(Some(WebhookQueued { event_id, event_type, deliveries }))
    }
}
