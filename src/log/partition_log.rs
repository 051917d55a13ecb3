//! The log of one partition: an ordered set of segments in `<log.dir>/<topic>-<partition>/`.
//!
//! It knows the four offsets every later feature leans on:
//! - `log_start_offset`: the first offset still kept (base of the oldest segment);
//! - `log_end_offset`: the offset the next appended record gets;
//! - `high_watermark`: the offset up to which consumers may read (set by the caller,
//!   which knows the ISR; always <= log_end_offset);
//! - `recovery_point`: everything below it is fsynced.
//!
//! and the `leader_epoch` it stamps into appended batches.

use super::batch::IncomingBatch;
use super::retention::{self, SegmentSummary};
use super::segment::{self, FileSlice, LogSegment, RecoveryReport};
use super::{LogError, TopicPartition};
use crate::config::LogConfig;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The log start offset after the append, for the produce response.
    pub log_start_offset: i64,
}

pub struct PartitionLog {
    pub topic_partition: TopicPartition,
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<i64, LogSegment>,
    high_watermark: i64,
    leader_epoch: i32,
    recovery_point: i64,
    /// Wall-clock time of the oldest append not yet fsynced, for `flush.ms`.
    oldest_unflushed_ms: Option<i64>,
    /// Set after a fatal disk error or at shutdown: no more appends.
    offline: bool,
}

impl PartitionLog {
    /// Creates the directory and an empty first segment.
    pub fn create(
        dir: &Path,
        topic_partition: TopicPartition,
        config: LogConfig,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir).map_err(|source| LogError::io(dir, "create partition dir", source))?;
        let first = LogSegment::create(dir, 0, config.index_interval_bytes, config.max_index_size, now_ms)?;
        Ok(PartitionLog {
            topic_partition,
            dir: dir.to_path_buf(),
            config,
            segments: BTreeMap::from([(0, first)]),
            high_watermark: 0,
            leader_epoch,
            recovery_point: 0,
            oldest_unflushed_ms: None,
            offline: false,
        })
    }

    /// Opens an existing partition directory. Segments from the one holding
    /// `recovery_point` onward are checked batch by batch and cut at the first torn or
    /// corrupt batch, unless the broker shut down cleanly. Segments after a cut are
    /// removed, since the log must stay a contiguous prefix of what was appended.
    pub fn open(
        dir: &Path,
        topic_partition: TopicPartition,
        config: LogConfig,
        leader_epoch: i32,
        recovery_point: i64,
        clean_shutdown: bool,
        now_ms: i64,
    ) -> Result<(Self, RecoveryReport), LogError> {
        let mut bases: Vec<i64> = Vec::new();
        let entries =
            std::fs::read_dir(dir).map_err(|source| LogError::io(dir, "list partition dir", source))?;
        for entry in entries {
            let entry = entry.map_err(|source| LogError::io(dir, "list partition dir", source))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(base) = name
                .strip_suffix(".log")
                .and_then(|stem| stem.parse::<i64>().ok())
            {
                bases.push(base);
            } else if name.ends_with(".index") || name.ends_with(".timeindex") {
                // Orphan indexes (no .log) are cleaned; others are opened with their log.
                let stem = name.split('.').next().unwrap_or_default();
                if !segment::file_name(dir, stem.parse().unwrap_or(-1), "log").exists() {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        bases.sort_unstable();
        let first_to_recover = bases
            .iter()
            .rev()
            .find(|base| **base <= recovery_point)
            .copied()
            .unwrap_or(i64::MIN);
        let mut report = RecoveryReport::default();
        let mut segments = BTreeMap::new();
        let mut expected_base: Option<i64> = None;
        for (position, base) in bases.iter().enumerate() {
            if let Some(expected) = expected_base
                && *base != expected
            {
                // A gap or overlap after a truncated segment: everything from here is
                // not a contiguous continuation, so it goes.
                for later in &bases[position..] {
                    remove_segment_files(dir, *later)?;
                }
                break;
            }
            let active = position + 1 == bases.len();
            let recover = !clean_shutdown && *base >= first_to_recover;
            let (segment, segment_report) = LogSegment::open(
                dir,
                *base,
                config.index_interval_bytes,
                config.max_index_size,
                recover,
                active,
            )?;
            report.batches += segment_report.batches;
            report.truncated_bytes += segment_report.truncated_bytes;
            expected_base = Some(segment.next_offset());
            let truncated = segment_report.truncated_bytes > 0;
            segments.insert(*base, segment);
            if truncated && !active {
                for later in &bases[position + 1..] {
                    remove_segment_files(dir, *later)?;
                }
                if let Some(last) = segments.values_mut().next_back() {
                    // The cut segment becomes the active one again.
                    let base = last.base_offset;
                    drop(segments.remove(&base));
                    let (reopened, _) = LogSegment::open(
                        dir,
                        base,
                        config.index_interval_bytes,
                        config.max_index_size,
                        false,
                        true,
                    )?;
                    segments.insert(base, reopened);
                }
                break;
            }
        }
        if segments.is_empty() {
            let first =
                LogSegment::create(dir, 0, config.index_interval_bytes, config.max_index_size, now_ms)?;
            segments.insert(0, first);
        }
        let mut log = PartitionLog {
            topic_partition,
            dir: dir.to_path_buf(),
            config,
            segments,
            high_watermark: 0,
            leader_epoch,
            recovery_point: 0,
            oldest_unflushed_ms: None,
            offline: false,
        };
        // What survived recovery (or a clean shutdown) is on disk and checked.
        log.recovery_point = log.log_end_offset();
        log.high_watermark = log.log_end_offset();
        Ok((log, report))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    fn active(&self) -> Option<&LogSegment> {
        self.segments.values().next_back()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.segments.keys().next().copied().unwrap_or(0)
    }

    pub fn log_end_offset(&self) -> i64 {
        self.active().map_or(0, LogSegment::next_offset)
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// Moves the high watermark; it never passes the log end offset.
    pub fn set_high_watermark(&mut self, offset: i64) {
        self.high_watermark = offset.clamp(self.log_start_offset(), self.log_end_offset());
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn set_leader_epoch(&mut self, epoch: i32) {
        self.leader_epoch = epoch;
    }

    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    pub fn is_offline(&self) -> bool {
        self.offline
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(LogSegment::size).sum()
    }

    pub fn n_segments(&self) -> usize {
        self.segments.len()
    }

    /// Appends checked batches at the log end, rolling first if the active segment is full
    /// or old. A fatal disk error takes the log offline.
    pub fn append(&mut self, batches: &[IncomingBatch], now_ms: i64) -> Result<AppendInfo, LogError> {
        if self.offline {
            return Err(LogError::Offline {
                topic_partition: self.topic_partition.clone(),
            });
        }
        let base_offset = self.log_end_offset();
        let total: u64 = batches.iter().map(|batch| batch.bytes.len() as u64).sum();
        let messages: i64 = batches
            .iter()
            .map(|batch| batch.header.last_offset_delta as i64 + 1)
            .sum();
        let result = self.maybe_roll(total, messages, now_ms).and_then(|_| {
            let epoch = self.leader_epoch;
            match self.segments.values_mut().next_back() {
                Some(active) => active.append(batches, base_offset, epoch),
                None => Ok(()),
            }
        });
        if let Err(error) = result {
            if error.is_fatal() {
                self.offline = true;
            }
            return Err(error);
        }
        self.oldest_unflushed_ms.get_or_insert(now_ms);
        Ok(AppendInfo {
            base_offset,
            last_offset: base_offset + messages - 1,
            log_start_offset: self.log_start_offset(),
        })
    }

    fn maybe_roll(
        &mut self,
        incoming_bytes: u64,
        incoming_messages: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let Some(active) = self.active() else {
            return Ok(());
        };
        if active.size() == 0 {
            return Ok(());
        }
        let rolling_timestamp = active.first_batch_timestamp.unwrap_or(active.created_at_ms);
        let too_big = active.size() + incoming_bytes > self.config.segment_bytes;
        let too_old = now_ms.saturating_sub(rolling_timestamp) > self.config.segment_ms;
        let offsets_overflow =
            self.log_end_offset() + incoming_messages - active.base_offset > u32::MAX as i64;
        if too_big || too_old || offsets_overflow || active.is_index_full() {
            self.roll(now_ms)?;
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at the log end offset.
    pub fn roll(&mut self, now_ms: i64) -> Result<(), LogError> {
        let new_base = self.log_end_offset();
        if let Some(active) = self.segments.values_mut().next_back() {
            if active.base_offset == new_base {
                return Ok(());
            }
            active.seal()?;
        }
        let segment = LogSegment::create(
            &self.dir,
            new_base,
            self.config.index_interval_bytes,
            self.config.max_index_size,
            now_ms,
        )?;
        self.segments.insert(new_base, segment);
        Ok(())
    }

    /// Whole batches starting with the one that holds `offset`, up to `max_offset`
    /// (exclusive, normally the high watermark) and `max_bytes` (see `LogSegment::read`).
    /// `offset == max_offset` is a valid, empty read; outside [log start, log end] is an error.
    pub fn read(
        &self,
        offset: i64,
        max_offset: i64,
        max_bytes: u64,
        min_one: bool,
    ) -> Result<Option<FileSlice>, LogError> {
        let (log_start_offset, log_end_offset) = (self.log_start_offset(), self.log_end_offset());
        if offset < log_start_offset || offset > log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start_offset,
                log_end_offset,
            });
        }
        for (_, segment) in self.segments.range(..=offset).next_back().into_iter().chain(
            self.segments
                .range(offset.saturating_add(1)..)
                .filter(|(base, _)| **base < max_offset),
        ) {
            if let Some(slice) = segment.read(offset, max_offset, max_bytes, min_one)? {
                return Ok(Some(slice));
            }
        }
        Ok(None)
    }

    /// The first offset whose record timestamp is at least `timestamp`, with that
    /// timestamp; None when no record is that new. The batch holding it is decoded
    /// (ListOffsets is not on the produce path) to find the exact record.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        for segment in self.segments.values() {
            if segment.max_timestamp < timestamp {
                continue;
            }
            let Some((position, header)) = segment.find_by_timestamp(timestamp)? else {
                continue;
            };
            let bytes = segment.read_batch(position, &header)?;
            let mut buf = bytes::Bytes::from(bytes);
            if let Ok(records) = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf) {
                let found = records
                    .records
                    .iter()
                    .find(|record| record.timestamp >= timestamp)
                    .map(|record| (record.offset, record.timestamp));
                if found.is_some() {
                    return Ok(found);
                }
            }
            return Ok(Some((header.base_offset, header.max_timestamp)));
        }
        Ok(None)
    }

    /// The offset and timestamp of the batch with the largest timestamp (ListOffsets -3).
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let Some(segment) = self.segments.values().max_by_key(|segment| segment.max_timestamp) else {
            return Ok(None);
        };
        if segment.max_timestamp < 0 {
            return Ok(None);
        }
        Ok(segment
            .find_by_timestamp(segment.max_timestamp)?
            .map(|(_, header)| (header.last_offset(), header.max_timestamp)))
    }

    /// Whether `flush.messages` or `flush.ms` asks for an fsync now.
    pub fn needs_flush(&self, now_ms: i64) -> bool {
        let unflushed = self.log_end_offset() - self.recovery_point;
        if unflushed <= 0 {
            return false;
        }
        unflushed >= self.config.flush_messages
            || match (self.config.flush_ms, self.oldest_unflushed_ms) {
                (Some(flush_ms), Some(oldest)) => now_ms.saturating_sub(oldest) >= flush_ms,
                _ => false,
            }
    }

    /// The files holding unflushed data and the offset they cover, so the caller can
    /// fsync them without holding the log (group commit).
    pub fn unflushed_files(&self) -> (Vec<Arc<File>>, i64) {
        let first = self
            .segments
            .range(..=self.recovery_point)
            .next_back()
            .map_or(0, |(base, _)| *base);
        let files = self
            .segments
            .range(first..)
            .map(|(_, segment)| segment.file_handle())
            .collect();
        (files, self.log_end_offset())
    }

    /// Records that everything below `offset` is durable.
    pub fn mark_flushed(&mut self, offset: i64) {
        if offset > self.recovery_point {
            self.recovery_point = offset;
            if self.recovery_point >= self.log_end_offset() {
                self.oldest_unflushed_ms = None;
            }
        }
    }

    /// Marks the log offline after a failed fsync: nothing more is appended to it.
    pub fn take_offline(&mut self) {
        self.offline = true;
    }

    /// Deletes the segments retention says are due; returns how many went.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        let summaries: Vec<SegmentSummary> = self
            .segments
            .values()
            .map(|segment| SegmentSummary {
                base_offset: segment.base_offset,
                size: segment.size(),
                max_timestamp: segment.max_timestamp,
                last_modified_ms: segment.created_at_ms,
            })
            .collect();
        let count = retention::segments_to_delete(
            &summaries,
            self.config.retention_ms,
            self.config.retention_bytes,
            now_ms,
        );
        for summary in &summaries[..count] {
            if let Some(segment) = self.segments.remove(&summary.base_offset) {
                segment.delete()?;
            }
        }
        let log_start_offset = self.log_start_offset();
        if self.high_watermark < log_start_offset {
            self.high_watermark = log_start_offset;
        }
        Ok(count)
    }

    /// Deletes every whole segment that ends at or before `offset` (the active segment
    /// stays). Used to drop history that a snapshot has restated. Returns how many went.
    pub fn delete_segments_below(&mut self, offset: i64) -> Result<usize, LogError> {
        let doomed: Vec<i64> = self
            .segments
            .iter()
            .take(self.segments.len().saturating_sub(1))
            .filter(|(_, segment)| segment.next_offset() <= offset)
            .map(|(base, _)| *base)
            .collect();
        for base in &doomed {
            if let Some(segment) = self.segments.remove(base) {
                segment.delete()?;
            }
        }
        let log_start_offset = self.log_start_offset();
        if self.high_watermark < log_start_offset {
            self.high_watermark = log_start_offset;
        }
        Ok(doomed.len())
    }

    /// Flushes everything and seals the active segment's indexes, for a clean shutdown.
    /// The log takes no more appends afterwards.
    pub fn close(&mut self) -> Result<(), LogError> {
        self.offline = true;
        for segment in self.segments.values_mut() {
            segment.flush()?;
        }
        if let Some(active) = self.segments.values_mut().next_back() {
            active.seal()?;
        }
        self.recovery_point = self.log_end_offset();
        Ok(())
    }

    /// Removes the partition's directory (topic deletion).
    pub fn delete(mut self) -> Result<(), LogError> {
        self.offline = true;
        let dir = self.dir.clone();
        self.segments.clear();
        std::fs::remove_dir_all(&dir).map_err(|source| LogError::io(&dir, "delete partition dir", source))
    }
}

fn remove_segment_files(dir: &Path, base_offset: i64) -> Result<(), LogError> {
    for extension in ["log", "index", "timeindex"] {
        let path = segment::file_name(dir, base_offset, extension);
        super::index_file::remove_if_exists(&path)
            .map_err(|source| LogError::io(&path, "remove segment", source))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::split_and_validate;
    use crate::log::batch::tests::make_batch;
    use proptest::prelude::*;

    fn config(segment_bytes: u64) -> LogConfig {
        let mut config = crate::config::BrokerConfig::load(None, &[]).unwrap().log;
        config.segment_bytes = segment_bytes;
        config.index_interval_bytes = 64;
        config.max_index_size = 4096;
        config
    }

    fn incoming(count: i32, timestamp: i64, payload: &[u8]) -> Vec<IncomingBatch> {
        split_and_validate(
            &bytes::Bytes::from(make_batch(count, timestamp, payload)),
            1 << 20,
        )
        .unwrap()
    }

    /// Every batch in the log, in order, as (base offset, record count, payload byte).
    fn contents(log: &PartitionLog) -> Vec<(i64, i32, u8)> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while let Some(slice) = log.read(offset, log.log_end_offset(), 1, true).unwrap() {
            let bytes = slice.read_to_vec().unwrap();
            let header = crate::log::batch::validate(&bytes).unwrap();
            out.push((header.base_offset, header.records_count, bytes[bytes.len() - 1]));
            offset = header.last_offset() + 1;
        }
        out
    }

    #[test]
    fn append_roll_read_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        let mut log = PartitionLog::create(&path, TopicPartition::new("t", 0), config(300), 3, 0).unwrap();
        for index in 0..20u8 {
            let info = log
                .append(&incoming(2, 1000 + index as i64, &[index; 40]), 0)
                .unwrap();
            assert_eq!(info.base_offset, index as i64 * 2);
        }
        assert!(log.n_segments() > 3, "segments: {}", log.n_segments());
        assert_eq!(log.log_end_offset(), 40);
        let before = contents(&log);
        assert_eq!(before.len(), 20);
        // The stamped epoch is in every batch.
        let slice = log.read(10, 40, 1, true).unwrap().unwrap();
        assert_eq!(
            crate::log::batch::validate(&slice.read_to_vec().unwrap())
                .unwrap()
                .partition_leader_epoch,
            3
        );
        // By timestamp: the first batch with timestamp >= 1005 starts at offset 10.
        assert_eq!(
            log.offset_for_timestamp(1005).unwrap().map(|(offset, _)| offset),
            Some(10)
        );
        assert_eq!(log.offset_for_timestamp(5000).unwrap(), None);
        log.close().unwrap();
        drop(log);
        for clean in [true, false] {
            let (reopened, report) =
                PartitionLog::open(&path, TopicPartition::new("t", 0), config(300), 3, 0, clean, 0).unwrap();
            assert_eq!(report.truncated_bytes, 0);
            assert_eq!(contents(&reopened), before);
            assert_eq!(
                reopened
                    .offset_for_timestamp(1005)
                    .unwrap()
                    .map(|(offset, _)| offset),
                Some(10)
            );
        }
    }

    #[test]
    fn missing_or_corrupt_indexes_are_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        let mut log = PartitionLog::create(&path, TopicPartition::new("t", 0), config(400), 0, 0).unwrap();
        for index in 0..30u8 {
            log.append(&incoming(1, 1000 + index as i64, &[index; 60]), 0)
                .unwrap();
        }
        let before = contents(&log);
        log.close().unwrap();
        drop(log);
        let mut index_files: Vec<_> = std::fs::read_dir(&path)
            .unwrap()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| p.extension().is_some_and(|e| e == "index" || e == "timeindex"))
            .collect();
        index_files.sort();
        assert!(index_files.len() >= 4);
        // One index goes missing, another is overwritten with garbage.
        std::fs::remove_file(&index_files[0]).unwrap();
        std::fs::write(&index_files[2], [0xffu8; 24]).unwrap();
        // Even after a clean shutdown the broken indexes are noticed and rebuilt.
        let (reopened, _) =
            PartitionLog::open(&path, TopicPartition::new("t", 0), config(400), 0, 0, true, 0).unwrap();
        assert_eq!(contents(&reopened), before);
        assert!(index_files[0].exists(), "the missing index was rebuilt");
        assert_eq!(
            reopened
                .offset_for_timestamp(1017)
                .unwrap()
                .map(|(offset, _)| offset),
            Some(17)
        );
    }

    #[test]
    fn out_of_range_reads_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut log =
            PartitionLog::create(dir.path(), TopicPartition::new("t", 0), config(1 << 20), 0, 0).unwrap();
        log.append(&incoming(1, 1, b"a"), 0).unwrap();
        assert!(matches!(
            log.read(5, 1, 100, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert!(log.read(1, 1, 100, true).unwrap().is_none());
    }

    #[test]
    fn retention_by_size_moves_log_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(200);
        config.retention_bytes = 250;
        let mut log = PartitionLog::create(dir.path(), TopicPartition::new("t", 0), config, 0, 0).unwrap();
        for index in 0..10u8 {
            log.append(&incoming(1, 1, &[index; 80]), 0).unwrap();
        }
        let deleted = log.apply_retention(0).unwrap();
        assert!(deleted > 0);
        assert!(log.log_start_offset() > 0);
        assert!(log.size_bytes() >= 250 - 200, "{}", log.size_bytes());
        assert!(matches!(
            log.read(0, 10, 100, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Cutting the last segment file at any byte (a torn write) and recovering yields
        /// exactly a prefix of what was appended, and the log accepts appends again.
        #[test]
        fn recovery_after_cut_yields_a_prefix(n_batches in 1usize..30, cut_fraction in 0.0f64..1.0, garbage in proptest::collection::vec(any::<u8>(), 0..40)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t-0");
            let mut log = PartitionLog::create(&path, TopicPartition::new("t", 0), config(400), 0, 0).unwrap();
            for index in 0..n_batches {
                log.append(&incoming(1 + (index % 3) as i32, index as i64, &[index as u8; 50]), 0).unwrap();
            }
            let appended = contents(&log);
            drop(log);
            // Cut the newest segment and append garbage after the cut.
            let mut logs: Vec<_> = std::fs::read_dir(&path).unwrap().filter_map(Result::ok)
                .map(|entry| entry.path()).filter(|p| p.extension().is_some_and(|e| e == "log")).collect();
            logs.sort();
            let last = logs.last().unwrap();
            let length = std::fs::metadata(last).unwrap().len();
            let cut = (length as f64 * cut_fraction) as u64;
            let file = std::fs::OpenOptions::new().write(true).open(last).unwrap();
            file.set_len(cut).unwrap();
            use std::io::{Seek, Write};
            let mut file = file;
            file.seek(std::io::SeekFrom::End(0)).unwrap();
            file.write_all(&garbage).unwrap();
            drop(file);
            let (mut recovered, _) = PartitionLog::open(&path, TopicPartition::new("t", 0), config(400), 0, 0, false, 0).unwrap();
            let got = contents(&recovered);
            prop_assert!(got.len() <= appended.len());
            prop_assert_eq!(&got[..], &appended[..got.len()]);
            prop_assert_eq!(recovered.log_end_offset(), got.last().map_or(0, |(base, count, _)| base + *count as i64));
            let info = recovered.append(&incoming(1, 1, b"z"), 0).unwrap();
            prop_assert_eq!(info.base_offset, recovered.log_end_offset() - 1);
        }
    }
}
