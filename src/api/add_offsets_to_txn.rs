//! AddOffsetsToTxn (key 25): a transactional producer about to commit a group's offsets
//! in its transaction (`send_offsets_to_transaction`) adds the group's
//! `__consumer_offsets` partition to the transaction, so that the markers reach it and
//! the offsets become visible only with the commit.

use super::RequestContext;
use super::txn_errors;
use crate::common::ErrorCode;
use crate::common::now_ms;
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::state::{self, AddOutcome};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

/// PRODUCER_FENCED is known from AddOffsetsToTxn v2 on.
const FENCED_SINCE: i16 = 2;

pub async fn handle(ctx: &RequestContext<'_>, request: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let code = add(ctx, &request).await.err().unwrap_or_default().code();
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

async fn add(ctx: &RequestContext<'_>, request: &AddOffsetsToTxnRequest) -> Result<(), ErrorCode> {
    let transactional_id = request.transactional_id.as_str();
    if !ctx.allowed(Operation::Write, ResourceType::TransactionalId, transactional_id) {
        return Err(ErrorCode::of(ResponseError::TransactionalIdAuthorizationFailed));
    }
    if !ctx.allowed(Operation::Read, ResourceType::Group, request.group_id.as_str()) {
        return Err(ErrorCode::of(ResponseError::GroupAuthorizationFailed));
    }
    let broker = ctx.broker;
    let (state_partition, _) = broker.transactions.check_coordinator(transactional_id).await?;
    let n_partitions = crate::group::OffsetsLog::offsets_topic_partitions(broker.as_ref()).await?;
    let offsets_partition = crate::group::offsets::partition_for(request.group_id.as_str(), n_partitions);
    let partitions = [(OFFSETS_TOPIC.to_string(), offsets_partition)];
    let now = now_ms();
    let decided = broker
        .transactions
        .decide(
            transactional_id,
            |current| {
                state::add_partitions(
                    current,
                    *request.producer_id,
                    request.producer_epoch,
                    &partitions,
                    now,
                )
            },
            |outcome| matches!(outcome, AddOutcome::Write(_)),
        )
        .await;
    match decided.map_err(|error| txn_errors::code(error, ctx.version, FENCED_SINCE))? {
        AddOutcome::AlreadyIn => Ok(()),
        AddOutcome::Write(next) => broker.transactions.apply_transition(state_partition, &next).await,
    }
}
