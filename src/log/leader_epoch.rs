//! The leader-epoch cache of a partition: which leader epoch started at which offset,
//! kept in `<partition dir>/leader-epoch-checkpoint` (KIP-101, KIP-279).
//!
//! File format (Kafka's): a version line `0`, a count line, then one `epoch start_offset`
//! line per epoch, ascending. Rewritten atomically whenever an epoch is added or the log
//! is truncated. The crash rule: the `.log` is the truth; a missing or unreadable file
//! is rebuilt from the batches' partition leader epochs, and entries past the log end
//! after recovery are dropped.
//!
//! The cache answers the question replicas ask to find where their logs diverge: "where
//! does my last epoch end in your log?" ([`EpochEntries::end_offset_for`]).

use super::checkpoint::write_atomically;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "leader-epoch-checkpoint";

/// "No epoch" / "no offset" in Kafka's answers.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_OFFSET: i64 = -1;

/// The pure part: (epoch, start offset) pairs, both strictly ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochEntries(pub Vec<(i32, i64)>);

impl EpochEntries {
    pub fn latest_epoch(&self) -> Option<i32> {
        self.0.last().map(|(epoch, _)| *epoch)
    }

    /// Records that `epoch` starts at `start_offset`, if it is newer than the latest.
    /// Returns whether anything changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return false;
        }
        // An epoch that starts where the previous one did replaces it: the earlier
        // one never got a batch.
        while self.0.last().is_some_and(|(_, start)| *start >= start_offset) {
            self.0.pop();
        }
        self.0.push((epoch, start_offset));
        true
    }

    /// Kafka's `endOffsetFor`: the largest epoch not above `requested` and the offset
    /// where it ended (the next epoch's start, or `log_end_offset` for the latest).
    /// `(UNDEFINED_EPOCH, UNDEFINED_OFFSET)` when `requested` is undefined or newer than
    /// anything here; `(requested, first start)` when it is older than everything here.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        }
        match self.latest_epoch() {
            Some(latest) if requested == latest => return (requested, log_end_offset),
            None => return (UNDEFINED_EPOCH, UNDEFINED_OFFSET),
            _ => {}
        }
        let higher = self.0.iter().find(|(epoch, _)| *epoch > requested);
        let floor = self.0.iter().rev().find(|(epoch, _)| *epoch <= requested);
        match (floor, higher) {
            (_, None) => (UNDEFINED_EPOCH, UNDEFINED_OFFSET),
            (None, Some((_, start))) => (requested, *start),
            (Some((epoch, _)), Some((_, start))) => (*epoch, *start),
        }
    }

    /// Drops epochs that start at or after `offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, offset: i64) -> bool {
        let before = self.0.len();
        self.0.retain(|(_, start)| *start < offset);
        self.0.len() != before
    }

    /// Drops epochs wholly before `offset` (the log now starts there); the epoch that
    /// covers `offset` now starts at it.
    pub fn truncate_from_start(&mut self, offset: i64) -> bool {
        let covering = self.0.iter().rposition(|(_, start)| *start <= offset);
        match covering {
            Some(index) if index > 0 || self.0[0].1 < offset => {
                self.0.drain(..index);
                self.0[0].1 = offset;
                true
            }
            _ => false,
        }
    }
}

/// The cache with its file.
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    pub entries: EpochEntries,
}

impl LeaderEpochCache {
    /// Reads the checkpoint in `dir`; None if it is missing or unreadable (the caller
    /// rebuilds it from the log).
    pub fn read(dir: &Path) -> Option<Self> {
        let path = dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).ok()?;
        let mut lines = text.lines();
        if lines.next() != Some("0") {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        let mut entries = Vec::with_capacity(count);
        for line in lines {
            let (epoch, start) = line.split_once(' ')?;
            entries.push((epoch.parse().ok()?, start.parse().ok()?));
        }
        let ascending = entries
            .windows(2)
            .all(|pair: &[(i32, i64)]| pair[0].0 < pair[1].0 && pair[0].1 < pair[1].1);
        (entries.len() == count && ascending).then_some(LeaderEpochCache {
            path,
            entries: EpochEntries(entries),
        })
    }

    pub fn new(dir: &Path, entries: EpochEntries) -> Self {
        LeaderEpochCache {
            path: dir.join(FILE_NAME),
            entries,
        }
    }

    /// Writes the checkpoint (atomically, fsynced).
    pub fn save(&self) -> std::io::Result<()> {
        let mut text = format!("0\n{}\n", self.entries.0.len());
        for (epoch, start) in &self.entries.0 {
            text.push_str(&format!("{epoch} {start}\n"));
        }
        write_atomically(&self.path, text.as_bytes())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(i32, i64)]) -> EpochEntries {
        EpochEntries(pairs.to_vec())
    }

    #[test]
    fn assign_only_moves_forward() {
        let mut cache = EpochEntries::default();
        assert!(cache.assign(0, 0));
        assert!(!cache.assign(0, 5), "same epoch");
        assert!(cache.assign(2, 10));
        assert!(!cache.assign(1, 12), "older epoch");
        // An epoch that never got a batch is replaced by the next one at the same offset.
        assert!(cache.assign(3, 10));
        assert_eq!(cache, entries(&[(0, 0), (3, 10)]));
        assert!(!cache.assign(-1, 20));
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let cache = entries(&[(1, 0), (3, 10), (5, 25)]);
        assert_eq!(
            cache.end_offset_for(5, 40),
            (5, 40),
            "latest epoch ends at the log end"
        );
        assert_eq!(cache.end_offset_for(3, 40), (3, 25));
        assert_eq!(
            cache.end_offset_for(4, 40),
            (3, 25),
            "an unknown epoch maps to the one below"
        );
        assert_eq!(cache.end_offset_for(1, 40), (1, 10));
        assert_eq!(cache.end_offset_for(0, 40), (0, 0), "older than everything");
        assert_eq!(cache.end_offset_for(6, 40), (UNDEFINED_EPOCH, UNDEFINED_OFFSET));
        assert_eq!(cache.end_offset_for(-1, 40), (UNDEFINED_EPOCH, UNDEFINED_OFFSET));
        assert_eq!(
            EpochEntries::default().end_offset_for(0, 0),
            (UNDEFINED_EPOCH, UNDEFINED_OFFSET)
        );
    }

    /// The divergence point a returning replica finds: it asks the leader where its
    /// own last epoch ends, and truncates to the smaller of that and its own end.
    #[test]
    fn divergence_point_of_a_deposed_leader() {
        // The old leader wrote offsets 10..20 in epoch 3 that never replicated; the new
        // leader took over at offset 10 in epoch 4.
        let old_leader = entries(&[(1, 0), (3, 5)]);
        let new_leader = entries(&[(1, 0), (3, 5), (4, 10)]);
        let (epoch, leader_end) = new_leader.end_offset_for(3, 30);
        assert_eq!((epoch, leader_end), (3, 10));
        let (_, own_end) = old_leader.end_offset_for(epoch, 20);
        assert_eq!(leader_end.min(own_end), 10);
        // A follower that is merely behind does not diverge.
        let (epoch, leader_end) = new_leader.end_offset_for(4, 30);
        assert_eq!((epoch, leader_end), (4, 30));
    }

    #[test]
    fn truncation_from_either_end() {
        let mut cache = entries(&[(1, 0), (3, 10), (5, 25)]);
        assert!(cache.truncate_from_end(25));
        assert_eq!(cache, entries(&[(1, 0), (3, 10)]));
        assert!(!cache.truncate_from_end(30));
        assert!(cache.truncate_from_start(12));
        assert_eq!(cache, entries(&[(3, 12)]));
        assert!(!cache.truncate_from_start(12));
        assert!(!cache.truncate_from_start(5));
    }

    #[test]
    fn checkpoint_round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert!(LeaderEpochCache::read(dir.path()).is_none());
        let cache = LeaderEpochCache::new(dir.path(), entries(&[(0, 0), (2, 7)]));
        cache.save().unwrap();
        assert_eq!(LeaderEpochCache::read(dir.path()).unwrap().entries, cache.entries);
        std::fs::write(dir.path().join(FILE_NAME), "0\n2\n2 7\n0 0\n").unwrap();
        assert!(LeaderEpochCache::read(dir.path()).is_none(), "not ascending");
        std::fs::write(dir.path().join(FILE_NAME), "0\n3\n0 0\n").unwrap();
        assert!(LeaderEpochCache::read(dir.path()).is_none(), "count mismatch");
    }
}
