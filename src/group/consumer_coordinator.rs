//! The group coordinator's KIP-848 half: runs each consumer group's state machine on
//! ConsumerGroupHeartbeat, answers once its records are in `__consumer_offsets`, and
//! converts an empty group between the classic and the consumer protocol as
//! `group.consumer.migration.policy` allows.

use super::consumer::records::ConsumerRecord;
use super::consumer::{ConsumerGroup, Heartbeat, HeartbeatAnswer, TopicsView};
use super::coordinator::{GroupCoordinator, GroupEntry, WriteJob};
use super::offsets::OffsetsRecord;
use super::state::GroupState;
use crate::common::ErrorCode;
use kafka_protocol::ResponseError;

/// `group.consumer.migration.policy`: which way an empty group may change protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationPolicy {
    Bidirectional,
    Upgrade,
    Downgrade,
    Disabled,
}

impl MigrationPolicy {
    pub fn from_name(name: &str) -> Self {
        match name.trim().to_ascii_lowercase().as_str() {
            "upgrade" => MigrationPolicy::Upgrade,
            "downgrade" => MigrationPolicy::Downgrade,
            "disabled" => MigrationPolicy::Disabled,
            _ => MigrationPolicy::Bidirectional,
        }
    }

    fn upgrades(self) -> bool {
        matches!(self, MigrationPolicy::Bidirectional | MigrationPolicy::Upgrade)
    }

    fn downgrades(self) -> bool {
        matches!(self, MigrationPolicy::Bidirectional | MigrationPolicy::Downgrade)
    }
}

/// A consumer group as ConsumerGroupDescribe reports it (topic ids, not names).
pub struct ConsumerGroupDescription {
    pub group: ConsumerGroup,
    pub assignor: &'static str,
}

fn to_offsets(records: Vec<ConsumerRecord>) -> Vec<OffsetsRecord> {
    records.into_iter().map(OffsetsRecord::Consumer).collect()
}

impl GroupCoordinator {
    /// Queues a consumer group's changed records for the writer (timeouts: nobody waits).
    pub(super) fn persist_consumer(&self, consumer: &mut ConsumerGroup) {
        let records = consumer.take_records();
        if !records.is_empty() {
            let _ = self.writer.send(WriteJob::Append {
                group_id: consumer.group_id.clone(),
                records: to_offsets(records),
                transaction: None,
                done: None,
            });
        }
    }

    /// A classic JoinGroup on a consumer group: refused while it has members;
    /// an empty one becomes classic again if the policy allows it.
    pub(super) fn classic_join_refused(&self, entry: &mut GroupEntry) -> Option<ErrorCode> {
        if entry.share.is_some() {
            return Some(ErrorCode::of(ResponseError::InconsistentGroupProtocol));
        }
        let consumer = entry.consumer.as_ref()?;
        if !consumer.members.is_empty() || !self.config.migration_policy.downgrades() {
            return Some(ErrorCode::of(ResponseError::InconsistentGroupProtocol));
        }
        let tombstones = to_offsets(consumer.tombstones());
        let _ = self.writer.send(WriteJob::Append {
            group_id: consumer.group_id.clone(),
            records: tombstones,
            transaction: None,
            done: None,
        });
        entry.consumer = None;
        None
    }

    /// ConsumerGroupHeartbeat: the state machine's answer, given once its records are
    /// appended (an append that fails answers its error instead).
    pub async fn consumer_heartbeat(
        &self,
        group_id: &str,
        request: Heartbeat,
        topics: &TopicsView,
        overrides: &super::overrides::GroupOverrides,
        now_ms: i64,
    ) -> HeartbeatAnswer {
        // The group's own session timeout and heartbeat interval, where it has them.
        let mut config = self.config.consumer.clone();
        config.session_timeout_ms = overrides
            .consumer_session_timeout_ms
            .unwrap_or(config.session_timeout_ms);
        config.heartbeat_interval_ms = overrides
            .consumer_heartbeat_interval_ms
            .unwrap_or(config.heartbeat_interval_ms);
        let (answer, records) = {
            let mut groups = self.groups.lock();
            let entry = groups
                .entry(group_id.to_string())
                .or_insert_with(|| GroupEntry::new(group_id, now_ms));
            let mut records = Vec::new();
            if entry.share.is_some() {
                return HeartbeatAnswer {
                    error: ErrorCode::of(ResponseError::GroupIdNotFound),
                    message: Some(format!(
                        "Group {group_id} is a share group, not a consumer group."
                    )),
                    member_id: request.member_id,
                    member_epoch: request.member_epoch,
                    heartbeat_interval_ms: config.heartbeat_interval_ms,
                    assignment: None,
                };
            }
            if entry.consumer.is_none() {
                let classic = &entry.group;
                let classic_empty = classic.members.is_empty() && classic.state == GroupState::Empty;
                let known = classic.protocol_type.is_some() || !entry.offsets.is_empty();
                if !classic_empty || (known && !self.config.migration_policy.upgrades()) {
                    return HeartbeatAnswer {
                        error: ErrorCode::of(ResponseError::GroupIdNotFound),
                        message: Some(format!("Group {group_id} is not a consumer group.")),
                        member_id: request.member_id,
                        member_epoch: request.member_epoch,
                        heartbeat_interval_ms: config.heartbeat_interval_ms,
                        assignment: None,
                    };
                }
                if classic.protocol_type.is_some() {
                    // An empty classic group becomes a consumer group: its metadata goes.
                    records.push(OffsetsRecord::Group {
                        group_id: group_id.to_string(),
                        value: None,
                    });
                }
            }
            let consumer = entry.consumer.get_or_insert_with(|| ConsumerGroup::new(group_id));
            let answer = consumer.heartbeat(request, topics, &config, now_ms, || {
                uuid::Uuid::new_v4().to_string()
            });
            records.extend(to_offsets(consumer.take_records()));
            (answer, records)
        };
        if records.is_empty() {
            return answer;
        }
        let code = self.append(group_id, records).await;
        if code.is_none() {
            answer
        } else {
            HeartbeatAnswer {
                error: code,
                message: None,
                assignment: None,
                ..answer
            }
        }
    }

    /// ConsumerGroupDescribe's view of a consumer group; None when it is not one.
    pub fn describe_consumer(&self, group_id: &str) -> Option<ConsumerGroupDescription> {
        let groups = self.groups.lock();
        let consumer = groups.get(group_id)?.consumer.as_ref()?;
        Some(ConsumerGroupDescription {
            group: consumer.clone(),
            assignor: consumer.assignor(&self.config.consumer).name(),
        })
    }

    /// Whether `group_id` is a consumer group (DescribeGroups answers it is not classic).
    pub fn is_consumer_group(&self, group_id: &str) -> bool {
        self.groups
            .lock()
            .get(group_id)
            .is_some_and(|entry| entry.consumer.is_some())
    }

    /// OffsetFetch v9's member check on a consumer group.
    pub fn validate_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> ErrorCode {
        match self
            .groups
            .lock()
            .get(group_id)
            .and_then(|entry| entry.consumer.as_ref())
        {
            Some(consumer) => consumer.validate_offset_fetch(member_id, member_epoch),
            None => ErrorCode::NONE,
        }
    }

    /// After a partition's load: the consumer groups' subscribed topics as they are.
    pub fn after_load_consumers(&self, topics: &TopicsView) {
        for entry in self.groups.lock().values_mut() {
            if let Some(consumer) = entry.consumer.as_mut() {
                consumer.after_load(topics);
            }
        }
    }
}

/// The topics a consumer group may subscribe to, from the metadata image: every
/// topic but the internal ones.
pub fn topics_view(image: &crate::cluster::image::MetadataImage) -> TopicsView {
    image
        .topics
        .values()
        .filter(|topic| !crate::common::topics::is_internal_topic(&topic.name))
        .map(|topic| (topic.name.clone(), (topic.topic_id, topic.n_partitions())))
        .collect()
}
