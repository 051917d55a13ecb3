//! The coordinator's traffic with other brokers and with its own log: WriteTxnMarkers
//! (v1) to the leader of partitions led elsewhere and AddPartitionsToTxn v4
//! (`verify_only`) to another coordinator, over the inter-broker listener as replica
//! fetchers connect; and the replay of a `__transaction_state` partition.

use super::coordinator::marker_retriable;
use super::log_format;
use super::state::TxnMetadata;
use crate::cluster::image::Endpoint;
use crate::common::ErrorCode;
use crate::common::topics::TRANSACTION_STATE_TOPIC;
use crate::config::BrokerConfig;
use crate::log::control::ControlMarker;
use crate::replication::ReplicaManager;
use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, HashMap};

/// Sends the markers for `partitions` (all led by `leader`) in one WriteTxnMarkers;
/// returns those to try again.
pub(super) async fn send_remote(
    replicas: &ReplicaManager,
    config: &BrokerConfig,
    leader: i32,
    prepared: &TxnMetadata,
    marker: ControlMarker,
    partitions: Vec<(String, i32)>,
) -> Vec<(String, i32)> {
    let image = replicas.image();
    let Some(endpoint) = image
        .brokers
        .get(&leader)
        .filter(|registered| !registered.fenced)
        .and_then(|registered| registered.endpoint(&config.inter_broker_listener))
        .cloned()
    else {
        return partitions;
    };

    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, index) in &partitions {
        by_topic.entry(topic.as_str()).or_default().push(*index);
    }
    let request = WriteTxnMarkersRequest::default().with_markers(vec![
        WritableTxnMarker::default()
            .with_producer_id(ProducerId(prepared.producer_id))
            .with_producer_epoch(prepared.producer_epoch)
            .with_transaction_result(marker.commit)
            .with_coordinator_epoch(marker.coordinator_epoch)
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(topic, indexes)| {
                        WritableTxnMarkerTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                            .with_partition_indexes(indexes)
                    })
                    .collect(),
            ),
    ]);
    let Some(mut connection) = replicas.connect_to_broker(&endpoint, "txn-markers").await else {
        return partitions;
    };
    let response = match connection.call(&request, 1).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%error, leader, "WriteTxnMarkers failed; retrying");
            return partitions;
        }
    };
    let mut codes: HashMap<(String, i32), ErrorCode> = HashMap::new();
    for result in response.markers {
        for topic in result.topics {
            for partition in topic.partitions {
                codes.insert(
                    (topic.name.to_string(), partition.partition_index),
                    ErrorCode::from_code(partition.error_code),
                );
            }
        }
    }
    partitions
        .into_iter()
        .filter(|partition| {
            let code = codes
                .get(partition)
                .copied()
                .unwrap_or(ErrorCode::NOT_LEADER_OR_FOLLOWER);
            if !code.is_none() && !marker_retriable(code) {
                tracing::warn!(topic = %partition.0, index = partition.1, %code, "a transaction marker was refused; not retried");
                return false;
            }
            !code.is_none()
        })
        .collect()
}

/// Asks the coordinator of `transactional_id` (another broker) whether `partition` is in
/// the producer's ongoing transaction (AddPartitionsToTxn v4, verify_only).
pub(super) async fn verify_remote(
    replicas: &ReplicaManager,
    coordinator: &Endpoint,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partition: (String, i32),
) -> Result<(), ErrorCode> {
    use kafka_protocol::messages::AddPartitionsToTxnRequest;
    use kafka_protocol::messages::add_partitions_to_txn_request::{
        AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
    };
    let retry = ErrorCode::NOT_ENOUGH_REPLICAS;

    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(kafka_protocol::messages::TransactionalId(StrBytes::from_string(
                transactional_id.to_string(),
            )))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_verify_only(true)
            .with_topics(vec![
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(partition.0.clone())))
                    .with_partitions(vec![partition.1]),
            ]),
    ]);
    let Some(mut connection) = replicas.connect_to_broker(coordinator, "txn-verify").await else {
        return Err(retry);
    };
    let response = connection.call(&request, 4).await.map_err(|error| {
        tracing::debug!(%error, "transaction verification failed; the producer retries");
        retry
    })?;
    if response.error_code != 0 {
        return Err(retry);
    }
    let code = response
        .results_by_transaction
        .iter()
        .flat_map(|result| &result.topic_results)
        .flat_map(|topic| &topic.results_by_partition)
        .map(|result| ErrorCode::from_code(result.partition_error_code))
        .next()
        .unwrap_or(retry);
    match code {
        ErrorCode::NONE => Ok(()),
        ErrorCode::NOT_COORDINATOR
        | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
        | ErrorCode::COORDINATOR_NOT_AVAILABLE => Err(retry),
        refused => Err(refused),
    }
}

/// Every transactional id stored in state-log partition `index`, as last written.
pub(super) fn load_state_partition(
    replicas: &ReplicaManager,
    index: i32,
) -> Result<Vec<TxnMetadata>, crate::log::LogError> {
    let Some(partition) = replicas.partition_of(TRANSACTION_STATE_TOPIC, index) else {
        return Ok(Vec::new());
    };
    let mut latest: HashMap<String, Option<TxnMetadata>> = HashMap::new();
    partition.replay(|mut chunk, _| {
        let Ok(sets) = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut chunk) else {
            tracing::error!(
                partition = index,
                "undecodable batch in {TRANSACTION_STATE_TOPIC}"
            );
            return;
        };
        for record in sets.into_iter().flat_map(|set| set.records) {
            let Some(key) = record.key else { continue };
            let Ok(transactional_id) = log_format::decode_key(key) else {
                continue;
            };
            let metadata = match record.value {
                None => None,
                Some(value) => match log_format::decode_value(&transactional_id, value) {
                    Ok(metadata) => Some(metadata),
                    Err(error) => {
                        tracing::warn!(%error, transactional_id, "skipping a {TRANSACTION_STATE_TOPIC} record");
                        continue;
                    }
                },
            };
            latest.insert(transactional_id, metadata);
        }
    })?;
    Ok(latest.into_values().flatten().collect())
}
