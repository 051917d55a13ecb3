//! AlterShareGroupOffsets (key 91, v0): resets share-partitions of an empty share group
//! to new start offsets (`kafka-share-groups.sh --reset-offsets`). Each share-partition's
//! state starts over at the offset under the next state epoch; its leader loads it
//! again, and a deposed in-memory state is fenced by the state epoch. A group with
//! members answers NON_EMPTY_GROUP; an unknown one GROUP_ID_NOT_FOUND.

use super::RequestContext;
use crate::common::ErrorCode;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::{AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse};

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AlterShareGroupOffsetsRequest,
) -> AlterShareGroupOffsetsResponse {
    let group_id = request.group_id.to_string();
    let refused = |code: ErrorCode| AlterShareGroupOffsetsResponse::default().with_error_code(code.code());
    if !ctx.allowed(Operation::Read, ResourceType::Group, &group_id) {
        return refused(ErrorCode::of(ResponseError::GroupAuthorizationFailed));
    }
    if let Err(code) = crate::group::host::check_coordinator(ctx.broker.as_ref(), &group_id).await {
        return refused(code);
    }
    match ctx.broker.groups.share_group_topics(&group_id) {
        Err(code) => return refused(code),
        Ok((_, true)) => return refused(ErrorCode::of(ResponseError::NonEmptyGroup)),
        Ok(_) => {}
    }
    let image = ctx.broker.image();
    let mut responses = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.topic_name.to_string();
        let found = image.topic(&name);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in topic.partitions {
            let code = match found {
                None => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                Some(_) if !ctx.allowed(Operation::Read, ResourceType::Topic, &name) => {
                    ErrorCode::of(ResponseError::TopicAuthorizationFailed)
                }
                Some(found)
                    if partition.partition_index < 0 || partition.partition_index >= found.n_partitions() =>
                {
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                }
                Some(_) if partition.start_offset < 0 => ErrorCode::of(ResponseError::InvalidRequest),
                Some(found) => {
                    let key = (group_id.clone(), found.topic_id, partition.partition_index);
                    ctx.broker
                        .reset_share_partition(&key, partition.start_offset)
                        .await
                }
            };
            partitions.push(
                AlterShareGroupOffsetsResponsePartition::default()
                    .with_partition_index(partition.partition_index)
                    .with_error_code(code.code()),
            );
        }
        responses.push(
            AlterShareGroupOffsetsResponseTopic::default()
                .with_topic_name(topic.topic_name)
                .with_topic_id(found.map(|topic| topic.topic_id).unwrap_or_default())
                .with_partitions(partitions),
        );
    }
    AlterShareGroupOffsetsResponse::default().with_responses(responses)
}
