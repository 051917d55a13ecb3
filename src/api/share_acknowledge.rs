//! ShareAcknowledge (key 79): a share group member accepts, releases or rejects the
//! records it acquired, outside a fetch. Epoch -1 closes the share session after the
//! acknowledgements and releases whatever the member still holds.

use super::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::share_acknowledge_response::{PartitionData, ShareAcknowledgeTopicResponse};
use kafka_protocol::messages::{ShareAcknowledgeRequest, ShareAcknowledgeResponse};

pub async fn handle(ctx: &RequestContext<'_>, request: ShareAcknowledgeRequest) -> ShareAcknowledgeResponse {
    let (Some(group_id), Some(member_id)) = (request.group_id.clone(), request.member_id.clone()) else {
        return ShareAcknowledgeResponse::default().with_error_code(ResponseError::InvalidRequest.code());
    };
    let (group_id, member_id) = (group_id.to_string(), member_id.to_string());
    if !ctx.allowed(Operation::Read, ResourceType::Group, &group_id) {
        return ShareAcknowledgeResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let shares = &ctx.broker.groups.shares;
    let epoch = request.share_session_epoch;
    if epoch == 0 {
        // Acknowledging needs a session with the records in it.
        return ShareAcknowledgeResponse::default()
            .with_error_code(ResponseError::InvalidShareSessionEpoch.code());
    }
    if let Err(code) = shares.session(&group_id, &member_id, epoch, &[], &[]) {
        return ShareAcknowledgeResponse::default().with_error_code(code.code());
    }
    let mut responses = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in &topic.partitions {
            let key = (group_id.clone(), topic.topic_id, partition.partition_index);
            let mut code = partition
                .acknowledgement_batches
                .iter()
                .map(|batch| {
                    shares.acknowledge(
                        &key,
                        &member_id,
                        batch.first_offset,
                        batch.last_offset,
                        &batch.acknowledge_types,
                    )
                })
                .find(|code| !code.is_none())
                .unwrap_or_default();
            // Answered once the state is durable at the share coordinator.
            if code.is_none() {
                code = ctx.broker.persist_share_partition(&key).await;
            }
            partitions.push(
                PartitionData::default()
                    .with_partition_index(partition.partition_index)
                    .with_error_code(code.code()),
            );
        }
        responses.push(
            ShareAcknowledgeTopicResponse::default()
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    if epoch == -1 {
        shares.release_member(&group_id, &member_id);
    }
    ShareAcknowledgeResponse::default().with_responses(responses)
}
