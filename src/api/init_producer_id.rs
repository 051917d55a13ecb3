//! InitProducerId (key 22). Without a transactional id: a fresh producer id with epoch
//! 0 for an idempotent producer, or, when a producer asks to bump its epoch (KIP-360),
//! the same id with the next epoch. Ids come in blocks that the active controller
//! allocates (AllocateProducerIds), so they are unique across the cluster.
//!
//! With a transactional id the transaction coordinator answers (this broker must lead
//! the id's `__transaction_state` partition, else NOT_COORDINATOR): a new id gets a
//! producer id, a known one the next epoch, which fences the previous producer; an open
//! transaction of the previous producer is aborted first (CONCURRENT_TRANSACTIONS until
//! it is, which clients retry).

use super::RequestContext;
use super::txn_errors;
use crate::common::ErrorCode;
use crate::common::now_ms;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::state::{self, InitOutcome, TxnError};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

/// PRODUCER_FENCED is known from InitProducerId v4 on.
const FENCED_SINCE: i16 = 4;

pub async fn handle(ctx: &RequestContext<'_>, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    match request.transactional_id.as_deref().map(|id| id.as_str()) {
        None => {}
        Some("") => return response.with_error_code(ResponseError::InvalidRequest.code()),
        Some(transactional_id) => {
            if !ctx.allowed(Operation::Write, ResourceType::TransactionalId, transactional_id) {
                return response.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
            }
            return match transactional(ctx, transactional_id, &request).await {
                Ok((producer_id, epoch)) => response
                    .with_producer_id(ProducerId(producer_id))
                    .with_producer_epoch(epoch),
                Err(code) => response.with_error_code(code.code()),
            };
        }
    }
    // IdempotentWrite on the cluster, or Write on some topic, as Kafka checks.
    if !ctx.allowed_on_cluster(Operation::IdempotentWrite)
        && !ctx
            .broker
            .authorize_any(&ctx.principal, ctx.host(), Operation::Write, ResourceType::Topic)
    {
        return response.with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    if *request.producer_id >= 0 && request.producer_epoch >= 0 && request.producer_epoch < i16::MAX - 1 {
        return response
            .with_producer_id(request.producer_id)
            .with_producer_epoch(request.producer_epoch + 1);
    }
    match ctx.broker.new_producer_id().await {
        Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(error) => {
            tracing::warn!(%error, "could not allocate a producer id");
            response.with_error_code(ResponseError::CoordinatorNotAvailable.code())
        }
    }
}

/// The transaction coordinator's InitProducerId: (producer id, epoch) or an error code.
async fn transactional(
    ctx: &RequestContext<'_>,
    transactional_id: &str,
    request: &InitProducerIdRequest,
) -> Result<(i64, i16), ErrorCode> {
    let broker = ctx.broker;
    let (partition, _) = broker.transactions.check_coordinator(transactional_id).await?;
    let timeout_ms = request.transaction_timeout_ms;
    if timeout_ms <= 0 || timeout_ms > broker.config.transactions.max_timeout_ms {
        return Err(txn_errors::code(
            TxnError::InvalidTransactionTimeout,
            ctx.version,
            FENCED_SINCE,
        ));
    }
    let expected = (*request.producer_id >= 0).then_some((*request.producer_id, request.producer_epoch));
    let mut new_producer_id = None;
    loop {
        let now = now_ms();
        let decided = broker
            .transactions
            .decide(
                transactional_id,
                |current| {
                    state::init_producer_id(
                        current,
                        transactional_id,
                        timeout_ms,
                        expected,
                        new_producer_id,
                        now,
                    )
                },
                |outcome| matches!(outcome, InitOutcome::Write(_) | InitOutcome::FenceAndAbort(_)),
            )
            .await;
        let fail = |error| txn_errors::code(error, ctx.version, FENCED_SINCE);
        match decided.map_err(fail)? {
            InitOutcome::NeedProducerId if new_producer_id.is_none() => {
                let id = broker.new_producer_id().await.map_err(|error| {
                    tracing::warn!(%error, "could not allocate a producer id");
                    ErrorCode::of(ResponseError::CoordinatorNotAvailable)
                })?;
                new_producer_id = Some(id);
            }
            InitOutcome::NeedProducerId => return Err(ErrorCode::of(ResponseError::CoordinatorNotAvailable)),
            InitOutcome::Current(current) => return Ok((current.producer_id, current.producer_epoch)),
            InitOutcome::Write(next) => {
                broker.transactions.apply_transition(partition, &next).await?;
                return Ok((next.producer_id, next.producer_epoch));
            }
            InitOutcome::FenceAndAbort(fenced) => {
                broker.transactions.apply_transition(partition, &fenced).await?;
                tokio::spawn(broker.transactions.clone().complete(partition, fenced));
                return Err(ErrorCode::of(ResponseError::ConcurrentTransactions));
            }
        }
    }
}
