//! The sparse time index of one segment: `<base_offset>.timeindex`.
//!
//! Byte layout: 12-byte entries, `timestamp: i64 BE` then `relative_offset: u32 BE`.
//! An entry says "batches from this offset on may hold timestamps up to `timestamp`;
//! every batch before it has a max timestamp below it". Entries are added at the same
//! points as offset index entries, only when the segment's max timestamp has grown, so
//! timestamps strictly increase.
//!
//! Crash rule: not checksummed; rebuilt from the log after an unclean shutdown.

use super::sparse_index::{EntryLayout, SparseIndex, be_u32};

pub const ENTRY_SIZE: usize = 12;

/// (timestamp, offset).
pub struct TimestampOffset;

impl EntryLayout for TimestampOffset {
    type Value = (i64, i64);
    const SIZE: usize = ENTRY_SIZE;

    fn decode(base_offset: i64, entry: &[u8]) -> (i64, i64) {
        if entry.len() < ENTRY_SIZE {
            return (i64::MIN, base_offset);
        }
        let mut timestamp = [0u8; 8];
        timestamp.copy_from_slice(&entry[..8]);
        (
            i64::from_be_bytes(timestamp),
            base_offset + be_u32(entry, 8) as i64,
        )
    }

    fn encode(base_offset: i64, (timestamp, offset): (i64, i64), out: &mut [u8]) {
        out[..8].copy_from_slice(&timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&((offset - base_offset) as u32).to_be_bytes());
    }
}

pub type TimeIndex = SparseIndex<TimestampOffset>;

impl SparseIndex<TimestampOffset> {
    /// Records (timestamp, offset) if the timestamp is larger than the last one.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) -> bool {
        if let Some((last_timestamp, last_offset)) = self.last_entry()
            && (timestamp <= last_timestamp || offset <= last_offset)
        {
            return true;
        }
        self.push((timestamp, offset))
    }

    /// The offset to start scanning from for the first batch with a timestamp >= `target`:
    /// the offset of the last entry whose timestamp is below `target`, or the segment base.
    pub fn lookup(&self, target: i64) -> i64 {
        match self.floor_by(target - 1, |(timestamp, _)| timestamp) {
            Some(index) => self.entry(index).1,
            None => self.base_offset(),
        }
    }

    /// Removes every entry for an offset at or past `offset`.
    pub fn truncate_to(&mut self, offset: i64) {
        let mut keep = self.entries();
        while keep > 0 && self.entry(keep - 1).1 >= offset {
            keep -= 1;
        }
        self.truncate_entries(keep);
    }

    /// True when timestamps and offsets strictly increase.
    pub fn is_sane(&self) -> bool {
        (1..self.entries()).all(|index| {
            let (previous_ts, previous_offset) = self.entry(index - 1);
            let (ts, offset) = self.entry(index);
            ts > previous_ts && offset > previous_offset
        })
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
