//! InitializeShareGroupState (key 83, v0; broker to broker, ClusterAction): sets a
//! share-partition's state to nothing in flight from a start offset, under a new state
//! epoch (an older or equal epoch than the stored one is FENCED_STATE_EPOCH).

use super::RequestContext;
use crate::common::ErrorCode;
use crate::group::share_state;
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::initialize_share_group_state_response::{
    InitializeStateResult, PartitionResult,
};
use kafka_protocol::messages::{InitializeShareGroupStateRequest, InitializeShareGroupStateResponse};

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: InitializeShareGroupStateRequest,
) -> InitializeShareGroupStateResponse {
    let allowed = ctx.allowed_on_cluster(Operation::ClusterAction);
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in &topic.partitions {
            let key = (request.group_id.to_string(), topic.topic_id, partition.partition);
            let code = if allowed {
                share_state::initialize(
                    ctx.broker.as_ref(),
                    &key,
                    partition.state_epoch,
                    partition.start_offset,
                )
                .await
            } else {
                ErrorCode::of(ResponseError::ClusterAuthorizationFailed)
            };
            partitions.push(
                PartitionResult::default()
                    .with_partition(partition.partition)
                    .with_error_code(code.code()),
            );
        }
        results.push(
            InitializeStateResult::default()
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    InitializeShareGroupStateResponse::default().with_results(results)
}
