//! One partition's log on disk, and the set of logs across `log.dirs`.
//!
//! Nothing here knows about sockets, requests or API versions, and nothing here spawns
//! tasks: callers decide when to append, read, flush, roll and apply retention.

pub mod batch;
pub mod checkpoint;
pub mod compaction;
pub mod config;
pub mod control;
pub mod dir_failure;
pub mod flush_stats;
pub mod group_commit;
pub mod index_file;
pub mod internal_batch;
pub mod leader_epoch;
pub mod limits;
pub mod manager;
pub mod offset_index;
pub mod open_files;
pub mod parallel;
pub mod partition_log;
pub mod producer_snapshot;
pub mod producer_state;
pub mod recompress;
pub mod record_check;
pub mod recovery_progress;
pub mod retention;
pub mod segment;
pub mod sparse_index;
#[cfg(test)]
pub mod test_records;
pub mod time_index;
pub mod txn_index;
pub mod validate;

use std::path::{Path, PathBuf};

pub use config::LogConfig;
pub use partition_log::PartitionLog;

/// A topic name and partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// Kafka's partition directory name: `<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a partition directory name; None for anything else in a log dir.
    pub fn from_dir_name(name: &str) -> Option<Self> {
        let (topic, partition) = name.rsplit_once('-')?;
        let partition: i32 = partition.parse().ok()?;
        (!topic.is_empty() && partition >= 0 && !partition.to_string().starts_with('+'))
            .then(|| TopicPartition::new(topic, partition))
    }
}

/// A borrowed [`TopicPartition`]: looks a partition up in a map keyed by
/// `TopicPartition` without allocating its name (it hashes as the owned key does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopicPartitionRef<'a> {
    pub topic: &'a str,
    pub partition: i32,
}

impl indexmap::Equivalent<TopicPartition> for TopicPartitionRef<'_> {
    fn equivalent(&self, key: &TopicPartition) -> bool {
        self.partition == key.partition && self.topic == key.topic
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A disk operation failed: fatal for the log dir.
    #[error("{op} failed on {path}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    /// Bytes on disk are not what the broker wrote: fatal for the log dir.
    #[error("corrupt data in {path} at byte {position}")]
    Corrupt { path: PathBuf, position: u64 },
    /// The log was taken offline by an earlier fatal error or by shutdown.
    #[error("log {topic_partition} is offline")]
    Offline { topic_partition: TopicPartition },
    /// A follower's batches do not continue its log where it ends.
    #[error("replicated batch starts at offset {found}, but the log ends at {expected}")]
    NonContiguous { expected: i64, found: i64 },
    /// A client asked for an offset outside the log.
    #[error("offset {requested} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        requested: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
}

impl LogError {
    /// Its Kafka error code.
    pub fn code(&self) -> i16 {
        use kafka_protocol::ResponseError;
        let error = self;
        match error {
            LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
            LogError::NonContiguous { .. } => {
                tracing::error!(%error, "replication error");
                ResponseError::UnknownServerError.code()
            }
            LogError::Offline { .. } => ResponseError::KafkaStorageError.code(),
            LogError::Io { .. } | LogError::Corrupt { .. } => {
                tracing::error!(%error, "storage error");
                ResponseError::KafkaStorageError.code()
            }
        }
    }
}

impl LogError {
    pub fn io(path: &Path, op: &'static str, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    }

    /// Whether this error means the disk can no longer be trusted. Running out of file
    /// descriptors (EMFILE, ENFILE) is the process's limit, not the disk's: the operation
    /// fails before writing anything, and the log stays online to retry later.
    pub fn is_fatal(&self) -> bool {
        match self {
            LogError::Io { source, .. } => {
                !matches!(source.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
            }
            LogError::Corrupt { .. } => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TopicPartition;

    #[test]
    fn running_out_of_descriptors_is_not_a_disk_fault() {
        let io = |code| {
            super::LogError::io(
                std::path::Path::new("x"),
                "create segment",
                std::io::Error::from_raw_os_error(code),
            )
        };
        assert!(!io(libc::EMFILE).is_fatal());
        assert!(!io(libc::ENFILE).is_fatal());
        assert!(io(libc::ENOSPC).is_fatal());
        assert!(io(libc::EIO).is_fatal());
    }

    #[test]
    fn dir_names_round_trip() {
        let tp = TopicPartition::new("my-topic", 12);
        assert_eq!(TopicPartition::from_dir_name(&tp.dir_name()), Some(tp));
        assert_eq!(
            TopicPartition::from_dir_name("recovery-point-offset-checkpoint"),
            None
        );
        assert_eq!(TopicPartition::from_dir_name("nodash"), None);
    }
}
