//! The Temporal SDK's meter bridged onto the `metrics` facade, so the SDK's worker and client
//! metrics land in the same Prometheus recorder as convo's own ([`crate::install`]).
//!
//! The SDK creates instruments through a [`CoreMeter`] and binds them to label sets
//! ([`MetricAttributes`]); [`MetricsMeter`] keeps the labels as the SDK's own ordered
//! Prometheus label set and registers one facade series per (name, labels). Durations are
//! recorded in seconds (the SDK's `use_seconds_for_durations`), names keep the SDK's spelling
//! (`temporal_` prefix, no `_total` or unit suffix), as its own Prometheus exporter writes them.

use std::{sync::Arc, time::Duration};

use metrics::{Key, KeyName, Label, Metadata, SharedString, Unit};
use temporalio_common::telemetry::{
    METRIC_PREFIX, TaskQueueLabelStrategy, TelemetryOptions,
    metrics::{
        CoreMeter, Counter, CounterBase, Gauge, GaugeBase, GaugeF64, GaugeF64Base, Histogram,
        HistogramBase, HistogramDuration, HistogramDurationBase, HistogramF64, HistogramF64Base,
        MetricAttributable, MetricAttributes, MetricKeyValue, MetricParameters, NewAttributes,
        OrderedPromLabelSet, TemporalMeter, UpDownCounter, UpDownCounterBase,
    },
};

/// The label the SDK attaches to its metrics by default (`attach_service_name`).
const SERVICE_NAME: &str = "temporal-core-sdk";

/// A [`CoreMeter`] recording into the global `metrics` recorder.
#[derive(Debug, Default, Clone, Copy)]
pub struct MetricsMeter {
    /// Prepended to every name: empty for the runtime (Core adds `temporal_` itself), the
    /// prefix for a client's meter (which Core does not wrap).
    prefix: &'static str,
}

impl MetricsMeter {
    fn name(&self, params: &MetricParameters) -> SharedString {
        if self.prefix.is_empty() {
            SharedString::from(params.name.clone())
        } else {
            SharedString::from(format!("{}{}", self.prefix, params.name))
        }
    }

    fn instrument(&self, params: &MetricParameters, kind: Kind) -> Arc<Instrument> {
        crate::install();
        let name = self.name(params);
        let description = SharedString::from(params.description.clone());
        let unit = (kind == Kind::Duration).then_some(Unit::Seconds);
        let key = KeyName::from(name.clone());
        metrics::with_recorder(|r| match kind {
            Kind::Counter => r.describe_counter(key, unit, description),
            Kind::Gauge => r.describe_gauge(key, unit, description),
            Kind::Histogram | Kind::Duration => r.describe_histogram(key, unit, description),
        });
        Arc::new(Instrument { name })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Duration,
}

/// One SDK instrument: a metric name, bound to label sets on demand.
#[derive(Debug)]
struct Instrument {
    name: SharedString,
}

impl Instrument {
    fn key(&self, attributes: &MetricAttributes) -> Key {
        Key::from_parts(self.name.clone(), labels(attributes))
    }
}

/// The facade labels of the SDK's attributes, in the label set's (sorted) order so that one
/// label set is always one series.
fn labels(attributes: &MetricAttributes) -> Vec<Label> {
    match attributes {
        MetricAttributes::Prometheus { labels } => {
            let values = labels.as_prom_labels();
            labels
                .keys_ordered()
                .filter_map(|k| values.get(k).map(|v| Label::new(k.to_owned(), v.clone())))
                .collect()
        }
        _ => Vec::new(),
    }
}

const METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

fn register<T>(f: impl FnOnce(&dyn metrics::Recorder) -> T) -> T {
    metrics::with_recorder(f)
}

struct BoundCounter(metrics::Counter);
struct BoundGauge(metrics::Gauge);
struct BoundHistogram(metrics::Histogram);

impl CounterBase for BoundCounter {
    fn adds(&self, value: u64) {
        self.0.increment(value);
    }
}

impl GaugeBase for BoundGauge {
    fn records(&self, value: u64) {
        self.0.set(value as f64);
    }
}

impl GaugeF64Base for BoundGauge {
    fn records(&self, value: f64) {
        self.0.set(value);
    }
}

impl UpDownCounterBase for BoundGauge {
    fn adds(&self, value: i64) {
        self.0.increment(value as f64);
    }
}

impl HistogramBase for BoundHistogram {
    fn records(&self, value: u64) {
        self.0.record(value as f64);
    }
}

impl HistogramF64Base for BoundHistogram {
    fn records(&self, value: f64) {
        self.0.record(value);
    }
}

impl HistogramDurationBase for BoundHistogram {
    fn records(&self, value: Duration) {
        self.0.record(value.as_secs_f64());
    }
}

type Bound<B> = Result<Box<B>, Box<dyn std::error::Error>>;

impl MetricAttributable<Box<dyn CounterBase>> for Instrument {
    fn with_attributes(&self, attributes: &MetricAttributes) -> Bound<dyn CounterBase> {
        let key = self.key(attributes);
        Ok(Box::new(BoundCounter(register(|r| r.register_counter(&key, &METADATA)))))
    }
}

macro_rules! gauge_like {
    ($($base:ident),*) => {$(
        impl MetricAttributable<Box<dyn $base>> for Instrument {
            fn with_attributes(&self, attributes: &MetricAttributes) -> Bound<dyn $base> {
                let key = self.key(attributes);
                Ok(Box::new(BoundGauge(register(|r| r.register_gauge(&key, &METADATA)))))
            }
        }
    )*};
}
gauge_like!(GaugeBase, GaugeF64Base, UpDownCounterBase);

macro_rules! histogram_like {
    ($($base:ident),*) => {$(
        impl MetricAttributable<Box<dyn $base>> for Instrument {
            fn with_attributes(&self, attributes: &MetricAttributes) -> Bound<dyn $base> {
                let key = self.key(attributes);
                Ok(Box::new(BoundHistogram(register(|r| r.register_histogram(&key, &METADATA)))))
            }
        }
    )*};
}
histogram_like!(HistogramBase, HistogramF64Base, HistogramDurationBase);

impl CoreMeter for MetricsMeter {
    fn new_attributes(&self, attribs: NewAttributes) -> MetricAttributes {
        MetricAttributes::Prometheus { labels: Arc::new(attribs.into()) }
    }

    fn extend_attributes(
        &self,
        existing: MetricAttributes,
        attribs: NewAttributes,
    ) -> MetricAttributes {
        let mut labels = match existing {
            MetricAttributes::Prometheus { labels } => (*labels).clone(),
            _ => OrderedPromLabelSet::new(),
        };
        for kv in attribs.attributes {
            labels.add_kv(kv);
        }
        MetricAttributes::Prometheus { labels: Arc::new(labels) }
    }

    fn counter(&self, params: MetricParameters) -> Counter {
        Counter::new(self.instrument(&params, Kind::Counter))
    }

    fn histogram(&self, params: MetricParameters) -> Histogram {
        Histogram::new(self.instrument(&params, Kind::Histogram))
    }

    fn histogram_f64(&self, params: MetricParameters) -> HistogramF64 {
        HistogramF64::new(self.instrument(&params, Kind::Histogram))
    }

    fn histogram_duration(&self, mut params: MetricParameters) -> HistogramDuration {
        params.unit = "s".into();
        HistogramDuration::new(self.instrument(&params, Kind::Duration))
    }

    fn gauge(&self, params: MetricParameters) -> Gauge {
        Gauge::new(self.instrument(&params, Kind::Gauge))
    }

    fn gauge_f64(&self, params: MetricParameters) -> GaugeF64 {
        GaugeF64::new(self.instrument(&params, Kind::Gauge))
    }

    fn up_down_counter(&self, params: MetricParameters) -> UpDownCounter {
        UpDownCounter::new(self.instrument(&params, Kind::Gauge))
    }
}

/// The SDK runtime's telemetry: metrics through [`MetricsMeter`] (Core prefixes them with
/// `temporal_` and labels them `service_name`), logging left to the process's subscriber.
pub fn telemetry_options() -> TelemetryOptions {
    crate::install();
    TelemetryOptions::builder()
        .metrics(Arc::new(MetricsMeter::default()) as Arc<dyn CoreMeter>)
        .build()
}

/// The meter of a Temporal client (`temporal_request`, `temporal_request_failure`,
/// `temporal_long_request`, ...), labelled as the runtime's are.
pub fn client_meter() -> TemporalMeter {
    crate::install();
    TemporalMeter::new(
        Arc::new(MetricsMeter { prefix: METRIC_PREFIX }),
        NewAttributes::new(vec![MetricKeyValue::new("service_name", SERVICE_NAME)]),
        TaskQueueLabelStrategy::UseNormal,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(meter: &dyn CoreMeter, queue: &str) -> MetricAttributes {
        let base = meter.new_attributes(NewAttributes::new(vec![MetricKeyValue::new(
            "task_queue",
            queue.to_owned(),
        )]));
        meter.extend_attributes(base, vec![MetricKeyValue::new("worker_type", "unit")].into())
    }

    #[tokio::test]
    async fn sdk_instruments_render_with_their_labels_in_seconds() {
        let meter = MetricsMeter::default();
        let attrs = attributes(&meter, "unit-tq");
        let counter = meter.counter(MetricParameters::from("unit_polls"));
        counter.add(2, &attrs);
        counter.add(1, &attrs);
        let slots = meter.gauge(MetricParameters::from("unit_slots"));
        slots.record(7, &attrs);
        let latency = meter.histogram_duration(MetricParameters::from("unit_latency"));
        latency.record(Duration::from_millis(250), &attrs);
        let up_down = meter.up_down_counter(MetricParameters::from("unit_in_flight"));
        up_down.add(3, &attrs);
        up_down.add(-1, &attrs);
        let client = client_meter();
        let requests = client.counter(MetricParameters::from("unit_request"));
        requests.add(1, client.get_default_attributes());

        let text = crate::render().await;
        let labels = "task_queue=\"unit-tq\",worker_type=\"unit\"";
        for line in [
            format!("unit_polls{{{labels}}} 3"),
            format!("unit_slots{{{labels}}} 7"),
            format!("unit_in_flight{{{labels}}} 2"),
            format!("unit_latency_sum{{{labels}}} 0.25"),
            format!("unit_latency_count{{{labels}}} 1"),
            "temporal_unit_request{service_name=\"temporal-core-sdk\"} 1".to_owned(),
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
