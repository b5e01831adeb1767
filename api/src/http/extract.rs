//! Extractors whose every rejection is an [`ApiError`]: a client never sees axum's plain-text
//! rejections, and serde's complaints come back naming the field at fault.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request, rejection::BytesRejection},
    http::{StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, codes};

/// A JSON body (`application/json`, or no content type at all).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// A JSON body that may be empty (then `T::default()`), for actions whose options are all
/// optional (`resolve`, `close`).
#[derive(Debug, Clone)]
pub struct OptionalJson<T>(pub T);

/// The raw body, with the size limit's rejection as JSON.
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes);

/// The single path parameter of a route (`{id}`, `{contact}`).
#[derive(Debug, Clone)]
pub struct PathParam(pub String);

/// Query parameters.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        )
    } else {
        ApiError::malformed(format!("the request body could not be read: {rejection}"))
    }
}

fn require_json(req: &Request) -> Result<(), ApiError> {
    let Some(content_type) = req.headers().get(header::CONTENT_TYPE) else { return Ok(()) };
    let essence = content_type.to_str().unwrap_or_default().split(';').next().unwrap_or_default();
    let essence = essence.trim().to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON (Content-Type: application/json)",
        ))
    }
}

/// The text between the first pair of backticks of a serde message: the field it names.
fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() || path == "." { field.to_owned() } else { format!("{path}.{field}") }
}

/// Deserializes `bytes`, turning serde's error into a 400 (not JSON at all) or a 422 naming
/// the field (wrong type, missing or unknown field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed("a JSON body is required"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    let message = inner.to_string();
                    let named = backticked(&message).map(str::to_owned);
                    let field = if message.starts_with("unknown field") {
                        // The path already ends at the unknown key.
                        match named {
                            Some(f) if !path.ends_with(f.as_str()) => join(&path, &f),
                            _ => path,
                        }
                    } else if message.starts_with("missing field") {
                        named.map(|f| join(&path, &f)).unwrap_or(path)
                    } else if path == "." {
                        "body".to_owned()
                    } else {
                        path
                    };
                    ApiError::validation(field, message)
                }
                _ => ApiError::malformed(format!("the body is not valid JSON: {inner}")),
            });
        }
    };
    de.end().map_err(|e| ApiError::malformed(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(&req)?;
        let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(&req)?;
        let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(RawBody).map_err(body_rejection)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::validation("path", e.body_text()))?;
        if value.trim().is_empty() || value.len() > 300 {
            return Err(ApiError::validation("path", "must be 1 to 300 characters"));
        }
        Ok(PathParam(value))
    }
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await.map_err(|e| {
            let text = e.body_text();
            let field = backticked(&text).unwrap_or("query").to_owned();
            ApiError::validation(field, text)
        })?;
        Ok(ApiQuery(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn field(body: &str) -> (StatusCode, Option<String>) {
        let e = parse_json::<Outer>(body.as_bytes()).unwrap_err();
        (e.status, e.field)
    }

    #[test]
    fn serde_errors_name_the_field() {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        assert_eq!(
            field(r#"{"name":"a","inner":{"count":"x"}}"#),
            (unprocessable, Some("inner.count".into()))
        );
        assert_eq!(
            field(r#"{"name":"a","inner":{"count":1,"extra":2}}"#),
            (unprocessable, Some("inner.extra".into()))
        );
        assert_eq!(field(r#"{"name":"a"}"#), (unprocessable, Some("inner".into())));
        assert_eq!(field("[1]"), (unprocessable, Some("[0]".into())));
        assert_eq!(field("42"), (unprocessable, Some("body".into())));
        assert_eq!(field("{"), (StatusCode::BAD_REQUEST, None));
        assert_eq!(field(r#"{"name":"a","inner":{"count":1}} x"#), (StatusCode::BAD_REQUEST, None));
        assert_eq!(field(""), (StatusCode::BAD_REQUEST, None));
    }
}
