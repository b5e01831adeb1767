//! What a send carries in and what comes back.

use convo_domain::{Channel, window::Content};
use serde::{Deserialize, Serialize};

use super::{ProviderError, Rejection, TemplateTexts};

/// One message to hand to a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRequest {
    /// The domain `MessageId`. Deterministic, so a retried activity presents the same key and the
    /// provider (or the sandbox) de-duplicates instead of sending twice.
    pub idempotency_key: String,
    /// The channel, which the sandbox records and the native adapter forwards.
    pub channel: Channel,
    /// The workspace's sender on this channel (phone number, RBM agent, e-mail address).
    pub from: String,
    /// The contact's address on this channel.
    pub to: String,
    /// What it says.
    pub content: Content,
    /// Written by a person in the Messenger/Instagram human-agent allowance.
    #[serde(default)]
    pub human_agent_tag: bool,
    /// Template language (WhatsApp `language.code`); the adapter's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_language: Option<String>,
    /// Positional template parameters (`{{1}}`, `{{2}}`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_params: Vec<String>,
    /// The caller's regulatory classification (RBM's `messageTrafficType`), already checked
    /// against the channel's approved use case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_type: Option<convo_domain::TrafficType>,
}

impl SendRequest {
    /// A free-form text message.
    pub fn text(
        idempotency_key: impl Into<String>,
        channel: Channel,
        from: impl Into<String>,
        to: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Self::new(
            idempotency_key,
            channel,
            from,
            to,
            Content::Text { body: body.into(), subject: None },
        )
    }

    /// A message with any content and no template options.
    pub fn new(
        idempotency_key: impl Into<String>,
        channel: Channel,
        from: impl Into<String>,
        to: impl Into<String>,
        content: Content,
    ) -> Self {
        Self {
            idempotency_key: idempotency_key.into(),
            channel,
            from: from.into(),
            to: to.into(),
            content,
            human_agent_tag: false,
            template_language: None,
            template_params: Vec::new(),
            traffic_type: None,
        }
    }

    /// Checks what every adapter needs before it touches the network: a key and a recipient
    /// (retrying cannot fix either).
    pub(crate) fn validate(&self) -> Result<(), ProviderError> {
        if self.idempotency_key.trim().is_empty() {
            return Err(ProviderError::permanent(
                Rejection::InvalidContent,
                "missing_idempotency_key",
                "a send needs an idempotency key",
            ));
        }
        if self.to.trim().is_empty() {
            return Err(ProviderError::permanent(
                Rejection::InvalidRecipient,
                "missing_recipient",
                "a send needs a recipient",
            ));
        }
        Ok(())
    }

    /// The refusal of RCS rich content by an adapter of another network (the session refuses it
    /// first; this keeps an adapter from ever flattening it into text).
    pub(crate) fn rich_refused(provider: &str) -> ProviderError {
        ProviderError::permanent(
            Rejection::InvalidContent,
            "rich_content_unsupported",
            format!("{provider} carries no RCS rich content (suggestions, cards, carousels)"),
        )
    }

    /// Renders a template convo stores itself (networks without server-side templates).
    pub(crate) fn render_local_template(
        &self,
        name: &str,
        templates: &TemplateTexts,
    ) -> Result<(String, Option<String>), ProviderError> {
        let template = templates.get(name).ok_or_else(|| {
            ProviderError::permanent(
                Rejection::InvalidContent,
                "unknown_template",
                format!("template {name:?} is not configured for {}", self.channel),
            )
        })?;
        let fill = |text: &str| {
            self.template_params.iter().enumerate().fold(text.to_owned(), |acc, (i, value)| {
                acc.replace(&format!("{{{{{}}}}}", i + 1), value)
            })
        };
        Ok((fill(&template.body), template.subject.as_deref().map(fill)))
    }
}

/// A template's text, kept in the channel's configuration when the network has no templates of
/// its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderedTemplate {
    /// Body, with `{{n}}` placeholders.
    pub body: String,
    /// Subject (e-mail), with `{{n}}` placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// The provider's answer to an accepted send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReceipt {
    /// The provider's id for the message (`wamid.…`, `SM…`, RBM resource name, `Message-ID`).
    pub provider_message_id: String,
    /// The provider had already accepted this idempotency key; nothing new was sent.
    pub duplicate: bool,
}
