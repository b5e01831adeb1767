//! [`WebhookDispatcher`]: the long-running task that drains the webhook outbox.

use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use tokio::{sync::watch, task::JoinHandle};

use convo_store::{
    AttemptResult, ClaimedDelivery, Store, now_ms,
    webhooks::{
        Destinations,
        signing::{signed_headers, unix_seconds},
    },
};

/// How a dispatcher behaves. [`Default`] is the production setting; tests shrink the
/// durations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatcherConfig {
    /// The wait before each retry: after attempt `n` fails, the next one comes
    /// `retry_schedule[n - 1]` later; when the schedule is used up the delivery fails. The
    /// first attempt is always immediate.
    pub retry_schedule: Vec<Duration>,
    /// The whole request, connect to last byte of the response head.
    pub request_timeout: Duration,
    /// How long a claimed delivery stays reserved for this dispatcher. Must exceed
    /// `request_timeout`, or a slow endpoint may get the same attempt twice; if the dispatcher
    /// dies, its deliveries become due again after this long.
    pub lease: Duration,
    /// Deliveries claimed per round.
    pub batch_size: u32,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The longest the dispatcher sleeps without looking at the database. Enqueues through the
    /// same [`Store`] wake it at once; this bounds the delay for enqueues made by other
    /// processes.
    pub poll_interval: Duration,
    /// The `User-Agent` of every request.
    pub user_agent: String,
    /// Which addresses deliveries may reach ([`Destinations`]); by default public `https`
    /// destinations only. Checked at each attempt, after resolving, so an endpoint whose name
    /// was re-pointed at an internal address since it was subscribed reaches nothing.
    pub destinations: Destinations,
}

impl DispatcherConfig {
    /// Svix's schedule: after the immediate attempt, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h
    /// (eight attempts over about 27.6 hours), so an endpoint down for a day still gets the
    /// event.
    pub fn svix_retry_schedule() -> Vec<Duration> {
        const MIN: u64 = 60;
        const HOUR: u64 = 60 * MIN;
        [5, 5 * MIN, 30 * MIN, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR]
            .into_iter()
            .map(Duration::from_secs)
            .collect()
    }
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            retry_schedule: Self::svix_retry_schedule(),
            request_timeout: Duration::from_secs(15),
            lease: Duration::from_secs(60),
            batch_size: 32,
            concurrency: 8,
            poll_interval: Duration::from_secs(5),
            user_agent: concat!("convo-webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
            destinations: Destinations::PUBLIC,
        }
    }
}

/// Spawns dispatchers. Any number may run against one database (in one process or several):
/// claims are leased, so each attempt is made by one of them.
#[derive(Debug, Clone, Copy)]
pub struct WebhookDispatcher;

impl WebhookDispatcher {
    /// Starts a dispatcher on the current Tokio runtime. Fails only if the HTTP client cannot
    /// be built (no TLS backend).
    pub fn spawn(
        store: Store,
        config: DispatcherConfig,
    ) -> Result<DispatcherHandle, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            // A redirect would send the signed body somewhere the workspace did not register.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(config.user_agent.clone())
            .dns_resolver(config.destinations.resolver())
            .build()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let recorded = watch::Sender::new(0);
        let task = tokio::spawn(run(store, config, client, shutdown_rx, recorded.clone()));
        Ok(DispatcherHandle { shutdown, recorded, task: Some(task) })
    }
}

/// A running dispatcher. Dropping it aborts the task (as a crash would: claimed deliveries
/// become due again when their leases expire); [`DispatcherHandle::shutdown`] stops it
/// gracefully.
#[derive(Debug)]
pub struct DispatcherHandle {
    shutdown: watch::Sender<bool>,
    recorded: watch::Sender<u64>,
    task: Option<JoinHandle<()>>,
}

impl DispatcherHandle {
    /// The number of attempts this dispatcher has recorded, changing after each one: lets a
    /// caller (a test, a health check) wait for progress instead of polling on a timer.
    pub fn recorded(&self) -> watch::Receiver<u64> {
        self.recorded.subscribe()
    }

    /// Stops claiming, lets the attempts in flight finish and be recorded, then returns.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::warn!(error = %e, "webhook dispatcher task ended abnormally");
        }
    }

    /// Stops at once, abandoning attempts in flight (their leases expire and they are retried).
    pub fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for DispatcherHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Back-off after a database error, so an outage does not become a busy loop.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

async fn run(
    store: Store,
    config: DispatcherConfig,
    client: reqwest::Client,
    mut shutdown: watch::Receiver<bool>,
    recorded: watch::Sender<u64>,
) {
    let mut wakeups = store.webhook_wakeups();
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Marking the wake-ups seen *before* claiming means an enqueue that lands after the
        // claim's snapshot still wakes the sleep below.
        wakeups.borrow_and_update();
        let wait = match store.claim_webhook_deliveries(config.lease, config.batch_size).await {
            Ok(batch) if !batch.is_empty() => {
                futures::stream::iter(batch)
                    .for_each_concurrent(config.concurrency.max(1), |delivery| {
                        attempt(&store, &client, &config, delivery, &recorded)
                    })
                    .await;
                // More may be due already (a full batch, or a retry with a tiny delay).
                continue;
            }
            Ok(_) => match store.next_webhook_due().await {
                Ok(Some(due)) => {
                    let ms = u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0);
                    Duration::from_millis(ms).min(config.poll_interval)
                }
                Ok(None) => config.poll_interval,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook dispatcher cannot read the outbox");
                    ERROR_BACKOFF
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "webhook dispatcher cannot claim deliveries");
                ERROR_BACKOFF
            }
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            changed = wakeups.changed() => {
                // The sender lives as long as the store we hold; an error cannot happen, but if
                // it did, fall back to polling rather than spinning.
                if changed.is_err() {
                    tokio::time::sleep(wait).await;
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn attempt(
    store: &Store,
    client: &reqwest::Client,
    config: &DispatcherConfig,
    delivery: ClaimedDelivery,
    recorded: &watch::Sender<u64>,
) {
    let started_at = now_ms();
    let clock = Instant::now();
    let result = match config.destinations.check_url(&delivery.url) {
        // A literal address never meets the resolver; a name is filtered there.
        Err(refused) => AttemptResult::Transport(format!("destination refused: {refused}")),
        Ok(_) => send(client, &delivery).await,
    };
    let duration = clock.elapsed();
    let recorded_status = store
        .record_webhook_attempt(&delivery, started_at, duration, &result, &config.retry_schedule)
        .await;
    convo_metrics::webhook_attempt(&delivery, &result, recorded_status.as_ref().ok().copied());
    match recorded_status {
        Ok(status) => tracing::debug!(
            delivery = %delivery.id,
            endpoint = %delivery.endpoint_id,
            event = %delivery.event_id,
            ?result,
            status = status.as_str(),
            "webhook attempt"
        ),
        // The lease will run out and the attempt will be made again: at least once.
        Err(e) => tracing::warn!(
            delivery = %delivery.id,
            error = %e,
            "cannot record a webhook attempt"
        ),
    }
    recorded.send_modify(|n| *n += 1);
}

/// One signed POST of the delivery's body.
async fn send(client: &reqwest::Client, delivery: &ClaimedDelivery) -> AttemptResult {
    match signed_headers(
        &delivery.secret,
        &delivery.event_id,
        unix_seconds(SystemTime::now()),
        delivery.body.as_bytes(),
    ) {
        Ok(headers) => {
            let request = client
                .post(&delivery.url)
                .headers(headers)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(delivery.body.clone());
            match request.send().await {
                Ok(response) => AttemptResult::Http(response.status().as_u16()),
                Err(e) => AttemptResult::Transport(describe(&e)),
            }
        }
        Err(e) => AttemptResult::Transport(format!("cannot sign: {e}")),
    }
}

/// The error and its causes on one line: reqwest's own message alone ("error sending request")
/// does not say whether the connection was refused or timed out.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if e.is_timeout() && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}
