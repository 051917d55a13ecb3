//! What the offset index and the time index share: a sparse index of one segment over
//! an [`IndexFile`], whose fixed-size entries encode a value relative to the segment's
//! base offset. Each index (`offset_index.rs`, `time_index.rs`) names its entry layout
//! ([`EntryLayout`]) and adds its own appends, lookups and checks.

use super::index_file::IndexFile;
use std::io;
use std::marker::PhantomData;
use std::path::Path;

/// How one kind of index lays out an entry.
pub trait EntryLayout {
    /// The entry's value, decoded (absolute offsets).
    type Value: Copy;
    const SIZE: usize;
    /// Decodes an entry of `SIZE` bytes; a shorter slice (never written) decodes to the
    /// layout's floor.
    fn decode(base_offset: i64, entry: &[u8]) -> Self::Value;
    /// Encodes `value` into `out` (`SIZE` bytes).
    fn encode(base_offset: i64, value: Self::Value, out: &mut [u8]);
}

pub struct SparseIndex<L: EntryLayout> {
    base_offset: i64,
    file: IndexFile,
    layout: PhantomData<L>,
}

impl<L: EntryLayout> SparseIndex<L> {
    pub fn open(path: &Path, base_offset: i64, max_size: u64, keep: bool, active: bool) -> io::Result<Self> {
        Ok(SparseIndex {
            base_offset,
            file: IndexFile::open(path, L::SIZE, max_size, keep, active)?,
            layout: PhantomData,
        })
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn entries(&self) -> usize {
        self.file.entries()
    }

    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// Entry `index` (below [`SparseIndex::entries`]), decoded.
    pub fn entry(&self, index: usize) -> L::Value {
        L::decode(self.base_offset, self.file.entry(index))
    }

    pub fn last_entry(&self) -> Option<L::Value> {
        let count = self.file.entries();
        (count > 0).then(|| self.entry(count - 1))
    }

    /// Appends `value`; false (and nothing recorded) when the index is full.
    pub(super) fn push(&mut self, value: L::Value) -> bool {
        let mut entry = [0u8; 16];
        let entry = &mut entry[..L::SIZE];
        L::encode(self.base_offset, value, entry);
        self.file.push(entry)
    }

    /// The last entry whose `key` is at most `target`, by binary search (`key` must
    /// grow from entry to entry).
    pub(super) fn floor_by(&self, target: i64, key: impl Fn(L::Value) -> i64) -> Option<usize> {
        let base = self.base_offset;
        self.file.floor_by(target, |entry| key(L::decode(base, entry)))
    }

    /// Keeps the first `count` entries.
    pub(super) fn truncate_entries(&mut self, count: usize) {
        self.file.truncate_entries(count);
    }

    /// Whether it takes entries (not sealed).
    pub fn is_active(&self) -> bool {
        self.file.is_active()
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

/// A big-endian u32 at `at`.
pub(super) fn be_u32(entry: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([entry[at], entry[at + 1], entry[at + 2], entry[at + 3]])
}
