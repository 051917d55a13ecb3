//! The share coordinator's table (Kafka's `ShareCoordinatorShard`): the latest
//! persisted state of each share-partition whose `__share_group_state` partition this
//! broker leads, and which of those partitions are loaded. The IO around it (appends,
//! loads, the host) is in `group/share_state.rs`.

use super::manager::ShareKey;
use super::snapshot::{ShareSnapshot, ShareStateRecord};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Default)]
pub struct ShareCoordinator {
    states: Mutex<HashMap<ShareKey, ShareSnapshot>>,
    /// `__share_group_state` partitions led here, and whether each is loaded.
    partitions: Mutex<HashMap<i32, bool>>,
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

    /// The share-partitions of a group this broker holds state for.
    pub fn keys_of_group(&self, group_id: &str) -> Vec<ShareKey> {
        self.states
            .lock()
            .keys()
            .filter(|(group, _, _)| group == group_id)
            .cloned()
            .collect()
    }

    pub fn write_lock(&self, index: i32) -> Arc<tokio::sync::Mutex<()>> {
        self.write_locks.lock().entry(index).or_default().clone()
    }

    pub fn is_loaded(&self, index: i32) -> bool {
        self.partitions.lock().get(&index).copied().unwrap_or(false)
    }

    pub fn mark_loaded(&self, index: i32) {
        self.partitions.lock().insert(index, true);
    }

    /// Records that this broker leads `led` now; returns (lost, gained) partitions.
    pub fn set_led_partitions(&self, led: &[i32]) -> (Vec<i32>, Vec<i32>) {
        let mut partitions = self.partitions.lock();
        let led_set: HashSet<i32> = led.iter().copied().collect();
        let lost: Vec<i32> = partitions
            .keys()
            .filter(|index| !led_set.contains(index))
            .copied()
            .collect();
        for index in &lost {
            partitions.remove(index);
        }
        let gained: Vec<i32> = led
            .iter()
            .filter(|index| !partitions.contains_key(index))
            .copied()
            .collect();
        for index in &gained {
            partitions.insert(*index, false);
        }
        (lost, gained)
    }

    /// Forgets the states of one `__share_group_state` partition.
    pub fn unload(&self, belongs: impl Fn(&ShareKey) -> bool) -> usize {
        let mut states = self.states.lock();
        let before = states.len();
        states.retain(|key, _| !belongs(key));
        before - states.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn a_tombstone_removes_and_leadership_changes_are_reported() {
        let coordinator = ShareCoordinator::default();
        let key = ("g".to_string(), Uuid::from_u128(1), 0);
        coordinator.apply(ShareStateRecord {
            key: key.clone(),
            snapshot: Some(ShareSnapshot::default()),
        });
        assert_eq!(coordinator.keys_of_group("g"), vec![key.clone()]);
        coordinator.apply(ShareStateRecord {
            key: key.clone(),
            snapshot: None,
        });
        assert_eq!(coordinator.read(&key), None);
        assert_eq!(coordinator.set_led_partitions(&[1, 2]), (vec![], vec![1, 2]));
        assert!(!coordinator.is_loaded(1));
        coordinator.mark_loaded(1);
        assert!(coordinator.is_loaded(1));
        assert_eq!(coordinator.set_led_partitions(&[2, 3]), (vec![1], vec![3]));
        assert!(!coordinator.is_loaded(1));
    }
}
