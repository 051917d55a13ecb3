//! Produce (key 0): check each batch (length, CRC-32C, `max.message.bytes`), then append
//! it as sent. acks=1 is answered after the leader's append; acks=all (-1) after every
//! in-sync replica has the batch (the high watermark covers it), or REQUEST_TIMED_OUT
//! at the request's timeout. Partitions of one request are appended concurrently, so a sync-flush topic
//! waits for one group commit per partition, not one per batch. acks=0 gets no response.

use super::{RequestContext, error_code, led_partition, lookup_topic};
use crate::log::batch::{self, BatchError};
use crate::replication::partition::AppendError;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

fn partition_error(index: i32, code: i16, message: String) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(Some(StrBytes::from_string(message)))
}

async fn produce_partition(
    ctx: &RequestContext<'_>,
    topic: &str,
    index: i32,
    records: Option<bytes::Bytes>,
    acks: i16,
    deadline: tokio::time::Instant,
) -> PartitionProduceResponse {
    let partition = match led_partition(ctx.broker, topic, index) {
        Ok(partition) => partition,
        Err(code) => {
            let message = if code == error_code::NOT_LEADER_OR_FOLLOWER {
                format!("this broker does not lead {topic}-{index}")
            } else {
                format!("unknown partition {topic}-{index}")
            };
            return partition_error(index, code, message);
        }
    };
    let Some(records) = records else {
        return partition_error(index, ResponseError::InvalidRecord.code(), "null records".into());
    };
    let max_message_bytes = partition.with_log(|log| log.config().max_message_bytes).max(0) as usize;
    let batches = match batch::split_and_validate(&records, max_message_bytes) {
        Ok(batches) if !batches.is_empty() => batches,
        Ok(_) => {
            return partition_error(index, error_code::INVALID_REQUEST, "no record batch".into());
        }
        Err(error) => {
            let code = error_code::batch_error(&error);
            if !matches!(error, BatchError::TooLarge { .. }) {
                tracing::debug!(%error, topic, index, "rejected produce");
            }
            return partition_error(index, code, error.to_string());
        }
    };
    let appended = match partition.append(&batches, acks).await {
        // acks=all: answered once every in-sync replica has the batch.
        Ok(info) if acks == -1 => partition
            .wait_replicated(info.last_offset + 1, deadline)
            .await
            .map(|_| info),
        other => other,
    };
    match appended {
        Ok(info) => PartitionProduceResponse::default()
            .with_index(index)
            .with_base_offset(info.base_offset)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(info.log_start_offset),
        Err(error) => {
            if let AppendError::Log(log_error) = &error
                && log_error.is_fatal()
            {
                tracing::error!(%error, topic, index, "append failed; log taken offline");
            }
            partition_error(index, error_code::append_error(&error), error.to_string())
        }
    }
}

pub async fn handle(ctx: &RequestContext<'_>, request: ProduceRequest) -> Option<ProduceResponse> {
    let acks = request.acks;
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_millis(request.timeout_ms.max(0) as u64);
    let by_id = ctx.version >= 13;
    let mut responses = Vec::with_capacity(request.topic_data.len());
    for topic_data in request.topic_data {
        let topic = lookup_topic(ctx.broker, &topic_data.name, topic_data.topic_id, by_id);
        let partitions: Vec<PartitionProduceResponse> = match (&topic, acks) {
            (_, acks) if !matches!(acks, -1..=1) => topic_data
                .partition_data
                .iter()
                .map(|data| {
                    partition_error(
                        data.index,
                        ResponseError::InvalidRequiredAcks.code(),
                        format!("acks must be -1, 0 or 1, got {acks}"),
                    )
                })
                .collect(),
            (Ok(topic), _) if crate::broker::Broker::is_internal_topic(&topic.name) => topic_data
                .partition_data
                .iter()
                .map(|data| {
                    partition_error(
                        data.index,
                        ResponseError::InvalidTopicException.code(),
                        format!("cannot append to internal topic {}", topic.name),
                    )
                })
                .collect(),
            (Err(code), _) => topic_data
                .partition_data
                .iter()
                .map(|data| partition_error(data.index, *code, "unknown topic".into()))
                .collect(),
            (Ok(topic), _) => {
                let appends = topic_data.partition_data.into_iter().map(|data| {
                    produce_partition(ctx, &topic.name, data.index, data.records, acks, deadline)
                });
                futures::future::join_all(appends).await
            }
        };
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic_data.name)
                .with_topic_id(topic_data.topic_id)
                .with_partition_responses(partitions),
        );
    }
    (acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}
