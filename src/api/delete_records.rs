//! DeleteRecords (key 21): moves each partition's log start offset up to the given
//! offset (-1: the high watermark) on its leader, so records below it can no longer be
//! read (consumers there get OFFSET_OUT_OF_RANGE), and answers with the low watermark
//! once every in-sync follower has followed, or REQUEST_TIMED_OUT after `timeout_ms`.
//! An offset above the high watermark is OFFSET_OUT_OF_RANGE; a topic whose
//! `cleanup.policy` lacks `delete` gets POLICY_VIOLATION, as in Kafka. Needs Delete on
//! the topic.

use super::RequestContext;
use crate::common::ErrorCode;
use crate::replication::delete_records::DeleteRecordsError;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use std::time::Duration;

fn code_of(error: &DeleteRecordsError) -> ErrorCode {
    match error {
        DeleteRecordsError::NotLeader => ErrorCode::NOT_LEADER_OR_FOLLOWER,
        DeleteRecordsError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.into(),
        DeleteRecordsError::PolicyViolation => ResponseError::PolicyViolation.into(),
        DeleteRecordsError::Timeout => ErrorCode::REQUEST_TIMED_OUT,
        DeleteRecordsError::Log(_) => ErrorCode::KAFKA_STORAGE_ERROR,
    }
}

pub async fn handle(ctx: &RequestContext<'_>, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(request.timeout_ms.max(0) as u64);
    // Every start moves first, then the answers wait together for the followers.
    let mut pending = Vec::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let allowed = ctx.allowed(Operation::Delete, ResourceType::Topic, &topic.name);
        for partition in &topic.partitions {
            let started = if !allowed {
                Err(ResponseError::TopicAuthorizationFailed.into())
            } else {
                ctx.broker.replicas.led_partition(&topic.name, partition.partition_index).and_then(|led| {
                    match led.delete_records_before(partition.offset) {
                        Ok(target) => Ok((led, target)),
                        Err(error) => {
                            tracing::debug!(topic = %topic.name.as_str(), partition = partition.partition_index, %error, "delete records refused");
                            Err(code_of(&error))
                        }
                    }
                })
            };
            pending.push((topic_index, partition.partition_index, started));
        }
    }
    if pending.iter().any(|(_, _, started)| started.is_ok()) {
        // The new starts are on disk before anyone is told: a restart does not bring
        // deleted records back.
        let broker = ctx.broker.clone();
        let _ = tokio::task::spawn_blocking(move || broker.replicas.write_checkpoints()).await;
    }
    let mut topics: Vec<DeleteRecordsTopicResult> = request
        .topics
        .iter()
        .map(|topic| DeleteRecordsTopicResult::default().with_name(topic.name.clone()))
        .collect();
    for (topic_index, partition_index, started) in pending {
        let (low_watermark, code) = match started {
            Ok((led, target)) => match led.wait_low_watermark(target, deadline).await {
                Ok(low) => (low, ErrorCode::NONE),
                Err(error) => (-1, code_of(&error)),
            },
            Err(code) => (-1, code),
        };
        topics[topic_index].partitions.push(
            DeleteRecordsPartitionResult::default()
                .with_partition_index(partition_index)
                .with_low_watermark(low_watermark)
                .with_error_code(code.code()),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
