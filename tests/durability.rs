//! Flush policy and idempotent producers over real TCP.

mod common;

use common::{TestBroker, create_topic, produce_request, record_batch, with_producer};
use ferrolog::log::TopicPartition;
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;

#[tokio::test]
async fn sync_flush_fsyncs_before_the_ack() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "sync", 1, &[("flush.messages", "1")]).await;
    create_topic(&mut client, "async", 1, &[]).await;
    for topic in ["sync", "async"] {
        let response = client
            .send(
                produce_request(topic, 0, record_batch(3, Compression::Zstd, 1), 1),
                9,
            )
            .await
            .unwrap();
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    }
    let recovery_point = |topic: &str| {
        broker
            .broker
            .replicas
            .partition(&TopicPartition::new(topic, 0))
            .unwrap()
            .with_log(|log| (log.recovery_point(), log.log_end_offset()))
    };
    // With flush.messages=1 the recovery point (moved only after a successful fsync)
    // already covers the acknowledged batch; with the default policy it does not.
    assert_eq!(recovery_point("sync"), (3, 3));
    assert_eq!(recovery_point("async"), (0, 3));
}

#[tokio::test]
async fn concurrent_sync_producers_are_all_durable_when_acked() {
    let broker = TestBroker::start(&[("log.flush.interval.messages", "1")]).await;
    let mut admin = broker.client().await;
    create_topic(&mut admin, "group-commit", 1, &[]).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut client = broker.client().await;
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                let response = client
                    .send(
                        produce_request("group-commit", 0, record_batch(1, Compression::Lz4, 1), 1),
                        9,
                    )
                    .await
                    .unwrap();
                assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (recovery_point, log_end_offset) = broker
        .broker
        .replicas
        .partition(&TopicPartition::new("group-commit", 0))
        .unwrap()
        .with_log(|log| (log.recovery_point(), log.log_end_offset()));
    assert_eq!(log_end_offset, 160);
    assert_eq!(recovery_point, 160);
}

#[tokio::test]
async fn idempotent_retries_are_not_appended_twice() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "idem", 1, &[]).await;
    let producer_id = common::init_producer_id(&mut client).await;
    // (The crate's encoder writes one batch per record, so each request holds one record.)
    let first = with_producer(&record_batch(1, Compression::Snappy, 1), producer_id, 0, 0);
    let second = with_producer(&record_batch(1, Compression::Snappy, 1), producer_id, 0, 1);
    let offsets = |response: ProduceResponse| {
        let partition = &response.responses[0].partition_responses[0];
        (partition.error_code, partition.base_offset)
    };
    assert_eq!(
        offsets(
            client
                .send(produce_request("idem", 0, first.clone(), -1), 9)
                .await
                .unwrap()
        ),
        (0, 0)
    );
    assert_eq!(
        offsets(
            client
                .send(produce_request("idem", 0, second, -1), 9)
                .await
                .unwrap()
        ),
        (0, 1)
    );
    // A retry of the first batch gets its original offset and appends nothing.
    assert_eq!(
        offsets(
            client
                .send(produce_request("idem", 0, first.clone(), -1), 9)
                .await
                .unwrap()
        ),
        (0, 0)
    );
    // A gap in sequence numbers is refused.
    let gap = with_producer(&record_batch(1, Compression::Snappy, 1), producer_id, 0, 99);
    assert_eq!(
        offsets(client.send(produce_request("idem", 0, gap, -1), 9).await.unwrap()).0,
        45
    );
    let log_end_offset = broker
        .broker
        .replicas
        .partition(&TopicPartition::new("idem", 0))
        .unwrap()
        .with_log(|log| log.log_end_offset());
    assert_eq!(log_end_offset, 2);
    // Producer ids are never handed out twice.
    let again = client
        .send(
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_producer_id(ProducerId(-1)),
            4,
        )
        .await
        .unwrap();
    assert_ne!(*again.producer_id, producer_id);
    // After a restart the state comes back from the log (its shutdown snapshot): the
    // retry is still a duplicate, and the producer continues at its next sequence.
    drop(client);
    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, &[]).await;
    let mut client = broker.client().await;
    assert_eq!(
        offsets(
            client
                .send(produce_request("idem", 0, first, -1), 9)
                .await
                .unwrap()
        ),
        (0, 0)
    );
    let third = with_producer(&record_batch(1, Compression::Snappy, 1), producer_id, 0, 2);
    assert_eq!(
        offsets(
            client
                .send(produce_request("idem", 0, third, -1), 9)
                .await
                .unwrap()
        ),
        (0, 2)
    );
}

#[tokio::test]
async fn partitions_spread_over_log_dirs_and_reload_from_each() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let dirs = format!("{},{}", first.path().display(), second.path().display());
    let broker = TestBroker::start(&[("log.dirs", dirs.as_str())]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "spread", 4, &[]).await;
    let count = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().starts_with("spread-"))
            .count()
    };
    assert_eq!(
        (count(first.path()), count(second.path())),
        (2, 2),
        "least-loaded placement"
    );
    for partition in 0..4 {
        let records = record_batch(partition as usize + 1, Compression::Gzip, 1);
        let response = client
            .send(produce_request("spread", partition, records, 1), 9)
            .await
            .unwrap();
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    }
    drop(client);
    let unused = broker.stop().await;
    let broker = TestBroker::start_in(unused, &[("log.dirs", dirs.as_str())]).await;
    for partition in 0..4 {
        let log_end_offset = broker
            .broker
            .replicas
            .partition(&TopicPartition::new("spread", partition))
            .unwrap()
            .with_log(|log| log.log_end_offset());
        assert_eq!(log_end_offset, partition as i64 + 1);
    }
}
