//! The HTTP API's metrics: request counts and latency histograms per route, recorded through
//! the `metrics` facade into the process's Prometheus recorder
//! ([`convo_metrics`]), which `/metrics` renders along with everything else the
//! process records (gRPC calls, the Temporal client's requests; in `convo serve` the worker's
//! SDK and business metrics too). Routes are the matched templates (`/v1/conversations/{id}`),
//! so the label sets stay bounded whatever ids clients send.

use std::time::Duration;

use convo_metrics::{HTTP_REQUEST_DURATION, HTTP_REQUESTS, IDEMPOTENT_REPLAYS, install, render};
use metrics::{counter, histogram};

/// The HTTP metrics of one router: a handle on the process-wide recorder.
#[derive(Debug)]
pub struct Metrics {
    _private: (),
}

impl Default for Metrics {
    fn default() -> Self {
        install();
        // Present (at 0) from the start, as a counter that has never moved.
        counter!(IDEMPOTENT_REPLAYS).absolute(0);
        Self { _private: () }
    }
}

impl Metrics {
    /// Counts one request and its latency.
    pub fn record(&self, method: &str, path: &str, status: u16, elapsed: Duration) {
        let (method, path) = (method.to_owned(), path.to_owned());
        counter!(HTTP_REQUESTS, "method" => method.clone(), "path" => path.clone(),
            "status" => status.to_string())
        .increment(1);
        histogram!(HTTP_REQUEST_DURATION, "method" => method, "path" => path)
            .record(elapsed.as_secs_f64());
    }

    /// Counts a response replayed for a repeated Idempotency-Key.
    pub fn idempotent_replay(&self) {
        counter!(IDEMPOTENT_REPLAYS).increment(1);
    }

    /// Everything the process records, in the text exposition format
    /// (`text/plain; version=0.0.4`).
    pub async fn render(&self) -> String {
        render().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        // A route no other test records, since the recorder is the process's.
        let path = "/unit-test/{id}";
        m.record("GET", path, 200, Duration::from_millis(3));
        m.record("GET", path, 200, Duration::from_millis(70));
        let text = m.render().await;
        let series = |suffix: &str| {
            text.lines()
                .find(|l| l.contains(path) && l.contains(suffix))
                .map(str::to_owned)
                .unwrap_or_else(|| panic!("no {suffix} line for {path} in\n{text}"))
        };
        assert!(
            text.contains(
                "convo_http_requests_total{method=\"GET\",path=\"/unit-test/{id}\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(series("le=\"0.005\"").ends_with(" 1"));
        assert!(series("le=\"0.1\"").ends_with(" 2"));
        assert!(series("le=\"+Inf\"").ends_with(" 2"));
        assert!(text.contains("# TYPE convo_http_request_duration_seconds histogram"), "{text}");
        assert!(text.contains("convo_idempotent_replays_total"), "{text}");
    }
}
