//! The sparse offset index of one segment: `<base_offset>.index`.
//!
//! Byte layout: 8-byte entries, `relative_offset: u32 BE` (offset - base_offset) then
//! `position: u32 BE` (byte position of that batch in the `.log`). Entries are added every
//! `index.interval.bytes` of log, so both columns strictly increase.
//!
//! Crash rule: not checksummed; rebuilt from the log after an unclean shutdown
//! (see `index_file`).

use super::sparse_index::{EntryLayout, SparseIndex, be_u32};

pub const ENTRY_SIZE: usize = 8;

/// (offset, byte position in the `.log`).
pub struct OffsetPosition;

impl EntryLayout for OffsetPosition {
    type Value = (i64, u64);
    const SIZE: usize = ENTRY_SIZE;

    fn decode(base_offset: i64, entry: &[u8]) -> (i64, u64) {
        if entry.len() < ENTRY_SIZE {
            return (base_offset, 0);
        }
        (base_offset + be_u32(entry, 0) as i64, be_u32(entry, 4) as u64)
    }

    fn encode(base_offset: i64, (offset, position): (i64, u64), out: &mut [u8]) {
        out[..4].copy_from_slice(&((offset - base_offset) as u32).to_be_bytes());
        out[4..8].copy_from_slice(&(position as u32).to_be_bytes());
    }
}

pub type OffsetIndex = SparseIndex<OffsetPosition>;

impl SparseIndex<OffsetPosition> {
    /// Records that the batch starting at `offset` sits at byte `position`.
    /// Returns false (and records nothing) when the index is full.
    pub fn append(&mut self, offset: i64, position: u64) -> bool {
        if let Some((last_offset, _)) = self.last_entry()
            && offset <= last_offset
        {
            return true;
        }
        self.push((offset, position))
    }

    /// The greatest indexed (offset, position) whose offset is at most `target`,
    /// or (base_offset, 0) when none is.
    pub fn lookup(&self, target: i64) -> (i64, u64) {
        match self.floor_by(target, |(offset, _)| offset) {
            Some(index) => self.entry(index),
            None => (self.base_offset(), 0),
        }
    }

    /// Removes every entry for an offset at or past `offset`.
    pub fn truncate_to(&mut self, offset: i64) {
        let keep = match self.floor_by(offset - 1, |(entry_offset, _)| entry_offset) {
            Some(index) => index + 1,
            None => 0,
        };
        self.truncate_entries(keep);
    }

    /// True when offsets and positions strictly increase and stay within the segment.
    pub fn is_sane(&self, segment_size: u64) -> bool {
        let mut previous: Option<(i64, u64)> = None;
        for index in 0..self.entries() {
            let (offset, position) = self.entry(index);
            if position >= segment_size.max(1) || offset < self.base_offset() {
                return false;
            }
            if let Some((last_offset, last_position)) = previous
                && (offset <= last_offset || position <= last_position)
            {
                return false;
            }
            previous = Some((offset, position));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lookup_matches_linear_scan(gaps in proptest::collection::vec((1i64..50, 1u64..500), 1..200), probe in 0i64..20_000) {
            let dir = tempfile::tempdir().unwrap();
            let base = 100;
            let mut index = OffsetIndex::open(&dir.path().join("i.index"), base, 1 << 16, false, true).unwrap();
            let (mut offset, mut position) = (base, 0u64);
            let mut model = Vec::new();
            for (offset_gap, position_gap) in gaps {
                offset += offset_gap;
                position += position_gap;
                prop_assert!(index.append(offset, position));
                model.push((offset, position));
            }
            let target = base + probe;
            let expected = model.iter().rev().find(|(o, _)| *o <= target).copied().unwrap_or((base, 0));
            prop_assert_eq!(index.lookup(target), expected);
            prop_assert!(index.is_sane(position + 1));
        }
    }

    #[test]
    fn sealed_index_reopens_with_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = OffsetIndex::open(&path, 0, 4096, false, true).unwrap();
        index.append(10, 100);
        index.append(20, 200);
        index.seal().unwrap();
        drop(index);
        let reopened = OffsetIndex::open(&path, 0, 4096, true, false).unwrap();
        assert_eq!(reopened.entries(), 2);
        assert_eq!(reopened.lookup(15), (10, 100));
        assert_eq!(reopened.lookup(5), (0, 0));
    }

    #[test]
    fn truncate_drops_later_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = OffsetIndex::open(&dir.path().join("0.index"), 0, 4096, false, true).unwrap();
        for offset in [10, 20, 30] {
            index.append(offset, offset as u64 * 10);
        }
        index.truncate_to(20);
        assert_eq!(index.last_entry(), Some((10, 100)));
    }
}
