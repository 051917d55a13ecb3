//! DescribeShareGroupOffsets (key 90, v0): each share-partition's start offset as its
//! share coordinator persisted it (what `kafka-share-groups.sh --describe --offsets`
//! shows), read through the share-partition's share coordinator. Null topics: every
//! topic the group has subscribed to since its coordinator loaded it. A share-partition
//! with no state yet has start offset -1.

use super::RequestContext;
use crate::common::ErrorCode;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition,
    DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::{
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeShareGroupOffsetsRequest,
) -> DescribeShareGroupOffsetsResponse {
    let image = ctx.broker.image();
    let mut groups = Vec::with_capacity(request.groups.len());
    for group in request.groups {
        let answer = DescribeShareGroupOffsetsResponseGroup::default().with_group_id(group.group_id.clone());
        let group_id = group.group_id.to_string();
        if !ctx.allowed(Operation::Describe, ResourceType::Group, &group_id) {
            groups.push(answer.with_error_code(ResponseError::GroupAuthorizationFailed.code()));
            continue;
        }
        if let Err(code) = crate::group::host::check_coordinator(ctx.broker.as_ref(), &group_id).await {
            groups.push(answer.with_error_code(code.code()));
            continue;
        }
        let known = match ctx.broker.groups.share_group_topics(&group_id) {
            Ok((known, _)) => known,
            Err(code) => {
                groups.push(answer.with_error_code(code.code()));
                continue;
            }
        };
        // (name, partitions) asked for.
        let wanted: Vec<(String, Vec<i32>)> = match group.topics {
            Some(topics) => topics
                .into_iter()
                .map(|topic| (topic.topic_name.to_string(), topic.partitions))
                .collect(),
            None => known
                .iter()
                .filter_map(|(topic_id, n)| {
                    Some((image.topic_by_id(*topic_id)?.name.clone(), (0..*n).collect()))
                })
                .collect(),
        };
        let mut topics = Vec::with_capacity(wanted.len());
        for (name, partitions) in wanted {
            let topic = image.topic(&name);
            let mut answers = Vec::with_capacity(partitions.len());
            for index in partitions {
                let partition = DescribeShareGroupOffsetsResponsePartition::default()
                    .with_partition_index(index)
                    .with_start_offset(-1)
                    .with_leader_epoch(-1);
                let outcome = match topic {
                    None => Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                    Some(_) if !ctx.allowed(Operation::Describe, ResourceType::Topic, &name) => {
                        Err(ErrorCode::of(ResponseError::TopicAuthorizationFailed))
                    }
                    Some(topic) => {
                        let key = (group_id.clone(), topic.topic_id, index);
                        ctx.broker.share_start_offset(&key).await
                    }
                };
                answers.push(match outcome {
                    Ok(Some((start_offset, leader_epoch))) => partition
                        .with_start_offset(start_offset)
                        .with_leader_epoch(leader_epoch),
                    Ok(None) => partition,
                    Err(code) => partition.with_error_code(code.code()),
                });
            }
            topics.push(
                DescribeShareGroupOffsetsResponseTopic::default()
                    .with_topic_name(TopicName(StrBytes::from_string(name)))
                    .with_topic_id(topic.map(|topic| topic.topic_id).unwrap_or_default())
                    .with_partitions(answers),
            );
        }
        groups.push(answer.with_topics(topics));
    }
    DescribeShareGroupOffsetsResponse::default().with_groups(groups)
}
