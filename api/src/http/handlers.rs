//! One handler per route: extract, call the application layer, serialise.

use axum::{
    Extension, Json,
    extract::{OriginalUri, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use schemars::JsonSchema;
use serde::Serialize;

use super::{ApiJson, ApiQuery, HttpState, IdempotencyKey, OptionalJson, PathParam, RawBody};
use crate::{
    app::{
        TwilioInbound, WhatsappInbound, WorkspaceId,
        idempotency::operation,
        types::{
            CloseWindowRequest, ComposeRequest, ConversationMessageRequest, CreateWebhookEndpoint,
            DeliveriesQuery, ProactiveRequest, ResolveRequest, SandboxInbound, SendMessageRequest,
            TakeOverRequest,
        },
    },
    error::ApiError,
};

pub(super) fn json<T: Serialize>(status: StatusCode, value: T) -> Response {
    (status, Json(value)).into_response()
}

pub(super) type Answer = Result<Response, ApiError>;

pub(super) async fn compose(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<ComposeRequest>,
) -> Response {
    s.idempotent(
        &ws,
        key,
        operation::COMPOSE,
        "",
        req,
        StatusCode::ACCEPTED,
        |app, ws, req, key| async move { app.compose(&ws, req, key.as_deref()).await },
    )
    .await
}

pub(super) async fn proactive(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<ProactiveRequest>,
) -> Response {
    let op = operation::PROACTIVE;
    s.idempotent(&ws, key, op, "", req, StatusCode::ACCEPTED, |app, ws, req, key| async move {
        app.proactive(&ws, req, key.as_deref()).await
    })
    .await
}

pub(super) async fn get_conversation(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    PathParam(id): PathParam,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.conversation(&ws, &id).await?))
}

pub(super) async fn conversation_message(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    PathParam(id): PathParam,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<ConversationMessageRequest>,
) -> Response {
    let op = operation::CONVERSATION_MESSAGE;
    s.idempotent(&ws, key, op, &id.clone(), req, StatusCode::ACCEPTED, |app, ws, req, key| {
        async move { app.conversation_message(&ws, &id, req, key.as_deref()).await }
    })
    .await
}

pub(super) async fn take_over(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    PathParam(id): PathParam,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<TakeOverRequest>,
) -> Response {
    let op = operation::TAKE_OVER;
    s.idempotent(&ws, key, op, &id.clone(), req, StatusCode::OK, |app, ws, req, _| async move {
        app.take_over(&ws, &id, req).await
    })
    .await
}

pub(super) async fn resolve(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    PathParam(id): PathParam,
    key: IdempotencyKey,
    OptionalJson(req): OptionalJson<ResolveRequest>,
) -> Response {
    let op = operation::RESOLVE;
    s.idempotent(&ws, key, op, &id.clone(), req, StatusCode::OK, |app, ws, req, _| async move {
        app.resolve(&ws, &id, req).await
    })
    .await
}

pub(super) async fn channels(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.channels(&ws).await?))
}

pub(super) async fn send_message(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<SendMessageRequest>,
) -> Response {
    let op = operation::SEND_MESSAGE;
    s.idempotent(&ws, key, op, "", req, StatusCode::ACCEPTED, |app, ws, req, key| async move {
        app.send_message(&ws, req, key.as_deref()).await
    })
    .await
}

pub(super) async fn get_window(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    PathParam(contact): PathParam,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.window(&ws, &contact).await?))
}

pub(super) async fn close_window(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    PathParam(contact): PathParam,
    key: IdempotencyKey,
    OptionalJson(req): OptionalJson<CloseWindowRequest>,
) -> Response {
    let (op, target) = (operation::CLOSE_WINDOW, contact.clone());
    s.idempotent(&ws, key, op, &target, req, StatusCode::OK, |app, ws, _, _| async move {
        app.close_window(&ws, &contact).await
    })
    .await
}

pub(super) async fn inbound_sandbox(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<SandboxInbound>,
) -> Response {
    let op = operation::INBOUND_SANDBOX;
    s.idempotent(&ws, key, op, "", req, StatusCode::ACCEPTED, |app, ws, req, key| async move {
        app.inbound_sandbox(&ws, req, key.as_deref()).await
    })
    .await
}

pub(super) async fn get_message(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    PathParam(id): PathParam,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.message(&ws, &id).await?))
}

pub(super) async fn get_contact(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    PathParam(contact): PathParam,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.contact(&ws, &contact).await?))
}

pub(super) async fn sandbox_status(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<crate::app::types::SandboxStatus>,
) -> Response {
    let op = operation::SANDBOX_STATUS;
    s.idempotent(&ws, key, op, "", req, StatusCode::OK, |app, ws, req, _| async move {
        app.sandbox_status(&ws, req).await
    })
    .await
}

pub(super) async fn sandbox_outbox(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.sandbox_outbox(&ws).await?))
}

pub(super) async fn create_webhook_endpoint(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<CreateWebhookEndpoint>,
) -> Response {
    let op = operation::CREATE_WEBHOOK_ENDPOINT;
    s.idempotent(&ws, key, op, "", req, StatusCode::CREATED, |app, ws, req, _| async move {
        app.create_webhook_endpoint(&ws, req).await
    })
    .await
}

pub(super) async fn webhook_endpoints(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.webhook_endpoints(&ws).await?))
}

pub(super) async fn delete_webhook_endpoint(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    PathParam(id): PathParam,
) -> Answer {
    s.app.delete_webhook_endpoint(&ws, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn webhook_deliveries(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.webhook_deliveries(&ws, query).await?))
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

pub(super) async fn inbound_whatsapp(
    State(s): State<HttpState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Answer {
    let req = WhatsappInbound {
        body: body.to_vec(),
        signature: header_str(&headers, "x-hub-signature-256"),
    };
    Ok(json(StatusCode::OK, s.app.inbound_whatsapp(req).await?))
}

pub(super) async fn inbound_rbm(
    State(s): State<HttpState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Answer {
    let req = crate::app::RbmInbound {
        body: body.to_vec(),
        signature: header_str(&headers, "x-goog-signature"),
    };
    Ok(match s.app.inbound_rbm(req).await? {
        crate::app::RbmAnswer::Verified(secret) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], secret).into_response()
        }
        crate::app::RbmAnswer::Applied(out) => json(StatusCode::OK, out),
    })
}

/// The query of Meta's subscription handshake.
#[derive(serde::Deserialize, JsonSchema)]
pub(super) struct Handshake {
    /// `subscribe`.
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    /// Must be the configured verify token.
    #[serde(rename = "hub.verify_token")]
    token: Option<String>,
    /// Echoed back as the plain-text answer.
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

pub(super) async fn whatsapp_handshake(
    State(s): State<HttpState>,
    ApiQuery(q): ApiQuery<Handshake>,
) -> Answer {
    let challenge =
        s.app.whatsapp_handshake(q.mode.as_deref(), q.token.as_deref(), q.challenge.as_deref())?;
    Ok((StatusCode::OK, challenge).into_response())
}

/// The URL Twilio signed: the configured public base URL, or the one this request reached
/// (`X-Forwarded-Proto` and `Host`, as a reverse proxy passes them on).
fn twilio_url(s: &HttpState, headers: &HeaderMap, uri: &axum::http::Uri) -> String {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    if let Some(base) = &s.app.settings().public_base_url {
        return format!("{}{path}", base.trim_end_matches('/'));
    }
    let scheme = header_str(headers, "x-forwarded-proto").unwrap_or_else(|| "http".to_owned());
    let host = header_str(headers, header::HOST.as_str()).unwrap_or_default();
    format!("{scheme}://{host}{path}")
}

pub(super) async fn inbound_twilio(
    State(s): State<HttpState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    RawBody(body): RawBody,
) -> Answer {
    let req = TwilioInbound {
        url: twilio_url(&s, &headers, &uri),
        body: body.to_vec(),
        signature: header_str(&headers, "x-twilio-signature"),
    };
    s.app.inbound_twilio(req).await?;
    // Twilio reads the answer as TwiML; an empty <Response/> sends no reply message.
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
    )
        .into_response())
}

/// `GET /healthz`.
#[derive(Serialize, JsonSchema)]
pub(super) struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// `GET /readyz`: 200 when every check passes, else 503.
#[derive(Serialize, JsonSchema)]
pub(super) struct Readiness {
    /// `ready` or `unavailable`.
    status: &'static str,
    /// Per dependency: `"ok"` or `{"error": "..."}`.
    checks: serde_json::Map<String, serde_json::Value>,
}

pub(super) async fn healthz() -> Response {
    json(StatusCode::OK, Health { status: "ok" })
}

pub(super) async fn readyz(State(s): State<HttpState>) -> Response {
    let checks = s.app.readiness().await;
    let ready = checks.iter().all(|(_, r)| r.is_ok());
    let detail: serde_json::Map<String, serde_json::Value> = checks
        .into_iter()
        .map(|(name, r)| {
            let v = match r {
                Ok(()) => serde_json::json!("ok"),
                Err(e) => serde_json::json!({"error": e}),
            };
            (name.to_owned(), v)
        })
        .collect();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json(status, Readiness { status: if ready { "ready" } else { "unavailable" }, checks: detail })
}

pub(super) async fn metrics(State(s): State<HttpState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.render().await,
    )
        .into_response()
}

pub(super) async fn openapi(State(s): State<HttpState>) -> Response {
    json(StatusCode::OK, super::openapi::document_of(s.app.sandbox().is_some()))
}
