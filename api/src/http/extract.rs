//! Extractors whose every rejection is an [`ApiError`]: a client never sees axum's plain-text
//! rejections, and serde's complaints come back naming the field at fault.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request, rejection::BytesRejection},
    http::{StatusCode, header, request::Parts},
};
use std::{
    any::TypeId,
    collections::HashMap,
    sync::{Arc, LazyLock, PoisonError, RwLock},
};

use schemars::{JsonSchema, generate::SchemaSettings};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, ErrorCode};

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
        ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
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
            ErrorCode::UnsupportedMediaType,
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
///
/// The body is read as JSON first, so that numbers are numbers: `144.0` is the integer 144,
/// as JSON Schema and the OpenAPI document say. What serde then accepts is also held to the
/// shape of `T`'s schema, the one `/openapi.json` publishes: serde's derive would otherwise
/// take a struct from an array of its fields (`[null, null]` for a body of optional fields),
/// which the document does not allow.
pub fn parse_json<T: DeserializeOwned + JsonSchema + 'static>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed("a JSON body is required"));
    }
    let mut json: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::malformed(format!("the body is not valid JSON: {e}")))?;
    integral_numbers(&mut json);
    if let Some(field) = nul_in(&json, "") {
        return Err(ApiError::validation(field, "must not contain NUL characters (\\u0000)"));
    }
    let value: T = serde_path_to_error::deserialize(&json).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
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
    })?;
    shape_of::<T>(&json)?;
    Ok(value)
}

/// Where a string (or an object's key) holds a NUL character, which no store takes in text:
/// the field's path (`body` for the top level). `None` when there is none.
fn nul_in(json: &Value, path: &str) -> Option<String> {
    let here = || if path.is_empty() { "body".to_owned() } else { path.to_owned() };
    match json {
        Value::String(s) if s.contains('\0') => Some(here()),
        Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, v)| nul_in(v, &format!("{path}[{i}]")))
        }
        Value::Object(fields) => fields.iter().find_map(|(k, v)| {
            let at = join(path, k);
            // A key with a NUL is named by its object: the error must not carry the NUL.
            if k.contains('\0') { Some(here()) } else { nul_in(v, &at) }
        }),
        _ => None,
    }
}

/// Rewrites every number with no fractional part (`3.0`) as the integer it is, so that an
/// integer field takes it.
fn integral_numbers(json: &mut Value) {
    match json {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()).filter(|f| f.fract() == 0.0) {
                // Within ±2^53 a float is exactly the integer it prints as.
                if f.abs() <= 9_007_199_254_740_992.0 {
                    *n = serde_json::Number::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(fields) => fields.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// Refuses a body whose JSON types contradict `T`'s published schema (an array where an
/// object belongs), naming the field. Only type mismatches are checked here: ranges, lengths
/// and patterns are the application's to check, with its own messages.
fn shape_of<T: JsonSchema + 'static>(json: &Value) -> Result<(), ApiError> {
    type Validators = HashMap<TypeId, Arc<jsonschema::Validator>>;
    static VALIDATORS: LazyLock<RwLock<Validators>> = LazyLock::new(Default::default);
    let id = TypeId::of::<T>();
    let cached = VALIDATORS.read().unwrap_or_else(PoisonError::into_inner).get(&id).cloned();
    let validator = match cached {
        Some(v) => v,
        None => {
            let schema =
                SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>();
            let validator = Arc::new(
                jsonschema::validator_for(schema.as_value())
                    .map_err(|e| ApiError::internal(format!("the body's schema: {e}")))?,
            );
            VALIDATORS
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id, validator.clone());
            validator
        }
    };
    let errors: Vec<_> = validator.iter_errors(json).collect();
    let Some(error) = errors.iter().find_map(|e| match mismatch(e) {
        Mismatch::Shape(e) => Some(e),
        Mismatch::Type | Mismatch::Other => None,
    }) else {
        return Ok(());
    };
    let field: Vec<String> = error.instance_path().segments().map(|s| s.to_string()).collect();
    let field = if field.is_empty() { "body".to_owned() } else { field.join(".") };
    Err(ApiError::validation(field, error.to_string()))
}

/// What a validation error is about.
enum Mismatch<'a> {
    /// An array where the schema wants an object, the mismatch serde's derive lets through
    /// (it reads a struct from a sequence of its fields).
    Shape(&'a jsonschema::ValidationError<'a>),
    /// Another JSON type than the schema's, which serde refuses by itself.
    Type,
    /// Anything else: a length, a range, a pattern, the shape of a free-form value the
    /// application reads itself (template variables). The application reports those, with
    /// its own messages.
    Other,
}

/// Classifies a validation error. A value that fits none of its alternatives (`anyOf`,
/// `oneOf`: an optional object, an enum) is a [`Mismatch::Shape`] when one alternative wants
/// an object and every other wants another type altogether.
fn mismatch<'a>(error: &'a jsonschema::ValidationError<'a>) -> Mismatch<'a> {
    use jsonschema::{
        JsonType,
        error::{TypeKind, ValidationErrorKind as Kind},
    };
    match error.kind() {
        Kind::Type { kind } => {
            let object = match kind {
                TypeKind::Single(ty) => *ty == JsonType::Object,
                TypeKind::Multiple(types) => types.contains(JsonType::Object),
            };
            if object && error.instance().is_array() {
                Mismatch::Shape(error)
            } else {
                Mismatch::Type
            }
        }
        Kind::AnyOf { context } | Kind::OneOfNotValid { context } => {
            let mut shape = None;
            for branch in context {
                let mut class = Mismatch::Other;
                for e in branch {
                    match mismatch(e) {
                        Mismatch::Shape(e) => {
                            class = Mismatch::Shape(e);
                            break;
                        }
                        Mismatch::Type => class = Mismatch::Type,
                        Mismatch::Other => {}
                    }
                }
                match class {
                    Mismatch::Other => return Mismatch::Other,
                    Mismatch::Shape(e) => shape = shape.or(Some(e)),
                    Mismatch::Type => {}
                }
            }
            shape.map_or(Mismatch::Type, Mismatch::Shape)
        }
        _ => Mismatch::Other,
    }
}

impl<T: DeserializeOwned + JsonSchema + 'static, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(&req)?;
        let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

impl<T: DeserializeOwned + JsonSchema + Default + 'static, S: Send + Sync> FromRequest<S>
    for OptionalJson<T>
{
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
        if value.contains('\0') {
            return Err(ApiError::validation("path", "must not contain NUL characters"));
        }
        Ok(PathParam(value))
    }
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(|q| q.to_ascii_lowercase().contains("%00")) {
            return Err(ApiError::validation("query", "must not contain NUL characters"));
        }
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

    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        count: u32,
    }

    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Maybe {
        inner: Option<Inner>,
    }

    fn field(body: &str) -> (StatusCode, Option<String>) {
        let e = parse_json::<Outer>(body.as_bytes()).unwrap_err();
        (e.status(), e.field)
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

    #[test]
    fn a_struct_is_an_object_never_an_array_of_its_fields() {
        // serde's derive takes `["a", {"count": 1}]` for an `Outer`; the document does not.
        let e = parse_json::<Outer>(br#"["a", {"count": 1}]"#).unwrap_err();
        assert_eq!(
            (e.status(), e.field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("body"))
        );
        let e = parse_json::<Outer>(br#"{"name": "a", "inner": [1]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("inner"));
        // Nor is an optional one.
        let e = parse_json::<Maybe>(br#"{"inner": [1]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("inner"));
        assert!(parse_json::<Maybe>(br#"{"inner": null}"#).is_ok());
        assert!(parse_json::<Outer>(br#"{"name": "a", "inner": {"count": 1}}"#).is_ok());
    }

    #[test]
    fn a_nul_character_is_refused_naming_the_field() {
        let e = parse_json::<Outer>(br#"{"name": "a\u0000b", "inner": {"count": 1}}"#).unwrap_err();
        assert_eq!(
            (e.status(), e.field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
        );
        let e = parse_json::<Maybe>(br#"{"inner": {"count": 1, "x\u0000": 2}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("inner"));
    }

    #[test]
    fn an_integral_number_is_an_integer_however_it_is_written() {
        let outer = parse_json::<Outer>(br#"{"name": "a", "inner": {"count": 144.0}}"#).unwrap();
        assert_eq!(outer.inner.count, 144);
        let e = parse_json::<Outer>(br#"{"name": "a", "inner": {"count": 144.5}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("inner.count"));
    }
}
