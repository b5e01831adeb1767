//! [`Gateway`]: everything the application layer asks of the workflows, as one trait.
//!
//! [`Sessions`] implements it over a Temporal client; the API holds a `dyn Gateway`, so its
//! handlers can be driven in a test by a fake that answers as the workflows would, with no
//! Temporal server (`Router::oneshot` over a real store).

use async_trait::async_trait;
use convo_domain::Channel;
use convo_workflows::{
    OutboundConversationWorkflow, SessionWindowWorkflow,
    contracts::{
        AgentReply, ComposeInput, ConversationView, Resolve, SendReceipt, SendRequest,
        SessionSendOutcome, SessionView, TakeOver, conversation_workflow_id, session_workflow_id,
    },
};
use temporalio_client::{
    Client, WorkflowDescribeOptions, WorkflowExecuteUpdateOptions, WorkflowHandle,
    WorkflowQueryOptions,
    errors::{WorkflowInteractionError, WorkflowQueryError, WorkflowUpdateError},
};

use crate::{GatewayError, Inbound, InboundAccepted, Sessions, abnormal_end};

/// Why an update of a conversation (a reply, a take-over, a resolve) got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// The workflow refused it; the message is the workflow's (`"{code}: {message}"` for a
    /// send's refusal, as `SendError` writes it).
    #[error("{0}")]
    Refused(String),
    /// The conversation's workflow has ended.
    #[error("the conversation has ended")]
    Ended,
    /// Temporal could not be reached or failed.
    #[error("{0}")]
    Unavailable(String),
}

/// What the application asks of the session and conversation workflows.
#[async_trait]
pub trait Gateway: std::fmt::Debug + Send + Sync + 'static {
    /// A contact's message, into its session ([`Sessions::inbound`]).
    async fn inbound(&self, inbound: Inbound) -> Result<InboundAccepted, GatewayError>;

    /// A send through the contact's session ([`Sessions::send`]).
    async fn send(
        &self,
        workspace_id: &str,
        contact_id: &str,
        channel: Channel,
        request: SendRequest,
    ) -> Result<SessionSendOutcome, GatewayError>;

    /// Closes the contact's window; whether a session was running to take it
    /// ([`Sessions::close`]).
    async fn close(&self, workspace_id: &str, contact_id: &str) -> Result<bool, GatewayError>;

    /// Starts a composed conversation; its run id ([`Sessions::compose`]).
    async fn compose(&self, input: ComposeInput) -> Result<String, GatewayError>;

    /// The contact's running session, as it reports itself; `None` when none runs.
    async fn session_view(
        &self,
        workspace_id: &str,
        contact_id: &str,
    ) -> Result<Option<SessionView>, GatewayError>;

    /// How the contact's last session ended, when not by itself (`terminated`, `timed_out`,
    /// ...: [`abnormal_end`]); `None` when it runs, ended normally, or never ran.
    async fn session_abnormal_end(
        &self,
        workspace_id: &str,
        contact_id: &str,
    ) -> Result<Option<&'static str>, GatewayError>;

    /// A conversation's own view (finished conversations too); `None` when it has no
    /// workflow.
    async fn conversation_view(
        &self,
        conversation_id: &str,
    ) -> Result<Option<ConversationView>, GatewayError>;

    /// An agent's reply in a conversation, sent through its contact's session.
    async fn reply(
        &self,
        conversation_id: &str,
        reply: AgentReply,
    ) -> Result<SendReceipt, UpdateError>;

    /// A person takes a conversation over.
    async fn take_over(
        &self,
        conversation_id: &str,
        take_over: TakeOver,
    ) -> Result<(), UpdateError>;

    /// Resolves a conversation.
    async fn resolve(&self, conversation_id: &str, resolve: Resolve) -> Result<(), UpdateError>;

    /// Whether the workflow service answers, for readiness; why not, when it does not.
    async fn ping(&self) -> Result<(), String>;
}

fn update_error(e: WorkflowUpdateError) -> UpdateError {
    match e {
        WorkflowUpdateError::Failed(failure) => UpdateError::Refused(failure.message.clone()),
        WorkflowUpdateError::NotFound(_) => UpdateError::Ended,
        other => UpdateError::Unavailable(format!("the workflow service failed: {other}")),
    }
}

/// The handle of a composed conversation's workflow.
fn conversation(
    sessions: &Sessions,
    conversation_id: &str,
) -> WorkflowHandle<Client, OutboundConversationWorkflow> {
    sessions.client().get_workflow_handle(conversation_workflow_id(conversation_id))
}

fn temporal(context: &str, e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Temporal(format!("{context}: {e}").into())
}

#[async_trait]
impl Gateway for Sessions {
    async fn inbound(&self, inbound: Inbound) -> Result<InboundAccepted, GatewayError> {
        Sessions::inbound(self, inbound).await
    }

    async fn send(
        &self,
        workspace_id: &str,
        contact_id: &str,
        channel: Channel,
        request: SendRequest,
    ) -> Result<SessionSendOutcome, GatewayError> {
        Sessions::send(self, workspace_id, contact_id, channel, request).await
    }

    async fn close(&self, workspace_id: &str, contact_id: &str) -> Result<bool, GatewayError> {
        Sessions::close(self, workspace_id, contact_id).await
    }

    async fn compose(&self, input: ComposeInput) -> Result<String, GatewayError> {
        Sessions::compose(self, input).await
    }

    async fn session_view(
        &self,
        workspace_id: &str,
        contact_id: &str,
    ) -> Result<Option<SessionView>, GatewayError> {
        let handle = self.client().get_workflow_handle::<SessionWindowWorkflow>(
            session_workflow_id(workspace_id, contact_id),
        );
        match handle.query(SessionWindowWorkflow::state, (), WorkflowQueryOptions::default()).await
        {
            Ok(view) => Ok(Some(view)),
            Err(WorkflowQueryError::NotFound(_) | WorkflowQueryError::Rejected { .. }) => Ok(None),
            Err(e) => Err(temporal("the session could not be queried", e)),
        }
    }

    async fn session_abnormal_end(
        &self,
        workspace_id: &str,
        contact_id: &str,
    ) -> Result<Option<&'static str>, GatewayError> {
        let handle = self.client().get_workflow_handle::<SessionWindowWorkflow>(
            session_workflow_id(workspace_id, contact_id),
        );
        match handle.describe(WorkflowDescribeOptions::default()).await {
            Ok(d) => Ok(d
                .raw_description
                .workflow_execution_info
                .and_then(|info| abnormal_end(info.status()))),
            Err(WorkflowInteractionError::NotFound(_)) => Ok(None),
            Err(e) => Err(temporal("the session could not be read", e)),
        }
    }

    async fn conversation_view(
        &self,
        conversation_id: &str,
    ) -> Result<Option<ConversationView>, GatewayError> {
        let handle = conversation(self, conversation_id);
        let query = handle.query(
            OutboundConversationWorkflow::conversation,
            (),
            WorkflowQueryOptions::default(),
        );
        match query.await {
            Ok(view) => Ok(Some(view)),
            Err(WorkflowQueryError::NotFound(_)) => Ok(None),
            Err(e) => Err(temporal("the conversation could not be queried", e)),
        }
    }

    async fn reply(
        &self,
        conversation_id: &str,
        reply: AgentReply,
    ) -> Result<SendReceipt, UpdateError> {
        conversation(self, conversation_id)
            .execute_update(
                OutboundConversationWorkflow::reply,
                reply,
                WorkflowExecuteUpdateOptions::default(),
            )
            .await
            .map_err(update_error)
    }

    async fn take_over(
        &self,
        conversation_id: &str,
        take_over: TakeOver,
    ) -> Result<(), UpdateError> {
        conversation(self, conversation_id)
            .execute_update(
                OutboundConversationWorkflow::take_over,
                take_over,
                WorkflowExecuteUpdateOptions::default(),
            )
            .await
            .map(drop)
            .map_err(update_error)
    }

    async fn resolve(&self, conversation_id: &str, resolve: Resolve) -> Result<(), UpdateError> {
        conversation(self, conversation_id)
            .execute_update(
                OutboundConversationWorkflow::resolve,
                resolve,
                WorkflowExecuteUpdateOptions::default(),
            )
            .await
            .map(drop)
            .map_err(update_error)
    }

    async fn ping(&self) -> Result<(), String> {
        use temporalio_client::grpc::WorkflowService;
        use temporalio_common::protos::temporal::api::workflowservice::v1::GetSystemInfoRequest;
        let mut client = self.client().clone();
        let call = client.get_system_info(tonic::Request::new(GetSystemInfoRequest::default()));
        match tokio::time::timeout(std::time::Duration::from_secs(3), call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => Err(status.message().to_owned()),
            Err(_) => Err("no answer within 3s".to_owned()),
        }
    }
}
