//! The production channel adapters against the built-in sandbox, over real loopback sockets:
//! WhatsApp Cloud, Twilio, RBM and SMTP wire shapes, idempotency, and fault classification.

use std::{sync::Arc, time::Duration};

use convo_activities::{
    providers::{
        self, Provider, ProviderConfig, ProviderError, RenderedTemplate, SendRequest, error_types,
    },
    sandbox::{Fault, FaultRule, RecordedSend, Sandbox, SandboxHandle},
};
use convo_domain::{Channel, window::Content};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);

async fn sandbox() -> SandboxHandle {
    Sandbox::start("127.0.0.1:0".parse().unwrap()).await.expect("sandbox starts")
}

fn adapter(sandbox: &SandboxHandle, channel: Channel) -> Arc<dyn Provider> {
    providers::build(&sandbox.provider_config(channel)).expect("adapter builds")
}

fn text(key: &str, channel: Channel, from: &str, to: &str, body: &str) -> SendRequest {
    SendRequest::text(key, channel, from, to, body)
}

fn template(key: &str, channel: Channel, from: &str, to: &str, name: &str) -> SendRequest {
    SendRequest::new(key, channel, from, to, Content::template(name))
}

fn email(key: &str, to: &str, subject: Option<&str>, body: &str) -> SendRequest {
    SendRequest::new(
        key,
        Channel::Email,
        "Convo Support <support@convo.test>",
        to,
        Content::Text { body: body.into(), subject: subject.map(Into::into) },
    )
}

#[track_caller]
fn expect_error(
    result: Result<providers::SendReceipt, ProviderError>,
    error_type: &str,
) -> ProviderError {
    let err = result.expect_err("the send should fail");
    assert_eq!(err.error_type(), error_type, "{err}");
    err
}

fn only(sends: &[RecordedSend]) -> &RecordedSend {
    assert_eq!(sends.len(), 1, "{sends:#?}");
    &sends[0]
}

// ---------------------------------------------------------------------------------------------
// WhatsApp Cloud API

#[tokio::test]
async fn whatsapp_text_and_template_are_recorded_in_cloud_api_shape() {
    let sb = sandbox().await;
    let wa = adapter(&sb, Channel::Whatsapp);
    assert_eq!(wa.name(), "whatsapp_cloud");

    let receipt =
        wa.send(&text("m-1", Channel::Whatsapp, "ignored", "+14155550101", "hello")).await.unwrap();
    assert!(receipt.provider_message_id.starts_with("wamid."), "{receipt:?}");
    assert!(!receipt.duplicate);

    let mut tpl = template("m-2", Channel::Whatsapp, "ignored", "+14155550101", "order_update");
    tpl.template_language = Some("pt_BR".into());
    tpl.template_params = vec!["Ana".into(), "#42".into()];
    let receipt2 = wa.send(&tpl).await.unwrap();
    assert_ne!(receipt.provider_message_id, receipt2.provider_message_id);

    let sends = sb.wait_for_sends(2, WAIT).await.unwrap();
    assert_eq!(sends[0].channel, Channel::Whatsapp);
    assert_eq!(sends[0].from, convo_activities::sandbox::SANDBOX_PHONE_NUMBER_ID);
    assert_eq!(sends[0].to, "+14155550101");
    assert_eq!(sends[0].content, Content::Text { body: "hello".into(), subject: None });
    assert_eq!(sends[0].idempotency_key.as_deref(), Some("m-1"));
    assert_eq!(sends[0].provider_message_id, receipt.provider_message_id);
    assert!(
        matches!(&sends[1].content, Content::Template { name, .. } if name == "order_update"),
        "{:?}",
        sends[1].content
    );
    assert_eq!(sends[1].template_language.as_deref(), Some("pt_BR"));
    assert_eq!(sends[1].template_params, ["Ana", "#42"]);
    sb.shutdown().await;
}

#[tokio::test]
async fn whatsapp_resend_with_the_same_key_is_recorded_once() {
    let sb = sandbox().await;
    let wa = adapter(&sb, Channel::Whatsapp);
    let req = text("same-key", Channel::Whatsapp, "x", "+14155550102", "once");
    let first = wa.send(&req).await.unwrap();
    let second = wa.send(&req).await.unwrap();
    assert_eq!(first.provider_message_id, second.provider_message_id);
    assert!(!first.duplicate);
    assert!(second.duplicate);
    only(&sb.sends());
}

#[tokio::test]
async fn whatsapp_transient_fault_then_success() {
    let sb = sandbox().await;
    let wa = adapter(&sb, Channel::Whatsapp);
    sb.inject(FaultRule::new(Fault::Unavailable).on(Channel::Whatsapp).times(1));
    sb.inject(
        FaultRule::new(Fault::RateLimited { retry_after_secs: 3 }).on(Channel::Whatsapp).times(1),
    );
    let req = text("retry-me", Channel::Whatsapp, "x", "+14155550103", "eventually");

    let err = expect_error(wa.send(&req).await, error_types::PROVIDER_TRANSIENT);
    assert!(err.is_retryable());
    assert_eq!(err.code(), "131016");
    let err = expect_error(wa.send(&req).await, error_types::PROVIDER_TRANSIENT);
    assert_eq!(err.code(), "130429");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));

    let ok = wa.send(&req).await.unwrap();
    assert!(!ok.duplicate);
    assert_eq!(only(&sb.sends()).provider_message_id, ok.provider_message_id);
    assert!(sb.faults().is_empty());
}

#[tokio::test]
async fn whatsapp_permanent_faults_are_classified() {
    let sb = sandbox().await;
    let wa = adapter(&sb, Channel::Whatsapp);
    sb.inject(FaultRule::new(Fault::reject("131047")).on(Channel::Whatsapp).times(1));
    sb.inject(FaultRule::new(Fault::reject("131026")).to("+14155550109"));

    let err = expect_error(
        wa.send(&text("late", Channel::Whatsapp, "x", "+14155550104", "hi")).await,
        error_types::OUTSIDE_WINDOW,
    );
    assert!(!err.is_retryable());
    assert_eq!(err.code(), "131047");
    expect_error(
        wa.send(&text("bad", Channel::Whatsapp, "x", "+14155550109", "hi")).await,
        error_types::INVALID_RECIPIENT,
    );
    // The per-recipient fault leaves other recipients alone.
    wa.send(&text("good", Channel::Whatsapp, "x", "+14155550104", "hi")).await.unwrap();
    assert_eq!(only(&sb.sends()).idempotency_key.as_deref(), Some("good"));

    let mut config = sb.provider_config(Channel::Whatsapp);
    if let ProviderConfig::WhatsappCloud(c) = &mut config {
        c.access_token = "wrong".into();
    }
    let wrong = providers::build(&config).unwrap();
    let err = expect_error(
        wrong.send(&text("auth", Channel::Whatsapp, "x", "+14155550104", "hi")).await,
        error_types::PROVIDER_AUTH,
    );
    assert_eq!(err.code(), "190");
}

// ---------------------------------------------------------------------------------------------
// SMS (Twilio)

#[tokio::test]
async fn sms_text_and_template_are_recorded_in_twilio_shape() {
    let sb = sandbox().await;
    let sms = adapter(&sb, Channel::Sms);
    let receipt = sms
        .send(&text("s-1", Channel::Sms, "+14155550113", "+14155550114", "hi there"))
        .await
        .unwrap();
    assert!(receipt.provider_message_id.starts_with("SM"));
    assert_eq!(receipt.provider_message_id.len(), 34);

    let mut tpl = template("s-2", Channel::Sms, "+14155550113", "+14155550114", "HXabc");
    tpl.template_params = vec!["one".into(), "two".into()];
    sms.send(&tpl).await.unwrap();

    let sends = sb.wait_for_sends(2, WAIT).await.unwrap();
    assert_eq!(
        (sends[0].channel, sends[0].from.as_str(), sends[0].to.as_str()),
        (Channel::Sms, "+14155550113", "+14155550114")
    );
    assert_eq!(sends[0].content, Content::Text { body: "hi there".into(), subject: None });
    assert_eq!(sends[0].idempotency_key.as_deref(), Some("s-1"));
    assert!(
        matches!(&sends[1].content, Content::Template { name, .. } if name == "HXabc"),
        "{:?}",
        sends[1].content
    );
    assert_eq!(sends[1].template_params, ["one", "two"]);
}

#[tokio::test]
async fn sms_idempotency_and_faults() {
    let sb = sandbox().await;
    let sms = adapter(&sb, Channel::Sms);
    let req = text("s-dup", Channel::Sms, "+14155550113", "+14155550115", "once");
    let a = sms.send(&req).await.unwrap();
    let b = sms.send(&req).await.unwrap();
    assert_eq!(a.provider_message_id, b.provider_message_id);
    assert!(b.duplicate);
    only(&sb.sends());

    sb.inject(FaultRule::new(Fault::RateLimited { retry_after_secs: 1 }).on(Channel::Sms).times(1));
    let retry = text("s-retry", Channel::Sms, "+14155550113", "+14155550115", "later");
    let err = expect_error(sms.send(&retry).await, error_types::PROVIDER_TRANSIENT);
    assert_eq!((err.code(), err.retry_after()), ("20429", Some(Duration::from_secs(1))));
    sms.send(&retry).await.unwrap();

    sb.inject(FaultRule::new(Fault::reject("21211")).on(Channel::Sms).to("+1000"));
    sb.inject(FaultRule::new(Fault::reject("21610")).on(Channel::Sms).to("+14155550119"));
    let err = expect_error(
        sms.send(&text("s-bad", Channel::Sms, "+14155550113", "+1000", "x")).await,
        error_types::INVALID_RECIPIENT,
    );
    assert_eq!(err.code(), "21211");
    expect_error(
        sms.send(&text("s-stop", Channel::Sms, "+14155550113", "+14155550119", "x")).await,
        error_types::RECIPIENT_OPTED_OUT,
    );
    assert_eq!(sb.sends().len(), 2);

    let mut config = sb.provider_config(Channel::Sms);
    if let ProviderConfig::Twilio(c) = &mut config {
        c.auth_token = "nope".into();
    }
    expect_error(
        providers::build(&config)
            .unwrap()
            .send(&text("s-auth", Channel::Sms, "+1", "+2", "x"))
            .await,
        error_types::PROVIDER_AUTH,
    );
}

// ---------------------------------------------------------------------------------------------
// RCS (RBM)

#[tokio::test]
async fn rcs_text_template_and_already_exists() {
    let sb = sandbox().await;
    let mut config = sb.provider_config(Channel::Rcs);
    if let ProviderConfig::Rbm(c) = &mut config {
        c.templates.insert(
            "welcome".into(),
            RenderedTemplate { body: "Hi {{1}}, welcome to {{2}}".into(), subject: None },
        );
    }
    let rcs = providers::build(&config).unwrap();

    let req = text("r-1", Channel::Rcs, "ignored", "+14155550116", "rich hello");
    let first = rcs.send(&req).await.unwrap();
    assert_eq!(first.provider_message_id, "phones/+14155550116/agentMessages/r-1");
    assert!(!first.duplicate);
    // RBM answers 409 ALREADY_EXISTS on a repeated messageId: a duplicate success.
    let again = rcs.send(&req).await.unwrap();
    assert_eq!(again.provider_message_id, first.provider_message_id);
    assert!(again.duplicate);

    let mut tpl = template("r-2", Channel::Rcs, "ignored", "+14155550116", "welcome");
    tpl.template_params = vec!["Ana".into(), "convo".into()];
    rcs.send(&tpl).await.unwrap();
    expect_error(
        rcs.send(&template("r-3", Channel::Rcs, "x", "+14155550116", "missing")).await,
        error_types::INVALID_CONTENT,
    );

    let sends = sb.sends();
    assert_eq!(sends.len(), 2);
    assert_eq!(sends[0].from, convo_activities::sandbox::SANDBOX_AGENT_ID);
    assert_eq!(sends[0].idempotency_key.as_deref(), Some("r-1"));
    assert_eq!(
        sends[1].content,
        Content::Text { body: "Hi Ana, welcome to convo".into(), subject: None }
    );
}

#[tokio::test]
async fn rcs_faults_are_classified() {
    let sb = sandbox().await;
    let rcs = adapter(&sb, Channel::Rcs);
    sb.inject(FaultRule::new(Fault::reject("NOT_FOUND")).on(Channel::Rcs).to("+14155550118"));
    sb.inject(FaultRule::new(Fault::Unavailable).on(Channel::Rcs).times(1));

    let req = text("r-t", Channel::Rcs, "x", "+14155550117", "hi");
    let err = expect_error(rcs.send(&req).await, error_types::PROVIDER_TRANSIENT);
    assert_eq!(err.code(), "UNAVAILABLE");
    rcs.send(&req).await.unwrap();

    let err = expect_error(
        rcs.send(&text("r-nf", Channel::Rcs, "x", "+14155550118", "hi")).await,
        error_types::RECIPIENT_NOT_CAPABLE,
    );
    assert!(!err.is_retryable());
    only(&sb.sends());
}

// ---------------------------------------------------------------------------------------------
// E-mail (SMTP)

#[tokio::test]
async fn email_is_delivered_over_smtp_with_headers() {
    let sb = sandbox().await;
    let mail = adapter(&sb, Channel::Email);
    let receipt = mail
        .send(&email("e-1:reply", "ana@example.com", Some("Your order"), "Line one\nLine two"))
        .await
        .unwrap();
    let expected_id = providers::email::message_id_for("e-1:reply", "convo.test");
    assert_eq!(receipt.provider_message_id, expected_id);
    assert!(!receipt.duplicate);

    let sent = sb.wait_for_sends(1, WAIT).await.unwrap();
    let sent = only(&sent);
    assert_eq!(sent.channel, Channel::Email);
    assert_eq!(sent.from, "support@convo.test");
    assert_eq!(sent.to, "ana@example.com");
    assert_eq!(
        sent.content,
        Content::Text { body: "Line one\nLine two".into(), subject: Some("Your order".into()) }
    );
    assert_eq!(sent.idempotency_key.as_deref(), Some("e-1:reply"));
    assert_eq!(sent.header("Message-ID"), Some(expected_id.as_str()));
    assert_eq!(sent.header("Subject"), Some("Your order"));
    assert_eq!(sent.header("To"), Some("ana@example.com"));
    assert!(sent.header("From").unwrap().contains("support@convo.test"));
    assert!(sent.header("Date").is_some());
}

#[tokio::test]
async fn email_non_ascii_subject_and_body_survive_the_wire() {
    let sb = sandbox().await;
    let mail = adapter(&sb, Channel::Email);
    let body = "Olá, café às três? ✓\nAté já";
    mail.send(&email("e-utf8", "joão@example.com", Some("Confirmação ✓"), body)).await.unwrap();
    let sent = sb.wait_for_sends(1, WAIT).await.unwrap();
    assert_eq!(
        only(&sent).content,
        Content::Text { body: body.into(), subject: Some("Confirmação ✓".into()) }
    );
}

#[tokio::test]
async fn email_without_subject_is_rejected_before_sending() {
    let sb = sandbox().await;
    let mail = adapter(&sb, Channel::Email);
    let err = expect_error(
        mail.send(&email("e-nosub", "ana@example.com", None, "body")).await,
        error_types::INVALID_CONTENT,
    );
    assert_eq!(err.code(), "missing_subject");
    expect_error(
        mail.send(&email("e-blank", "ana@example.com", Some("  "), "body")).await,
        error_types::INVALID_CONTENT,
    );
    expect_error(
        mail.send(&email("e-bad-to", "not an address", Some("s"), "body")).await,
        error_types::INVALID_RECIPIENT,
    );
    assert!(sb.sends().is_empty());
}

#[tokio::test]
async fn email_idempotency_and_smtp_faults() {
    let sb = sandbox().await;
    let mail = adapter(&sb, Channel::Email);
    let req = email("e-dup", "ana@example.com", Some("Once"), "only once");
    let a = mail.send(&req).await.unwrap();
    let b = mail.send(&req).await.unwrap();
    assert_eq!(a.provider_message_id, b.provider_message_id);
    assert!(b.duplicate);
    only(&sb.sends());

    sb.inject(FaultRule::new(Fault::Unavailable).on(Channel::Email).times(1));
    let retry = email("e-451", "ana@example.com", Some("Later"), "retry");
    let err = expect_error(mail.send(&retry).await, error_types::PROVIDER_TRANSIENT);
    assert_eq!(err.code(), "451");
    mail.send(&retry).await.unwrap();

    sb.inject(FaultRule::new(Fault::reject("550")).to("nobody@example.com"));
    let err = expect_error(
        mail.send(&email("e-550", "nobody@example.com", Some("Hi"), "x")).await,
        error_types::INVALID_RECIPIENT,
    );
    assert_eq!(err.code(), "550");
    assert_eq!(sb.sends().len(), 2);
}

#[tokio::test]
async fn email_templates_render_subject_and_body() {
    let sb = sandbox().await;
    let mut config = sb.provider_config(Channel::Email);
    if let ProviderConfig::Smtp(c) = &mut config {
        c.templates.insert(
            "receipt".into(),
            RenderedTemplate { body: "Total: {{1}}".into(), subject: Some("Receipt {{2}}".into()) },
        );
    }
    let mail = providers::build(&config).unwrap();
    let mut req =
        template("e-tpl", Channel::Email, "billing@convo.test", "ana@example.com", "receipt");
    req.template_params = vec!["$10".into(), "#7".into()];
    mail.send(&req).await.unwrap();
    let sent = sb.wait_for_sends(1, WAIT).await.unwrap();
    assert_eq!(
        only(&sent).content,
        Content::Text { body: "Total: $10".into(), subject: Some("Receipt #7".into()) }
    );
}

// ---------------------------------------------------------------------------------------------
// Native endpoint (Messenger, Instagram)

#[tokio::test]
async fn native_channels_record_the_human_agent_tag() {
    let sb = sandbox().await;
    let messenger = adapter(&sb, Channel::Messenger);
    let mut req = text("n-1", Channel::Messenger, "page-1", "psid-1", "a person replies");
    req.human_agent_tag = true;
    let a = messenger.send(&req).await.unwrap();
    let b = messenger.send(&req).await.unwrap();
    assert_eq!(
        (a.provider_message_id.as_str(), b.duplicate),
        (b.provider_message_id.as_str(), true)
    );
    let sent = sb.sends();
    assert!(only(&sent).human_agent_tag);
    assert_eq!(sent[0].channel, Channel::Messenger);

    sb.inject(FaultRule::new(Fault::reject("OutsideWindow")).on(Channel::Instagram).times(1));
    let ig = adapter(&sb, Channel::Instagram);
    expect_error(
        ig.send(&text("n-2", Channel::Instagram, "ig-1", "igsid", "late")).await,
        error_types::OUTSIDE_WINDOW,
    );
    sb.inject(
        FaultRule::new(Fault::RateLimited { retry_after_secs: 2 }).on(Channel::Instagram).times(1),
    );
    let err = expect_error(
        ig.send(&text("n-2", Channel::Instagram, "ig-1", "igsid", "late")).await,
        error_types::PROVIDER_TRANSIENT,
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    ig.send(&text("n-2", Channel::Instagram, "ig-1", "igsid", "late")).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Control API, waiting, lifecycle

#[tokio::test]
async fn http_control_api_arms_faults_and_lists_and_clears_sends() {
    let sb = sandbox().await;
    let http = reqwest::Client::new();
    let base = sb.base_url();
    let sms = adapter(&sb, Channel::Sms);

    // An outage (no `times`) lasts until cleared.
    let armed = http
        .post(format!("{base}/_sandbox/faults"))
        .json(&json!({ "channel": "sms", "fault": { "kind": "unavailable" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(armed.status(), 201);
    let listed: serde_json::Value =
        http.get(format!("{base}/_sandbox/faults")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, json!([{ "fault": { "kind": "unavailable" }, "channel": "sms" }]));
    let req = text("c-1", Channel::Sms, "+1", "+2", "x");
    for _ in 0..3 {
        expect_error(sms.send(&req).await, error_types::PROVIDER_TRANSIENT);
    }
    let cleared = http.delete(format!("{base}/_sandbox/faults")).send().await.unwrap();
    assert_eq!(cleared.status(), 204);
    sms.send(&req).await.unwrap();

    let sends: Vec<RecordedSend> =
        http.get(format!("{base}/_sandbox/sends")).send().await.unwrap().json().await.unwrap();
    assert_eq!(sends, sb.sends());
    assert_eq!(only(&sends).idempotency_key.as_deref(), Some("c-1"));

    let deleted = http.delete(format!("{base}/_sandbox/sends")).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(sb.sends().is_empty());
    // Clearing also forgets keys: the same key is a new send again.
    assert!(!sms.send(&req).await.unwrap().duplicate);
}

#[tokio::test]
async fn wait_for_sends_wakes_on_a_send_and_times_out_otherwise() {
    let sb = Arc::new(sandbox().await);
    let waiter = {
        let sb = sb.clone();
        tokio::spawn(async move { sb.wait_for_sends(1, WAIT).await })
    };
    let wa = adapter(&sb, Channel::Whatsapp);
    wa.send(&text("w-1", Channel::Whatsapp, "x", "+14155550105", "hi")).await.unwrap();
    let sends = waiter.await.unwrap().unwrap();
    assert_eq!(sends.len(), 1);

    let err = sb.wait_for_sends(2, Duration::from_millis(50)).await.unwrap_err();
    assert_eq!((err.expected, err.seen), (2, 1));
}

#[tokio::test]
async fn unreachable_provider_is_transient_and_shutdown_stops_serving() {
    let sb = sandbox().await;
    let wa = adapter(&sb, Channel::Whatsapp);
    let mail = adapter(&sb, Channel::Email);
    wa.send(&text("l-1", Channel::Whatsapp, "x", "+14155550106", "before")).await.unwrap();
    sb.shutdown().await;
    let err = expect_error(
        wa.send(&text("l-2", Channel::Whatsapp, "x", "+14155550106", "after")).await,
        error_types::PROVIDER_TRANSIENT,
    );
    assert!(matches!(err.code(), "connect" | "network"), "{err}");
    expect_error(
        mail.send(&email("l-3", "ana@example.com", Some("s"), "after")).await,
        error_types::PROVIDER_TRANSIENT,
    );
}

#[test]
fn provider_configs_are_tagged_json_and_hide_secrets() {
    let config: ProviderConfig = serde_json::from_value(json!({
        "provider": "twilio",
        "base_url": "https://api.twilio.com",
        "account_sid": "AC1",
        "auth_token": "s3cret",
    }))
    .unwrap();
    let ProviderConfig::Twilio(twilio) = &config else { panic!("{config:?}") };
    assert_eq!(twilio.auth_token.expose(), "s3cret");
    assert!(!format!("{config:?}").contains("s3cret"));
    let back = serde_json::to_value(&config).unwrap();
    assert_eq!(back["provider"], "twilio");
    assert_eq!(back["auth_token"], "s3cret");

    let smtp: ProviderConfig = serde_json::from_value(json!({
        "provider": "smtp", "host": "smtp.example.com", "port": 587,
    }))
    .unwrap();
    let ProviderConfig::Smtp(c) = &smtp else { panic!("{smtp:?}") };
    assert_eq!(c.tls, providers::email::SmtpTls::Starttls);
    // Production TLS settings build (STARTTLS and implicit TLS with rustls).
    providers::build(&smtp).unwrap();
    let mut implicit = c.clone();
    implicit.tls = providers::email::SmtpTls::Implicit;
    implicit.port = 465;
    providers::build(&ProviderConfig::Smtp(implicit)).unwrap();

    let wa: ProviderConfig = serde_json::from_value(json!({
        "provider": "whatsapp_cloud", "base_url": "https://graph.facebook.com",
        "phone_number_id": "1", "access_token": "t",
    }))
    .unwrap();
    let ProviderConfig::WhatsappCloud(c) = &wa else { panic!("{wa:?}") };
    assert_eq!(c.api_version, providers::whatsapp::DEFAULT_API_VERSION);
}

/// One configuration per provider with every field set.
fn full_configs() -> Vec<serde_json::Value> {
    let templates = json!({"welcome": {"body": "Hi {{1}}", "subject": "Welcome"}});
    vec![
        json!({"provider": "whatsapp_cloud", "base_url": "https://graph.facebook.com",
               "api_version": "20.0", "phone_number_id": "1234", "access_token": "EAAG",
               "app_secret": "meta-app-secret", "default_language": "pt_BR", "timeout_ms": 5000}),
        json!({"provider": "twilio", "base_url": "https://api.twilio.com", "account_sid": "AC1",
               "auth_token": "tw-token", "timeout_ms": 4000}),
        json!({"provider": "rbm", "base_url": "https://rcsbusinessmessaging.googleapis.com",
               "agent_id": "agent", "access_token": "ya29", "templates": templates,
               "timeout_ms": 3000}),
        json!({"provider": "smtp", "host": "smtp.example.com", "port": 465, "tls": "implicit",
               "username": "mailer", "password": "smtp-pass", "hello_name": "convo.example.com",
               "message_id_domain": "mail.example.com", "templates": templates,
               "timeout_ms": 2000}),
        json!({"provider": "sandbox_native", "base_url": "http://127.0.0.1:9", "timeout_ms": 1000}),
    ]
}

#[test]
fn every_provider_config_round_trips_every_field() {
    let configs = full_configs();
    let providers: Vec<&str> = configs.iter().map(|c| c["provider"].as_str().unwrap()).collect();
    assert_eq!(providers, ["whatsapp_cloud", "twilio", "rbm", "smtp", "sandbox_native"]);
    for json in configs {
        let config: ProviderConfig = serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", json["provider"]));
        // JSON → config → JSON loses nothing, and config → JSON → config is the identity.
        let back = serde_json::to_value(&config).unwrap();
        assert_eq!(back, json, "{} lost or changed a field", json["provider"]);
        assert_eq!(serde_json::from_value::<ProviderConfig>(back).unwrap(), config);
        // Secrets survive the trip but stay out of Debug output.
        let debug = format!("{config:?}");
        for secret in ["EAAG", "meta-app-secret", "tw-token", "ya29", "smtp-pass"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
    let ProviderConfig::WhatsappCloud(wa) =
        serde_json::from_value(full_configs().remove(0)).unwrap()
    else {
        panic!("not WhatsApp");
    };
    assert_eq!(wa.app_secret.as_ref().map(providers::Secret::expose), Some("meta-app-secret"));
}

#[test]
fn unknown_provider_config_keys_are_refused_by_name() {
    for mut json in full_configs() {
        json["app_secert"] = json!("typo");
        let err = serde_json::from_value::<ProviderConfig>(json.clone()).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `app_secert`"),
            "{}: {err}",
            json["provider"]
        );
    }
    // Also inside a nested template text.
    let mut rbm = full_configs().remove(2);
    rbm["templates"]["welcome"]["footer"] = json!("x");
    let err = serde_json::from_value::<ProviderConfig>(rbm).unwrap_err();
    assert!(err.to_string().contains("unknown field `footer`"), "{err}");
}
