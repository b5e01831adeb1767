//! SMS through a Twilio-style gateway: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`,
//! HTTP basic auth, form-encoded `To`, `From`, `Body` (or `ContentSid` + `ContentVariables` for
//! a template), with the idempotency key in `I-Twilio-Idempotency-Token`.

use std::{collections::BTreeMap, time::Duration};

use convo_domain::window::Content;
use futures::{FutureExt, future::BoxFuture};
use serde::{Deserialize, Serialize};

use super::{Provider, ProviderError, Rejection, Secret, SendReceipt, SendRequest, http};

/// The header Twilio reads the idempotency token from.
pub const IDEMPOTENCY_HEADER: &str = "I-Twilio-Idempotency-Token";

/// Configuration of a Twilio-style account. Unknown keys are refused, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// `https://api.twilio.com` in production, the sandbox's URL in tests.
    pub base_url: String,
    /// Account SID (`AC…`), the basic-auth user.
    pub account_sid: String,
    /// Auth token, the basic-auth password.
    pub auth_token: Secret,
    /// Request timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// The Twilio SMS adapter.
#[derive(Debug)]
pub struct TwilioSms {
    config: TwilioConfig,
    client: reqwest::Client,
}

impl TwilioSms {
    /// An adapter for `config`.
    pub fn new(config: TwilioConfig) -> Result<Self, ProviderError> {
        let client = http::client(config.timeout_ms)?;
        Ok(Self { config, client })
    }

    /// The form fields Twilio expects for `req`, in order.
    pub fn form(req: &SendRequest) -> Result<Vec<(&'static str, String)>, ProviderError> {
        let mut form = vec![("To", req.to.clone()), ("From", req.from.clone())];
        match &req.content {
            Content::Text { body, .. } => {
                if body.is_empty() {
                    return Err(ProviderError::permanent(
                        Rejection::InvalidContent,
                        "21602",
                        "message body is required",
                    ));
                }
                form.push(("Body", body.clone()));
            }
            Content::Rich(_) => return Err(SendRequest::rich_refused("Twilio SMS")),
            // Twilio's Content API: the template is a `ContentSid` (`HX…`), its variables a JSON
            // object keyed by position.
            Content::Template { name, params } => {
                form.push(("ContentSid", name.clone()));
                let vars: BTreeMap<String, String> = if params.is_empty() {
                    req.template_params
                        .iter()
                        .enumerate()
                        .map(|(i, v)| ((i + 1).to_string(), v.clone()))
                        .collect()
                } else {
                    params.flat().into_iter().collect()
                };
                if !vars.is_empty() {
                    let json = serde_json::to_string(&vars).map_err(|e| {
                        ProviderError::permanent(Rejection::InvalidContent, "21656", e.to_string())
                    })?;
                    form.push(("ContentVariables", json));
                }
            }
        }
        Ok(form)
    }

    async fn send_inner(&self, req: &SendRequest) -> Result<SendReceipt, ProviderError> {
        req.validate()?;
        let form = Self::form(req)?;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            http::trim_base(&self.config.base_url),
            self.config.account_sid
        );
        let response = self
            .client
            .post(url)
            .basic_auth(&self.config.account_sid, Some(self.config.auth_token.expose()))
            .header(IDEMPOTENCY_HEADER, &req.idempotency_key)
            .form(&form)
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
            let parsed: MessageResource =
                response.json().await.map_err(|e| http::malformed_success(&e))?;
            return Ok(SendReceipt { provider_message_id: parsed.sid, duplicate });
        }
        let text = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<TwilioError>(&text) {
            Ok(e) => classify(status.as_u16(), e.code, e.message, retry_after),
            Err(_) => {
                http::by_status(status.as_u16(), status.as_u16().to_string(), text, retry_after)
            }
        })
    }
}

impl Provider for TwilioSms {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn send<'a>(
        &'a self,
        req: &'a SendRequest,
    ) -> BoxFuture<'a, Result<SendReceipt, ProviderError>> {
        self.send_inner(req).boxed()
    }
}

#[derive(Deserialize)]
struct MessageResource {
    sid: String,
}

#[derive(Deserialize)]
struct TwilioError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

/// Classifies a Twilio REST error by its `code`, falling back to the HTTP status.
pub fn classify(
    status: u16,
    code: i64,
    message: String,
    retry_after: Option<Duration>,
) -> ProviderError {
    let code_text = code.to_string();
    let permanent = |kind| ProviderError::permanent(kind, code_text.clone(), message.clone());
    match code {
        20429 | 20500 | 20503 => ProviderError::Transient { code: code_text, message, retry_after },
        20003 | 20005 => permanent(Rejection::Auth),
        // Invalid or unroutable `To`, not a mobile number, landline.
        21211 | 21612 | 21614 | 21217 => permanent(Rejection::InvalidRecipient),
        21610 => permanent(Rejection::OptedOut),
        // Invalid `From`, or the number is not on the account.
        21606 | 21659 | 21660 | 20404 => permanent(Rejection::Misconfigured),
        // Body missing or too long, invalid content template or variables.
        21602 | 21617 | 21619 | 21655 | 21656 | 63016 => permanent(Rejection::InvalidContent),
        _ => http::by_status(status, code_text, message, retry_after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let table: [(u16, i64, &str); 12] = [
            (400, 21211, "InvalidRecipient"),
            (400, 21614, "InvalidRecipient"),
            (400, 21610, "RecipientOptedOut"),
            (429, 20429, "ProviderTransient"),
            (500, 20500, "ProviderTransient"),
            (401, 20003, "ProviderAuth"),
            (404, 20404, "ProviderMisconfigured"),
            (400, 21606, "ProviderMisconfigured"),
            (400, 21602, "InvalidContent"),
            (400, 30000, "ProviderRejected"),
            (503, 0, "ProviderTransient"),
            (403, 0, "ProviderAuth"),
        ];
        for (status, code, expected) in table {
            let err = classify(status, code, "m".into(), None);
            assert_eq!(err.error_type(), expected, "{status} {code}");
        }
    }

    #[test]
    fn form_uses_body_or_content_sid() {
        let text = SendRequest::text("k", convo_domain::Channel::Sms, "+1555", "+1666", "hi");
        assert_eq!(
            TwilioSms::form(&text).unwrap(),
            vec![("To", "+1666".into()), ("From", "+1555".into()), ("Body", "hi".into())]
        );
        let mut tpl = SendRequest::new(
            "k",
            convo_domain::Channel::Sms,
            "+1555",
            "+1666",
            Content::template("HX123"),
        );
        tpl.template_params = vec!["a".into(), "b".into()];
        let form = TwilioSms::form(&tpl).unwrap();
        assert_eq!(form[2], ("ContentSid", "HX123".into()));
        assert_eq!(form[3], ("ContentVariables", r#"{"1":"a","2":"b"}"#.into()));
        let empty = SendRequest::text("k", convo_domain::Channel::Sms, "+1555", "+1666", "");
        assert_eq!(TwilioSms::form(&empty).unwrap_err().error_type(), "InvalidContent");
    }
}
