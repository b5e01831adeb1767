//! The OpenAPI 3.1 document served at `/openapi.json`.
//!
//! Paths come from [`OPERATIONS`], a table kept next to the router (a test checks that every
//! route the router serves is in the table and the other way round). Schemas come from the
//! types themselves: each operation names its request, query and response *types*, and one
//! [`SchemaGenerator`] (JSON Schema 2020-12, the dialect of OpenAPI 3.1) turns their
//! [`JsonSchema`] derives into `components.schemas`, with every `$ref` pointing there. A field
//! renamed, added or made optional in [`crate::app::types`] changes the document with it.

use std::{borrow::Cow, collections::BTreeSet};

use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings, json_schema};
use serde_json::{Map, Value, json};

use super::handlers::{Handshake, Health, Readiness};
use crate::{
    app::types::{
        BalanceOut, ChannelOut, CloseWindowRequest, ComplianceIn, ComposeAccepted, ComposeRequest,
        ContactOut, ConversationMessageRequest, ConversationOut, CreateTemplateRequest,
        CreateWebhookEndpoint, DeliveriesQuery, DeliveryOut, InactivityPing, InboundOut, List,
        MessageAccepted, MessageOut, OkResponse, PolicyOverridesIn, ProactiveAccepted,
        ProactiveRequest, Rates, ResolveRequest, SandboxInbound, SandboxStatus, SendMessageRequest,
        SettingsOut, SettingsPatch, TakeOverRequest, TemplateOut, TemplateQuery, TopUpOut,
        TopUpRequest, TopUpsQuery, WebhookEndpointOut, WindowOut,
    },
    error::ErrorBody,
};

/// Where the generator puts definitions, and so what every `$ref` starts with.
const SCHEMAS: &str = "/components/schemas";

/// Produces a type's schema (a `$ref` into `components.schemas` for named types), adding
/// what it needs to the generator's definitions.
type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema + ?Sized>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// A request or response body.
#[derive(Clone, Copy)]
pub(crate) enum Body {
    /// No body.
    Empty,
    /// JSON of a type.
    Json(SchemaFn),
    /// JSON of a type, or no body at all.
    OptionalJson(SchemaFn),
    /// `application/x-www-form-urlencoded` of a type.
    Form(SchemaFn),
    /// A non-JSON body of this media type.
    Text(&'static str),
}

/// A JSON body of `T`.
const fn json<T: JsonSchema>() -> Body {
    Body::Json(schema_of::<T>)
}

/// A JSON body of `T`, or none.
const fn optional_json<T: JsonSchema>() -> Body {
    Body::OptionalJson(schema_of::<T>)
}

/// How an operation is authenticated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Auth {
    /// A workspace API key (`Authorization: Bearer` or `x-api-key`).
    ApiKey,
    /// The provider's signature in this header.
    Signature(&'static str),
    /// Meta's verify token in the query.
    VerifyToken,
    /// None.
    Public,
}

/// One documented operation.
pub(crate) struct Operation {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) summary: &'static str,
    pub(crate) auth: Auth,
    /// Honours Idempotency-Key.
    pub(crate) idempotent: bool,
    /// The query string's type: its fields become query parameters.
    pub(crate) query: Option<SchemaFn>,
    pub(crate) request: Body,
    /// The success status and its body.
    pub(crate) response: (u16, Body),
    /// Error statuses particular to this operation, besides those [`error_statuses`] derives
    /// from its auth, body, query, path and idempotency.
    pub(crate) errors: &'static [u16],
    /// A request body that succeeds on `convo serve`'s dev workspace (JSON text).
    pub(crate) example: Option<&'static str>,
    /// Operations the success answer leads to, as OpenAPI links.
    pub(crate) links: &'static [Link],
}

/// An OpenAPI link from an operation's success answer to another operation: which of its
/// parameters (and, optionally, which body) come from the request or the answer, as runtime
/// expressions (`$response.body#/conversation_id`). Clients and fuzzers follow them from a
/// resource's creation to its reads and actions.
pub(crate) struct Link {
    pub(crate) name: &'static str,
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) parameters: &'static [(&'static str, &'static str)],
    /// The linked request's body (JSON text, expressions allowed in its strings).
    pub(crate) body: Option<&'static str>,
}

/// A link to `method path`, with its parameters.
const fn link(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    parameters: &'static [(&'static str, &'static str)],
) -> Link {
    Link { name, method, path, parameters, body: None }
}

impl Link {
    const fn with_body(self, body: &'static str) -> Self {
        Self { body: Some(body), ..self }
    }
}

/// An operation's `operationId`: its method and path (`get_v1_conversations_id`).
pub(crate) fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.extend(segment.chars().filter(|c| *c != '{' && *c != '}').map(|c| match c {
            '-' | '.' => '_',
            c => c,
        }));
    }
    id
}

impl Operation {
    const fn new(method: &'static str, path: &'static str, summary: &'static str) -> Self {
        Self {
            method,
            path,
            summary,
            auth: Auth::Public,
            idempotent: false,
            query: None,
            request: Body::Empty,
            response: (200, Body::Empty),
            errors: &[],
            example: None,
            links: &[],
        }
    }

    /// A request body that succeeds on the dev workspace.
    const fn example(self, json: &'static str) -> Self {
        Self { example: Some(json), ..self }
    }

    /// Where the success answer leads.
    const fn links(self, links: &'static [Link]) -> Self {
        Self { links, ..self }
    }

    /// Needs an API key.
    const fn api_key(self) -> Self {
        Self { auth: Auth::ApiKey, ..self }
    }

    /// Authenticated by the provider's signature in `header`.
    const fn signed(self, header: &'static str) -> Self {
        Self { auth: Auth::Signature(header), ..self }
    }

    const fn auth(self, auth: Auth) -> Self {
        Self { auth, ..self }
    }

    const fn idempotent(self) -> Self {
        Self { idempotent: true, ..self }
    }

    const fn query<T: JsonSchema>(self) -> Self {
        Self { query: Some(schema_of::<T>), ..self }
    }

    const fn body(self, request: Body) -> Self {
        Self { request, ..self }
    }

    const fn answers(self, status: u16, response: Body) -> Self {
        Self { response: (status, response), ..self }
    }

    const fn errors(self, errors: &'static [u16]) -> Self {
        Self { errors, ..self }
    }
}

const fn get(path: &'static str, summary: &'static str) -> Operation {
    Operation::new("get", path, summary)
}

const fn post(path: &'static str, summary: &'static str) -> Operation {
    Operation::new("post", path, summary)
}

const fn put(path: &'static str, summary: &'static str) -> Operation {
    Operation::new("put", path, summary)
}

const fn patch(path: &'static str, summary: &'static str) -> Operation {
    Operation::new("patch", path, summary)
}

const fn delete(path: &'static str, summary: &'static str) -> Operation {
    Operation::new("delete", path, summary)
}

/// Any JSON object (a provider's payload, taken as it comes).
type AnyObject = Map<String, Value>;

/// What the sandbox provider recorded for one send. It is convo-activities' `RecordedSend`,
/// which has no schema of its own, so the document describes it as an object.
struct SandboxSend;

impl JsonSchema for SandboxSend {
    fn schema_name() -> Cow<'static, str> {
        "SandboxSend".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": "One send the sandbox provider accepted: seq, channel, from, to, content, provider_message_id, ..."
        })
    }
}

const WHATSAPP_SIGNATURE: &str = "X-Hub-Signature-256";
const TWILIO_SIGNATURE: &str = "X-Twilio-Signature";
const RBM_SIGNATURE: &str = "X-Goog-Signature";

/// A composed conversation's id, for its links.
const CONVERSATION: &[(&str, &str)] = &[("id", "$response.body#/conversation_id")];
/// The contact who wrote in, for the links of a simulated inbound message.
const SENDER: &[(&str, &str)] = &[("contact", "$request.body#/from")];
/// A registered template, by name and channel.
const TEMPLATE: &[(&str, &str)] =
    &[("name", "$request.body#/name"), ("channel", "$request.body#/channel")];

/// Path parameters' examples that exist on `convo serve`'s dev workspace: a contact the
/// examples write in as, a channel kind and a dev template. (`DELETE /v1/templates/{name}` has
/// none: it would remove the template the other examples send.)
fn path_example(method: &str, name: &str) -> Option<&'static str> {
    match name {
        "contact" => Some("+14155550123"),
        "channel" => Some("whatsapp"),
        "name" if method == "get" => Some("shipping_update"),
        _ => None,
    }
}

/// Every route of [`super::router`].
pub(crate) const OPERATIONS: &[Operation] = &[
    post("/v1/conversations/compose", "Start a conversation with one contact")
        .api_key()
        .idempotent()
        .body(json::<ComposeRequest>())
        .example(r#"{"channel_id": "whatsapp", "contact_phone": "+14155550123", "contact_name": "Ada", "content": "Hi Ada, your order shipped", "template": {"name": "shipping_update", "variables": {"1": "Ada", "2": "A-42"}}}"#)
        .links(&[
            link("GetConversation", "get", "/v1/conversations/{id}", CONVERSATION),
            link("SendInConversation", "post", "/v1/conversations/{id}/messages", CONVERSATION)
                .with_body(
                    r#"{"type": "template", "template": {"name": "shipping_update", "variables": {"1": "Ada", "2": "A-42"}}}"#,
                ),
            link("TakeOver", "post", "/v1/conversations/{id}/take-over", CONVERSATION)
                .with_body(r#"{"agent_id": "agent-ada"}"#),
            link("Resolve", "post", "/v1/conversations/{id}/resolve", CONVERSATION),
        ])
        .answers(202, json::<ComposeAccepted>()),
    post("/v1/conversations/proactive", "Start one templated conversation per recipient")
        .api_key()
        .idempotent()
        .body(json::<ProactiveRequest>())
        .example(r#"{"channel_id": "whatsapp", "template": {"name": "shipping_update", "variables": {"1": "Bo", "2": "B-7"}}, "recipients": ["+14155550125"]}"#)
        .answers(202, json::<ProactiveAccepted>()),
    get("/v1/conversations/{id}", "A conversation: status, messages, assignee, window")
        .api_key()
        .answers(200, json::<ConversationOut>()),
    post("/v1/conversations/{id}/messages", "Send in a conversation (text needs an open window)")
        .api_key()
        .idempotent()
        .body(json::<ConversationMessageRequest>())
        .example(r#"{"type": "text", "text": {"body": "It arrives tomorrow."}}"#)
        .answers(202, json::<MessageAccepted>())
        .errors(&[402]),
    post("/v1/conversations/{id}/take-over", "A human agent takes over")
        .api_key()
        .idempotent()
        .body(json::<TakeOverRequest>())
        .example(r#"{"agent_id": "agent-ada"}"#)
        .answers(200, json::<OkResponse>()),
    post("/v1/conversations/{id}/resolve", "Resolve (and close the window)")
        .api_key()
        .idempotent()
        .body(optional_json::<ResolveRequest>())
        .example(r#"{"close_window": true}"#)
        .answers(200, json::<OkResponse>()),
    get("/v1/channels", "The workspace's channels")
        .api_key()
        .answers(200, json::<List<ChannelOut>>()),
    post("/v1/messages", "Send one message (MESSAGE, CONVERSATION or NEWSLETTER)")
        .api_key()
        .idempotent()
        .body(json::<SendMessageRequest>())
        .example(r#"{"to": "+14155550123", "channel": "whatsapp", "message_type": "CONVERSATION", "content": {"text": "It arrives tomorrow."}, "traffic_type": "transactional"}"#)
        .links(&[
            link("GetMessage", "get", "/v1/messages/{id}", &[("id", "$response.body#/message_id")]),
            link("SimulateStatus", "post", "/v1/inbound/sandbox/statuses", &[])
                .with_body(r#"{"message_id": "$response.body#/message_id", "status": "delivered"}"#),
        ])
        .answers(202, json::<MessageAccepted>())
        .errors(&[402]),
    get("/v1/messages/{id}", "A message with its delivery status history")
        .api_key()
        .answers(200, json::<MessageOut>()),
    get("/v1/contacts/{contact}", "A contact: addresses, name, consent (E.164, e-mail or id)")
        .api_key()
        .answers(200, json::<ContactOut>()),
    get("/v1/windows/{contact}", "A contact's window (E.164, e-mail or contact id)")
        .api_key()
        .answers(200, json::<WindowOut>()),
    post("/v1/windows/{contact}/close", "Close a contact's window (idempotent)")
        .api_key()
        .idempotent()
        .body(optional_json::<CloseWindowRequest>())
        .example("{}")
        .answers(200, json::<WindowOut>()),
    post("/v1/inbound/sandbox", "Simulate a contact's message")
        .api_key()
        .idempotent()
        .body(json::<SandboxInbound>())
        .example(r#"{"from": "+14155550123", "channel": "whatsapp", "text": "Where is it?"}"#)
        .links(&[
            link("GetWindow", "get", "/v1/windows/{contact}", SENDER),
            link("GetContact", "get", "/v1/contacts/{contact}", SENDER),
            link("CloseWindow", "post", "/v1/windows/{contact}/close", SENDER),
            link("Reply", "post", "/v1/messages", &[]).with_body(
                r#"{"to": "$request.body#/from", "channel": "$request.body#/channel", "message_type": "CONVERSATION", "content": {"text": "Thanks for writing."}}"#,
            ),
        ])
        .answers(202, json::<InboundOut>()),
    post(
        "/v1/inbound/sandbox/statuses",
        "Simulate a delivery status (sent, delivered, read, failed with an error code)",
    )
    .api_key()
    .idempotent()
    .body(json::<SandboxStatus>())
    .answers(200, json::<MessageOut>()),
    post("/v1/inbound/whatsapp", "Meta WhatsApp webhook (X-Hub-Signature-256)")
        .signed(WHATSAPP_SIGNATURE)
        .body(json::<AnyObject>())
        .answers(200, json::<InboundOut>()),
    get("/v1/inbound/whatsapp", "Meta's subscription handshake")
        .auth(Auth::VerifyToken)
        .query::<Handshake>()
        .answers(200, Body::Text("text/plain"))
        .errors(&[403]),
    post("/v1/inbound/twilio", "Twilio SMS webhook and status callback (X-Twilio-Signature)")
        .signed(TWILIO_SIGNATURE)
        .body(Body::Form(schema_of::<AnyObject>))
        .answers(200, Body::Text("text/xml")),
    post("/v1/inbound/rbm", "RBM agent events: DELIVERED and READ statuses (X-Goog-Signature)")
        .signed(RBM_SIGNATURE)
        .body(json::<AnyObject>())
        .answers(200, json::<InboundOut>()),
    get("/v1/sandbox/outbox", "Sends the sandbox provider received, newest last")
        .api_key()
        .answers(200, json::<List<SandboxSend>>()),
    post("/v1/webhook-endpoints", "Subscribe a URL (the answer has its signing secret)")
        .api_key()
        .idempotent()
        .body(json::<CreateWebhookEndpoint>())
        .example(r#"{"url": "http://127.0.0.1:9/hooks", "event_types": ["conversation.started"]}"#)
        .links(&[link(
            "DeleteEndpoint",
            "delete",
            "/v1/webhook-endpoints/{id}",
            &[("id", "$response.body#/id")],
        )])
        .answers(201, json::<WebhookEndpointOut>()),
    get("/v1/webhook-endpoints", "The workspace's webhook endpoints")
        .api_key()
        .answers(200, json::<List<WebhookEndpointOut>>()),
    delete("/v1/webhook-endpoints/{id}", "Delete a webhook endpoint")
        .api_key()
        .answers(204, Body::Empty),
    get("/v1/webhook-deliveries", "The webhook delivery log, newest first")
        .api_key()
        .query::<DeliveriesQuery>()
        .answers(200, json::<List<DeliveryOut>>()),
    get("/v1/workspace/settings", "The workspace's settings as sessions opening now get them")
        .api_key()
        .answers(200, json::<SettingsOut>()),
    patch(
        "/v1/workspace/settings",
        "Change rates, policies, compliance texts and the ping at once",
    )
    .api_key()
    .body(json::<SettingsPatch>())
    .example(r#"{"rates": {"whatsapp": {"conversation_unit": 50, "message": 5, "newsletter": 2}}}"#)
    .answers(200, json::<SettingsOut>()),
    put("/v1/workspace/rates/{channel}", "Set a channel's prices (minor units)")
        .api_key()
        .body(json::<Rates>())
        .example(r#"{"conversation_unit": 50, "message": 5, "newsletter": 2}"#)
        .answers(200, json::<SettingsOut>()),
    put("/v1/workspace/policies/{channel}", "Set a channel's window policy overrides")
        .api_key()
        .body(json::<PolicyOverridesIn>())
        .example(r#"{"mode": "sliding", "window_secs": 86400}"#)
        .answers(200, json::<SettingsOut>()),
    put("/v1/workspace/compliance", "Set the help and opt-out/opt-in confirmation texts")
        .api_key()
        .body(json::<ComplianceIn>())
        .example(r#"{"help": "Reply STOP to opt out.", "opt_out_confirmation": "You are unsubscribed. Reply START to opt back in."}"#)
        .answers(200, json::<SettingsOut>()),
    put("/v1/workspace/inactivity-ping", "Set the inactivity ping (a text or a template)")
        .api_key()
        .body(json::<InactivityPing>())
        .example(r#"{"after_secs": 3600, "text": "Still there? Reply to keep chatting."}"#)
        .answers(200, json::<SettingsOut>()),
    delete("/v1/workspace/inactivity-ping", "Turn the inactivity ping off")
        .api_key()
        .answers(200, json::<SettingsOut>()),
    get("/v1/workspace/balance", "The workspace's balance (minor units)")
        .api_key()
        .answers(200, json::<BalanceOut>()),
    post("/v1/workspace/balance/top-ups", "Credit the balance, recording who and why")
        .api_key()
        .idempotent()
        .body(json::<TopUpRequest>())
        .example(r#"{"amount": 10000, "reason": "Monthly top-up"}"#)
        .answers(201, json::<TopUpOut>()),
    get("/v1/workspace/balance/top-ups", "The ledger's credits, newest first")
        .api_key()
        .query::<TopUpsQuery>()
        .answers(200, json::<List<TopUpOut>>()),
    post("/v1/templates", "Register a template with its components and their placeholders")
        .api_key()
        .idempotent()
        .body(json::<CreateTemplateRequest>())
        .example(r#"{"name": "order_ready", "channel": "whatsapp", "language": "en_US", "body": "Hi {{1}}, order {{2}} is ready.", "variables": ["1", "2"]}"#)
        .links(&[
            link("GetTemplate", "get", "/v1/templates/{name}", TEMPLATE),
            link("DeleteTemplate", "delete", "/v1/templates/{name}", TEMPLATE),
        ])
        .answers(201, json::<TemplateOut>()),
    get("/v1/templates", "The workspace's templates, by name")
        .api_key()
        .answers(200, json::<List<TemplateOut>>()),
    get("/v1/templates/{name}", "One template (per channel: ?channel= when several have the name)")
        .api_key()
        .query::<TemplateQuery>()
        .answers(200, json::<TemplateOut>()),
    delete("/v1/templates/{name}", "Remove a template (not the inactivity ping's last)")
        .api_key()
        .query::<TemplateQuery>()
        .answers(204, Body::Empty)
        .errors(&[409]),
    get("/healthz", "Liveness").answers(200, json::<Health>()),
    get("/readyz", "Readiness: Temporal and the database reachable")
        .answers(200, json::<Readiness>()),
    get("/metrics", "Prometheus metrics").answers(200, Body::Text("text/plain; version=0.0.4")),
    get("/openapi.json", "This document").answers(200, json::<AnyObject>()),
];

/// The generator every schema of the document comes from: JSON Schema 2020-12 (OpenAPI 3.1's
/// dialect), definitions under `components.schemas`. It describes what the API *accepts*
/// (serde's deserialize behaviour), so a field with a default or of an `Option` type is not
/// required.
fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = SCHEMAS.into();
            s.meta_schema = None;
        })
        .into_generator()
}

/// The `{name}` segments of a path template.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
}

/// A schema as found: inline, or the definition a `$ref` names.
fn resolve<'a>(generator: &'a SchemaGenerator, schema: &'a Schema) -> Option<&'a Value> {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix('#')?.strip_prefix(SCHEMAS)?.strip_prefix('/')?;
            generator.definitions().get(name)
        }
        None => Some(schema.as_value()),
    }
}

/// One query parameter per field of the query type.
fn query_parameters(generator: &mut SchemaGenerator, query: SchemaFn) -> Vec<Value> {
    let schema = query(generator);
    let Some(object) = resolve(generator, &schema) else { return Vec::new() };
    let required: BTreeSet<&str> = object["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = object["properties"].as_object() else { return Vec::new() };
    properties
        .iter()
        .map(|(name, schema)| {
            // A query parameter is absent, never null: drop serde's `None` default and the
            // `null` alternative an `Option` field's schema has.
            let mut schema = schema.clone();
            let description = schema.as_object_mut().and_then(|s| {
                if s.get("default") == Some(&Value::Null) {
                    s.remove("default");
                }
                if let Some(Value::Array(types)) = s.get_mut("type") {
                    types.retain(|t| t != "null");
                    if let [only] = types.as_slice() {
                        let only = only.clone();
                        s.insert("type".to_owned(), only);
                    }
                }
                s.remove("description")
            });
            let mut param = json!({"name": name, "in": "query", "required": required.contains(name.as_str()), "schema": schema});
            if let Some(d) = description {
                param["description"] = d;
            }
            param
        })
        .collect()
}

fn parameters(generator: &mut SchemaGenerator, op: &Operation) -> Vec<Value> {
    let mut params: Vec<Value> = path_parameters(op.path)
        .map(|name| {
            // What the router takes: 1 to 300 characters, not all blank; a channel by its kind.
            let schema = if name == "channel" {
                json!({"type": "string", "enum": convo_domain::Channel::ALL.map(|c| c.as_str())})
            } else {
                json!({"type": "string", "minLength": 1, "maxLength": 300, "pattern": "\\S"})
            };
            let mut param = json!({"name": name, "in": "path", "required": true, "schema": schema});
            if let Some(example) = path_example(op.method, name) {
                param["example"] = json!(example);
            }
            param
        })
        .collect();
    if let Some(query) = op.query {
        params.extend(query_parameters(generator, query));
    }
    if let Auth::Signature(header) = op.auth {
        params.push(json!({"name": header, "in": "header", "required": true, "schema": {"type": "string"},
            "description": "The provider's signature of the request; a bad one is 401 and nothing is recorded."}));
    }
    if op.idempotent {
        params.push(json!({"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
            "description": "Same key and body: the first answer is replayed (with Idempotent-Replayed: true). Another body: 422 idempotency_key_reused. Still running: the retry waits for its answer (up to 30 s), then 409 idempotency_key_in_use with Retry-After. A client that hangs up does not cancel the request, and a request whose process died is taken over once its lease (5 s) runs out. Kept 24 h."}));
    }
    params
}

/// A body's `content` map, or `None` for no body.
fn content(generator: &mut SchemaGenerator, body: Body) -> Option<Value> {
    let (media, schema) = match body {
        Body::Empty => return None,
        Body::Json(f) | Body::OptionalJson(f) => ("application/json", f(generator).to_value()),
        Body::Form(f) => ("application/x-www-form-urlencoded", f(generator).to_value()),
        Body::Text(media) => (media, json!({"type": "string"})),
    };
    Some(json!({ media: {"schema": schema} }))
}

/// Every error status an operation may answer with, and what it means there.
pub(crate) fn error_statuses(op: &Operation) -> Vec<(u16, String)> {
    let mut statuses: Vec<(u16, String)> = Vec::new();
    let has_body = !matches!(op.request, Body::Empty);
    let json_body = matches!(op.request, Body::Json(_) | Body::OptionalJson(_));
    if has_body {
        statuses.push((
            400,
            "The body cannot be read, or is not valid JSON (`validation_failed`).".into(),
        ));
    }
    match op.auth {
        Auth::ApiKey => {
            statuses.push((401, "No valid API key (`unauthorized`).".into()));
            let scope = super::required_scope(op.method, op.path);
            statuses.push((
                403,
                format!("The API key's scope does not cover this operation, which needs a `{scope}` (or wider) key (`forbidden`)."),
            ));
        }
        Auth::Signature(_) => {
            statuses.push((401, "Bad or missing signature (`unauthorized`).".into()))
        }
        Auth::VerifyToken | Auth::Public => {}
    }
    if op.errors.contains(&402) {
        statuses.push((
            402,
            "The workspace's balance cannot cover the send (`insufficient_balance`).".into(),
        ));
    }
    if op.errors.contains(&403) && op.auth != Auth::ApiKey {
        statuses.push((403, "The verify token does not match (`unauthorized`).".into()));
    }
    if path_parameters(op.path).next().is_some() {
        statuses.push((404, "No such resource in the caller's workspace (`not_found`).".into()));
    }
    if op.idempotent {
        statuses.push((409, "The request with this Idempotency-Key is still running after the retry waited for it (`idempotency_key_in_use`, with Retry-After), or the request contradicts the resource's state (`conflict`, `conversation_closed`).".into()));
    } else if op.errors.contains(&409) {
        statuses.push((409, "The request contradicts the resource's state (`conflict`).".into()));
    }
    if has_body {
        statuses.push((413, "The body is too large (`payload_too_large`).".into()));
    }
    if json_body {
        statuses.push((415, "The body is not JSON (`unsupported_media_type`).".into()));
    }
    if json_body || op.query.is_some() || op.idempotent {
        let mut d = "The request is invalid (`validation_failed`, with `field` naming the culprit)"
            .to_owned();
        if op.idempotent {
            d.push_str(
                "; the Idempotency-Key was used for another request (`idempotency_key_reused`)",
            );
        }
        if op.errors.contains(&402) {
            d.push_str("; or the send is refused (`no_active_session`, `contact_opted_out`, `channel_mismatch`, `channel_not_configured`, `provider_rejected`)");
        }
        d.push('.');
        statuses.push((422, d));
    }
    if op.auth == Auth::ApiKey {
        statuses.push((429, "The API key or its workspace is over its request rate, when the server sets one (`rate_limited`, with Retry-After in seconds).".into()));
    }
    statuses
}

fn responses(generator: &mut SchemaGenerator, op: &Operation, error: &Value) -> Map<String, Value> {
    let mut responses = Map::new();
    let mut ok = json!({"description": "Success."});
    if let Some(content) = content(generator, op.response.1) {
        ok["content"] = content;
    }
    if !op.links.is_empty() {
        ok["links"] = op
            .links
            .iter()
            .map(|l| {
                let mut link = json!({
                    "operationId": operation_id(l.method, l.path),
                    "parameters": l.parameters.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<Map<_, _>>(),
                });
                if let Some(body) = l.body {
                    link["requestBody"] = serde_json::from_str(body).expect("a link's body is JSON");
                }
                (l.name.to_owned(), link)
            })
            .collect::<Map<_, _>>()
            .into();
    }
    if op.idempotent {
        ok["headers"] = json!({"Idempotent-Replayed": {"description": "`true` when this is the stored answer of an earlier request with the same Idempotency-Key.", "schema": {"type": "string", "enum": ["true"]}}});
    }
    responses.insert(op.response.0.to_string(), ok);
    for (status, description) in error_statuses(op) {
        responses.insert(
            status.to_string(),
            json!({"description": description, "content": {"application/json": {"schema": error}}}),
        );
    }
    if op.path == "/readyz" {
        let readiness = schema_of::<Readiness>(generator);
        responses.insert("503".to_owned(), json!({"description": "A dependency is unreachable.", "content": {"application/json": {"schema": readiness}}}));
    }
    responses.insert(
        "default".to_owned(),
        json!({"description": "A failure on our side: 503 `unavailable` (a dependency is unreachable; retry later) or 500 `internal`.", "content": {"application/json": {"schema": error}}}),
    );
    responses
}

/// The OpenAPI document of every operation, the sandbox's included.
#[cfg(test)]
pub(crate) fn document() -> Value {
    document_of(true)
}

/// Whether an operation is one of the sandbox's simulations, routed only where a sandbox
/// provider is attached.
pub(crate) fn is_sandbox(path: &str) -> bool {
    path.starts_with("/v1/inbound/sandbox") || path.starts_with("/v1/sandbox/")
}

/// The OpenAPI document of what a process serves: without a sandbox, its operations are
/// neither routed nor documented.
pub(crate) fn document_of(sandbox: bool) -> Value {
    let mut generator = generator();
    let error = schema_of::<ErrorBody<'_>>(&mut generator).to_value();
    let mut paths: Map<String, Value> = Map::new();
    for op in OPERATIONS.iter().filter(|op| sandbox || !is_sandbox(op.path)) {
        let mut operation = json!({
            "operationId": operation_id(op.method, op.path),
            "summary": op.summary,
            "parameters": parameters(&mut generator, op),
            "responses": responses(&mut generator, op, &error),
        });
        if let Some(mut content) = content(&mut generator, op.request) {
            if let (Some(example), Some(media)) =
                (op.example, content.as_object_mut().and_then(|c| c.values_mut().next()))
            {
                media["example"] = serde_json::from_str(example).expect("an example is JSON");
            }
            let required = !matches!(op.request, Body::OptionalJson(_));
            operation["requestBody"] = json!({"required": required, "content": content});
        }
        operation["security"] = match op.auth {
            Auth::ApiKey => json!([{"bearer": []}, {"apiKey": []}]),
            Auth::Signature(_) | Auth::VerifyToken | Auth::Public => json!([]),
        };
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    let mut schemas = generator.take_definitions(true);
    schemas.extend(super::webhook_schemas::schemas());
    json!({
        "openapi": "3.1.0",
        "info": {"title": "convo", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Conversation orchestration for business messaging. Errors are {\"error\": {\"code\", \"message\", \"field\"?}}."},
        "paths": paths,
        "webhooks": super::webhook_schemas::webhooks(),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A workspace API key as `Authorization: Bearer <key>`."},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "A workspace API key as `x-api-key: <key>`."}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        app::types::{Amount, BillingBalanceOut, BillingOut, TemplateRef, TierOut},
        error::{ApiError, ErrorCode},
    };
    use convo_domain::{Channel, MessageType};

    /// Every `"$ref"` string anywhere in `value`.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_ref_resolves_within_the_document() {
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 20, "{found:?}");
        for r in &found {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external $ref {r}"));
            assert!(pointer.starts_with("/components/schemas/"), "{r}");
            assert!(doc.pointer(pointer).is_some(), "unresolved $ref {r}");
        }
    }

    #[test]
    fn schemas_come_from_the_types() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let compose = &schemas["ComposeRequest"];
        assert_eq!(compose["additionalProperties"], json!(false));
        assert_eq!(compose["required"], json!(["channel_id", "content"]));
        assert_eq!(
            compose["properties"]["template"]["anyOf"][0]["$ref"],
            json!("#/components/schemas/TemplateRef")
        );
        let consts = |name: &str| -> Vec<Value> {
            schemas[name]["oneOf"].as_array().unwrap().iter().map(|v| v["const"].clone()).collect()
        };
        assert_eq!(consts("Channel")[0], json!("whatsapp"));
        assert_eq!(
            consts("RequestedType"),
            [json!("MESSAGE"), json!("CONVERSATION"), json!("NEWSLETTER")]
        );
        assert_eq!(
            schemas["Error"]["properties"]["error"]["$ref"],
            json!("#/components/schemas/ErrorDetail")
        );
        assert_eq!(schemas["ErrorDetail"]["required"], json!(["code", "message"]));
        assert_eq!(schemas["ErrorDetail"]["properties"]["code"]["enum"], json!(ErrorCode::API));
        assert!(schemas["ChannelOutList"]["properties"]["data"]["items"]["$ref"].is_string());
        let op = &doc["paths"]["/v1/conversations/compose"]["post"];
        assert_eq!(
            op["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            json!("#/components/schemas/ComposeRequest")
        );
        let deliveries = &doc["paths"]["/v1/webhook-deliveries"]["get"]["parameters"];
        let mut names: Vec<&str> =
            deliveries.as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
        // Sorted: a workspace build unifies serde_json's `preserve_order` (thirtyfour, a test
        // dependency, enables it), which keeps map keys in insertion order.
        names.sort_unstable();
        assert_eq!(names, ["endpoint_id", "event_id", "limit", "status"]);
    }

    #[test]
    fn every_operation_documents_errors_auth_and_idempotency() {
        let doc = document();
        for op in OPERATIONS {
            let o = &doc["paths"][op.path][op.method];
            let responses = o["responses"].as_object().unwrap();
            assert_eq!(
                responses["default"]["content"]["application/json"]["schema"]["$ref"],
                json!("#/components/schemas/Error")
            );
            for (status, response) in responses {
                if status.starts_with('4') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        json!("#/components/schemas/Error"),
                        "{} {} {status}",
                        op.method,
                        op.path
                    );
                }
            }
            let has_4xx = responses.keys().any(|s| s.starts_with('4'));
            let can_fail =
                op.auth != Auth::Public || !matches!(op.request, Body::Empty) || op.query.is_some();
            assert_eq!(has_4xx, can_fail, "{} {}", op.method, op.path);
            let params = o["parameters"].as_array().unwrap();
            let has_key =
                params.iter().any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header");
            assert_eq!(has_key, op.idempotent, "{} {}", op.method, op.path);
            // Authenticated POSTs are exactly the ones the idempotency middleware covers.
            assert_eq!(
                op.idempotent,
                op.auth == Auth::ApiKey && op.method == "post",
                "{} {}",
                op.method,
                op.path
            );
            let security = o["security"].as_array().unwrap();
            assert_eq!(!security.is_empty(), op.auth == Auth::ApiKey, "{} {}", op.method, op.path);
            for name in path_parameters(op.path) {
                assert!(params.iter().any(|p| p["name"] == name && p["in"] == "path"), "{name}");
            }
        }
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], json!("bearer"));
        assert_eq!(schemes["apiKey"]["name"], json!("x-api-key"));
    }

    #[test]
    fn every_code_is_documented() {
        let doc = document();
        let code = &doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"];
        let documented: Vec<&str> =
            code.as_array().expect("the code enum").iter().filter_map(Value::as_str).collect();
        let api: Vec<&str> = ErrorCode::API.iter().map(|c| c.as_str()).collect();
        assert_eq!(documented, api);
    }

    /// `(method, path, group)` for every route the router's source registers.
    fn routed() -> Vec<(String, String, &'static str)> {
        let source = include_str!("mod.rs");
        let body = &source[source.find("pub fn router(").unwrap()..];
        let body = &body[..body.find("\n}\n").unwrap()];
        let mut routes = Vec::new();
        let groups: Vec<(usize, &'static str)> =
            [("let mut authed", "authed"), ("let providers", "providers"), ("let ops", "ops")]
                .into_iter()
                .map(|(marker, name)| (body.find(marker).unwrap(), name))
                .collect();
        for (i, _) in body.match_indices(".route(") {
            let group = groups.iter().filter(|(at, _)| *at < i).max().unwrap().1;
            // The call's arguments, up to its closing parenthesis.
            let args = &body[i + ".route(".len()..];
            let mut depth = 1;
            let end = args
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .unwrap()
                .0;
            let args = &args[..end];
            let path = args.split('"').nth(1).unwrap();
            for method in ["get", "post", "put", "patch", "delete"] {
                for (j, _) in args.match_indices(&format!("{method}(")) {
                    let before = args[..j].chars().next_back();
                    if matches!(before, Some('.' | ':' | ' ' | '\n' | '(')) {
                        routes.push((method.to_owned(), path.to_owned(), group));
                    }
                }
            }
        }
        routes
    }

    #[test]
    fn every_route_is_documented_and_every_operation_routed() {
        let routes = routed();
        assert!(routes.len() >= 20, "{routes:?}");
        let documented: BTreeSet<(String, String)> =
            OPERATIONS.iter().map(|o| (o.method.to_owned(), o.path.to_owned())).collect();
        let served: BTreeSet<(String, String)> =
            routes.iter().map(|(m, p, _)| (m.clone(), p.clone())).collect();
        assert_eq!(served.len(), routes.len(), "a route registered twice: {routes:?}");
        assert_eq!(documented.len(), OPERATIONS.len(), "an operation documented twice");
        assert_eq!(
            served.difference(&documented).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "routed but not documented"
        );
        assert_eq!(
            documented.difference(&served).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "documented but not routed"
        );
        // The router group decides authentication; the table must say the same.
        for (method, path, group) in &routes {
            let op = OPERATIONS.iter().find(|o| o.method == method && o.path == path).unwrap();
            let expected = match *group {
                "authed" => matches!(op.auth, Auth::ApiKey),
                "providers" => matches!(op.auth, Auth::Signature(_) | Auth::VerifyToken),
                _ => matches!(op.auth, Auth::Public),
            };
            assert!(
                expected,
                "{method} {path} is in the {group} router but documented as {:?}",
                op.auth
            );
        }
    }

    /// A validator for the named component schema, resolving `$ref`s within the document.
    fn validator(doc: &Value, name: &str) -> jsonschema::Validator {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/components/schemas/{name}"),
            "components": doc["components"],
        });
        jsonschema::draft202012::new(&root).unwrap()
    }

    #[test]
    fn examples_fit_their_schemas_and_links_lead_somewhere() {
        let doc = document();
        let operations: Vec<(&str, &Value)> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .map(|op| (op["operationId"].as_str().unwrap(), op))
            .collect();
        let mut examples = 0;
        let mut links = 0;
        for (id, op) in &operations {
            for media in
                op["requestBody"]["content"].as_object().into_iter().flat_map(|c| c.values())
            {
                let Some(example) = media.get("example") else { continue };
                let root = json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "$ref": media["schema"]["$ref"],
                    "components": doc["components"],
                });
                let validator = jsonschema::draft202012::new(&root).unwrap();
                let errors: Vec<String> =
                    validator.iter_errors(example).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{id}'s example does not fit its schema: {errors:?}");
                examples += 1;
            }
            for (name, link) in op["responses"]
                .as_object()
                .unwrap()
                .values()
                .filter_map(|r| r["links"].as_object())
                .flatten()
            {
                let target = link["operationId"].as_str().unwrap();
                let (_, to) = operations
                    .iter()
                    .find(|(id, _)| *id == target)
                    .unwrap_or_else(|| panic!("{id}'s link {name} names no operation: {target}"));
                let params: Vec<&str> = to["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                for param in link["parameters"].as_object().unwrap().keys() {
                    assert!(
                        params.contains(&param.as_str()),
                        "{id}'s link {name}: {target} has no parameter {param}"
                    );
                }
                for required in
                    to["parameters"].as_array().unwrap().iter().filter(|p| p["in"] == "path")
                {
                    let required = required["name"].as_str().unwrap();
                    assert!(
                        link["parameters"].get(required).is_some(),
                        "{id}'s link {name} leaves {target}'s {required} unset"
                    );
                }
                links += 1;
            }
        }
        assert!(examples >= 15 && links >= 12, "{examples} examples, {links} links");
        // Operation ids are unique.
        let mut ids: Vec<&str> = operations.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), operations.len());
    }

    #[test]
    fn compose_bodies_validate_against_the_generated_schema() {
        let doc = document();
        let compose = validator(&doc, "ComposeRequest");
        let minimal =
            json!({"channel_id": "ch_1", "contact_phone": "+14155550142", "content": "Hello"});
        assert!(compose.is_valid(&minimal));
        let full = json!({"channel_id": "ch_1", "contact_id": "ct_1", "contact_name": "Ada", "subject": "Hi",
            "content": "Hello", "template": {"name": "welcome", "variables": {"1": "Ada"}}});
        assert!(compose.is_valid(&full));
        // And serde agrees with the schema on both.
        serde_json::from_value::<ComposeRequest>(full).unwrap();
        let unknown =
            json!({"channel_id": "ch_1", "content": "Hello", "contact_phnoe": "+14155550142"});
        assert!(!compose.is_valid(&unknown));
        assert!(serde_json::from_value::<ComposeRequest>(unknown).is_err());
        let nested_unknown = json!({"channel_id": "ch_1", "content": "Hello", "template": {"name": "w", "vars": {}}});
        assert!(!compose.is_valid(&nested_unknown));
        assert!(!compose.is_valid(&json!({"channel_id": "ch_1"})), "content is required");

        let message = validator(&doc, "ConversationMessageRequest");
        assert!(message.is_valid(&json!({"type": "text", "text": {"body": "hi"}})));
        assert!(message.is_valid(&json!({"type": "template", "template": {"name": "w"}})));
        assert!(!message.is_valid(&json!({"type": "text", "template": {"name": "w"}})));
        let proactive = validator(&doc, "ProactiveRequest");
        assert!(proactive.is_valid(&json!({"channel_id": "ch_1", "template": {"name": "w"},
            "recipients": ["+14155550142", {"email": "a@example.com"}]})));
        assert!(!proactive.is_valid(&json!({"channel_id": "ch_1", "template": {"name": "w"}, "recipients": [{"mail": "a@example.com"}]})));
    }

    #[test]
    fn serialised_answers_validate_against_their_schemas() {
        let doc = document();
        let error = validator(&doc, "Error");
        assert!(error.is_valid(&ApiError::validation("content.text", "must not be empty").body()));
        assert!(error.is_valid(&ApiError::not_found("no such conversation").body()));
        let accepted = MessageAccepted {
            message_id: "msg_1".to_owned(),
            status: "queued".to_owned(),
            created_at: "2025-01-01T00:00:00Z".to_owned(),
            conversation_expires_at: None,
            contact_id: "ct_1".to_owned(),
            traffic_type: None,
            billing: BillingOut {
                channel: Channel::Whatsapp,
                message_type: MessageType::Conversation,
                in_session: true,
                currency: "EUR".to_owned(),
                hold_amount: Amount::new(convo_domain::Money::from_minor(25), "EUR"),
                message_price: Amount::new(convo_domain::Money::from_minor(25), "EUR"),
                balance: BillingBalanceOut::new(convo_domain::Balance::default(), "EUR"),
                tier: Some(TierOut {
                    channel: Channel::Whatsapp,
                    current: "tier_1".to_owned(),
                    volume_used: 312,
                }),
            },
        };
        let value = serde_json::to_value(&accepted).unwrap();
        assert!(validator(&doc, "MessageAccepted").is_valid(&value), "{value}");
        assert_eq!(value["billing"]["hold_amount"], 0.25);
        let replayed: MessageAccepted = serde_json::from_value(value).unwrap();
        assert_eq!(replayed, accepted);
        let inbound = serde_json::to_value(InboundOut::default()).unwrap();
        assert!(validator(&doc, "InboundOut").is_valid(&inbound));
        let template = serde_json::to_value(TemplateRef {
            name: "w".to_owned(),
            variables: Default::default(),
        })
        .unwrap();
        assert!(validator(&doc, "TemplateRef").is_valid(&template));
    }
}

#[cfg(test)]
mod workspace_tests {
    use serde_json::json;

    use super::*;

    /// A validator for the named component schema, resolving `$ref`s within the document.
    fn validator(doc: &Value, name: &str) -> jsonschema::Validator {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/components/schemas/{name}"),
            "components": doc["components"],
        });
        jsonschema::draft202012::new(&root).unwrap()
    }

    #[test]
    fn workspace_bodies_validate_against_their_schemas() {
        let doc = document();
        let patch = validator(&doc, "SettingsPatch");
        let full = json!({
            "rates": {"whatsapp": {"conversation_unit": 100, "message": 5, "newsletter": 2}},
            "policies": {"sms": {"mode": "fixed", "window_secs": 3600}},
            "compliance": {"help": "Reply STOP to stop"},
            "inactivity_ping": {"after_secs": 3600, "text": "Still there?"},
        });
        assert!(patch.is_valid(&full));
        serde_json::from_value::<SettingsPatch>(full).unwrap();
        let off = json!({"inactivity_ping": null});
        assert!(patch.is_valid(&off));
        assert_eq!(
            serde_json::from_value::<SettingsPatch>(off).unwrap().inactivity_ping,
            Some(None),
            "null turns the ping off"
        );
        assert_eq!(
            serde_json::from_value::<SettingsPatch>(json!({})).unwrap().inactivity_ping,
            None
        );
        for bad in [
            json!({"rates": {"whatsapp": {"conversation_unit": 1, "message": 1}}}),
            json!({"policies": {"sms": {"mode": "elastic"}}}),
            json!({"compliance": {"stop": "x"}}),
            json!({"rate": {}}),
            json!({"rates": {"fax": {"conversation_unit": 1, "message": 1, "newsletter": 1}}}),
        ] {
            assert!(!patch.is_valid(&bad), "{bad}");
            assert!(serde_json::from_value::<SettingsPatch>(bad).is_err());
        }
        let top_up = validator(&doc, "TopUpRequest");
        assert!(top_up.is_valid(&json!({"amount": 500, "reason": "invoice 42"})));
        assert!(!top_up.is_valid(&json!({"amount": -1, "reason": "x"})));
        let template = validator(&doc, "CreateTemplateRequest");
        assert!(template.is_valid(&json!({"name": "order_shipped", "channel": "whatsapp",
            "language": "en_US", "body": "Hi {{1}}", "variables": ["1"]})));
        assert!(
            !template
                .is_valid(&json!({"name": "x", "channel": "fax", "language": "en", "body": "b"}))
        );
    }
}
