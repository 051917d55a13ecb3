//! Per-record checks of a produce batch (Kafka's LogValidator, KIP-467): a compacted
//! topic refuses records without a key (INVALID_RECORD), and a CreateTime topic refuses
//! timestamps more than `message.timestamp.before.max.ms` in the past or
//! `message.timestamp.after.max.ms` in the future (INVALID_TIMESTAMP, KIP-937). Every
//! offending record is named by its index in the batch, so a client fails those and
//! may resend the others. Pure: the clock is passed in.

use super::batch::BatchHeader;
use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

/// Kafka's INVALID_RECORD and INVALID_TIMESTAMP.
pub const INVALID_RECORD: i16 = 87;
pub const INVALID_TIMESTAMP: i16 = 32;

/// What the checks need to know of the topic.
#[derive(Debug, Clone, Copy)]
pub struct RecordRules {
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub compacted: bool,
    /// CreateTime topics: the oldest and newest timestamps accepted (None: LogAppendTime,
    /// where the broker's own timestamp replaces the producer's).
    pub timestamp_bounds: Option<(i64, i64)>,
}

impl RecordRules {
    /// The bounds for `now_ms` from `before`/`after` (Kafka's `i64::MAX` means no bound).
    pub fn new(
        compacted: bool,
        create_time: bool,
        before_max_ms: i64,
        after_max_ms: i64,
        now_ms: i64,
    ) -> Self {
        RecordRules {
            compacted,
            timestamp_bounds: create_time.then(|| {
                let oldest = if before_max_ms == i64::MAX {
                    i64::MIN
                } else {
                    now_ms.saturating_sub(before_max_ms.max(0))
                };
                (oldest, now_ms.saturating_add(after_max_ms.max(0)))
            }),
        }
    }
}

/// One refused record: its index in the batch and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub index: usize,
    pub message: String,
}

/// The refusal of a batch: the partition's error code and message, and each record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: i16,
    pub message: String,
    pub records: Vec<RecordError>,
}

/// Checks every record of one batch; None when all pass. A batch that cannot be
/// decoded is refused as a whole (its first record named).
pub fn check(
    bytes: &Bytes,
    header: &BatchHeader,
    rules: &RecordRules,
    topic_partition: &str,
) -> Option<Refusal> {
    if header.is_control() {
        return None;
    }
    // The header's max timestamp bounds every record from above, so records are
    // decoded only for a key check, a lower bound, or a header over the upper bound.
    let timestamps_need_records = rules
        .timestamp_bounds
        .is_some_and(|(oldest, newest)| oldest > i64::MIN || header.max_timestamp > newest);
    if !rules.compacted && !timestamps_need_records {
        return None;
    }
    let mut source = bytes.clone();
    let Ok(set) = RecordBatchDecoder::decode(&mut source) else {
        return Some(Refusal {
            code: INVALID_RECORD,
            message: format!("the record batch to {topic_partition} cannot be decoded"),
            records: vec![RecordError {
                index: 0,
                message: "undecodable record batch".into(),
            }],
        });
    };
    let mut errors = Vec::new();
    let mut any_timestamp = false;
    for (index, record) in set.records.iter().enumerate() {
        if rules.compacted && record.key.is_none() {
            errors.push(RecordError {
                index,
                message: format!(
                    "Compacted topic cannot accept message without key in topic partition {topic_partition}."
                ),
            });
            continue;
        }
        if let Some((oldest, newest)) = rules.timestamp_bounds
            && (record.timestamp < oldest || record.timestamp > newest)
        {
            any_timestamp = true;
            errors.push(RecordError {
                index,
                message: format!(
                    "Timestamp {} of message with offset {index} is out of range. The timestamp should be within [{oldest}, {newest}]",
                    record.timestamp
                ),
            });
        }
    }
    if errors.is_empty() {
        return None;
    }
    let shown: Vec<String> = errors
        .iter()
        .take(3)
        .map(|error| format!("{}: {}", error.index, error.message))
        .collect();
    Some(Refusal {
        code: if any_timestamp {
            INVALID_TIMESTAMP
        } else {
            INVALID_RECORD
        },
        message: format!(
            "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
            errors.len(),
            shown.join("; ")
        ),
        records: errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::split_and_validate;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn batch(records: &[(Option<&str>, i64)]) -> (Bytes, BatchHeader) {
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (key, timestamp))| Record {
                transactional: false,
                control: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // Sequences must run on for the encoder to keep one batch.
                sequence: (i as i32).wrapping_sub(1),
                timestamp: *timestamp,
                key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
                value: Some(Bytes::from_static(b"v")),
                headers: Default::default(),
                delete_horizon: false,
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::Lz4,
            },
        )
        .unwrap();
        let bytes = buf.freeze();
        let header = split_and_validate(&bytes, 1 << 20).unwrap()[0].header;
        (bytes, header)
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn every_keyless_record_of_a_compacted_topic_is_named() {
        let rows: Vec<(Option<&str>, i64)> = (0..20)
            .map(|i| (if i % 10 == 3 { None } else { Some("k") }, NOW))
            .collect();
        let (bytes, header) = batch(&rows);
        let rules = RecordRules::new(true, true, i64::MAX, 3_600_000, NOW);
        let refusal = check(&bytes, &header, &rules, "t-0").expect("refused");
        assert_eq!(refusal.code, INVALID_RECORD);
        let indexes: Vec<usize> = refusal.records.iter().map(|e| e.index).collect();
        assert_eq!(indexes, vec![3, 13]);
        assert!(refusal.message.contains("2 record errors"), "{}", refusal.message);
        let keyed = RecordRules::new(false, true, i64::MAX, 3_600_000, NOW);
        assert_eq!(check(&bytes, &header, &keyed, "t-0"), None, "not compacted");
    }

    #[test]
    fn timestamps_outside_the_window_are_named() {
        let (bytes, header) = batch(&[
            (Some("a"), NOW),
            (Some("b"), NOW + 7_200_000),
            (Some("c"), NOW - 10_000),
        ]);
        let rules = RecordRules::new(false, true, i64::MAX, 3_600_000, NOW);
        let refusal = check(&bytes, &header, &rules, "t-0").expect("refused");
        assert_eq!(refusal.code, INVALID_TIMESTAMP);
        assert_eq!(
            refusal.records.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![1]
        );
        let strict = RecordRules::new(false, true, 5_000, 3_600_000, NOW);
        let refusal = check(&bytes, &header, &strict, "t-0").expect("refused");
        assert_eq!(
            refusal.records.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![1, 2]
        );
        // LogAppendTime replaces the producer's timestamps: nothing to check.
        let append_time = RecordRules::new(false, false, 5_000, 0, NOW);
        assert_eq!(check(&bytes, &header, &append_time, "t-0"), None);
        let (fine, header) = batch(&[(Some("a"), NOW), (Some("b"), NOW + 1_000)]);
        assert_eq!(check(&fine, &header, &strict, "t-0"), None);
    }
}
