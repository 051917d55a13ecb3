//! EndTxn (key 26): commit or abort. The coordinator logs PrepareCommit/PrepareAbort,
//! answers, and then writes the markers to every partition in the transaction (through
//! their leaders) and logs CompleteCommit/CompleteAbort. Until then the id answers
//! CONCURRENT_TRANSACTIONS, which clients retry. A retried EndTxn of a finished
//! transaction is answered as done.

use super::RequestContext;
use super::txn_errors;
use crate::common::ErrorCode;
use crate::common::now_ms;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::state::{self, EndOutcome};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

/// PRODUCER_FENCED is known from EndTxn v2 on.
const FENCED_SINCE: i16 = 2;

pub async fn handle(ctx: &RequestContext<'_>, request: EndTxnRequest) -> EndTxnResponse {
    let code = end(ctx, &request).await.err().unwrap_or_default().code();
    EndTxnResponse::default()
        .with_error_code(code)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

async fn end(ctx: &RequestContext<'_>, request: &EndTxnRequest) -> Result<(), ErrorCode> {
    let transactional_id = request.transactional_id.as_str();
    if !ctx.allowed(Operation::Write, ResourceType::TransactionalId, transactional_id) {
        return Err(ErrorCode::of(ResponseError::TransactionalIdAuthorizationFailed));
    }
    let broker = ctx.broker;
    let (state_partition, _) = broker.transactions.check_coordinator(transactional_id).await?;
    let now = now_ms();
    let decided = broker
        .transactions
        .decide(
            transactional_id,
            |current| {
                state::end_txn(
                    current,
                    *request.producer_id,
                    request.producer_epoch,
                    request.committed,
                    now,
                )
            },
            |outcome| matches!(outcome, EndOutcome::Prepare(_)),
        )
        .await;
    match decided.map_err(|error| txn_errors::code(error, ctx.version, FENCED_SINCE))? {
        EndOutcome::AlreadyDone => Ok(()),
        EndOutcome::Prepare(prepared) => {
            broker
                .transactions
                .apply_transition(state_partition, &prepared)
                .await?;
            tokio::spawn(broker.transactions.clone().complete(state_partition, prepared));
            Ok(())
        }
    }
}
