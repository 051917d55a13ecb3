//! The sparse time index of one segment: `<base_offset>.timeindex`.
//!
//! Byte layout: 12-byte entries, `timestamp: i64 BE` then `relative_offset: u32 BE`.
//! An entry says "batches from this offset on may hold timestamps up to `timestamp`;
//! every batch before it has a max timestamp below it". Entries are added at the same
//! points as offset index entries, only when the segment's max timestamp has grown, so
//! timestamps strictly increase.
//!
//! Crash rule: not checksummed; rebuilt from the log after an unclean shutdown.

use super::index_file::IndexFile;
use std::io;
use std::path::Path;

pub const ENTRY_SIZE: usize = 12;

pub struct TimeIndex {
    base_offset: i64,
    file: IndexFile,
}

impl TimeIndex {
    pub fn open(path: &Path, base_offset: i64, max_size: u64, keep: bool, active: bool) -> io::Result<Self> {
        Ok(TimeIndex {
            base_offset,
            file: IndexFile::open(path, ENTRY_SIZE, max_size, keep, active)?,
        })
    }

    fn decode(&self, entry: &[u8]) -> (i64, i64) {
        if entry.len() < ENTRY_SIZE {
            return (i64::MIN, self.base_offset);
        }
        let mut timestamp = [0u8; 8];
        timestamp.copy_from_slice(&entry[..8]);
        let relative = u32::from_be_bytes([entry[8], entry[9], entry[10], entry[11]]);
        (i64::from_be_bytes(timestamp), self.base_offset + relative as i64)
    }

    pub fn entries(&self) -> usize {
        self.file.entries()
    }

    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }

    pub fn last_entry(&self) -> Option<(i64, i64)> {
        let count = self.file.entries();
        (count > 0).then(|| self.decode(self.file.entry(count - 1)))
    }

    /// Records (timestamp, offset) if the timestamp is larger than the last one.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) -> bool {
        if let Some((last_timestamp, last_offset)) = self.last_entry()
            && (timestamp <= last_timestamp || offset <= last_offset)
        {
            return true;
        }
        let mut entry = [0u8; ENTRY_SIZE];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&((offset - self.base_offset) as u32).to_be_bytes());
        self.file.push(&entry)
    }

    /// The offset to start scanning from for the first batch with a timestamp >= `target`:
    /// the offset of the last entry whose timestamp is below `target`, or the segment base.
    pub fn lookup(&self, target: i64) -> i64 {
        match self.file.floor_by(target - 1, |entry| self.decode(entry).0) {
            Some(index) => self.decode(self.file.entry(index)).1,
            None => self.base_offset,
        }
    }

    pub fn truncate_to(&mut self, offset: i64) {
        let mut keep = self.file.entries();
        while keep > 0 && self.decode(self.file.entry(keep - 1)).1 >= offset {
            keep -= 1;
        }
        self.file.truncate_entries(keep);
    }

    /// Whether it takes entries (not sealed).
    pub fn is_active(&self) -> bool {
        self.file.is_active()
    }

    pub fn is_sane(&self) -> bool {
        (1..self.file.entries()).all(|index| {
            let (previous_ts, previous_offset) = self.decode(self.file.entry(index - 1));
            let (ts, offset) = self.decode(self.file.entry(index));
            ts > previous_ts && offset > previous_offset
        })
    }

    pub fn flush(&self) -> io::Result<()> {
        self.file.flush()
    }

    pub fn seal(&mut self) -> io::Result<()> {
        self.file.seal()
    }

    pub fn delete(self) -> io::Result<()> {
        self.file.delete()
    }

    /// The underlying file, for the open-file budget (release, reopen, cost).
    pub fn file_mut(&mut self) -> &mut IndexFile {
        &mut self.file
    }

    pub fn file(&self) -> &IndexFile {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_scan_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TimeIndex::open(&dir.path().join("0.timeindex"), 0, 4096, false, true).unwrap();
        index.maybe_append(100, 5);
        index.maybe_append(90, 6); // not larger: ignored
        index.maybe_append(200, 10);
        assert_eq!(index.entries(), 2);
        assert_eq!(index.lookup(50), 0);
        assert_eq!(index.lookup(150), 5);
        assert_eq!(index.lookup(200), 5);
        assert_eq!(index.lookup(201), 10);
        assert!(index.is_sane());
    }
}
