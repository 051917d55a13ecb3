//! DeleteShareGroupState (key 86, v0; broker to broker, ClusterAction): removes
//! share-partitions' states (a tombstone in `__share_group_state`), as deleting a share
//! group does.

use super::RequestContext;
use crate::common::ErrorCode;
use crate::group::share_state;
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_share_group_state_response::{DeleteStateResult, PartitionResult};
use kafka_protocol::messages::{DeleteShareGroupStateRequest, DeleteShareGroupStateResponse};

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DeleteShareGroupStateRequest,
) -> DeleteShareGroupStateResponse {
    let allowed = ctx.allowed_on_cluster(Operation::ClusterAction);
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in &topic.partitions {
            let key = (request.group_id.to_string(), topic.topic_id, partition.partition);
            let code = if allowed {
                share_state::delete(ctx.broker.as_ref(), &key).await
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
            DeleteStateResult::default()
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    DeleteShareGroupStateResponse::default().with_results(results)
}
