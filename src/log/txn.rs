//! Transactions in a partition log: markers, the last stable offset and the aborted
//! transactions a read_committed fetch is told about.
//!
//! Both append paths hand every batch's header (and a control batch's marker) to the
//! producer state; a marker that closes an aborted transaction adds an entry to the
//! aborted-transaction index of the segment it lands in ([`AbortedIndex`]).

use super::{AppendInfo, PartitionLog};
use crate::log::LogError;
use crate::log::batch::{BatchHeader, IncomingBatch, validate};
use crate::log::control::{self, ControlMarker};
use crate::log::producer_state::CompletedTxn;
use crate::log::txn_index::AbortedTxn;
use bytes::Bytes;

impl PartitionLog {
    /// The last stable offset: the first offset of the earliest open transaction,
    /// bounded by the high watermark. read_committed consumers read below it.
    pub fn last_stable_offset(&self) -> i64 {
        self.producers
            .first_unstable_offset()
            .map_or(self.high_watermark, |first| first.min(self.high_watermark))
    }

    /// (producer id, first offset) of the aborted transactions with data in [`from`, `upper`).
    pub fn aborted_overlapping(&self, from: i64, upper: i64) -> Vec<(i64, i64)> {
        self.aborted.overlapping(from, upper)
    }

    /// Every aborted transaction whose marker is in the log.
    pub fn aborted_transactions(&self) -> Vec<AbortedTxn> {
        self.aborted.all()
    }

    /// Appends a transaction marker for `producer_id` as leader (the caller checked it
    /// with `producers().check_marker`).
    pub fn append_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        marker: ControlMarker,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let bytes = control::marker_batch(producer_id, producer_epoch, marker, now_ms);
        let header = validate(&bytes).map_err(|_| LogError::Corrupt {
            path: self.dir.clone(),
            position: 0,
        })?;
        let batch = IncomingBatch {
            header,
            bytes: Bytes::from(bytes),
        };
        self.append(&[batch], now_ms)
    }

    /// Records an appended batch (its final offsets in `header`) in the producer state,
    /// and an aborted transaction its marker closed in the index.
    pub(crate) fn record_batch(&mut self, header: &BatchHeader, bytes: &[u8]) -> Result<(), LogError> {
        let marker = control::marker(header, bytes);
        if let Some(completed) = self.producers.record_header(header, marker) {
            self.complete_txn(completed)?;
        }
        Ok(())
    }

    fn complete_txn(&mut self, completed: CompletedTxn) -> Result<(), LogError> {
        if !completed.aborted {
            return Ok(());
        }
        let entry = AbortedTxn {
            producer_id: completed.producer_id,
            first_offset: completed.first_offset,
            last_offset: completed.last_offset,
            last_stable_offset: self
                .producers
                .first_unstable_offset()
                .unwrap_or(completed.last_offset + 1),
        };
        let base = self
            .segments
            .range(..=completed.last_offset)
            .next_back()
            .map_or(0, |(base, _)| *base);
        self.aborted
            .append(base, entry)
            .map_err(|source| LogError::io(&self.dir, "append to the transaction index", source))
    }

    /// Forgets idle producers (`producer.id.expiration.ms`); never one with an open
    /// transaction. Returns how many went.
    pub fn expire_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producers.expire(now_ms, expiration_ms)
    }
}

#[cfg(test)]
#[path = "txn_tests.rs"]
mod tests;
