//! WriteShareGroupState (key 85, v0; broker to broker, ClusterAction): a share-partition
//! leader writes its share-partitions' states to their share coordinator, which merges
//! them into the stored state and answers once that is durable. A write from a leader
//! epoch older than the last writer's is FENCED_LEADER_EPOCH; from an older state epoch,
//! FENCED_STATE_EPOCH.

use super::RequestContext;
use crate::common::ErrorCode;
use crate::group::share::snapshot::{StateBatch, StateWrite};
use crate::group::share_state;
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::write_share_group_state_response::{PartitionResult, WriteStateResult};
use kafka_protocol::messages::{WriteShareGroupStateRequest, WriteShareGroupStateResponse};

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: WriteShareGroupStateRequest,
) -> WriteShareGroupStateResponse {
    let allowed = ctx.allowed_on_cluster(Operation::ClusterAction);
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in &topic.partitions {
            let key = (request.group_id.to_string(), topic.topic_id, partition.partition);
            let write = StateWrite {
                state_epoch: partition.state_epoch,
                leader_epoch: partition.leader_epoch,
                start_offset: partition.start_offset,
                batches: partition
                    .state_batches
                    .iter()
                    .map(|batch| StateBatch {
                        first_offset: batch.first_offset,
                        last_offset: batch.last_offset,
                        delivery_state: batch.delivery_state,
                        delivery_count: batch.delivery_count,
                    })
                    .collect(),
            };
            let code = if !allowed {
                ErrorCode::of(ResponseError::ClusterAuthorizationFailed)
            } else if write
                .batches
                .iter()
                .any(|batch| batch.last_offset < batch.first_offset)
            {
                ErrorCode::of(ResponseError::InvalidRequest)
            } else {
                share_state::write(ctx.broker.as_ref(), &key, &write).await
            };
            partitions.push(
                PartitionResult::default()
                    .with_partition(partition.partition)
                    .with_error_code(code.code()),
            );
        }
        results.push(
            WriteStateResult::default()
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    WriteShareGroupStateResponse::default().with_results(results)
}
