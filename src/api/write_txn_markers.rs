//! WriteTxnMarkers (key 27, v1; broker to broker, ClusterAction): the transaction
//! coordinator asks the leader of each partition in a transaction to append the
//! COMMIT or ABORT marker. Each is checked against the producer's epoch and the
//! coordinator's epoch and answered once the partition's ISR has it.

use super::RequestContext;
use crate::log::TopicPartition;
use crate::log::control::ControlMarker;
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use std::time::Duration;

/// How long one marker may wait for its partition's ISR.
const MARKER_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn handle(ctx: &RequestContext<'_>, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let allowed = ctx.allowed_on_cluster(Operation::ClusterAction);
    let mut results = Vec::with_capacity(request.markers.len());
    for marker in request.markers {
        let control = ControlMarker {
            commit: marker.transaction_result,
            coordinator_epoch: marker.coordinator_epoch,
        };
        let mut topics = Vec::with_capacity(marker.topics.len());
        for topic in marker.topics {
            let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
            for index in topic.partition_indexes {
                let code = if allowed {
                    ctx.broker
                        .transactions
                        .write_local_marker(
                            &TopicPartition::new(topic.name.as_str(), index),
                            *marker.producer_id,
                            marker.producer_epoch,
                            control,
                            MARKER_TIMEOUT,
                        )
                        .await
                        .code()
                } else {
                    ResponseError::ClusterAuthorizationFailed.code()
                };
                partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(code),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
        }
        results.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(results)
}
