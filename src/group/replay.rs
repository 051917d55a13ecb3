//! Loading and forgetting groups: the records of a `__consumer_offsets` partition
//! replayed into the coordinator when this broker comes to lead it, and its groups
//! dropped when it stops.

use super::consumer::ConsumerGroup;
use super::coordinator::{GroupCoordinator, GroupEntry};
use super::offsets::OffsetsRecord;
use super::state::Group;

impl GroupCoordinator {
    /// Forgets every group stored in `__consumer_offsets` partition `partition` (this
    /// broker stopped leading it, or is about to reload it). Waiting members are
    /// answered NOT_COORDINATOR by dropping their waiters.
    pub fn unload_partition(&self, partition: i32, n_partitions: i32) -> usize {
        let mut groups = self.groups.lock();
        let before = groups.len();
        groups.retain(|group_id, _| super::offsets::partition_for(group_id, n_partitions) != partition);
        before - groups.len()
    }

    /// Applies appended (or replayed) records to the offset cache. With `restore_groups`
    /// (start-up replay) group metadata records rebuild the groups too.
    pub fn apply(&self, records: &[OffsetsRecord], restore_groups: bool, now_ms: i64) {
        let mut groups = self.groups.lock();
        for record in records {
            match record {
                OffsetsRecord::Offset {
                    group_id,
                    topic,
                    partition,
                    value,
                } => {
                    let key = (topic.clone(), *partition);
                    match value {
                        Some(committed) => {
                            groups
                                .entry(group_id.clone())
                                .or_insert_with(|| GroupEntry::new(group_id, now_ms))
                                .offsets
                                .insert(key, committed.clone());
                        }
                        None => {
                            let emptied = groups.get_mut(group_id).is_some_and(|entry| {
                                entry.offsets.remove(&key);
                                entry.offsets.is_empty() && entry.group.members.is_empty()
                            });
                            if emptied && restore_groups {
                                groups.remove(group_id);
                            }
                        }
                    }
                }
                OffsetsRecord::Group { group_id, value } if restore_groups => match value {
                    Some(record) => {
                        let members = record
                            .members
                            .iter()
                            .map(|member| {
                                Group::restored_member(
                                    member.member_id.clone(),
                                    member.group_instance_id.clone(),
                                    member.client_id.clone(),
                                    member.client_host.clone(),
                                    member.session_timeout_ms,
                                    member.rebalance_timeout_ms,
                                    record
                                        .protocol_name
                                        .clone()
                                        .map(|name| (name, member.subscription.clone())),
                                    member.assignment.clone(),
                                )
                            })
                            .collect();
                        let entry = groups
                            .entry(group_id.clone())
                            .or_insert_with(|| GroupEntry::new(group_id, now_ms));
                        entry.group = Group::restore(
                            group_id,
                            record.generation_id,
                            (!record.protocol_type.is_empty()).then(|| record.protocol_type.clone()),
                            record.protocol_name.clone(),
                            record.leader_id.clone(),
                            members,
                            now_ms,
                        );
                    }
                    None => {
                        groups.remove(group_id);
                    }
                },
                OffsetsRecord::Group { .. } => {}
                OffsetsRecord::Consumer(record) if restore_groups => {
                    let group_id = record.group_id().to_string();
                    let deleted = matches!(
                        record,
                        super::consumer::records::ConsumerRecord::Metadata { epoch: None, .. }
                    );
                    let entry = groups
                        .entry(group_id.clone())
                        .or_insert_with(|| GroupEntry::new(&group_id, now_ms));
                    if deleted {
                        entry.consumer = None;
                    } else {
                        entry
                            .consumer
                            .get_or_insert_with(|| ConsumerGroup::new(&group_id))
                            .replay(record, self.config.consumer.session_timeout_ms, now_ms);
                    }
                }
                OffsetsRecord::Consumer(_) => {}
            }
        }
    }
}
