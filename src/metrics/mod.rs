//! Prometheus metrics: counters and histograms the request path updates, and gauges
//! read from the broker's state at each scrape ([`collector`]), encoded by
//! `prometheus-client` (OpenMetrics text) and served over HTTP on `metrics.listener`
//! ([`http`]).
//!
//! Names follow Prometheus conventions: `ferrolog_` prefix, `_total` on counters (added
//! by the encoder), `_seconds` and `_bytes` units, `topic`/`partition` labels.

pub mod collector;
pub mod http;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub api: &'static str,
    pub version: i16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub api: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs to about 52 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 21))
}

/// The broker's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    request_seconds: HistogramFamily<ApiLabels>,
    bytes_in: Family<TopicLabels, Counter>,
    records_in: Family<TopicLabels, Counter>,
    bytes_out: Family<TopicLabels, Counter>,
    connections: Gauge,
    connections_accepted: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let metrics = Metrics {
            registry: Mutex::new(Registry::with_prefix("ferrolog")),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_histogram),
            bytes_in: Family::default(),
            records_in: Family::default(),
            bytes_out: Family::default(),
            connections: Gauge::default(),
            connections_accepted: Counter::default(),
        };
        {
            let mut registry = metrics.registry.lock();
            registry.register(
                "requests",
                "Requests served, by API and version",
                metrics.requests.clone(),
            );
            registry.register(
                "request_duration_seconds",
                "Time from a request's arrival to its answer leaving, by API",
                metrics.request_seconds.clone(),
            );
            registry.register(
                "topic_bytes_in",
                "Record batch bytes appended by producers, by topic",
                metrics.bytes_in.clone(),
            );
            registry.register(
                "topic_records_in",
                "Records appended by producers, by topic",
                metrics.records_in.clone(),
            );
            registry.register(
                "topic_bytes_out",
                "Record batch bytes sent to consumers, by topic",
                metrics.bytes_out.clone(),
            );
            registry.register(
                "connections",
                "Open client connections",
                metrics.connections.clone(),
            );
            registry.register(
                "connections_accepted",
                "Client connections accepted",
                metrics.connections_accepted.clone(),
            );
        }
        metrics
    }

    /// Adds a collector read at every scrape.
    pub fn register_collector(&self, collector: Box<dyn prometheus_client::collector::Collector>) {
        self.registry.lock().register_collector(collector);
    }

    /// One answered request.
    pub fn request(&self, api: &'static str, version: i16, elapsed: std::time::Duration) {
        self.requests.get_or_create(&RequestLabels { api, version }).inc();
        self.request_seconds
            .get_or_create(&ApiLabels { api })
            .observe(elapsed.as_secs_f64());
    }

    /// A producer's append.
    pub fn produced(&self, topic: &str, bytes: u64, records: u64) {
        let labels = TopicLabels {
            topic: topic.to_string(),
        };
        self.bytes_in.get_or_create(&labels).inc_by(bytes);
        self.records_in.get_or_create(&labels).inc_by(records);
    }

    /// Record data sent to a consumer.
    pub fn consumed(&self, topic: &str, bytes: u64) {
        self.bytes_out
            .get_or_create(&TopicLabels {
                topic: topic.to_string(),
            })
            .inc_by(bytes);
    }

    pub fn connection_opened(&self) {
        self.connections.inc();
        self.connections_accepted.inc();
    }

    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    /// The exposition text (OpenMetrics).
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry.lock()) {
            tracing::warn!(%error, "cannot encode metrics");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_with_prometheus_names() {
        let metrics = Metrics::new();
        metrics.request("Produce", 9, std::time::Duration::from_millis(3));
        metrics.request("Produce", 9, std::time::Duration::from_millis(1));
        metrics.produced("orders", 1000, 10);
        metrics.consumed("orders", 700);
        metrics.connection_opened();
        let text = metrics.render();
        assert!(
            text.contains("ferrolog_requests_total{api=\"Produce\",version=\"9\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("ferrolog_request_duration_seconds_count{api=\"Produce\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("ferrolog_topic_bytes_in_total{topic=\"orders\"} 1000"),
            "{text}"
        );
        assert!(
            text.contains("ferrolog_topic_records_in_total{topic=\"orders\"} 10"),
            "{text}"
        );
        assert!(
            text.contains("ferrolog_topic_bytes_out_total{topic=\"orders\"} 700"),
            "{text}"
        );
        assert!(text.contains("ferrolog_connections 1"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
