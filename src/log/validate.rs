//! The log validator (Kafka's `LogValidator`): everything a leader checks of a client's
//! records before they are appended, in one place. Pure: the topic's config and the
//! clock are passed in.
//!
//! In order: each batch's framing, magic, CRC-32C and size (`max.message.bytes`,
//! `batch.rs`); at least one batch; a transactional batch carries a producer id and a
//! sequence; the topic's `compression.type`, when it names a codec, rewrites batches in
//! another codec (`recompress.rs`); then the per-record checks (`record_check.rs`):
//! a compacted topic's keys and the CreateTime timestamp window, each refused record
//! named (KIP-467). Producer-state checks (sequence, epoch) need the log's state and are
//! made under the log lock at append.

use super::batch::{self, BatchError, IncomingBatch};
use super::config::LogConfig;
use super::record_check::{self, RecordError, RecordRules};
use crate::common::error_code;
use bytes::Bytes;

/// Why a produce's records were refused; nothing of them is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// A batch's framing, CRC, magic or size.
    Batch(BatchError),
    /// No record batch at all.
    Empty,
    /// A transactional batch without a producer id or a sequence.
    TransactionalWithoutIds,
    /// Records the topic refuses, each named (KIP-467).
    Records {
        code: i16,
        message: String,
        records: Vec<RecordError>,
    },
}

impl Invalid {
    /// Its Kafka error code.
    pub fn code(&self) -> i16 {
        match self {
            Invalid::Batch(error) => error.code(),
            Invalid::Empty => error_code::INVALID_REQUEST,
            Invalid::TransactionalWithoutIds => error_code::INVALID_RECORD,
            Invalid::Records { code, .. } => *code,
        }
    }

    /// The refused records (empty unless the batches themselves were sound).
    pub fn record_errors(&self) -> &[RecordError] {
        match self {
            Invalid::Records { records, .. } => records,
            _ => &[],
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::Batch(error) => write!(f, "{error}"),
            Invalid::Empty => f.write_str("no record batch"),
            Invalid::TransactionalWithoutIds => {
                f.write_str("a transactional batch needs a producer id and a sequence")
            }
            Invalid::Records { message, .. } => f.write_str(message),
        }
    }
}

/// Checks a client's records for a leader append to `topic_partition` (named in
/// messages) under `config` at `now_ms`; the batches to append, recompressed if the
/// topic asks for it.
pub fn validate(
    records: &Bytes,
    config: &LogConfig,
    topic_partition: &str,
    now_ms: i64,
) -> Result<Vec<IncomingBatch>, Invalid> {
    let max_message_bytes = config.max_message_bytes.max(0) as usize;
    let batches = batch::split_and_validate(records, max_message_bytes).map_err(Invalid::Batch)?;
    if batches.is_empty() {
        return Err(Invalid::Empty);
    }
    // A client's transactional batch comes from a transactional producer, which is
    // idempotent: it has a producer id and a sequence.
    if batches.iter().any(|batch| {
        batch.header.is_transactional() && (batch.header.base_sequence < 0 || batch.header.producer_id < 0)
    }) {
        return Err(Invalid::TransactionalWithoutIds);
    }
    let batches = match config.compression {
        // The topic's compression.type: batches in another codec are written again.
        Some(codec) => batches
            .iter()
            .map(|batch| {
                super::recompress::to_codec(batch, codec, config.compression_levels, max_message_bytes)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(Invalid::Batch)?,
        None => batches,
    };
    let rules = RecordRules::new(
        config.compact_policy,
        !config.log_append_time,
        config.timestamp_before_max_ms,
        config.timestamp_after_max_ms,
        now_ms,
    );
    if let Some(refusal) = batches
        .iter()
        .find_map(|batch| record_check::check(&batch.bytes, &batch.header, &rules, topic_partition))
    {
        return Err(Invalid::Records {
            code: refusal.code,
            message: refusal.message,
            records: refusal.records,
        });
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::make_batch;

    fn config() -> LogConfig {
        crate::config::BrokerConfig::load(None, &[]).unwrap().log
    }

    fn batch(count: i32) -> Bytes {
        Bytes::from(make_batch(count, 0, b"payload"))
    }

    #[test]
    fn sound_batches_pass_and_empty_or_broken_ones_are_refused() {
        let config = config();
        let good = batch(3);
        let batches = validate(&good, &config, "t-0", 0).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].header.records_count, 3);
        assert_eq!(
            validate(&Bytes::new(), &config, "t-0", 0).unwrap_err(),
            Invalid::Empty
        );
        let mut corrupt = good.to_vec();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        let refused = validate(&Bytes::from(corrupt), &config, "t-0", 0).unwrap_err();
        assert!(
            matches!(refused, Invalid::Batch(BatchError::CrcMismatch { .. })),
            "{refused:?}"
        );
        assert_eq!(
            refused.code(),
            kafka_protocol::ResponseError::CorruptMessage.code()
        );
    }

    #[test]
    fn a_batch_over_max_message_bytes_is_refused_as_too_large() {
        let config = LogConfig {
            max_message_bytes: 10,
            ..config()
        };
        let refused = validate(&batch(1), &config, "t-0", 0).unwrap_err();
        assert!(
            matches!(refused, Invalid::Batch(BatchError::TooLarge { .. })),
            "{refused:?}"
        );
        assert_eq!(
            refused.code(),
            kafka_protocol::ResponseError::MessageTooLarge.code()
        );
    }
}
