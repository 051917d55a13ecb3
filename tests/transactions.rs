//! Transactions over real TCP against one in-process broker: KIP-890 verification of a
//! partition's first transactional batch, the last stable offset and the aborted
//! transactions a read_committed fetch reports, with the record data still zero-copy.

mod common;

use bytes::Bytes;
use common::{
    Client, TestBroker, create_topic, fetch_request, produce_request, record_batch, topic_name, with_producer,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

const INVALID_TXN_STATE: i16 = 48;

fn transactional_batch(count: usize, producer_id: i64, epoch: i16, sequence: i32) -> Bytes {
    let now = ferrolog::common::now_ms();
    let batch = with_producer(
        &record_batch(count, Compression::None, now),
        producer_id,
        epoch,
        sequence,
    );
    let mut bytes = batch.to_vec();
    let attributes = i16::from_be_bytes([bytes[21], bytes[22]]) | 0x10;
    bytes[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(bytes)
}

fn txn_id() -> TransactionalId {
    TransactionalId(StrBytes::from_static_str("verified"))
}

/// InitProducerId for the transactional id, once the coordinator has loaded it.
async fn init(client: &mut Client) -> (i64, i16) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let response = client
            .send(
                InitProducerIdRequest::default()
                    .with_transactional_id(Some(txn_id()))
                    .with_transaction_timeout_ms(60_000)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
                4,
            )
            .await
            .unwrap();
        if response.error_code == 0 {
            return (*response.producer_id, response.producer_epoch);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "InitProducerId: {}",
            response.error_code
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn produce(client: &mut Client, partition: i32, records: Bytes) -> i16 {
    let request =
        produce_request("verified-topic", partition, records, -1).with_transactional_id(Some(txn_id()));
    let response = client.send(request, 9).await.unwrap();
    response.responses[0].partition_responses[0].error_code
}

async fn end(client: &mut Client, producer: (i64, i16), commit: bool) {
    let response = client
        .send(
            EndTxnRequest::default()
                .with_transactional_id(txn_id())
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_committed(commit),
            3,
        )
        .await
        .unwrap();
    assert_eq!(response.error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_takes_transactional_data_only_once_it_is_in_the_transaction() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "verified-topic", 2, &[]).await;
    let producer = init(&mut client).await;
    // Not added yet: refused, nothing written.
    assert_eq!(
        produce(&mut client, 0, transactional_batch(3, producer.0, producer.1, 0)).await,
        INVALID_TXN_STATE
    );
    let add = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn_id())
        .with_v3_and_below_producer_id(ProducerId(producer.0))
        .with_v3_and_below_producer_epoch(producer.1)
        .with_v3_and_below_topics(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(topic_name("verified-topic"))
                .with_partitions(vec![0]),
        ]);
    let added = client.send(add, 3).await.unwrap();
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    assert_eq!(
        produce(&mut client, 0, transactional_batch(3, producer.0, producer.1, 0)).await,
        0
    );
    // Partition 1 was never added.
    assert_eq!(
        produce(&mut client, 1, transactional_batch(2, producer.0, producer.1, 3)).await,
        INVALID_TXN_STATE
    );

    // Open: a read_committed fetch stops at the last stable offset (0); read_uncommitted
    // reads the data.
    let mut committed = fetch_request("verified-topic", 0, 0).with_isolation_level(1);
    committed.max_wait_ms = 0;
    let response = client.send(committed.clone(), 11).await.unwrap();
    let partition = &response.responses[0].partitions[0];
    assert_eq!((partition.high_watermark, partition.last_stable_offset), (3, 0));
    assert!(
        partition
            .records
            .as_ref()
            .is_none_or(|records| records.is_empty())
    );

    // Aborted: the marker ends it; read_committed now reads past it and is told which
    // producer's data from which offset to drop.
    end(&mut client, producer, false).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let partition = loop {
        let response = client.send(committed.clone(), 11).await.unwrap();
        let partition = response.responses[0].partitions[0].clone();
        if partition.last_stable_offset == 4 {
            break partition;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the abort marker never landed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let aborted = partition
        .aborted_transactions
        .expect("a read_committed answer lists aborted transactions");
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (*aborted[0].producer_id, aborted[0].first_offset),
        (producer.0, 0)
    );
    let mut records = partition.records.unwrap();
    let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut records).unwrap();
    let stored: Vec<(i64, bool)> = sets
        .iter()
        .flat_map(|set| set.records.iter().map(|record| (record.offset, record.control)))
        .collect();
    assert_eq!(
        stored,
        vec![(0, false), (1, false), (2, false), (3, true)],
        "the aborted data and its marker, as stored"
    );
    // ListOffsets latest under read_committed is the last stable offset.
    let list = ListOffsetsRequest::default()
        .with_isolation_level(1)
        .with_topics(vec![
            list_offsets_request::ListOffsetsTopic::default()
                .with_name(topic_name("verified-topic"))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1),
                ]),
        ]);
    let listed = client.send(list, 5).await.unwrap();
    assert_eq!(listed.topics[0].partitions[0].offset, 4);
}
