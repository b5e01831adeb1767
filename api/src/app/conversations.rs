//! A composed conversation: read it, write in it, hand it to a person, resolve it.

use convo_client::UpdateError;
use convo_domain::{Direction, ErrorCode, MessageType};
use convo_workflows::contracts::{
    AgentReply, Assignee, ConversationStatus, ConversationView, Resolve, SendError, SendKind,
    SendRequest, TakeOver,
};

use super::{
    App, WorkspaceId, required_text, rfc3339,
    types::{
        ConversationMessageOut, ConversationMessageRequest, ConversationOut, MessageAccepted,
        OkResponse, ResolveRequest, TakeOverRequest,
    },
};
use crate::error::ApiError;

/// The wire name of a status (`awaiting_reply`, ...).
pub(crate) fn status_name(status: ConversationStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "pending".to_owned())
}

/// An update's failure as the API error it stands for: the workflows write refusals as
/// `"{code}: {message}"` ([`SendError`]).
pub(crate) fn update_error(e: UpdateError) -> ApiError {
    match e {
        UpdateError::Refused(message) => match SendError::parse(&message) {
            Some(refusal) => refusal.into(),
            None => ApiError::conflict(message),
        },
        // Every caller found the conversation in the store first: it exists, and has ended.
        UpdateError::Ended => ApiError::new(
            ErrorCode::ConversationClosed,
            "the conversation has ended (resolved, failed or timed out)",
        ),
        UpdateError::Unavailable(message) => ApiError::unavailable(message),
    }
}

impl App {
    /// The conversation workflow's own view (works on finished conversations too).
    pub(crate) async fn conversation_view(&self, id: &str) -> Result<ConversationView, ApiError> {
        self.gateway()
            .conversation_view(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("conversation {id} not found")))
    }

    /// `GET /v1/conversations/{id}`: status, messages, assignee and the contact's window.
    /// Another workspace's conversation is 404.
    pub async fn conversation(
        &self,
        ws: &WorkspaceId,
        id: &str,
    ) -> Result<ConversationOut, ApiError> {
        let record = self.store().conversation(ws.as_str(), id).await?;
        let view = self.conversation_view(id).await?;
        let window = match &view.contact_id {
            Some(contact) => Some(self.window_of(ws, contact).await?),
            None => None,
        };
        let contact = match &view.contact_id {
            Some(id) => match self.store().contact(ws.as_str(), id).await {
                Ok(c) => Some(self.contact_out(ws, &c).await?),
                Err(convo_store::StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        Ok(ConversationOut {
            conversation_id: record.id,
            status: status_name(view.status),
            channel: record.channel,
            channel_id: record.channel_id,
            contact_id: view.contact_id,
            contact,
            assignee: match view.assignee {
                Assignee::Bot { id } => serde_json::json!({"kind": "bot", "id": id}),
                Assignee::Human { id } => serde_json::json!({"kind": "human", "id": id}),
            },
            messages: self.with_statuses(ws, record.channel, view.messages).await?,
            error: view.error.map(|e| serde_json::json!({"code": e.code, "message": e.message})),
            window,
            created_at: rfc3339(record.created_at),
        })
    }

    /// The conversation's messages, each outbound one with its delivery status and history
    /// from the message log (absent while the send has not logged it yet).
    async fn with_statuses(
        &self,
        ws: &WorkspaceId,
        channel: convo_domain::Channel,
        messages: Vec<convo_workflows::contracts::ConversationMessage>,
    ) -> Result<Vec<ConversationMessageOut>, ApiError> {
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            let (status, statuses) = match m.direction {
                Direction::Inbound => (None, Vec::new()),
                Direction::Outbound => {
                    let id = convo_domain::MessageId::new(&m.message_id);
                    match self.store().message(&id).await {
                        Ok(r) if r.workspace_id == ws.as_str() => {
                            let history = self.store().status_history(&id).await?;
                            (
                                r.delivery_status.map(|s| s.as_str().to_owned()),
                                history.into_iter().map(super::messages::status_out).collect(),
                            )
                        }
                        Ok(_) | Err(convo_store::StoreError::NotFound { .. }) => (None, Vec::new()),
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            out.push(ConversationMessageOut {
                channel: m.channel.unwrap_or(channel),
                message_id: m.message_id,
                direction: match m.direction {
                    Direction::Inbound => "inbound".to_owned(),
                    Direction::Outbound => "outbound".to_owned(),
                },
                text: m.text,
                at: m.at.map(rfc3339),
                status,
                statuses,
            });
        }
        Ok(out)
    }

    /// `POST /v1/conversations/{id}/messages`.
    ///
    /// `text` is an agent's reply through the conversation (its assignee decides whether it is
    /// tagged as a person's), so it needs an open window: 422 `no_active_session` otherwise.
    /// `template` goes straight through the contact's session, linked to this conversation, so
    /// it is allowed with no window and the contact's reply reopens one. The message id derives
    /// from the Idempotency-Key, and the session answers a repeated id with its first answer.
    pub async fn conversation_message(
        &self,
        ws: &WorkspaceId,
        id: &str,
        req: ConversationMessageRequest,
        idempotency_key: Option<&str>,
    ) -> Result<MessageAccepted, ApiError> {
        let record = self.store().conversation(ws.as_str(), id).await?;
        let message_id =
            Self::derived_id("msg", ws, idempotency_key, &format!("conversation/{id}"));
        let created_at = rfc3339(super::now());
        match req {
            ConversationMessageRequest::Text { text } => {
                let body = required_text("text.body", &text.body, super::compose::MAX_TEXT)?;
                let rich = if text.suggestions.is_empty() {
                    None
                } else {
                    let content = super::types::MessageContent {
                        text: Some(body.clone()),
                        suggestions: text.suggestions,
                        ..super::types::MessageContent::default()
                    };
                    super::messages::rich_content(record.channel, &content, "text.")?
                };
                let view = self.conversation_view(id).await?;
                let contact = view.contact_id.clone().ok_or_else(|| {
                    ApiError::conflict("the conversation has not resolved its contact yet")
                })?;
                let reply = AgentReply {
                    message_id: message_id.clone(),
                    text: body,
                    rich: rich.map(Box::new),
                };
                let update = self.gateway().reply(id, reply);
                let receipt = self.with_send_timeout(update).await?.map_err(update_error)?;
                let accepted = super::messages::Accepted {
                    receipt,
                    channel: record.channel,
                    message_type: MessageType::Conversation,
                    contact_id: contact,
                    created_at,
                    traffic_type: None,
                };
                Ok(self.accepted(ws, accepted).await)
            }
            ConversationMessageRequest::Template { template } => {
                let (name, params) =
                    self.resolve_template(ws, record.channel, "template", &template).await?;
                let view = self.conversation_view(id).await?;
                let contact = view.contact_id.clone().ok_or_else(|| {
                    ApiError::conflict("the conversation has not resolved its contact yet")
                })?;
                let request = SendRequest {
                    message_id: message_id.clone(),
                    channel: record.channel,
                    kind: SendKind::Template {
                        template: name,
                        message_type: MessageType::Message,
                        params: Box::new(params),
                    },
                    conversation_id: Some(id.to_owned()),
                    agent_id: match &view.assignee {
                        Assignee::Human { id } => Some(id.clone()),
                        Assignee::Bot { .. } => None,
                    },
                    traffic_type: None,
                };
                let outcome = self.session_send(ws, &contact, record.channel, request).await?;
                let receipt = super::messages::sent(outcome)?;
                let accepted = super::messages::Accepted {
                    receipt,
                    channel: record.channel,
                    message_type: MessageType::Message,
                    contact_id: contact,
                    created_at,
                    traffic_type: None,
                };
                Ok(self.accepted(ws, accepted).await)
            }
        }
    }

    /// `POST /v1/conversations/{id}/take-over`: a person takes over from the bot; later text
    /// messages are sent as theirs (Messenger's and Instagram's human-agent allowance applies).
    pub async fn take_over(
        &self,
        ws: &WorkspaceId,
        id: &str,
        req: TakeOverRequest,
    ) -> Result<OkResponse, ApiError> {
        self.store().conversation(ws.as_str(), id).await?;
        let agent_id = required_text("agent_id", &req.agent_id, 200)?;
        self.gateway().take_over(id, TakeOver { agent_id }).await.map_err(update_error)?;
        Ok(OkResponse::TRUE)
    }

    /// `POST /v1/conversations/{id}/resolve`: resolves the conversation and, unless
    /// `close_window` is false, closes the contact's window (`EXPLICIT`), settling its billing.
    /// Resolving twice is fine; resolving a finished conversation is 409
    /// `conversation_closed`.
    pub async fn resolve(
        &self,
        ws: &WorkspaceId,
        id: &str,
        req: ResolveRequest,
    ) -> Result<OkResponse, ApiError> {
        self.store().conversation(ws.as_str(), id).await?;
        let resolve = Resolve { close_window: req.close_window };
        self.gateway().resolve(id, resolve).await.map_err(update_error)?;
        Ok(OkResponse::TRUE)
    }

    /// Bounds a send by [`super::AppSettings::send_timeout`]: a provider outage can hold a
    /// send for hours, and the caller should get an answer it can retry on.
    pub(crate) async fn with_send_timeout<T>(
        &self,
        fut: impl std::future::Future<Output = T>,
    ) -> Result<T, ApiError> {
        tokio::time::timeout(self.settings().send_timeout, fut).await.map_err(|_| {
            ApiError::unavailable(
                "the send is still in progress; retry with the same Idempotency-Key for its outcome",
            )
        })
    }
}
