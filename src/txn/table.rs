//! The transaction coordinator's table: each transactional id's metadata as last
//! written to `__transaction_state`, whether a transition for it is being written, and
//! which state-log partitions this broker has loaded (with the coordinator epoch, the
//! partition's leader epoch when it was loaded, which markers carry).
//!
//! A transition is taken in three steps: [`TxnTable::begin`] runs a pure decision
//! against the current metadata and marks the id pending (a second request meanwhile
//! gets CONCURRENT_TRANSACTIONS); the caller writes the new metadata to the log; then
//! [`TxnTable::finish`] installs it (or only clears the mark if the write failed).

use super::state::{TxnError, TxnMetadata, TxnState};
use parking_lot::Mutex;
use std::collections::HashMap;

struct Entry {
    metadata: TxnMetadata,
    pending: bool,
    partition: i32,
}

#[derive(Default)]
pub struct TxnTable {
    entries: Mutex<HashMap<String, Entry>>,
    /// State-log partitions led here: Some(coordinator epoch) once loaded, None while
    /// loading.
    loaded: Mutex<HashMap<i32, Option<i32>>>,
    /// Woken at every finished transition, for requests waiting out a concurrent one.
    finished: tokio::sync::Notify,
}

/// A transactional id as DescribeTransactions and ListTransactions report it.
#[derive(Debug, Clone)]
pub struct TxnDescription {
    pub metadata: TxnMetadata,
    pub partition: i32,
}

impl TxnTable {
    /// The coordinator epoch of a loaded partition; None while loading or not led.
    pub fn loaded_epoch(&self, partition: i32) -> Option<i32> {
        self.loaded.lock().get(&partition).copied().flatten()
    }

    /// Whether `partition` is led here (loaded or loading).
    pub fn is_led(&self, partition: i32) -> bool {
        self.loaded.lock().contains_key(&partition)
    }

    pub fn led_partitions(&self) -> Vec<i32> {
        self.loaded.lock().keys().copied().collect()
    }

    /// Marks `partition` as loading (this broker has come to lead it).
    pub fn start_loading(&self, partition: i32) {
        self.loaded.lock().insert(partition, None);
    }

    /// Installs what a replay of `partition` found and marks it loaded.
    pub fn finish_loading(&self, partition: i32, coordinator_epoch: i32, found: Vec<TxnMetadata>) {
        let mut entries = self.entries.lock();
        entries.retain(|_, entry| entry.partition != partition);
        for metadata in found {
            entries.insert(
                metadata.transactional_id.clone(),
                Entry {
                    metadata,
                    pending: false,
                    partition,
                },
            );
        }
        self.loaded.lock().insert(partition, Some(coordinator_epoch));
    }

    /// Forgets `partition` (no longer led here); returns how many ids went.
    pub fn unload(&self, partition: i32) -> usize {
        self.loaded.lock().remove(&partition);
        let mut entries = self.entries.lock();
        let before = entries.len();
        entries.retain(|_, entry| entry.partition != partition);
        before - entries.len()
    }

    /// Runs `decide` on `transactional_id`'s metadata; when it yields metadata to write,
    /// marks the id pending. CONCURRENT_TRANSACTIONS while another transition is pending.
    pub fn begin<T>(
        &self,
        transactional_id: &str,
        decide: impl FnOnce(Option<&TxnMetadata>) -> Result<T, TxnError>,
        to_write: impl Fn(&T) -> bool,
    ) -> Result<T, TxnError> {
        let mut entries = self.entries.lock();
        let current = entries.get(transactional_id);
        if current.is_some_and(|entry| entry.pending) {
            return Err(TxnError::ConcurrentTransactions);
        }
        let outcome = decide(current.map(|entry| &entry.metadata))?;
        if to_write(&outcome)
            && let Some(entry) = entries.get_mut(transactional_id)
        {
            entry.pending = true;
        }
        Ok(outcome)
    }

    /// A future that completes at the next finished transition (create it before
    /// deciding, so that none is missed).
    pub fn finished(&self) -> tokio::sync::futures::Notified<'_> {
        self.finished.notified()
    }

    /// Installs `metadata` after its write (`written`), or only clears the pending mark.
    pub fn finish(&self, partition: i32, metadata: TxnMetadata, written: bool) {
        self.finish_quietly(partition, metadata, written);
        self.finished.notify_waiters();
    }

    fn finish_quietly(&self, partition: i32, metadata: TxnMetadata, written: bool) {
        let mut entries = self.entries.lock();
        let id = metadata.transactional_id.clone();
        if written {
            if metadata.state == TxnState::Dead {
                entries.remove(&id);
            } else {
                entries.insert(
                    id,
                    Entry {
                        metadata,
                        pending: false,
                        partition,
                    },
                );
            }
        } else if let Some(entry) = entries.get_mut(&id) {
            entry.pending = false;
        }
    }

    /// Marks an id pending for a transition decided outside a request (timeout,
    /// expiry); false if it is pending already or gone.
    pub fn try_mark_pending(&self, transactional_id: &str, expected: &TxnMetadata) -> bool {
        let mut entries = self.entries.lock();
        match entries.get_mut(transactional_id) {
            Some(entry) if !entry.pending && entry.metadata == *expected => {
                entry.pending = true;
                true
            }
            _ => false,
        }
    }

    pub fn get(&self, transactional_id: &str) -> Option<TxnDescription> {
        self.entries
            .lock()
            .get(transactional_id)
            .map(|entry| TxnDescription {
                metadata: entry.metadata.clone(),
                partition: entry.partition,
            })
    }

    /// Every id this broker coordinates.
    pub fn all(&self) -> Vec<TxnDescription> {
        self.entries
            .lock()
            .values()
            .map(|entry| TxnDescription {
                metadata: entry.metadata.clone(),
                partition: entry.partition,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::state::{InitOutcome, init_producer_id};

    #[test]
    fn a_pending_transition_makes_others_wait_until_it_is_finished() {
        let coordinator = TxnTable::default();
        coordinator.finish_loading(3, 7, vec![TxnMetadata::new("tx", 1, 1000, 0)]);
        assert_eq!(coordinator.loaded_epoch(3), Some(7));
        let is_write = |outcome: &InitOutcome| matches!(outcome, InitOutcome::Write(_));
        let Ok(InitOutcome::Write(next)) = coordinator.begin(
            "tx",
            |current| init_producer_id(current, "tx", 1000, None, None, 1),
            is_write,
        ) else {
            panic!()
        };
        assert!(matches!(
            coordinator.begin(
                "tx",
                |current| init_producer_id(current, "tx", 1000, None, None, 2),
                is_write
            ),
            Err(TxnError::ConcurrentTransactions)
        ));
        coordinator.finish(3, next, true);
        assert_eq!(coordinator.get("tx").unwrap().metadata.producer_epoch, 1);
        assert!(
            coordinator
                .begin(
                    "tx",
                    |current| init_producer_id(current, "tx", 1000, None, None, 3),
                    is_write
                )
                .is_ok()
        );
        assert_eq!(coordinator.unload(3), 1);
        assert!(coordinator.get("tx").is_none() && !coordinator.is_led(3));
    }
}
