//! TxnOffsetCommit (key 28): a transactional producer commits a group's offsets inside
//! its transaction (`send_offsets_to_transaction`). Sent to the group's coordinator,
//! which appends them to `__consumer_offsets` as the producer's transactional batch
//! (fenced by its epoch) and keeps them pending: the group sees them only when the
//! transaction's COMMIT marker lands there, and never after an ABORT. From v3 on the
//! member and generation are checked as for OffsetCommit (generation -1 skips that).

use super::RequestContext;
use super::offset_commit::{Commit, accepted, decide_all};
use crate::common::ErrorCode;
use crate::common::now_ms;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

pub async fn handle(ctx: &RequestContext<'_>, request: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let broker = ctx.broker;
    let now = now_ms();
    let transactional_allowed = ctx.allowed(
        Operation::Write,
        ResourceType::TransactionalId,
        request.transactional_id.as_str(),
    );
    let group_allowed = ctx.allowed(Operation::Read, ResourceType::Group, &request.group_id);
    let refused = if !transactional_allowed {
        Some(ResponseError::TransactionalIdAuthorizationFailed.into())
    } else if !group_allowed {
        Some(ResponseError::GroupAuthorizationFailed.into())
    } else {
        None
    };
    let decided = decide_all(
        ctx,
        request.topics.iter().map(|topic| {
            let commits = topic.partitions.iter().map(Commit::from).collect();
            (topic.name.as_str(), commits)
        }),
        refused,
    );
    let group_code = if request.group_id.is_empty() {
        ResponseError::InvalidGroupId.into()
    } else if let Err(code) = crate::group::host::check_coordinator(broker.as_ref(), &request.group_id).await
    {
        code
    } else {
        let offsets = accepted(request.topics.iter().map(|topic| topic.name.as_str()), &decided);
        // Before v3 there is no member or generation to check.
        let generation = if ctx.version >= 3 {
            request.generation_id
        } else {
            -1
        };
        if offsets.is_empty() {
            ErrorCode::NONE
        } else {
            let code = broker
                .groups
                .commit_in_transaction(
                    &request.group_id,
                    &request.member_id,
                    request.group_instance_id.as_deref(),
                    generation,
                    (*request.producer_id, request.producer_epoch),
                    offsets,
                    now,
                )
                .await;
            // PRODUCER_FENCED is known from v3 on.
            if code == ResponseError::ProducerFenced.into() && ctx.version < 3 {
                ErrorCode::INVALID_PRODUCER_EPOCH
            } else {
                code
            }
        }
    };
    let topics = request
        .topics
        .into_iter()
        .zip(decided)
        .map(|(topic, partitions)| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, outcome)| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(outcome.err().unwrap_or(group_code).code())
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
