//! AlterReplicaLogDirs (key 34, v1–2): moves this broker's replicas between its log dirs
//! (`Broker::move_replica`). Needs Alter on the cluster. Per partition: NONE once moved
//! (or already there), LOG_DIR_NOT_FOUND for a path that is not a configured log dir,
//! REPLICA_NOT_AVAILABLE when this broker holds no replica of it, KAFKA_STORAGE_ERROR
//! when the copy failed (the replica stays where it was).

use super::RequestContext;
use crate::broker::MoveError;
use crate::log::TopicPartition;
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse};

fn code(error: &MoveError) -> i16 {
    match error {
        MoveError::UnknownLogDir(_) => ResponseError::LogDirNotFound.code(),
        MoveError::NoReplica(_) => ResponseError::ReplicaNotAvailable.code(),
        MoveError::Storage(_) => ResponseError::KafkaStorageError.code(),
    }
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AlterReplicaLogDirsRequest,
) -> AlterReplicaLogDirsResponse {
    let allowed = ctx.allowed_on_cluster(Operation::Alter);
    let mut results: Vec<AlterReplicaLogDirTopicResult> = Vec::new();
    for dir in &request.dirs {
        for topic in &dir.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for &index in &topic.partitions {
                let error_code = if !allowed {
                    ResponseError::ClusterAuthorizationFailed.code()
                } else {
                    let topic_partition = TopicPartition::new(topic.name.as_str(), index);
                    match ctx.broker.move_replica(&topic_partition, dir.path.as_str()).await {
                        Ok(()) => 0,
                        Err(error) => {
                            tracing::warn!(%topic_partition, path = %dir.path.as_str(), %error, "replica not moved");
                            code(&error)
                        }
                    }
                };
                partitions.push(
                    AlterReplicaLogDirPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(error_code),
                );
            }
            results.push(
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(topic.name.clone())
                    .with_partitions(partitions),
            );
        }
    }
    AlterReplicaLogDirsResponse::default().with_results(results)
}
