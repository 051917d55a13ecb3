//! Offset retention: offsets of groups empty longer than `offsets.retention.minutes`
//! expire, and offsets of deleted topics go; both by tombstones the writer appends.

use super::coordinator::{GroupCoordinator, WriteJob};
use super::offsets::OffsetsRecord;
use super::state::GroupState;

impl GroupCoordinator {
    /// Expires offsets of groups that have been empty longer than
    /// `offsets.retention.minutes`, forgets empty groups with no offsets, and returns the
    /// tombstones to write.
    pub fn expire(&self, now_ms: i64) -> Vec<(String, Vec<OffsetsRecord>)> {
        let retention = self.config.offsets_retention_ms;
        let mut out = Vec::new();
        let mut groups = self.groups.lock();
        groups.retain(|group_id, entry| {
            let consumer_members = entry.has_modern_members();
            if entry.group.state != GroupState::Empty || consumer_members {
                return true;
            }
            let empty_since = entry.group.state_timestamp_ms;
            let expired: Vec<(String, i32)> = entry
                .offsets
                .iter()
                .filter(|(_, committed)| now_ms - empty_since.max(committed.commit_timestamp_ms) > retention)
                .map(|(key, _)| key.clone())
                .collect();
            let mut records: Vec<OffsetsRecord> = expired
                .iter()
                .map(|(topic, partition)| OffsetsRecord::Offset {
                    group_id: group_id.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: None,
                })
                .collect();
            // The cache follows the log: the writer removes them after the append.
            let keep = entry.offsets.len() > expired.len();
            if !keep {
                records.push(OffsetsRecord::Group {
                    group_id: group_id.clone(),
                    value: None,
                });
                if let Some(consumer) = &entry.consumer {
                    records.extend(consumer.tombstones().into_iter().map(OffsetsRecord::Consumer));
                }
            }
            if !records.is_empty() {
                out.push((group_id.clone(), records));
            }
            keep || !expired.is_empty()
        });
        out
    }

    /// Tombstones for every committed offset whose topic `is_gone` (a deleted topic:
    /// Kafka removes its offsets from every group, so a topic created again under the
    /// same name starts with no committed position). Given the topic and the commit time.
    pub fn offsets_of_deleted_topics(
        &self,
        is_gone: impl Fn(&str, i64) -> bool,
    ) -> Vec<(String, Vec<OffsetsRecord>)> {
        let groups = self.groups.lock();
        let mut out = Vec::new();
        for (group_id, entry) in groups.iter() {
            let records: Vec<OffsetsRecord> = entry
                .offsets
                .iter()
                .filter(|((topic, _), committed)| is_gone(topic, committed.commit_timestamp_ms))
                .map(|((topic, partition), _)| OffsetsRecord::Offset {
                    group_id: group_id.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: None,
                })
                .collect();
            if !records.is_empty() {
                out.push((group_id.clone(), records));
            }
        }
        out
    }

    /// Queues tombstones (from `expire`) for the writer.
    pub fn write_tombstones(&self, batches: Vec<(String, Vec<OffsetsRecord>)>) {
        for (group_id, records) in batches {
            let _ = self.writer.send(WriteJob::Append {
                group_id,
                records,
                transaction: None,
                done: None,
            });
        }
    }
}
