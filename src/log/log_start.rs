//! Where a partition log starts, and what moves the start: retention deleting whole
//! segments from the front, and DeleteRecords (Kafka's `logStartOffset`), which may put
//! the start inside a segment. Reads below the start are out of range; segments wholly
//! below it are deleted at once; the start survives restarts through each log dir's
//! `log-start-offset-checkpoint` (see `LogManager`).

use super::PartitionLog;
use crate::log::retention::{self, SegmentSummary};
use crate::log::{LogError, producer_snapshot};

impl PartitionLog {
    /// Raises the log start to `offset` (at most the log end): DeleteRecords on a
    /// leader, the leader's start on a follower, or the checkpointed start at open.
    /// Whole segments below it are deleted. Returns whether the start moved.
    pub fn advance_log_start(&mut self, offset: i64) -> Result<bool, LogError> {
        let offset = offset.min(self.log_end_offset());
        if offset <= self.log_start_offset {
            return Ok(false);
        }
        self.log_start_offset = offset;
        self.delete_segments_below(offset)?;
        if self.epochs.entries.truncate_from_start(offset) {
            self.save_epochs()?;
        }
        Ok(true)
    }

    /// Deletes the segments retention says are due; returns how many went.
    /// Only a topic whose `cleanup.policy` includes `delete` loses records this way.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        if !self.config.delete_policy {
            return Ok(0);
        }
        let summaries: Vec<SegmentSummary> = self
            .segments
            .values()
            .map(|segment| SegmentSummary {
                base_offset: segment.base_offset,
                size: segment.size(),
                max_timestamp: segment.max_timestamp,
                last_modified_ms: segment.created_at_ms,
            })
            .collect();
        let count = retention::segments_to_delete(
            &summaries,
            self.config.retention_ms,
            self.config.retention_bytes,
            now_ms,
        );
        for summary in &summaries[..count] {
            if let Some(segment) = self.segments.remove(&summary.base_offset) {
                segment.delete()?;
            }
        }
        self.log_start_moved();
        Ok(count)
    }

    /// Deletes every whole segment that ends at or before `offset` (the active segment
    /// stays). Used to drop history that a snapshot has restated. Returns how many went.
    pub fn delete_segments_below(&mut self, offset: i64) -> Result<usize, LogError> {
        let doomed: Vec<i64> = self
            .segments
            .iter()
            .take(self.segments.len().saturating_sub(1))
            .filter(|(_, segment)| segment.next_offset() <= offset)
            .map(|(base, _)| *base)
            .collect();
        for base in &doomed {
            if let Some(segment) = self.segments.remove(base) {
                segment.delete()?;
            }
        }
        self.log_start_moved();
        Ok(doomed.len())
    }

    /// After segments went from the front or the log start was raised: the log start is
    /// at least the oldest segment's base, the high watermark stays inside the log, and
    /// producer snapshots below the log start go, except the newest one.
    fn log_start_moved(&mut self) {
        let oldest_base = self.segments.keys().next().copied().unwrap_or(0);
        self.log_start_offset = self.log_start_offset.max(oldest_base);
        self.aborted.forget_below(oldest_base);
        let log_start_offset = self.log_start_offset;
        if self.high_watermark < log_start_offset {
            self.high_watermark = log_start_offset;
        }
        let newest = producer_snapshot::list(&self.dir).last().copied();
        let pruned = producer_snapshot::remove_where(&self.dir, |offset| {
            offset < log_start_offset && Some(offset) != newest
        });
        if let Err(error) = pruned {
            tracing::warn!(topic_partition = %self.topic_partition, %error, "cannot remove old producer snapshots");
        }
    }
}
