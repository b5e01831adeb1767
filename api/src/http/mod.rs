//! The HTTP transport: an axum router over the application layer.
//!
//! Handlers only extract, call one [`App`] function and serialise; authentication,
//! Idempotency-Key handling and metrics are middleware around them. Every response that is not
//! a success is an [`ApiError`] rendered as `{"error": {...}}`, including unknown routes, wrong
//! methods and bodies axum itself would reject.
//!
//! ```no_run
//! # async fn run(app: convo_api::App) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! convo_api::http::serve(listener, app, std::future::pending()).await
//! # }
//! ```

mod extract;
mod handlers;
mod idempotency;
mod metrics;
mod openapi;
mod webhook_schemas;
mod workspace;

use std::{future::Future, sync::Arc, time::Instant};

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderMap, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};

pub use extract::{ApiJson, ApiQuery, OptionalJson, PathParam, RawBody, parse_json};
pub use idempotency::IdempotencyKey;
pub use metrics::Metrics;

use convo_store::ApiKeyScope;

use crate::{
    app::App,
    error::{ApiError, ErrorCode},
};

/// What every handler and middleware shares.
#[derive(Clone)]
pub(crate) struct HttpState {
    pub(crate) app: App,
    pub(crate) metrics: Arc<Metrics>,
}

/// The full HTTP API: `/v1/...` plus `/healthz`, `/readyz`, `/metrics` and `/openapi.json`.
pub fn router(app: App) -> Router {
    let max_body = app.settings().max_body_bytes;
    let state = HttpState { app, metrics: Arc::new(Metrics::default()) };

    // Authenticated with an API key; POSTs honour Idempotency-Key (each runs its operation
    // through `HttpState::idempotent`).
    let mut authed = Router::new()
        .route("/v1/conversations/compose", post(handlers::compose))
        .route("/v1/conversations/proactive", post(handlers::proactive))
        .route("/v1/conversations/{id}", get(handlers::get_conversation))
        .route("/v1/conversations/{id}/messages", post(handlers::conversation_message))
        .route("/v1/conversations/{id}/take-over", post(handlers::take_over))
        .route("/v1/conversations/{id}/resolve", post(handlers::resolve))
        .route("/v1/channels", get(handlers::channels))
        .route("/v1/messages", post(handlers::send_message))
        .route("/v1/messages/{id}", get(handlers::get_message))
        .route("/v1/contacts/{contact}", get(handlers::get_contact))
        .route("/v1/windows/{contact}", get(handlers::get_window))
        .route("/v1/windows/{contact}/close", post(handlers::close_window))
        .route(
            "/v1/webhook-endpoints",
            post(handlers::create_webhook_endpoint).get(handlers::webhook_endpoints),
        )
        .route(
            "/v1/webhook-endpoints/{id}",
            axum::routing::delete(handlers::delete_webhook_endpoint),
        )
        .route("/v1/webhook-deliveries", get(handlers::webhook_deliveries))
        .route("/v1/workspace/settings", get(workspace::settings).patch(workspace::update_settings))
        .route("/v1/workspace/rates/{channel}", put(workspace::set_rates))
        .route("/v1/workspace/policies/{channel}", put(workspace::set_policy))
        .route("/v1/workspace/compliance", put(workspace::set_compliance))
        .route(
            "/v1/workspace/inactivity-ping",
            put(workspace::set_inactivity_ping).delete(workspace::clear_inactivity_ping),
        )
        .route("/v1/workspace/balance", get(workspace::balance))
        .route("/v1/workspace/balance/top-ups", post(workspace::top_up).get(workspace::top_ups))
        .route("/v1/templates", post(workspace::create_template).get(workspace::templates))
        .route("/v1/templates/{name}", get(workspace::template).delete(workspace::delete_template));
    if state.app.sandbox().is_some() {
        // The sandbox's simulations of a contact exist only where a sandbox provider is
        // attached (`convo serve`, test stacks), never in the production `convo api`.
        authed = authed
            .route("/v1/inbound/sandbox", post(handlers::inbound_sandbox))
            .route("/v1/inbound/sandbox/statuses", post(handlers::sandbox_status))
            .route("/v1/sandbox/outbox", get(handlers::sandbox_outbox));
    }
    let authed = authed.route_layer(middleware::from_fn_with_state(state.clone(), authenticate));

    // Authenticated by the provider's signature.
    let providers = Router::new()
        .route(
            "/v1/inbound/whatsapp",
            post(handlers::inbound_whatsapp).get(handlers::whatsapp_handshake),
        )
        .route("/v1/inbound/twilio", post(handlers::inbound_twilio))
        .route("/v1/inbound/rbm", post(handlers::inbound_rbm));

    let ops = Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .route("/openapi.json", get(handlers::openapi));

    Router::new()
        .merge(authed)
        .merge(providers)
        .merge(ops)
        .route_layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "this route does not take this method")
        })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes; requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app)).with_graceful_shutdown(shutdown).await
}

/// The API key from `Authorization: Bearer <key>` or `x-api-key` ([`App::presented_api_key`]).
fn api_key(headers: &HeaderMap) -> Option<&str> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    App::presented_api_key(get(header::AUTHORIZATION.as_str()), get("x-api-key"))
}

/// What an API key must be allowed to call `method path` (a matched route): reads need a
/// `read` key, sends and conversation actions a `send` key, and what configures the workspace
/// (settings, rates, balance top-ups, webhook endpoints, templates) an `admin` key.
pub(crate) fn required_scope(method: &str, path: &str) -> ApiKeyScope {
    if method.eq_ignore_ascii_case("get") || method.eq_ignore_ascii_case("head") {
        return ApiKeyScope::Read;
    }
    let configures = ["/v1/workspace/", "/v1/webhook-endpoints", "/v1/templates"];
    if configures.iter().any(|prefix| path.starts_with(prefix)) {
        ApiKeyScope::Admin
    } else {
        ApiKeyScope::Send
    }
}

async fn authenticate(State(state): State<HttpState>, mut req: Request, next: Next) -> Response {
    let path = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let needed = required_scope(req.method().as_str(), path.as_deref().unwrap_or_default());
    let operation = format!("{} {}", req.method(), path.as_deref().unwrap_or_default());
    let authorized = state
        .app
        .authenticate_caller(api_key(req.headers()))
        .await
        .and_then(|caller| caller.authorize(needed, &operation).map(|()| caller));
    match authorized {
        Ok(caller) => {
            req.extensions_mut().insert(caller.workspace.clone());
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

async fn record_metrics(State(state): State<HttpState>, req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    state.metrics.record(&method, &path, response.status().as_u16(), started.elapsed());
    response
}
