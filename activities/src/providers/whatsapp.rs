//! WhatsApp Cloud API: `POST {base}/v{version}/{phone_number_id}/messages`, bearer token.
//!
//! Meta's API has no idempotency key. The adapter sends `Idempotency-Key` anyway so that the
//! sandbox (and any de-duplicating proxy) can drop repeats; against Meta itself, at-most-once
//! rests on the activity's deterministic id and Temporal's retry policy.

use std::time::Duration;

use convo_domain::window::{Content, TemplateButtonParam, TemplateParam, TemplateParams};
use futures::{FutureExt, future::BoxFuture};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Provider, ProviderError, Rejection, Secret, SendReceipt, SendRequest, http};

/// Graph API version when the configuration names none.
pub const DEFAULT_API_VERSION: &str = "21.0";
/// Template language when neither the request nor the configuration names one.
pub const DEFAULT_LANGUAGE: &str = "en_US";

/// Configuration of a WhatsApp Cloud API sender. Unknown keys are refused (naming the key), so
/// a misspelt secret is an error rather than a setting silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsappConfig {
    /// `https://graph.facebook.com` in production, the sandbox's URL in tests.
    pub base_url: String,
    /// Graph API version without the `v` (e.g. `"21.0"`).
    #[serde(default = "default_version")]
    pub api_version: String,
    /// The business phone number's id (not the number itself).
    pub phone_number_id: String,
    /// System-user access token.
    pub access_token: Secret,
    /// The Meta app secret that signs this number's webhooks (`X-Hub-Signature-256`); without
    /// it, inbound falls back on the API's configured default secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_secret: Option<Secret>,
    /// Template language when the request has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_language: Option<String>,
    /// Request timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

fn default_version() -> String {
    DEFAULT_API_VERSION.to_owned()
}

/// The WhatsApp Cloud API adapter.
#[derive(Debug)]
pub struct WhatsappCloud {
    config: WhatsappConfig,
    client: reqwest::Client,
}

impl WhatsappCloud {
    /// An adapter for `config`.
    pub fn new(config: WhatsappConfig) -> Result<Self, ProviderError> {
        let client = http::client(config.timeout_ms)?;
        Ok(Self { config, client })
    }

    /// The JSON body Meta expects for `req`.
    pub fn body(&self, req: &SendRequest) -> Result<Value, ProviderError> {
        let mut body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": req.to,
        });
        match &req.content {
            Content::Text { body: text, .. } => {
                body["type"] = json!("text");
                body["text"] = json!({ "preview_url": false, "body": text });
            }
            Content::Template { name, params } => {
                let language = params
                    .language
                    .as_deref()
                    .or(req.template_language.as_deref())
                    .or(self.config.default_language.as_deref())
                    .unwrap_or(DEFAULT_LANGUAGE);
                let mut template = json!({ "name": name, "language": { "code": language } });
                let components = components(params);
                if !components.is_empty() {
                    template["components"] = Value::Array(components);
                } else if !req.template_params.is_empty() {
                    let parameters: Vec<Value> = req
                        .template_params
                        .iter()
                        .map(|p| json!({ "type": "text", "text": p }))
                        .collect();
                    template["components"] = json!([{ "type": "body", "parameters": parameters }]);
                }
                body["type"] = json!("template");
                body["template"] = template;
            }
            Content::Rich(_) => return Err(SendRequest::rich_refused("WhatsApp")),
        }
        Ok(body)
    }

    async fn send_inner(&self, req: &SendRequest) -> Result<SendReceipt, ProviderError> {
        req.validate()?;
        let url = format!(
            "{}/v{}/{}/messages",
            http::trim_base(&self.config.base_url),
            self.config.api_version.trim_start_matches('v'),
            self.config.phone_number_id
        );
        let response = self
            .client
            .post(url)
            .bearer_auth(self.config.access_token.expose())
            .header("Idempotency-Key", &req.idempotency_key)
            .json(&self.body(req)?)
            .send()
            .await
            .map_err(|e| http::transport_error(&e))?;
        let status = response.status();
        let retry_after = http::retry_after(response.headers());
        let duplicate = response
            .headers()
            .get("Idempotent-Replayed")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        if http::is_success(status) {
            let parsed: SendResponse =
                response.json().await.map_err(|e| http::malformed_success(&e))?;
            let id = parsed.messages.into_iter().next().map(|m| m.id).ok_or_else(|| {
                ProviderError::transient("malformed_response", "no message id in the answer")
            })?;
            return Ok(SendReceipt { provider_message_id: id, duplicate });
        }
        let text = response.text().await.unwrap_or_default();
        let error = serde_json::from_str::<ErrorEnvelope>(&text).ok().map(|e| e.error);
        Err(match error {
            Some(e) => classify(status.as_u16(), e.code, e.error_subcode, e.message, retry_after),
            None => {
                http::by_status(status.as_u16(), status.as_u16().to_string(), text, retry_after)
            }
        })
    }
}

impl Provider for WhatsappCloud {
    fn name(&self) -> &'static str {
        "whatsapp_cloud"
    }

    fn send<'a>(
        &'a self,
        req: &'a SendRequest,
    ) -> BoxFuture<'a, Result<SendReceipt, ProviderError>> {
        self.send_inner(req).boxed()
    }
}

#[derive(Deserialize)]
struct SendResponse {
    #[serde(default)]
    messages: Vec<MessageRef>,
}

#[derive(Deserialize)]
struct MessageRef {
    id: String,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    message: String,
}

/// Classifies a Graph API error by its `code` (the subcode only refines the message), falling
/// back to the HTTP status for codes with no rule.
pub fn classify(
    status: u16,
    code: i64,
    subcode: Option<i64>,
    message: String,
    retry_after: Option<Duration>,
) -> ProviderError {
    let code_text = match subcode {
        Some(sub) => format!("{code}/{sub}"),
        None => code.to_string(),
    };
    let permanent = |kind| ProviderError::permanent(kind, code_text.clone(), message.clone());
    match code {
        // Rate limits: app-level (4), business-account (80007), throughput (130429), spam
        // (131048), pair (131056). All clear with time.
        4 | 80007 | 130429 | 131048 | 131056 => {
            ProviderError::Transient { code: code_text, message, retry_after }
        }
        // Generic and temporary failures on Meta's side.
        1 | 2 | 131000 | 131016 => {
            ProviderError::Transient { code: code_text, message, retry_after }
        }
        // OAuth: expired or invalid token (190), permission (10, 200-299), API access (3).
        0 | 3 | 10 | 190 | 200..=299 => permanent(Rejection::Auth),
        131047 => permanent(Rejection::OutsideWindow),
        // Undeliverable, or not in the test-number allow list.
        131026 | 131030 => permanent(Rejection::InvalidRecipient),
        // Missing or invalid parameter, unsupported type, template problems.
        100 | 131008 | 131009 | 131051 | 132000 | 132001 | 132005 | 132007 | 132012 => {
            permanent(Rejection::InvalidContent)
        }
        // The sender number is not registered or the account is locked.
        133010 | 131031 => permanent(Rejection::Misconfigured),
        _ => http::by_status(status, code_text, message, retry_after),
    }
}

/// A text parameter; named placeholders (`{{first_name}}`) carry their `parameter_name`.
fn text_parameter(p: &TemplateParam) -> Value {
    let mut v = json!({ "type": "text", "text": p.value });
    if !p.name.bytes().all(|b| b.is_ascii_digit()) {
        v["parameter_name"] = json!(p.name);
    }
    v
}

fn button_components(buttons: &[TemplateButtonParam]) -> impl Iterator<Item = Value> + '_ {
    buttons.iter().map(|b| {
        let parameter = if b.sub_type == "quick_reply" {
            json!({ "type": "payload", "payload": b.value })
        } else {
            json!({ "type": "text", "text": b.value })
        };
        json!({
            "type": "button",
            "sub_type": b.sub_type,
            "index": b.index.to_string(),
            "parameters": [parameter],
        })
    })
}

/// The Cloud API's `template.components` for `params`: header, body and button parameters,
/// and a carousel's cards (each card's header is its image, given by URL).
pub fn components(params: &TemplateParams) -> Vec<Value> {
    let mut out = Vec::new();
    if !params.header.is_empty() {
        let parameters: Vec<Value> = params.header.iter().map(text_parameter).collect();
        out.push(json!({ "type": "header", "parameters": parameters }));
    }
    if !params.body.is_empty() {
        let parameters: Vec<Value> = params.body.iter().map(text_parameter).collect();
        out.push(json!({ "type": "body", "parameters": parameters }));
    }
    out.extend(button_components(&params.buttons));
    if !params.cards.is_empty() {
        let cards: Vec<Value> = params
            .cards
            .iter()
            .enumerate()
            .map(|(i, card)| {
                let mut components = Vec::new();
                if let Some(image) = card.header.first() {
                    components.push(json!({
                        "type": "header",
                        "parameters": [{ "type": "image", "image": { "link": image.value } }],
                    }));
                }
                if !card.body.is_empty() {
                    let parameters: Vec<Value> = card.body.iter().map(text_parameter).collect();
                    components.push(json!({ "type": "body", "parameters": parameters }));
                }
                components.extend(button_components(&card.buttons));
                json!({ "card_index": i, "components": components })
            })
            .collect();
        out.push(json!({ "type": "carousel", "cards": cards }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let table: [(u16, i64, &str); 16] = [
            (400, 131047, "OutsideWindow"),
            (400, 131026, "InvalidRecipient"),
            (400, 131030, "InvalidRecipient"),
            (429, 130429, "ProviderTransient"),
            (400, 131048, "ProviderTransient"),
            (400, 131056, "ProviderTransient"),
            (400, 4, "ProviderTransient"),
            (500, 131000, "ProviderTransient"),
            (503, 131016, "ProviderTransient"),
            (401, 190, "ProviderAuth"),
            (403, 10, "ProviderAuth"),
            (400, 100, "InvalidContent"),
            (404, 132001, "InvalidContent"),
            (400, 133010, "ProviderMisconfigured"),
            (400, 999_999, "ProviderRejected"),
            (502, 999_999, "ProviderTransient"),
        ];
        for (status, code, expected) in table {
            let err = classify(status, code, None, "m".into(), None);
            assert_eq!(err.error_type(), expected, "{status} {code}");
        }
        let err = classify(400, 190, Some(463), "expired".into(), None);
        assert_eq!(err.code(), "190/463");
    }

    #[test]
    fn bodies_match_the_cloud_api() {
        let adapter = WhatsappCloud::new(WhatsappConfig {
            base_url: "http://x".into(),
            api_version: DEFAULT_API_VERSION.into(),
            phone_number_id: "1".into(),
            access_token: "t".into(),
            app_secret: None,
            default_language: Some("pt_BR".into()),
            timeout_ms: None,
        })
        .unwrap();
        let text =
            SendRequest::text("k", convo_domain::Channel::Whatsapp, "1", "+14155550101", "hi");
        assert_eq!(
            adapter.body(&text).unwrap(),
            json!({"messaging_product":"whatsapp","recipient_type":"individual","to":"+14155550101",
                   "type":"text","text":{"preview_url":false,"body":"hi"}})
        );
        let mut template = SendRequest::new(
            "k",
            convo_domain::Channel::Whatsapp,
            "1",
            "+14155550101",
            Content::template("welcome"),
        );
        assert_eq!(
            adapter.body(&template).unwrap()["template"],
            json!({"name":"welcome","language":{"code":"pt_BR"}})
        );
        template.template_language = Some("en".into());
        template.template_params = vec!["Ana".into()];
        assert_eq!(
            adapter.body(&template).unwrap()["template"],
            json!({"name":"welcome","language":{"code":"en"},
                   "components":[{"type":"body","parameters":[{"type":"text","text":"Ana"}]}]})
        );
    }
}
