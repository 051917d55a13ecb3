//! Log compaction's decisions, free of IO: which part of a log is cleanable and whether
//! it is due ([`cleanable`]), the map of each key's latest offset ([`OffsetMap`]), and
//! what becomes of one batch ([`filter_batch`]).
//!
//! A cleaned batch keeps its records' offsets, timestamps, producer id, epoch and
//! sequences, its leader epoch and its last offset, so a follower, a consumer and the
//! producer state read it as the same range of the log with fewer records in it. Kafka
//! does the same.

use super::batch::{BatchHeader, CRC_START, HEADER_LEN, LOG_APPEND_TIME_FLAG};
use super::recompress::{CODEC_MASK, CompressionLevels, codec_of};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};
use std::collections::HashMap;

/// What the cleaner knows of one sealed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub base_offset: i64,
    /// The base of the next segment (the active one's for the last sealed segment).
    pub end_offset: i64,
    pub size: u64,
    /// The largest batch timestamp in it (-1 when none).
    pub max_timestamp: i64,
    /// The first batch's timestamp, for `max.compaction.lag.ms`.
    pub first_timestamp: Option<i64>,
}

/// The topic settings that decide when a log is cleaned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanPolicy {
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_ratio: f64,
    /// `min.compaction.lag.ms`.
    pub min_lag_ms: i64,
    /// `max.compaction.lag.ms`.
    pub max_lag_ms: i64,
}

/// The cleanable part of a log: [log start, `end`), of which [`first_dirty`, `end`)
/// has not been cleaned yet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanable {
    pub first_dirty: i64,
    pub end: i64,
    pub dirty_bytes: u64,
    pub clean_bytes: u64,
    /// A dirty record is older than `max.compaction.lag.ms`.
    pub overdue: bool,
}

impl Cleanable {
    pub fn dirty_ratio(&self) -> f64 {
        let total = self.dirty_bytes + self.clean_bytes;
        if total == 0 {
            0.0
        } else {
            self.dirty_bytes as f64 / total as f64
        }
    }
}

/// Whether a log is due for cleaning, and which part. Only sealed segments below the
/// high watermark are cleanable (the active segment never is), and none from the first
/// whose newest record is younger than `min.compaction.lag.ms`. It is due when its
/// dirty part is at least `min.cleanable.dirty.ratio` of the cleanable bytes, or when
/// a dirty record is older than `max.compaction.lag.ms`.
///
/// With `force` (a kept tombstone's retention has passed) it is due whenever anything
/// is cleanable.
pub fn cleanable(
    sealed: &[SegmentInfo],
    high_watermark: i64,
    checkpoint: Option<i64>,
    now_ms: i64,
    policy: CleanPolicy,
    force: bool,
) -> Option<Cleanable> {
    let log_start = sealed.first()?.base_offset;
    let mut end = log_start;
    for segment in sealed {
        let young =
            segment.max_timestamp >= 0 && now_ms.saturating_sub(segment.max_timestamp) < policy.min_lag_ms;
        if segment.end_offset > high_watermark || young {
            break;
        }
        end = segment.end_offset;
    }
    // A checkpoint outside the cleanable part (retention moved the start, or a
    // truncation the end) starts over from the log start.
    let first_dirty = checkpoint
        .filter(|offset| *offset >= log_start && *offset <= end)
        .unwrap_or(log_start);
    let mut found = Cleanable {
        first_dirty,
        end,
        dirty_bytes: 0,
        clean_bytes: 0,
        overdue: false,
    };
    for segment in sealed.iter().take_while(|segment| segment.end_offset <= end) {
        if segment.base_offset >= first_dirty {
            found.dirty_bytes += segment.size;
            found.overdue |= segment
                .first_timestamp
                .is_some_and(|first| first >= 0 && now_ms.saturating_sub(first) > policy.max_lag_ms);
        } else {
            found.clean_bytes += segment.size;
        }
    }
    let due = (force && end > log_start)
        || (found.dirty_bytes > 0 && (found.overdue || found.dirty_ratio() >= policy.min_cleanable_ratio));
    due.then_some(found)
}

/// Each key's latest offset in the dirty part of a log, within a memory budget
/// (`log.cleaner.dedupe.buffer.size`). Keys are kept whole, so two keys never share
/// an entry.
pub struct OffsetMap {
    latest: HashMap<Bytes, i64>,
    bytes: usize,
    budget: usize,
}

/// Bytes an entry costs beyond its key (hash slot, offset, `Bytes` header).
const ENTRY_OVERHEAD: usize = 64;

impl OffsetMap {
    pub fn new(budget: usize) -> Self {
        OffsetMap {
            latest: HashMap::new(),
            bytes: 0,
            budget,
        }
    }

    /// Records `key` at `offset`. False (and nothing recorded) when a new key does not
    /// fit in the budget.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        if let Some(latest) = self.latest.get_mut(key) {
            *latest = (*latest).max(offset);
            return true;
        }
        let cost = key.len() + ENTRY_OVERHEAD;
        if self.bytes + cost > self.budget {
            return false;
        }
        self.bytes += cost;
        self.latest.insert(Bytes::copy_from_slice(key), offset);
        true
    }

    pub fn latest(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(key).copied()
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    /// Whether a whole set of new keys costing this many bytes still fits.
    pub fn fits(&self, new_key_bytes: usize, new_keys: usize) -> bool {
        self.bytes + new_key_bytes + new_keys * ENTRY_OVERHEAD <= self.budget
    }
}

/// The keyed records of a batch, as (offset, key); None for a control batch or one
/// whose records cannot be decoded (both are kept as they are).
pub fn batch_keys(bytes: &Bytes, header: &BatchHeader) -> Option<Vec<(i64, Option<Bytes>)>> {
    if header.is_control() {
        return None;
    }
    let mut source = bytes.clone();
    let set = RecordBatchDecoder::decode(&mut source).ok()?;
    Some(
        set.records
            .into_iter()
            .map(|record| (record.offset, record.key))
            .collect(),
    )
}

/// How one batch is cleaned.
pub struct BatchRules<'a> {
    pub map: &'a OffsetMap,
    /// Tombstones (null values) in this batch are past `delete.retention.ms`.
    pub drop_tombstones: bool,
    /// The batch is its producer's last: kept, empty if need be, so the producer's
    /// sequence survives in the log.
    pub keep_empty: bool,
    /// The codec for a rewritten batch (None: the batch's own).
    pub codec: Option<Compression>,
    pub levels: CompressionLevels,
}

/// What cleaning does to one batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Filtered {
    /// Every record stays: the batch is copied as it is.
    Keep,
    /// No record stays and the producer state does not need it.
    Drop,
    /// Some records stay, in this new batch (same offsets, last offset and producer).
    Rewrite(Bytes),
}

/// Cleans one batch: a record stays unless a later record has its key, or it is a
/// tombstone past its retention. Keyless records, control batches and batches that
/// cannot be decoded stay as they are.
/// Also says whether a tombstone stays (the log is due again when it expires).
pub fn filter_batch(bytes: &Bytes, header: &BatchHeader, rules: &BatchRules<'_>) -> (Filtered, bool) {
    if header.is_control() {
        return (Filtered::Keep, false);
    }
    let mut source = bytes.clone();
    let Ok(set) = RecordBatchDecoder::decode(&mut source) else {
        return (Filtered::Keep, false);
    };
    let total = set.records.len();
    let retained: Vec<_> = set
        .records
        .into_iter()
        .filter(|record| match &record.key {
            None => true,
            Some(key) => {
                let superseded = rules.map.latest(key).is_some_and(|latest| latest > record.offset);
                let expired_tombstone = record.value.is_none() && rules.drop_tombstones;
                !superseded && !expired_tombstone
            }
        })
        .collect();
    let tombstone = retained
        .iter()
        .any(|record| record.key.is_some() && record.value.is_none());
    (filter_records(bytes, header, rules, retained, total), tombstone)
}

fn filter_records(
    bytes: &Bytes,
    header: &BatchHeader,
    rules: &BatchRules<'_>,
    retained: Vec<kafka_protocol::records::Record>,
    total: usize,
) -> Filtered {
    if retained.len() == total {
        return Filtered::Keep;
    }
    if retained.is_empty() {
        return if rules.keep_empty && header.producer_id >= 0 {
            Filtered::Rewrite(empty_batch(bytes))
        } else {
            Filtered::Drop
        };
    }
    let codec = rules.codec.unwrap_or(codec_of(header.attributes));
    let options = RecordEncodeOptions {
        version: 2,
        compression: codec,
    };
    let levels = rules.levels;
    let compressor = |records: &mut BytesMut, out: &mut BytesMut, codec: Compression| {
        super::recompress::compress(levels, records, out, codec)
    };
    let mut out = BytesMut::with_capacity(bytes.len());
    if RecordBatchEncoder::encode_with_custom_compression(
        &mut out,
        retained.iter(),
        &options,
        Some(compressor),
    )
    .is_err()
        || out.len() < HEADER_LEN
        || BatchHeader::peek_size(&out).map(|(_, size)| size) != Ok(out.len())
    {
        // Not one batch (the encoder splits records that do not share a producer,
        // which one batch's always do): keep the original.
        return Filtered::Keep;
    }
    let new_base = retained[0].offset;
    // The original last offset (and so the producer's last sequence) stays.
    let last_delta = (header.last_offset() - new_base) as i32;
    out[23..27].copy_from_slice(&last_delta.to_be_bytes());
    let base_sequence = if header.base_sequence < 0 {
        header.base_sequence
    } else {
        header
            .base_sequence
            .wrapping_add((new_base - header.base_offset) as i32)
    };
    out[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    if header.attributes & LOG_APPEND_TIME_FLAG != 0 {
        let attributes = i16::from_be_bytes([out[21], out[22]]) | LOG_APPEND_TIME_FLAG;
        out[21..23].copy_from_slice(&attributes.to_be_bytes());
        out[35..43].copy_from_slice(&header.max_timestamp.to_be_bytes());
    }
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Filtered::Rewrite(out.freeze())
}

/// The batch's header alone, with no records and no compression: its offsets,
/// producer and sequences stay in the log.
fn empty_batch(bytes: &Bytes) -> Bytes {
    let mut out = bytes[..HEADER_LEN].to_vec();
    out[8..12].copy_from_slice(&((HEADER_LEN - 12) as i32).to_be_bytes());
    let attributes = i16::from_be_bytes([out[21], out[22]]) & !CODEC_MASK;
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    out[57..61].copy_from_slice(&0i32.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}

/// Keeps the cleaner's reads and writes under `log.cleaner.io.max.bytes.per.second`.
pub struct Throttle {
    bytes_per_second: f64,
    started: std::time::Instant,
    bytes: f64,
}

impl Throttle {
    pub fn new(bytes_per_second: f64) -> Self {
        Throttle {
            bytes_per_second,
            started: std::time::Instant::now(),
            bytes: 0.0,
        }
    }

    /// Counts `bytes` of IO and returns how long to pause so the rate since the start
    /// stays under the limit.
    pub fn account(&mut self, bytes: u64, now: std::time::Instant) -> std::time::Duration {
        self.bytes += bytes as f64;
        if !self.bytes_per_second.is_finite() || self.bytes_per_second <= 0.0 {
            return std::time::Duration::ZERO;
        }
        let allowed_at = self.bytes / self.bytes_per_second;
        let elapsed = now.saturating_duration_since(self.started).as_secs_f64();
        std::time::Duration::from_secs_f64((allowed_at - elapsed).max(0.0))
    }
}

#[cfg(test)]
#[path = "compaction_tests.rs"]
mod tests;
