//! DeleteRecords on a leader: the log start moves up to the requested offset, then the
//! answer waits until every in-sync follower has moved its own start too (Kafka's low
//! watermark), which followers do from the log start in the leader's fetch responses.

use super::partition::Partition;
use crate::log::LogError;

#[derive(Debug, thiserror::Error)]
pub enum DeleteRecordsError {
    #[error("this broker is not the leader of the partition")]
    NotLeader,
    #[error("offset {offset} is above the high watermark {high_watermark}")]
    OffsetOutOfRange { offset: i64, high_watermark: i64 },
    #[error("the topic's cleanup.policy does not include delete")]
    PolicyViolation,
    #[error("followers did not delete the records within the request timeout")]
    Timeout,
    #[error(transparent)]
    Log(#[from] LogError),
}

impl Partition {
    /// Raises the leader's log start to `offset` (-1: the high watermark) and returns
    /// the offset the followers must reach. Records below it are no longer readable;
    /// segments wholly below it are deleted now.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, DeleteRecordsError> {
        let mut log = self.log.lock();
        if self.state.lock().leader != self.node_id {
            return Err(DeleteRecordsError::NotLeader);
        }
        if !log.config().delete_policy {
            return Err(DeleteRecordsError::PolicyViolation);
        }
        let high_watermark = log.high_watermark();
        let target = if offset == -1 { high_watermark } else { offset };
        if target < 0 || target > high_watermark {
            return Err(DeleteRecordsError::OffsetOutOfRange {
                offset,
                high_watermark,
            });
        }
        log.advance_log_start(target)?;
        let start = log.log_start_offset();
        drop(log);
        self.appended.notify_waiters();
        Ok(start.max(target))
    }

    /// The lowest log start among the leader and its in-sync followers (Kafka's low
    /// watermark; -1 while a follower's is unknown). None if this is not the leader.
    pub fn low_watermark(&self) -> Option<i64> {
        let log = self.log.lock();
        let state = self.state.lock();
        if state.leader != self.node_id {
            return None;
        }
        let followers = self.followers.lock();
        let lowest = state
            .isr
            .iter()
            .filter(|replica| **replica != self.node_id)
            .map(|replica| {
                followers
                    .get(replica)
                    .map_or(-1, |follower| follower.log_start_offset)
            })
            .fold(log.log_start_offset(), i64::min);
        Some(lowest)
    }

    /// Waits until the low watermark reaches `offset`; returns it.
    pub async fn wait_low_watermark(
        &self,
        offset: i64,
        deadline: tokio::time::Instant,
    ) -> Result<i64, DeleteRecordsError> {
        loop {
            let changed = self.appended.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.low_watermark() {
                None => return Err(DeleteRecordsError::NotLeader),
                Some(low) if low >= offset => return Ok(low),
                Some(_) => {}
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(DeleteRecordsError::Timeout);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::now_ms;
    use crate::replication::partition::PartitionState;

    fn leader_of(replicas: Vec<i32>, isr: Vec<i32>, dir: &std::path::Path, policy_delete: bool) -> Partition {
        let mut config = crate::config::BrokerConfig::load(None, &[]).unwrap().log;
        config.delete_policy = policy_delete;
        let log = crate::log::PartitionLog::create(
            &dir.join("t-0"),
            crate::log::TopicPartition::new("t", 0),
            config,
            0,
            now_ms(),
        )
        .unwrap();
        let state = PartitionState {
            replicas,
            isr,
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
        };
        Partition::new(log, uuid::Uuid::nil(), 1, state, 30_000)
    }

    fn append(partition: &Partition, count: i32) {
        let batch = bytes::Bytes::from(crate::log::batch::tests::make_batch(count, 0, b"x"));
        let batches = crate::log::batch::split_and_validate(&batch, 1 << 20).unwrap();
        partition.with_log(|log| {
            log.append(&batches, now_ms()).unwrap();
            let end = log.log_end_offset();
            log.set_high_watermark(end);
        });
    }

    #[test]
    fn the_start_moves_up_to_the_high_watermark_and_no_further() {
        let dir = tempfile::tempdir().unwrap();
        let partition = leader_of(vec![1], vec![1], dir.path(), true);
        append(&partition, 10);
        assert!(matches!(
            partition.delete_records_before(11),
            Err(DeleteRecordsError::OffsetOutOfRange { .. })
        ));
        assert_eq!(partition.delete_records_before(4).unwrap(), 4);
        assert_eq!(partition.with_log(|log| log.log_start_offset()), 4);
        // A lower offset later does not move it back.
        assert_eq!(partition.delete_records_before(2).unwrap(), 4);
        assert_eq!(partition.delete_records_before(-1).unwrap(), 10);
        assert_eq!(partition.low_watermark(), Some(10));
    }

    #[test]
    fn a_compact_only_topic_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let partition = leader_of(vec![1], vec![1], dir.path(), false);
        append(&partition, 3);
        assert!(matches!(
            partition.delete_records_before(2),
            Err(DeleteRecordsError::PolicyViolation)
        ));
    }

    #[tokio::test]
    async fn the_answer_waits_for_in_sync_followers_to_follow() {
        let dir = tempfile::tempdir().unwrap();
        let partition = leader_of(vec![1, 2], vec![1, 2], dir.path(), true);
        append(&partition, 10);
        partition.record_follower_fetch(2, 10, None, 0, now_ms());
        let target = partition.delete_records_before(6).unwrap();
        assert_eq!(
            partition.low_watermark(),
            Some(0),
            "the follower still starts at 0"
        );
        let soon = tokio::time::Instant::now() + std::time::Duration::from_millis(50);
        assert!(matches!(
            partition.wait_low_watermark(target, soon).await,
            Err(DeleteRecordsError::Timeout)
        ));
        // The follower's next fetch reports its moved start.
        partition.record_follower_fetch(2, 10, None, 6, now_ms());
        let later = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        assert_eq!(partition.wait_low_watermark(target, later).await.unwrap(), 6);
    }
}
