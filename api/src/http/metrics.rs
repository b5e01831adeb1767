//! A small Prometheus registry: request counts and latency histograms per route, rendered in
//! the text exposition format. Routes are the matched templates (`/v1/conversations/{id}`), so
//! the label sets stay bounded whatever ids clients send.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The HTTP metrics of one router.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    replays: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters stay meaningful after a panic elsewhere; keep serving them.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Escapes a label value for the exposition format.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// Counts one request and its latency.
    pub fn record(&self, method: &str, path: &str, status: u16, elapsed: Duration) {
        *lock(&self.requests).entry((method.to_owned(), path.to_owned(), status)).or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut latency = lock(&self.latency);
        let h = latency.entry((method.to_owned(), path.to_owned())).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Counts a response replayed for a repeated Idempotency-Key.
    pub fn idempotent_replay(&self) {
        self.replays.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition format (`text/plain; version=0.0.4`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP convo_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE convo_http_requests_total counter\n");
        for ((method, path, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "convo_http_requests_total{{method=\"{}\",path=\"{}\",status=\"{status}\"}} {n}",
                label(method),
                label(path)
            );
        }
        out.push_str("# HELP convo_http_request_duration_seconds HTTP request latency by route.\n");
        out.push_str("# TYPE convo_http_request_duration_seconds histogram\n");
        for ((method, path), h) in lock(&self.latency).iter() {
            let labels = format!("method=\"{}\",path=\"{}\"", label(method), label(path));
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "convo_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "convo_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "convo_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ =
                writeln!(out, "convo_http_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
        out.push_str(
            "# HELP convo_idempotent_replays_total Responses replayed for a repeated Idempotency-Key.\n",
        );
        out.push_str("# TYPE convo_idempotent_replays_total counter\n");
        let _ = writeln!(
            out,
            "convo_idempotent_replays_total {}",
            self.replays.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record("GET", "/healthz", 200, Duration::from_millis(3));
        m.record("GET", "/healthz", 200, Duration::from_millis(70));
        let text = m.render();
        assert!(text.contains(
            "convo_http_requests_total{method=\"GET\",path=\"/healthz\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("le=\"0.1\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
    }
}
