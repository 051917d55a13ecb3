//! The share coordinator's table (Kafka's `ShareCoordinatorShard`): the latest
//! persisted state of each share-partition whose `__share_group_state` partition this
//! broker leads, and which of those partitions are loaded. The IO around it (appends,
//! loads, the host) is in `group/share_state.rs`.

use super::manager::ShareKey;
use super::snapshot::{ShareSnapshot, ShareStateRecord};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Default)]
pub struct ShareCoordinator {
    states: Mutex<HashMap<ShareKey, ShareSnapshot>>,
    /// `__share_group_state` partitions led here, loaded or loading.
    pub led: crate::group::led::LedPartitions,
    /// One write at a time per `__share_group_state` partition, so the table always
    /// holds what was appended last.
    write_locks: Mutex<HashMap<i32, Arc<tokio::sync::Mutex<()>>>>,
}

impl ShareCoordinator {
    pub fn read(&self, key: &ShareKey) -> Option<ShareSnapshot> {
        self.states.lock().get(key).cloned()
    }

    /// Applies a record appended or replayed.
    pub fn apply(&self, record: ShareStateRecord) {
        let mut states = self.states.lock();
        match record.snapshot {
            Some(snapshot) => states.insert(record.key, snapshot),
            None => states.remove(&record.key),
        };
    }

    pub fn write_lock(&self, index: i32) -> Arc<tokio::sync::Mutex<()>> {
        self.write_locks.lock().entry(index).or_default().clone()
    }

    /// Forgets the states of one `__share_group_state` partition.
    pub fn unload(&self, belongs: impl Fn(&ShareKey) -> bool) {
        self.states.lock().retain(|key, _| !belongs(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn a_tombstone_removes_the_state() {
        let coordinator = ShareCoordinator::default();
        let key = ("g".to_string(), Uuid::from_u128(1), 0);
        coordinator.apply(ShareStateRecord {
            key: key.clone(),
            snapshot: Some(ShareSnapshot::default()),
        });
        assert_eq!(coordinator.read(&key), Some(ShareSnapshot::default()));
        coordinator.apply(ShareStateRecord {
            key: key.clone(),
            snapshot: None,
        });
        assert_eq!(coordinator.read(&key), None);
    }
}
