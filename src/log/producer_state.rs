//! Idempotent-producer state of one partition: a pure decision table, no IO.
//!
//! For each producer id the partition remembers the current epoch and the last five
//! appended batches (first/last sequence and offsets), as Kafka does. A retried batch
//! that matches one of them is a duplicate and is answered with its original offsets
//! instead of being appended twice. A sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER, an
//! older epoch is INVALID_PRODUCER_EPOCH. A producer the partition has no state for
//! (new, or whose batches are all gone) is accepted at any sequence.
//!
//! Transactions: a producer's first transactional batch after a marker opens its
//! transaction in this partition (its first offset is kept); the marker (a control
//! batch, COMMIT or ABORT) closes it and yields a [`CompletedTxn`]. The first offset of
//! the earliest open transaction bounds the last stable offset. A marker from an older
//! producer epoch is refused (INVALID_PRODUCER_EPOCH), and so is one from an older
//! coordinator epoch (TRANSACTION_COORDINATOR_FENCED).
//!
//! The table is a function of the log: every batch with a producer id, in offset order,
//! is [`ProducerStateTable::record`]ed, whether a leader appended it or a follower
//! replicated it. So it can be rebuilt from any snapshot plus the batches after it
//! (`producer_snapshot.rs`).

use super::batch::BatchHeader;
use super::control::ControlMarker;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// How many recent batches per producer are kept for duplicate detection (Kafka's 5).
const RECENT_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchIdentity {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub first_sequence: i32,
    pub last_sequence: i32,
}

impl BatchIdentity {
    /// The identity of a batch from an idempotent producer (producer id and sequence
    /// set), if any. A coordinator's transactional batch has no sequence.
    pub fn of(header: &BatchHeader) -> Option<BatchIdentity> {
        (header.producer_id >= 0 && header.base_sequence >= 0).then(|| BatchIdentity {
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            first_sequence: header.base_sequence,
            last_sequence: header.base_sequence.wrapping_add(header.last_offset_delta),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct RecentBatch {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: i64,
    last_offset: i64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ProducerEntry {
    epoch: i16,
    recent: VecDeque<RecentBatch>,
    /// The max timestamp of the producer's last batch (-1 in snapshots from before it
    /// was kept).
    #[serde(default = "no_timestamp")]
    last_timestamp: i64,
    /// The first offset of the producer's open transaction here, if one is open.
    #[serde(default)]
    txn_first_offset: Option<i64>,
    /// The coordinator epoch of the producer's last marker here.
    #[serde(default = "no_coordinator_epoch")]
    coordinator_epoch: i32,
}

fn no_timestamp() -> i64 {
    -1
}

fn no_coordinator_epoch() -> i32 {
    -1
}

/// A transaction a marker closed in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    /// The transaction's first offset here (the marker's own when it had no data here).
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub aborted: bool,
}

/// Whether a transaction marker may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerDecision {
    Append,
    InvalidProducerEpoch,
    CoordinatorFenced,
}

/// One producer as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    /// The first offset of its open transaction here, or -1.
    pub txn_start_offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Append the batch.
    Append,
    /// Already appended at these offsets: answer with them, append nothing.
    Duplicate {
        base_offset: i64,
        last_offset: i64,
    },
    OutOfOrderSequence,
    InvalidProducerEpoch,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredTable")]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
    /// The open transactions as (first offset, producer id), ordered: the first one
    /// bounds the last stable offset, asked for on every fetch. Derived from
    /// `producers`, so not stored.
    #[serde(skip)]
    open: BTreeSet<(i64, i64)>,
}

/// A table as a snapshot stores it.
#[derive(Deserialize)]
struct StoredTable {
    producers: HashMap<i64, ProducerEntry>,
}

impl From<StoredTable> for ProducerStateTable {
    fn from(stored: StoredTable) -> Self {
        let open = stored
            .producers
            .iter()
            .filter_map(|(id, entry)| entry.txn_first_offset.map(|first| (first, *id)))
            .collect();
        ProducerStateTable {
            producers: stored.producers,
            open,
        }
    }
}

/// The sequence after `sequence`; sequences wrap from i32::MAX to 0.
fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX { 0 } else { sequence + 1 }
}

impl ProducerStateTable {
    pub fn check(&self, batch: &BatchIdentity) -> Decision {
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            return Decision::Append;
        };
        if batch.producer_epoch < entry.epoch {
            return Decision::InvalidProducerEpoch;
        }
        if batch.producer_epoch > entry.epoch {
            // A bumped epoch restarts the sequence at zero.
            return if batch.first_sequence == 0 {
                Decision::Append
            } else {
                Decision::OutOfOrderSequence
            };
        }
        if let Some(recent) = entry.recent.iter().find(|recent| {
            recent.first_sequence == batch.first_sequence && recent.last_sequence == batch.last_sequence
        }) {
            return Decision::Duplicate {
                base_offset: recent.base_offset,
                last_offset: recent.last_offset,
            };
        }
        match entry.recent.back() {
            Some(last) if batch.first_sequence != next_sequence(last.last_sequence) => {
                Decision::OutOfOrderSequence
            }
            _ => Decision::Append,
        }
    }

    /// Records an appended batch.
    pub fn record(&mut self, batch: &BatchIdentity, base_offset: i64, last_offset: i64) {
        let entry = self.producers.entry(batch.producer_id).or_default();
        if batch.producer_epoch != entry.epoch {
            entry.epoch = batch.producer_epoch;
            entry.recent.clear();
        }
        entry.recent.push_back(RecentBatch {
            first_sequence: batch.first_sequence,
            last_sequence: batch.last_sequence,
            base_offset,
            last_offset,
        });
        while entry.recent.len() > RECENT_BATCHES {
            entry.recent.pop_front();
        }
    }

    /// Records a batch whose header carries its final offsets, if it has a producer id;
    /// `marker` is what a control batch says. Returns the transaction a marker closed.
    pub fn record_header(
        &mut self,
        header: &BatchHeader,
        marker: Option<ControlMarker>,
    ) -> Option<CompletedTxn> {
        if header.producer_id < 0 {
            return None;
        }
        if header.is_control() {
            let marker = marker?;
            let entry = self.producers.entry(header.producer_id).or_default();
            if header.producer_epoch != entry.epoch {
                entry.epoch = header.producer_epoch;
                entry.recent.clear();
            }
            entry.coordinator_epoch = marker.coordinator_epoch;
            entry.last_timestamp = header.max_timestamp;
            let first_offset = match entry.txn_first_offset.take() {
                Some(first) => {
                    self.open.remove(&(first, header.producer_id));
                    first
                }
                None => header.base_offset,
            };
            return Some(CompletedTxn {
                producer_id: header.producer_id,
                first_offset,
                last_offset: header.base_offset,
                aborted: !marker.commit,
            });
        }
        if let Some(identity) = BatchIdentity::of(header) {
            self.record(&identity, header.base_offset, header.last_offset());
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch > entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.recent.clear();
        }
        entry.last_timestamp = header.max_timestamp;
        if header.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(header.base_offset);
            self.open.insert((header.base_offset, header.producer_id));
        }
        None
    }

    /// The current epoch of `producer_id`, if the table knows it.
    pub fn epoch_of(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|entry| entry.epoch)
    }

    /// Whether a marker for `producer_id` at `producer_epoch` from a coordinator in
    /// `coordinator_epoch` may be written.
    pub fn check_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
    ) -> MarkerDecision {
        match self.producers.get(&producer_id) {
            Some(entry) if producer_epoch < entry.epoch => MarkerDecision::InvalidProducerEpoch,
            Some(entry) if coordinator_epoch < entry.coordinator_epoch => MarkerDecision::CoordinatorFenced,
            _ => MarkerDecision::Append,
        }
    }

    /// The first offset of the earliest open transaction, if any is open.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.open.first().map(|(first, _)| *first)
    }

    /// Whether `producer_id` has an open transaction here.
    pub fn in_transaction(&self, producer_id: i64) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|entry| entry.txn_first_offset.is_some())
    }

    /// Forgets producers with no open transaction whose last batch is older than
    /// `producer.id.expiration.ms`; returns how many went.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, entry| {
            entry.txn_first_offset.is_some()
                || entry.last_timestamp < 0
                || now_ms.saturating_sub(entry.last_timestamp) <= expiration_ms
        });
        before - self.producers.len()
    }

    /// Each producer's last offset in the log (its newest batch's last offset).
    pub fn last_offsets(&self) -> HashMap<i64, i64> {
        self.producers
            .iter()
            .filter_map(|(id, entry)| entry.recent.back().map(|last| (*id, last.last_offset)))
            .collect()
    }

    /// Every producer with a batch in the table, by producer id.
    pub fn active(&self) -> Vec<ActiveProducer> {
        let mut active: Vec<ActiveProducer> = self
            .producers
            .iter()
            .filter_map(|(producer_id, entry)| {
                let last = entry.recent.back()?;
                Some(ActiveProducer {
                    producer_id: *producer_id,
                    producer_epoch: entry.epoch,
                    last_sequence: last.last_sequence,
                    last_timestamp: entry.last_timestamp,
                    txn_start_offset: entry.txn_first_offset.unwrap_or(-1),
                })
            })
            .collect();
        active.sort_by_key(|producer| producer.producer_id);
        active
    }

    /// How many producers the table knows.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(epoch: i16, first: i32, last: i32) -> BatchIdentity {
        BatchIdentity {
            producer_id: 7,
            producer_epoch: epoch,
            first_sequence: first,
            last_sequence: last,
        }
    }

    #[test]
    fn unknown_producer_is_accepted_at_any_sequence() {
        let table = ProducerStateTable::default();
        assert_eq!(table.check(&batch(0, 42, 50)), Decision::Append);
    }

    #[test]
    fn in_order_appends_then_retry_is_duplicate() {
        let mut table = ProducerStateTable::default();
        table.record(&batch(0, 0, 9), 100, 109);
        assert_eq!(table.check(&batch(0, 10, 19)), Decision::Append);
        table.record(&batch(0, 10, 19), 110, 119);
        assert_eq!(
            table.check(&batch(0, 0, 9)),
            Decision::Duplicate {
                base_offset: 100,
                last_offset: 109
            }
        );
        assert_eq!(table.check(&batch(0, 25, 30)), Decision::OutOfOrderSequence);
    }

    #[test]
    fn epochs_fence_and_reset_sequences() {
        let mut table = ProducerStateTable::default();
        table.record(&batch(3, 0, 0), 0, 0);
        assert_eq!(table.check(&batch(2, 1, 1)), Decision::InvalidProducerEpoch);
        assert_eq!(table.check(&batch(4, 5, 5)), Decision::OutOfOrderSequence);
        assert_eq!(table.check(&batch(4, 0, 0)), Decision::Append);
        table.record(&batch(4, 0, 0), 1, 1);
        assert_eq!(table.check(&batch(3, 1, 1)), Decision::InvalidProducerEpoch);
    }

    fn header(
        producer_id: i64,
        epoch: i16,
        base_offset: i64,
        count: i32,
        transactional: bool,
    ) -> BatchHeader {
        let bytes = crate::log::batch::tests::make_batch(count, 1_000, b"v");
        let mut header = crate::log::batch::validate(&bytes).unwrap();
        header.base_offset = base_offset;
        header.producer_id = producer_id;
        header.producer_epoch = epoch;
        header.base_sequence = 0;
        if transactional {
            header.attributes |= crate::log::control::TRANSACTIONAL_FLAG;
        }
        header
    }

    fn marker_header(producer_id: i64, epoch: i16, offset: i64) -> BatchHeader {
        let mut header = header(producer_id, epoch, offset, 1, true);
        header.attributes |= crate::log::control::CONTROL_FLAG;
        header.base_sequence = -1;
        header
    }

    fn marker(commit: bool, coordinator_epoch: i32) -> Option<ControlMarker> {
        Some(ControlMarker {
            commit,
            coordinator_epoch,
        })
    }

    #[test]
    fn open_transactions_bound_the_stable_offset_until_their_markers() {
        let mut table = ProducerStateTable::default();
        assert_eq!(table.record_header(&header(1, 0, 10, 3, true), None), None);
        assert_eq!(table.record_header(&header(2, 0, 13, 2, true), None), None);
        assert_eq!(table.record_header(&header(3, 0, 15, 1, false), None), None);
        // A second batch of the same transaction does not move its first offset.
        let mut more = header(1, 0, 16, 1, true);
        more.base_sequence = 3;
        table.record_header(&more, None);
        assert_eq!(table.first_unstable_offset(), Some(10));
        assert!(table.in_transaction(1) && !table.in_transaction(3));
        assert_eq!(
            table.record_header(&marker_header(1, 0, 17), marker(false, 0)),
            Some(CompletedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 17,
                aborted: true
            })
        );
        assert_eq!(table.first_unstable_offset(), Some(13));
        assert_eq!(
            table.record_header(&marker_header(2, 0, 18), marker(true, 0)),
            Some(CompletedTxn {
                producer_id: 2,
                first_offset: 13,
                last_offset: 18,
                aborted: false
            })
        );
        assert_eq!(table.first_unstable_offset(), None);
        // A marker for a transaction with no data here closes at its own offset.
        assert_eq!(
            table
                .record_header(&marker_header(4, 0, 19), marker(false, 0))
                .map(|txn| txn.first_offset),
            Some(19)
        );
        // A control batch that is no transaction marker changes nothing.
        assert_eq!(table.record_header(&marker_header(1, 0, 20), None), None);
    }

    #[test]
    fn markers_from_older_producer_or_coordinator_epochs_are_refused() {
        let mut table = ProducerStateTable::default();
        table.record_header(&header(1, 2, 0, 1, true), None);
        table.record_header(&marker_header(1, 2, 1), marker(true, 5));
        assert_eq!(table.check_marker(1, 1, 5), MarkerDecision::InvalidProducerEpoch);
        assert_eq!(table.check_marker(1, 2, 4), MarkerDecision::CoordinatorFenced);
        assert_eq!(table.check_marker(1, 3, 5), MarkerDecision::Append);
        assert_eq!(table.check_marker(9, 0, 0), MarkerDecision::Append);
        // A marker at a bumped epoch (the coordinator fencing a producer) takes the epoch.
        table.record_header(&marker_header(1, 3, 2), marker(false, 5));
        assert_eq!(table.check(&batch_of(1, 2)), Decision::InvalidProducerEpoch);
    }

    fn batch_of(producer_id: i64, epoch: i16) -> BatchIdentity {
        BatchIdentity {
            producer_id,
            producer_epoch: epoch,
            first_sequence: 0,
            last_sequence: 0,
        }
    }

    #[test]
    fn idle_producers_expire_but_never_with_an_open_transaction() {
        let mut table = ProducerStateTable::default();
        table.record_header(&header(1, 0, 0, 1, false), None);
        table.record_header(&header(2, 0, 1, 1, true), None);
        assert_eq!(table.expire(1_000 + 500, 1_000), 0);
        assert_eq!(table.expire(1_000 + 5_000, 1_000), 1);
        assert!(table.in_transaction(2));
        assert_eq!(table.len(), 1);
        let snapshot = serde_json::to_string(&table).unwrap();
        let back: ProducerStateTable = serde_json::from_str(&snapshot).unwrap();
        assert_eq!(
            back.first_unstable_offset(),
            Some(1),
            "snapshots carry open transactions"
        );
    }

    #[test]
    fn only_five_batches_are_remembered_and_sequences_wrap() {
        let mut table = ProducerStateTable::default();
        for index in 0..6 {
            table.record(&batch(0, index, index), index as i64, index as i64);
        }
        // The oldest fell out: it is no longer a duplicate but a sequence gap.
        assert_eq!(table.check(&batch(0, 0, 0)), Decision::OutOfOrderSequence);
        table.record(&batch(0, i32::MAX - 1, i32::MAX), 10, 11);
        assert_eq!(table.check(&batch(0, 0, 3)), Decision::Append);
    }
}
