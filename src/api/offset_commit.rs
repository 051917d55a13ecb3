//! OffsetCommit (key 8): checks the member and generation, then appends the offsets to
//! `__consumer_offsets` and answers only after the append.

use super::{RequestContext, error_code};
use crate::cluster::image::TopicImage;
use crate::group::offsets::CommittedOffset;
use crate::replication::partition::now_ms;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

/// Per topic (in request order), per partition: the offset to commit or the refusal.
pub(super) type Decided = Vec<Vec<(i32, Result<CommittedOffset, i16>)>>;

/// The (topic, partition, offset) of every partition not refused, for the coordinator.
pub(super) fn accepted<'a>(
    topics: impl Iterator<Item = &'a str>,
    decided: &Decided,
) -> Vec<(String, i32, CommittedOffset)> {
    topics
        .zip(decided)
        .flat_map(|(topic, partitions)| {
            partitions.iter().filter_map(move |(index, outcome)| {
                outcome
                    .as_ref()
                    .ok()
                    .map(|committed| (topic.to_string(), *index, committed.clone()))
            })
        })
        .collect()
}

/// One partition's offset as OffsetCommit or TxnOffsetCommit gives it.
pub(super) struct Commit<'a> {
    pub partition_index: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<&'a str>,
}

/// One partition's outcome: `refusal` if an authorization check failed, then
/// UNKNOWN_TOPIC_OR_PARTITION for a partition the cluster metadata does not have (the
/// coordinator commits offsets of partitions it need not host, as Kafka's does), then
/// the offset to commit or OFFSET_METADATA_TOO_LARGE.
pub(super) fn decide(
    refusal: Option<i16>,
    topic: Option<&TopicImage>,
    commit: Commit<'_>,
    max_metadata: usize,
    now_ms: i64,
) -> Result<CommittedOffset, i16> {
    if let Some(code) = refusal {
        return Err(code);
    }
    if topic.is_none_or(|topic| topic.partition(commit.partition_index).is_none()) {
        return Err(error_code::UNKNOWN_TOPIC_OR_PARTITION);
    }
    let metadata = commit.metadata.unwrap_or_default().to_string();
    if metadata.len() > max_metadata {
        return Err(ResponseError::OffsetMetadataTooLarge.code());
    }
    Ok(CommittedOffset {
        offset: commit.offset,
        leader_epoch: commit.leader_epoch,
        metadata,
        commit_timestamp_ms: now_ms,
    })
}

pub async fn handle(ctx: &RequestContext<'_>, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let broker = ctx.broker;
    let now = now_ms();
    let max_metadata = broker.groups.config.offset_metadata_max_bytes;
    // Per partition: Ok(offset to commit) or Err(code); kept in request order.
    let mut decided: Decided = Vec::new();
    let group_allowed = ctx.allowed(Operation::Read, ResourceType::Group, &request.group_id);
    for topic in &request.topics {
        let known = broker.topic(&topic.name);
        let topic_allowed = ctx.allowed(Operation::Read, ResourceType::Topic, &topic.name);
        let refusal = if !group_allowed {
            Some(ResponseError::GroupAuthorizationFailed.code())
        } else if !topic_allowed {
            Some(ResponseError::TopicAuthorizationFailed.code())
        } else {
            None
        };
        decided.push(
            topic
                .partitions
                .iter()
                .map(|partition| {
                    let commit = Commit {
                        partition_index: partition.partition_index,
                        offset: partition.committed_offset,
                        leader_epoch: partition.committed_leader_epoch,
                        metadata: partition.committed_metadata.as_deref(),
                    };
                    let outcome = decide(refusal, known.as_ref(), commit, max_metadata, now);
                    (partition.partition_index, outcome)
                })
                .collect(),
        );
    }
    let group_code = if !group_allowed {
        ResponseError::GroupAuthorizationFailed.code()
    } else if request.group_id.is_empty() {
        ResponseError::InvalidGroupId.code()
    } else if let Err(code) = broker.check_group_coordinator(&request.group_id).await {
        code
    } else {
        let offsets = accepted(request.topics.iter().map(|topic| topic.name.as_str()), &decided);
        if offsets.is_empty() {
            error_code::NONE
        } else {
            broker
                .groups
                .commit(
                    &request.group_id,
                    &request.member_id,
                    request.group_instance_id.as_deref(),
                    request.generation_id_or_member_epoch,
                    offsets,
                    now,
                )
                .await
        }
    };
    let topics = request
        .topics
        .into_iter()
        .zip(decided)
        .map(|(topic, partitions)| {
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, outcome)| {
                            let code = match outcome {
                                Ok(_) => group_code,
                                Err(code) => code,
                            };
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
