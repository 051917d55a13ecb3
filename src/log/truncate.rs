//! Truncation of a partition's log: a follower cutting the tail where it diverged
//! from its leader, or emptying its log to restart at the leader's log start. Deleted
//! segments go durably (the log dir is fsynced), so a diverged tail cannot return.

use super::PartitionLog;
use crate::log::LogError;
use crate::log::leader_epoch::EpochEntries;
use crate::log::producer_snapshot;
use crate::log::producer_state::ProducerStateTable;
use crate::log::segment::LogSegment;

impl PartitionLog {
    /// Cuts the log so that it ends before `offset` (a batch holding `offset` goes
    /// whole), as a follower does at the point where it diverged from its leader. The
    /// high watermark, recovery point and epoch cache follow. Below the log start, the
    /// log is emptied and restarts at `offset`.
    pub fn truncate_to(&mut self, offset: i64, now_ms: i64) -> Result<(), LogError> {
        self.rewrites += 1;
        if offset < self.log_start_offset {
            return self.truncate_fully_and_start_at(offset, now_ms);
        }
        if offset >= self.log_end_offset() {
            // No batch to cut, but an epoch this replica started as leader without
            // appending anything (an entry at the log end) must go: otherwise it keeps
            // claiming that epoch as its last, and its leader keeps answering "diverged".
            if self.epochs.entries.truncate_from_end(offset) {
                self.save_epochs()?;
            }
            return Ok(());
        }
        let result = self.truncate_segments(offset, now_ms);
        self.sync_end();
        if let Err(error) = &result
            && error.is_fatal()
        {
            self.offline = true;
        }
        result?;
        let log_end_offset = self.log_end_offset();
        self.high_watermark = self.high_watermark.min(log_end_offset);
        self.recovery_point = self.recovery_point.min(log_end_offset);
        if self.epochs.entries.truncate_from_end(log_end_offset) {
            self.save_epochs()?;
        }
        // A retry of a cut batch must not be answered as a duplicate.
        self.load_producer_state()?;
        tracing::info!(topic_partition = %self.topic_partition, log_end_offset, "log truncated");
        Ok(())
    }

    /// Empties the log and restarts it at `offset` (a follower whose whole log is
    /// behind the leader's log start).
    pub fn truncate_fully_and_start_at(&mut self, offset: i64, now_ms: i64) -> Result<(), LogError> {
        self.rewrites += 1;
        let restarted = self
            .delete_segments_from(i64::MIN)
            .and_then(|()| self.start_segment_at(offset.max(0), now_ms));
        self.sync_end();
        restarted?;
        self.log_start_offset = offset.max(0);
        self.high_watermark = offset.max(0);
        self.recovery_point = offset.max(0);
        self.epochs.entries = EpochEntries::default();
        self.producers = ProducerStateTable::default();
        self.aborted.clear();
        producer_snapshot::remove_where(&self.dir, |_| true)
            .map_err(|source| LogError::io(&self.dir, "remove producer snapshots", source))?;
        self.save_epochs()
    }

    fn truncate_segments(&mut self, offset: i64, now_ms: i64) -> Result<(), LogError> {
        // Segments starting at or after `offset` go whole; the one before ends there or
        // is cut there.
        self.delete_segments_from(offset)?;
        let Some(last) = self.segments.values_mut().next_back() else {
            return self.start_segment_at(offset.max(0), now_ms);
        };
        let base = last.base_offset;
        last.truncate_file_to(offset)?;
        // Reopen it as the active segment, rebuilding its indexes.
        drop(self.segments.remove(&base));
        let (reopened, _) = LogSegment::open(
            &self.dir,
            base,
            self.config.index_interval_bytes,
            self.config.max_index_size,
            true,
            true,
        )?;
        self.segments.insert(base, reopened);
        Ok(())
    }

    /// Deletes every segment whose base offset is at least `offset`.
    pub(super) fn delete_segments_from(&mut self, offset: i64) -> Result<(), LogError> {
        let doomed: Vec<i64> = self.segments.range(offset..).map(|(base, _)| *base).collect();
        let any = !doomed.is_empty();
        for base in doomed {
            if let Some(segment) = self.segments.remove(&base) {
                segment.delete()?;
            }
        }
        // Durably, as truncation is: deleted segments of a diverged tail must not return.
        if any {
            crate::log::checkpoint::sync_dir(&self.dir)
                .map_err(|source| LogError::io(&self.dir, "fsync log dir", source))?;
        }
        Ok(())
    }

    /// Adds an empty active segment starting at `offset`.
    pub(super) fn start_segment_at(&mut self, offset: i64, now_ms: i64) -> Result<(), LogError> {
        let fresh = LogSegment::create(
            &self.dir,
            offset,
            self.config.index_interval_bytes,
            self.config.max_index_size,
            now_ms,
        )?;
        self.segments.insert(offset, fresh);
        self.note_new_entry();
        Ok(())
    }
}
