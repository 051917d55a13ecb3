//! Cleaning (compacting) one partition log: the IO around `compaction.rs`.
//!
//! A pass, as Kafka's cleaner makes it:
//! 1. under the partition's lock, [`PartitionLog::clean_source`] takes the sealed
//!    segments' files and decides whether the log is due (`compaction::cleanable`);
//! 2. without the lock, [`build_offset_map`] reads the dirty segments for each key's
//!    latest offset, and [`write_cleaned`] writes each group of segments (at most
//!    `segment.bytes` together) as `<base>.log.cleaned`, keeping the records no later
//!    record supersedes;
//! 3. under the lock again, [`PartitionLog::swap_cleaned`] replaces the group by the
//!    cleaned segment, unless the log was truncated meanwhile.
//!
//! The swap is crash-safe: `.cleaned` is renamed `.swap` (the commit point), the old
//! segments' logs are renamed `.deleted` and their indexes removed, `.swap` is renamed
//! to `<base>.log`, and the `.deleted` files go. On open ([`complete_swaps`]) a
//! `.cleaned` file is an unfinished pass and goes; a `.swap` file replaces whatever
//! segments it covers and becomes the segment; `.deleted` files go. Either the old or
//! the new segments are found, never neither.

use super::PartitionLog;
use crate::log::batch::{BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use crate::log::compaction::{
    self, BatchRules, CleanPolicy, Cleanable, Filtered, OffsetMap, SegmentInfo, Throttle,
};
use crate::log::{LogError, segment};
use bytes::Bytes;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files and decisions a pass works from, taken under the lock.
pub struct CleanSource {
    pub dir: PathBuf,
    pub cleanable: Cleanable,
    /// The sealed segments in [log start, cleanable end), in order.
    segments: Vec<(SegmentInfo, Arc<File>)>,
    /// The log's truncation count when the source was taken.
    rewrites: u64,
    /// The log end offset then: the batch ending there keeps its tombstones, so the
    /// log never ends in a gap a consumer could not read past.
    log_end_offset: i64,
    /// Each producer's last offset in the log: that batch stays, even emptied.
    producers_last: HashMap<i64, i64>,
    /// Aborted transactions' offset ranges by producer: their data goes and never
    /// counts as a key's latest value.
    aborted: HashMap<i64, Vec<(i64, i64)>>,
    delete_retention_ms: i64,
    segment_bytes: u64,
    codec: Option<kafka_protocol::records::Compression>,
    levels: crate::log::recompress::CompressionLevels,
}

/// What a pass did, for the log line and the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanStats {
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_kept: u64,
    pub keys: u64,
    /// When the earliest kept tombstone's `delete.retention.ms` ends: the log is due
    /// again then, dirty or not.
    pub tombstones_expire_at: Option<i64>,
}

/// Where a swap stops, as a crash there would leave it (fault injection in tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapStep {
    /// `.cleaned` written and fsynced.
    Written,
    /// `.cleaned` renamed to `.swap`.
    Committed,
    /// The old segments' logs renamed `.deleted`, their indexes removed.
    OldRetired,
    /// `.swap` renamed to the segment's name.
    Renamed,
}

const CLEANED: &str = "cleaned";
const SWAP: &str = "swap";
const DELETED: &str = "deleted";

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

fn rename(from: &Path, to: &Path) -> Result<(), LogError> {
    std::fs::rename(from, to).map_err(|source| LogError::io(from, "rename for log cleaning", source))
}

fn remove(path: &Path) -> Result<(), LogError> {
    crate::log::index_file::remove_if_exists(path).map_err(|source| LogError::io(path, "remove", source))
}

impl PartitionLog {
    /// The source of a cleaning pass if this compacted log is due (`checkpoint`: where
    /// the last pass ended).
    pub fn clean_source(&self, checkpoint: Option<i64>, now_ms: i64, force: bool) -> Option<CleanSource> {
        if !self.config.compact_policy || self.offline {
            return None;
        }
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let infos: Vec<SegmentInfo> = self
            .segments
            .values()
            .zip(bases.iter().skip(1))
            .map(|(segment, next)| SegmentInfo {
                base_offset: segment.base_offset,
                end_offset: *next,
                size: segment.size(),
                max_timestamp: segment.max_timestamp,
                first_timestamp: segment.first_batch_timestamp,
            })
            .collect();
        let policy = CleanPolicy {
            min_cleanable_ratio: self.config.min_cleanable_ratio,
            min_lag_ms: self.config.min_compaction_lag_ms,
            max_lag_ms: self.config.max_compaction_lag_ms,
        };
        // Open transactions are never cleaned: the bound is the last stable offset.
        let cleanable = compaction::cleanable(
            &infos,
            self.last_stable_offset(),
            checkpoint,
            now_ms,
            policy,
            force,
        )?;
        let mut aborted: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for txn in self.aborted_transactions() {
            aborted
                .entry(txn.producer_id)
                .or_default()
                .push((txn.first_offset, txn.last_offset));
        }
        // Only the segments a pass reads are opened (the budget may have closed them).
        let segments = match infos
            .iter()
            .filter(|info| info.end_offset <= cleanable.end)
            .map(|info| {
                let segment = self.segments.get(&info.base_offset);
                segment
                    .map(segment::LogSegment::file_handle)
                    .transpose()
                    .map(|file| file.map(|file| (*info, file)))
            })
            .collect::<Result<Option<Vec<(SegmentInfo, Arc<File>)>>, LogError>>()
        {
            Ok(Some(segments)) => segments,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(topic_partition = %self.topic_partition, %error, "cannot open segments to clean");
                return None;
            }
        };
        Some(CleanSource {
            dir: self.dir.clone(),
            cleanable,
            segments,
            rewrites: self.rewrites,
            log_end_offset: self.log_end_offset(),
            producers_last: self.producers.last_offsets(),
            aborted,
            delete_retention_ms: self.config.delete_retention_ms,
            segment_bytes: self.config.segment_bytes,
            codec: self.config.compression,
            levels: self.config.compression_levels,
        })
    }

    /// Rolls the active segment of a compacted log once it is older than `segment.ms`,
    /// so that a log that takes no more writes still becomes cleanable.
    pub fn roll_if_old(&mut self, now_ms: i64) -> Result<(), LogError> {
        let Some(active) = self
            .active()
            .filter(|_| self.config.compact_policy && !self.offline)
        else {
            return Ok(());
        };
        let since = active.first_batch_timestamp.unwrap_or(active.created_at_ms);
        if active.size() > 0 && now_ms.saturating_sub(since) > self.config.segment_ms {
            self.roll(now_ms)?;
        }
        Ok(())
    }

    /// Replaces the segments at `group` (consecutive, sealed) by the cleaned segment at
    /// `cleaned`. False, and the cleaned file removed, when the log changed since
    /// `source` was taken. `stop_after` leaves the swap where a crash would (tests).
    pub fn swap_cleaned(
        &mut self,
        source: &mut CleanSource,
        group: &[i64],
        cleaned: &Path,
        stop_after: Option<SwapStep>,
    ) -> Result<bool, LogError> {
        let active = self.segments.keys().next_back().copied();
        let intact = self.rewrites == source.rewrites
            && !self.offline
            && group
                .iter()
                .all(|base| self.segments.contains_key(base) && Some(*base) != active);
        let Some(base) = group.first().copied().filter(|_| intact) else {
            remove(cleaned)?;
            return Ok(false);
        };
        if stop_after == Some(SwapStep::Written) {
            return Ok(true);
        }
        let log_path = segment::file_name(&self.dir, base, "log");
        let swap = with_suffix(&log_path, SWAP);
        rename(cleaned, &swap)?;
        super::move_dir::sync_dir(&self.dir)?;
        if stop_after == Some(SwapStep::Committed) {
            return Ok(true);
        }
        let mut retired = Vec::new();
        for old in group {
            if let Some(segment) = self.segments.remove(old) {
                retired.push(segment.retire(DELETED)?);
            }
        }
        if stop_after == Some(SwapStep::OldRetired) {
            return Ok(true);
        }
        rename(&swap, &log_path)?;
        super::move_dir::sync_dir(&self.dir)?;
        if stop_after == Some(SwapStep::Renamed) {
            return Ok(true);
        }
        let (segment, _) = segment::LogSegment::open(
            &self.dir,
            base,
            self.config.index_interval_bytes,
            self.config.max_index_size,
            true,
            false,
        )?;
        self.segments.insert(base, segment);
        // The merged segment's aborted-transaction entries, then the merged-away files.
        let next = self.segments.range(base + 1..).next().map(|(next, _)| *next);
        self.aborted
            .rewrite_segment(base, next)
            .map_err(|source| LogError::io(&self.dir, "write transaction index", source))?;
        for old in group.iter().filter(|old| **old != base) {
            remove(&segment::file_name(
                &self.dir,
                *old,
                crate::log::txn_index::EXTENSION,
            ))?;
        }
        for path in retired {
            remove(&path)?;
        }
        // A log dir move in progress must copy the rewritten segments again.
        self.rewrites += 1;
        source.rewrites = self.rewrites;
        Ok(true)
    }
}

/// Finishes or undoes the cleaning swaps a crash interrupted in a partition directory
/// (see the module doc). Returns the bases of segments made from a `.swap` file, whose
/// indexes must be rebuilt.
pub fn complete_swaps(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut swaps = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|source| LogError::io(dir, "list partition dir", source))?;
    for entry in entries {
        let entry = entry.map_err(|source| LogError::io(dir, "list partition dir", source))?;
        let path = entry.path();
        match path.extension().and_then(|extension| extension.to_str()) {
            Some(CLEANED) | Some(DELETED) => remove(&path)?,
            Some(SWAP) => {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(base) = name
                    .strip_suffix(".log.swap")
                    .and_then(|stem| stem.parse::<i64>().ok())
                {
                    swaps.push(base);
                } else {
                    remove(&path)?;
                }
            }
            _ => {}
        }
    }
    swaps.sort_unstable();
    for base in &swaps {
        let log_path = segment::file_name(dir, *base, "log");
        let swap = with_suffix(&log_path, SWAP);
        let file = File::open(&swap).map_err(|source| LogError::io(&swap, "open swap", source))?;
        let mut last = *base;
        for_each_batch(&file, 0, &mut |_, header| {
            last = last.max(header.last_offset());
            Ok(())
        })?;
        // The old segments it replaces: every one starting within its range.
        let entries =
            std::fs::read_dir(dir).map_err(|source| LogError::io(dir, "list partition dir", source))?;
        for entry in entries {
            let entry = entry.map_err(|source| LogError::io(dir, "list partition dir", source))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut parts = name.splitn(2, '.');
            let (Some(stem), Some(extension)) = (parts.next(), parts.next()) else {
                continue;
            };
            let covered = stem.parse::<i64>().is_ok_and(|old| old >= *base && old <= last);
            if covered && matches!(extension, "log" | "index" | "timeindex") {
                remove(&entry.path())?;
            }
        }
        rename(&swap, &log_path)?;
        tracing::info!(dir = %dir.display(), base, "completed an interrupted log cleaning swap");
    }
    if !swaps.is_empty() {
        super::move_dir::sync_dir(dir)?;
    }
    Ok(swaps)
}

/// Calls `each` with every whole batch of `file` from `position` on, reading in large
/// chunks. Stops at a torn tail.
fn for_each_batch(
    file: &File,
    mut position: u64,
    each: &mut dyn FnMut(Bytes, BatchHeader) -> Result<(), LogError>,
) -> Result<(), LogError> {
    const CHUNK: usize = 4 << 20;
    let size = file
        .metadata()
        .map_err(|source| LogError::io(Path::new("segment"), "stat for cleaning", source))?
        .len();
    let read = |position: u64, len: usize| -> Result<Bytes, LogError> {
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, position)
            .map_err(|source| LogError::io(Path::new("segment"), "read for cleaning", source))?;
        Ok(Bytes::from(buf))
    };
    while position + (HEADER_LEN as u64) <= size {
        let chunk = read(position, CHUNK.min((size - position) as usize))?;
        let mut used = 0;
        while used + HEADER_LEN <= chunk.len() {
            let Ok((_, batch_size)) = BatchHeader::peek_size(&chunk[used..]) else {
                return Ok(());
            };
            if batch_size < HEADER_LEN || used + batch_size > chunk.len() {
                break;
            }
            let bytes = chunk.slice(used..used + batch_size);
            let Ok(header) = BatchHeader::parse(&bytes) else {
                return Ok(());
            };
            each(bytes, header)?;
            used += batch_size;
        }
        if used == 0 {
            // One batch larger than a chunk.
            let Ok((_, batch_size)) = BatchHeader::peek_size(&chunk) else {
                return Ok(());
            };
            if batch_size < LOG_OVERHEAD || position + batch_size as u64 > size {
                return Ok(());
            }
            let bytes = read(position, batch_size)?;
            let Ok(header) = BatchHeader::parse(&bytes) else {
                return Ok(());
            };
            each(bytes, header)?;
            used = batch_size;
        }
        position += used as u64;
    }
    Ok(())
}

impl CleanSource {
    /// Whether `header` is data of an aborted transaction.
    fn is_aborted(&self, header: &BatchHeader) -> bool {
        header.is_transactional()
            && self.aborted.get(&header.producer_id).is_some_and(|ranges| {
                ranges
                    .iter()
                    .any(|(first, last)| *first <= header.base_offset && header.base_offset <= *last)
            })
    }
}

/// Each key's latest offset over the dirty segments, as many whole segments as the
/// budget holds. Returns the map and the offset it covers up to.
pub fn build_offset_map(
    source: &CleanSource,
    budget: usize,
    throttle: &mut Throttle,
    stats: &mut CleanStats,
) -> Result<(OffsetMap, i64), LogError> {
    let mut map = OffsetMap::new(budget);
    let mut covered = source.cleanable.first_dirty;
    for (info, file) in &source.segments {
        if info.base_offset < source.cleanable.first_dirty {
            continue;
        }
        let mut full = false;
        for_each_batch(file, 0, &mut |bytes, header| {
            stats.bytes_read += bytes.len() as u64;
            pause(throttle, bytes.len() as u64);
            if header.is_control() || source.is_aborted(&header) {
                return Ok(());
            }
            if let Some(keys) = compaction::batch_keys(&bytes, &header) {
                for (offset, key) in keys {
                    if let Some(key) = key {
                        full |= !map.put(&key, offset);
                    }
                }
            }
            Ok(())
        })?;
        if full {
            break;
        }
        covered = info.end_offset;
    }
    stats.keys = map.len() as u64;
    Ok((map, covered))
}

fn pause(throttle: &mut Throttle, bytes: u64) {
    let wait = throttle.account(bytes, std::time::Instant::now());
    if !wait.is_zero() {
        std::thread::sleep(wait);
    }
}

/// The groups of segments below `end` that are cleaned into one segment each: at most
/// `segment.bytes` together, and an offset range an index can address.
pub fn groups(source: &CleanSource, end: i64) -> Vec<Vec<i64>> {
    let mut groups: Vec<Vec<i64>> = Vec::new();
    let mut size = 0u64;
    let mut group_base = i64::MIN;
    for (info, _) in source.segments.iter().filter(|(info, _)| info.end_offset <= end) {
        let fits = !groups.is_empty()
            && size + info.size <= source.segment_bytes
            && info.end_offset.saturating_sub(group_base) < i32::MAX as i64;
        if fits {
            if let Some(group) = groups.last_mut() {
                group.push(info.base_offset);
            }
            size += info.size;
        } else {
            groups.push(vec![info.base_offset]);
            size = info.size;
            group_base = info.base_offset;
        }
    }
    groups
}

/// Writes the cleaned version of `group` to `<base>.log.cleaned` (fsynced) and returns
/// its path.
pub fn write_cleaned(
    source: &CleanSource,
    group: &[i64],
    map: &OffsetMap,
    now_ms: i64,
    throttle: &mut Throttle,
    stats: &mut CleanStats,
) -> Result<PathBuf, LogError> {
    let base = group.first().copied().unwrap_or_default();
    let path = with_suffix(&segment::file_name(&source.dir, base, "log"), CLEANED);
    let file = File::create(&path).map_err(|source| LogError::io(&path, "create cleaned segment", source))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    for (_, file) in source
        .segments
        .iter()
        .filter(|(info, _)| group.contains(&info.base_offset))
    {
        for_each_batch(file, 0, &mut |bytes, header| {
            stats.bytes_read += bytes.len() as u64;
            stats.records_read += header.records_count.max(0) as u64;
            let ends_log = header.last_offset() + 1 >= source.log_end_offset;
            let rules = BatchRules {
                map,
                drop_tombstones: !ends_log
                    && header.max_timestamp >= 0
                    && now_ms.saturating_sub(header.max_timestamp) > source.delete_retention_ms,
                keep_empty: source.producers_last.get(&header.producer_id) == Some(&header.last_offset()),
                codec: source.codec,
                levels: source.levels,
            };
            let (filtered, tombstone) = if header.is_control() {
                // Transaction markers stay: they end what consumers read of a transaction.
                (Filtered::Keep, false)
            } else if source.is_aborted(&header) {
                // Aborted data goes (all but a producer's last batch, kept for its sequence).
                (
                    if rules.keep_empty {
                        Filtered::Keep
                    } else {
                        Filtered::Drop
                    },
                    false,
                )
            } else {
                compaction::filter_batch(&bytes, &header, &rules)
            };
            // The last batch's tombstones wait for more data (a dirty pass), not a forced one.
            if tombstone && !ends_log {
                let expires = header
                    .max_timestamp
                    .max(0)
                    .saturating_add(source.delete_retention_ms);
                stats.tombstones_expire_at =
                    Some(stats.tombstones_expire_at.map_or(expires, |at| at.min(expires)));
            }
            let kept = match filtered {
                Filtered::Keep => Some(bytes),
                Filtered::Drop => None,
                Filtered::Rewrite(rewritten) => Some(rewritten),
            };
            if let Some(kept) = kept {
                if let Ok(kept_header) = BatchHeader::parse(&kept) {
                    stats.records_kept += kept_header.records_count.max(0) as u64;
                }
                stats.bytes_written += kept.len() as u64;
                pause(throttle, kept.len() as u64);
                out.write_all(&kept)
                    .map_err(|error| LogError::io(&path, "write cleaned segment", error))?;
            }
            Ok(())
        })?;
    }
    let file = out
        .into_inner()
        .map_err(|error| LogError::io(&path, "write cleaned segment", error.into_error()))?;
    file.sync_all()
        .map_err(|error| LogError::io(&path, "sync cleaned segment", error))?;
    Ok(path)
}

/// What one pass over a log needs.
#[derive(Debug, Clone, Copy)]
pub struct PassSettings {
    /// Where the last pass ended (the cleaner checkpoint).
    pub checkpoint: Option<i64>,
    /// Clean even without dirty data: a kept tombstone has expired.
    pub force: bool,
    pub dedupe_buffer_size: usize,
    pub now_ms: i64,
    /// Stop the first swap at this step, as a crash would (tests).
    pub stop_after: Option<SwapStep>,
}

/// What a pass did.
#[derive(Debug, Clone, Copy)]
pub struct PassResult {
    /// The new checkpoint: everything below is clean.
    pub cleaned_to: i64,
    pub stats: CleanStats,
    pub groups: usize,
}

/// One cleaning pass over a log, if it is due; None when it is not, or when the log
/// changed under the pass (the next one starts over). The lock is held only to take
/// the source and for each swap.
pub fn clean_pass(
    log: &parking_lot::Mutex<PartitionLog>,
    settings: PassSettings,
    throttle: &mut Throttle,
) -> Result<Option<PassResult>, LogError> {
    let source = log
        .lock()
        .clean_source(settings.checkpoint, settings.now_ms, settings.force);
    let Some(mut source) = source else {
        return Ok(None);
    };
    let mut stats = CleanStats::default();
    let (map, covered) = build_offset_map(&source, settings.dedupe_buffer_size, throttle, &mut stats)?;
    if covered == source.cleanable.first_dirty && source.cleanable.dirty_bytes > 0 {
        tracing::warn!(
            dir = %source.dir.display(),
            "log.cleaner.dedupe.buffer.size cannot hold the keys of one segment; not cleaned"
        );
        return Ok(None);
    }
    let groups = groups(&source, covered);
    for group in &groups {
        let cleaned = match write_cleaned(&source, group, &map, settings.now_ms, throttle, &mut stats) {
            Ok(cleaned) => cleaned,
            Err(error) => {
                let base = group.first().copied().unwrap_or_default();
                let _ = remove(&with_suffix(
                    &segment::file_name(&source.dir, base, "log"),
                    CLEANED,
                ));
                return Err(error);
            }
        };
        if !log
            .lock()
            .swap_cleaned(&mut source, group, &cleaned, settings.stop_after)?
        {
            return Ok(None);
        }
        if settings.stop_after.is_some() {
            break;
        }
    }
    Ok(Some(PassResult {
        cleaned_to: covered,
        stats,
        groups: groups.len(),
    }))
}

#[cfg(test)]
#[path = "clean_tests.rs"]
mod tests;
