//! The aborted-transaction index: for every aborted transaction whose marker is in a
//! segment, `<base>.txnindex` holds an entry in Kafka's format (34 bytes, big-endian:
//! `version: i16 (0), producer_id: i64, first_offset: i64, last_offset: i64,
//! last_stable_offset: i64`), where `last_offset` is the marker's offset.
//!
//! The partition keeps every entry in memory by marker offset (aborts are few), so a
//! read_committed fetch only computes the list of aborted transactions overlapping what
//! it sends; the records themselves still go out with sendfile.
//!
//! Files are where entries are stored; an entry belongs to the segment that holds its
//! marker. At open, every `.txnindex` file of the directory is read (also one whose
//! segment a cleaning swap merged away), entries outside the log are dropped, and each
//! file is rewritten to hold exactly its segment's entries. Entries at or after the
//! replay start of the producer state are rebuilt from the log ([`AbortedIndex::replace_from`]),
//! so an entry lost with an unsynced file comes back; a sealed segment's file is
//! fsynced when it is sealed.

use super::checkpoint::write_atomically;
use super::segment;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const EXTENSION: &str = "txnindex";
const ENTRY_LEN: usize = 34;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of the ABORT marker.
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    fn decode(entry: &[u8]) -> Option<AbortedTxn> {
        let at = |start: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&entry[start..start + 8]);
            i64::from_be_bytes(bytes)
        };
        (entry.len() == ENTRY_LEN && entry[0..2] == [0, 0]).then(|| AbortedTxn {
            producer_id: at(2),
            first_offset: at(10),
            last_offset: at(18),
            last_stable_offset: at(26),
        })
    }
}

fn path(dir: &Path, base: i64) -> PathBuf {
    segment::file_name(dir, base, EXTENSION)
}

/// The entries of one file; a torn last entry or one of another version is skipped.
fn read_file(path: &Path) -> Vec<AbortedTxn> {
    std::fs::read(path)
        .unwrap_or_default()
        .chunks(ENTRY_LEN)
        .filter_map(AbortedTxn::decode)
        .collect()
}

#[derive(Debug, Default)]
pub struct AbortedIndex {
    dir: PathBuf,
    /// By marker offset.
    entries: BTreeMap<i64, AbortedTxn>,
}

impl AbortedIndex {
    pub fn new(dir: &Path) -> Self {
        AbortedIndex {
            dir: dir.to_path_buf(),
            entries: BTreeMap::new(),
        }
    }

    /// Reads every `.txnindex` file in `dir` and keeps the entries whose marker lies in
    /// [first segment base, `log_end_offset`), each file rewritten to its segment's.
    pub fn load(dir: &Path, bases: &[i64], log_end_offset: i64) -> std::io::Result<Self> {
        let mut index = AbortedIndex::new(dir);
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(base) = name
                .strip_suffix(".txnindex")
                .and_then(|stem| stem.parse::<i64>().ok())
            {
                files.push(base);
            }
        }
        let start = bases.first().copied().unwrap_or(0);
        let mut on_disk: BTreeMap<i64, Vec<AbortedTxn>> = BTreeMap::new();
        for base in &files {
            let found = read_file(&path(dir, *base));
            for entry in &found {
                if entry.last_offset >= start && entry.last_offset < log_end_offset {
                    index.entries.insert(entry.last_offset, *entry);
                }
            }
            on_disk.insert(*base, found);
        }
        // Files of segments that are gone (merged by a cleaning swap, or cut) go.
        for base in files.iter().filter(|base| !bases.contains(base)) {
            super::index_file::remove_if_exists(&path(dir, *base))?;
        }
        for (position, base) in bases.iter().enumerate() {
            let wanted = index.segment_entries(*base, bases.get(position + 1).copied());
            let stored = on_disk.get(base).cloned().unwrap_or_default();
            if wanted != stored {
                index.write_segment(*base, &wanted)?;
            }
        }
        Ok(index)
    }

    fn segment_entries(&self, base: i64, next: Option<i64>) -> Vec<AbortedTxn> {
        self.entries
            .range(base..next.unwrap_or(i64::MAX))
            .map(|(_, entry)| *entry)
            .collect()
    }

    /// Replaces `base`'s file by `entries` (removed when there are none).
    fn write_segment(&self, base: i64, entries: &[AbortedTxn]) -> std::io::Result<()> {
        let file = path(&self.dir, base);
        if entries.is_empty() {
            return super::index_file::remove_if_exists(&file);
        }
        let bytes: Vec<u8> = entries.iter().flat_map(AbortedTxn::encode).collect();
        write_atomically(&file, &bytes)
    }

    /// Records an aborted transaction whose marker was appended to segment `base`.
    pub fn append(&mut self, base: i64, entry: AbortedTxn) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path(&self.dir, base))?;
        file.write_all(&entry.encode())?;
        self.entries.insert(entry.last_offset, entry);
        Ok(())
    }

    /// Makes segment `base`'s file durable (when it is sealed, and at shutdown).
    pub fn sync(&self, base: i64) -> std::io::Result<()> {
        match std::fs::File::open(path(&self.dir, base)) {
            Ok(file) => file.sync_all(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Replaces every entry whose marker is at or after `from` by `rebuilt` (what a
    /// replay of the log from `from` found), rewriting the files of the segments
    /// `bases` from the one holding `from`.
    pub fn replace_from(&mut self, from: i64, rebuilt: &[AbortedTxn], bases: &[i64]) -> std::io::Result<()> {
        let stale: Vec<i64> = self.entries.range(from..).map(|(offset, _)| *offset).collect();
        if stale.is_empty() && rebuilt.is_empty() {
            return Ok(());
        }
        for offset in stale {
            self.entries.remove(&offset);
        }
        for entry in rebuilt {
            self.entries.insert(entry.last_offset, *entry);
        }
        self.rewrite_from(from, bases)
    }

    /// Drops the entries whose marker is at or after `offset` (a truncation) and rewrites
    /// the files from the segment holding `offset`.
    pub fn truncate_to(&mut self, offset: i64, bases: &[i64]) -> std::io::Result<()> {
        self.replace_from(offset, &[], bases)
    }

    fn rewrite_from(&self, from: i64, bases: &[i64]) -> std::io::Result<()> {
        for (position, base) in bases.iter().enumerate() {
            let next = bases.get(position + 1).copied();
            if next.is_none_or(|next| next > from) {
                self.write_segment(*base, &self.segment_entries(*base, next))?;
            }
        }
        Ok(())
    }

    /// Rewrites the file of segment `base` (ending before `next`) from memory, e.g. for
    /// a segment a cleaning swap made out of several.
    pub fn rewrite_segment(&self, base: i64, next: Option<i64>) -> std::io::Result<()> {
        self.write_segment(base, &self.segment_entries(base, next))
    }

    /// Forgets entries whose marker is below `offset` (their segments were deleted).
    pub fn forget_below(&mut self, offset: i64) {
        self.entries = self.entries.split_off(&offset);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// (producer id, first offset) of every aborted transaction with data in
    /// [`from`, `upper`): its marker at or after `from`, its first offset before `upper`.
    ///
    /// The scan stops at the first entry whose last stable offset reaches `upper`, as
    /// Kafka's does: every transaction aborted after it was either open then (so starts
    /// at or after that offset) or began after its marker, so none has data below
    /// `upper`. A fetch near the start of a long log does not walk every later abort.
    pub fn overlapping(&self, from: i64, upper: i64) -> Vec<(i64, i64)> {
        let mut found = Vec::new();
        for entry in self.entries.range(from..).map(|(_, entry)| entry) {
            if entry.first_offset < upper {
                found.push((entry.producer_id, entry.first_offset));
            }
            if entry.last_stable_offset >= upper {
                break;
            }
        }
        found
    }

    /// Every entry, by marker offset.
    pub fn all(&self) -> Vec<AbortedTxn> {
        self.entries.values().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aborted(producer_id: i64, first_offset: i64, last_offset: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset,
            last_offset,
            last_stable_offset: last_offset + 1,
        }
    }

    #[test]
    fn entries_are_kafkas_34_bytes_and_read_back() {
        let entry = aborted(7, 100, 150);
        let bytes = entry.encode();
        assert_eq!(bytes.len(), 34);
        assert_eq!(&bytes[..2], &[0, 0], "version 0");
        assert_eq!(&bytes[2..10], &7i64.to_be_bytes());
        assert_eq!(AbortedTxn::decode(&bytes), Some(entry));
        assert_eq!(AbortedTxn::decode(&bytes[..33]), None);
    }

    #[test]
    fn overlapping_finds_transactions_with_data_in_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = AbortedIndex::new(dir.path());
        index.append(0, aborted(1, 5, 20)).unwrap();
        index.append(0, aborted(2, 30, 40)).unwrap();
        index.append(0, aborted(3, 2, 8)).unwrap();
        assert_eq!(index.overlapping(10, 35), vec![(1, 5), (2, 30)]);
        assert_eq!(index.overlapping(0, 5), vec![(3, 2)]);
        assert_eq!(index.overlapping(41, 100), vec![]);
        assert_eq!(index.overlapping(21, 30), vec![], "txn 2 starts at the bound");
    }

    #[test]
    fn overlapping_keeps_a_long_transaction_and_stops_at_the_stable_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = AbortedIndex::new(dir.path());
        // Producer 1's transaction opens at 0; producer 2's (1..=3) aborts while it is
        // still open, so the last stable offset at that marker is 0.
        let open_then = AbortedTxn {
            last_stable_offset: 0,
            ..aborted(2, 1, 3)
        };
        index.append(0, open_then).unwrap();
        index.append(0, aborted(1, 0, 10)).unwrap();
        index.append(0, aborted(3, 12, 14)).unwrap();
        assert_eq!(
            index.overlapping(3, 5),
            vec![(2, 1), (1, 0)],
            "the transaction open across the range is listed though its marker is later"
        );
        // An entry past one whose last stable offset reaches the bound is not looked
        // at; this one breaks the index's invariant on purpose to show the scan stopped.
        index
            .append(
                0,
                AbortedTxn {
                    last_stable_offset: 21,
                    ..aborted(4, 2, 20)
                },
            )
            .unwrap();
        assert_eq!(index.overlapping(3, 5), vec![(2, 1), (1, 0)]);
    }

    #[test]
    fn load_assigns_entries_to_the_segment_of_their_marker_and_drops_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = AbortedIndex::new(dir.path());
        // As a cleaning swap may leave them: segment 10 was merged into 0.
        index.append(0, aborted(1, 0, 5)).unwrap();
        index.append(10, aborted(2, 9, 12)).unwrap();
        index.append(20, aborted(3, 20, 25)).unwrap();
        index.append(20, aborted(4, 26, 31)).unwrap();
        let loaded = AbortedIndex::load(dir.path(), &[0, 20], 30).unwrap();
        assert_eq!(
            loaded.all(),
            vec![aborted(1, 0, 5), aborted(2, 9, 12), aborted(3, 20, 25)],
            "the marker past the log end went"
        );
        assert_eq!(
            read_file(&path(dir.path(), 0)),
            vec![aborted(1, 0, 5), aborted(2, 9, 12)]
        );
        assert!(!path(dir.path(), 10).exists());
        assert_eq!(read_file(&path(dir.path(), 20)), vec![aborted(3, 20, 25)]);
    }

    #[test]
    fn replace_from_rebuilds_the_tail_and_truncation_cuts_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = AbortedIndex::new(dir.path());
        index.append(0, aborted(1, 0, 5)).unwrap();
        index.append(10, aborted(2, 10, 15)).unwrap();
        index
            .replace_from(10, &[aborted(2, 10, 15), aborted(5, 16, 18)], &[0, 10])
            .unwrap();
        assert_eq!(
            read_file(&path(dir.path(), 10)),
            vec![aborted(2, 10, 15), aborted(5, 16, 18)]
        );
        index.truncate_to(16, &[0, 10]).unwrap();
        assert_eq!(index.all(), vec![aborted(1, 0, 5), aborted(2, 10, 15)]);
        assert_eq!(read_file(&path(dir.path(), 10)), vec![aborted(2, 10, 15)]);
        index.truncate_to(3, &[0]).unwrap();
        assert!(!path(dir.path(), 0).exists());
        index.forget_below(100);
        assert!(index.all().is_empty());
    }
}
