//! OffsetForLeaderEpoch (key 23): where a leader epoch ends in this leader's log
//! (KIP-101, KIP-320). Followers and clients ask it after a leader change to find out
//! whether their log or position diverged: the answer is the largest epoch not above the
//! one asked for and the offset where it ended (the log end for the current epoch).
//! Only the leader answers; a stale or future `current_leader_epoch` is refused.

use super::{RequestContext, check_leader_epoch};
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

pub fn handle(
    ctx: &RequestContext<'_>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    // Followers (replica id >= 0) need ClusterAction; clients Describe on the topic.
    let replica = request.replica_id.0 >= 0;
    let replica_allowed = !replica || ctx.allowed_on_cluster(Operation::ClusterAction);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let authorized = if replica {
                replica_allowed
            } else {
                ctx.allowed(Operation::Describe, ResourceType::Topic, &topic.topic)
            };
            let partitions = topic
                .partitions
                .iter()
                .map(|wanted| {
                    let answer = EpochEndOffset::default()
                        .with_partition(wanted.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if !authorized {
                        return answer
                            .with_error_code(kafka_protocol::ResponseError::TopicAuthorizationFailed.code());
                    }
                    let partition = match ctx.broker.replicas.led_partition(&topic.topic, wanted.partition) {
                        Ok(partition) => partition,
                        Err(code) => return answer.with_error_code(code.code()),
                    };
                    partition.with_log(|log| {
                        if let Err(code) = check_leader_epoch(wanted.current_leader_epoch, log.leader_epoch())
                        {
                            return answer.with_error_code(code.code());
                        }
                        let (epoch, end_offset) = log.end_offset_for_epoch(wanted.leader_epoch);
                        answer.with_leader_epoch(epoch).with_end_offset(end_offset)
                    })
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
