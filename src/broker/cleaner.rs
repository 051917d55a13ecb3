//! The log cleaner: one task per log dir compacts the logs of topics whose
//! `cleanup.policy` includes `compact` (`__consumer_offsets` among them), the dirtiest
//! due log first, one pass at a time on a blocking thread (`log::partition_log::clean`).
//!
//! Where each log's last pass ended is kept in the log dir's
//! `cleaner-offset-checkpoint` (Kafka's name and format), so a restart does not clean
//! everything again. A log whose kept tombstones reach the end of `delete.retention.ms`
//! is due again then, even with nothing dirty. Reads and writes together stay under
//! `log.cleaner.io.max.bytes.per.second` per log dir.

use super::Broker;
use crate::common::now_ms;
use crate::log::TopicPartition;
use crate::log::checkpoint;
use crate::log::compaction::Throttle;
use crate::log::partition_log::clean::PassSettings;
use crate::replication::Partition;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

const CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// One log dir's cleaner state.
struct DirCleaner {
    log_dir: PathBuf,
    /// Where each log's last pass ended.
    cleaned_to: HashMap<TopicPartition, i64>,
    /// When a log's earliest kept tombstone expires.
    tombstones_expire_at: HashMap<TopicPartition, i64>,
}

/// Runs the cleaner of `log_dir` until the broker goes.
pub(super) async fn run(broker: Weak<Broker>, log_dir: PathBuf) {
    let cleaned_to = checkpoint::read(&log_dir.join(CHECKPOINT_FILE))
        .into_iter()
        .map(|((topic, partition), offset)| (TopicPartition::new(topic, partition), offset))
        .collect();
    let mut state = DirCleaner {
        log_dir,
        cleaned_to,
        tombstones_expire_at: HashMap::new(),
    };
    loop {
        let Some(strong) = broker.upgrade() else { return };
        let backoff = Duration::from_millis(strong.config.cleaner.backoff_ms);
        let outcome = tokio::task::spawn_blocking(move || {
            let cleaned = state.clean_dirtiest(&strong);
            (state, cleaned)
        })
        .await;
        let Ok((returned, cleaned)) = outcome else { return };
        state = returned;
        if !cleaned {
            tokio::time::sleep(backoff).await;
        }
    }
}

impl DirCleaner {
    /// Cleans the dirtiest due log of this dir; false when none was due.
    fn clean_dirtiest(&mut self, broker: &Broker) -> bool {
        let now = now_ms();
        let mut best: Option<(f64, Arc<Partition>, PassSettings)> = None;
        for partition in broker.replicas.all_partitions() {
            let topic_partition = &partition.topic_partition;
            let settings = PassSettings {
                checkpoint: self.cleaned_to.get(topic_partition).copied(),
                force: self
                    .tombstones_expire_at
                    .get(topic_partition)
                    .is_some_and(|at| *at <= now),
                dedupe_buffer_size: broker.config.cleaner.dedupe_buffer_size,
                now_ms: now,
                stop_after: None,
            };
            let ratio = partition.with_log(|log| {
                if log.dir().parent() != Some(self.log_dir.as_path()) {
                    return None;
                }
                if let Err(error) = log.roll_if_old(now) {
                    tracing::warn!(%topic_partition, %error, "rolling a compacted log failed");
                }
                let source = log.clean_source(settings.checkpoint, now, settings.force)?;
                Some(source.cleanable.dirty_ratio())
            });
            if let Some(ratio) = ratio
                && best.as_ref().is_none_or(|(best_ratio, _, _)| ratio > *best_ratio)
            {
                best = Some((ratio, partition, settings));
            }
        }
        let Some((_, partition, settings)) = best else {
            return false;
        };
        let topic_partition = partition.topic_partition.clone();
        let started = Instant::now();
        let mut throttle = Throttle::new(broker.config.cleaner.io_max_bytes_per_second);
        match partition.clean(settings, &mut throttle) {
            Ok(Some(result)) => {
                let elapsed = started.elapsed();
                broker
                    .metrics
                    .cleaned(result.stats.bytes_read, result.stats.bytes_written, elapsed);
                self.cleaned_to.insert(topic_partition.clone(), result.cleaned_to);
                match result.stats.tombstones_expire_at {
                    Some(at) => self.tombstones_expire_at.insert(topic_partition.clone(), at),
                    None => self.tombstones_expire_at.remove(&topic_partition),
                };
                const MB: f64 = 1_048_576.0;
                tracing::info!(
                    %topic_partition,
                    cleaned_to = result.cleaned_to,
                    groups = result.groups,
                    keys = result.stats.keys,
                    records = format!("{} of {}", result.stats.records_kept, result.stats.records_read),
                    "cleaned: {:.1} MB read, {:.1} MB written in {:.2} s ({:.1} MB/s)",
                    result.stats.bytes_read as f64 / MB,
                    result.stats.bytes_written as f64 / MB,
                    elapsed.as_secs_f64(),
                    result.stats.bytes_read as f64 / MB / elapsed.as_secs_f64().max(1e-6),
                );
                self.write_checkpoint(broker);
                true
            }
            // The log changed under the pass; the next one starts over.
            Ok(None) => false,
            Err(error) => {
                tracing::error!(%topic_partition, %error, "cleaning failed");
                if error.is_fatal() {
                    partition.with_log(|log| log.fail_dir());
                }
                self.tombstones_expire_at.remove(&topic_partition);
                false
            }
        }
    }

    /// Writes the checkpoint of the logs still in this dir.
    fn write_checkpoint(&mut self, broker: &Broker) {
        let here: Vec<TopicPartition> = broker
            .replicas
            .all_partitions()
            .iter()
            .filter(|partition| partition.with_log(|log| log.dir().parent() == Some(self.log_dir.as_path())))
            .map(|partition| partition.topic_partition.clone())
            .collect();
        self.cleaned_to
            .retain(|topic_partition, _| here.contains(topic_partition));
        let entries: Vec<(String, i32, i64)> = self
            .cleaned_to
            .iter()
            .map(|(topic_partition, offset)| {
                (topic_partition.topic.clone(), topic_partition.partition, *offset)
            })
            .collect();
        if let Err(error) = checkpoint::write(&self.log_dir.join(CHECKPOINT_FILE), &entries) {
            tracing::warn!(log_dir = %self.log_dir.display(), %error, "writing the cleaner checkpoint failed");
        }
    }
}

/// Starts a cleaner for each log dir, unless `log.cleaner.enable` is false.
pub(super) fn spawn(broker: &Arc<Broker>, log_dirs: &[PathBuf]) {
    if !broker.config.cleaner.enable {
        return;
    }
    for log_dir in log_dirs {
        tokio::spawn(run(Arc::downgrade(broker), log_dir.clone()));
    }
}
