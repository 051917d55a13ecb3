//! DescribeTransactions (key 65, v0): the coordinator's state of each named
//! transactional id (Describe on the id), for operators (`kafka-transactions.sh
//! describe`). An id coordinated elsewhere is NOT_COORDINATOR; an unknown one
//! TRANSACTIONAL_ID_NOT_FOUND.

use super::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut states = Vec::with_capacity(request.transactional_ids.len());
    for transactional_id in request.transactional_ids {
        let id = transactional_id.as_str().to_string();
        let state = TransactionState::default()
            .with_transactional_id(transactional_id)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_transaction_start_time_ms(-1);
        if !ctx.allowed(Operation::Describe, ResourceType::TransactionalId, &id) {
            states.push(state.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()));
            continue;
        }
        if let Err(code) = ctx.broker.transactions.check_coordinator(&id).await {
            states.push(state.with_error_code(code.code()));
            continue;
        }
        let Some(found) = ctx.broker.transactions.get(&id) else {
            states.push(state.with_error_code(ResponseError::TransactionalIdNotFound.code()));
            continue;
        };
        let metadata = found.metadata;
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &metadata.partitions {
            by_topic.entry(topic.clone()).or_default().push(*partition);
        }
        states.push(
            state
                .with_transaction_state(StrBytes::from_static_str(metadata.state.name()))
                .with_transaction_timeout_ms(metadata.timeout_ms)
                .with_transaction_start_time_ms(metadata.start_ms)
                .with_producer_id(ProducerId(metadata.producer_id))
                .with_producer_epoch(metadata.producer_epoch)
                .with_topics(
                    by_topic
                        .into_iter()
                        .map(|(topic, partitions)| {
                            TopicData::default()
                                .with_topic(TopicName(StrBytes::from_string(topic)))
                                .with_partitions(partitions)
                        })
                        .collect(),
                ),
        );
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
