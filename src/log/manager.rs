//! The set of log dirs (`log.dirs`): finding, creating and placing partition logs,
//! the recovery-point checkpoints and the clean-shutdown marker.
//!
//! Each log dir holds `<topic>-<partition>/` directories, a
//! `recovery-point-offset-checkpoint`, a `log-start-offset-checkpoint` (starts raised
//! by DeleteRecords inside a segment) and, only after a clean shutdown, a
//! `.kafka_cleanshutdown` marker holding the broker epoch the shutdown ended (Kafka's
//! `{"version":0,"broker_epoch":N}`), which the next start reports to the controller
//! (KIP-966). The marker is removed, durably, as soon as the logs are loaded, so a
//! crash or power cut afterwards is always seen as unclean. The first log dir also holds the
//! metadata quorum's `__cluster_metadata-0/`, which is not a partition log.

use super::checkpoint;
use super::parallel;
use super::partition_log::{PartitionLog, move_dir};
use super::recovery_progress::{RecoveryProgress, Report};
use super::segment::RecoveryReport;
use super::{LogError, TopicPartition};
use crate::log::LogConfig;
use std::path::{Path, PathBuf};

const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";

/// The metadata quorum's directory (as KRaft names it). It looks like a partition
/// directory but is not one: loading and placement pass it over.
pub const METADATA_DIR: &str = "__cluster_metadata-0";

/// A partition directory's topic and partition, or None for anything else.
fn partition_dir(name: &str) -> Option<TopicPartition> {
    (name != METADATA_DIR)
        .then(|| TopicPartition::from_dir_name(name))
        .flatten()
}
const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
const LOG_START_FILE: &str = "log-start-offset-checkpoint";

pub struct LogManager {
    log_dirs: Vec<PathBuf>,
    /// One checkpoint writer at a time (they share temporary file names).
    writing: parking_lot::Mutex<()>,
    /// Partitions per log dir as last counted, with the time of the count: placing a
    /// partition must not list every log dir each time (creating many partitions would
    /// cost the square of their number).
    dir_counts: parking_lot::Mutex<Option<(std::time::Instant, Vec<usize>)>>,
}

/// How long a count of partitions per log dir is trusted (creations in between are
/// added to it; removals are seen at the next count).
const DIR_COUNT_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// How often loading a log dir logs its progress.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Bytes of a partition directory's segment files.
fn segment_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "log"))
                .filter_map(|entry| entry.metadata().ok())
                .map(|metadata| metadata.len())
                .sum()
        })
        .unwrap_or(0)
}

fn log_progress(log_dir: &str, report: &Report) {
    const MB: f64 = 1_048_576.0;
    let left = report
        .seconds_left
        .map_or_else(|| "unknown".to_string(), |seconds| format!("{seconds:.0} s"));
    tracing::info!(
        %log_dir,
        "loading: {}/{} partitions, {:.1} of {:.1} MB checked, {:.1} MB/s, time left {left}",
        report.done_partitions,
        report.total_partitions,
        report.done_bytes as f64 / MB,
        report.total_bytes as f64 / MB,
        report.bytes_per_second / MB,
    );
}

/// The broker epoch in a clean-shutdown marker, if it holds one.
fn marker_epoch(path: &Path) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Marker {
        broker_epoch: i64,
    }
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str::<Marker>(&text)
        .ok()
        .map(|marker| marker.broker_epoch)
        .filter(|epoch| *epoch >= 0)
}

/// One partition's line in the checkpoints: its directory, name, recovery point and
/// log start offset.
pub type CheckpointEntry = (PathBuf, TopicPartition, i64, i64);

/// What start-up found in the log dirs.
pub struct LoadedLogs {
    pub loaded: Vec<LoadedLog>,
    /// Partition logs that could not be opened (descriptors, EIO, corruption): offline,
    /// their directories left as they are.
    pub failed: Vec<FailedLog>,
}

/// A partition log that could not be opened at start-up.
#[derive(Debug, Clone)]
pub struct FailedLog {
    pub topic_partition: TopicPartition,
    pub path: PathBuf,
    pub error: String,
}

/// A partition log found on disk at start-up.
pub struct LoadedLog {
    pub log: PartitionLog,
    pub report: RecoveryReport,
}

impl LogManager {
    pub fn open(log_dirs: &[PathBuf]) -> Result<Self, LogError> {
        for dir in log_dirs {
            checkpoint::create_dir_durably(dir)
                .map_err(|source| LogError::io(dir, "create log dir", source))?;
        }
        Ok(LogManager {
            log_dirs: log_dirs.to_vec(),
            writing: parking_lot::Mutex::new(()),
            dir_counts: parking_lot::Mutex::new(None),
        })
    }

    pub fn log_dirs(&self) -> &[PathBuf] {
        &self.log_dirs
    }

    /// Loads every partition directory. `describe` gives the config and leader epoch of a
    /// partition that belongs to a known topic, or None for a leftover of a deleted topic,
    /// whose directory is then removed.
    pub fn load_all<F>(&self, describe: F, now_ms: i64) -> Result<LoadedLogs, LogError>
    where
        F: Fn(&TopicPartition) -> Option<(LogConfig, i32)>,
    {
        let mut loaded = Vec::new();
        let mut failed = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for dir in &self.log_dirs {
            let marker = dir.join(CLEAN_SHUTDOWN_FILE);
            let clean_shutdown = marker.exists();
            let recovery_points = checkpoint::read(&dir.join(RECOVERY_POINT_FILE));
            let log_starts = checkpoint::read(&dir.join(LOG_START_FILE));
            let entries =
                std::fs::read_dir(dir).map_err(|source| LogError::io(dir, "list log dir", source))?;
            let mut partitions = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|source| LogError::io(dir, "list log dir", source))?;
                let path = entry.path();
                if !path.is_dir() {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(move_dir::FUTURE_SUFFIX) {
                    tracing::warn!(path = %path.display(), "removing an unfinished log dir move");
                    std::fs::remove_dir_all(&path).map_err(|source| LogError::io(&path, "remove", source))?;
                    continue;
                }
                if let Some(topic_partition) = partition_dir(&name) {
                    let bytes = segment_bytes(&path);
                    partitions.push((path, topic_partition, bytes));
                }
            }
            let total_bytes: u64 = partitions.iter().map(|(_, _, bytes)| bytes).sum();
            let log_dir = dir.display().to_string();
            if partitions.is_empty() {
                tracing::info!(%log_dir, "loading log dir: it holds no partitions");
            } else if clean_shutdown {
                tracing::info!(%log_dir, partitions = partitions.len(), total_bytes, "loading log dir after a clean shutdown");
            } else {
                tracing::info!(
                    %log_dir,
                    partitions = partitions.len(),
                    total_bytes,
                    "recovering log dir after an unclean shutdown: segments past each recovery point are checked"
                );
            }
            let started = std::time::Instant::now();
            let mut progress =
                RecoveryProgress::new(partitions.len(), total_bytes, started, PROGRESS_INTERVAL);
            let mut to_open = Vec::new();
            for (path, topic_partition, bytes) in partitions {
                if !seen.insert(topic_partition.clone()) {
                    // A move that stopped between its rename and the removal of the
                    // source: both copies are whole and equal; the first one stays.
                    tracing::warn!(%topic_partition, path = %path.display(), "removing the second copy of a moved log");
                    std::fs::remove_dir_all(&path).map_err(|source| LogError::io(&path, "remove", source))?;
                    progress.advance(bytes, std::time::Instant::now());
                    continue;
                }
                let Some((config, leader_epoch)) = describe(&topic_partition) else {
                    tracing::warn!(%topic_partition, path = %path.display(), "removing log of a deleted topic");
                    std::fs::remove_dir_all(&path).map_err(|source| LogError::io(&path, "remove", source))?;
                    progress.advance(bytes, std::time::Instant::now());
                    continue;
                };
                let key = (topic_partition.topic.clone(), topic_partition.partition);
                let recovery_point = recovery_points.get(&key).copied().unwrap_or(0);
                let log_start = log_starts.get(&key).copied();
                to_open.push((
                    path,
                    topic_partition,
                    bytes,
                    config,
                    leader_epoch,
                    recovery_point,
                    log_start,
                ));
            }
            let progress = parking_lot::Mutex::new(progress);
            let opened = parallel::map(&to_open, parallel::THREADS, |to_open| {
                let (path, topic_partition, bytes, config, leader_epoch, recovery_point, log_start) = to_open;
                let opened = PartitionLog::open(
                    path,
                    topic_partition.clone(),
                    config.clone(),
                    *leader_epoch,
                    *recovery_point,
                    clean_shutdown,
                    now_ms,
                )
                .and_then(|(mut log, report)| {
                    if let Some(offset) = log_start {
                        log.advance_log_start(*offset)?;
                    }
                    Ok(LoadedLog { log, report })
                });
                if let Some(report) = progress.lock().advance(*bytes, std::time::Instant::now()) {
                    log_progress(&log_dir, &report);
                }
                opened
            });
            for ((path, topic_partition, ..), opened) in to_open.into_iter().zip(opened) {
                match opened {
                    Ok(loaded_log) => {
                        if loaded_log.report.truncated_bytes > 0 {
                            tracing::warn!(
                                topic_partition = %loaded_log.log.topic_partition,
                                truncated_bytes = loaded_log.report.truncated_bytes,
                                "recovery cut a torn or corrupt tail"
                            );
                        }
                        loaded.push(loaded_log);
                    }
                    Err(error) => {
                        // This partition goes offline alone; every other one serves.
                        tracing::error!(%topic_partition, path = %path.display(), %error, "cannot open a partition log: it stays offline");
                        failed.push(FailedLog {
                            topic_partition,
                            path,
                            error: error.to_string(),
                        });
                    }
                }
            }
            let progress = progress.into_inner();
            let done = progress.report(std::time::Instant::now());
            tracing::info!(
                %log_dir,
                partitions = done.done_partitions,
                total_bytes,
                seconds = format!("{:.2}", done.elapsed.as_secs_f64()),
                "log dir loaded"
            );
            if clean_shutdown {
                // Durably: a marker that came back after a power cut would pass an
                // unflushed log off as clean.
                checkpoint::remove_durably(&marker)
                    .map_err(|source| LogError::io(&marker, "remove marker", source))?;
            }
        }
        Ok(LoadedLogs { loaded, failed })
    }

    /// The log dir with the fewest partitions (Kafka's placement rule), counted as the
    /// partition is placed there.
    fn least_loaded_dir(&self) -> &Path {
        if let [only] = self.log_dirs.as_slice() {
            return only;
        }
        let count = |dir: &Path| {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|entry| partition_dir(&entry.file_name().to_string_lossy()).is_some())
                    .count()
            })
        };
        let mut cached = self.dir_counts.lock();
        let now = std::time::Instant::now();
        if cached
            .as_ref()
            .is_none_or(|(counted_at, _)| now.duration_since(*counted_at) > DIR_COUNT_TTL)
        {
            *cached = Some((now, self.log_dirs.iter().map(|dir| count(dir)).collect()));
        }
        let Some((_, counts)) = cached.as_mut() else {
            return Path::new(".");
        };
        let Some((least, _)) = counts.iter().enumerate().min_by_key(|(_, count)| **count) else {
            return Path::new(".");
        };
        counts[least] += 1;
        self.log_dirs.get(least).map_or(Path::new("."), PathBuf::as_path)
    }

    pub fn create_log(
        &self,
        topic_partition: TopicPartition,
        config: LogConfig,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<PartitionLog, LogError> {
        let dir = self.least_loaded_dir().join(topic_partition.dir_name());
        if dir.exists() {
            // A leftover from an earlier topic of the same name: start clean.
            std::fs::remove_dir_all(&dir)
                .map_err(|source| LogError::io(&dir, "remove stale partition", source))?;
        }
        PartitionLog::create(&dir, topic_partition, config, leader_epoch, now_ms)
    }

    /// Writes each log dir's recovery-point and log-start checkpoints.
    pub fn write_checkpoints(&self, entries: &[CheckpointEntry]) -> Result<(), LogError> {
        let _writing = self.writing.lock();
        for dir in &self.log_dirs {
            let here: Vec<&CheckpointEntry> = entries
                .iter()
                .filter(|(partition_dir, ..)| partition_dir.parent() == Some(dir.as_path()))
                .collect();
            for (file, pick) in [
                (
                    RECOVERY_POINT_FILE,
                    (|entry: &CheckpointEntry| entry.2) as fn(&CheckpointEntry) -> i64,
                ),
                (LOG_START_FILE, |entry: &CheckpointEntry| entry.3),
            ] {
                let lines: Vec<(String, i32, i64)> = here
                    .iter()
                    .map(|entry| (entry.1.topic.clone(), entry.1.partition, pick(entry)))
                    .collect();
                let path = dir.join(file);
                checkpoint::write(&path, &lines)
                    .map_err(|source| LogError::io(&path, "write checkpoint", source))?;
            }
        }
        Ok(())
    }

    /// Marks every log dir as cleanly shut down (after all logs were flushed and
    /// closed), recording the broker epoch of the registration that ends here.
    pub fn mark_clean_shutdown(&self, broker_epoch: i64) -> Result<(), LogError> {
        let marker = format!("{{\"version\":0,\"broker_epoch\":{broker_epoch}}}");
        for dir in &self.log_dirs {
            let path = dir.join(CLEAN_SHUTDOWN_FILE);
            checkpoint::write_atomically(&path, marker.as_bytes())
                .map_err(|source| LogError::io(&path, "write marker", source))?;
        }
        Ok(())
    }

    /// The broker epoch the last shutdown recorded when every log dir was shut down
    /// cleanly with the same epoch; else -1 (an unclean shutdown, a first start, or a
    /// marker without an epoch).
    pub fn previous_broker_epoch(&self) -> i64 {
        let epochs: Vec<Option<i64>> = self
            .log_dirs
            .iter()
            .map(|dir| marker_epoch(&dir.join(CLEAN_SHUTDOWN_FILE)))
            .collect();
        match epochs.first() {
            Some(Some(first)) if epochs.iter().all(|epoch| *epoch == Some(*first)) => *first,
            _ => -1,
        }
    }
}
