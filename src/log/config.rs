//! The settings of one partition's log. The log only reads them; `config` resolves them
//! from broker defaults and topic overrides.

/// The settings of one partition's log, resolved from broker defaults and topic overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `retention.ms`; -1 keeps segments forever.
    pub retention_ms: i64,
    /// `retention.bytes`; -1 means no size limit.
    pub retention_bytes: i64,
    /// `segment.bytes`: roll once the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll once the active segment is this old.
    pub segment_ms: i64,
    /// `flush.messages`: fsync once this many messages are unflushed (1 = sync flush).
    pub flush_messages: i64,
    /// `flush.ms`: fsync once the oldest unflushed message is this old (None = never by time).
    pub flush_ms: Option<i64>,
    /// `index.interval.bytes`: bytes between offset index entries.
    pub index_interval_bytes: u64,
    /// `log.index.size.max.bytes`: the preallocated size of each index file.
    pub max_index_size: u64,
    /// `max.message.bytes`: the largest record batch accepted.
    pub max_message_bytes: i32,
    /// `min.insync.replicas` for acks=all.
    pub min_insync_replicas: i32,
    /// `message.timestamp.type=LogAppendTime`: the leader stamps each batch with its
    /// append time.
    pub log_append_time: bool,
    /// `message.timestamp.before.max.ms` / `after.max.ms` (KIP-937): how far in the
    /// past or future a CreateTime record's timestamp may be.
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// `compression.type`: the codec batches are stored in (None: as the producer sent
    /// them).
    pub compression: Option<kafka_protocol::records::Compression>,
    /// `compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`.
    pub compression_levels: super::recompress::CompressionLevels,
    /// `cleanup.policy` includes `delete`: retention and DeleteRecords may drop records.
    pub delete_policy: bool,
    /// `cleanup.policy` includes `compact`: the cleaner keeps the latest record per key,
    /// and records without a key are refused.
    pub compact_policy: bool,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_ratio: f64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone stays.
    pub delete_retention_ms: i64,
}
