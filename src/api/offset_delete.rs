//! OffsetDelete (key 47): deletes committed offsets of partitions the group's members are
//! not subscribed to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).

use super::{RequestContext, error_code};
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

pub async fn handle(ctx: &RequestContext<'_>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let groups = &ctx.broker.groups;
    if !ctx.allowed(Operation::Delete, ResourceType::Group, &request.group_id) {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    if !groups.group_exists(&request.group_id) {
        return OffsetDeleteResponse::default().with_error_code(ResponseError::GroupIdNotFound.code());
    }
    let subscribed = groups.subscribed_topics(&request.group_id);
    let mut doomed = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let is_subscribed = subscribed.iter().any(|name| name.as_str() == topic.name.as_str());
        let topic_allowed = ctx.allowed(Operation::Read, ResourceType::Topic, &topic.name);
        let partitions = topic
            .partitions
            .iter()
            .map(|partition| {
                let code = if !topic_allowed {
                    ResponseError::TopicAuthorizationFailed.code()
                } else if is_subscribed {
                    ResponseError::GroupSubscribedToTopic.code()
                } else {
                    doomed.push((topic.name.to_string(), partition.partition_index));
                    error_code::NONE
                };
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(partition.partition_index)
                    .with_error_code(code)
            })
            .collect();
        topics.push(
            OffsetDeleteResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    if !doomed.is_empty() {
        let code = groups.delete_offsets(&request.group_id, doomed).await;
        if !code.is_none() {
            return OffsetDeleteResponse::default().with_error_code(code.code());
        }
    }
    OffsetDeleteResponse::default().with_topics(topics)
}
