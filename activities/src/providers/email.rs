//! E-mail over SMTP (lettre), plaintext for the sandbox, STARTTLS or implicit TLS (rustls) in
//! production.
//!
//! The idempotency key becomes the `Message-ID` ([`message_id_for`]), so a retried send carries
//! the same id and downstream de-duplication (the sandbox, mailbox providers that collapse
//! duplicate ids) has something to key on. SMTP cannot report a duplicate; the sandbox's reply
//! text says `duplicate`, which is the only case [`SendReceipt::duplicate`] is true.

use std::time::Duration;

use convo_domain::window::{Content, TemplateText};
use futures::{FutureExt, future::BoxFuture};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, SinglePart},
    transport::smtp::{
        authentication::Credentials,
        client::{Tls, TlsParameters},
        extension::ClientId,
    },
};
use serde::{Deserialize, Serialize};

use super::{
    Provider, ProviderError, Rejection, Secret, SendReceipt, SendRequest, TemplateTexts,
    http::DEFAULT_TIMEOUT_MS,
};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plaintext: only for a trusted local relay such as the sandbox.
    None,
    /// Plaintext, then a required `STARTTLS` upgrade (submission port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
}

/// Configuration of an SMTP relay. Unknown keys are refused, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Relay host name (also the TLS server name).
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// Connection security; `starttls` unless configured otherwise.
    #[serde(default)]
    pub tls: SmtpTls,
    /// AUTH user, if the relay needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// AUTH password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Name sent in `EHLO`; `localhost` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hello_name: Option<String>,
    /// Right-hand side of generated `Message-ID`s; the sender address's domain when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id_domain: Option<String>,
    /// Templates rendered by convo (e-mail has no provider-side templates).
    #[serde(default, skip_serializing_if = "TemplateTexts::is_empty")]
    pub templates: TemplateTexts,
    /// Timeout per SMTP command, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// The SMTP adapter.
pub struct SmtpEmail {
    config: SmtpConfig,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for SmtpEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpEmail").field("config", &self.config).finish_non_exhaustive()
    }
}

impl SmtpEmail {
    /// An adapter for `config`. Fails if the TLS parameters cannot be built.
    pub fn new(config: SmtpConfig) -> Result<Self, ProviderError> {
        let misconfigured = |e: lettre::transport::smtp::Error| {
            ProviderError::permanent(Rejection::Misconfigured, "smtp_config", e.to_string())
        };
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => {
                Tls::Required(TlsParameters::new(config.host.clone()).map_err(misconfigured)?)
            }
            SmtpTls::Implicit => {
                Tls::Wrapper(TlsParameters::new(config.host.clone()).map_err(misconfigured)?)
            }
        };
        let hello = config.hello_name.clone().unwrap_or_else(|| "localhost".to_owned());
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .hello_name(ClientId::Domain(hello))
            .timeout(Some(Duration::from_millis(config.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS))));
        if let Some(user) = &config.username {
            let password = config.password.as_ref().map(|p| p.expose().to_owned());
            builder =
                builder.credentials(Credentials::new(user.clone(), password.unwrap_or_default()));
        }
        Ok(Self { transport: builder.build(), config })
    }

    /// The message `req` becomes, validated: a free-form e-mail needs a subject.
    pub fn message(&self, req: &SendRequest) -> Result<Message, ProviderError> {
        let from: Mailbox = req.from.parse().map_err(|e| {
            ProviderError::permanent(
                Rejection::Misconfigured,
                "invalid_sender",
                format!("sender {:?}: {e}", req.from),
            )
        })?;
        let to: Mailbox = req.to.parse().map_err(|e| {
            ProviderError::permanent(
                Rejection::InvalidRecipient,
                "invalid_recipient",
                format!("recipient {:?}: {e}", req.to),
            )
        })?;
        let (body, subject) = match &req.content {
            Content::Text { body, subject } => (body.clone(), subject.clone()),
            Content::Rich(_) => return Err(SendRequest::rich_refused("e-mail")),
            // The registry's rendering: the subject line, and the rest as the body.
            Content::Template { name, params } => match &params.text {
                Some(text) => {
                    let body = TemplateText { subject: None, ..text.clone() }.plain();
                    (body, text.subject.clone())
                }
                None => req.render_local_template(name, &self.config.templates)?,
            },
        };
        let subject = subject.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            ProviderError::permanent(
                Rejection::InvalidContent,
                "missing_subject",
                "an e-mail needs a subject",
            )
        })?;
        let domain =
            self.config.message_id_domain.clone().unwrap_or_else(|| from.email.domain().to_owned());
        Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .message_id(Some(message_id_for(&req.idempotency_key, &domain)))
            .singlepart(SinglePart::plain(body))
            .map_err(|e| {
                ProviderError::permanent(
                    Rejection::InvalidContent,
                    "invalid_message",
                    e.to_string(),
                )
            })
    }

    async fn send_inner(&self, req: &SendRequest) -> Result<SendReceipt, ProviderError> {
        req.validate()?;
        let message = self.message(req)?;
        let message_id =
            message.headers().get_raw("Message-ID").map(str::to_owned).unwrap_or_default();
        let response = self.transport.send(message).await.map_err(|e| classify_error(&e))?;
        let duplicate = response.message().any(|line| line.contains("duplicate"));
        Ok(SendReceipt { provider_message_id: message_id, duplicate })
    }
}

impl Provider for SmtpEmail {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn send<'a>(
        &'a self,
        req: &'a SendRequest,
    ) -> BoxFuture<'a, Result<SendReceipt, ProviderError>> {
        self.send_inner(req).boxed()
    }
}

/// Characters kept verbatim in the left part of a `Message-ID`. Everything else (including `.`,
/// which may not lead, trail or repeat in a dot-atom) is written `=HH` per UTF-8 byte, so any key
/// yields a valid, reversible id.
fn keep(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// `<{encoded key}@{domain}>`: deterministic in the idempotency key.
pub fn message_id_for(key: &str, domain: &str) -> String {
    let mut left = String::with_capacity(key.len());
    for c in key.chars() {
        if keep(c) {
            left.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                left.push_str(&format!("={b:02X}"));
            }
        }
    }
    format!("<{left}@{domain}>")
}

/// The idempotency key a [`message_id_for`] id encodes, if it is one.
pub fn key_from_message_id(message_id: &str) -> Option<String> {
    let inner = message_id.trim().strip_prefix('<')?.strip_suffix('>')?;
    let (left, _domain) = inner.rsplit_once('@')?;
    let mut bytes = Vec::with_capacity(left.len());
    let mut chars = left.bytes();
    while let Some(b) = chars.next() {
        if b == b'=' {
            let hex = [chars.next()?, chars.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
        } else if keep(char::from(b)) {
            bytes.push(b);
        } else {
            return None;
        }
    }
    String::from_utf8(bytes).ok()
}

fn classify_error(err: &lettre::transport::smtp::Error) -> ProviderError {
    let detail = std::error::Error::source(err).map(ToString::to_string).unwrap_or_default();
    if let Some(code) = err.status() {
        return classify_reply(u16::from(code), &detail);
    }
    if err.is_client() {
        return ProviderError::permanent(Rejection::Misconfigured, "smtp_client", err.to_string());
    }
    let code = if err.is_timeout() { "timeout" } else { "connect" };
    ProviderError::transient(code, err.to_string())
}

/// Classifies a negative SMTP reply: 4xx transient, 5xx permanent, refined by the enhanced
/// status code (RFC 3463) when the text starts with one.
pub fn classify_reply(code: u16, text: &str) -> ProviderError {
    let code_text = code.to_string();
    if (400..500).contains(&code) {
        return ProviderError::transient(code_text, text);
    }
    let enhanced = text.split_whitespace().next().filter(|w| {
        let parts: Vec<_> = w.split('.').collect();
        parts.len() == 3
            && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    let kind = match (enhanced, code) {
        (Some(e), _) if e.starts_with("5.1.") => Rejection::InvalidRecipient,
        (Some("5.7.8" | "5.7.0"), 535) | (_, 530 | 534 | 535 | 538) => Rejection::Auth,
        (Some("5.3.4" | "5.2.3" | "5.6.0" | "5.6.1"), _) | (_, 552) => Rejection::InvalidContent,
        (Some(e), _) if e.starts_with("5.7.") => Rejection::Rejected,
        (_, 550 | 551 | 553) => Rejection::InvalidRecipient,
        _ => Rejection::Rejected,
    };
    ProviderError::permanent(kind, code_text, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_classification_table() {
        let table = [
            (421, "4.3.0 try later", "ProviderTransient"),
            (451, "4.7.1 rate limited", "ProviderTransient"),
            (452, "", "ProviderTransient"),
            (550, "5.1.1 no such user", "InvalidRecipient"),
            (550, "", "InvalidRecipient"),
            (553, "mailbox name not allowed", "InvalidRecipient"),
            (550, "5.7.1 rejected by policy", "ProviderRejected"),
            (535, "5.7.8 bad credentials", "ProviderAuth"),
            (530, "", "ProviderAuth"),
            (552, "5.3.4 too big", "InvalidContent"),
            (554, "transaction failed", "ProviderRejected"),
        ];
        for (code, text, expected) in table {
            assert_eq!(classify_reply(code, text).error_type(), expected, "{code} {text}");
        }
    }

    #[test]
    fn message_ids_are_deterministic_valid_and_reversible() {
        for key in ["msg-1", "reply:wamid.HB==", "ping:ü 1", "..", ""] {
            let id = message_id_for(key, "example.com");
            assert_eq!(id, message_id_for(key, "example.com"));
            let left = id.trim_start_matches('<').split('@').next().unwrap();
            assert!(left.chars().all(|c| keep(c) || c == '='), "{id}");
            assert_eq!(key_from_message_id(&id).as_deref(), Some(key), "{id}");
        }
        assert_eq!(message_id_for("a:b", "x.org"), "<a=3Ab@x.org>");
        assert_eq!(key_from_message_id("<not valid!@x>"), None);
        assert_eq!(key_from_message_id("no-brackets@x"), None);
    }
}
