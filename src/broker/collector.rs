//! Gauges read from the broker at each scrape: per-partition log sizes and offsets,
//! partition health, consumer-group lag, the active controller, fetch sessions, and the
//! process's CPU, memory and open files.

use crate::broker::Broker;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::sync::Weak;

/// Reads the broker's state at each scrape.
pub struct BrokerCollector {
    pub broker: Weak<Broker>,
}

impl std::fmt::Debug for BrokerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerCollector").finish_non_exhaustive()
    }
}

type Labels = Vec<(&'static str, String)>;
/// Gauge rows: labels and value.
type Rows = Vec<(Labels, i64)>;

fn partition_labels(topic: &str, partition: i32) -> Labels {
    vec![("topic", topic.to_string()), ("partition", partition.to_string())]
}

fn gauges<L: EncodeLabelSet, V: EncodeGaugeValue + Copy>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &'static str,
    help: &str,
    rows: &[(L, V)],
) -> std::fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        ConstGauge::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge<V: EncodeGaugeValue + Copy>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &'static str,
    help: &str,
    value: V,
) -> std::fmt::Result {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(metric)
}

/// What one scrape reads of the local partitions.
#[derive(Default)]
struct PartitionRows {
    size: Vec<(Labels, u64)>,
    segments: Vec<(Labels, u64)>,
    start: Vec<(Labels, i64)>,
    end: Vec<(Labels, i64)>,
    high_watermark: Vec<(Labels, i64)>,
    leader: Vec<(Labels, i64)>,
    under_replicated: i64,
    under_min_isr: i64,
}

fn partition_rows(broker: &Broker) -> PartitionRows {
    let mut rows = PartitionRows::default();
    for partition in broker.replicas.all_partitions() {
        let tp = &partition.topic_partition;
        let labels = partition_labels(&tp.topic, tp.partition);
        let state = partition.state();
        let leads = partition.is_leader();
        let (size, segments, start, end, high_watermark, min_isr) = partition.with_log(|log| {
            (
                log.size_bytes(),
                log.n_segments() as u64,
                log.log_start_offset(),
                log.log_end_offset(),
                log.high_watermark(),
                log.config().min_insync_replicas,
            )
        });
        if leads {
            rows.under_replicated += i64::from(state.isr.len() < state.replicas.len());
            rows.under_min_isr += i64::from((state.isr.len() as i32) < min_isr);
        }
        rows.size.push((labels.clone(), size));
        rows.segments.push((labels.clone(), segments));
        rows.start.push((labels.clone(), start));
        rows.end.push((labels.clone(), end));
        rows.high_watermark.push((labels.clone(), high_watermark));
        rows.leader.push((labels, i64::from(leads)));
    }
    rows
}

/// Each share-partition led here: its start offset and its in-flight records by state.
fn share_rows(broker: &Broker) -> (Rows, Rows) {
    let image = broker.image();
    let (mut starts, mut records) = (Vec::new(), Vec::new());
    for counts in broker.groups.shares.counts() {
        let (group, topic_id, partition) = &counts.key;
        let Some(topic) = image.topic_by_id(*topic_id) else {
            continue;
        };
        let mut labels = vec![("group", group.clone())];
        labels.extend(partition_labels(&topic.name, *partition));
        starts.push((labels.clone(), counts.start_offset));
        for (state, n) in [
            ("available", counts.available),
            ("acquired", counts.acquired),
            ("archived", counts.archived),
        ] {
            let mut labels = labels.clone();
            labels.push(("state", state.to_string()));
            records.push((labels, n as i64));
        }
    }
    (starts, records)
}

/// Lag of each group's committed offset behind the high watermark, for the
/// partitions this broker leads.
fn group_lag(broker: &Broker) -> Vec<(Labels, i64)> {
    let mut rows = Vec::new();
    for group in broker
        .groups
        .list_groups()
        .into_iter()
        .map(|listed| listed.group_id)
    {
        for (topic, partitions) in broker.groups.fetch_offsets(&group, None) {
            for (index, committed) in partitions {
                let Some(committed) = committed else { continue };
                let tp = crate::log::TopicPartition::new(&topic, index);
                let Some(partition) = broker
                    .replicas
                    .partition(&tp)
                    .filter(|partition| partition.is_leader())
                else {
                    continue;
                };
                let high_watermark = partition.with_log(|log| log.high_watermark());
                let mut labels = vec![("group", group.clone())];
                labels.extend(partition_labels(&topic, index));
                rows.push((labels, (high_watermark - committed.offset).max(0)));
            }
        }
    }
    rows
}

/// (CPU seconds, resident bytes, open files) of this process, from /proc.
fn process_usage() -> Option<(f64, i64, i64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15, rss 24 (1-based).
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let rss_pages: i64 = fields.get(21)?.parse().ok()?;
    // SAFETY: sysconf only reads system constants.
    let (tick_rate, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let open_files = std::fs::read_dir("/proc/self/fd").ok()?.count() as i64;
    Some((ticks / tick_rate.max(1) as f64, rss_pages * page_size, open_files))
}

impl prometheus_client::collector::Collector for BrokerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let Some(broker) = self.broker.upgrade() else {
            return Ok(());
        };
        let rows = partition_rows(&broker);
        let encoder = &mut encoder;
        gauges(
            encoder,
            "partition_log_size_bytes",
            "Bytes of a local partition's log segments",
            &rows.size,
        )?;
        gauges(
            encoder,
            "partition_log_segments",
            "Segments of a local partition's log",
            &rows.segments,
        )?;
        gauges(
            encoder,
            "partition_log_start_offset",
            "First offset of a local partition's log",
            &rows.start,
        )?;
        gauges(
            encoder,
            "partition_log_end_offset",
            "Offset after the last record of a local partition",
            &rows.end,
        )?;
        gauges(
            encoder,
            "partition_high_watermark",
            "High watermark of a local partition",
            &rows.high_watermark,
        )?;
        gauges(
            encoder,
            "partition_leader",
            "1 where this broker leads the partition",
            &rows.leader,
        )?;
        gauge(
            encoder,
            "under_replicated_partitions",
            "Partitions led here whose ISR is smaller than their replica set",
            rows.under_replicated,
        )?;
        gauge(
            encoder,
            "under_min_isr_partitions",
            "Partitions led here whose ISR is smaller than min.insync.replicas",
            rows.under_min_isr,
        )?;
        let image = broker.image();
        let offline = image
            .topics
            .values()
            .flat_map(|topic| topic.partitions.iter())
            .filter(|partition| partition.leader == crate::cluster::image::NO_LEADER)
            .count() as i64;
        gauge(
            encoder,
            "offline_partitions",
            "Partitions of the cluster without a leader",
            offline,
        )?;
        let active = broker
            .local_controller()
            .is_some_and(|controller| controller.is_active());
        gauge(
            encoder,
            "active_controller",
            "1 where this node is the active controller",
            i64::from(active),
        )?;
        let listed = broker.groups.list_groups();
        let labels = |group: &crate::group::coordinator::ListedGroup| {
            vec![
                ("group", group.group_id.clone()),
                ("type", group.group_type.to_string()),
            ]
        };
        let members: Vec<(Labels, i64)> = listed
            .iter()
            .map(|group| (labels(group), group.n_members as i64))
            .collect();
        let epochs: Vec<(Labels, i64)> = listed
            .iter()
            .map(|group| (labels(group), i64::from(group.epoch)))
            .collect();
        gauges(
            encoder,
            "consumer_group_members",
            "Members of each group this broker coordinates, by type (classic or consumer)",
            &members,
        )?;
        gauges(
            encoder,
            "consumer_group_epoch",
            "The generation (classic) or group epoch (consumer) of each group coordinated here",
            &epochs,
        )?;
        let (share_starts, share_records) = share_rows(&broker);
        gauges(
            encoder,
            "share_partition_start_offset",
            "Each share-partition's start offset (records below it are done), for partitions led here",
            &share_starts,
        )?;
        gauges(
            encoder,
            "share_partition_records",
            "A share-partition's in-flight records by state: available, acquired or archived",
            &share_records,
        )?;
        gauges(
            encoder,
            "consumer_group_lag",
            "Records between a group's committed offset and the high watermark, for partitions led here",
            &group_lag(&broker),
        )?;
        let (flushes, files, bytes, seconds) = crate::log::flush_stats::totals();
        for (name, help, value) in [
            (
                "log_flushes",
                "Log flushes (group commits): each makes a partition's appends durable",
                flushes as f64,
            ),
            (
                "log_flush_fsyncs",
                "Files and directories fsynced by log flushes",
                files as f64,
            ),
            (
                "log_flushed_bytes",
                "Log bytes made durable by log flushes",
                bytes as f64,
            ),
            ("log_flush_seconds", "Time spent in log flushes", seconds),
        ] {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(metric)?;
        }
        if let Some((cpu_seconds, resident_bytes, open_files)) = process_usage() {
            let metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                "CPU time of the broker process",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(cpu_seconds).encode(metric)?;
            gauge(
                encoder,
                "process_resident_memory_bytes",
                "Resident memory of the broker process",
                resident_bytes,
            )?;
            gauge(
                encoder,
                "process_open_fds",
                "Open file descriptors of the broker process",
                open_files,
            )?;
        }
        Ok(())
    }
}
