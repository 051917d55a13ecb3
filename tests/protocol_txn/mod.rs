//! The transaction APIs at every advertised version (called from protocol.rs's
//! every-version test): refusals for an id the coordinator does not know, a marker
//! written through WriteTxnMarkers and read back, a transactional offset commit that
//! the group does not see until its marker, and the operator APIs.

use crate::common::{Client, create_topic, fetch_request, topic_name};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const NOT_COORDINATOR: i16 = 16;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

fn id(value: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(value.to_string()))
}

/// Waits until this broker's transaction coordinator has loaded the id's partition.
pub async fn wait_for_coordinator(client: &mut Client) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let response = client
            .send(
                DescribeTransactionsRequest::default().with_transactional_ids(vec![id("nobody")]),
                0,
            )
            .await
            .unwrap();
        let code = response.transaction_states[0].error_code;
        if code == TRANSACTIONAL_ID_NOT_FOUND {
            return;
        }
        assert!(
            [COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR, 15].contains(&code),
            "unexpected {code}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the coordinator never loaded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub async fn check(client: &mut Client, api_key: ApiKey, version: i16) -> anyhow::Result<()> {
    wait_for_coordinator(client).await;
    match api_key {
        ApiKey::AddPartitionsToTxn => {
            let topics = vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(topic_name("all-versions"))
                    .with_partitions(vec![0]),
            ];
            let request = if version <= 3 {
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(id("nobody"))
                    .with_v3_and_below_producer_id(ProducerId(1))
                    .with_v3_and_below_topics(topics)
            } else {
                AddPartitionsToTxnRequest::default().with_transactions(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                        .with_transactional_id(id("nobody"))
                        .with_producer_id(ProducerId(1))
                        .with_verify_only(true)
                        .with_topics(topics),
                ])
            };
            let response = client.send(request, version).await?;
            let results = if version <= 3 {
                response.results_by_topic_v3_and_below
            } else {
                response.results_by_transaction[0].topic_results.clone()
            };
            assert_eq!(
                results[0].results_by_partition[0].partition_error_code, INVALID_PRODUCER_ID_MAPPING,
                "v{version}"
            );
        }
        ApiKey::AddOffsetsToTxn => {
            let request = AddOffsetsToTxnRequest::default()
                .with_transactional_id(id("nobody"))
                .with_producer_id(ProducerId(1))
                .with_group_id(GroupId(StrBytes::from_static_str("some-group")));
            let response = client.send(request, version).await?;
            assert_eq!(response.error_code, INVALID_PRODUCER_ID_MAPPING, "v{version}");
        }
        ApiKey::EndTxn => {
            let request = EndTxnRequest::default()
                .with_transactional_id(id("nobody"))
                .with_producer_id(ProducerId(1))
                .with_committed(true);
            let response = client.send(request, version).await?;
            assert_eq!(response.error_code, INVALID_PRODUCER_ID_MAPPING, "v{version}");
        }
        ApiKey::WriteTxnMarkers => {
            // A marker for a producer that wrote nothing here: appended, and read back
            // by a fetch as one control batch.
            let topic = format!("txn-markers-{version}");
            create_topic(client, &topic, 1, &[]).await;
            let request = WriteTxnMarkersRequest::default().with_markers(vec![
                write_txn_markers_request::WritableTxnMarker::default()
                    .with_producer_id(ProducerId(77))
                    .with_producer_epoch(0)
                    .with_transaction_result(true)
                    .with_coordinator_epoch(0)
                    .with_topics(vec![
                        write_txn_markers_request::WritableTxnMarkerTopic::default()
                            .with_name(topic_name(&topic))
                            .with_partition_indexes(vec![0]),
                    ]),
            ]);
            let response = client.send(request, version).await?;
            assert_eq!(
                response.markers[0].topics[0].partitions[0].error_code, 0,
                "v{version}"
            );
            let fetched = client.send(fetch_request(&topic, 0, 0), 11).await?;
            let partition = &fetched.responses[0].partitions[0];
            assert_eq!(partition.high_watermark, 1);
            let mut records = partition.records.clone().unwrap_or_default();
            let batch = kafka_protocol::records::RecordBatchDecoder::decode(&mut records)?;
            assert!(batch.records[0].control, "a control batch");
        }
        ApiKey::TxnOffsetCommit => {
            let group = format!("txn-group-{version}");
            let request = TxnOffsetCommitRequest::default()
                .with_transactional_id(id("committer"))
                .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                .with_producer_id(ProducerId(500 + version as i64))
                .with_producer_epoch(0)
                .with_generation_id(-1)
                .with_topics(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                        .with_name(topic_name("all-versions"))
                        .with_partitions(vec![
                            txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(5),
                        ]),
                ]);
            let response = client.send(request, version).await?;
            assert_eq!(response.topics[0].partitions[0].error_code, 0, "v{version}");
            // Pending until the transaction's marker: a stable fetch is told so.
            let fetch = OffsetFetchRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group)))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(topic_name("all-versions"))
                        .with_partition_indexes(vec![0]),
                ]))
                .with_require_stable(true);
            let fetched = client.send(fetch, 7).await?;
            let partition = &fetched.topics[0].partitions[0];
            assert_eq!(partition.error_code, UNSTABLE_OFFSET_COMMIT, "v{version}");
        }
        ApiKey::DescribeTransactions => {
            let request = DescribeTransactionsRequest::default().with_transactional_ids(vec![id("nobody")]);
            let response = client.send(request, version).await?;
            assert_eq!(
                response.transaction_states[0].error_code,
                TRANSACTIONAL_ID_NOT_FOUND
            );
        }
        ApiKey::ListTransactions => {
            let request = ListTransactionsRequest::default()
                .with_state_filters(vec![StrBytes::from_static_str("Bogus")])
                .with_duration_filter(-1);
            let response = client.send(request, version).await?;
            assert_eq!(response.error_code, 0);
            assert_eq!(
                response.unknown_state_filters,
                vec![StrBytes::from_static_str("Bogus")]
            );
            assert!(response.transaction_states.is_empty());
        }
        other => panic!("no transaction test for {other:?}"),
    }
    Ok(())
}
