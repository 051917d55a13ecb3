//! The set of log dirs (`log.dirs`): finding, creating and placing partition logs,
//! the recovery-point checkpoints and the clean-shutdown marker.
//!
//! Each log dir holds `<topic>-<partition>/` directories, a
//! `recovery-point-offset-checkpoint` and, only after a clean shutdown, a
//! `.kafka_cleanshutdown` marker. The marker is removed as soon as the logs are loaded,
//! so a crash afterwards is always seen as unclean. The first log dir also holds the
//! metadata quorum's `__cluster_metadata-0/`, which is not a partition log.

use super::checkpoint;
use super::partition_log::PartitionLog;
use super::segment::RecoveryReport;
use super::{LogError, TopicPartition};
use crate::config::LogConfig;
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

pub struct LogManager {
    log_dirs: Vec<PathBuf>,
}

/// A partition log found on disk at start-up.
pub struct LoadedLog {
    pub log: PartitionLog,
    pub report: RecoveryReport,
}

impl LogManager {
    pub fn open(log_dirs: &[PathBuf]) -> Result<Self, LogError> {
        for dir in log_dirs {
            std::fs::create_dir_all(dir).map_err(|source| LogError::io(dir, "create log dir", source))?;
        }
        Ok(LogManager {
            log_dirs: log_dirs.to_vec(),
        })
    }

    pub fn log_dirs(&self) -> &[PathBuf] {
        &self.log_dirs
    }

    /// Loads every partition directory. `describe` gives the config and leader epoch of a
    /// partition that belongs to a known topic, or None for a leftover of a deleted topic,
    /// whose directory is then removed.
    pub fn load_all<F>(&self, describe: F, now_ms: i64) -> Result<Vec<LoadedLog>, LogError>
    where
        F: Fn(&TopicPartition) -> Option<(LogConfig, i32)>,
    {
        let mut loaded = Vec::new();
        for dir in &self.log_dirs {
            let marker = dir.join(CLEAN_SHUTDOWN_FILE);
            let clean_shutdown = marker.exists();
            let recovery_points = checkpoint::read(&dir.join(RECOVERY_POINT_FILE));
            let entries =
                std::fs::read_dir(dir).map_err(|source| LogError::io(dir, "list log dir", source))?;
            for entry in entries {
                let entry = entry.map_err(|source| LogError::io(dir, "list log dir", source))?;
                let path = entry.path();
                if !path.is_dir() {
                    continue;
                }
                let Some(topic_partition) = partition_dir(&entry.file_name().to_string_lossy()) else {
                    continue;
                };
                let Some((config, leader_epoch)) = describe(&topic_partition) else {
                    tracing::warn!(%topic_partition, path = %path.display(), "removing log of a deleted topic");
                    std::fs::remove_dir_all(&path).map_err(|source| LogError::io(&path, "remove", source))?;
                    continue;
                };
                let recovery_point = recovery_points
                    .get(&(topic_partition.topic.clone(), topic_partition.partition))
                    .copied()
                    .unwrap_or(0);
                let (log, report) = PartitionLog::open(
                    &path,
                    topic_partition,
                    config,
                    leader_epoch,
                    recovery_point,
                    clean_shutdown,
                    now_ms,
                )?;
                if report.truncated_bytes > 0 {
                    tracing::warn!(
                        topic_partition = %log.topic_partition,
                        truncated_bytes = report.truncated_bytes,
                        "recovery cut a torn or corrupt tail"
                    );
                }
                loaded.push(LoadedLog { log, report });
            }
            if clean_shutdown {
                std::fs::remove_file(&marker)
                    .map_err(|source| LogError::io(&marker, "remove marker", source))?;
            }
        }
        Ok(loaded)
    }

    /// The log dir with the fewest partitions (Kafka's placement rule).
    fn least_loaded_dir(&self) -> &Path {
        let count = |dir: &Path| {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|entry| partition_dir(&entry.file_name().to_string_lossy()).is_some())
                    .count()
            })
        };
        self.log_dirs
            .iter()
            .min_by_key(|dir| count(dir))
            .map_or(Path::new("."), PathBuf::as_path)
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

    /// Writes each log dir's recovery-point checkpoint from `(log dir of partition, tp, point)`.
    pub fn write_recovery_points(&self, points: &[(PathBuf, TopicPartition, i64)]) -> Result<(), LogError> {
        for dir in &self.log_dirs {
            let entries: Vec<(String, i32, i64)> = points
                .iter()
                .filter(|(partition_dir, _, _)| partition_dir.parent() == Some(dir.as_path()))
                .map(|(_, topic_partition, point)| {
                    (topic_partition.topic.clone(), topic_partition.partition, *point)
                })
                .collect();
            let path = dir.join(RECOVERY_POINT_FILE);
            checkpoint::write(&path, &entries)
                .map_err(|source| LogError::io(&path, "write checkpoint", source))?;
        }
        Ok(())
    }

    /// Marks every log dir as cleanly shut down (after all logs were flushed and closed).
    pub fn mark_clean_shutdown(&self) -> Result<(), LogError> {
        for dir in &self.log_dirs {
            let path = dir.join(CLEAN_SHUTDOWN_FILE);
            checkpoint::write_atomically(&path, b"")
                .map_err(|source| LogError::io(&path, "write marker", source))?;
        }
        Ok(())
    }
}
