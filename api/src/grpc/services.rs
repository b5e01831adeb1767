//! The conversation, message, window and inbound services over the application layer (the
//! workspace and template services are in [`super::workspace`]): each RPC authenticates, converts
//! its request, calls one [`App`] function (under the Idempotency-Key when it sends or starts
//! something) and converts the answer.

use convo_proto::v1::{
    self as pb, conversation_service_server::ConversationService,
    inbound_service_server::InboundService, message_service_server::MessageService,
    window_service_server::WindowService,
};
use convo_store::ApiKeyScope;
use serde::{Serialize, de::DeserializeOwned};
use tonic::{
    Request, Response, Status,
    metadata::{MetadataMap, MetadataValue},
};

use super::convert;
use crate::{
    app::{
        App, Caller, WorkspaceId,
        idempotency::operation,
        types::{CloseWindowRequest, TakeOverRequest},
    },
    error::ApiError,
};

/// Metadata carrying the Idempotency-Key.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Response metadata set on a replayed answer.
pub(crate) const REPLAYED: &str = "idempotent-replayed";

/// The implementation of every convo service; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    pub(super) app: App,
}

/// A value and whether it was replayed from an Idempotency-Key.
pub(super) struct Answer<T> {
    value: T,
    replayed: bool,
}

impl<T> Answer<T> {
    /// The gRPC response for the converted value, marked when replayed.
    pub(super) fn into_response<P>(self, convert: impl FnOnce(T) -> P) -> Response<P> {
        let mut response = Response::new(convert(self.value));
        if self.replayed {
            response.metadata_mut().insert(REPLAYED, MetadataValue::from_static("true"));
        }
        response
    }
}

/// The API key in `authorization: Bearer <key>` or `x-api-key`.
fn api_key(metadata: &MetadataMap) -> Option<&str> {
    let get = |name: &str| metadata.get(name).and_then(|v| v.to_str().ok());
    App::presented_api_key(get("authorization"), get("x-api-key"))
}

impl Api {
    pub(crate) fn new(app: App) -> Self {
        Self { app }
    }

    pub(super) async fn authenticate(
        &self,
        metadata: &MetadataMap,
        needed: ApiKeyScope,
    ) -> Result<WorkspaceId, Status> {
        Ok(self.authenticate_caller(metadata, needed).await?.workspace)
    }

    /// The workspace and the id of the key that authenticated.
    pub(super) async fn authenticate_caller(
        &self,
        metadata: &MetadataMap,
        needed: ApiKeyScope,
    ) -> Result<Caller, Status> {
        let caller = self.app.authenticate_caller(api_key(metadata)).await?;
        caller.authorize(needed, "this call")?;
        Ok(caller)
    }

    /// Runs `run` under the request's Idempotency-Key, if it has one
    /// ([`App::idempotent`]): the same key and request, over gRPC or HTTP, replay the first
    /// final answer (success or refusal, marked `idempotent-replayed: true`); another request
    /// under the key is `idempotency_key_reused`; a key whose first request still runs is
    /// waited for (then `idempotency_key_in_use`). `fingerprint` is the application
    /// request's ([`App::request_fingerprint`]). `run` borrows the call, so it is not
    /// spawned: a call its client cancels releases the key at once and the retry runs it
    /// again.
    pub(super) async fn idempotent<T, F, Fut>(
        &self,
        ws: &WorkspaceId,
        metadata: &MetadataMap,
        fingerprint: String,
        run: F,
    ) -> Result<Answer<T>, Status>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(Option<String>) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let key = metadata
            .get(IDEMPOTENCY_KEY)
            .map(|value| crate::app::idempotency::idempotency_key(value.as_bytes()))
            .transpose()?;
        let answer = self.app.idempotent(ws, key.as_deref(), &fingerprint, run).await;
        match answer.result {
            Ok(value) => Ok(Answer { value, replayed: answer.replayed }),
            Err(e) => {
                let mut status = Status::from(e);
                if answer.replayed {
                    status.metadata_mut().insert(REPLAYED, MetadataValue::from_static("true"));
                }
                Err(status)
            }
        }
    }
}

#[tonic::async_trait]
impl ConversationService for Api {
    async fn list_channels(
        &self,
        request: Request<pb::ListChannelsRequest>,
    ) -> Result<Response<pb::ListChannelsResponse>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Read).await?;
        let channels = self.app.channels(&ws).await?;
        Ok(Response::new(convert::channels(channels)))
    }

    async fn compose(
        &self,
        request: Request<pb::ComposeRequest>,
    ) -> Result<Response<pb::ComposeResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let ws = &self.authenticate(&metadata, ApiKeyScope::Send).await?;
        let input = convert::compose(message);
        let print = App::request_fingerprint(operation::COMPOSE, "", &input)?;
        let answer = self
            .idempotent(ws, &metadata, print, |key| async move {
                self.app.compose(ws, input, key.as_deref()).await
            })
            .await?;
        Ok(answer.into_response(convert::composed))
    }

    async fn proactive(
        &self,
        request: Request<pb::ProactiveRequest>,
    ) -> Result<Response<pb::ProactiveResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let ws = &self.authenticate(&metadata, ApiKeyScope::Send).await?;
        let input = convert::proactive(message)?;
        let print = App::request_fingerprint(operation::PROACTIVE, "", &input)?;
        let answer = self
            .idempotent(ws, &metadata, print, |key| async move {
                self.app.proactive(ws, input, key.as_deref()).await
            })
            .await?;
        Ok(answer.into_response(convert::proactive_accepted))
    }

    async fn get_conversation(
        &self,
        request: Request<pb::GetConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Read).await?;
        let conversation = self.app.conversation(&ws, &request.get_ref().conversation_id).await?;
        Ok(Response::new(convert::conversation(conversation)))
    }

    async fn get_contact(
        &self,
        request: Request<pb::GetContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Read).await?;
        let contact = self.app.contact(&ws, &request.get_ref().contact).await?;
        Ok(Response::new(convert::contact(contact)))
    }

    async fn send_conversation_message(
        &self,
        request: Request<pb::SendConversationMessageRequest>,
    ) -> Result<Response<pb::MessageAccepted>, Status> {
        let (metadata, _, message) = request.into_parts();
        let ws = &self.authenticate(&metadata, ApiKeyScope::Send).await?;
        let (id, input) = convert::conversation_message(message)?;
        let print = App::request_fingerprint(operation::CONVERSATION_MESSAGE, &id, &input)?;
        let answer = self
            .idempotent(ws, &metadata, print, |key| async move {
                self.app
                    .conversation_message(ws, &id, input, key.as_deref())
                    .await
                    .map_err(convert::conversation_message_field)
            })
            .await?;
        Ok(answer.into_response(convert::accepted))
    }

    async fn take_over(
        &self,
        request: Request<pb::TakeOverRequest>,
    ) -> Result<Response<pb::Ack>, Status> {
        let (metadata, _, message) = request.into_parts();
        let ws = &self.authenticate(&metadata, ApiKeyScope::Send).await?;
        let input = TakeOverRequest { agent_id: message.agent_id };
        let id = message.conversation_id;
        let print = App::request_fingerprint(operation::TAKE_OVER, &id, &input)?;
        let answer = self
            .idempotent(ws, &metadata, print, |_| async move {
                self.app.take_over(ws, &id, input).await
            })
            .await?;
        Ok(answer.into_response(|ok| pb::Ack { ok: ok.ok }))
    }

    async fn resolve(
        &self,
        request: Request<pb::ResolveRequest>,
    ) -> Result<Response<pb::Ack>, Status> {
        let (metadata, _, message) = request.into_parts();
        let ws = &self.authenticate(&metadata, ApiKeyScope::Send).await?;
        let (id, input) = convert::resolve(message);
        let print = App::request_fingerprint(operation::RESOLVE, &id, &input)?;
        let answer =
            self.idempotent(ws, &metadata, print, |_| async move {
                self.app.resolve(ws, &id, input).await
            })
            .await?;
        Ok(answer.into_response(|ok| pb::Ack { ok: ok.ok }))
    }
}

#[tonic::async_trait]
impl MessageService for Api {
    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::MessageAccepted>, Status> {
        let (metadata, _, message) = request.into_parts();
        let ws = &self.authenticate(&metadata, ApiKeyScope::Send).await?;
        let input = convert::send_message(message)?;
        let print = App::request_fingerprint(operation::SEND_MESSAGE, "", &input)?;
        let answer = self
            .idempotent(ws, &metadata, print, |key| async move {
                self.app.send_message(ws, input, key.as_deref()).await
            })
            .await?;
        Ok(answer.into_response(convert::accepted))
    }

    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Read).await?;
        let message = self.app.message(&ws, &request.get_ref().message_id).await?;
        Ok(Response::new(convert::message(message)))
    }
}

#[tonic::async_trait]
impl WindowService for Api {
    async fn get_window(
        &self,
        request: Request<pb::GetWindowRequest>,
    ) -> Result<Response<pb::Window>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Read).await?;
        let window = self.app.window(&ws, &request.get_ref().contact).await?;
        Ok(Response::new(convert::window(window)))
    }

    async fn close_window(
        &self,
        request: Request<pb::CloseWindowRequest>,
    ) -> Result<Response<pb::Window>, Status> {
        let (metadata, _, message) = request.into_parts();
        let ws = &self.authenticate(&metadata, ApiKeyScope::Send).await?;
        let input = CloseWindowRequest {};
        let print = App::request_fingerprint(operation::CLOSE_WINDOW, &message.contact, &input)?;
        let answer = self
            .idempotent(ws, &metadata, print, |_| async move {
                self.app.close_window(ws, &message.contact).await
            })
            .await?;
        Ok(answer.into_response(convert::window))
    }
}

#[tonic::async_trait]
impl InboundService for Api {
    async fn receive(
        &self,
        request: Request<pb::InboundMessage>,
    ) -> Result<Response<pb::InboundAccepted>, Status> {
        if self.app.sandbox().is_none() {
            // Like an HTTP route that is not there: only a process with a sandbox simulates
            // a contact's messages.
            return Err(Status::unimplemented(
                "no sandbox provider is attached to this process; InboundService.Receive \
                 simulates a contact's message on sandbox channels only",
            ));
        }
        let (metadata, _, message) = request.into_parts();
        let ws = &self.authenticate(&metadata, ApiKeyScope::Send).await?;
        let input = convert::inbound(message);
        let print = App::request_fingerprint(operation::INBOUND_SANDBOX, "", &input)?;
        let answer = self
            .idempotent(ws, &metadata, print, |key| async move {
                self.app.inbound_sandbox(ws, input, key.as_deref()).await
            })
            .await?;
        Ok(answer.into_response(convert::inbound_accepted))
    }
}
