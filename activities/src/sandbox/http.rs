//! The sandbox's HTTP side: the WhatsApp Cloud, Twilio and RBM send endpoints in their real
//! wire shapes, the native endpoint, and the `/_sandbox` control API.

use std::{collections::HashMap, sync::Arc, time::SystemTime};

use axum::{
    Form, Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine;
use convo_domain::{
    Channel,
    window::{Content, TemplateButtonParam, TemplateCardParams, TemplateParam, TemplateParams},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Fault, FaultRule, SANDBOX_ACCOUNT_SID, SANDBOX_TOKEN,
    state::{Incoming, Outcome, Shared},
};
use crate::providers::{
    Rejection, SendRequest, error_types,
    native::{NativeAccepted, NativeError, NativeErrorBody},
    rbm::{message_name, parse_content_message},
};

type AppState = Arc<Shared>;

/// The sandbox's routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{version}/{phone_number_id}/messages", post(whatsapp_send))
        .route("/2010-04-01/Accounts/{account_sid}/Messages.json", post(twilio_send))
        .route("/v1/phones/{phone}/agentMessages", post(rbm_send))
        .route(crate::providers::native::PATH, post(native_send))
        .route("/_sandbox/faults", get(list_faults).post(add_fault).delete(clear_faults))
        .route("/_sandbox/sends", get(list_sends).delete(clear_sends))
        .with_state(shared)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().filter(|v| !v.is_empty())
}

fn replayed(mut response: Response, duplicate: bool) -> Response {
    if duplicate {
        response.headers_mut().insert("Idempotent-Replayed", HeaderValue::from_static("true"));
    }
    response
}

fn with_retry_after(mut response: Response, fault: &Fault) -> Response {
    if let Fault::RateLimited { retry_after_secs } = fault {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
    }
    response
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

// ---------------------------------------------------------------------------------------------
// WhatsApp Cloud API

fn meta_error(code: i64, message: &str) -> Response {
    let status = match code {
        0 | 3 | 10 | 190 => StatusCode::UNAUTHORIZED,
        200..=299 => StatusCode::FORBIDDEN,
        4 | 80007 | 130429 => StatusCode::TOO_MANY_REQUESTS,
        1 | 2 | 131000 => StatusCode::INTERNAL_SERVER_ERROR,
        131016 => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = json!({ "error": {
        "message": message,
        "type": if status == StatusCode::UNAUTHORIZED { "OAuthException" } else { "GraphMethodException" },
        "code": code,
        "error_data": { "messaging_product": "whatsapp", "details": message },
        "fbtrace_id": "sandbox",
    }});
    (status, Json(body)).into_response()
}

fn meta_fault(fault: &Fault) -> Response {
    let response = match fault {
        Fault::Unavailable => meta_error(131016, &fault.message()),
        Fault::RateLimited { .. } => meta_error(130429, &fault.message()),
        Fault::Reject { code, .. } => meta_error(code.parse().unwrap_or(100), &fault.message()),
    };
    with_retry_after(response, fault)
}

async fn whatsapp_send(
    State(shared): State<AppState>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if !version.starts_with('v') {
        return (StatusCode::NOT_FOUND, "unknown API version").into_response();
    }
    if bearer(&headers) != Some(SANDBOX_TOKEN) {
        return meta_error(190, "Invalid OAuth access token - Cannot parse access token");
    }
    let Some(Json(body)) = body else {
        return meta_error(100, "Invalid parameter: the body must be JSON");
    };
    if body["messaging_product"] != "whatsapp" {
        return meta_error(100, "Invalid parameter: messaging_product must be whatsapp");
    }
    let Some(to) = body["to"].as_str().filter(|t| !t.is_empty()) else {
        return meta_error(100, "Invalid parameter: to is required");
    };
    let mut language = None;
    let mut params = Vec::new();
    let content = match body["type"].as_str().unwrap_or("text") {
        "text" => match body["text"]["body"].as_str() {
            Some(text) => Content::Text { body: text.to_owned(), subject: None },
            None => return meta_error(100, "Invalid parameter: text.body is required"),
        },
        "template" => {
            let template = &body["template"];
            let Some(name) = template["name"].as_str() else {
                return meta_error(132001, "Template name does not exist in the translation");
            };
            language = template["language"]["code"].as_str().map(str::to_owned);
            if language.is_none() {
                return meta_error(100, "Invalid parameter: template.language.code is required");
            }
            for component in template["components"].as_array().into_iter().flatten() {
                for parameter in component["parameters"].as_array().into_iter().flatten() {
                    if let Some(text) = parameter["text"].as_str() {
                        params.push(text.to_owned());
                    }
                }
            }
            let values = whatsapp_values(template);
            Content::Template { name: name.to_owned(), params: Box::new(values) }
        }
        other => return meta_error(131051, &format!("Unsupported message type: {other}")),
    };
    let mut send = Incoming::new(Channel::Whatsapp, phone_number_id, to.to_owned(), content);
    send.idempotency_key = header_str(&headers, "Idempotency-Key").map(str::to_owned);
    send.template_language = language;
    send.template_params = params;
    match shared.attempt(send, |seq| format!("wamid.sandbox.{seq:012}")).await {
        Outcome::Accepted { id, duplicate } => {
            let wa_id: String = to.chars().filter(char::is_ascii_digit).collect();
            let body = json!({
                "messaging_product": "whatsapp",
                "contacts": [{ "input": to, "wa_id": wa_id }],
                "messages": [{ "id": id, "message_status": "accepted" }],
            });
            replayed(Json(body).into_response(), duplicate)
        }
        Outcome::Failed(fault) => meta_fault(&fault),
    }
}

/// The values a WhatsApp `template` object carries, per component (its language is
/// recorded on its own). Positional parameters get
/// their position as their name (`1`, `2`, …), named ones their `parameter_name`.
fn whatsapp_values(template: &Value) -> TemplateParams {
    fn params(component: &Value) -> Vec<TemplateParam> {
        let list = component["parameters"].as_array().cloned().unwrap_or_default();
        list.iter()
            .enumerate()
            .map(|(i, p)| {
                let value = p["text"]
                    .as_str()
                    .or(p["payload"].as_str())
                    .or(p["image"]["link"].as_str())
                    .unwrap_or_default();
                let name = p["parameter_name"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| (i + 1).to_string());
                TemplateParam { name, value: value.to_owned() }
            })
            .collect()
    }
    fn read(components: &[Value], into: &mut TemplateCardParams) {
        for c in components {
            match c["type"].as_str() {
                Some("header") => into.header = params(c),
                Some("body") => into.body = params(c),
                Some("button") => {
                    if let Some(p) = params(c).into_iter().next() {
                        into.buttons.push(TemplateButtonParam {
                            index: c["index"].as_str().and_then(|i| i.parse().ok()).unwrap_or(0),
                            sub_type: c["sub_type"].as_str().unwrap_or_default().to_owned(),
                            name: p.name,
                            value: p.value,
                        });
                    }
                }
                _ => {}
            }
        }
    }
    let components = template["components"].as_array().cloned().unwrap_or_default();
    let mut top = TemplateCardParams::default();
    read(&components, &mut top);
    let mut cards = Vec::new();
    for c in components.iter().filter(|c| c["type"] == "carousel") {
        for card in c["cards"].as_array().into_iter().flatten() {
            let mut values = TemplateCardParams::default();
            read(card["components"].as_array().map(Vec::as_slice).unwrap_or_default(), &mut values);
            cards.push(values);
        }
    }
    TemplateParams {
        language: None,
        header: top.header,
        body: top.body,
        buttons: top.buttons,
        cards,
        text: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Twilio

fn twilio_error(code: i64, message: &str) -> Response {
    let status_code = match code {
        20003 | 20005 => 401,
        20404 => 404,
        20429 => 429,
        20500 => 500,
        20503 => 503,
        _ => 400,
    };
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status_code,
    });
    (status(status_code), Json(body)).into_response()
}

fn twilio_fault(fault: &Fault) -> Response {
    let response = match fault {
        Fault::Unavailable => twilio_error(20503, &fault.message()),
        Fault::RateLimited { .. } => twilio_error(20429, &fault.message()),
        Fault::Reject { code, .. } => twilio_error(code.parse().unwrap_or(21610), &fault.message()),
    };
    with_retry_after(response, fault)
}

fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let encoded = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

async fn twilio_send(
    State(shared): State<AppState>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some((user, password)) = basic_auth(&headers) else {
        return twilio_error(20003, "Authenticate");
    };
    if user != SANDBOX_ACCOUNT_SID || password != SANDBOX_TOKEN {
        return twilio_error(20003, "Authenticate");
    }
    if account_sid != user {
        return twilio_error(20404, "The requested resource was not found");
    }
    let field = |name: &str| form.get(name).filter(|v| !v.is_empty()).cloned();
    let Some(to) = field("To") else {
        return twilio_error(21604, "A 'To' phone number is required.");
    };
    let Some(from) = field("From").or_else(|| field("MessagingServiceSid")) else {
        return twilio_error(21603, "A 'From' phone number is required.");
    };
    let mut params = Vec::new();
    let mut values = TemplateParams::default();
    let content = if let Some(sid) = field("ContentSid") {
        if let Some(vars) = field("ContentVariables") {
            let Ok(vars) = serde_json::from_str::<HashMap<String, String>>(&vars) else {
                return twilio_error(21656, "The ContentVariables Parameter is invalid.");
            };
            let mut named: Vec<TemplateParam> = vars
                .iter()
                .map(|(k, v)| TemplateParam { name: k.clone(), value: v.clone() })
                .collect();
            named.sort_by(|a, b| a.name.cmp(&b.name));
            values.body = named;
            let mut vars: Vec<(u32, String)> =
                vars.into_iter().filter_map(|(k, v)| Some((k.parse().ok()?, v))).collect();
            vars.sort_unstable();
            params = vars.into_iter().map(|(_, v)| v).collect();
        }
        Content::Template { name: sid, params: Box::new(values) }
    } else if let Some(body) = field("Body") {
        if body.chars().count() > 1600 {
            return twilio_error(
                21617,
                "The concatenated message body exceeds the 1600 character limit.",
            );
        }
        Content::Text { body, subject: None }
    } else {
        return twilio_error(21602, "Message body is required.");
    };
    let mut send = Incoming::new(Channel::Sms, from.clone(), to.clone(), content.clone());
    send.idempotency_key =
        header_str(&headers, crate::providers::twilio::IDEMPOTENCY_HEADER).map(str::to_owned);
    send.template_params = params;
    match shared.attempt(send, |seq| format!("SM{seq:032x}")).await {
        Outcome::Accepted { id, duplicate } => {
            let body = match &content {
                Content::Text { body, .. } => body.clone(),
                Content::Template { .. } | Content::Rich(_) => String::new(),
            };
            let resource = json!({
                "account_sid": account_sid,
                "sid": id,
                "to": to,
                "from": from,
                "body": body,
                "status": "queued",
                "direction": "outbound-api",
                "num_segments": "1",
                "api_version": "2010-04-01",
                "uri": format!("/2010-04-01/Accounts/{account_sid}/Messages/{id}.json"),
            });
            replayed((StatusCode::CREATED, Json(resource)).into_response(), duplicate)
        }
        Outcome::Failed(fault) => twilio_fault(&fault),
    }
}

// ---------------------------------------------------------------------------------------------
// Google RBM

fn google_error(grpc_status: &str, message: &str) -> Response {
    let code = match grpc_status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "ALREADY_EXISTS" | "ABORTED" => 409,
        "RESOURCE_EXHAUSTED" => 429,
        "INTERNAL" => 500,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => 400,
    };
    let body = json!({ "error": { "code": code, "message": message, "status": grpc_status } });
    (status(code), Json(body)).into_response()
}

fn google_fault(fault: &Fault) -> Response {
    let response = match fault {
        Fault::Unavailable => google_error("UNAVAILABLE", &fault.message()),
        Fault::RateLimited { .. } => google_error("RESOURCE_EXHAUSTED", &fault.message()),
        Fault::Reject { code, .. } => google_error(code, &fault.message()),
    };
    with_retry_after(response, fault)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RbmQuery {
    message_id: Option<String>,
    agent_id: Option<String>,
}

async fn rbm_send(
    State(shared): State<AppState>,
    Path(phone): Path<String>,
    Query(query): Query<RbmQuery>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if bearer(&headers) != Some(SANDBOX_TOKEN) {
        return google_error("UNAUTHENTICATED", "Request had invalid authentication credentials.");
    }
    let Some(message_id) = query.message_id.filter(|m| !m.is_empty()) else {
        return google_error("INVALID_ARGUMENT", "messageId is required");
    };
    let Some(agent_id) = query.agent_id.filter(|a| !a.is_empty()) else {
        return google_error("INVALID_ARGUMENT", "agentId is required");
    };
    if !phone.starts_with('+') || phone.len() < 4 {
        return google_error("INVALID_ARGUMENT", "phone number must be in E.164 format");
    }
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let message = body["contentMessage"].clone();
    let traffic_type = match &body["messageTrafficType"] {
        Value::Null => None,
        Value::String(t) if convo_domain::TrafficType::ALL.iter().any(|k| k.as_str() == t) => {
            Some(t.clone())
        }
        other => {
            let why = format!("Invalid value at 'agent_message.message_traffic_type' ({other})");
            return google_error("INVALID_ARGUMENT", &why);
        }
    };
    // Rich content is held to RBM's limits, as RBM holds it: a breach is INVALID_ARGUMENT.
    let content = match parse_content_message(&message) {
        Err(e) => return google_error("INVALID_ARGUMENT", &e),
        Ok(Some(rich)) => match rich.validate() {
            Ok(()) => Content::Rich(Box::new(rich)),
            Err(e) => return google_error("INVALID_ARGUMENT", &format!("contentMessage.{e}")),
        },
        Ok(None) => match message["text"].as_str() {
            Some(text) => Content::Text { body: text.to_owned(), subject: None },
            None => return google_error("INVALID_ARGUMENT", "contentMessage.text is required"),
        },
    };
    let mut send = Incoming::new(Channel::Rcs, agent_id, phone.clone(), content);
    send.idempotency_key = Some(message_id.clone());
    send.traffic_type = traffic_type;
    let name = message_name(&phone, &message_id);
    match shared.attempt(send, |_| name.clone()).await {
        Outcome::Accepted { duplicate: true, .. } => {
            google_error("ALREADY_EXISTS", "Requested entity already exists")
        }
        Outcome::Accepted { id, duplicate: false } => {
            let send_time = humantime_rfc3339(SystemTime::now());
            Json(json!({
                "name": id,
                "sendTime": send_time,
                "contentMessage": message,
            }))
            .into_response()
        }
        Outcome::Failed(fault) => google_fault(&fault),
    }
}

/// RFC 3339 UTC with seconds, enough for `sendTime`.
fn humantime_rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil-from-days (proleptic Gregorian), so the sandbox needs no date crate.
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

// ---------------------------------------------------------------------------------------------
// Native

fn native_error(status_code: StatusCode, error_type: &str, code: &str, message: &str) -> Response {
    let body = NativeErrorBody {
        error: NativeError {
            error_type: error_type.to_owned(),
            code: code.to_owned(),
            message: message.to_owned(),
        },
    };
    (status_code, Json(body)).into_response()
}

fn native_fault(fault: &Fault) -> Response {
    let transient = error_types::PROVIDER_TRANSIENT;
    let response = match fault {
        Fault::Unavailable => {
            native_error(StatusCode::SERVICE_UNAVAILABLE, transient, "503", &fault.message())
        }
        Fault::RateLimited { .. } => {
            native_error(StatusCode::TOO_MANY_REQUESTS, transient, "429", &fault.message())
        }
        Fault::Reject { code, .. } => {
            let kind = Rejection::from_error_type(code).unwrap_or(Rejection::Rejected);
            native_error(StatusCode::BAD_REQUEST, kind.error_type(), code, &fault.message())
        }
    };
    with_retry_after(response, fault)
}

async fn native_send(
    State(shared): State<AppState>,
    body: Result<Json<SendRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let req = match body {
        Ok(Json(req)) => req,
        Err(e) => {
            return native_error(
                StatusCode::BAD_REQUEST,
                error_types::INVALID_CONTENT,
                "invalid_request",
                &e.body_text(),
            );
        }
    };
    let mut send = Incoming::new(req.channel, req.from, req.to, req.content);
    send.idempotency_key = Some(req.idempotency_key).filter(|k| !k.is_empty());
    send.human_agent_tag = req.human_agent_tag;
    send.template_language = req.template_language;
    send.template_params = req.template_params;
    send.traffic_type = req.traffic_type.map(|t| t.as_str().to_owned());
    match shared.attempt(send, |seq| format!("sbx_{seq:012}")).await {
        Outcome::Accepted { id, duplicate } => {
            replayed(Json(NativeAccepted { id, duplicate }).into_response(), duplicate)
        }
        Outcome::Failed(fault) => native_fault(&fault),
    }
}

// ---------------------------------------------------------------------------------------------
// Control API

async fn list_faults(State(shared): State<AppState>) -> Json<Vec<FaultRule>> {
    Json(shared.faults())
}

async fn add_fault(State(shared): State<AppState>, Json(rule): Json<FaultRule>) -> StatusCode {
    shared.add_fault(rule);
    StatusCode::CREATED
}

async fn clear_faults(State(shared): State<AppState>) -> StatusCode {
    shared.clear_faults();
    StatusCode::NO_CONTENT
}

async fn list_sends(State(shared): State<AppState>) -> Json<Vec<super::RecordedSend>> {
    Json(shared.sends())
}

async fn clear_sends(State(shared): State<AppState>) -> StatusCode {
    shared.clear_sends();
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        let at = |secs| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        assert_eq!(humantime_rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(humantime_rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(humantime_rfc3339(at(1_767_225_599)), "2025-12-31T23:59:59Z");
    }
}
