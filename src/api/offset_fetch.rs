//! OffsetFetch (key 9): committed offsets of one group (v1-7) or several (v8+); all of a
//! group's partitions when no topics are named. -1 where nothing is committed.

use super::RequestContext;
use crate::group::offsets::CommittedOffset;
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

pub async fn handle(ctx: &RequestContext<'_>, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let groups = &ctx.broker.groups;
    let version = ctx.version;
    if version >= 8 {
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
                let topics = groups
                    .fetch_offsets(&group.group_id, wanted)
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(StrBytes::from_string(topic)))
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|(index, committed)| {
                                        let (offset, epoch, metadata) = reported(committed, version);
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(index)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(metadata)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(group.group_id)
                    .with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(results);
    }
    let wanted = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|topic| (topic.name.to_string(), topic.partition_indexes))
            .collect()
    });
    let topics = groups
        .fetch_offsets(&request.group_id, wanted)
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, committed)| {
                            let (offset, epoch, metadata) = reported(committed, version);
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(index)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(epoch)
                                .with_metadata(metadata)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
