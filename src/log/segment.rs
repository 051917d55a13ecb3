//! One segment of a partition's log: `<base_offset>.log` with its `.index` and `.timeindex`
//! (and the `.txnindex` that the partition's aborted-transaction index keeps).
//!
//! The `.log` file is a plain sequence of record batches exactly as served to consumers.
//! Appends go through one vectored write per produce request: the stamped 17-byte prefix
//! of each batch from memory, then the rest of the batch straight from the request buffer.
//!
//! Crash rule: the `.log` is the truth. `recover` rereads it from the start, checks each
//! batch's length and CRC, truncates at the first bad or torn batch and rebuilds both
//! indexes from what remains.

use super::LogError;
use super::batch::{self, BatchHeader, HEADER_LEN, IncomingBatch, LOG_OVERHEAD, STAMPED_PREFIX_LEN};
use super::offset_index::OffsetIndex;
use super::open_files::{self, Budget, Cost, Handles, Slot};
use super::time_index::TimeIndex;
use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A byte range of a segment file. The file handle is held, so the range stays readable
/// even if the segment is deleted by retention while a fetch is sending it.
#[derive(Clone, Debug)]
pub struct FileSlice {
    pub file: Arc<File>,
    pub position: u64,
    pub len: u64,
    /// Records in the batches of the range (their headers' counts).
    pub records: u64,
    /// The last offset of the range's last batch (a share fetch acquires up to it).
    pub last_offset: i64,
}

impl FileSlice {
    /// Reads the range into memory (the copying path).
    pub fn read_to_vec(&self) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.len as usize];
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf)
    }
}

/// Every file a segment may have, by extension.
pub const FILE_EXTENSIONS: [&str; 4] = ["log", "index", "timeindex", super::txn_index::EXTENSION];

pub fn file_name(dir: &Path, base_offset: i64, extension: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{extension}"))
}

pub struct LogSegment {
    pub base_offset: i64,
    path: PathBuf,
    /// The `.log` descriptor and both indexes, closed by the open-file budget when the
    /// segment is not used and opened again on its next use.
    files: Arc<Slot<SegmentFiles>>,
    /// Bytes of valid batches in the file.
    size: u64,
    /// The offset after the last batch in this segment.
    next_offset: i64,
    bytes_since_last_index_entry: u64,
    /// The largest batch max_timestamp in the segment (-1 when empty).
    pub max_timestamp: i64,
    /// Timestamp of the first batch, used by `segment.ms` rolling (None when empty).
    pub first_batch_timestamp: Option<i64>,
    /// Wall-clock creation time, for `segment.ms` when batches carry no usable timestamp.
    pub created_at_ms: i64,
    index_interval_bytes: u64,
}

/// The open files of a segment (see `open_files`).
pub struct SegmentFiles {
    path: PathBuf,
    log: Option<Arc<File>>,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
}

impl SegmentFiles {
    fn log(&self) -> std::io::Result<&Arc<File>> {
        self.log
            .as_ref()
            .ok_or_else(|| std::io::Error::other("segment file not open"))
    }
}

impl Handles for SegmentFiles {
    fn reopen(&mut self) -> std::io::Result<()> {
        if self.log.is_none() {
            self.log = Some(Arc::new(
                OpenOptions::new().read(true).write(true).open(&self.path)?,
            ));
        }
        self.offset_index.file_mut().reopen()?;
        self.time_index.file_mut().reopen()
    }

    fn release(&mut self) {
        self.log = None;
        self.offset_index.file_mut().release();
        self.time_index.file_mut().release();
    }

    fn is_released(&self) -> bool {
        self.log.is_none() || self.offset_index.file().is_released() || self.time_index.file().is_released()
    }

    fn cost(&self) -> Cost {
        let (offsets, times) = (self.offset_index.file(), self.time_index.file());
        Cost {
            fds: usize::from(self.log.is_some()) + offsets.fds() + times.fds(),
            maps: offsets.maps() + times.maps(),
        }
    }
}

#[cfg(test)]
thread_local! {
    /// A budget for the segments a test creates on this thread (tests of eviction).
    pub(crate) static TEST_BUDGET: std::cell::Cell<Option<&'static Budget>> =
        const { std::cell::Cell::new(None) };
}

fn budget() -> &'static Budget {
    #[cfg(test)]
    if let Some(budget) = TEST_BUDGET.with(std::cell::Cell::get) {
        return budget;
    }
    open_files::global()
}

fn io_error<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> LogError + 'a {
    move |source| LogError::io(path, op, source)
}

impl LogSegment {
    /// Runs `use_files` on the segment's open files, reopening them if the budget
    /// closed them.
    fn with_files<R>(&self, use_files: impl FnOnce(&mut SegmentFiles) -> R) -> Result<R, LogError> {
        self.files
            .with(use_files)
            .map_err(io_error(&self.path, "reopen segment"))
    }

    /// The `.log` descriptor, reopened if needed.
    fn log_file(&self) -> Result<Arc<File>, LogError> {
        self.with_files(|files| files.log().cloned())?
            .map_err(io_error(&self.path, "reopen segment"))
    }

    /// Creates a new, empty, active segment.
    pub fn create(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
        max_index_size: u64,
        now_ms: i64,
    ) -> Result<Self, LogError> {
        let path = file_name(dir, base_offset, "log");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|source| LogError::io(&path, "create segment", source))?;
        let offset_index = OffsetIndex::open(
            &file_name(dir, base_offset, "index"),
            base_offset,
            max_index_size,
            false,
            true,
        )
        .map_err(|source| LogError::io(&path, "create offset index", source))?;
        let time_index = TimeIndex::open(
            &file_name(dir, base_offset, "timeindex"),
            base_offset,
            max_index_size,
            false,
            true,
        )
        .map_err(|source| LogError::io(&path, "create time index", source))?;
        let files = SegmentFiles {
            path: path.clone(),
            log: Some(Arc::new(file)),
            offset_index,
            time_index,
        };
        Ok(LogSegment {
            base_offset,
            path,
            files: Slot::new(budget(), files),
            size: 0,
            next_offset: base_offset,
            bytes_since_last_index_entry: 0,
            max_timestamp: -1,
            first_batch_timestamp: None,
            created_at_ms: now_ms,
            index_interval_bytes,
        })
    }

    /// Opens an existing segment. When `recover` is false its indexes are trusted if sane
    /// and only the last batch is read to learn the next offset; when true (or when an
    /// index looks wrong) the whole file is checked and the indexes rebuilt.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
        max_index_size: u64,
        recover: bool,
        active: bool,
    ) -> Result<(Self, RecoveryReport), LogError> {
        let path = file_name(dir, base_offset, "log");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| LogError::io(&path, "open segment", source))?;
        let size = file
            .metadata()
            .map_err(|source| LogError::io(&path, "stat segment", source))?
            .len();
        let created_at_ms = file
            .metadata()
            .ok()
            .and_then(|meta| meta.modified().ok())
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |duration| duration.as_millis() as i64);
        let index_path = file_name(dir, base_offset, "index");
        let time_path = file_name(dir, base_offset, "timeindex");
        let keep = !recover && index_path.exists() && time_path.exists();
        // A sealed segment whose indexes are kept is mapped as it is: no preallocation,
        // no trimming and fsync again, no descriptors held (a restart with many
        // partitions pays nothing per sealed segment but two mappings).
        let open_indexes = |keep: bool, writable: bool| -> Result<(OffsetIndex, TimeIndex), LogError> {
            Ok((
                OffsetIndex::open(&index_path, base_offset, max_index_size, keep, writable)
                    .map_err(|source| LogError::io(&index_path, "open offset index", source))?,
                TimeIndex::open(&time_path, base_offset, max_index_size, keep, writable)
                    .map_err(|source| LogError::io(&time_path, "open time index", source))?,
            ))
        };
        let (offset_index, time_index) = open_indexes(keep, active || !keep)?;
        let files = SegmentFiles {
            path: path.clone(),
            log: Some(Arc::new(file)),
            offset_index,
            time_index,
        };
        let mut segment = LogSegment {
            base_offset,
            path,
            files: Slot::new(budget(), files),
            size,
            next_offset: base_offset,
            bytes_since_last_index_entry: 0,
            max_timestamp: -1,
            first_batch_timestamp: None,
            created_at_ms,
            index_interval_bytes,
        };
        let trusted = keep
            && segment.with_files(|files| files.offset_index.is_sane(size) && files.time_index.is_sane())?;
        let report = if trusted && segment.load_tail()? {
            RecoveryReport::default()
        } else {
            // The file disagrees with its indexes: check it all and rebuild them.
            if segment.with_files(|files| !files.offset_index.is_active() || !files.time_index.is_active())? {
                let (offset_index, time_index) = open_indexes(false, true)?;
                segment.with_files(|files| {
                    files.offset_index = offset_index;
                    files.time_index = time_index;
                })?;
            }
            segment.recover()?
        };
        if !active {
            segment.seal()?;
        }
        Ok((segment, report))
    }

    /// Learns next offset, timestamps and index bookkeeping by scanning from the last
    /// indexed batch to the end (trusting the file, as after a clean shutdown). False
    /// if the file disagrees with that promise (the caller then recovers it).
    fn load_tail(&mut self) -> Result<bool, LogError> {
        let base_offset = self.base_offset;
        let (start, max_timestamp) = self.with_files(|files| {
            (
                files.offset_index.last_entry().unwrap_or((base_offset, 0)).1,
                files
                    .time_index
                    .last_entry()
                    .map_or(-1, |(timestamp, _)| timestamp),
            )
        })?;
        let file = self.log_file()?;
        self.first_batch_timestamp = self.header_in(&file, 0)?.map(|header| header.max_timestamp);
        self.max_timestamp = max_timestamp;
        let mut position = start;
        while let Some(header) = self.header_in(&file, position)? {
            let end = position + header.size() as u64;
            if end > self.size {
                break;
            }
            self.next_offset = header.last_offset() + 1;
            self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
            position = end;
        }
        Ok(position == self.size)
    }

    /// Reads and checks every batch, truncates at the first bad one, rebuilds the indexes.
    pub fn recover(&mut self) -> Result<RecoveryReport, LogError> {
        let base_offset = self.base_offset;
        self.with_files(|files| {
            files.offset_index.truncate_to(base_offset);
            files.time_index.truncate_to(base_offset);
        })?;
        self.bytes_since_last_index_entry = 0;
        self.max_timestamp = -1;
        self.first_batch_timestamp = None;
        self.next_offset = self.base_offset;
        let mut position = 0u64;
        let mut report = RecoveryReport::default();
        let mut buf = Vec::new();
        loop {
            let mut prefix = [0u8; LOG_OVERHEAD];
            if position + LOG_OVERHEAD as u64 > self.size {
                break;
            }
            self.read_exact(&mut prefix, position)?;
            let Ok((_, size)) = BatchHeader::peek_size(&prefix) else {
                break;
            };
            if position + size as u64 > self.size {
                break;
            }
            buf.resize(size, 0);
            self.read_exact(&mut buf, position)?;
            let header = match batch::validate_stored(&buf) {
                Ok(header) if header.base_offset >= self.next_offset => header,
                _ => break,
            };
            self.index_batch(&header, position)?;
            self.next_offset = header.last_offset() + 1;
            position += size as u64;
            report.batches += 1;
        }
        if position < self.size {
            report.truncated_bytes = self.size - position;
            self.log_file()?
                .set_len(position)
                .map_err(|source| LogError::io(&self.path, "truncate torn tail", source))?;
            self.size = position;
        }
        Ok(report)
    }

    fn read_exact(&self, buf: &mut [u8], position: u64) -> Result<(), LogError> {
        let file = self.log_file()?;
        self.read_exact_in(&file, buf, position)
    }

    fn read_exact_in(&self, file: &File, buf: &mut [u8], position: u64) -> Result<(), LogError> {
        file.read_exact_at(buf, position)
            .map_err(|source| LogError::io(&self.path, "read segment", source))
    }

    /// The header of the batch at `position`, or None at (or past) the end. Takes the
    /// descriptor from the caller, so a scan over many batches takes the files once.
    fn header_in(&self, file: &File, position: u64) -> Result<Option<BatchHeader>, LogError> {
        if position + HEADER_LEN as u64 > self.size {
            return Ok(None);
        }
        let mut buf = [0u8; HEADER_LEN];
        self.read_exact_in(file, &mut buf, position)?;
        BatchHeader::parse(&buf).map(Some).map_err(|_| LogError::Corrupt {
            path: self.path.clone(),
            position,
        })
    }

    fn index_batch(&mut self, header: &BatchHeader, position: u64) -> Result<(), LogError> {
        let slot = Arc::clone(&self.files);
        slot.with(|files| self.index_batch_in(files, header, position))
            .map_err(io_error(&self.path, "reopen segment"))
    }

    /// [`LogSegment::index_batch`] with the files open.
    fn index_batch_in(&mut self, files: &mut SegmentFiles, header: &BatchHeader, position: u64) {
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(header.max_timestamp);
        }
        // As Kafka: the first batch needs no entry (a lookup that finds none starts at the
        // segment's base), so a segment smaller than `index.interval.bytes` leaves its
        // indexes empty and unmapped.
        if self.bytes_since_last_index_entry >= self.index_interval_bytes {
            files.offset_index.append(header.base_offset, position);
            if header.max_timestamp > self.max_timestamp {
                files
                    .time_index
                    .maybe_append(header.max_timestamp, header.base_offset);
            }
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += header.size() as u64;
        self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
    }

    /// Appends batches. With `stamp = Some((first_offset, leader_epoch))` (a leader's
    /// append) the base offsets are assigned from `first_offset` on and the epoch stamped;
    /// with None (a follower's append) the batches keep the offsets and epochs the leader
    /// gave them, byte for byte. One vectored write, no copy of the records.
    pub fn append(&mut self, batches: &[IncomingBatch], stamp: Option<(i64, i32)>) -> Result<(), LogError> {
        let first_offset = match (stamp, batches.first()) {
            (Some((first_offset, _)), _) => first_offset,
            (None, Some(first)) => first.header.base_offset,
            (None, None) => return Ok(()),
        };
        let mut prefixes = Vec::with_capacity(batches.len());
        let mut next = first_offset;
        for incoming in batches {
            let epoch = stamp.map_or(incoming.header.partition_leader_epoch, |(_, epoch)| epoch);
            let base = if stamp.is_some() {
                next
            } else {
                incoming.header.base_offset
            };
            prefixes.push(batch::stamped_prefix(&incoming.bytes, base, epoch));
            next = base + incoming.header.last_offset_delta as i64 + 1;
        }
        let mut slices = Vec::with_capacity(batches.len() * 2);
        for (prefix, incoming) in prefixes.iter().zip(batches) {
            slices.push(IoSlice::new(prefix));
            slices.push(IoSlice::new(&incoming.bytes[STAMPED_PREFIX_LEN..]));
        }
        let start = self.size;
        let slot = Arc::clone(&self.files);
        slot.with(|files| {
            let file = files.log()?.clone();
            if let Err(source) = write_all_vectored(&file, start, &mut slices) {
                // Undo a partial write so the file ends on a batch boundary again.
                let _ = file.set_len(start);
                return Err(source);
            }
            let mut position = start;
            let mut offset = first_offset;
            for incoming in batches {
                let mut header = incoming.header;
                if stamp.is_some() {
                    header.base_offset = offset;
                }
                self.index_batch_in(files, &header, position);
                position += header.size() as u64;
                offset = header.last_offset() + 1;
            }
            self.size = position;
            self.next_offset = offset;
            Ok(())
        })
        .and_then(|result| result)
        .map_err(io_error(&self.path, "append"))
    }

    /// The position of the batch that holds `offset` (the first batch whose last offset is
    /// at least `offset`), scanning from the nearest index entry. None past the end.
    pub fn find_position(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let (_, mut position) = self.with_files(|files| files.offset_index.lookup(offset))?;
        let file = self.log_file()?;
        while let Some(header) = self.header_in(&file, position)? {
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.size() as u64;
        }
        Ok(None)
    }

    /// Whole batches from the one holding `start_offset`, stopping before `max_offset`
    /// (exclusive) and within `max_bytes`; with `min_one` the first batch is returned even
    /// when it alone is larger (KIP-74), so a consumer can always make progress.
    pub fn read(
        &self,
        start_offset: i64,
        max_offset: i64,
        max_bytes: u64,
        min_one: bool,
    ) -> Result<Option<FileSlice>, LogError> {
        let Some((start, first)) = self.find_position(start_offset)? else {
            return Ok(None);
        };
        let file = self.log_file()?;
        if first.base_offset >= max_offset || (!min_one && first.size() as u64 > max_bytes) {
            return Ok(None);
        }
        let mut end = start + first.size() as u64;
        let mut records = first.records_count.max(0) as u64;
        let mut last_offset = first.last_offset();
        while let Some(header) = self.header_in(&file, end)? {
            let next_end = end + header.size() as u64;
            if header.base_offset >= max_offset || next_end - start > max_bytes || next_end > self.size {
                break;
            }
            end = next_end;
            records += header.records_count.max(0) as u64;
            last_offset = header.last_offset();
        }
        Ok(Some(FileSlice {
            file,
            position: start,
            len: end - start,
            records,
            last_offset,
        }))
    }

    /// Cuts the file before the batch that holds `offset` (that batch and everything
    /// after it go). The indexes are rebuilt when the segment is reopened as the active
    /// one, which the caller does next. Returns whether anything was cut.
    pub fn truncate_file_to(&mut self, offset: i64) -> Result<bool, LogError> {
        let Some((position, _)) = self.find_position(offset)? else {
            return Ok(false);
        };
        // Durably: a cut tail that came back after a power cut would be a diverged
        // history under the leader's.
        let file = self.log_file()?;
        file.set_len(position)
            .and_then(|_| file.sync_all())
            .map_err(|source| LogError::io(&self.path, "truncate segment", source))?;
        self.size = position;
        Ok(true)
    }

    /// Every batch header in the segment, in order (for rebuilding the epoch cache).
    pub fn headers(&self) -> Result<Vec<BatchHeader>, LogError> {
        let mut headers = Vec::new();
        let mut position = 0;
        let file = self.log_file()?;
        while let Some(header) = self.header_in(&file, position)? {
            position += header.size() as u64;
            if position > self.size {
                break;
            }
            headers.push(header);
        }
        Ok(headers)
    }

    /// Every batch header in the segment with what a transaction marker among them says
    /// (for rebuilding producer state).
    pub fn headers_with_markers(
        &self,
    ) -> Result<Vec<(BatchHeader, Option<super::control::ControlMarker>)>, LogError> {
        let mut out = Vec::new();
        let mut position = 0;
        let file = self.log_file()?;
        while let Some(header) = self.header_in(&file, position)? {
            if position + header.size() as u64 > self.size {
                break;
            }
            let marker = if header.is_control() {
                super::control::marker(&header, &self.read_batch(position, &header)?)
            } else {
                None
            };
            out.push((header, marker));
            position += header.size() as u64;
        }
        Ok(out)
    }

    /// The first batch whose max timestamp is at least `timestamp`, with its position.
    pub fn find_by_timestamp(&self, timestamp: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let (_, mut position) = self.with_files(|files| {
            let scan_from = files.time_index.lookup(timestamp);
            files.offset_index.lookup(scan_from)
        })?;
        let file = self.log_file()?;
        while let Some(header) = self.header_in(&file, position)? {
            if header.max_timestamp >= timestamp {
                return Ok(Some((position, header)));
            }
            position += header.size() as u64;
        }
        Ok(None)
    }

    /// Reads one whole batch at `position`.
    pub fn read_batch(&self, position: u64, header: &BatchHeader) -> Result<Vec<u8>, LogError> {
        let mut buf = vec![0u8; header.size()];
        self.read_exact(&mut buf, position)?;
        Ok(buf)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Whether either index is full (known without opening them).
    pub fn is_index_full(&self) -> bool {
        self.files
            .peek(|files| files.offset_index.is_full() || files.time_index.is_full())
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<(), LogError> {
        self.log_file()?
            .sync_data()
            .map_err(|source| LogError::io(&self.path, "fsync", source))?;
        self.with_files(|files| files.offset_index.flush().and_then(|_| files.time_index.flush()))?
            .map_err(|source| LogError::io(&self.path, "flush index", source))
    }

    /// A handle that can fsync the log file without holding the segment (reopened if
    /// the budget closed it: an fsync through any descriptor makes the file durable).
    pub fn file_handle(&self) -> Result<Arc<File>, LogError> {
        self.log_file()
    }

    /// Trims the indexes to their entries; the segment takes no more appends.
    pub fn seal(&mut self) -> Result<(), LogError> {
        self.with_files(|files| files.offset_index.seal().and_then(|_| files.time_index.seal()))?
            .map_err(|source| LogError::io(&self.path, "seal index", source))
    }

    /// Descriptors and mappings the segment holds now (tests of the budget).
    pub fn open_cost(&self) -> Cost {
        self.files.peek(Handles::cost)
    }

    /// Takes the segment out of the log for a cleaning swap: its indexes go, its log is
    /// renamed with `suffix` appended (removed once the swap is done). Returns the new
    /// path of the log.
    pub fn retire(self, suffix: &str) -> Result<PathBuf, LogError> {
        let path = self.path.clone();
        let mut retired = path.as_os_str().to_os_string();
        retired.push(".");
        retired.push(suffix);
        let retired = PathBuf::from(retired);
        drop(self);
        super::index_file::remove_if_exists(&path.with_extension("index"))
            .and_then(|_| super::index_file::remove_if_exists(&path.with_extension("timeindex")))
            .and_then(|_| std::fs::rename(&path, &retired))
            .map_err(|source| LogError::io(&path, "retire segment", source))?;
        Ok(retired)
    }

    /// Removes the segment's files (its aborted-transaction index too).
    pub fn delete(self) -> Result<(), LogError> {
        let path = self.path.clone();
        let txn_index = path.with_extension(super::txn_index::EXTENSION);
        drop(self);
        super::index_file::remove_if_exists(&path.with_extension("index"))
            .and_then(|_| super::index_file::remove_if_exists(&path.with_extension("timeindex")))
            .and_then(|_| super::index_file::remove_if_exists(&txn_index))
            .and_then(|_| super::index_file::remove_if_exists(&path))
            .map_err(|source| LogError::io(&path, "delete segment", source))
    }
}

/// What recovery found in one segment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryReport {
    pub batches: u64,
    pub truncated_bytes: u64,
}

fn write_all_vectored(file: &File, position: u64, slices: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    let mut handle = file;
    handle.seek(SeekFrom::Start(position))?;
    let mut remaining: &mut [IoSlice<'_>] = slices;
    while !remaining.is_empty() {
        let written = handle.write_vectored(remaining)?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut remaining, written);
    }
    Ok(())
}
