//! The outbound conversation's activities: contact resolution and sends through the contact's
//! session window.

use std::{sync::Arc, time::Duration};

use convo_workflows::contracts::{
    CloseSessionInput, ContactTarget, ResolveContactInput, ResolvedContact, SessionClosed,
    SessionSendInput, SessionSendOutcome,
};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use convo_client::{GatewayError, Sessions, contact_card};
use convo_store::ContactLookup;

use crate::session::store_failure;

/// How often a waiting `session_send` tells Temporal it is alive.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);

fn gateway_failure(e: GatewayError) -> ActivityError {
    let type_name = e.code().as_str().to_owned();
    let non_retryable = !e.is_retryable();
    ActivityError::application(
        ApplicationFailure::builder(e).type_name(type_name).non_retryable(non_retryable).build(),
    )
}

/// Implementation of `convo_workflows::contracts::ConversationActivities`.
#[derive(Debug)]
pub struct ConversationActivitiesImpl {
    sessions: Sessions,
}

impl ConversationActivitiesImpl {
    /// Activities that reach sessions through `sessions`.
    pub fn new(sessions: Sessions) -> Self {
        Self { sessions }
    }
}

#[activities]
impl ConversationActivitiesImpl {
    /// An existing contact by id, or find-or-create by phone or e-mail; with its consent.
    #[activity(definition = convo_workflows::contracts::ResolveContact)]
    pub async fn resolve_contact(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: ResolveContactInput,
    ) -> Result<ResolvedContact, ActivityError> {
        let store = self.sessions.store();
        let (contact, created) = match input.target {
            ContactTarget::Id { contact_id } => (
                store.contact(&input.workspace_id, &contact_id).await.map_err(store_failure)?,
                false,
            ),
            ContactTarget::Phone { phone, name } => store
                .find_or_create_contact(
                    &input.workspace_id,
                    ContactLookup { phone: Some(phone), email: None, name },
                )
                .await
                .map_err(store_failure)?,
            ContactTarget::Email { email, name } => store
                .find_or_create_contact(
                    &input.workspace_id,
                    ContactLookup { phone: None, email: Some(email), name },
                )
                .await
                .map_err(store_failure)?,
        };
        let consent =
            store.consent(&input.workspace_id, &contact.id).await.map_err(store_failure)?;
        let card = contact_card(&contact, input.channel);
        Ok(ResolvedContact { contact_id: contact.id, created, consent, card: Some(card) })
    }

    /// Sends through the session's `send` update, heartbeating while the session waits on the
    /// provider (an outage can hold a send for hours).
    #[activity(definition = convo_workflows::contracts::SessionSend)]
    pub async fn session_send(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: SessionSendInput,
    ) -> Result<SessionSendOutcome, ActivityError> {
        let send = self.sessions.send(
            &input.workspace_id,
            &input.contact_id,
            input.channel,
            input.request,
        );
        let mut send = std::pin::pin!(send);
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            tokio::select! {
                outcome = &mut send => return outcome.map_err(gateway_failure),
                _ = beat.tick() => {
                    // A heartbeat that cannot be encoded only weakens failure detection.
                    let _ = ctx.record_heartbeat(()).await;
                }
                () = ctx.cancelled() => return Err(ActivityError::cancelled()),
            }
        }
    }

    /// Closes the contact's window (`EXPLICIT`), if one runs.
    #[activity(definition = convo_workflows::contracts::CloseSession)]
    pub async fn close_session(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CloseSessionInput,
    ) -> Result<Option<SessionClosed>, ActivityError> {
        let closed = self
            .sessions
            .close(&input.workspace_id, &input.contact_id)
            .await
            .map_err(gateway_failure)?;
        Ok(Some(SessionClosed { closed }))
    }
}
