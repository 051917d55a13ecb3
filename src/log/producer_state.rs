//! Idempotent-producer state of one partition: a pure decision table, no IO.
//!
//! For each producer id the partition remembers the current epoch and the last five
//! appended batches (first/last sequence and offsets), as Kafka does. A retried batch
//! that matches one of them is a duplicate and is answered with its original offsets
//! instead of being appended twice. A sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER, an
//! older epoch is INVALID_PRODUCER_EPOCH. A producer the partition has no state for
//! (new, or whose batches are all gone) is accepted at any sequence.
//!
//! The table is a function of the log: every batch with a producer id, in offset order,
//! is [`ProducerStateTable::record`]ed, whether a leader appended it or a follower
//! replicated it. So it can be rebuilt from any snapshot plus the batches after it
//! (`producer_snapshot.rs`).

use super::batch::BatchHeader;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

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
    /// The identity of a batch from an idempotent producer (producer id set), if any.
    pub fn of(header: &BatchHeader) -> Option<BatchIdentity> {
        (header.producer_id >= 0).then(|| BatchIdentity {
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
}

fn no_timestamp() -> i64 {
    -1
}

/// One producer as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp: i64,
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
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
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

    /// Records a batch whose header carries its final offsets, if it has a producer id.
    pub fn record_header(&mut self, header: &BatchHeader) {
        if let Some(identity) = BatchIdentity::of(header) {
            self.record(&identity, header.base_offset, header.last_offset());
            if let Some(entry) = self.producers.get_mut(&identity.producer_id) {
                entry.last_timestamp = header.max_timestamp;
            }
        }
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
