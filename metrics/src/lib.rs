//! convo's Prometheus metrics: their names, the process-wide recorder every crate records into,
//! and the gauges read from the store on each scrape.
//!
//! One recorder per process (the `metrics` facade's global one, backed by
//! `metrics-exporter-prometheus`), installed by [`install`] on first use. Everything lands in
//! it: the Temporal SDK's worker and client metrics (`convo_worker` bridges the SDK's meter onto
//! the facade), the business counters below, the HTTP and gRPC metrics of `convo_api`. Whoever
//! serves `/metrics` (the worker's endpoint, the API) renders it with [`render`], which first
//! refreshes the store-backed gauges of every store registered with [`watch_store`] (a worker
//! registers its own). Several workers in one process (tests) therefore report the sum of their
//! stores.
//!
//! Every metric is listed, with its labels, in the README's "Metrics" section.

use std::{
    collections::BTreeSet,
    sync::{
        Mutex, OnceLock, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use convo_domain::Channel;
use metrics::{counter, gauge};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use temporalio_common::telemetry::metrics::default_buckets_for;

use convo_store::{AttemptResult, ClaimedDelivery, DeliveryStatus, Store};

mod meter;

pub use meter::{MetricsMeter, client_meter, telemetry_options};

/// Provider calls, by `channel`, `provider` (the adapter: `whatsapp_cloud`, `twilio`, `rbm`,
/// `smtp`, `sandbox_native`) and `outcome` (`accepted`, `rejected`: a permanent refusal,
/// `failed`: a transient failure Temporal retries).
pub const SENDS: &str = "convo_sends_total";
/// Webhook attempts, by `workspace`, `endpoint` and `result` (`2xx`, `3xx`, `4xx`, `5xx`,
/// `transport`: no answer).
pub const WEBHOOK_ATTEMPTS: &str = "convo_webhook_attempts_total";
/// Deliveries that reached a final state, by `workspace`, `endpoint` and `outcome`
/// (`delivered`, `failed`: retries used up or 410 Gone).
pub const WEBHOOK_DELIVERIES: &str = "convo_webhook_deliveries_total";
/// Deliveries waiting for an attempt, by `workspace` and `endpoint`.
pub const WEBHOOK_BACKLOG: &str = "convo_webhook_backlog";
/// Age of the oldest pending delivery, by `workspace` and `endpoint`; 0 with no backlog.
pub const WEBHOOK_OLDEST_PENDING_AGE: &str = "convo_webhook_oldest_pending_age_seconds";
/// Windows reported open and not yet ended (the reconciler's table), by `channel`.
pub const OPEN_WINDOWS: &str = "convo_open_windows";
/// Billing holds placed and not yet charged or released.
pub const HOLDS_OPEN: &str = "convo_holds_open";
/// What the open holds reserve, in minor units summed over workspaces.
pub const HOLDS_RESERVED: &str = "convo_holds_reserved_minor_units";
/// Failed reads of the store-backed gauges (the previous values stay).
pub const GAUGE_REFRESH_ERRORS: &str = "convo_metrics_refresh_errors_total";
/// HTTP requests, by `method`, `path` (the route template) and `status`.
pub const HTTP_REQUESTS: &str = "convo_http_requests_total";
/// HTTP request latency, by `method` and `path`.
pub const HTTP_REQUEST_DURATION: &str = "convo_http_request_duration_seconds";
/// Responses replayed for a repeated Idempotency-Key.
pub const IDEMPOTENT_REPLAYS: &str = "convo_idempotent_replays_total";
/// gRPC calls, by `service`, `method` and `code` (`OK`, `NotFound`, `Unauthenticated`, ...).
pub const GRPC_REQUESTS: &str = "convo_grpc_requests_total";
/// gRPC call latency, by `service` and `method`.
pub const GRPC_REQUEST_DURATION: &str = "convo_grpc_request_duration_seconds";

/// The prefix of the Temporal SDK's metrics (its default).
pub const SDK_PREFIX: &str = "temporal_";

/// Buckets (seconds) of convo's own latency histograms.
const LATENCY_BUCKETS: [f64; 12] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The SDK's histograms with buckets of their own (the SDK's defaults, in seconds); the others
/// get its generic buckets.
const SDK_HISTOGRAMS: [&str; 6] = [
    "workflow_endtoend_latency",
    "workflow_task_schedule_to_start_latency",
    "workflow_task_replay_latency",
    "workflow_task_execution_latency",
    "activity_schedule_to_start_latency",
    "activity_execution_latency",
];

/// Histograms are drained into their buckets on each render; without scrapes, this bounds the
/// memory their samples take.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Longest a scrape waits for one store's gauges.
const STORE_TIMEOUT: Duration = Duration::from_secs(5);

fn builder() -> Result<PrometheusBuilder, BuildError> {
    let mut builder = PrometheusBuilder::new().set_buckets(&LATENCY_BUCKETS)?;
    for name in SDK_HISTOGRAMS {
        builder = builder.set_buckets_for_metric(
            Matcher::Full(format!("{SDK_PREFIX}{name}")),
            default_buckets_for(name, true),
        )?;
    }
    builder.set_buckets_for_metric(
        Matcher::Prefix(SDK_PREFIX.to_owned()),
        default_buckets_for("any other", true),
    )
}

/// Installs the process-wide recorder (once; later calls return the same handle). `None` if
/// the process already had another global recorder, which then gets every metric.
pub fn install() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = builder().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "metrics histogram buckets rejected; using summaries");
                PrometheusBuilder::new()
            });
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "another metrics recorder is installed: /metrics is empty");
                return None;
            }
            describe();
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("convo-metrics".into()).spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no metrics upkeep thread: histograms drain on scrape");
            }
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(SENDS, "Provider calls by channel, provider and outcome.");
    describe_counter!(WEBHOOK_ATTEMPTS, "Webhook attempts by endpoint and result.");
    describe_counter!(WEBHOOK_DELIVERIES, "Webhook deliveries that ended, by outcome.");
    describe_gauge!(WEBHOOK_BACKLOG, "Webhook deliveries waiting for an attempt.");
    describe_gauge!(
        WEBHOOK_OLDEST_PENDING_AGE,
        Unit::Seconds,
        "Age of the oldest pending webhook delivery."
    );
    describe_gauge!(OPEN_WINDOWS, "Session windows reported open and not yet ended.");
    describe_gauge!(HOLDS_OPEN, "Billing holds neither charged nor released.");
    describe_gauge!(HOLDS_RESERVED, "Amount the open holds reserve (minor units).");
    describe_counter!(GAUGE_REFRESH_ERRORS, "Failed reads of the store-backed gauges.");
    describe_counter!(HTTP_REQUESTS, "HTTP requests by route and status.");
    describe_histogram!(HTTP_REQUEST_DURATION, Unit::Seconds, "HTTP request latency by route.");
    describe_counter!(IDEMPOTENT_REPLAYS, "Responses replayed for a repeated Idempotency-Key.");
    describe_counter!(GRPC_REQUESTS, "gRPC calls by service, method and status code.");
    describe_histogram!(GRPC_REQUEST_DURATION, Unit::Seconds, "gRPC call latency by method.");
}

/// The stores whose gauges [`render`] reads, by registration id.
static STORES: Mutex<Vec<(u64, Store)>> = Mutex::new(Vec::new());

/// Keeps a store's gauges in [`render`]'s output until dropped.
#[derive(Debug)]
pub struct StoreRegistration {
    id: u64,
}

impl Drop for StoreRegistration {
    fn drop(&mut self) {
        STORES.lock().unwrap_or_else(PoisonError::into_inner).retain(|(id, _)| *id != self.id);
    }
}

/// Adds `store`'s open windows, webhook backlog and holds to the gauges [`render`] refreshes.
pub fn watch_store(store: Store) -> StoreRegistration {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    STORES.lock().unwrap_or_else(PoisonError::into_inner).push((id, store));
    StoreRegistration { id }
}

/// Refreshes the store-backed gauges, then renders every metric in the text exposition format
/// (`text/plain; version=0.0.4`). Empty if [`install`] could not install the recorder.
pub async fn render() -> String {
    let Some(handle) = install() else { return String::new() };
    refresh_gauges().await;
    handle.render()
}

/// `(workspace, endpoint)` label pairs the backlog gauges were last set for.
type Endpoints = BTreeSet<(String, String)>;

/// Reads every registered store and sets the gauges. Scrapes are serialised, so two at once
/// cannot interleave their writes.
async fn refresh_gauges() {
    static LAST: tokio::sync::Mutex<Endpoints> = tokio::sync::Mutex::const_new(BTreeSet::new());
    let mut last = LAST.lock().await;
    let stores: Vec<Store> = STORES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(_, s)| s.clone())
        .collect();
    let mut windows = [0u64; Channel::ALL.len()];
    let (mut holds, mut reserved) = (0u64, 0u64);
    let mut endpoints: Vec<(String, String, u64, f64)> = Vec::new();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    for store in stores {
        let gauges = match tokio::time::timeout(STORE_TIMEOUT, store.gauges()).await {
            Ok(Ok(g)) => g,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the store for /metrics");
                counter!(GAUGE_REFRESH_ERRORS).increment(1);
                continue;
            }
            Err(_) => {
                tracing::warn!("the store did not answer /metrics within {STORE_TIMEOUT:?}");
                counter!(GAUGE_REFRESH_ERRORS).increment(1);
                continue;
            }
        };
        for (channel, n) in gauges.open_windows {
            if let Some(i) = Channel::ALL.iter().position(|c| *c == channel) {
                windows[i] += n;
            }
        }
        holds += gauges.open_holds;
        reserved += gauges.reserved.minor();
        for b in gauges.webhook_backlog {
            let age = b.oldest_pending_at.map_or(0.0, |t| {
                now_ms.saturating_sub(u128::from(t.as_epoch_millis())) as f64 / 1000.0
            });
            endpoints.push((b.workspace_id, b.endpoint_id, b.pending, age));
        }
    }
    for (channel, n) in Channel::ALL.iter().zip(windows) {
        gauge!(OPEN_WINDOWS, "channel" => channel.as_str()).set(n as f64);
    }
    gauge!(HOLDS_OPEN).set(holds as f64);
    gauge!(HOLDS_RESERVED).set(reserved as f64);
    let mut seen = Endpoints::new();
    for (workspace, endpoint, pending, age) in endpoints {
        let labels = [("workspace", workspace.clone()), ("endpoint", endpoint.clone())];
        gauge!(WEBHOOK_BACKLOG, &labels).set(pending as f64);
        gauge!(WEBHOOK_OLDEST_PENDING_AGE, &labels).set(age);
        seen.insert((workspace, endpoint));
    }
    // An endpoint gone from every store (deleted, its store closed) reads as idle, not stuck.
    for (workspace, endpoint) in last.difference(&seen) {
        let labels = [("workspace", workspace.clone()), ("endpoint", endpoint.clone())];
        gauge!(WEBHOOK_BACKLOG, &labels).set(0.0);
        gauge!(WEBHOOK_OLDEST_PENDING_AGE, &labels).set(0.0);
    }
    seen.extend(last.iter().cloned());
    *last = seen;
}

/// Counts one webhook attempt, and the delivery's end if it ended (`status` is where the
/// attempt left it, `None` if that could not be recorded).
pub fn webhook_attempt(
    delivery: &ClaimedDelivery,
    result: &AttemptResult,
    status: Option<DeliveryStatus>,
) {
    let result = match result {
        AttemptResult::Http(s @ 200..=599) => {
            ["2xx", "3xx", "4xx", "5xx"][usize::from(s / 100 - 2)]
        }
        AttemptResult::Http(_) | AttemptResult::Transport(_) => "transport",
    };
    let (workspace, endpoint) = (delivery.workspace_id.clone(), delivery.endpoint_id.clone());
    counter!(WEBHOOK_ATTEMPTS, "workspace" => workspace.clone(), "endpoint" => endpoint.clone(),
        "result" => result)
    .increment(1);
    let outcome = match status {
        Some(DeliveryStatus::Delivered) => "delivered",
        Some(DeliveryStatus::Failed) => "failed",
        _ => return,
    };
    counter!(WEBHOOK_DELIVERIES, "workspace" => workspace, "endpoint" => endpoint,
        "outcome" => outcome)
    .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_histograms_get_the_sdks_buckets_in_seconds() {
        assert_eq!(default_buckets_for("workflow_task_schedule_to_start_latency", true)[0], 0.1);
        assert!(builder().is_ok());
    }
}
