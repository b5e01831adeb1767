//! What the HTTP adapters share: the client, transport-error and status classification.

use std::time::Duration;

use reqwest::{StatusCode, header::HeaderMap};

use super::{ProviderError, Rejection};

/// Request timeout when a configuration gives none: long enough for a slow provider, short
/// enough that the activity's own timeout is never the first to fire.
pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// A client with the adapter's timeout. Building fails only if TLS cannot initialise.
pub(crate) fn client(timeout_ms: Option<u64>) -> Result<reqwest::Client, ProviderError> {
    let timeout = Duration::from_millis(timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("convo/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            ProviderError::permanent(Rejection::Misconfigured, "http_client", e.to_string())
        })
}

/// `base` without trailing slashes, so paths can be appended with `format!`.
pub(crate) fn trim_base(base: &str) -> &str {
    base.trim_end_matches('/')
}

/// Classifies a failure to get any HTTP answer. Whether the provider saw the request is unknown,
/// so it is transient and the retry relies on the idempotency key.
pub(crate) fn transport_error(err: &reqwest::Error) -> ProviderError {
    let code = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else if err.is_builder() {
        return ProviderError::permanent(Rejection::Misconfigured, "request", err.to_string());
    } else {
        "network"
    };
    ProviderError::transient(code, err.to_string())
}

/// A 2xx answer whose body we cannot read. The provider probably accepted the message; retrying
/// with the same key is the only way to learn its id, so it is transient.
pub(crate) fn malformed_success(err: &reqwest::Error) -> ProviderError {
    ProviderError::transient("malformed_response", err.to_string())
}

/// `Retry-After` in delta-seconds (the form providers use on 429/503).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The class of an error code an adapter has no specific rule for, from the HTTP status alone.
pub(crate) fn by_status(
    status: u16,
    code: String,
    message: String,
    retry_after: Option<Duration>,
) -> ProviderError {
    match status {
        408 | 425 | 429 | 500..=599 => ProviderError::Transient { code, message, retry_after },
        401 | 403 => ProviderError::permanent(Rejection::Auth, code, message),
        _ => ProviderError::permanent(Rejection::Rejected, code, message),
    }
}

/// Whether a status is a success the adapter should parse.
pub(crate) fn is_success(status: StatusCode) -> bool {
    status.is_success()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fallback_table() {
        let table = [
            (400, "ProviderRejected"),
            (401, "ProviderAuth"),
            (403, "ProviderAuth"),
            (404, "ProviderRejected"),
            (408, "ProviderTransient"),
            (429, "ProviderTransient"),
            (500, "ProviderTransient"),
            (503, "ProviderTransient"),
        ];
        for (status, expected) in table {
            let err = by_status(status, status.to_string(), String::new(), None);
            assert_eq!(err.error_type(), expected, "{status}");
        }
    }

    #[test]
    fn retry_after_reads_delta_seconds_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers
            .insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
