//! The share-partitions this broker leads, and the share sessions of the members that
//! fetch from it (Kafka's `SharePartitionManager`).
//!
//! A share-partition is made on the first ShareFetch of a group for a partition, at
//! the log end (`share.auto.offset.reset=latest`, Kafka's default). A share session
//! is keyed by (group, member): epoch 0 opens it, each later request carries the next
//! epoch, -1 closes it and releases what the member still holds.

use super::partition::{AcknowledgeType, AcquiredRange, ShareConfig, SharePartition};
use super::snapshot::StateWrite;
use crate::common::ErrorCode;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// (group id, topic id, partition).
pub type ShareKey = (String, Uuid, i32);

struct ShareSession {
    /// The epoch the member's next request must carry.
    next_epoch: i32,
    partitions: BTreeSet<(Uuid, i32)>,
}

pub struct SharePartitionManager {
    pub config: ShareConfig,
    partitions: Mutex<HashMap<ShareKey, SharePartition>>,
    sessions: Mutex<HashMap<(String, String), ShareSession>>,
    /// One load or state write at a time per share-partition, so writes reach the
    /// share coordinator in the order their states were taken.
    persist_locks: Mutex<HashMap<ShareKey, Arc<tokio::sync::Mutex<()>>>>,
    /// Share-partitions changed by something no request waits for (lock expiry, a
    /// member leaving): their state is written in the background.
    dirty: Mutex<HashSet<ShareKey>>,
    /// Woken whenever records become available again (acknowledged, released,
    /// expired), so a waiting ShareFetch looks again at once.
    pub released: tokio::sync::Notify,
}

/// How much one fetch may acquire, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct AcquireLimits {
    pub max_records: usize,
    pub lock_duration_ms: i64,
}

/// Counts of one share-partition's in-flight records, for metrics.
pub struct ShareCounts {
    pub key: ShareKey,
    pub start_offset: i64,
    pub available: usize,
    pub acquired: usize,
    pub archived: usize,
}

impl SharePartitionManager {
    pub fn new(config: ShareConfig) -> Self {
        SharePartitionManager {
            config,
            partitions: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            persist_locks: Mutex::new(HashMap::new()),
            dirty: Mutex::new(HashSet::new()),
            released: tokio::sync::Notify::new(),
        }
    }

    /// Applies a request's session epoch: Ok(the session's partitions after adding
    /// `added` and dropping `forgotten`), or the Kafka error. `-1` closes the session
    /// (its partitions are returned once more for the final acknowledgements).
    pub fn session(
        &self,
        group_id: &str,
        member_id: &str,
        epoch: i32,
        added: &[(Uuid, i32)],
        forgotten: &[(Uuid, i32)],
    ) -> Result<BTreeSet<(Uuid, i32)>, ErrorCode> {
        let key = (group_id.to_string(), member_id.to_string());
        let mut sessions = self.sessions.lock();
        match epoch {
            0 => {
                let session = ShareSession {
                    next_epoch: 1,
                    partitions: added.iter().copied().collect(),
                };
                let partitions = session.partitions.clone();
                sessions.insert(key, session);
                Ok(partitions)
            }
            -1 => match sessions.remove(&key) {
                Some(session) => Ok(session.partitions),
                None => Err(ErrorCode::of(ResponseError::ShareSessionNotFound)),
            },
            epoch => {
                let Some(session) = sessions.get_mut(&key) else {
                    return Err(ErrorCode::of(ResponseError::ShareSessionNotFound));
                };
                if epoch != session.next_epoch {
                    return Err(ErrorCode::of(ResponseError::InvalidShareSessionEpoch));
                }
                session.next_epoch = if session.next_epoch == i32::MAX {
                    1
                } else {
                    session.next_epoch + 1
                };
                session.partitions.extend(added.iter().copied());
                for partition in forgotten {
                    session.partitions.remove(partition);
                }
                Ok(session.partitions.clone())
            }
        }
    }

    /// Where a fetch for the share-partition should start reading; None until it is
    /// loaded ([`Self::install`]).
    pub fn next_fetch_offset(&self, key: &ShareKey, log_start: i64) -> Option<i64> {
        let mut partitions = self.partitions.lock();
        let partition = partitions.get_mut(key)?;
        if partition.start_offset < log_start {
            partition.trim_to(log_start);
            self.dirty.lock().insert(key.clone());
        }
        Some(partition.next_fetch_offset())
    }

    pub fn is_loaded(&self, key: &ShareKey) -> bool {
        self.partitions.lock().contains_key(key)
    }

    /// Installs a share-partition loaded from its persisted state (or made fresh).
    pub fn install(&self, key: &ShareKey, partition: SharePartition) {
        self.partitions.lock().entry(key.clone()).or_insert(partition);
    }

    /// The lock a load or state write of `key` holds.
    pub fn persist_lock(&self, key: &ShareKey) -> Arc<tokio::sync::Mutex<()>> {
        self.persist_locks.lock().entry(key.clone()).or_default().clone()
    }

    /// The whole state of a share-partition as a write for the share coordinator.
    pub fn state_write(&self, key: &ShareKey, leader_epoch: i32) -> Option<StateWrite> {
        let partitions = self.partitions.lock();
        let partition = partitions.get(key)?;
        Some(StateWrite {
            state_epoch: partition.state_epoch,
            leader_epoch,
            start_offset: partition.start_offset,
            batches: partition.state_batches(),
        })
    }

    /// Marks a share-partition's state as needing a background write.
    pub fn mark_dirty(&self, key: &ShareKey) {
        self.dirty.lock().insert(key.clone());
    }

    /// The share-partitions whose state needs a background write.
    pub fn take_dirty(&self) -> Vec<ShareKey> {
        self.dirty.lock().drain().collect()
    }

    /// Acquires for `member_id` records in `offsets` that a read returned, locked for
    /// the group's `share.record.lock.duration.ms`; new records in `archived` (aborted
    /// transactions, read_committed) are archived instead.
    pub fn acquire(
        &self,
        key: &ShareKey,
        member_id: &str,
        offsets: std::ops::Range<i64>,
        archived: &[(i64, i64)],
        limits: AcquireLimits,
        now_ms: i64,
    ) -> Vec<AcquiredRange> {
        let mut partitions = self.partitions.lock();
        let config = ShareConfig {
            lock_duration_ms: limits.lock_duration_ms,
            ..self.config
        };
        match partitions.get_mut(key) {
            Some(partition) => {
                partition.acquire_skipping(member_id, offsets, archived, limits.max_records, &config, now_ms)
            }
            None => Vec::new(),
        }
    }

    /// One acknowledgement batch: `types` has one type for the whole range or one per
    /// offset.
    pub fn acknowledge(
        &self,
        key: &ShareKey,
        member_id: &str,
        first: i64,
        last: i64,
        types: &[i8],
    ) -> ErrorCode {
        let mut partitions = self.partitions.lock();
        let Some(partition) = partitions.get_mut(key) else {
            return ErrorCode::of(ResponseError::InvalidRecordState);
        };
        let kinds: Option<Vec<AcknowledgeType>> = types
            .iter()
            .map(|kind| AcknowledgeType::from_wire(*kind))
            .collect();
        let Some(kinds) = kinds else {
            return ErrorCode::of(ResponseError::InvalidRequest);
        };
        let code = match kinds.as_slice() {
            [kind] => partition.acknowledge(member_id, first, last, *kind, &self.config),
            many if many.len() as i64 == last - first + 1 => (first..=last)
                .zip(many)
                .map(|(offset, kind)| partition.acknowledge(member_id, offset, offset, *kind, &self.config))
                .find(|code| !code.is_none())
                .unwrap_or_default(),
            _ => ErrorCode::of(ResponseError::InvalidRequest),
        };
        drop(partitions);
        self.released.notify_waiters();
        code
    }

    /// The member's session closed or its group let it go: its records return.
    pub fn release_member(&self, group_id: &str, member_id: &str) -> usize {
        let mut released = 0;
        for (key, partition) in self.partitions.lock().iter_mut() {
            if key.0 == group_id {
                let n_released = partition.release_member(member_id, &self.config);
                if n_released > 0 {
                    self.dirty.lock().insert(key.clone());
                }
                released += n_released;
            }
        }
        self.released.notify_waiters();
        released
    }

    /// Expired acquisition locks release their records.
    pub fn expire_locks(&self, now_ms: i64) -> usize {
        let mut partitions = self.partitions.lock();
        let mut expired = 0;
        for (key, partition) in partitions.iter_mut() {
            let n_expired = partition.expire_locks(&self.config, now_ms);
            if n_expired > 0 {
                self.dirty.lock().insert(key.clone());
            }
            expired += n_expired;
        }
        if expired > 0 {
            self.released.notify_waiters();
        }
        expired
    }

    /// Forgets one share-partition: its state was reset elsewhere, the next fetch loads it.
    pub fn forget(&self, key: &ShareKey) {
        self.partitions.lock().remove(key);
    }

    /// Forgets share-partitions this broker no longer leads.
    pub fn retain(&self, leads: impl Fn(Uuid, i32) -> bool) {
        self.partitions
            .lock()
            .retain(|(_, topic_id, partition), _| leads(*topic_id, *partition));
    }

    pub fn counts(&self) -> Vec<ShareCounts> {
        self.partitions
            .lock()
            .iter()
            .map(|(key, partition)| {
                let (available, acquired, _, archived) = partition.counts();
                ShareCounts {
                    key: key.clone(),
                    start_offset: partition.start_offset,
                    available,
                    acquired,
                    archived,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::share::snapshot::ShareSnapshot;

    const LIMITS: AcquireLimits = AcquireLimits {
        max_records: 100,
        lock_duration_ms: 30_000,
    };

    #[test]
    fn session_epochs_follow_kafkas_rules() {
        let manager = SharePartitionManager::new(ShareConfig::default());
        let tp = (Uuid::from_u128(1), 0);
        assert_eq!(
            manager.session("g", "m", 1, &[], &[]),
            Err(ErrorCode::of(ResponseError::ShareSessionNotFound))
        );
        assert_eq!(manager.session("g", "m", 0, &[tp], &[]).unwrap().len(), 1);
        assert_eq!(
            manager.session("g", "m", 2, &[], &[]),
            Err(ErrorCode::of(ResponseError::InvalidShareSessionEpoch))
        );
        assert!(manager.session("g", "m", 1, &[], &[tp]).unwrap().is_empty());
        assert!(manager.session("g", "m", 2, &[], &[]).is_ok());
        assert!(manager.session("g", "m", -1, &[], &[]).is_ok());
        assert!(manager.session("g", "m", -1, &[], &[]).is_err());
    }

    #[test]
    fn a_closed_member_releases_its_records_to_the_next() {
        let manager = SharePartitionManager::new(ShareConfig::default());
        let key = ("g".to_string(), Uuid::from_u128(1), 0);
        assert_eq!(manager.next_fetch_offset(&key, 0), None, "not loaded yet");
        manager.install(&key, SharePartition::new(5));
        assert_eq!(manager.next_fetch_offset(&key, 0), Some(5));
        let acquired = manager.acquire(&key, "a", 5..10, &[], LIMITS, 0);
        assert_eq!((acquired[0].first_offset, acquired[0].last_offset), (5, 9));
        assert_eq!(manager.acknowledge(&key, "a", 5, 6, &[1, 2]), ErrorCode::NONE);
        assert_eq!(manager.release_member("g", "a"), 3);
        assert_eq!(manager.next_fetch_offset(&key, 0), Some(6));
        assert_eq!(
            manager.take_dirty(),
            vec![key.clone()],
            "the release is to be written"
        );
        let write = manager.state_write(&key, 4).unwrap();
        assert_eq!((write.start_offset, write.leader_epoch), (6, 4));
        let restored = SharePartition::restore(&ShareSnapshot {
            start_offset: write.start_offset,
            batches: write.batches,
            ..ShareSnapshot::default()
        });
        assert_eq!(restored.start_offset, 6, "acknowledged 5 stays done");
        assert_eq!(restored.counts(), (4, 0, 0, 0), "6-9 available again");
        assert_eq!(restored.records[&6].delivery_count, 1);
        let again = manager.acquire(&key, "b", 6..10, &[], LIMITS, 0);
        assert_eq!(
            (
                again[0].first_offset,
                again[0].last_offset,
                again[0].delivery_count
            ),
            (6, 9, 2)
        );
    }
}
