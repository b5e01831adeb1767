//! The sandbox's native JSON protocol: `POST {base}/_sandbox/messages` with the [`SendRequest`]
//! itself as the body. Used for channels that have no real-shaped adapter yet (Messenger,
//! Instagram) and by callers that want the sandbox without a channel's wire format.
//!
//! Answers `{"id":..,"duplicate":..}`; errors are `{"error":{"type":..,"code":..,"message":..}}`
//! where `type` is one of the [`super::error_types`], so classification is exact.

use futures::{FutureExt, future::BoxFuture};
use serde::{Deserialize, Serialize};

use super::{Provider, ProviderError, Rejection, SendReceipt, SendRequest, error_types, http};

/// Path of the native endpoint.
pub const PATH: &str = "/_sandbox/messages";

/// Configuration of the native sandbox adapter. Unknown keys are refused, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NativeConfig {
    /// The sandbox's base URL.
    pub base_url: String,
    /// Request timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// Success body of the native endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeAccepted {
    /// Provider message id.
    pub id: String,
    /// The key had been accepted before.
    pub duplicate: bool,
}

/// Error body of the native endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeErrorBody {
    /// The error.
    pub error: NativeError,
}

/// One native error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeError {
    /// One of the [`super::error_types`].
    #[serde(rename = "type")]
    pub error_type: String,
    /// Provider-style code.
    pub code: String,
    /// Detail.
    pub message: String,
}

/// The native adapter.
#[derive(Debug)]
pub struct NativeSandbox {
    config: NativeConfig,
    client: reqwest::Client,
}

impl NativeSandbox {
    /// An adapter for `config`.
    pub fn new(config: NativeConfig) -> Result<Self, ProviderError> {
        let client = http::client(config.timeout_ms)?;
        Ok(Self { config, client })
    }

    async fn send_inner(&self, req: &SendRequest) -> Result<SendReceipt, ProviderError> {
        req.validate()?;
        let response = self
            .client
            .post(format!("{}{PATH}", http::trim_base(&self.config.base_url)))
            .header("Idempotency-Key", &req.idempotency_key)
            .json(req)
            .send()
            .await
            .map_err(|e| http::transport_error(&e))?;
        let status = response.status();
        let retry_after = http::retry_after(response.headers());
        if http::is_success(status) {
            let parsed: NativeAccepted =
                response.json().await.map_err(|e| http::malformed_success(&e))?;
            return Ok(SendReceipt { provider_message_id: parsed.id, duplicate: parsed.duplicate });
        }
        let text = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<NativeErrorBody>(&text) {
            Ok(NativeErrorBody { error }) => {
                if error.error_type == error_types::PROVIDER_TRANSIENT {
                    ProviderError::Transient {
                        code: error.code,
                        message: error.message,
                        retry_after,
                    }
                } else {
                    let kind = Rejection::from_error_type(&error.error_type)
                        .unwrap_or(Rejection::Rejected);
                    ProviderError::permanent(kind, error.code, error.message)
                }
            }
            Err(_) => {
                http::by_status(status.as_u16(), status.as_u16().to_string(), text, retry_after)
            }
        })
    }
}

impl Provider for NativeSandbox {
    fn name(&self) -> &'static str {
        "sandbox_native"
    }

    fn send<'a>(
        &'a self,
        req: &'a SendRequest,
    ) -> BoxFuture<'a, Result<SendReceipt, ProviderError>> {
        self.send_inner(req).boxed()
    }
}
