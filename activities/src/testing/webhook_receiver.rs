//! [`WebhookReceiver`]: a real HTTP server that checks Standard Webhooks signatures, for tests
//! of the dispatcher and of anything that emits webhooks.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, SystemTime},
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use convo_store::webhooks::signing::{self, HEADER_ID, HEADER_TIMESTAMP};

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Answer at once with this status.
    Status(u16),
    /// Answer with this status after this long (a slow or hung endpoint).
    Delayed(Duration, u16),
}

impl Reply {
    fn status(self) -> u16 {
        match self {
            Reply::Status(s) | Reply::Delayed(_, s) => s,
        }
    }
}

/// One request the receiver got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedWebhook {
    /// `webhook-id` (empty if absent).
    pub id: String,
    /// `webhook-timestamp` (0 if absent or malformed).
    pub timestamp: i64,
    /// `webhook-signature` as sent (empty if absent), for verifiers of one's own.
    pub signature: String,
    /// The raw body.
    pub body: String,
    /// Whether the signature checked out; unverified requests were answered 401.
    pub verified: bool,
    /// Why verification failed.
    pub error: Option<String>,
    /// The status it was (or is being) answered with.
    pub status: u16,
}

impl ReceivedWebhook {
    /// The body parsed as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

#[derive(Debug, Default)]
struct Shared {
    secret: Option<String>,
    script: VecDeque<Reply>,
    log: Vec<ReceivedWebhook>,
}

#[derive(Debug)]
struct Inner {
    shared: Mutex<Shared>,
    default_reply: Reply,
    /// Bumped on every request, so waiters re-check the log without polling.
    arrivals: watch::Sender<usize>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panicking test thread must not hide what the receiver saw from the others.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A webhook endpoint on `127.0.0.1:<free port>` that verifies every request with the
/// endpoint's secret (answering 401 and logging the failure when it does not verify), logs
/// verified requests, and answers them from a script (then 200). Tests wait for arrivals with
/// [`WebhookReceiver::wait_for`], never with sleeps. Dropping it stops the server.
#[derive(Debug)]
pub struct WebhookReceiver {
    addr: SocketAddr,
    inner: Arc<Inner>,
    server: JoinHandle<()>,
}

impl WebhookReceiver {
    /// Starts a receiver with no secret yet (every request fails verification until
    /// [`WebhookReceiver::set_secret`]): the endpoint, and so its secret, can only be created
    /// once the receiver's URL is known.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            shared: Mutex::new(Shared::default()),
            default_reply: Reply::Status(200),
            arrivals: watch::Sender::new(0),
        });
        let app = Router::new().route("/webhooks", post(handle)).with_state(Arc::clone(&inner));
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "webhook receiver stopped");
            }
        });
        Ok(Self { addr, inner, server })
    }

    /// Starts a receiver verifying with `secret`.
    pub async fn with_secret(secret: &str) -> std::io::Result<Self> {
        let receiver = Self::start().await?;
        receiver.set_secret(secret);
        Ok(receiver)
    }

    /// The URL to register as the endpoint.
    pub fn url(&self) -> String {
        format!("http://{}/webhooks", self.addr)
    }

    /// Verifies later requests with `secret` (`whsec_...`).
    pub fn set_secret(&self, secret: &str) {
        self.inner.lock().secret = Some(secret.to_owned());
    }

    /// Queues replies for the next requests, in order; once they are used up, requests get
    /// 200. Only verified requests consume the script.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().script.extend(replies);
    }

    /// Every verified request so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedWebhook> {
        self.inner.lock().log.iter().filter(|r| r.verified).cloned().collect()
    }

    /// Every request that failed verification so far.
    pub fn rejected(&self) -> Vec<ReceivedWebhook> {
        self.inner.lock().log.iter().filter(|r| !r.verified).cloned().collect()
    }

    /// Waits until at least `n` verified requests have arrived and returns them all. Wrap it in
    /// a timeout: it waits forever otherwise.
    pub async fn wait_for(&self, n: usize) -> Vec<ReceivedWebhook> {
        self.wait_until(|log| log.iter().filter(|r| r.verified).count() >= n).await;
        self.received()
    }

    /// Waits until at least `n` requests failed verification and returns them.
    pub async fn wait_for_rejected(&self, n: usize) -> Vec<ReceivedWebhook> {
        self.wait_until(|log| log.iter().filter(|r| !r.verified).count() >= n).await;
        self.rejected()
    }

    async fn wait_until(&self, done: impl Fn(&[ReceivedWebhook]) -> bool) {
        let mut arrivals = self.inner.arrivals.subscribe();
        loop {
            // Seen before checking, so an arrival between the check and the wait still wakes us.
            arrivals.borrow_and_update();
            if done(&self.inner.lock().log) {
                return;
            }
            if arrivals.changed().await.is_err() {
                return;
            }
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let id = header(HEADER_ID).to_owned();
    let timestamp = header(HEADER_TIMESTAMP).parse().unwrap_or(0);
    let signature = header("webhook-signature").to_owned();
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let reply = {
        let mut shared = inner.lock();
        let verdict = match &shared.secret {
            Some(secret) => signing::verify(secret, &headers, &body, SystemTime::now())
                .map(drop)
                .map_err(|e| e.to_string()),
            None => Err("the receiver has no secret".to_owned()),
        };
        let reply = match verdict {
            Ok(()) => shared.script.pop_front().unwrap_or(inner.default_reply),
            Err(_) => Reply::Status(401),
        };
        shared.log.push(ReceivedWebhook {
            id,
            timestamp,
            signature,
            body: body_text,
            verified: verdict.is_ok(),
            error: verdict.err(),
            status: reply.status(),
        });
        reply
    };
    inner.arrivals.send_modify(|n| *n += 1);
    if let Reply::Delayed(delay, _) = reply {
        tokio::time::sleep(delay).await;
    }
    StatusCode::from_u16(reply.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
