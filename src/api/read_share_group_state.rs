//! ReadShareGroupState (key 84, v0; broker to broker, ClusterAction): a share-partition
//! leader reads the persisted state of its share-partitions from their share
//! coordinator (`group/share_state.rs`). A share-partition with no state answers
//! UNKNOWN_TOPIC_OR_PARTITION.

use super::RequestContext;
use crate::common::ErrorCode;
use crate::group::share_state;
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::read_share_group_state_response::{
    PartitionResult, ReadStateResult, StateBatch,
};
use kafka_protocol::messages::{ReadShareGroupStateRequest, ReadShareGroupStateResponse};

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: ReadShareGroupStateRequest,
) -> ReadShareGroupStateResponse {
    let allowed = ctx.allowed_on_cluster(Operation::ClusterAction);
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in &topic.partitions {
            let key = (request.group_id.to_string(), topic.topic_id, partition.partition);
            let result = PartitionResult::default().with_partition(partition.partition);
            let outcome = if allowed {
                share_state::read(ctx.broker.as_ref(), &key).await
            } else {
                Err(ErrorCode::of(ResponseError::ClusterAuthorizationFailed))
            };
            partitions.push(match outcome {
                Ok(Some(snapshot)) => result
                    .with_state_epoch(snapshot.state_epoch)
                    .with_start_offset(snapshot.start_offset)
                    .with_state_batches(
                        snapshot
                            .batches
                            .iter()
                            .map(|batch| {
                                StateBatch::default()
                                    .with_first_offset(batch.first_offset)
                                    .with_last_offset(batch.last_offset)
                                    .with_delivery_state(batch.delivery_state)
                                    .with_delivery_count(batch.delivery_count)
                            })
                            .collect(),
                    ),
                Ok(None) => result
                    .with_error_code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code())
                    .with_start_offset(-1),
                Err(code) => result.with_error_code(code.code()).with_start_offset(-1),
            });
        }
        results.push(
            ReadStateResult::default()
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    ReadShareGroupStateResponse::default().with_results(results)
}
