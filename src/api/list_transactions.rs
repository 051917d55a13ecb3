//! ListTransactions (key 66, v0-1): the transactional ids this broker coordinates (the
//! admin client asks every broker), filtered by state, producer id and (v1+) how long
//! the transaction has run. Unknown state names come back in `unknown_state_filters`.

use super::RequestContext;
use crate::common::now_ms;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::state::TxnState;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

const STATES: [TxnState; 8] = [
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
    TxnState::Dead,
    TxnState::PrepareEpochFence,
];

pub fn handle(ctx: &RequestContext<'_>, request: ListTransactionsRequest) -> ListTransactionsResponse {
    let mut unknown = Vec::new();
    let mut states = Vec::new();
    for filter in &request.state_filters {
        match STATES.iter().find(|state| state.name() == filter.as_str()) {
            Some(state) => states.push(*state),
            None => unknown.push(filter.clone()),
        }
    }
    let now = now_ms();
    let mut listed: Vec<TransactionState> = ctx
        .broker
        .transactions
        .all()
        .into_iter()
        .map(|description| description.metadata)
        .filter(|metadata| states.is_empty() || states.contains(&metadata.state))
        .filter(|metadata| {
            request.producer_id_filters.is_empty()
                || request
                    .producer_id_filters
                    .iter()
                    .any(|id| **id == metadata.producer_id)
        })
        .filter(|metadata| {
            ctx.version < 1
                || request.duration_filter < 0
                || (metadata.start_ms >= 0 && now - metadata.start_ms >= request.duration_filter)
        })
        .filter(|metadata| {
            ctx.allowed(
                Operation::Describe,
                ResourceType::TransactionalId,
                &metadata.transactional_id,
            )
        })
        .map(|metadata| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(metadata.transactional_id)))
                .with_producer_id(ProducerId(metadata.producer_id))
                .with_transaction_state(StrBytes::from_static_str(metadata.state.name()))
        })
        .collect();
    listed.sort_by(|a, b| a.transactional_id.as_str().cmp(b.transactional_id.as_str()));
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(listed)
}
