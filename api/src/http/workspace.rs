//! The workspace configuration routes (`/v1/workspace/...`, `/v1/templates`): extract, call
//! [`crate::app::WorkspaceAdmin`], serialise.

use axum::{
    Extension,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use convo_store::Actor;

use super::{
    ApiJson, ApiQuery, HttpState, IdempotencyKey, PathParam,
    handlers::{Answer, json},
};
use crate::app::{
    Caller, WorkspaceId,
    idempotency::operation,
    types::{
        ComplianceIn, CreateTemplateRequest, InactivityPing, PolicyOverridesIn, Rates,
        SettingsPatch, TemplateQuery, TopUpRequest, TopUpsQuery,
    },
};

pub(super) async fn settings(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.workspace().settings(&ws).await?))
}

pub(super) async fn update_settings(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    ApiJson(patch): ApiJson<SettingsPatch>,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.workspace().update_settings(&ws, patch).await?))
}

pub(super) async fn set_rates(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    PathParam(channel): PathParam,
    ApiJson(rates): ApiJson<Rates>,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.workspace().set_rates(&ws, &channel, rates).await?))
}

pub(super) async fn set_policy(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    PathParam(channel): PathParam,
    ApiJson(overrides): ApiJson<PolicyOverridesIn>,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.workspace().set_policy(&ws, &channel, overrides).await?))
}

pub(super) async fn set_compliance(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    ApiJson(texts): ApiJson<ComplianceIn>,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.workspace().set_compliance(&ws, texts).await?))
}

pub(super) async fn set_inactivity_ping(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    ApiJson(ping): ApiJson<InactivityPing>,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.workspace().set_inactivity_ping(&ws, ping).await?))
}

pub(super) async fn clear_inactivity_ping(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.workspace().clear_inactivity_ping(&ws).await?))
}

pub(super) async fn balance(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.workspace().balance(&ws).await?))
}

pub(super) async fn top_up(
    State(s): State<HttpState>,
    Extension(caller): Extension<Caller>,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<TopUpRequest>,
) -> Response {
    let by = Actor::ApiKey(caller.api_key_id.clone());
    let op = operation::TOP_UP;
    s.idempotent(&caller.workspace, key, op, "", req, StatusCode::CREATED, |app, ws, req, key| {
        async move { app.workspace().top_up(&ws, by, req, key.as_deref()).await }
    })
    .await
}

pub(super) async fn top_ups(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    ApiQuery(query): ApiQuery<TopUpsQuery>,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.workspace().top_ups(&ws, query).await?))
}

pub(super) async fn create_template(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<CreateTemplateRequest>,
) -> Response {
    let op = operation::CREATE_TEMPLATE;
    s.idempotent(&ws, key, op, "", req, StatusCode::CREATED, |app, ws, req, _| async move {
        app.workspace().create_template(&ws, req).await
    })
    .await
}

pub(super) async fn templates(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
) -> Answer {
    Ok(json(StatusCode::OK, s.app.workspace().templates(&ws).await?))
}

pub(super) async fn template(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    PathParam(name): PathParam,
    ApiQuery(query): ApiQuery<TemplateQuery>,
) -> Answer {
    let template = s.app.workspace().template(&ws, &name, query.channel.as_deref()).await?;
    Ok(json(StatusCode::OK, template))
}

pub(super) async fn delete_template(
    State(s): State<HttpState>,
    Extension(ws): Extension<WorkspaceId>,
    PathParam(name): PathParam,
    ApiQuery(query): ApiQuery<TemplateQuery>,
) -> Response {
    match s.app.workspace().delete_template(&ws, &name, query.channel.as_deref()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}
