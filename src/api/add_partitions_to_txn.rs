//! AddPartitionsToTxn (key 24). v0-3 (clients): the partitions a transactional producer
//! is about to write join its transaction at the coordinator, which logs them before
//! answering; the markers later go to exactly these partitions. v4-5 (broker to
//! coordinator, ClusterAction): several transactions per request, and `verify_only`,
//! with which a partition leader asks whether a partition is in a transaction without
//! adding it (KIP-890).
//!
//! Per partition the answer is one code: the transaction's refusal, or
//! OPERATION_NOT_ATTEMPTED for the partitions that were fine when another failed.

use super::RequestContext;
use super::txn_errors;
use crate::common::ErrorCode;
use crate::common::now_ms;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::state::{self, AddOutcome};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

/// PRODUCER_FENCED is known from AddPartitionsToTxn v2 on.
const FENCED_SINCE: i16 = 2;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if ctx.version <= 3 {
        let results = add(
            ctx,
            request.v3_and_below_transactional_id.as_str(),
            *request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch,
            &request.v3_and_below_topics,
            false,
        )
        .await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    if !ctx.allowed_on_cluster(Operation::ClusterAction) {
        return AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let mut results = Vec::with_capacity(request.transactions.len());
    for transaction in &request.transactions {
        let topic_results = add(
            ctx,
            transaction.transactional_id.as_str(),
            *transaction.producer_id,
            transaction.producer_epoch,
            &transaction.topics,
            transaction.verify_only,
        )
        .await;
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(transaction.transactional_id.clone())
                .with_topic_results(topic_results),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

/// One transaction's partitions: added (or, `verify_only`, checked).
async fn add(
    ctx: &RequestContext<'_>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut codes: BTreeMap<(String, i32), ErrorCode> = BTreeMap::new();
    let mut wanted = Vec::new();
    let transactional_allowed =
        ctx.allowed(Operation::Write, ResourceType::TransactionalId, transactional_id);
    for topic in topics {
        let name = topic.name.as_str();
        let code = if !transactional_allowed {
            Some(ErrorCode::of(ResponseError::TransactionalIdAuthorizationFailed))
        } else if !ctx.allowed(Operation::Write, ResourceType::Topic, name)
            || crate::broker::Broker::is_internal_topic(name)
        {
            Some(ErrorCode::of(ResponseError::TopicAuthorizationFailed))
        } else {
            match ctx.broker.topic(name) {
                None => Some(ErrorCode::of(ResponseError::UnknownTopicOrPartition)),
                Some(record) => {
                    for partition in &topic.partitions {
                        if record.partition(*partition).is_none() {
                            codes.insert(
                                (name.to_string(), *partition),
                                ErrorCode::of(ResponseError::UnknownTopicOrPartition),
                            );
                        } else {
                            wanted.push((name.to_string(), *partition));
                        }
                    }
                    None
                }
            }
        };
        if let Some(code) = code {
            for partition in &topic.partitions {
                codes.insert((name.to_string(), *partition), code);
            }
        }
    }
    let outcome = if !codes.is_empty() {
        // Nothing is added when some partition is refused.
        Err(ErrorCode::of(ResponseError::OperationNotAttempted))
    } else if verify_only {
        verify(ctx, transactional_id, producer_id, producer_epoch, &wanted).await
    } else {
        add_to_transaction(ctx, transactional_id, producer_id, producer_epoch, &wanted).await
    };
    match outcome {
        Ok(per_partition) => codes.extend(per_partition),
        Err(code) => {
            for partition in wanted {
                codes.entry(partition).or_insert(code);
            }
        }
    }
    let mut by_topic: BTreeMap<String, Vec<AddPartitionsToTxnPartitionResult>> = BTreeMap::new();
    for ((topic, partition), code) in codes {
        by_topic.entry(topic).or_default().push(
            AddPartitionsToTxnPartitionResult::default()
                .with_partition_index(partition)
                .with_partition_error_code(code.code()),
        );
    }
    by_topic
        .into_iter()
        .map(|(topic, results)| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(TopicName(StrBytes::from_string(topic)))
                .with_results_by_partition(results)
        })
        .collect()
}

async fn add_to_transaction(
    ctx: &RequestContext<'_>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(String, i32)],
) -> Result<Vec<((String, i32), ErrorCode)>, ErrorCode> {
    let broker = ctx.broker;
    let (state_partition, _) = broker.transactions.check_coordinator(transactional_id).await?;
    let now = now_ms();
    let decided = broker
        .transactions
        .decide(
            transactional_id,
            |current| state::add_partitions(current, producer_id, producer_epoch, partitions, now),
            |outcome| matches!(outcome, AddOutcome::Write(_)),
        )
        .await;
    match decided.map_err(|error| txn_errors::code(error, ctx.version, FENCED_SINCE))? {
        AddOutcome::AlreadyIn => {}
        AddOutcome::Write(next) => {
            broker
                .transactions
                .apply_transition(state_partition, &next)
                .await?;
        }
    }
    Ok(partitions
        .iter()
        .map(|partition| (partition.clone(), ErrorCode::NONE))
        .collect())
}

/// KIP-890: whether each partition is in the producer's ongoing transaction
/// (INVALID_TXN_STATE for one that is not).
async fn verify(
    ctx: &RequestContext<'_>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(String, i32)],
) -> Result<Vec<((String, i32), ErrorCode)>, ErrorCode> {
    ctx.broker
        .transactions
        .check_coordinator(transactional_id)
        .await?;
    let Some(current) = ctx.broker.transactions.get(transactional_id) else {
        return Err(ErrorCode::of(ResponseError::InvalidProducerIdMapping));
    };
    let metadata = current.metadata;
    if metadata.producer_id != producer_id {
        return Err(ErrorCode::of(ResponseError::InvalidProducerIdMapping));
    }
    if metadata.producer_epoch != producer_epoch {
        return Err(ErrorCode::of(ResponseError::InvalidProducerEpoch));
    }
    Ok(partitions
        .iter()
        .map(|partition| {
            let code = if metadata.state == crate::txn::state::TxnState::Ongoing
                && metadata.partitions.contains(partition)
            {
                ErrorCode::NONE
            } else {
                ErrorCode::INVALID_TXN_STATE
            };
            (partition.clone(), code)
        })
        .collect())
}
