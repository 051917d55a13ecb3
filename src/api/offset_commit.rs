//! OffsetCommit (key 8): checks the member and generation, then appends the offsets to
//! `__consumer_offsets` and answers only after the append.

use super::RequestContext;
use crate::cluster::image::TopicImage;
use crate::common::ErrorCode;
use crate::common::now_ms;
use crate::group::offsets::CommittedOffset;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

/// Per topic (in request order), per partition: the offset to commit or the refusal.
pub(super) type Decided = Vec<Vec<(i32, Result<CommittedOffset, ErrorCode>)>>;

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

/// Both requests' partitions carry the same four fields.
macro_rules! commit_from {
    ($($partition:ty),*) => {$(
        impl<'a> From<&'a $partition> for Commit<'a> {
            fn from(partition: &'a $partition) -> Self {
                Commit {
                    partition_index: partition.partition_index,
                    offset: partition.committed_offset,
                    leader_epoch: partition.committed_leader_epoch,
                    metadata: partition.committed_metadata.as_deref(),
                }
            }
        }
    )*};
}

commit_from!(
    kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition,
    kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestPartition
);

/// Each topic's partitions (in request order) decided: `refused` is the code every
/// partition gets when the request itself may not commit (group or transactional id not
/// allowed); then each topic needs Read.
pub(super) fn decide_all<'r>(
    ctx: &RequestContext<'_>,
    topics: impl Iterator<Item = (&'r str, Vec<Commit<'r>>)>,
    refused: Option<ErrorCode>,
) -> Decided {
    let broker = ctx.broker;
    let now = now_ms();
    let max_metadata = broker.groups.config.offset_metadata_max_bytes;
    topics
        .map(|(name, commits)| {
            let known = broker.topic(name);
            let topic_allowed = ctx.allowed(Operation::Read, ResourceType::Topic, name);
            let refusal =
                refused.or((!topic_allowed).then(|| ResponseError::TopicAuthorizationFailed.into()));
            commits
                .into_iter()
                .map(|commit| {
                    let index = commit.partition_index;
                    (index, decide(refusal, known.as_ref(), commit, max_metadata, now))
                })
                .collect()
        })
        .collect()
}

/// One partition's outcome: `refusal` if an authorization check failed, then
/// UNKNOWN_TOPIC_OR_PARTITION for a partition the cluster metadata does not have (the
/// coordinator commits offsets of partitions it need not host, as Kafka's does), then
/// the offset to commit or OFFSET_METADATA_TOO_LARGE.
pub(super) fn decide(
    refusal: Option<ErrorCode>,
    topic: Option<&TopicImage>,
    commit: Commit<'_>,
    max_metadata: usize,
    now_ms: i64,
) -> Result<CommittedOffset, ErrorCode> {
    if let Some(code) = refusal {
        return Err(code);
    }
    if topic.is_none_or(|topic| topic.partition(commit.partition_index).is_none()) {
        return Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
    }
    let metadata = commit.metadata.unwrap_or_default().to_string();
    if metadata.len() > max_metadata {
        return Err(ResponseError::OffsetMetadataTooLarge.into());
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
    let group_allowed = ctx.allowed(Operation::Read, ResourceType::Group, &request.group_id);
    let refused = (!group_allowed).then(|| ResponseError::GroupAuthorizationFailed.into());
    // Per partition: Ok(offset to commit) or Err(code); kept in request order.
    let decided = decide_all(
        ctx,
        request.topics.iter().map(|topic| {
            let commits = topic.partitions.iter().map(Commit::from).collect();
            (topic.name.as_str(), commits)
        }),
        refused,
    );
    let group_code = if !group_allowed {
        ResponseError::GroupAuthorizationFailed.into()
    } else if request.group_id.is_empty() {
        ResponseError::InvalidGroupId.into()
    } else if let Err(code) = crate::group::host::check_coordinator(broker.as_ref(), &request.group_id).await
    {
        code
    } else {
        let offsets = accepted(request.topics.iter().map(|topic| topic.name.as_str()), &decided);
        if offsets.is_empty() {
            ErrorCode::NONE
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
                                .with_error_code(code.code())
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
