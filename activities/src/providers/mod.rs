//! Channel providers: the adapters that hand a business message to WhatsApp, SMS, RCS or e-mail.
//!
//! Every adapter implements one object-safe port, [`Provider`], so a workspace channel's stored
//! [`ProviderConfig`] (JSON) turns into an `Arc<dyn Provider>` with [`build`] and activities
//! never know which network they talk to.
//!
//! # Idempotency
//! [`SendRequest::idempotency_key`] is the domain `MessageId`, which the workflow derives
//! deterministically, so a retried activity presents the same key. Each adapter forwards it in
//! the provider's own idempotency slot: Twilio's `I-Twilio-Idempotency-Token`, RBM's
//! `messageId` (a repeat answers 409 `ALREADY_EXISTS`, reported as a duplicate success), and
//! e-mail's `Message-ID`. Meta's Cloud API has no idempotency key; the adapter still sends an
//! `Idempotency-Key` header (the sandbox and proxies de-duplicate on it), so for WhatsApp
//! at-most-once relies on that header plus the deterministic id, not on Meta.
//!
//! # Errors
//! Every failure is a [`ProviderError`], transient or permanent, with a stable
//! [`ProviderError::error_type`] string (see [`error_types`]) that workflows match on.
//!
//! # Adapters
//! - [`whatsapp`]: WhatsApp Cloud API (`POST /v{ver}/{phone_number_id}/messages`).
//! - [`twilio`]: SMS through a Twilio-style gateway (`POST /2010-04-01/Accounts/{sid}/Messages.json`).
//! - [`rbm`]: RCS through Google RBM (`POST /v1/phones/{E.164}/agentMessages`).
//! - [`email`]: e-mail over SMTP (lettre).
//! - [`native`]: the sandbox's own JSON endpoint, for channels without a real-shaped adapter
//!   (Messenger, Instagram).

pub mod email;
mod error;
mod http;
pub mod native;
pub mod rbm;
mod request;
pub mod twilio;
pub mod whatsapp;

use std::{collections::BTreeMap, fmt, sync::Arc};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use error::{ProviderError, Rejection, error_types};
pub use request::{RenderedTemplate, SendReceipt, SendRequest};

/// A channel provider: hands one message to the network and says whether it was accepted.
///
/// Object-safe (`Arc<dyn Provider>`) so the composition root picks the adapter from stored
/// configuration; the future is boxed instead of using `async fn` for the same reason.
pub trait Provider: Send + Sync + fmt::Debug {
    /// A short adapter name for logs (`"whatsapp_cloud"`, `"twilio"`, ...).
    fn name(&self) -> &'static str;

    /// Sends `req`. A repeat of an accepted key answers the same provider id with
    /// `duplicate: true` where the provider can tell.
    fn send<'a>(
        &'a self,
        req: &'a SendRequest,
    ) -> BoxFuture<'a, Result<SendReceipt, ProviderError>>;
}

/// A secret (token, password) that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

/// How a workspace channel reaches its provider, stored per channel as JSON.
///
/// Tagged by `provider`, e.g. `{"provider":"whatsapp_cloud","base_url":..,..}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum ProviderConfig {
    /// WhatsApp Cloud API.
    WhatsappCloud(whatsapp::WhatsappConfig),
    /// Twilio-style SMS gateway.
    Twilio(twilio::TwilioConfig),
    /// Google RBM (RCS).
    Rbm(rbm::RbmConfig),
    /// SMTP relay.
    Smtp(email::SmtpConfig),
    /// The sandbox's native JSON endpoint.
    SandboxNative(native::NativeConfig),
}

/// Builds the adapter `config` describes.
///
/// Fails only on configuration the adapter cannot use at all (e.g. a TLS parameter it cannot
/// build), as a permanent [`Rejection::Misconfigured`] error, so an activity can `?` it like any
/// send failure.
pub fn build(config: &ProviderConfig) -> Result<Arc<dyn Provider>, ProviderError> {
    let adapter: Arc<dyn Provider> = match config {
        ProviderConfig::WhatsappCloud(c) => Arc::new(whatsapp::WhatsappCloud::new(c.clone())?),
        ProviderConfig::Twilio(c) => Arc::new(twilio::TwilioSms::new(c.clone())?),
        ProviderConfig::Rbm(c) => Arc::new(rbm::RbmRcs::new(c.clone())?),
        ProviderConfig::Smtp(c) => Arc::new(email::SmtpEmail::new(c.clone())?),
        ProviderConfig::SandboxNative(c) => Arc::new(native::NativeSandbox::new(c.clone())?),
    };
    // Every send is counted by channel, adapter and outcome (`convo_sends_total`).
    Ok(Arc::new(Measured(adapter)))
}

/// A provider adapter that counts its calls in `convo_sends_total` ([`convo_metrics::SENDS`]);
/// what [`build`] returns.
#[derive(Debug)]
struct Measured(Arc<dyn Provider>);

impl Provider for Measured {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn send<'a>(
        &'a self,
        req: &'a SendRequest,
    ) -> BoxFuture<'a, Result<SendReceipt, ProviderError>> {
        Box::pin(async move {
            let result = self.0.send(req).await;
            let outcome = match &result {
                Ok(_) => "accepted",
                Err(e) if e.is_retryable() => "failed",
                Err(_) => "rejected",
            };
            metrics::counter!(convo_metrics::SENDS, "channel" => req.channel.as_str(), "provider" => self.0.name(),
                "outcome" => outcome)
            .increment(1);
            result
        })
    }
}

/// Templates rendered on convo's side, for networks with no server-side templates (RCS, e-mail):
/// template name → text, with `{{1}}`, `{{2}}`, ... replaced by the request's parameters.
pub type TemplateTexts = BTreeMap<String, RenderedTemplate>;
