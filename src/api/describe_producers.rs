//! DescribeProducers (API 61): the idempotent producers a partition's leader knows —
//! id, epoch, last sequence and last timestamp — as `kafka-transactions`-style tools
//! read them, with the first offset of each one's open transaction (-1 when none).
//! Needs Read on the topic. The coordinator epoch is not reported (-1).

use super::{RequestContext, error_code};
use crate::log::TopicPartition;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::protocol::StrBytes;

fn partition(ctx: &RequestContext<'_>, topic: &str, index: i32) -> PartitionResponse {
    let answer = PartitionResponse::default().with_partition_index(index);
    let failed = |code: i16, message: String| {
        PartitionResponse::default()
            .with_partition_index(index)
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    if !ctx.allowed(Operation::Read, ResourceType::Topic, topic) {
        return failed(
            ResponseError::TopicAuthorizationFailed.code(),
            format!("not authorized to read {topic}"),
        );
    }
    let Some(local) = ctx.broker.replicas.partition(&TopicPartition::new(topic, index)) else {
        let known = ctx
            .broker
            .topic(topic)
            .is_some_and(|image| index >= 0 && (index as usize) < image.partitions.len());
        return if known {
            failed(
                error_code::NOT_LEADER_OR_FOLLOWER,
                format!("this broker holds no replica of {topic}-{index}"),
            )
        } else {
            failed(
                error_code::UNKNOWN_TOPIC_OR_PARTITION,
                format!("unknown partition {topic}-{index}"),
            )
        };
    };
    if !local.is_leader() {
        return failed(
            error_code::NOT_LEADER_OR_FOLLOWER,
            format!("this broker does not lead {topic}-{index}"),
        );
    }
    let producers = local.with_log(|log| log.producers().active());
    answer.with_active_producers(
        producers
            .into_iter()
            .map(|producer| {
                ProducerState::default()
                    .with_producer_id(ProducerId(producer.producer_id))
                    .with_producer_epoch(i32::from(producer.producer_epoch))
                    .with_last_sequence(producer.last_sequence)
                    .with_last_timestamp(producer.last_timestamp)
                    .with_coordinator_epoch(-1)
                    .with_current_txn_start_offset(producer.txn_start_offset)
            })
            .collect(),
    )
}

pub fn handle(ctx: &RequestContext<'_>, request: DescribeProducersRequest) -> DescribeProducersResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            TopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(
                    topic
                        .partition_indexes
                        .iter()
                        .map(|index| partition(ctx, topic.name.as_str(), *index))
                        .collect(),
                )
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
