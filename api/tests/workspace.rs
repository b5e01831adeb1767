//! Configuring a workspace over real HTTP (and gRPC) on loopback: settings (rates, window
//! policies, compliance texts, the inactivity ping), balance top-ups with their author, reason
//! and Idempotency-Key, and the template registry; every validated field named in its 422;
//! settings reaching sessions that open afterwards while a running session keeps its own.

mod support;

use convo_domain::Channel;
use convo_proto::v1::{
    self as pb, template_service_client::TemplateServiceClient,
    workspace_service_client::WorkspaceServiceClient,
};
use convo_store::Actor;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Answer, Stack};
use tonic::{Code, Request};
use tonic_types::StatusExt as _;

impl Stack {
    async fn put(&self, key: &str, path: &str, body: Value) -> anyhow::Result<Answer> {
        self.call(Method::PUT, path, Some(key), Some(&body), &[]).await
    }

    async fn patch(&self, key: &str, path: &str, body: Value) -> anyhow::Result<Answer> {
        self.call(Method::PATCH, path, Some(key), Some(&body), &[]).await
    }

    async fn delete(&self, key: &str, path: &str) -> anyhow::Result<Answer> {
        self.call(Method::DELETE, path, Some(key), None, &[]).await
    }
}

#[track_caller]
fn ok(answer: &Answer) {
    assert!(answer.status.is_success(), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_and_templates_round_trip_per_workspace() -> anyhow::Result<()> {
    let stack = Stack::start("workspace-settings").await?;
    let (a, b) = (stack.a.key.clone(), stack.b.key.clone());

    let settings = stack.get(&a, "/v1/workspace/settings").await?;
    ok(&settings);
    assert_eq!(settings.body["workspace_id"], stack.a.id.as_str());
    assert_eq!(
        settings.body["rates"]["whatsapp"],
        json!({"conversation_unit": 100, "message": 5, "newsletter": 2})
    );
    assert_eq!(settings.body["rates"].as_object().unwrap().len(), Channel::ALL.len());
    assert_eq!(settings.body["policies"]["rcs"]["effective"]["mode"], "fixed");
    assert!(settings.body["inactivity_ping"].is_null());

    // Rates and a policy, each by channel.
    let rates = json!({"conversation_unit": 40, "message": 7, "newsletter": 3});
    let answer = stack.put(&a, "/v1/workspace/rates/sms", rates.clone()).await?;
    ok(&answer);
    assert_eq!(answer.body["rates"]["sms"], rates);
    let policy = json!({"mode": "fixed", "window_secs": 3600, "human_agent_secs": 0});
    let answer = stack.put(&a, "/v1/workspace/policies/whatsapp", policy.clone()).await?;
    ok(&answer);
    assert_eq!(answer.body["policies"]["whatsapp"]["overrides"], policy);
    let effective = &answer.body["policies"]["whatsapp"]["effective"];
    assert_eq!((&effective["mode"], &effective["window_secs"]), (&json!("fixed"), &json!(3600)));
    assert_eq!(effective["gate"], "window", "what the overrides leave is the channel's default");

    // Compliance texts: those given change, the others stay.
    let before = stack.get(&a, "/v1/workspace/settings").await?.body["compliance"].clone();
    let help = "Acme support: help@acme.test. Reply STOP to opt out.";
    let answer = stack.put(&a, "/v1/workspace/compliance", json!({"help": help})).await?;
    ok(&answer);
    assert_eq!(answer.body["compliance"]["help"], help);
    assert_eq!(answer.body["compliance"]["opt_out_confirmation"], before["opt_out_confirmation"]);

    // Templates: create (the same again is fine, another under the name is not), list, get.
    let template = json!({"name": "still_there", "channel": "whatsapp", "language": "en_US",
        "body": "Still there, {{1}}?", "variables": ["1"]});
    let created = stack.post_idem(&a, "/v1/templates", template.clone(), "tpl-1").await?;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.body["variables"], json!(["1"]));
    assert!(created.body["created_at"].is_string());
    let replayed = stack.post_idem(&a, "/v1/templates", template.clone(), "tpl-1").await?;
    assert_eq!(replayed.headers["idempotent-replayed"], "true");
    assert_eq!(
        stack.post(&a, "/v1/templates", template.clone()).await?.status,
        StatusCode::CREATED
    );
    let mut other = template.clone();
    other["body"] = json!("Hello {{1}}");
    let conflict = stack.post(&a, "/v1/templates", other).await?;
    assert_eq!((conflict.status, conflict.code()), (StatusCode::CONFLICT, "conflict"));
    let named = json!({"name": "welcome", "channel": "email", "language": "en",
        "body": "Welcome, {{first_name}}", "variables": ["first_name"]});
    ok(&stack.post(&a, "/v1/templates", named).await?);
    let list = stack.get(&a, "/v1/templates").await?;
    let names: Vec<&str> =
        list.body["data"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["still_there", "welcome"]);
    let one = stack.get(&a, "/v1/templates/welcome").await?;
    assert_eq!(
        (one.body["channel"].as_str(), one.body["language"].as_str()),
        (Some("email"), Some("en"))
    );
    // The registry is per channel: the same name on RCS is another template, and reading or
    // removing a name two channels have needs the channel.
    let mut on_rcs = template.clone();
    on_rcs["channel"] = json!("rcs");
    on_rcs["body"] = json!("Still around, {{1}}?");
    let created = stack.post(&a, "/v1/templates", on_rcs).await?;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let ambiguous = stack.get(&a, "/v1/templates/still_there").await?;
    assert_eq!(
        (ambiguous.status, ambiguous.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("channel")),
        "{ambiguous:?}"
    );
    let rcs = stack.get(&a, "/v1/templates/still_there?channel=rcs").await?;
    assert_eq!(rcs.body["body"], "Still around, {{1}}?", "{rcs:?}");
    let wa = stack.get(&a, "/v1/templates/still_there?channel=whatsapp").await?;
    assert_eq!(wa.body["body"], "Still there, {{1}}?", "{wa:?}");
    assert_eq!(
        stack.delete(&a, "/v1/templates/still_there").await?.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        stack.delete(&a, "/v1/templates/still_there?channel=rcs").await?.status,
        StatusCode::NO_CONTENT
    );

    // Workspace b sees none of it.
    assert_eq!(stack.get(&b, "/v1/templates/welcome").await?.status, StatusCode::NOT_FOUND);
    assert!(stack.get(&b, "/v1/templates").await?.body["data"].as_array().unwrap().is_empty());
    let theirs = stack.get(&b, "/v1/workspace/settings").await?;
    assert_eq!(theirs.body["rates"]["sms"]["conversation_unit"], 100);
    assert_eq!(theirs.body["compliance"], before);

    // The inactivity ping, with a template of the registry; that template cannot go while
    // the ping sends it.
    let ping = json!({"after_secs": 1800, "template": "still_there"});
    let answer = stack.put(&a, "/v1/workspace/inactivity-ping", ping.clone()).await?;
    ok(&answer);
    assert_eq!(answer.body["inactivity_ping"], ping);
    let refused = stack.delete(&a, "/v1/templates/still_there").await?;
    assert_eq!((refused.status, refused.code()), (StatusCode::CONFLICT, "conflict"));
    let text = json!({"after_secs": 600, "text": "Anything else?"});
    let answer = stack.put(&a, "/v1/workspace/inactivity-ping", text.clone()).await?;
    assert_eq!(answer.body["inactivity_ping"], text);
    assert_eq!(stack.delete(&a, "/v1/templates/still_there").await?.status, StatusCode::NO_CONTENT);
    assert_eq!(stack.get(&a, "/v1/templates/still_there").await?.status, StatusCode::NOT_FOUND);
    assert_eq!(stack.delete(&a, "/v1/templates/still_there").await?.status, StatusCode::NOT_FOUND);
    let answer = stack.delete(&a, "/v1/workspace/inactivity-ping").await?;
    ok(&answer);
    assert!(answer.body["inactivity_ping"].is_null());

    // PATCH: several changes at once, all or nothing; `{}` restores a channel's defaults.
    let patch = json!({
        "rates": {"rcs": {"conversation_unit": 50, "message": 6, "newsletter": 1}},
        "policies": {"whatsapp": {}},
        "compliance": {"opt_in_confirmation": "Welcome back!"},
        "inactivity_ping": {"after_secs": 900, "text": "Still with us?"},
    });
    let answer = stack.patch(&a, "/v1/workspace/settings", patch).await?;
    ok(&answer);
    assert_eq!(answer.body["rates"]["rcs"]["conversation_unit"], 50);
    assert_eq!(answer.body["rates"]["sms"], rates, "untouched");
    assert_eq!(answer.body["policies"]["whatsapp"]["overrides"], json!({}));
    assert_eq!(answer.body["policies"]["whatsapp"]["effective"]["mode"], "sliding");
    assert_eq!(answer.body["compliance"]["help"], help);
    assert_eq!(answer.body["compliance"]["opt_in_confirmation"], "Welcome back!");
    assert_eq!(answer.body["inactivity_ping"]["after_secs"], 900);
    let half_bad = json!({
        "rates": {"email": {"conversation_unit": 1, "message": 1, "newsletter": 1}},
        "policies": {"email": {"window_secs": 0}},
    });
    let refused = stack.patch(&a, "/v1/workspace/settings", half_bad).await?;
    assert_eq!(refused.body["error"]["field"], "policies.email.window_secs");
    let now = stack.get(&a, "/v1/workspace/settings").await?;
    assert_eq!(now.body["rates"]["email"]["conversation_unit"], 100, "nothing of it applied");
    let off = stack.patch(&a, "/v1/workspace/settings", json!({"inactivity_ping": null})).await?;
    assert!(off.body["inactivity_ping"].is_null());

    // What sessions read: the stored domain settings.
    let stored = stack.store.workspace(&stack.a.id).await?.settings;
    assert_eq!(stored.config_for(Channel::Sms)?.rates.message.minor(), 7);
    assert_eq!(stored.compliance.opt_in_confirmation, "Welcome back!");
    assert!(stored.inactivity_ping.is_none());

    // Without a key, nothing.
    let anonymous = stack.call(Method::GET, "/v1/workspace/settings", None, None, &[]).await?;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    stack.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_ups_record_the_key_and_the_reason_once() -> anyhow::Result<()> {
    let stack = Stack::start("workspace-top-ups").await?;
    let a = stack.a.key.clone();
    let key_id = stack.store.api_keys(&stack.a.id).await?[0].id.clone();
    let before = stack.get(&a, "/v1/workspace/balance").await?;
    assert_eq!(before.body, json!({"free": 10_000, "reserved": 0, "total": 10_000}));

    let body = json!({"amount": 2_500, "reason": "invoice 42"});
    let first = stack.post_idem(&a, "/v1/workspace/balance/top-ups", body.clone(), "tu-1").await?;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    assert_eq!(first.body["amount"], 2_500);
    assert_eq!(first.body["reason"], "invoice 42");
    assert_eq!(first.body["by"], json!({"kind": "api_key", "id": key_id}));
    assert_eq!(first.body["balance_after"]["total"], 12_500);
    let id = first.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("tu_"), "{id}");

    // A retry replays; the balance moved once.
    let again = stack.post_idem(&a, "/v1/workspace/balance/top-ups", body.clone(), "tu-1").await?;
    assert_eq!((again.status, &again.body), (StatusCode::CREATED, &first.body));
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(stack.get(&a, "/v1/workspace/balance").await?.body["total"], 12_500);
    let reused = stack
        .post_idem(&a, "/v1/workspace/balance/top-ups", json!({"amount": 1, "reason": "x"}), "tu-1")
        .await?;
    assert_eq!(reused.code(), "idempotency_key_reused");
    // Even past the stored answer (as after its 24 h), the ledger applies the key's top-up once.
    let admin = convo_api::WorkspaceAdmin::new(stack.store.clone());
    let late = admin
        .top_up(
            &convo_api::WorkspaceId(stack.a.id.clone()),
            Actor::ApiKey(key_id.clone()),
            serde_json::from_value(body)?,
            Some("tu-1"),
        )
        .await?;
    assert_eq!(late.id, id);
    assert_eq!(stack.get(&a, "/v1/workspace/balance").await?.body["total"], 12_500);

    // Without a key, each request is a top-up of its own.
    let second = stack
        .post(&a, "/v1/workspace/balance/top-ups", json!({"amount": 5, "reason": "x"}))
        .await?;
    assert_ne!(second.body["id"], id.as_str());
    let list = stack.get(&a, "/v1/workspace/balance/top-ups").await?;
    let entries = list.body["data"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "two top-ups and the opening credit: {entries:?}");
    let ours = entries.iter().find(|e| e["id"] == id.as_str()).unwrap();
    assert_eq!(ours["by"]["id"], key_id.as_str());
    let opening = entries.iter().find(|e| e["id"] == "opening").unwrap();
    assert!(opening["by"].is_null() && opening["reason"].is_null());
    let one = stack.get(&a, "/v1/workspace/balance/top-ups?limit=1").await?;
    assert_eq!(one.body["data"].as_array().unwrap().len(), 1);
    // Workspace b's balance did not move.
    let theirs = stack.get(&stack.b.key, "/v1/workspace/balance").await?;
    assert_eq!(theirs.body["total"], 10_000);
    stack.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_validated_field_is_named_in_its_422() -> anyhow::Result<()> {
    let stack = Stack::start("workspace-validation").await?;
    let a = stack.a.key.clone();
    let template = json!({"name": "t1", "channel": "whatsapp", "language": "en", "body": "Hi"});
    ok(&stack.post(&a, "/v1/templates", template).await?);
    let too_big = 9_223_372_036_854_775_808_u64;
    let long = "x".repeat(1_601);
    let rates = |over: Value| {
        let mut r = json!({"conversation_unit": 1, "message": 1, "newsletter": 1});
        r.as_object_mut().unwrap().extend(over.as_object().unwrap().clone());
        r
    };
    let tpl = |over: Value| {
        let mut t = json!({"name": "t2", "channel": "sms", "language": "en", "body": "Hi {{1}}",
            "variables": ["1"]});
        t.as_object_mut().unwrap().extend(over.as_object().unwrap().clone());
        t
    };
    let cases: Vec<(Method, &str, Value, &str)> = vec![
        // Rates.
        (Method::PUT, "/v1/workspace/rates/fax", rates(json!({})), "channel"),
        (
            Method::PUT,
            "/v1/workspace/rates/sms",
            rates(json!({"conversation_unit": -1})),
            "conversation_unit",
        ),
        (Method::PUT, "/v1/workspace/rates/sms", rates(json!({"message": too_big})), "message"),
        (Method::PUT, "/v1/workspace/rates/sms", rates(json!({"newsletter": "2"})), "newsletter"),
        (
            Method::PUT,
            "/v1/workspace/rates/sms",
            json!({"message": 1, "newsletter": 1}),
            "conversation_unit",
        ),
        (Method::PUT, "/v1/workspace/rates/sms", rates(json!({"per_message": 1})), "per_message"),
        // Policies, through the domain's validation.
        (Method::PUT, "/v1/workspace/policies/fax", json!({}), "channel"),
        (Method::PUT, "/v1/workspace/policies/sms", json!({"window_secs": 0}), "window_secs"),
        (
            Method::PUT,
            "/v1/workspace/policies/sms",
            json!({"window_secs": 40_000_000}),
            "window_secs",
        ),
        (
            Method::PUT,
            "/v1/workspace/policies/sms",
            json!({"billing_session_secs": 0}),
            "billing_session_secs",
        ),
        (
            Method::PUT,
            "/v1/workspace/policies/messenger",
            json!({"human_agent_secs": 60}),
            "human_agent_secs",
        ),
        (Method::PUT, "/v1/workspace/policies/sms", json!({"mode": "elastic"}), "mode"),
        (Method::PUT, "/v1/workspace/policies/sms", json!({"gate": "sometimes"}), "gate"),
        // Compliance texts.
        (Method::PUT, "/v1/workspace/compliance", json!({"help": "  "}), "help"),
        (
            Method::PUT,
            "/v1/workspace/compliance",
            json!({"opt_out_confirmation": long}),
            "opt_out_confirmation",
        ),
        (
            Method::PUT,
            "/v1/workspace/compliance",
            json!({"opt_in_confirmation": ""}),
            "opt_in_confirmation",
        ),
        (Method::PUT, "/v1/workspace/compliance", json!({"stop": "x"}), "stop"),
        // The inactivity ping.
        (
            Method::PUT,
            "/v1/workspace/inactivity-ping",
            json!({"after_secs": 0, "text": "x"}),
            "after_secs",
        ),
        (
            Method::PUT,
            "/v1/workspace/inactivity-ping",
            json!({"after_secs": 40_000_000, "text": "x"}),
            "after_secs",
        ),
        (Method::PUT, "/v1/workspace/inactivity-ping", json!({"text": "x"}), "after_secs"),
        (Method::PUT, "/v1/workspace/inactivity-ping", json!({"after_secs": 60}), "text"),
        (
            Method::PUT,
            "/v1/workspace/inactivity-ping",
            json!({"after_secs": 60, "text": " "}),
            "text",
        ),
        (
            Method::PUT,
            "/v1/workspace/inactivity-ping",
            json!({"after_secs": 60, "text": "x", "template": "t1"}),
            "template",
        ),
        (
            Method::PUT,
            "/v1/workspace/inactivity-ping",
            json!({"after_secs": 60, "template": "nope"}),
            "template",
        ),
        (
            Method::PUT,
            "/v1/workspace/inactivity-ping",
            json!({"after_secs": 60, "template": "t1", "subject": "s"}),
            "subject",
        ),
        // PATCH names fields by their path.
        (
            Method::PATCH,
            "/v1/workspace/settings",
            json!({"rates": {"sms": rates(json!({"newsletter": too_big}))}}),
            "rates.sms.newsletter",
        ),
        (
            Method::PATCH,
            "/v1/workspace/settings",
            json!({"policies": {"rcs": {"window_secs": 0}}}),
            "policies.rcs.window_secs",
        ),
        (
            Method::PATCH,
            "/v1/workspace/settings",
            json!({"compliance": {"help": ""}}),
            "compliance.help",
        ),
        (
            Method::PATCH,
            "/v1/workspace/settings",
            json!({"inactivity_ping": {"after_secs": 0, "text": "x"}}),
            "inactivity_ping.after_secs",
        ),
        (
            Method::PATCH,
            "/v1/workspace/settings",
            json!({"inactivity_ping": {"after_secs": 9, "template": "nope"}}),
            "inactivity_ping.template",
        ),
        (Method::PATCH, "/v1/workspace/settings", json!({"ratez": {}}), "ratez"),
        // Top-ups.
        (
            Method::POST,
            "/v1/workspace/balance/top-ups",
            json!({"amount": 0, "reason": "r"}),
            "amount",
        ),
        (
            Method::POST,
            "/v1/workspace/balance/top-ups",
            json!({"amount": too_big, "reason": "r"}),
            "amount",
        ),
        (
            Method::POST,
            "/v1/workspace/balance/top-ups",
            json!({"amount": 1, "reason": ""}),
            "reason",
        ),
        (
            Method::POST,
            "/v1/workspace/balance/top-ups",
            json!({"amount": 1, "reason": "x".repeat(501)}),
            "reason",
        ),
        (Method::POST, "/v1/workspace/balance/top-ups", json!({"amount": 1}), "reason"),
        // Templates.
        (Method::POST, "/v1/templates", tpl(json!({"name": "has space"})), "name"),
        (Method::POST, "/v1/templates", tpl(json!({"channel": "fax"})), "channel"),
        (Method::POST, "/v1/templates", tpl(json!({"language": "english please"})), "language"),
        (Method::POST, "/v1/templates", tpl(json!({"body": " ", "variables": []})), "body"),
        (Method::POST, "/v1/templates", tpl(json!({"body": "Hi {{1}} {{2}}"})), "body"),
        (Method::POST, "/v1/templates", tpl(json!({"body": "Hi {{1}"})), "body"),
        (Method::POST, "/v1/templates", tpl(json!({"variables": ["1", "2"]})), "variables[1]"),
        (Method::POST, "/v1/templates", tpl(json!({"variables": ["a b"]})), "variables[0]"),
        (
            Method::POST,
            "/v1/templates",
            tpl(json!({"body": "Hi {{1}} {{name}}", "variables": ["1", "name"]})),
            "variables",
        ),
        (
            Method::POST,
            "/v1/templates",
            tpl(json!({"body": "Hi {{2}}", "variables": ["2"]})),
            "variables",
        ),
    ];
    for (method, path, body, field) in cases {
        let answer = stack.call(method.clone(), path, Some(&a), Some(&body), &[]).await?;
        assert_eq!(
            (answer.status, answer.code(), answer.body["error"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some(field)),
            "{method} {path} {body}: {answer:?}"
        );
    }
    let limit = stack.get(&a, "/v1/workspace/balance/top-ups?limit=0").await?;
    assert_eq!(limit.body["error"]["field"], "limit");
    // Nothing of it was stored.
    assert_eq!(stack.get(&a, "/v1/templates").await?.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(stack.get(&a, "/v1/workspace/balance").await?.body["total"], 10_000);
    stack.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_rates_reach_new_sessions_and_running_ones_keep_theirs() -> anyhow::Result<()> {
    let stack = Stack::start("workspace-sessions").await?;
    let a = stack.a.key.clone();
    let send = |to: &str| {
        json!({"to": to, "channel": "whatsapp", "message_type": "CONVERSATION",
               "content": {"text": "How can we help?"}})
    };
    let open = async |phone: &str, id: &str| -> anyhow::Result<()> {
        let inbound =
            json!({"from": phone, "channel": "whatsapp", "text": "hi", "provider_message_id": id});
        ok(&stack.post(&a, "/v1/inbound/sandbox", inbound).await?);
        let path = format!("/v1/windows/{}", phone.replace('+', "%2B"));
        stack.until(&a, &path, "open", |w| w.body["status"] == "open").await?;
        Ok(())
    };

    // A session opens under the seeded rates (a conversation unit of 100) ...
    open("+14155550201", "wamid.before").await?;
    // ... then the rates change.
    let rates = json!({"conversation_unit": 300, "message": 5, "newsletter": 2});
    ok(&stack.put(&a, "/v1/workspace/rates/whatsapp", rates).await?);

    let running = stack.post(&a, "/v1/messages", send("+14155550201")).await?;
    assert_eq!(running.status, StatusCode::ACCEPTED, "{running:?}");
    assert_eq!(running.body["billing"]["hold_amount"], 1.0, "the running session keeps its rates");

    open("+14155550202", "wamid.after").await?;
    let fresh = stack.post(&a, "/v1/messages", send("+14155550202")).await?;
    assert_eq!(fresh.status, StatusCode::ACCEPTED, "{fresh:?}");
    assert_eq!(
        fresh.body["billing"]["hold_amount"], 3.0,
        "a session opened later has the new rates"
    );
    stack.shutdown().await
}

// ---- gRPC -----------------------------------------------------------------------------------

fn req<T>(key: &str, message: T, extra: &[(&'static str, &str)]) -> Request<T> {
    let mut request = Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert("authorization", format!("Bearer {key}").parse().expect("ascii"));
    for (name, value) in extra {
        metadata.insert(*name, value.parse().expect("ascii"));
    }
    request
}

/// The status code and the `field` of its ErrorInfo.
fn failure<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
) -> (Code, String, Option<String>) {
    let status = result.expect_err("the call should fail");
    let info = status.get_error_details().error_info().cloned().expect("an ErrorInfo");
    (status.code(), info.reason, info.metadata.get("field").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_and_templates_over_grpc() -> anyhow::Result<()> {
    let stack = Stack::start("workspace-grpc").await?;
    let a = stack.a.key.clone();
    let channel = tonic::transport::Endpoint::from_shared(stack.grpc.clone())?.connect().await?;
    let mut ws = WorkspaceServiceClient::new(channel.clone());
    let mut templates = TemplateServiceClient::new(channel);

    let rates = pb::Rates { conversation_unit: 40, message: 7, newsletter: 3 };
    let set = pb::SetRatesRequest { channel: "sms".into(), rates: Some(rates) };
    let settings = ws.set_rates(req(&a, set, &[])).await?.into_inner();
    assert_eq!(settings.workspace_id, stack.a.id);
    assert_eq!(settings.rates["sms"], rates);
    let overrides = pb::PolicyOverrides {
        mode: Some("fixed".into()),
        window_secs: Some(3600),
        ..Default::default()
    };
    let set = pb::SetPolicyRequest { channel: "whatsapp".into(), overrides: Some(overrides) };
    let settings = ws.set_policy(req(&a, set, &[])).await?.into_inner();
    let effective = settings.policies["whatsapp"].effective.clone().unwrap();
    assert_eq!((effective.mode.as_str(), effective.window_secs), ("fixed", 3600));

    // Validation errors name the field as the wire spells it.
    let zero = pb::SetPolicyRequest {
        channel: "sms".into(),
        overrides: Some(pb::PolicyOverrides { window_secs: Some(0), ..Default::default() }),
    };
    let (code, reason, field) = failure(ws.set_policy(req(&a, zero, &[])).await);
    assert_eq!(
        (code, reason.as_str(), field.as_deref()),
        (Code::InvalidArgument, "validation_failed", Some("overrides.window_secs"))
    );
    let fax = pb::SetRatesRequest { channel: "fax".into(), rates: Some(rates) };
    assert_eq!(failure(ws.set_rates(req(&a, fax, &[])).await).2.as_deref(), Some("channel"));
    let huge = pb::SetRatesRequest {
        channel: "sms".into(),
        rates: Some(pb::Rates { message: u64::MAX, ..rates }),
    };
    assert_eq!(failure(ws.set_rates(req(&a, huge, &[])).await).2.as_deref(), Some("rates.message"));

    // Templates, and a ping that sends one.
    let create = pb::CreateTemplateRequest {
        name: "still_there".into(),
        channel: "whatsapp".into(),
        language: "en_US".into(),
        body: "Still there, {{name}}?".into(),
        variables: vec!["name".into()],
        ..Default::default()
    };
    let created =
        templates.create_template(req(&a, create.clone(), &[("idempotency-key", "g-tpl")])).await?;
    assert_eq!(created.get_ref().variables, ["name"]);
    let replayed =
        templates.create_template(req(&a, create, &[("idempotency-key", "g-tpl")])).await?;
    assert_eq!(
        replayed.metadata().get("idempotent-replayed").map(|v| v.to_str().unwrap()),
        Some("true")
    );
    let bad = pb::CreateTemplateRequest {
        name: "x".into(),
        channel: "sms".into(),
        language: "en".into(),
        body: "Hi {{1}}".into(),
        variables: vec![],
        ..Default::default()
    };
    assert_eq!(
        failure(templates.create_template(req(&a, bad, &[])).await).2.as_deref(),
        Some("body")
    );
    // Components, category and status travel both ways.
    let button = |kind: &str, url: Option<&str>| pb::TemplateButton {
        kind: kind.into(),
        text: "Track".into(),
        url: url.map(Into::into),
        phone_number: None,
    };
    let shipped = pb::CreateTemplateRequest {
        name: "shipped".into(),
        channel: "whatsapp".into(),
        language: "en".into(),
        body: "Hi {{1}}, order {{2}} shipped".into(),
        variables: vec!["1".into(), "2".into()],
        category: Some("marketing".into()),
        status: Some("PENDING".into()),
        header: Some("Order {{2}}".into()),
        buttons: vec![button("url", Some("https://shop.example/t/{{2}}"))],
        ..Default::default()
    };
    let got = templates.create_template(req(&a, shipped.clone(), &[])).await?.into_inner();
    assert_eq!((got.category.as_str(), got.status.as_str()), ("MARKETING", "PENDING"));
    assert_eq!(got.header.as_deref(), Some("Order {{2}}"));
    assert_eq!(got.buttons[0].kind, "url");
    assert_eq!(got.buttons[0].url.as_deref(), Some("https://shop.example/t/{{2}}"));
    let odd = pb::CreateTemplateRequest {
        name: "odd".into(),
        buttons: vec![button("fax", None)],
        ..shipped.clone()
    };
    assert_eq!(
        failure(templates.create_template(req(&a, odd, &[])).await).2.as_deref(),
        Some("buttons[0].kind")
    );
    templates
        .delete_template(req(
            &a,
            pb::DeleteTemplateRequest { name: "shipped".into(), channel: None },
            &[],
        ))
        .await?;
    let listed =
        templates.list_templates(req(&a, pb::ListTemplatesRequest {}, &[])).await?.into_inner();
    assert_eq!(listed.templates.len(), 1);
    let got = templates
        .get_template(req(
            &a,
            pb::GetTemplateRequest { name: "still_there".into(), channel: None },
            &[],
        ))
        .await?;
    assert_eq!(got.get_ref().channel, "whatsapp");
    let foreign = templates
        .get_template(req(
            &stack.b.key,
            pb::GetTemplateRequest { name: "still_there".into(), channel: None },
            &[],
        ))
        .await;
    assert_eq!(failure(foreign).0, Code::NotFound);
    let ping = pb::InactivityPing {
        after_secs: 1800,
        template: Some("still_there".into()),
        ..Default::default()
    };
    let settings = ws.set_inactivity_ping(req(&a, ping, &[])).await?.into_inner();
    assert_eq!(settings.inactivity_ping.unwrap().template.as_deref(), Some("still_there"));
    let in_use = templates
        .delete_template(req(
            &a,
            pb::DeleteTemplateRequest { name: "still_there".into(), channel: None },
            &[],
        ))
        .await;
    assert_eq!(failure(in_use).0, Code::Aborted);
    let cleared = ws
        .clear_inactivity_ping(req(&a, pb::ClearInactivityPingRequest {}, &[]))
        .await?
        .into_inner();
    assert!(cleared.inactivity_ping.is_none());
    templates
        .delete_template(req(
            &a,
            pb::DeleteTemplateRequest { name: "still_there".into(), channel: None },
            &[],
        ))
        .await?;

    // UpdateSettings names nested fields by their path.
    use pb::update_settings_request::InactivityPingChange;
    let update = pb::UpdateSettingsRequest {
        compliance: Some(pb::ComplianceTexts {
            help: Some("Help: help@acme.test".into()),
            ..Default::default()
        }),
        inactivity_ping_change: Some(InactivityPingChange::InactivityPing(pb::InactivityPing {
            after_secs: 600,
            text: Some("Anything else?".into()),
            ..Default::default()
        })),
        ..Default::default()
    };
    let settings = ws.update_settings(req(&a, update, &[])).await?.into_inner();
    assert_eq!(settings.compliance.unwrap().help.as_deref(), Some("Help: help@acme.test"));
    assert_eq!(settings.inactivity_ping.unwrap().after_secs, 600);
    let bad = pb::UpdateSettingsRequest {
        policies: [(
            "rcs".to_owned(),
            pb::PolicyOverrides { billing_session_secs: Some(0), ..Default::default() },
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    assert_eq!(
        failure(ws.update_settings(req(&a, bad, &[])).await).2.as_deref(),
        Some("policies.rcs.billing_session_secs")
    );
    let got = ws.get_settings(req(&a, pb::GetSettingsRequest {}, &[])).await?.into_inner();
    assert_eq!(got.rates["sms"], rates);

    // A top-up: the key's id and the reason recorded, once per idempotency-key.
    let key_id = stack.store.api_keys(&stack.a.id).await?[0].id.clone();
    let top_up = pb::TopUpRequest { amount: 700, reason: "wire transfer".into() };
    let first =
        ws.top_up(req(&a, top_up.clone(), &[("idempotency-key", "g-tu")])).await?.into_inner();
    assert_eq!(first.by, Some(pb::Actor { kind: "api_key".into(), id: key_id }));
    assert_eq!(first.balance_after.unwrap().total, 10_700);
    let again = ws.top_up(req(&a, top_up, &[("idempotency-key", "g-tu")])).await?;
    assert_eq!(
        again.metadata().get("idempotent-replayed").map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(again.get_ref().id, first.id);
    let zero = pb::TopUpRequest { amount: 0, reason: "x".into() };
    assert_eq!(failure(ws.top_up(req(&a, zero, &[])).await).2.as_deref(), Some("amount"));
    let balance = ws.get_balance(req(&a, pb::GetBalanceRequest {}, &[])).await?.into_inner();
    assert_eq!(balance.total, 10_700);
    let listed = ws
        .list_top_ups(req(&a, pb::ListTopUpsRequest { limit: Some(10) }, &[]))
        .await?
        .into_inner();
    assert_eq!(listed.top_ups.len(), 2, "the top-up and the opening credit");
    stack.shutdown().await
}
