//! The built-in `sandbox` channel provider: a real server on loopback that answers the
//! production adapters in their real wire shapes, records every accepted send, de-duplicates on
//! the idempotency key and fails on demand.
//!
//! `cargo run` and every end-to-end test use it as the channel provider, so the code that talks
//! to Meta, Twilio, Google and SMTP relays in production is the code under test.
//!
//! # Endpoints (HTTP, one port)
//! | Path | Speaks |
//! |---|---|
//! | `POST /v{ver}/{phone_number_id}/messages` | WhatsApp Cloud API (bearer [`SANDBOX_TOKEN`]) |
//! | `POST /2010-04-01/Accounts/{sid}/Messages.json` | Twilio (basic [`SANDBOX_ACCOUNT_SID`]:[`SANDBOX_TOKEN`]) |
//! | `POST /v1/phones/{E.164}/agentMessages?messageId=&agentId=` | Google RBM (bearer [`SANDBOX_TOKEN`]) |
//! | `POST /_sandbox/messages` | the native protocol ([`crate::providers::native`]) |
//! | `GET`/`POST`/`DELETE /_sandbox/faults` | list / arm ([`FaultRule`] JSON) / clear faults |
//! | `GET`/`DELETE /_sandbox/sends` | list ([`RecordedSend`] JSON) / clear sends and keys |
//!
//! SMTP listens on a second port (`EHLO`, `MAIL`, `RCPT`, `DATA`, `QUIT`, plaintext).
//!
//! # Idempotency
//! The key is read from `Idempotency-Key` (WhatsApp, native), `I-Twilio-Idempotency-Token`
//! (Twilio), `messageId` (RBM) or the `Message-ID` (SMTP). A repeat on the same channel answers
//! the first provider id, is not recorded again, and is flagged: `Idempotent-Replayed: true` on
//! HTTP, 409 `ALREADY_EXISTS` on RBM, `duplicate` in the SMTP reply text.
//!
//! # Faults
//! Armed faults are checked before de-duplication, in arming order; the first that matches the
//! channel and recipient is consumed. See [`Fault`] for how each one looks per channel.
//!
//! A slow provider is a latency ([`SandboxHandle::set_latency`], in process only): every send
//! on every channel is answered (accepted or failed) only after it, so tests can act while a
//! send is still with the provider.

mod faults;
mod http;
mod mime;
mod smtp;
mod state;

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use convo_domain::Channel;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

pub use faults::{Fault, FaultRule};
pub use state::RecordedSend;

use crate::providers::{
    ProviderConfig, email::SmtpConfig, email::SmtpTls, native::NativeConfig, rbm::RbmConfig,
    twilio::TwilioConfig, whatsapp::WhatsappConfig,
};
use convo_store::ChannelConfig;

/// The token every sandbox endpoint accepts (bearer, or Twilio's basic-auth password).
pub const SANDBOX_TOKEN: &str = "sandbox-token";
/// The Twilio account SID the sandbox accepts.
pub const SANDBOX_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
/// The WhatsApp phone-number id [`SandboxHandle::provider_config`] uses.
pub const SANDBOX_PHONE_NUMBER_ID: &str = "100000000000001";
/// The RBM agent id [`SandboxHandle::provider_config`] uses.
pub const SANDBOX_AGENT_ID: &str = "convo-sandbox-agent";

/// Per-request timeout of the adapters [`SandboxHandle::provider_config`] configures: loopback
/// answers in milliseconds, and a test should fail fast rather than hang.
const SANDBOX_TIMEOUT_MS: u64 = 5_000;

/// Starts sandboxes.
#[derive(Debug)]
pub struct Sandbox;

impl Sandbox {
    /// Serves HTTP on `addr` (port 0 picks a free one) and SMTP on a free port of the same IP.
    pub async fn start(addr: SocketAddr) -> io::Result<SandboxHandle> {
        Self::start_on(addr, SocketAddr::new(addr.ip(), 0)).await
    }

    /// Serves HTTP on `http_addr` and SMTP on `smtp_addr`.
    pub async fn start_on(
        http_addr: SocketAddr,
        smtp_addr: SocketAddr,
    ) -> io::Result<SandboxHandle> {
        let http_listener = TcpListener::bind(http_addr).await?;
        let smtp_listener = TcpListener::bind(smtp_addr).await?;
        let http_addr = http_listener.local_addr()?;
        let smtp_addr = smtp_listener.local_addr()?;
        let shared = Arc::new(state::Shared::new());
        let (stop, stopped) = watch::channel(false);

        let router = http::router(shared.clone());
        let mut http_stop = stopped.clone();
        let http_task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = http_stop.wait_for(|stop| *stop).await;
            };
            if let Err(e) =
                axum::serve(http_listener, router).with_graceful_shutdown(shutdown).await
            {
                tracing::warn!(error = %e, "sandbox http server failed");
            }
        });
        let smtp_task = tokio::spawn(smtp::serve(smtp_listener, shared.clone(), stopped));
        tracing::info!(%http_addr, %smtp_addr, "sandbox provider listening");
        Ok(SandboxHandle { shared, http_addr, smtp_addr, stop, tasks: vec![http_task, smtp_task] })
    }
}

/// A running sandbox. Dropping it stops the listeners; [`SandboxHandle::shutdown`] also waits
/// for them.
pub struct SandboxHandle {
    shared: Arc<state::Shared>,
    http_addr: SocketAddr,
    smtp_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("http_addr", &self.http_addr)
            .field("smtp_addr", &self.smtp_addr)
            .finish_non_exhaustive()
    }
}

/// [`SandboxHandle::wait_for_sends`] gave up.
#[derive(Debug, Clone, thiserror::Error)]
#[error("expected {expected} sends within {timeout:?}, saw {seen}")]
pub struct WaitTimeout {
    /// Sends waited for.
    pub expected: usize,
    /// Sends recorded when the time ran out.
    pub seen: usize,
    /// How long it waited.
    pub timeout: Duration,
}

impl convo_wire::sandbox::Outbox for SandboxHandle {
    fn sends(&self) -> Vec<RecordedSend> {
        SandboxHandle::sends(self)
    }

    fn carries(&self, provider: &str, config: &serde_json::Value) -> bool {
        self.carries_config(provider, config)
    }
}

impl SandboxHandle {
    /// The HTTP listener's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The SMTP listener's address.
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp_addr
    }

    /// Renders template sends with `store`'s registry from now on, so that each
    /// [`RecordedSend::rendered`] shows what the contact would see. Set once; later calls do
    /// nothing.
    pub fn render_templates_from(&self, store: convo_store::Store) {
        self.shared.render_templates_from(store);
    }

    /// `http://{http_addr}`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// A workspace channel carried by this sandbox, ready for `Store::upsert_channel` (the store
    /// assigns its id). `sender` is the business's address: a number, or an e-mail address on
    /// the e-mail channel.
    pub fn channel_config(
        &self,
        workspace_id: &str,
        channel: Channel,
        sender: impl Into<String>,
    ) -> ChannelConfig {
        ChannelConfig {
            id: String::new(),
            workspace_id: workspace_id.to_owned(),
            channel,
            provider: "sandbox".to_owned(),
            config: serde_json::to_value(self.provider_config(channel))
                .expect("provider configs serialize to JSON"),
            sender: sender.into(),
            enabled: true,
        }
    }

    /// Whether `channel` is carried by this sandbox: its provider is `sandbox` and its
    /// configuration points at this sandbox's listeners. The sandbox's inbound and status
    /// simulations act only on such channels, never on one a real provider carries.
    pub fn carries(&self, channel: &ChannelConfig) -> bool {
        self.carries_config(&channel.provider, &channel.config)
    }

    fn carries_config(&self, provider: &str, config: &serde_json::Value) -> bool {
        if provider != "sandbox" {
            return false;
        }
        let Ok(config) = serde_json::from_value::<ProviderConfig>(config.clone()) else {
            return false;
        };
        let base_url = self.base_url();
        let here = |url: &str| url.trim_end_matches('/') == base_url;
        match &config {
            ProviderConfig::WhatsappCloud(c) => here(&c.base_url),
            ProviderConfig::Twilio(c) => here(&c.base_url),
            ProviderConfig::Rbm(c) => here(&c.base_url),
            ProviderConfig::SandboxNative(c) => here(&c.base_url),
            ProviderConfig::Smtp(c) => {
                c.port == self.smtp_addr.port()
                    && c.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip == self.smtp_addr.ip())
            }
        }
    }

    /// A configuration that points `channel`'s production adapter at this sandbox: WhatsApp,
    /// SMS, RCS and e-mail get their real-shaped adapter, Messenger and Instagram the native one.
    pub fn provider_config(&self, channel: Channel) -> ProviderConfig {
        let base_url = self.base_url();
        let timeout_ms = Some(SANDBOX_TIMEOUT_MS);
        match channel {
            Channel::Whatsapp => ProviderConfig::WhatsappCloud(WhatsappConfig {
                base_url,
                api_version: crate::providers::whatsapp::DEFAULT_API_VERSION.to_owned(),
                phone_number_id: SANDBOX_PHONE_NUMBER_ID.to_owned(),
                access_token: SANDBOX_TOKEN.into(),
                app_secret: None,
                default_language: None,
                timeout_ms,
            }),
            Channel::Sms => ProviderConfig::Twilio(TwilioConfig {
                base_url,
                account_sid: SANDBOX_ACCOUNT_SID.to_owned(),
                auth_token: SANDBOX_TOKEN.into(),
                timeout_ms,
            }),
            Channel::Rcs => ProviderConfig::Rbm(RbmConfig {
                base_url,
                agent_id: SANDBOX_AGENT_ID.to_owned(),
                access_token: SANDBOX_TOKEN.into(),
                templates: Default::default(),
                timeout_ms,
                client_token: None,
            }),
            Channel::Email => ProviderConfig::Smtp(SmtpConfig {
                host: self.smtp_addr.ip().to_string(),
                port: self.smtp_addr.port(),
                tls: SmtpTls::None,
                username: None,
                password: None,
                hello_name: Some("convo.localhost".to_owned()),
                message_id_domain: None,
                templates: Default::default(),
                timeout_ms,
            }),
            Channel::Messenger | Channel::Instagram => {
                ProviderConfig::SandboxNative(NativeConfig { base_url, timeout_ms })
            }
        }
    }

    /// Every accepted send, in order.
    pub fn sends(&self) -> Vec<RecordedSend> {
        self.shared.sends()
    }

    /// Waits until at least `n` sends are recorded, then returns them all. Event-driven: it
    /// wakes on each recorded send, never polls.
    pub async fn wait_for_sends(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<RecordedSend>, WaitTimeout> {
        let mut count = self.shared.subscribe();
        match tokio::time::timeout(timeout, count.wait_for(|c| *c >= n)).await {
            Ok(Ok(_)) => Ok(self.sends()),
            _ => Err(WaitTimeout { expected: n, seen: self.sends().len(), timeout }),
        }
    }

    /// Forgets every recorded send and idempotency key.
    pub fn clear_sends(&self) {
        self.shared.clear_sends();
    }

    /// Arms a fault.
    pub fn inject(&self, rule: FaultRule) {
        self.shared.add_fault(rule);
    }

    /// The faults still armed.
    pub fn faults(&self) -> Vec<FaultRule> {
        self.shared.faults()
    }

    /// Disarms every fault (ends an outage).
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// Answers every later send only after `latency` (a slow provider); zero, the default,
    /// answers at once. Sends already waiting keep the latency they started with.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.set_latency(latency);
    }

    /// Stops both listeners and waits for them (at most a few seconds: a client holding a
    /// connection open must not hang the caller, so stragglers are aborted).
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        for mut task in self.tasks.drain(..) {
            if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
