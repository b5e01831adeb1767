//! Webhook endpoints (subscriptions) and the delivery log.

use convo_store::{DeliveryFilter, DeliveryStatus, StoreError, WebhookEndpoint};

use super::{
    App, WorkspaceId, rfc3339,
    types::{CreateWebhookEndpoint, DeliveriesQuery, DeliveryOut, List, WebhookEndpointOut},
};
use crate::error::ApiError;

/// The `disabled_reason` a deletion records. Deleting keeps the row (its deliveries stay in the
/// log) and hides it from listings.
const DELETED: &str = "deleted through the API";

fn endpoint_out(e: WebhookEndpoint, with_secret: bool) -> WebhookEndpointOut {
    WebhookEndpointOut {
        id: e.id,
        url: e.url,
        event_types: e.event_types,
        enabled: e.enabled,
        disabled_reason: e.disabled_reason,
        secret: with_secret.then_some(e.secret),
        created_at: rfc3339(e.created_at),
    }
}

impl App {
    /// `POST /v1/webhook-endpoints`: subscribes a URL; the answer carries the signing secret,
    /// which is not shown again.
    pub async fn create_webhook_endpoint(
        &self,
        ws: &WorkspaceId,
        req: CreateWebhookEndpoint,
    ) -> Result<WebhookEndpointOut, ApiError> {
        if req.url.len() > 2_048 {
            return Err(ApiError::validation("url", "must be at most 2048 characters"));
        }
        if req.event_types.len() > 50 {
            return Err(ApiError::validation("event_types", "at most 50 event types"));
        }
        self.settings()
            .webhook_destinations
            .check(req.url.trim())
            .await
            .map_err(|refused| ApiError::validation("url", refused.to_string()))?;
        let endpoint = self
            .store()
            .add_webhook_endpoint(ws.as_str(), req.url.trim(), req.event_types)
            .await
            .map_err(|e| match e {
                StoreError::Validation { field: "event_type", message } => {
                    ApiError::validation("event_types", message)
                }
                other => other.into(),
            })?;
        Ok(endpoint_out(endpoint, true))
    }

    /// `GET /v1/webhook-endpoints`: the workspace's endpoints, oldest first (deleted ones left
    /// out; endpoints disabled by a 410 answer stay, with their reason).
    pub async fn webhook_endpoints(
        &self,
        ws: &WorkspaceId,
    ) -> Result<List<WebhookEndpointOut>, ApiError> {
        let endpoints = self.store().webhook_endpoints(ws.as_str()).await?;
        Ok(List {
            data: endpoints
                .into_iter()
                .filter(|e| e.disabled_reason.as_deref() != Some(DELETED))
                .map(|e| endpoint_out(e, false))
                .collect(),
        })
    }

    /// `DELETE /v1/webhook-endpoints/{id}`: stops deliveries to it (pending ones are
    /// cancelled). Another workspace's endpoint, or one already deleted, is 404.
    pub async fn delete_webhook_endpoint(
        &self,
        ws: &WorkspaceId,
        id: &str,
    ) -> Result<(), ApiError> {
        let not_found = || ApiError::not_found(format!("webhook endpoint {id} not found"));
        let endpoint = match self.store().webhook_endpoint(id).await {
            Ok(e)
                if e.workspace_id == ws.as_str()
                    && e.disabled_reason.as_deref() != Some(DELETED) =>
            {
                e
            }
            Ok(_) | Err(StoreError::NotFound { .. }) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        self.store().disable_webhook_endpoint(&endpoint.id, DELETED).await?;
        Ok(())
    }

    /// `GET /v1/webhook-deliveries`: the delivery log, newest first.
    pub async fn webhook_deliveries(
        &self,
        ws: &WorkspaceId,
        query: DeliveriesQuery,
    ) -> Result<List<DeliveryOut>, ApiError> {
        let status = match query.status.as_deref() {
            None => None,
            Some("pending") => Some(DeliveryStatus::Pending),
            Some("delivered") => Some(DeliveryStatus::Delivered),
            Some("failed") => Some(DeliveryStatus::Failed),
            Some("cancelled") => Some(DeliveryStatus::Cancelled),
            Some(_) => {
                return Err(ApiError::validation(
                    "status",
                    "must be pending, delivered, failed or cancelled",
                ));
            }
        };
        let limit = query.limit.unwrap_or(100);
        if !(1..=1_000).contains(&limit) {
            return Err(ApiError::validation("limit", "must be 1 to 1000"));
        }
        let filter = DeliveryFilter {
            status,
            endpoint_id: query.endpoint_id,
            event_id: query.event_id,
            limit: Some(limit),
        };
        let deliveries = self.store().webhook_deliveries(ws.as_str(), &filter).await?;
        Ok(List {
            data: deliveries
                .into_iter()
                .map(|d| DeliveryOut {
                    id: d.id,
                    event_id: d.event_id,
                    event_type: d.event_type,
                    endpoint_id: d.endpoint_id,
                    status: d.status.as_str().to_owned(),
                    attempts: d.attempts,
                    last_status: d.last_status,
                    last_error: d.last_error,
                    last_attempt_at: d.last_attempt_at.map(rfc3339),
                    next_attempt_at: d.next_attempt_at.map(rfc3339),
                    created_at: rfc3339(d.created_at),
                })
                .collect(),
        })
    }
}
