//! The application layer: one async function per API operation, shared by every transport.
//!
//! Each operation takes the caller's [`WorkspaceId`] (established by authentication) and a
//! typed input, validates it, and answers a typed output or an [`ApiError`]. Nothing here knows
//! about HTTP: the axum handlers in [`crate::http`] only extract, call and serialise, and the
//! gRPC transport will call the same functions.
//!
//! # Idempotency
//! The protocol is the application's, whichever transport asks ([`App::idempotent`]): an
//! operation's request is fingerprinted from its typed input ([`App::request_fingerprint`]),
//! so the same key over HTTP and gRPC is the same request; the key is claimed before the
//! operation runs, held as a renewed lease while it runs, and its answer (the typed output,
//! or the error) is stored afterwards. Over HTTP the operation runs in a task of its own
//! ([`App::idempotent_detached`]), so a client that hangs up does not cancel it. A retry waits for a request still in flight, and takes
//! over the claim of one whose process died; what a retry gets in each case is in
//! [`idempotency`]. Operations that send or start something also derive their ids from the key
//! ([`App::derived_id`]): the conversation id of a compose and the message id of a send.
//! Temporal rejects a second workflow with the same id and the session answers a repeated send
//! id with its first answer, so neither a run taken over after a crash nor a retry that
//! outlives the stored key (24 h) starts or sends anything twice.
//!
//! # Workspace configuration
//! Rates, window policies, compliance texts, the inactivity ping, balance top-ups and the
//! template registry need only the store, so they are [`WorkspaceAdmin`]'s operations
//! ([`App::workspace`]): both transports call them, and so does the `convo` CLI, without a
//! Temporal client.

mod balance;
mod compose;
mod contacts;
mod conversations;
pub mod idempotency;
mod inbound;
pub mod limits;
mod messages;
mod templates;
pub mod types;
mod webhooks;
mod windows;
mod workspace;

use std::{sync::Arc, time::Duration};

use convo_client::{Gateway, Sessions};
use convo_domain::{Channel, Timestamp};
use convo_store::{
    ApiKeyScope, ChannelConfig, Contact, ContactLookup, IdempotencyPolicy, Store, StoreError,
    webhooks::Destinations,
};
use convo_wire::sandbox::{Outbox, RecordedSend};
use convo_workflows::contracts::SessionView;

use crate::error::ApiError;

pub use inbound::{RbmAnswer, RbmInbound, TwilioInbound, WhatsappInbound};
pub use workspace::{MAX_SECS, WorkspaceAdmin, parse_channel};

/// The workspace a request acts for, as authentication established it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkspaceId(pub String);

impl WorkspaceId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who a request acts as: the workspace and the API key that authenticated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's workspace.
    pub workspace: WorkspaceId,
    /// The key's id (`key_...`), recorded with what the request changes (top-ups).
    pub api_key_id: String,
    /// What the key may do.
    pub scope: ApiKeyScope,
}

impl Caller {
    /// Refuses, 403 `forbidden`, what the key's scope does not cover; `operation` names it.
    pub fn authorize(&self, needed: ApiKeyScope, operation: &str) -> Result<(), ApiError> {
        if self.scope.allows(needed) {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "this API key's scope is {}; {operation} needs a {needed} key",
            self.scope
        )))
    }
}

/// What the application layer is configured with.
#[derive(Debug, Clone)]
pub struct AppSettings {
    /// How long Idempotency-Keys are kept, how long an in-flight claim's lease runs between
    /// renewals, and how long a retry waits for the request in flight.
    pub idempotency: IdempotencyPolicy,
    /// How long a composed conversation waits for the contact's reply.
    pub reply_timeout: Duration,
    /// How long a send may take before the API answers 503 (the send goes on, and a retry
    /// with the same Idempotency-Key attaches to it).
    pub send_timeout: Duration,
    /// How long closing a window waits for the session to report it closed.
    pub close_wait: Duration,
    /// The Meta app secret that signs WhatsApp webhooks, unless the channel's configuration
    /// has its own `app_secret`.
    pub whatsapp_app_secret: Option<String>,
    /// The token Meta's subscription handshake (`GET /v1/inbound/whatsapp`) must present.
    pub whatsapp_verify_token: Option<String>,
    /// The externally visible base URL (`https://api.example.com`), which Twilio signs; without
    /// it the URL is rebuilt from the request's `Host` and `X-Forwarded-Proto`.
    pub public_base_url: Option<String>,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Which webhook endpoint URLs may be subscribed: by default public `https` destinations
    /// only (`convo serve` also allows loopback over `http`).
    pub webhook_destinations: Destinations,
    /// Request rates per workspace and per API key (none by default).
    pub rate_limits: limits::RateLimits,
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            idempotency: IdempotencyPolicy::default(),
            reply_timeout: Duration::from_secs(48 * 3600),
            send_timeout: Duration::from_secs(30),
            close_wait: Duration::from_secs(5),
            whatsapp_app_secret: None,
            whatsapp_verify_token: None,
            public_base_url: None,
            max_body_bytes: 256 * 1024,
            webhook_destinations: Destinations::PUBLIC,
            rate_limits: limits::RateLimits::default(),
        }
    }
}

/// The application: sessions (Temporal), the store, the optional sandbox provider and the
/// settings. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    gateway: Arc<dyn Gateway>,
    store: Store,
    limiters: Arc<limits::Limiters>,
    settings: AppSettings,
    sandbox: Option<Arc<dyn Outbox>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("gateway", &self.inner.gateway)
            .field("sandbox", &self.inner.sandbox.is_some())
            .finish_non_exhaustive()
    }
}

impl App {
    /// An application over `sessions` (which carries the Temporal client and the store).
    pub fn new(sessions: Sessions, settings: AppSettings) -> Self {
        let store = sessions.store().clone();
        Self::over(Arc::new(sessions), store, settings)
    }

    /// An application over any [`Gateway`] to the workflows and `store`: [`Sessions`] in
    /// production, a fake in a handler test.
    pub fn over(gateway: Arc<dyn Gateway>, store: Store, settings: AppSettings) -> Self {
        let limiters = Arc::new(limits::Limiters::new(settings.rate_limits));
        Self { inner: Arc::new(Inner { gateway, store, limiters, settings, sandbox: None }) }
    }

    /// Also serves `GET /v1/sandbox/outbox` from this sandbox provider.
    pub fn with_sandbox(self, sandbox: Arc<dyn Outbox>) -> Self {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            gateway: shared.gateway.clone(),
            store: shared.store.clone(),
            limiters: shared.limiters.clone(),
            settings: shared.settings.clone(),
            sandbox: shared.sandbox.clone(),
        });
        Self { inner: Arc::new(Inner { sandbox: Some(sandbox), ..inner }) }
    }

    /// The settings.
    pub fn settings(&self) -> &AppSettings {
        &self.inner.settings
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The workflows, as the application reaches them.
    pub(crate) fn gateway(&self) -> &dyn Gateway {
        &*self.inner.gateway
    }

    // ---- auth ---------------------------------------------------------------------------

    /// Who presents the API key `key`: its workspace, id and scope; `unauthorized` for a
    /// missing, unknown or revoked key (one answer for all, so keys cannot be probed), and
    /// `rate_limited` for a key or workspace over its request rate
    /// ([`AppSettings::rate_limits`]). The transport then checks the scope the operation needs
    /// ([`Caller::authorize`]).
    pub async fn authenticate_caller(&self, key: Option<&str>) -> Result<Caller, ApiError> {
        let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else {
            return Err(ApiError::unauthorized(
                "an API key is required: Authorization: Bearer <key> or x-api-key",
            ));
        };
        let caller = match self.store().authenticate_api_key(key).await? {
            Some(found) => Caller {
                workspace: WorkspaceId(found.workspace_id),
                api_key_id: found.id,
                scope: found.scope,
            },
            None => return Err(ApiError::unauthorized("invalid API key")),
        };
        self.inner.limiters.check(&caller)?;
        Ok(caller)
    }

    /// The API key a request presents: `Authorization: Bearer <key>` (any case of `Bearer`),
    /// else `x-api-key`. An `Authorization` header of another scheme presents no key. Both
    /// transports read their headers (HTTP) or metadata (gRPC) through this.
    pub fn presented_api_key<'a>(
        authorization: Option<&'a str>,
        x_api_key: Option<&'a str>,
    ) -> Option<&'a str> {
        if let Some(value) = authorization {
            let (scheme, key) = value.trim().split_once(' ')?;
            return scheme.eq_ignore_ascii_case("bearer").then_some(key.trim());
        }
        x_api_key
    }

    // ---- idempotency --------------------------------------------------------------------

    /// An id for what a request creates: derived from the workspace, the Idempotency-Key and
    /// `scope` when there is a key (so a retry recreates the same id), random otherwise.
    pub fn derived_id(prefix: &str, ws: &WorkspaceId, key: Option<&str>, scope: &str) -> String {
        match key {
            Some(key) => {
                let material = format!("{}\n{scope}\n{key}", ws.as_str());
                let digest = ring::digest::digest(&ring::digest::SHA256, material.as_bytes());
                format!("{prefix}_{}", hex(&digest.as_ref()[..16]))
            }
            None => format!("{prefix}_{}", uuid::Uuid::new_v4().simple()),
        }
    }

    // ---- channels -------------------------------------------------------------------------

    /// `GET /v1/channels`: the workspace's channels, without provider credentials.
    pub async fn channels(
        &self,
        ws: &WorkspaceId,
    ) -> Result<types::List<types::ChannelOut>, ApiError> {
        let channels = self.store().channels(ws.as_str()).await?;
        Ok(types::List {
            data: channels
                .into_iter()
                .map(|c| types::ChannelOut {
                    id: c.id,
                    kind: c.channel,
                    provider: c.provider,
                    address: c.sender,
                    enabled: c.enabled,
                })
                .collect(),
        })
    }

    /// The workspace's enabled channel named by `reference`: a public id (`ch_...`) or a
    /// channel kind (`whatsapp`). Unknown, foreign and disabled channels are one 422 naming
    /// `field`, so another workspace's channel ids cannot be probed.
    pub(crate) async fn resolve_channel(
        &self,
        ws: &WorkspaceId,
        reference: &str,
        field: &str,
    ) -> Result<ChannelConfig, ApiError> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(ApiError::validation(field, "must not be empty"));
        }
        let unknown =
            || ApiError::validation(field, format!("no channel {reference:?} in this workspace"));
        let found = if let Some(kind) = Channel::ALL.into_iter().find(|c| c.as_str() == reference) {
            self.store().channel(ws.as_str(), kind).await
        } else {
            self.store().channel_by_id(reference).await
        };
        let channel = match found {
            Ok(c) if c.workspace_id == ws.as_str() => c,
            Ok(_) | Err(StoreError::NotFound { .. }) => return Err(unknown()),
            Err(e) => return Err(e.into()),
        };
        if !channel.enabled {
            return Err(ApiError::validation(field, format!("channel {reference:?} is disabled")));
        }
        Ok(channel)
    }

    // ---- contacts -------------------------------------------------------------------------

    /// The workspace's existing contact named by `reference`: an E.164 number, an e-mail
    /// address or a contact id. `None` when no such contact exists.
    pub(crate) async fn find_contact(
        &self,
        ws: &WorkspaceId,
        reference: &str,
        field: &str,
    ) -> Result<Option<Contact>, ApiError> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(ApiError::validation(field, "must not be empty"));
        }
        if is_address(reference) {
            return self
                .store()
                .contact_by_address(ws.as_str(), reference)
                .await
                .map_err(|e| rename_field(e.into(), field));
        }
        match self.store().contact(ws.as_str(), reference).await {
            Ok(c) => Ok(Some(c)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Like [`App::find_contact`], but creates the contact when an address names none yet.
    pub(crate) async fn find_or_create_contact(
        &self,
        ws: &WorkspaceId,
        reference: &str,
        name: Option<String>,
        field: &str,
    ) -> Result<Contact, ApiError> {
        let reference = reference.trim();
        if !is_address(reference) {
            return self
                .find_contact(ws, reference, field)
                .await?
                .ok_or_else(|| ApiError::validation(field, format!("no contact {reference:?}")));
        }
        let lookup = if reference.contains('@') {
            ContactLookup { email: Some(reference.to_owned()), name, ..Default::default() }
        } else {
            ContactLookup { phone: Some(reference.to_owned()), name, ..Default::default() }
        };
        let (contact, _) = self
            .store()
            .find_or_create_contact(ws.as_str(), lookup)
            .await
            .map_err(|e| rename_field(e.into(), field))?;
        Ok(contact)
    }

    // ---- sessions -------------------------------------------------------------------------

    /// The contact's session state; `None` when no session ever ran (or Temporal no longer
    /// has it), which reads as a closed window.
    pub(crate) async fn session_view(
        &self,
        ws: &WorkspaceId,
        contact_id: &str,
    ) -> Result<Option<SessionView>, ApiError> {
        Ok(self.gateway().session_view(ws.as_str(), contact_id).await?)
    }

    // ---- sandbox --------------------------------------------------------------------------

    /// The sandbox provider attached to this process, if any. Only then do the sandbox's
    /// routes exist (`convo serve`, the test stacks); the production `convo api` has none.
    pub fn sandbox(&self) -> Option<&dyn Outbox> {
        self.inner.sandbox.as_deref()
    }

    /// The attached sandbox, or `not_found` where none is (a transport that routes sandbox
    /// calls only where [`App::sandbox`] is set never meets this).
    fn attached_sandbox(&self) -> Result<&dyn Outbox, ApiError> {
        self.sandbox()
            .ok_or_else(|| ApiError::not_found("no sandbox provider runs in this process"))
    }

    /// Refuses `channel` unless the attached sandbox carries it: the sandbox's simulations of
    /// a contact (inbound messages, STOP included, and delivery statuses) never act on a
    /// channel a real provider carries.
    pub(crate) fn sandbox_channel(
        &self,
        channel: &ChannelConfig,
        field: &str,
    ) -> Result<(), ApiError> {
        if self.attached_sandbox()?.carries(&channel.provider, &channel.config) {
            return Ok(());
        }
        Err(ApiError::validation(
            field,
            format!(
                "the {} channel is carried by {}, not by this process's sandbox; only the \
                 sandbox's channels take simulated traffic",
                channel.channel, channel.provider
            ),
        ))
    }

    /// `GET /v1/sandbox/outbox`: the sends the sandbox provider accepted for this workspace's
    /// messages, oldest first. The sandbox is one per process and serves every workspace; a
    /// send is the workspace's when the message id it carried as its idempotency key is one of
    /// the workspace's messages, so no workspace sees another's traffic.
    pub async fn sandbox_outbox(
        &self,
        ws: &WorkspaceId,
    ) -> Result<types::List<RecordedSend>, ApiError> {
        let sends = self.attached_sandbox()?.sends();
        let ids: Vec<&str> = sends.iter().filter_map(|s| s.idempotency_key.as_deref()).collect();
        let owned = self.store().messages_of_workspace(ws.as_str(), &ids).await?;
        let data = sends
            .into_iter()
            .filter(|s| s.idempotency_key.as_ref().is_some_and(|k| owned.contains(k)))
            .collect();
        Ok(types::List { data })
    }

    // ---- health ---------------------------------------------------------------------------

    /// Readiness: the database answers a trivial query and Temporal answers `GetSystemInfo`.
    /// Returns each check's outcome; the caller decides the status.
    pub async fn readiness(&self) -> Vec<(&'static str, Result<(), String>)> {
        let db = async { sqlx_ping(self.store()).await };
        let temporal = self.gateway().ping();
        let (db, temporal) = futures::join!(db, temporal);
        vec![("database", db), ("temporal", temporal)]
    }
}

async fn sqlx_ping(store: &Store) -> Result<(), String> {
    let query = store.ping();
    match tokio::time::timeout(Duration::from_secs(3), query).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 3s".to_owned()),
    }
}

/// Whether a contact reference is an address (phone or e-mail) rather than a contact id.
pub(crate) fn is_address(reference: &str) -> bool {
    reference.contains('@') || reference.starts_with('+') || reference.starts_with("00")
}

/// Store validation errors name the store's field (`phone`); the API names its own.
pub(crate) fn rename_field(mut e: ApiError, field: &str) -> ApiError {
    if e.field.is_some() {
        e.field = Some(field.to_owned());
    }
    e
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// RFC 3339 in UTC with milliseconds, the API's one time format.
pub(crate) fn rfc3339(t: Timestamp) -> String {
    let millis = i64::try_from(t.as_epoch_millis()).unwrap_or(i64::MAX);
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The wall clock.
pub(crate) fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

/// A free-text field: trimmed, non-empty, at most `max` characters.
pub(crate) fn required_text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::validation(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ApiError::validation(field, format!("must be at most {max} characters")));
    }
    Ok(value.to_owned())
}

/// An optional free-text field: empty counts as absent.
pub(crate) fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => required_text(field, v, max).map(Some),
    }
}

/// A template name: 1 to 512 characters of letters, digits, `_`, `-` and `.`.
pub(crate) fn template_name(field: &str, name: &str) -> Result<String, ApiError> {
    let name = required_text(field, name, 512)?;
    if !name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return Err(ApiError::validation(field, "may contain only letters, digits, _, - and ."));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_per_workspace_and_key() {
        let a = WorkspaceId("ws-a".into());
        let b = WorkspaceId("ws-b".into());
        let id = App::derived_id("cv", &a, Some("k1"), "compose");
        assert_eq!(id, App::derived_id("cv", &a, Some("k1"), "compose"));
        assert_ne!(id, App::derived_id("cv", &b, Some("k1"), "compose"));
        assert_ne!(id, App::derived_id("cv", &a, Some("k1"), "proactive"));
        assert!(id.starts_with("cv_") && id.len() == 35, "{id}");
        assert_ne!(App::derived_id("cv", &a, None, "x"), App::derived_id("cv", &a, None, "x"));
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(Timestamp::from_epoch_millis(1_500)), "1970-01-01T00:00:01.500Z");
    }
}
