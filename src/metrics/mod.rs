//! Prometheus metrics: counters and histograms the request path updates, and gauges
//! read from the broker's state at each scrape (`broker::collector`), encoded by
//! `prometheus-client` (OpenMetrics text) and served over HTTP on `metrics.listener`
//! ([`http`]).
//!
//! Names follow Prometheus conventions: `ferrolog_` prefix, `_total` on counters (added
//! by the encoder), `_seconds` and `_bytes` units, `topic`/`partition` labels.

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
pub struct ErrorLabels {
    pub api: &'static str,
    pub code: i16,
    pub error: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: String,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuotaLabels {
    quota: &'static str,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WaitLabels {
    kind: WaitKind,
}

/// What a waiting request waits for.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelValue)]
pub enum WaitKind {
    /// A fetch waiting for `min_bytes` (long poll).
    Fetch,
    /// An acks=all produce waiting for replication.
    Produce,
}

/// Counts a request as waiting for as long as it lives.
pub struct Waiting(Option<Gauge>);

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(gauge) = &self.0 {
            gauge.dec();
        }
    }
}

/// One topic's traffic counters, shared with their families.
#[derive(Clone)]
struct TopicCounters {
    bytes_in: Counter,
    records_in: Counter,
    bytes_out: Counter,
    records_out: Counter,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs to about 52 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 21))
}

/// The broker's metrics. Disabled (no `metrics.listener`), the request path counts
/// nothing.
pub struct Metrics {
    enabled: bool,
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    request_seconds: HistogramFamily<ApiLabels>,
    errors: Family<ErrorLabels, Counter>,
    bytes_in: Family<TopicLabels, Counter>,
    records_in: Family<TopicLabels, Counter>,
    bytes_out: Family<TopicLabels, Counter>,
    records_out: Family<TopicLabels, Counter>,
    connections: Gauge,
    connections_accepted: Counter,
    isr_shrinks: Counter,
    isr_expands: Counter,
    throttle_ms: Family<QuotaLabels, Counter>,
    throttled: Family<QuotaLabels, Counter>,
    waiting: Family<WaitLabels, Gauge>,
    cleaner_read_bytes: Counter,
    cleaner_written_bytes: Counter,
    cleaner_passes: Counter,
    cleaner_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    /// The families' counters by topic name, so the produce and fetch paths find them
    /// without building a label (a String) per batch.
    topics: parking_lot::RwLock<std::collections::HashMap<String, TopicCounters>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(true)
    }
}

impl Metrics {
    pub fn new(enabled: bool) -> Self {
        let metrics = Metrics {
            enabled,
            registry: Mutex::new(Registry::with_prefix("ferrolog")),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_histogram),
            errors: Family::default(),
            bytes_in: Family::default(),
            records_in: Family::default(),
            bytes_out: Family::default(),
            records_out: Family::default(),
            connections: Gauge::default(),
            connections_accepted: Counter::default(),
            isr_shrinks: Counter::default(),
            isr_expands: Counter::default(),
            throttle_ms: Family::default(),
            throttled: Family::default(),
            waiting: Family::default(),
            cleaner_read_bytes: Counter::default(),
            cleaner_written_bytes: Counter::default(),
            cleaner_passes: Counter::default(),
            cleaner_seconds: Counter::default(),
            topics: Default::default(),
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
                "request_errors",
                "Error codes in responses (NONE not counted), by API and code",
                metrics.errors.clone(),
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
                "topic_records_out",
                "Records in the batches sent to consumers, by topic",
                metrics.records_out.clone(),
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
            registry.register(
                "waiting_requests",
                "Requests waiting: fetches for data (long poll), acks=all produces for replication",
                metrics.waiting.clone(),
            );
            registry.register(
                "quota_throttle_time_ms",
                "Throttle time given to clients over a quota, by quota (produce, fetch, request, controller_mutation) and replication throttle (leader, follower)",
                metrics.throttle_ms.clone(),
            );
            registry.register(
                "quota_throttled",
                "Responses throttled by a client quota, or replica fetches held back by a replication throttle",
                metrics.throttled.clone(),
            );
            registry.register(
                "isr_shrinks",
                "ISR shrinks of partitions led here",
                metrics.isr_shrinks.clone(),
            );
            registry.register(
                "isr_expands",
                "ISR expansions of partitions led here",
                metrics.isr_expands.clone(),
            );
            registry.register_with_unit(
                "log_cleaner_read",
                "Log bytes the cleaner read (key map and rewrite)",
                prometheus_client::registry::Unit::Bytes,
                metrics.cleaner_read_bytes.clone(),
            );
            registry.register_with_unit(
                "log_cleaner_written",
                "Log bytes the cleaner wrote as cleaned segments",
                prometheus_client::registry::Unit::Bytes,
                metrics.cleaner_written_bytes.clone(),
            );
            registry.register(
                "log_cleaner_passes",
                "Cleaning passes completed over compacted logs",
                metrics.cleaner_passes.clone(),
            );
            registry.register_with_unit(
                "log_cleaner",
                "Time the cleaner spent in completed passes",
                prometheus_client::registry::Unit::Seconds,
                metrics.cleaner_seconds.clone(),
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
        if !self.enabled {
            return;
        }
        self.requests.get_or_create(&RequestLabels { api, version }).inc();
        self.request_seconds
            .get_or_create(&ApiLabels { api })
            .observe(elapsed.as_secs_f64());
    }

    /// A producer's append.
    pub fn produced(&self, topic: &str, bytes: u64, records: u64) {
        if !self.enabled {
            return;
        }
        let counters = self.topic(topic);
        counters.bytes_in.inc_by(bytes);
        counters.records_in.inc_by(records);
    }

    /// A topic's counters: looked up by name, created in the families on first use.
    fn topic(&self, topic: &str) -> TopicCounters {
        if let Some(counters) = self.topics.read().get(topic) {
            return counters.clone();
        }
        let labels = TopicLabels {
            topic: topic.to_string(),
        };
        let counters = TopicCounters {
            bytes_in: self.bytes_in.get_or_create(&labels).clone(),
            records_in: self.records_in.get_or_create(&labels).clone(),
            bytes_out: self.bytes_out.get_or_create(&labels).clone(),
            records_out: self.records_out.get_or_create(&labels).clone(),
        };
        self.topics
            .write()
            .entry(labels.topic)
            .or_insert(counters)
            .clone()
    }

    /// Record data sent to a consumer.
    pub fn consumed(&self, topic: &str, bytes: u64, records: u64) {
        if !self.enabled {
            return;
        }
        let counters = self.topic(topic);
        counters.bytes_out.inc_by(bytes);
        counters.records_out.inc_by(records);
    }

    /// The error codes of one response, which `walk` hands to its callback; NONE is
    /// not counted.
    pub fn response_errors(&self, api: &'static str, walk: impl FnOnce(&mut dyn FnMut(i16))) {
        if !self.enabled {
            return;
        }
        walk(&mut |code| {
            if code != 0 {
                let error = crate::common::error_code::error_name(code);
                self.errors.get_or_create(&ErrorLabels { api, code, error }).inc();
            }
        });
    }

    /// Counts a request as waiting until the guard drops.
    pub fn waiting(&self, kind: WaitKind) -> Waiting {
        if !self.enabled {
            return Waiting(None);
        }
        // A family's gauge clones share one value.
        let gauge = self.waiting.get_or_create(&WaitLabels { kind }).clone();
        gauge.inc();
        Waiting(Some(gauge))
    }

    /// A completed cleaning pass. Counted even without a listener: the cleaner is not
    /// on the request path.
    pub fn cleaned(&self, read: u64, written: u64, elapsed: std::time::Duration) {
        self.cleaner_read_bytes.inc_by(read);
        self.cleaner_written_bytes.inc_by(written);
        self.cleaner_passes.inc();
        self.cleaner_seconds.inc_by(elapsed.as_secs_f64());
    }

    /// A committed ISR change of a partition this broker leads.
    /// A client (or replica fetch) throttled under `quota` for `ms`.
    pub fn throttled(&self, quota: &'static str, ms: u64) {
        if !self.enabled {
            return;
        }
        let labels = QuotaLabels { quota };
        self.throttled.get_or_create(&labels).inc();
        self.throttle_ms.get_or_create(&labels).inc_by(ms);
    }

    pub fn isr_changed(&self, expanded: bool) {
        if !self.enabled {
            return;
        }
        if expanded {
            self.isr_expands.inc();
        } else {
            self.isr_shrinks.inc();
        }
    }

    pub fn connection_opened(&self) {
        if !self.enabled {
            return;
        }
        self.connections.inc();
        self.connections_accepted.inc();
    }

    pub fn connection_closed(&self) {
        if !self.enabled {
            return;
        }
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
        let metrics = Metrics::new(true);
        metrics.request("Produce", 9, std::time::Duration::from_millis(3));
        metrics.request("Produce", 9, std::time::Duration::from_millis(1));
        metrics.produced("orders", 1000, 10);
        metrics.consumed("orders", 700, 7);
        metrics.response_errors("Fetch", |emit| {
            emit(0);
            emit(6);
            emit(6);
        });
        metrics.connection_opened();
        metrics.isr_changed(false);
        let waiting = metrics.waiting(WaitKind::Fetch);
        assert!(
            metrics
                .render()
                .contains("ferrolog_waiting_requests{kind=\"Fetch\"} 1")
        );
        drop(waiting);
        let text = metrics.render();
        assert!(
            text.contains("ferrolog_waiting_requests{kind=\"Fetch\"} 0"),
            "{text}"
        );
        assert!(text.contains("ferrolog_isr_shrinks_total 1"), "{text}");
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
        assert!(
            text.contains("ferrolog_topic_records_out_total{topic=\"orders\"} 7"),
            "{text}"
        );
        assert!(
            text.contains(
                "ferrolog_request_errors_total{api=\"Fetch\",code=\"6\",error=\"NOT_LEADER_OR_FOLLOWER\"} 2"
            ),
            "{text}"
        );
        assert!(!text.contains("code=\"0\""), "{text}");
        assert!(text.contains("ferrolog_connections 1"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        // Disabled, nothing is counted.
        let off = Metrics::new(false);
        off.produced("orders", 1000, 10);
        off.request("Produce", 9, std::time::Duration::from_millis(3));
        assert!(!off.render().contains("orders"));
        assert!(!off.render().contains("Produce"));
    }
}
