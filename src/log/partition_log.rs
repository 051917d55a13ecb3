//! The log of one partition: an ordered set of segments in `<log.dir>/<topic>-<partition>/`.
//!
//! It knows the four offsets every later feature leans on:
//! - `log_start_offset`: the first offset still readable: the base of the oldest
//!   segment, or above it after DeleteRecords (`log_start.rs`);
//! - `log_end_offset`: the offset the next appended record gets;
//! - `high_watermark`: the offset up to which consumers may read (set by the caller,
//!   which knows the ISR; always <= log_end_offset);
//! - `recovery_point`: everything below it is fsynced.
//!
//! and the `leader_epoch` it stamps into appended batches, with the leader-epoch cache
//! (`leader-epoch-checkpoint`) that records where each epoch began.
//!
//! A leader appends with [`PartitionLog::append`] (offsets and epoch assigned here); a
//! follower with [`PartitionLog::append_as_follower`] (the leader's offsets and epochs,
//! byte for byte), and cuts a diverged tail with [`PartitionLog::truncate_to`].
//!
//! Both record the idempotent-producer and transaction state of what they append
//! (`txn.rs`: markers, last stable offset, aborted-transaction index), which the log keeps
//! in step with its batches: snapshots at rolls and shutdown, rebuilt at open and after
//! a truncation from the newest snapshot plus the batches after it.

use super::batch::IncomingBatch;
use super::leader_epoch::{EpochEntries, LeaderEpochCache};
use super::producer_snapshot;
use super::producer_state::ProducerStateTable;
use super::segment::{self, FileSlice, LogSegment, RecoveryReport};
use super::txn_index::AbortedIndex;
use super::{LogError, TopicPartition};
use crate::log::LogConfig;
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
    /// The broker's append time on a LogAppendTime topic; -1 otherwise.
    pub log_append_time_ms: i64,
}

pub struct PartitionLog {
    pub topic_partition: TopicPartition,
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<i64, LogSegment>,
    /// The active segment's next offset, kept here because every fetch of every
    /// partition asks for it: appends, truncations and rolls set it (`sync_end`).
    log_end_offset: i64,
    /// Never below the oldest segment's base; above it after DeleteRecords.
    log_start_offset: i64,
    high_watermark: i64,
    leader_epoch: i32,
    /// Where each leader epoch began in this log.
    epochs: LeaderEpochCache,
    /// Idempotent-producer and transaction state of the batches in this log.
    producers: ProducerStateTable,
    /// Aborted transactions by marker offset, stored per segment (`.txnindex`).
    aborted: AbortedIndex,
    recovery_point: i64,
    /// Wall-clock time of the oldest append not yet fsynced, for `flush.ms`.
    /// Bytes written since open, for flush statistics.
    written_bytes: u64,
    oldest_unflushed_ms: Option<i64>,
    /// Set after a fatal disk error or at shutdown: no more appends.
    offline: bool,
    /// Counts truncations, which may rewrite sealed segments (a log dir move copies
    /// them again when it changed).
    rewrites: u64,
    /// Directories holding entries created since the last flush (a new segment's, a new
    /// partition's): fsynced with the next flush, before the data in them counts as
    /// durable, so that creating partitions and rolling segments costs no fsync.
    unsynced_dirs: Vec<PathBuf>,
}

/// What one flush must fsync (see [`PartitionLog::unflushed_files`]).
pub struct UnflushedFiles {
    pub files: Vec<Arc<File>>,
    pub dirs: Vec<PathBuf>,
    /// The log end offset when the files were taken: what the flush makes durable.
    pub end_offset: i64,
    /// The log's rewrite count then, for [`PartitionLog::mark_flushed`].
    pub rewrites: u64,
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
        // The partition directory's entry in its log dir, and the first segment's in it.
        let unsynced_dirs = dir
            .parent()
            .map(Path::to_path_buf)
            .into_iter()
            .chain([dir.to_path_buf()])
            .collect();
        let first = LogSegment::create(dir, 0, config.index_interval_bytes, config.max_index_size, now_ms)?;
        Ok(PartitionLog {
            topic_partition,
            dir: dir.to_path_buf(),
            config,
            segments: BTreeMap::from([(0, first)]),
            log_end_offset: 0,
            log_start_offset: 0,
            high_watermark: 0,
            leader_epoch,
            epochs: LeaderEpochCache::new(dir, EpochEntries::default()),
            producers: ProducerStateTable::default(),
            aborted: AbortedIndex::new(dir),
            recovery_point: 0,
            oldest_unflushed_ms: None,
            written_bytes: 0,
            offline: false,
            rewrites: 0,
            unsynced_dirs,
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
        // A cleaning swap a crash interrupted is finished first.
        let swapped = clean::complete_swaps(dir)?;
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
                && *base < expected
            {
                // An overlap: everything from here does not continue the log, so it
                // goes. (A gap is a compacted segment's.)
                for later in &bases[position..] {
                    remove_segment_files(dir, *later)?;
                }
                break;
            }
            let active = position + 1 == bases.len();
            // After an unclean stop the active segment is always checked: a recovery
            // point from before a truncation may lie past what the segment now holds.
            let recover =
                (!clean_shutdown && (*base >= first_to_recover || active)) || swapped.contains(base);
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
        let mut unsynced_dirs = Vec::new();
        if segments.is_empty() {
            let first =
                LogSegment::create(dir, 0, config.index_interval_bytes, config.max_index_size, now_ms)?;
            segments.insert(0, first);
            unsynced_dirs.push(dir.to_path_buf());
        }
        let mut log = PartitionLog {
            topic_partition,
            dir: dir.to_path_buf(),
            config,
            segments,
            log_end_offset: 0,
            log_start_offset: 0,
            high_watermark: 0,
            leader_epoch,
            epochs: LeaderEpochCache::new(dir, EpochEntries::default()),
            producers: ProducerStateTable::default(),
            aborted: AbortedIndex::new(dir),
            recovery_point: 0,
            oldest_unflushed_ms: None,
            written_bytes: 0,
            offline: false,
            rewrites: 0,
            unsynced_dirs,
        };
        log.sync_end();
        log.log_start_offset = log.segments.keys().next().copied().unwrap_or(0);
        // What survived recovery (or a clean shutdown) is on disk and checked.
        log.recovery_point = log.log_end_offset();
        log.high_watermark = log.log_end_offset();
        log.load_epochs()?;
        let bases: Vec<i64> = log.segments.keys().copied().collect();
        log.aborted = AbortedIndex::load(dir, &bases, log.log_end_offset())
            .map_err(|source| LogError::io(dir, "load transaction indexes", source))?;
        log.load_producer_state()?;
        Ok((log, report))
    }

    /// Rebuilds the producer table from the snapshots and batches (`producer_snapshot`),
    /// and the aborted-transaction entries of the replayed batches.
    fn load_producer_state(&mut self) -> Result<(), LogError> {
        let rebuilt = producer_snapshot::rebuild(&self.dir, self.segments.values(), self.log_end_offset())?;
        self.producers = rebuilt.table;
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        self.aborted
            .replace_from(rebuilt.from, &rebuilt.aborted, &bases)
            .map_err(|source| LogError::io(&self.dir, "rebuild transaction indexes", source))
    }

    /// Writes a producer snapshot at the log end. Failing only costs a longer scan at
    /// the next start, so it is logged, not fatal.
    fn snapshot_producers(&self) {
        let offset = self.log_end_offset();
        if let Err(error) = producer_snapshot::write(&self.dir, offset, &self.producers) {
            tracing::warn!(topic_partition = %self.topic_partition, offset, %error, "cannot write producer snapshot");
        }
    }

    /// The idempotent-producer state of the batches in this log.
    pub fn producers(&self) -> &ProducerStateTable {
        &self.producers
    }

    /// Loads the leader-epoch checkpoint, or rebuilds it from the batches' epochs, and
    /// fits it to the log as recovered.
    fn load_epochs(&mut self) -> Result<(), LogError> {
        let (mut cache, mut changed) = match LeaderEpochCache::read(&self.dir) {
            Some(cache) => (cache, false),
            None => {
                let mut entries = EpochEntries::default();
                for segment in self.segments.values() {
                    for header in segment.headers()? {
                        entries.assign(header.partition_leader_epoch, header.base_offset);
                    }
                }
                (LeaderEpochCache::new(&self.dir, entries), true)
            }
        };
        changed |= cache.entries.truncate_from_end(self.log_end_offset());
        changed |= cache.entries.truncate_from_start(self.log_start_offset());
        self.epochs = cache;
        if changed {
            self.save_epochs()?;
        }
        Ok(())
    }

    fn save_epochs(&mut self) -> Result<(), LogError> {
        if let Err(source) = self.epochs.save() {
            self.offline = true;
            return Err(LogError::io(
                self.epochs.path(),
                "write leader-epoch-checkpoint",
                source,
            ));
        }
        Ok(())
    }

    /// The epoch of the last batch (or of a leadership with no batch yet), if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.entries.latest_epoch()
    }

    /// Where `epoch` began in this log, if it is in the cache.
    pub fn epoch_start_offset(&self, epoch: i32) -> Option<i64> {
        self.epochs
            .entries
            .0
            .iter()
            .find(|(entry_epoch, _)| *entry_epoch == epoch)
            .map(|(_, start)| *start)
    }

    /// Where `epoch` ends in this log (Kafka's OffsetsForLeaderEpoch answer).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.entries.end_offset_for(epoch, self.log_end_offset())
    }

    /// Records that a new leadership in `epoch` starts at the log end, as a new leader
    /// does before it appends.
    pub fn start_epoch(&mut self, epoch: i32) -> Result<(), LogError> {
        self.leader_epoch = epoch;
        if self.epochs.entries.assign(epoch, self.log_end_offset()) {
            self.save_epochs()?;
        }
        Ok(())
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
        self.log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    /// After the active segment took or lost batches, or another became active.
    fn sync_end(&mut self) {
        self.log_end_offset = self.active().map_or(0, LogSegment::next_offset);
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

    /// Offline after a fatal error, at shutdown, or because its log dir failed.
    pub fn is_offline(&self) -> bool {
        self.offline || self.dir.parent().is_some_and(super::dir_failure::is_failed)
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
        if self.is_offline() {
            return Err(LogError::Offline {
                topic_partition: self.topic_partition.clone(),
            });
        }
        let stamped: Vec<IncomingBatch>;
        let (batches, log_append_time_ms) = if self.config.log_append_time {
            stamped = batches
                .iter()
                .map(|batch| batch.with_log_append_time(now_ms))
                .collect();
            (&stamped[..], now_ms)
        } else {
            (batches, -1)
        };
        let base_offset = self.log_end_offset();
        let total: u64 = batches.iter().map(|batch| batch.bytes.len() as u64).sum();
        let messages: i64 = batches
            .iter()
            .map(|batch| batch.header.last_offset_delta as i64 + 1)
            .sum();
        let epoch = self.leader_epoch;
        self.write(batches, Some((base_offset, epoch)), total, messages, now_ms)?;
        let mut next = base_offset;
        for batch in batches {
            let mut header = batch.header;
            header.base_offset = next;
            self.record_batch(&header, &batch.bytes)?;
            next = header.last_offset() + 1;
        }
        if self.epochs.entries.assign(epoch, base_offset) {
            self.save_epochs()?;
        }
        Ok(AppendInfo {
            base_offset,
            last_offset: base_offset + messages - 1,
            log_start_offset: self.log_start_offset(),
            log_append_time_ms,
        })
    }

    /// Rolls if due, then writes the batches to the active segment (see
    /// `LogSegment::append` for `stamp`). A fatal disk error takes the log offline.
    fn write(
        &mut self,
        batches: &[IncomingBatch],
        stamp: Option<(i64, i32)>,
        total_bytes: u64,
        messages: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let result = self.maybe_roll(total_bytes, messages, now_ms).and_then(|_| {
            match self.segments.values_mut().next_back() {
                Some(active) => active.append(batches, stamp),
                None => Ok(()),
            }
        });
        self.sync_end();
        if let Err(error) = &result
            && error.is_fatal()
        {
            self.offline = true;
        }
        result?;
        self.written_bytes += total_bytes;
        self.oldest_unflushed_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// Appends a leader's batches as they are (offsets and epochs included). Each must
    /// start at or after the end of what precedes it: gaps are the leader's compacted
    /// batches, overlaps a fetch that does not continue this log.
    pub fn append_as_follower(
        &mut self,
        batches: &[IncomingBatch],
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        if self.is_offline() {
            return Err(LogError::Offline {
                topic_partition: self.topic_partition.clone(),
            });
        }
        let log_end_offset = self.log_end_offset();
        let mut expected = log_end_offset;
        for batch in batches {
            if batch.header.base_offset < expected {
                return Err(LogError::NonContiguous {
                    expected,
                    found: batch.header.base_offset,
                });
            }
            expected = batch.header.last_offset() + 1;
        }
        let Some(first) = batches.first() else {
            return Ok(AppendInfo {
                base_offset: log_end_offset,
                last_offset: log_end_offset - 1,
                log_start_offset: self.log_start_offset(),
                log_append_time_ms: -1,
            });
        };
        let base_offset = first.header.base_offset;
        let total: u64 = batches.iter().map(|batch| batch.bytes.len() as u64).sum();
        self.write(batches, None, total, expected - base_offset, now_ms)?;
        let mut changed = false;
        for batch in batches {
            self.record_batch(&batch.header, &batch.bytes)?;
            changed |= self
                .epochs
                .entries
                .assign(batch.header.partition_leader_epoch, batch.header.base_offset);
        }
        if changed {
            self.save_epochs()?;
        }
        Ok(AppendInfo {
            base_offset,
            last_offset: expected - 1,
            log_start_offset: self.log_start_offset(),
            log_append_time_ms: -1,
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
            let sealed = active.base_offset;
            self.aborted
                .sync(sealed)
                .map_err(|source| LogError::io(&self.dir, "sync transaction index", source))?;
        }
        let segment = LogSegment::create(
            &self.dir,
            new_base,
            self.config.index_interval_bytes,
            self.config.max_index_size,
            now_ms,
        )?;
        self.segments.insert(new_base, segment);
        self.sync_end();
        self.note_new_entry();
        self.snapshot_producers();
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
        if offset == log_end_offset {
            // Nothing at or past the end: an idle fetch touches no segment file.
            return Ok(None);
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

    /// A segment was created in this partition's directory: its entry is fsynced with
    /// the next flush.
    fn note_new_entry(&mut self) {
        if !self.unsynced_dirs.contains(&self.dir) {
            self.unsynced_dirs.push(self.dir.clone());
        }
    }

    /// What a flush must fsync, so the caller can do it without holding the log (group
    /// commit): the files holding unflushed data, the directories whose new entries
    /// (taken here: they are the caller's to sync now) and the offset they cover.
    /// Fails if a segment the budget closed cannot be opened again.
    pub fn unflushed_files(&mut self) -> Result<UnflushedFiles, LogError> {
        let first = self
            .segments
            .range(..=self.recovery_point)
            .next_back()
            .map_or(0, |(base, _)| *base);
        let files = self
            .segments
            .range(first..)
            .map(|(_, segment)| segment.file_handle())
            .collect::<Result<_, _>>()?;
        Ok(UnflushedFiles {
            files,
            dirs: std::mem::take(&mut self.unsynced_dirs),
            end_offset: self.log_end_offset(),
            rewrites: self.rewrites,
        })
    }

    /// Bytes written to this log since it was opened (flush statistics).
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    /// Records that everything below `offset` is durable, as a flush that took its
    /// files at `rewrites` found. A truncation since then voids it: the offsets it
    /// covered may hold other data now.
    pub fn mark_flushed(&mut self, offset: i64, rewrites: u64) {
        if rewrites == self.rewrites && offset > self.recovery_point {
            self.recovery_point = offset;
            if self.recovery_point >= self.log_end_offset() {
                self.oldest_unflushed_ms = None;
            }
        }
    }

    /// Takes the log offline (it is being removed, or a fatal error hit it): nothing
    /// more is appended to it.
    pub fn take_offline(&mut self) {
        self.offline = true;
    }

    /// A fatal disk error (a failed fsync): this log and every other log of its log dir
    /// go offline.
    pub fn fail_dir(&mut self) {
        self.offline = true;
        if let Some(log_dir) = self.dir.parent() {
            super::dir_failure::mark_failed(log_dir);
        }
    }

    /// Flushes everything and seals the active segment's indexes, for a clean shutdown.
    /// The log takes no more appends afterwards.
    pub fn close(&mut self) -> Result<(), LogError> {
        self.offline = true;
        for segment in self.segments.values_mut() {
            segment.flush()?;
        }
        for dir in std::mem::take(&mut self.unsynced_dirs) {
            super::checkpoint::sync_dir(&dir)
                .map_err(|source| LogError::io(&dir, "fsync log dir", source))?;
        }
        if let Some(active) = self.segments.values_mut().next_back() {
            active.seal()?;
        }
        for base in self.segments.keys() {
            self.aborted
                .sync(*base)
                .map_err(|source| LogError::io(&self.dir, "sync transaction index", source))?;
        }
        self.recovery_point = self.log_end_offset();
        self.snapshot_producers();
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
    for extension in segment::FILE_EXTENSIONS {
        let path = segment::file_name(dir, base_offset, extension);
        super::index_file::remove_if_exists(&path)
            .map_err(|source| LogError::io(&path, "remove segment", source))?;
    }
    Ok(())
}

#[path = "log_start.rs"]
mod log_start;

#[path = "move_dir.rs"]
pub mod move_dir;

#[path = "clean.rs"]
pub mod clean;

#[path = "txn.rs"]
mod txn;

#[path = "truncate.rs"]
mod truncate;

#[path = "lookup.rs"]
mod lookup;

#[cfg(test)]
#[path = "partition_log_tests.rs"]
mod tests;
