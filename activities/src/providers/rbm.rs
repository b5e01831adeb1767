//! RCS through Google RCS Business Messaging:
//! `POST {base}/v1/phones/{E.164}/agentMessages?messageId={key}&agentId={agent}` with
//! `{"contentMessage":{"text":..}}`.
//!
//! RBM de-duplicates on `messageId`: a repeat answers 409 `ALREADY_EXISTS`, which this adapter
//! reports as a duplicate success with the same resource name. RBM has no server-side templates,
//! so a template send is rendered from [`RbmConfig::templates`].

use std::time::Duration;

use convo_domain::window::Content;
use futures::{FutureExt, future::BoxFuture};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    Provider, ProviderError, Rejection, Secret, SendReceipt, SendRequest, TemplateTexts, http,
};

/// Configuration of an RBM agent. Unknown keys are refused, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbmConfig {
    /// `https://rcsbusinessmessaging.googleapis.com` in production, the sandbox's URL in tests.
    pub base_url: String,
    /// The agent id.
    pub agent_id: String,
    /// OAuth access token of the agent's service account.
    pub access_token: Secret,
    /// Templates rendered by convo (RBM has none of its own).
    #[serde(default, skip_serializing_if = "TemplateTexts::is_empty")]
    pub templates: TemplateTexts,
    /// Request timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// The webhook's `clientToken`: it signs the agent events RBM posts to convo
    /// (`X-Goog-Signature`, checked by `POST /v1/inbound/rbm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<Secret>,
}

/// The RBM adapter.
#[derive(Debug)]
pub struct RbmRcs {
    config: RbmConfig,
    client: reqwest::Client,
}

/// The resource name RBM gives an agent message; known in advance, so a 409 can answer it.
pub fn message_name(phone: &str, message_id: &str) -> String {
    format!("phones/{phone}/agentMessages/{message_id}")
}

impl RbmRcs {
    /// An adapter for `config`.
    pub fn new(config: RbmConfig) -> Result<Self, ProviderError> {
        let client = http::client(config.timeout_ms)?;
        Ok(Self { config, client })
    }

    async fn send_inner(&self, req: &SendRequest) -> Result<SendReceipt, ProviderError> {
        req.validate()?;
        let text = match &req.content {
            Content::Text { body, .. } => body.clone(),
            // RBM has no server-side templates: the registry's rendering is sent as text.
            Content::Template { name, params } => match &params.text {
                Some(text) => text.plain(),
                None => req.render_local_template(name, &self.config.templates)?.0,
            },
        };
        let url = format!(
            "{}/v1/phones/{}/agentMessages",
            http::trim_base(&self.config.base_url),
            req.to
        );
        let response = self
            .client
            .post(url)
            .query(&[("messageId", &req.idempotency_key), ("agentId", &self.config.agent_id)])
            .bearer_auth(self.config.access_token.expose())
            .json(&json!({ "contentMessage": { "text": text } }))
            .send()
            .await
            .map_err(|e| http::transport_error(&e))?;
        let status = response.status();
        let retry_after = http::retry_after(response.headers());
        if http::is_success(status) {
            let parsed: AgentMessage =
                response.json().await.map_err(|e| http::malformed_success(&e))?;
            let name = parsed.name.unwrap_or_else(|| message_name(&req.to, &req.idempotency_key));
            return Ok(SendReceipt { provider_message_id: name, duplicate: false });
        }
        let text = response.text().await.unwrap_or_default();
        let error = serde_json::from_str::<ErrorEnvelope>(&text).ok().map(|e| e.error);
        let (grpc_status, message) = match error {
            Some(e) => (e.status, e.message),
            None => (String::new(), text),
        };
        if status.as_u16() == 409 || grpc_status == "ALREADY_EXISTS" {
            return Ok(SendReceipt {
                provider_message_id: message_name(&req.to, &req.idempotency_key),
                duplicate: true,
            });
        }
        Err(classify(status.as_u16(), &grpc_status, message, retry_after))
    }
}

impl Provider for RbmRcs {
    fn name(&self) -> &'static str {
        "rbm"
    }

    fn send<'a>(
        &'a self,
        req: &'a SendRequest,
    ) -> BoxFuture<'a, Result<SendReceipt, ProviderError>> {
        self.send_inner(req).boxed()
    }
}

#[derive(Deserialize)]
struct AgentMessage {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: GoogleError,
}

#[derive(Deserialize)]
struct GoogleError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

/// Classifies a Google API error by its canonical status name, falling back to the HTTP status.
/// (409 `ALREADY_EXISTS` never gets here: it is a duplicate success.)
pub fn classify(
    status: u16,
    grpc_status: &str,
    message: String,
    retry_after: Option<Duration>,
) -> ProviderError {
    let code = if grpc_status.is_empty() { status.to_string() } else { grpc_status.to_owned() };
    let permanent = |kind| ProviderError::permanent(kind, code.clone(), message.clone());
    match grpc_status {
        "RESOURCE_EXHAUSTED" | "UNAVAILABLE" | "INTERNAL" | "DEADLINE_EXCEEDED" | "ABORTED" => {
            ProviderError::Transient { code, message, retry_after }
        }
        "UNAUTHENTICATED" | "PERMISSION_DENIED" => permanent(Rejection::Auth),
        // The phone is not RCS-capable (or not reachable by this agent).
        "NOT_FOUND" => permanent(Rejection::NotCapable),
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => permanent(Rejection::InvalidContent),
        _ if status == 404 => permanent(Rejection::NotCapable),
        _ => http::by_status(status, code, message, retry_after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let table = [
            (404, "NOT_FOUND", "RecipientNotCapable"),
            (404, "", "RecipientNotCapable"),
            (429, "RESOURCE_EXHAUSTED", "ProviderTransient"),
            (503, "UNAVAILABLE", "ProviderTransient"),
            (500, "INTERNAL", "ProviderTransient"),
            (401, "UNAUTHENTICATED", "ProviderAuth"),
            (403, "PERMISSION_DENIED", "ProviderAuth"),
            (400, "INVALID_ARGUMENT", "InvalidContent"),
            (400, "", "ProviderRejected"),
            (502, "", "ProviderTransient"),
        ];
        for (status, grpc, expected) in table {
            let err = classify(status, grpc, "m".into(), None);
            assert_eq!(err.error_type(), expected, "{status} {grpc}");
        }
    }
}
