//! ReadShareGroupStateSummary (key 87, v0; broker to broker, ClusterAction): a
//! share-partition's state epoch, leader epoch and start offset without its batches, for
//! DescribeShareGroupOffsets. A share-partition with no state answers
//! UNKNOWN_TOPIC_OR_PARTITION.

use super::RequestContext;
use crate::common::ErrorCode;
use crate::group::share_state;
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::read_share_group_state_summary_response::{
    PartitionResult, ReadStateSummaryResult,
};
use kafka_protocol::messages::{ReadShareGroupStateSummaryRequest, ReadShareGroupStateSummaryResponse};

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: ReadShareGroupStateSummaryRequest,
) -> ReadShareGroupStateSummaryResponse {
    let allowed = ctx.allowed_on_cluster(Operation::ClusterAction);
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in &topic.partitions {
            let key = (request.group_id.to_string(), topic.topic_id, partition.partition);
            let result = PartitionResult::default()
                .with_partition(partition.partition)
                .with_start_offset(-1);
            let outcome = if allowed {
                share_state::read(ctx.broker.as_ref(), &key).await
            } else {
                Err(ErrorCode::of(ResponseError::ClusterAuthorizationFailed))
            };
            partitions.push(match outcome {
                Ok(Some(snapshot)) => result
                    .with_state_epoch(snapshot.state_epoch)
                    .with_leader_epoch(snapshot.leader_epoch)
                    .with_start_offset(snapshot.start_offset),
                Ok(None) => result.with_error_code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code()),
                Err(code) => result.with_error_code(code.code()),
            });
        }
        results.push(
            ReadStateSummaryResult::default()
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    ReadShareGroupStateSummaryResponse::default().with_results(results)
}
