//! OffsetFetch (key 9): committed offsets of one group (v1-7) or several (v8+); all of a
//! group's partitions when no topics are named. -1 where nothing is committed. With
//! `require_stable` (v7+, read_committed consumers) a partition whose offset an open
//! transaction is committing answers UNSTABLE_OFFSET_COMMIT, which clients retry.

use super::RequestContext;
use crate::group::offsets::CommittedOffset;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

/// (offset, leader epoch, metadata) as reported; -1 when nothing is committed.
fn reported(committed: Option<CommittedOffset>, version: i16) -> (i64, i32, Option<StrBytes>) {
    match committed {
        Some(committed) => (
            committed.offset,
            if version >= 5 { committed.leader_epoch } else { -1 },
            Some(StrBytes::from_string(committed.metadata)),
        ),
        None => (-1, -1, Some(StrBytes::default())),
    }
}

/// The committed offsets of one group in the v8+ shape.
fn group_topics(
    ctx: &RequestContext<'_>,
    group_id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Vec<OffsetFetchResponseTopics> {
    // Topics the principal may not describe: left out of "all", refused when named.
    let named = wanted.is_some();
    ctx.broker
        .groups
        .fetch_offsets(group_id, wanted)
        .into_iter()
        .filter_map(|(topic, partitions)| {
            let allowed = ctx.allowed(Operation::Describe, ResourceType::Topic, &topic);
            (allowed || named).then_some((topic, partitions, allowed))
        })
        .map(|(topic, partitions, allowed)| {
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(StrBytes::from_string(topic.clone())))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, committed)| {
                            if !allowed {
                                return OffsetFetchResponsePartitions::default()
                                    .with_partition_index(index)
                                    .with_committed_offset(-1)
                                    .with_committed_leader_epoch(-1)
                                    .with_metadata(Some(StrBytes::default()))
                                    .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                            }
                            if require_stable && ctx.broker.groups.has_pending(group_id, &topic, index) {
                                return OffsetFetchResponsePartitions::default()
                                    .with_partition_index(index)
                                    .with_committed_offset(-1)
                                    .with_committed_leader_epoch(-1)
                                    .with_metadata(Some(StrBytes::default()))
                                    .with_error_code(ResponseError::UnstableOffsetCommit.code());
                            }
                            let (offset, epoch, metadata) = reported(committed, ctx.version);
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(index)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(epoch)
                                .with_metadata(metadata)
                        })
                        .collect(),
                )
        })
        .collect()
}

pub async fn handle(ctx: &RequestContext<'_>, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let require_stable = ctx.version >= 7 && request.require_stable;
    if ctx.version >= 8 {
        let results = request
            .groups
            .into_iter()
            .map(|group| {
                let wanted = group.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|topic| (topic.name.to_string(), topic.partition_indexes))
                        .collect()
                });
                let member = (group.member_id.map(|id| id.to_string()), group.member_epoch);
                (group.group_id, wanted, member)
            })
            .collect::<Vec<_>>();
        let mut groups = Vec::with_capacity(results.len());
        for (group_id, wanted, (member_id, member_epoch)) in results {
            let response = if !ctx.allowed(Operation::Describe, ResourceType::Group, &group_id) {
                OffsetFetchResponseGroup::default()
                    .with_error_code(ResponseError::GroupAuthorizationFailed.code())
            } else {
                let checked = crate::group::host::check_coordinator(ctx.broker.as_ref(), &group_id)
                    .await
                    .and_then(|()| {
                        // v9: a consumer group member's fetch checks its member epoch.
                        let code = ctx.broker.groups.validate_offset_fetch(
                            &group_id,
                            member_id.as_deref(),
                            member_epoch,
                        );
                        if code.is_none() { Ok(()) } else { Err(code) }
                    });
                match checked {
                    Ok(()) => OffsetFetchResponseGroup::default().with_topics(group_topics(
                        ctx,
                        &group_id,
                        wanted,
                        require_stable,
                    )),
                    Err(code) => OffsetFetchResponseGroup::default().with_error_code(code.code()),
                }
            };
            groups.push(response.with_group_id(group_id));
        }
        let results = groups;
        return OffsetFetchResponse::default().with_groups(results);
    }
    if !ctx.allowed(Operation::Describe, ResourceType::Group, &request.group_id) {
        return OffsetFetchResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    // v1 has no top-level error code; its clients find the coordinator first anyway.
    if ctx.version >= 2
        && let Err(code) = crate::group::host::check_coordinator(ctx.broker.as_ref(), &request.group_id).await
    {
        return OffsetFetchResponse::default().with_error_code(code.code());
    }
    let wanted = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|topic| (topic.name.to_string(), topic.partition_indexes))
            .collect()
    });
    // The same answer in the single-group (v1-7) shape.
    let topics = group_topics(ctx, &request.group_id, wanted, require_stable)
        .into_iter()
        .map(|topic| {
            OffsetFetchResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(
                    topic
                        .partitions
                        .into_iter()
                        .map(|partition| {
                            OffsetFetchResponsePartition::default()
                                .with_error_code(partition.error_code)
                                .with_partition_index(partition.partition_index)
                                .with_committed_offset(partition.committed_offset)
                                .with_committed_leader_epoch(partition.committed_leader_epoch)
                                .with_metadata(partition.metadata)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
