//! The full `convo serve` stack (`convo::Stack`, exactly what the binary starts) on port 0,
//! driven over real HTTP: the README's newcomer walk, the window scenarios through the API, and
//! a restart that resumes an open window.
//!
//! On the devserver backend the stack embeds its own devserver, as `convo serve` does by
//! default; on the other backends it runs on that server through `--temporal-address`
//! ([`ServeConfig::temporal`]), with the dev workspace's windows scaled where time cannot skip.

use std::time::Duration;

use anyhow::Context;
use convo::{ServeConfig, Stack, serve::ExternalTemporal};
use convo_activities::{
    sandbox::{Fault, FaultRule},
    testing::WebhookReceiver,
};
use convo_domain::{
    Channel, Money, PolicyOverrides, WindowMode, WorkspaceSettings,
    window::{Content, InactivityPing},
};
use convo_tests::{Backend, BackendKind, Clock, eventually, scale_settings, within};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
const HOUR: Duration = Duration::from_secs(3600);

/// A serve stack on the selected backend, and how to move its time.
pub(crate) struct Served {
    stack: Stack,
    clock: Clock,
    /// The external server, kept across restarts of the stack; `None` on the devserver.
    backend: Option<Backend>,
}

impl Served {
    /// A stack on `config`, on the backend `CONVO_TEST_BACKEND` selects.
    pub(crate) async fn start(config: ServeConfig) -> anyhow::Result<Served> {
        let backend = match BackendKind::from_env()? {
            BackendKind::Devserver => None,
            kind => {
                Some(Backend::start(kind, convo_devserver::DevServerConfig::ephemeral()).await?)
            }
        };
        Served::on(backend, config, true).await
    }

    /// A stack on `config` and `backend` (the embedded devserver when `None`); `first` when
    /// this is the dev workspace's first start (its settings are scaled once).
    async fn on(
        backend: Option<Backend>,
        mut config: ServeConfig,
        first: bool,
    ) -> anyhow::Result<Served> {
        if let Some(b) = &backend {
            config.temporal =
                Some(ExternalTemporal { url: b.url().clone(), namespace: "default".into() });
        }
        let stack = Stack::start(config).await?;
        let clock = match (stack.time(), &backend) {
            (Some(time), _) => Clock::Devserver(time),
            (None, Some(b)) => b.clock(),
            (None, None) => anyhow::bail!("a stack without a devserver needs a backend"),
        };
        if first {
            let dev = stack.store.workspace(convo::serve::DEV_WORKSPACE).await?;
            let settings = scale_settings(&clock, dev.settings)?;
            stack.store.upsert_workspace(&dev.id, &dev.name, &settings).await?;
        }
        Ok(Served { stack, clock, backend })
    }

    /// Lets `model` time pass (see `convo_tests::TestEnv::skip`).
    pub(crate) async fn skip(&self, model: Duration) -> anyhow::Result<()> {
        let bound = 3 * WAIT + self.clock.scale(model);
        within(bound, &format!("skip {model:?}"), self.clock.skip(model)).await?
    }

    /// Stops the stack, keeping the backend for a restart.
    async fn stop(self) -> anyhow::Result<Option<Backend>> {
        self.stack.shutdown().await?;
        Ok(self.backend)
    }

    pub(crate) async fn shutdown(self) -> anyhow::Result<()> {
        if let Some(backend) = self.stop().await? {
            backend.shutdown().await;
        }
        Ok(())
    }
}

impl std::ops::Deref for Served {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.stack
    }
}

/// A client for one stack's HTTP API, with the dev workspace's key.
pub(crate) struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    pub(crate) fn new(stack: &Stack) -> Api {
        Api {
            base: format!("http://{}", stack.http_addr),
            key: stack.dev_api_key.clone(),
            http: reqwest::Client::new(),
        }
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut req =
            self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = within(WAIT, path, req.send()).await??;
        let status = resp.status();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        self.call(reqwest::Method::GET, path, None, None).await
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        body: Value,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.call(reqwest::Method::POST, path, Some(body), None).await
    }

    pub(crate) async fn channel(&self, kind: &str) -> anyhow::Result<String> {
        let (_, list) = self.get("/v1/channels").await?;
        list["data"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["kind"] == kind))
            .and_then(|c| c["id"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("no {kind} channel in {list}"))
    }

    pub(crate) async fn inbound(&self, from: &str, text: &str) -> anyhow::Result<()> {
        let (status, body) = self
            .post("/v1/inbound/sandbox", json!({"from": from, "channel": "whatsapp", "text": text}))
            .await?;
        anyhow::ensure!(status.is_success(), "inbound: {status} {body}");
        Ok(())
    }

    pub(crate) async fn send(&self, to: &str, text: &str) -> anyhow::Result<(StatusCode, Value)> {
        let body = json!({"to": to, "channel": "whatsapp", "message_type": "CONVERSATION", "content": {"text": text}, "traffic_type": "transactional"});
        self.post("/v1/messages", body).await
    }

    pub(crate) async fn window_until(
        &self,
        contact: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        eventually(WAIT, || async {
            let (_, w) = self.get(&format!("/v1/windows/{contact}")).await?;
            anyhow::ensure!(check(&w), "{what}: window is {w}");
            Ok(w)
        })
        .await
    }

    /// Waits until the conversation `id` is active: the contact's reply has reached it.
    pub(crate) async fn conversation_active(&self, id: &str) -> anyhow::Result<()> {
        eventually(WAIT, || async {
            let (_, c) = self.get(&format!("/v1/conversations/{id}")).await?;
            anyhow::ensure!(c["status"] == "active", "conversation is {c}");
            Ok(())
        })
        .await
    }
}

/// The README's walk: compose to a new number (the template goes out), the contact replies
/// through the sandbox inbound, a CONVERSATION send goes out with its billing block, closing the
/// window makes the next one 422 `no_active_session`, and the webhook log shows the signed
/// deliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newcomer_walk_over_http() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let receiver = WebhookReceiver::start().await?;
    let (status, endpoint) =
        api.post("/v1/webhook-endpoints", json!({"url": receiver.url()})).await?;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    receiver.set_secret(endpoint["secret"].as_str().context("secret")?);

    let whatsapp = api.channel("whatsapp").await?;
    let phone = "+14155550123";
    let compose = json!({"channel_id": whatsapp, "contact_phone": phone, "contact_name": "Ada",
        "content": "Hi Ada, your order shipped",
        "template": {"name": "shipping_update", "variables": {"1": "Ada", "2": "A-42"}}});
    let (status, composed) = api
        .call(
            reqwest::Method::POST,
            "/v1/conversations/compose",
            Some(compose.clone()),
            Some("walk-1"),
        )
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{composed}");
    // The same key replays: one conversation, one first message.
    let (_, again) = api
        .call(reqwest::Method::POST, "/v1/conversations/compose", Some(compose), Some("walk-1"))
        .await?;
    assert_eq!(again["conversation_id"], composed["conversation_id"]);
    let sends = stack.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!((sends.len(), sends[0].to.as_str()), (1, phone));
    let rendered = sends[0].rendered.as_ref().context("the template is rendered")?;
    assert_eq!(rendered.body, "Hi Ada, your order A-42 has shipped.");

    api.inbound(phone, "Where is it?").await?;
    api.window_until(phone, "open", |w| w["open"] == true).await?;
    let (status, sent) = api.send(phone, "It arrives tomorrow.").await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["billing"]["message_type"], "CONVERSATION");
    assert_eq!(sent["billing"]["hold_amount"], 0.5, "{sent}");
    assert_eq!(sent["billing"]["currency"], "EUR", "{sent}");
    assert_eq!(sent["billing"]["balance"]["reserved"], 0.5, "{sent}");
    assert_eq!(sent["billing"]["tier"]["current"], "tier_1", "{sent}");
    // As the README shows it: the template cost 0.05 of the opening 1,000.00.
    assert_eq!(
        sent["billing"]["balance"],
        json!({"free": 999.45, "reserved": 0.5, "total": 999.95}),
        "{sent}"
    );
    assert_eq!(sent["billing"]["tier"]["volume_used"], 2, "{sent}");
    assert!(sent["conversation_expires_at"].is_string());
    stack.sandbox.wait_for_sends(2, WAIT).await?;

    let (status, closed) = api.post(&format!("/v1/windows/{phone}/close"), json!({})).await?;
    assert!(status.is_success(), "{closed}");
    let (status, refused) = api.send(phone, "One more thing").await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused["error"]["code"], "no_active_session");
    assert_eq!(stack.sandbox.sends().len(), 2, "nothing reached the provider");

    within(WAIT, "webhooks", receiver.wait_for(3)).await?;
    let log = eventually(WAIT, || async {
        let (_, log) = api.get("/v1/webhook-deliveries").await?;
        let delivered = log["data"]
            .as_array()
            .map_or(0, |d| d.iter().filter(|x| x["status"] == "delivered").count());
        let ended = log["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x["event_type"] == "conversation.ended"));
        anyhow::ensure!(delivered >= 3 && ended, "deliveries so far: {log}");
        Ok(log)
    })
    .await?;
    let types: Vec<&str> = log["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["event_type"].as_str())
        .collect();
    assert!(types.contains(&"conversation.ended"), "{types:?}");
    assert!(receiver.rejected().is_empty(), "every delivery verified");
    stack.shutdown().await
}

/// WhatsApp's sliding window through the API: a reply at hour 23 keeps free-form open at hour
/// 30; STOP closes it with COMPLIANCE_STOP, its confirmation goes out, and the next send is
/// refused `contact_opted_out`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_slide_and_stop_through_the_api() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let phone = "+4915112345678";
    api.inbound(phone, "hi").await?;
    api.window_until(phone, "open", |w| w["open"] == true).await?;
    stack.skip(23 * HOUR).await?;
    api.inbound(phone, "still there?").await?;
    eventually(WAIT, || async {
        let (_, w) = api.get(&format!("/v1/windows/{phone}")).await?;
        anyhow::ensure!(
            w["last_inbound_at"] != Value::Null && w["last_inbound_at"] != w["opened_at"],
            "{w}"
        );
        Ok(())
    })
    .await?;
    stack.skip(7 * HOUR).await?;
    let (status, sent) = api.send(phone, "yes, at hour 30").await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");

    api.inbound(phone, "STOP").await?;
    let w = api.window_until(phone, "closed", |w| w["open"] == false).await?;
    assert_eq!(w["close_reason"], "COMPLIANCE_STOP");
    let sends = stack.sandbox.wait_for_sends(2, WAIT).await?;
    assert_eq!(sends.len(), 2, "the send and one confirmation: {sends:?}");
    let (status, refused) = api.send(phone, "come back").await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["code"], "contact_opted_out");
    stack.shutdown().await
}

/// A restart on the same data directory resumes the open window (same expiry), and its timer
/// still fires: EXPIRED after the 24h.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_every_open_window() -> anyhow::Result<()> {
    if BackendKind::from_env()? == BackendKind::TestServer {
        // Observed: once the first worker has stopped, `GET /v1/windows` (a `state` query)
        // gets no answer from sdk-java's test server within 20 s, while the devserver and the
        // real server answer at once. The test server keeps the run sticky to the stopped
        // worker's queue; the real server drops stickiness on the SDK's ShutdownWorker.
        let reason = "after a worker restart the test server does not answer queries (sticky queue of the stopped worker)";
        convo_tests::skipped(BackendKind::TestServer, "restart_resumes_every_open_window", reason);
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let config =
        ServeConfig { data_dir: Some(dir.path().to_path_buf()), ..ServeConfig::ephemeral() };
    let stack = Served::start(config.clone()).await?;
    let key = stack.dev_api_key.clone();
    let api = Api::new(&stack);
    let phone = "+33612345678";
    api.inbound(phone, "bonjour").await?;
    let before = api.window_until(phone, "open", |w| w["open"] == true).await?;
    let backend = stack.stop().await?;

    let stack = Served::on(backend, config, false).await?;
    assert_eq!(stack.dev_api_key, key, "the dev key survives a restart");
    let api = Api::new(&stack);
    let after = api.window_until(phone, "still open", |w| w["open"] == true).await?;
    assert_eq!(after["expires_at"], before["expires_at"]);
    // A workflow task the old worker had polled when it stopped stays started until its 10 s
    // start-to-close timeout (as on a real cluster), and time skips only once nothing is in
    // flight: allow for that wait on a loaded machine.
    stack.skip(25 * HOUR).await?;
    let w = api.window_until(phone, "expired", |w| w["open"] == false).await?;
    assert_eq!(w["close_reason"], "EXPIRED");
    stack.shutdown().await
}

/// A second workspace on the same stack, with its own settings, balance and key, every channel
/// on the stack's sandbox.
async fn tenant(
    stack: &Served,
    id: &str,
    settings: WorkspaceSettings,
    balance: u64,
) -> anyhow::Result<Api> {
    let settings = scale_settings(&stack.clock, settings)?;
    stack.store.upsert_workspace(id, id, &settings).await?;
    for channel in Channel::ALL {
        let sender = match channel {
            Channel::Email => format!("support@{id}.test"),
            _ => format!("+1646555{:04}", 100 + id.len()),
        };
        stack.store.upsert_channel(&stack.sandbox.channel_config(id, channel, sender)).await?;
    }
    if balance > 0 {
        stack.store.credit(id, Money::from_minor(balance), "opening").await?;
    }
    let key = stack.store.create_api_key(id, "test").await?.secret;
    Ok(Api { key, ..Api::new(&stack.stack) })
}

fn rated() -> WorkspaceSettings {
    convo_tests::default_settings()
}

/// The billing block as the RCS conversation API documents it, with its example's numbers (a
/// conversation unit of 0.25 against a balance of 50.00): the first CONVERSATION send of a
/// session is already `in_session` and carries the unit as its hold and price; later ones are
/// free; amounts are in the currency's major units with the currency named; every answer's
/// balance is the ledger's at that moment, not the one the session saw at its hold (another
/// contact's session moved it in between); and the `tier` block counts the channel's volume
/// this month against the rate card's tiers, which the settings API sets and checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_block_is_in_session_from_the_first_send_with_a_fresh_balance() -> anyhow::Result<()>
{
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let mut settings = rated();
    settings.rates = settings.rates.with(
        Channel::Whatsapp,
        convo_domain::RateCard {
            conversation_unit: Money::from_minor(25),
            message: Money::from_minor(5),
            newsletter: Money::from_minor(2),
        },
    );
    let api = tenant(&stack, "billing-co", settings, 5_000).await?;
    let patch =
        |body: Value| api.call(reqwest::Method::PATCH, "/v1/workspace/settings", Some(body), None);
    let (status, bad) = patch(json!({"volume_tiers": {"whatsapp": [
        {"name": "tier_1", "up_to": 3}, {"name": "tier_2", "up_to": 3}]}}))
    .await?;
    assert_eq!(
        (status, &bad["error"]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("volume_tiers.whatsapp[1].up_to")),
        "{bad}"
    );
    let (status, bad) = patch(json!({"currency": "euro"})).await?;
    assert_eq!(
        (status, &bad["error"]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("currency")),
        "{bad}"
    );
    // Every amount is stored in the currency's minor units: no changing it under a balance.
    let (status, bad) = patch(json!({"currency": "JPY"})).await?;
    assert_eq!(status, StatusCode::CONFLICT, "{bad}");
    let (status, set) = patch(json!({"currency": "EUR", "volume_tiers": {"whatsapp": [
        {"name": "tier_1", "up_to": 3}, {"name": "tier_2"}]}}))
    .await?;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["currency"], "EUR", "{set}");
    assert_eq!(set["volume_tiers"]["whatsapp"][1], json!({"name": "tier_2"}), "{set}");

    let (ada, bob) = ("+4917600000201", "+4917600000202");
    for who in [ada, bob] {
        api.inbound(who, "hi").await?;
        api.window_until(who, "open", |w| w["open"] == true).await?;
    }
    let (status, first) = api.send(ada, "hello Ada").await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(
        first["billing"],
        json!({"channel": "whatsapp", "message_type": "CONVERSATION", "in_session": true,
            "currency": "EUR", "hold_amount": 0.25, "message_price": 0.25,
            "balance": {"free": 49.75, "reserved": 0.25, "total": 50.0},
            "tier": {"channel": "whatsapp", "current": "tier_1", "volume_used": 1}}),
        "{first}"
    );

    let (_, other) = api.send(bob, "hello Bob").await?;
    assert_eq!(other["billing"]["balance"]["reserved"], 0.5, "{other}");
    assert_eq!(other["billing"]["tier"]["volume_used"], 2, "{other}");

    let (_, second) = api.send(ada, "anything else?").await?;
    let billing = &second["billing"];
    assert_eq!(billing["in_session"], true, "{second}");
    assert_eq!(billing["hold_amount"], 0.0, "{second}");
    assert_eq!(billing["message_price"], 0.0, "{second}");
    // Bob's hold is in the ledger: the answer says so.
    assert_eq!(
        billing["balance"],
        json!({"free": 49.5, "reserved": 0.5, "total": 50.0}),
        "{second}"
    );
    // The third message of the month crosses tier_1's bound.
    assert_eq!(
        billing["tier"],
        json!({"channel": "whatsapp", "current": "tier_2", "volume_used": 3}),
        "{second}"
    );
    // The workspace's own balance endpoint stays in minor units.
    let (_, balance) = api.get("/v1/workspace/balance").await?;
    assert_eq!(balance["reserved"], 50, "{balance}");
    stack.shutdown().await
}

/// Fixed (Sent-style) gating: a reply at hour 23 does not extend the window, so the send at
/// hour 30 is refused; a balance that cannot cover the conversation unit refuses with 402
/// `insufficient_balance` and sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_window_and_insufficient_balance_through_the_api() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let mut fixed = rated();
    fixed.overrides.insert(
        Channel::Whatsapp,
        PolicyOverrides { mode: Some(WindowMode::Fixed), ..PolicyOverrides::default() },
    );
    let api = tenant(&stack, "fixed-co", fixed, 1_000).await?;
    let phone = "+4930111111";
    api.inbound(phone, "hi").await?;
    api.window_until(phone, "open", |w| w["open"] == true).await?;
    stack.skip(23 * HOUR).await?;
    api.inbound(phone, "hello?").await?;
    stack.skip(7 * HOUR).await?;
    let w = api.window_until(phone, "expired", |w| w["open"] == false).await?;
    assert_eq!(w["close_reason"], "EXPIRED");
    let (status, refused) = api.send(phone, "late").await?;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_active_session"))
    );

    let poor = tenant(&stack, "poor-co", rated(), 40).await?;
    let phone = "+4930222222";
    poor.inbound(phone, "hi").await?;
    poor.window_until(phone, "open", |w| w["open"] == true).await?;
    let (status, refused) = poor.send(phone, "hello").await?;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{refused}");
    assert_eq!(refused["error"]["code"], "insufficient_balance");
    assert!(stack.sandbox.sends().is_empty(), "nothing reached the provider");
    stack.shutdown().await
}

/// A provider outage is retried until the provider recovers (one delivery); a permanent
/// rejection answers `provider_rejected`; STOP then START re-opts the contact in, with both
/// confirmations delivered, and sends work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_failures_and_start_through_the_api() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let phone = "+14155550999";
    api.inbound(phone, "hi").await?;
    api.window_until(phone, "open", |w| w["open"] == true).await?;

    let mut outage = FaultRule::new(Fault::Unavailable).on(Channel::Whatsapp);
    outage.times = Some(2);
    stack.sandbox.inject(outage);
    let (status, sent) = api.send(phone, "through the outage").await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(stack.sandbox.sends().len(), 1, "delivered once");

    stack.sandbox.inject(FaultRule::new(Fault::reject("131026")).on(Channel::Whatsapp));
    let (status, refused) = api.send(phone, "to a dead number").await?;
    assert!(status.is_client_error() || status.is_server_error(), "{status} {refused}");
    assert_eq!(refused["error"]["code"], "provider_rejected");
    stack.sandbox.clear_faults();

    api.inbound(phone, "stop").await?;
    api.window_until(phone, "closed", |w| w["close_reason"] == "COMPLIANCE_STOP").await?;
    api.inbound(phone, "START").await?;
    api.window_until(phone, "reopened", |w| w["open"] == true).await?;
    let (status, sent) = api.send(phone, "welcome back").await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    // The first send, the STOP confirmation, the START confirmation, the last send.
    let sends = stack.sandbox.wait_for_sends(4, WAIT).await?;
    assert_eq!(sends.len(), 4, "{sends:?}");
    stack.shutdown().await
}

/// The inactivity ping goes out after the configured silence; compose to a new e-mail address
/// and to an existing contact; take-over and resolve close the window EXPLICIT.
/// A compose with neither a window nor a template is refused at once with 422
/// `no_active_session` that says why (it used to be accepted, then fail in the background);
/// once the contact wrote in, the same compose starts and its text goes out. An ungated channel
/// (e-mail) takes it without a window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_without_window_or_template_is_refused_at_once() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let whatsapp = api.channel("whatsapp").await?;
    let phone = "+4917600000099";
    let compose = json!({"channel_id": whatsapp, "contact_phone": phone, "content": "hello"});
    let (status, refused) = api.post("/v1/conversations/compose", compose.clone()).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["code"], "no_active_session", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("template"), "{refused}");
    assert!(stack.sandbox.sends().is_empty(), "nothing was sent");

    api.inbound(phone, "hi, it's me").await?;
    api.window_until(phone, "open", |w| w["open"] == true).await?;
    let (status, composed) = api.post("/v1/conversations/compose", compose).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{composed}");
    let sends = stack.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!(sends[0].content, Content::Text { body: "hello".into(), subject: None });

    let email = api.channel("email").await?;
    let (status, composed) = api
        .post(
            "/v1/conversations/compose",
            json!({"channel_id": email, "contact_email": "ada@example.com",
            "subject": "Hello", "content": "No window needed here."}),
        )
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{composed}");
    stack.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_compose_take_over_and_resolve_through_the_api() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let mut settings = rated();
    settings.inactivity_ping = Some(InactivityPing {
        after_secs: 4 * 3600,
        content: Content::Text { body: "Still need help?".into(), subject: None },
    });
    let api = tenant(&stack, "ping-co", settings, 10_000).await?;
    let phone = "+442079460123";
    api.inbound(phone, "hi").await?;
    api.window_until(phone, "open", |w| w["open"] == true).await?;
    stack.skip(5 * HOUR).await?;
    let sends = stack.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!(sends[0].content, Content::Text { body: "Still need help?".into(), subject: None });

    let email = api.channel("email").await?;
    let (status, composed) = api
        .post(
            "/v1/conversations/compose",
            json!({"channel_id": email, "contact_email": "Grace@Example.com",
            "subject": "Invoice #42", "content": "Your invoice is ready."}),
        )
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{composed}");
    let sends = stack.sandbox.wait_for_sends(2, WAIT).await?;
    assert_eq!(sends[1].to, "grace@example.com");

    // The WhatsApp contact from above, by id, with its window open: free-form goes out.
    let (_, window) = api.get(&format!("/v1/windows/{phone}")).await?;
    let contact = window["contact_id"].as_str().context("contact id")?.to_owned();
    let whatsapp = api.channel("whatsapp").await?;
    let (status, composed) = api
        .post(
            "/v1/conversations/compose",
            json!({"channel_id": whatsapp, "contact_id": contact,
            "content": "How can we help?", "template": {"name": "hello", "variables": {}}}),
        )
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{composed}");
    let id = composed["conversation_id"].as_str().context("id")?.to_owned();
    let sends = stack.sandbox.wait_for_sends(3, WAIT).await?;
    assert_eq!(sends[2].content, Content::Text { body: "How can we help?".into(), subject: None });
    eventually(WAIT, || async {
        let (_, c) = api.get(&format!("/v1/conversations/{id}")).await?;
        anyhow::ensure!(c["status"] == "awaiting_reply", "{c}");
        Ok(())
    })
    .await?;
    let (status, body) = api
        .post(&format!("/v1/conversations/{id}/take-over"), json!({"agent_id": "agent-7"}))
        .await?;
    assert_eq!((status, body["ok"].as_bool()), (StatusCode::OK, Some(true)), "{body}");
    let (status, body) = api.post(&format!("/v1/conversations/{id}/resolve"), json!({})).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let w = api.window_until(phone, "closed", |w| w["open"] == false).await?;
    assert_eq!(w["close_reason"], "EXPLICIT");
    // A resolved conversation has ended: acting on it is 409 `conversation_closed` (it was a
    // 404, for a conversation `GET` still shows).
    eventually(WAIT, || async {
        let (status, body) = api
            .post(&format!("/v1/conversations/{id}/take-over"), json!({"agent_id": "agent-8"}))
            .await?;
        anyhow::ensure!(
            status == StatusCode::CONFLICT && body["error"]["code"] == "conversation_closed",
            "{status} {body}"
        );
        Ok(())
    })
    .await?;
    let (status, body) = api.post(&format!("/v1/conversations/{id}/resolve"), json!({})).await?;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::CONFLICT, &json!("conversation_closed"))
    );
    let (status, _) = api.get(&format!("/v1/conversations/{id}")).await?;
    assert_eq!(status, StatusCode::OK);
    stack.shutdown().await
}

/// After `temporal workflow terminate` on an open session, the window reads closed at once
/// with the reason `TERMINATED` (before, it read open while sends were refused
/// `no_active_session`), and the reconciler's `conversation.ended` is in the webhook log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_session_reads_closed_through_the_api() -> anyhow::Result<()> {
    let stack = Served::start(ServeConfig::ephemeral()).await?;
    let api = Api::new(&stack);
    let receiver = WebhookReceiver::start().await?;
    let (_, endpoint) = api.post("/v1/webhook-endpoints", json!({"url": receiver.url()})).await?;
    receiver.set_secret(endpoint["secret"].as_str().context("secret")?);
    let phone = "+4915199999999";
    api.inbound(phone, "hi").await?;
    let open = api.window_until(phone, "open", |w| w["open"] == true).await?;
    let contact = open["contact_id"].as_str().context("contact id")?.to_owned();

    let handle =
        stack.sessions.client().get_workflow_handle::<convo_workflows::SessionWindowWorkflow>(
            convo_workflows::contracts::session_workflow_id(convo::serve::DEV_WORKSPACE, &contact),
        );
    handle
        .terminate(
            temporalio_client::WorkflowTerminateOptions::builder().reason("ops".to_owned()).build(),
        )
        .await?;
    let (_, w) = api.get(&format!("/v1/windows/{phone}")).await?;
    assert_eq!(
        (w["open"].as_bool(), w["close_reason"].as_str()),
        (Some(false), Some("TERMINATED")),
        "{w}"
    );
    let (status, refused) = api.send(phone, "still there?").await?;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_active_session"))
    );
    let delivered = eventually(WAIT, || async {
        let got = receiver.received();
        let ended: Vec<Value> =
            got.iter().map(|w| w.json()).filter(|b| b["type"] == "conversation.ended").collect();
        anyhow::ensure!(!ended.is_empty(), "no conversation.ended yet");
        Ok(ended)
    })
    .await?;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["data"]["reason"], "TERMINATED");
    stack.shutdown().await
}

/// Webhook payloads and their schemas (a child module, for `Served` and `Api`).
#[path = "webhook_payloads.rs"]
mod webhook_payloads;

/// RCS rich content (a child module, for `Served` and `Api`).
#[path = "rich.rs"]
mod rich;

/// Cross-channel continuity (a child module, for `Served` and `Api`).
#[path = "continuity.rs"]
mod continuity;
