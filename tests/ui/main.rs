//! The real Temporal Web UI, in headless Chromium, on the real dev server that convo runs on:
//! an operator finds a contact's session by its phone number and sees its state.
//!
//! Runs with `CONVO_TEST_BACKEND=temporal` only (the UI exists only there) and records a skip
//! on the other backends. Without `chromium` and `chromedriver` it records a skip too, except
//! under `CI=true`, where a missing browser fails the test. Screenshots go to
//! `target/ui-screenshots/`:
//!
//! | file | what it shows |
//! |---|---|
//! | `01-workflows.png` | the workflow list with both contacts' sessions |
//! | `02-filtered-by-contact.png` | the list filtered on `ConvoContactAddress`: Ada's session alone |
//! | `03-session-summary.png` | Ada's session, User Metadata: its summary and current details |
//! | `04-session-memo.png` | its memo: the contact (address, name), channel, conversation |
//! | `05-session-search-attributes.png` | its search attributes: address, channel, window state |
//!
//! A wait that times out saves `failed-<step>.png` and `failed-<step>.html` there as well.
//!
//! Browser: W3C WebDriver through Debian's `chromedriver` (built from the same source and
//! version as Debian's `chromium`, so the two always match), with `thirtyfour` as the client.
//! WebDriver is a versioned standard; the DevTools protocol a CDP client speaks changes with
//! every Chromium release, and a client's generated types then fall behind the browser.
//! `thirtyfour` talks to the driver with `reqwest`, already in the build, and needs no Node.

mod browser;

use std::path::PathBuf;

use anyhow::{Context, bail};
use browser::{Binaries, Browser};
use convo::{ServeConfig, Stack, serve::ExternalTemporal};
use convo_testkit::{Backend, BackendKind, provider_signatures, skipped};
use convo_workflows::contracts::session_workflow_id;
use reqwest::StatusCode;
use serde_json::{Value, json};

const TEST: &str = "ui::an_operator_finds_a_contacts_session_by_phone_number";
/// Ada, whose session the operator looks for.
const ADA: &str = "+4917612345678";
/// Someone else who wrote in, so that the filter has something to leave out.
const BOB: &str = "+4915112345000";
/// The Meta app secret the test gives the dev workspace's WhatsApp channel.
const APP_SECRET: &str = "ui-test-app-secret";
/// How often a list that does not refresh by itself is reloaded while waiting on it.
const RELOAD: std::time::Duration = std::time::Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_a_contacts_session_by_phone_number() -> anyhow::Result<()> {
    let kind = BackendKind::from_env()?;
    if kind != BackendKind::Temporal {
        skipped(kind, TEST, "the Temporal Web UI runs only on the real dev server");
        return Ok(());
    }
    let binaries = match Binaries::find() {
        Ok(binaries) => binaries,
        Err(missing) if std::env::var("CI").as_deref() == Ok("true") => {
            bail!("CI=true and {missing}: .ci/run installs them, so this is a failure")
        }
        Err(missing) => {
            skipped(kind, TEST, &missing);
            return Ok(());
        }
    };
    let shots = screenshots_dir()?;

    let backend = Backend::start_with_ui().await?;
    let ui = backend.ui_url().context("the dev server was started with its UI")?.clone();
    let mut config = ServeConfig::ephemeral();
    config.temporal =
        Some(ExternalTemporal { url: backend.url().clone(), namespace: "default".into() });
    let stack = Stack::start(config).await?;
    let api = Api::new(&stack).await?;

    // Ada and Bob write in on WhatsApp, as Meta delivers it (with their profile names): each
    // gets a session.
    let ada = api.whatsapp_inbound(ADA, "Ada", "Hi, where is my order?").await?;
    let bob = api.whatsapp_inbound(BOB, "Bob", "Hello").await?;
    let ada_session = session_workflow_id(convo::serve::DEV_WORKSPACE, &ada);
    let bob_session = session_workflow_id(convo::serve::DEV_WORKSPACE, &bob);

    let browser = Browser::start(&binaries, shots.clone()).await?;
    let walked = walk(&browser, ui.as_str(), &ada_session, &bob_session).await;
    let quit = browser.quit().await;
    stack.shutdown().await?;
    backend.shutdown().await;
    walked?;
    quit?;
    eprintln!("screenshots in {}", shots.display());
    Ok(())
}

/// What the operator does in the UI, and what they see at each step.
async fn walk(browser: &Browser, ui: &str, ada: &str, bob: &str) -> anyhow::Result<()> {
    let ui = ui.trim_end_matches('/');
    const ROW: &str = "[data-testid=workflows-summary-configurable-table-row]";

    // 1. The workflow list: both sessions are there.
    browser.open(&format!("{ui}/namespaces/default/workflows")).await?;
    browser
        .wait_for("workflow-list", Some(RELOAD), || async {
            let rows = row_texts(browser, ROW).await?;
            anyhow::ensure!(
                [ada, bob].iter().all(|id| rows.iter().any(|r| r.contains(id))),
                "rows: {rows:?}"
            );
            Ok(())
        })
        .await?;
    browser.screenshot("01-workflows").await?;

    // 2. Filter on the contact's address with the UI's raw-query box (the "</>" toggle of the
    //    filter bar): the UI puts it in the list's `?query=` and lists Ada's session alone.
    let query = format!("ConvoContactAddress = \"{ADA}\"");
    browser.click("query-toggle", "[data-testid=toggle-manual-query]").await?;
    let input = browser
        .wait_for("query-box", None, || async {
            let input = browser.one("[data-testid=workflow-manual-search-input]").await?;
            anyhow::ensure!(input.is_displayed().await?, "the query box is not shown yet");
            Ok(input)
        })
        .await?;
    input.send_keys(&query).await?;
    browser.click("query-search", "[data-testid=workflow-manual-search-button]").await?;
    browser
        .wait_for("filtered-list", Some(RELOAD), || async {
            let url = browser.current_url().await?;
            let listed = url::Url::parse(&url)?
                .query_pairs()
                .find(|(k, _)| k == "query")
                .map(|(_, v)| v.into_owned());
            anyhow::ensure!(listed.as_deref() == Some(query.as_str()), "the list is at {url}");
            let rows = row_texts(browser, ROW).await?;
            anyhow::ensure!(rows.len() == 1 && rows[0].contains(ada), "rows: {rows:?}");
            Ok(())
        })
        .await?;
    browser.screenshot("02-filtered-by-contact").await?;

    // 3. Open the session from its row; its User Metadata shows the summary (the contact's
    //    number and name, the channel) and the current details (the window's state).
    browser
        .wait_for("session-link", None, || async {
            for a in browser.all(&format!("{ROW} a")).await? {
                if a.text().await?.trim() == ada {
                    a.click().await?;
                    return Ok(());
                }
            }
            anyhow::bail!("no link to {ada} in the filtered list")
        })
        .await?;
    browser
        .wait_for("session-page", None, || async {
            let heading = browser.text("[data-testid=workflow-id-heading]").await?;
            anyhow::ensure!(heading.trim() == ada, "heading: {heading:?}");
            Ok(())
        })
        .await?;
    browser.click("user-metadata-tab", "#user-metadata-tab").await?;
    browser
        .wait_for("session-summary", None, || async {
            let summary = browser.frame_text("iframe#user-metadata-summary").await?;
            for expected in [ADA, "WhatsApp", "Ada"] {
                anyhow::ensure!(summary.contains(expected), "summary: {summary:?}");
            }
            let details = browser.frame_text("iframe#user-metadata-current-details").await?;
            anyhow::ensure!(
                details.to_lowercase().contains("window open"),
                "current details: {details:?}"
            );
            Ok(())
        })
        .await?;
    browser.screenshot("03-session-summary").await?;

    // 4. The memo: the contact (address and name) and the channel.
    browser.click("memo-tab", "#memo-tab").await?;
    browser
        .wait_for("session-memo", None, || async {
            let memo = code_block(browser, "Memo").await?;
            let fields = &memo["fields"];
            anyhow::ensure!(
                fields["contact"]["address"] == ADA
                    && fields["contact"]["name"] == "Ada"
                    && fields["channel"] == "whatsapp",
                "memo: {memo}"
            );
            Ok(())
        })
        .await?;
    browser.screenshot("04-session-memo").await?;

    // 5. The search attributes: the address, the channel and the window's state.
    browser.click("search-attributes-tab", "#search-attributes-tab").await?;
    browser
        .wait_for("session-search-attributes", None, || async {
            let attributes = code_block(browser, "Search Attributes").await?;
            anyhow::ensure!(
                attributes["ConvoContactAddress"] == ADA
                    && attributes["ConvoChannel"] == "whatsapp"
                    && attributes["ConvoWindowState"] == "open",
                "search attributes: {attributes}"
            );
            Ok(())
        })
        .await?;
    browser.screenshot("05-session-search-attributes").await?;

    // 6. The call stack: the session's own account of what it waits for.
    browser.click("call-stack-tab", "#call-stack-tab").await?;
    browser
        .wait_for("session-call-stack", None, || async {
            let stack = browser.text("[aria-readonly=true][aria-label=\"Call Stack\"]").await?;
            anyhow::ensure!(stack.contains("waiting for timer `expiry`"), "call stack: {stack:?}");
            Ok(())
        })
        .await?;
    browser.screenshot("06-session-call-stack").await?;
    Ok(())
}

/// The JSON the UI shows in its read-only code block labelled `label` (the memo, the search
/// attributes).
async fn code_block(browser: &Browser, label: &str) -> anyhow::Result<Value> {
    let css = format!("[aria-readonly=true][aria-label=\"{label}\"]");
    let text = browser.text(&css).await?;
    serde_json::from_str(&text).with_context(|| format!("{label} is not JSON yet: {text:?}"))
}

/// The rendered text of every row `css` matches.
async fn row_texts(browser: &Browser, css: &str) -> anyhow::Result<Vec<String>> {
    let mut texts = Vec::new();
    for row in browser.all(css).await? {
        texts.push(row.text().await?);
    }
    Ok(texts)
}

/// `target/ui-screenshots/` at the workspace root, emptied of an earlier run's files.
fn screenshots_dir() -> anyhow::Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.canonicalize()?)
}

/// The stack's HTTP API, with the dev workspace's key, and Meta's side of WhatsApp.
struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
    /// The dev workspace's WhatsApp number, as Meta's webhook names it.
    phone_number_id: String,
}

impl Api {
    /// Gives the dev workspace's WhatsApp channel an app secret, so that the test can sign
    /// Meta's webhooks as Meta would.
    async fn new(stack: &Stack) -> anyhow::Result<Api> {
        let mut channel = stack
            .store
            .channel(convo::serve::DEV_WORKSPACE, convo_domain::Channel::Whatsapp)
            .await?;
        channel.config["app_secret"] = json!(APP_SECRET);
        let phone_number_id = channel.config["phone_number_id"]
            .as_str()
            .context("the sandbox's WhatsApp channel has a phone_number_id")?
            .to_owned();
        stack.store.upsert_channel(&channel).await?;
        Ok(Api {
            base: format!("http://{}", stack.http_addr),
            key: stack.dev_api_key.clone(),
            http: reqwest::Client::new(),
            phone_number_id,
        })
    }

    /// `from` (profile name `name`) writes `text` on WhatsApp: Meta's signed webhook to
    /// `POST /v1/inbound/whatsapp`. Returns the contact's id once the window is open.
    async fn whatsapp_inbound(&self, from: &str, name: &str, text: &str) -> anyhow::Result<String> {
        let wa_id = from.trim_start_matches('+');
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let body = serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "waba-ui", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "", "phone_number_id": self.phone_number_id},
                "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
                "messages": [{"from": wa_id, "id": format!("wamid.ui-{wa_id}"),
                    "timestamp": now.to_string(), "type": "text", "text": {"body": text}}]
            }}]}]
        }))?;
        let resp = self
            .http
            .post(format!("{}/v1/inbound/whatsapp", self.base))
            .header("content-type", "application/json")
            .header("X-Hub-Signature-256", provider_signatures::meta(APP_SECRET, &body))
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        anyhow::ensure!(status == StatusCode::OK, "inbound: {status} {}", resp.text().await?);
        let window = convo_tests::eventually(browser::WAIT, || async {
            let path = format!("{}/v1/windows/{}", self.base, from.replace('+', "%2B"));
            let w: Value = self.http.get(&path).bearer_auth(&self.key).send().await?.json().await?;
            anyhow::ensure!(w["open"] == true, "{from}'s window: {w}");
            Ok(w)
        })
        .await?;
        Ok(window["contact_id"].as_str().context("contact_id")?.to_owned())
    }
}
