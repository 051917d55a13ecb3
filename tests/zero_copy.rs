//! The zero-copy fetch path: byte-identical to the copying path, correct while retention
//! deletes the segment being sent, and a slow reader never holds back a fast one.

mod common;

use bytes::Bytes;
use common::{Client, TestBroker, create_topic, large_batch, produce_request, record_batch, topic_name};
use ferrolog::log::TopicPartition;
use ferrolog::server::ServerOptions;
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn produce(client: &mut Client, topic: &str, partition: i32, records: Bytes) {
    let response = client
        .send(produce_request(topic, partition, records, 1), 9)
        .await
        .unwrap();
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

fn fetch(
    name: &str,
    topic_id: uuid::Uuid,
    offsets: &[(i32, i64)],
    max_bytes: i32,
    version: i16,
) -> FetchRequest {
    let topic = fetch_request::FetchTopic::default().with_partitions(
        offsets
            .iter()
            .map(|(partition, offset)| {
                fetch_request::FetchPartition::default()
                    .with_partition(*partition)
                    .with_fetch_offset(*offset)
                    .with_partition_max_bytes(max_bytes)
            })
            .collect(),
    );
    let topic = if version >= 13 {
        topic.with_topic_id(topic_id)
    } else {
        topic.with_topic(topic_name(name))
    };
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![topic])
}

/// Sends a request and returns the raw response frame.
async fn raw(client: &mut Client, request: &FetchRequest, version: i16) -> Bytes {
    let frame = client.encode_request(request, version);
    client.stream.write_all(&frame).await.unwrap();
    client.read_frame().await.unwrap()
}

#[tokio::test]
async fn zero_copy_responses_are_byte_identical_to_copying_ones() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "same", 2, &[("segment.bytes", "2000")]).await;
    for round in 0..6 {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            produce(
                &mut client,
                "same",
                round % 2,
                record_batch(7, compression, round as i64),
            )
            .await;
        }
    }
    let n_segments = broker
        .broker
        .replicas
        .partition(&TopicPartition::new("same", 0))
        .unwrap()
        .with_log(|log| log.n_segments());
    assert!(n_segments > 3, "the data spans segments: {n_segments}");
    let topic_id = broker.broker.topic("same").unwrap().topic_id;
    let zero_copy = broker.extra_listener(ServerOptions { zero_copy: true }).await;
    let copying = broker.extra_listener(ServerOptions { zero_copy: false }).await;
    let mut zero_copy = Client::connect(zero_copy).await;
    let mut copying = Client::connect(copying).await;
    let mut compared = 0;
    for version in 4..=18 {
        for offset in [0, 7, 20, 34, 70, 104] {
            for max_bytes in [1, 3000, 1 << 20] {
                let request = fetch(
                    "same",
                    topic_id,
                    &[(0, offset), (1, offset / 2)],
                    max_bytes,
                    version,
                );
                let a = raw(&mut zero_copy, &request, version).await;
                let b = raw(&mut copying, &request, version).await;
                assert_eq!(a, b, "v{version} offset {offset} max {max_bytes}");
                compared += a.len();
            }
        }
    }
    assert!(compared > 100_000);
}

#[tokio::test]
async fn a_response_stays_correct_while_retention_deletes_its_segments() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    let configs = [("segment.bytes", "16777216"), ("max.message.bytes", "2000000")];
    create_topic(&mut client, "doomed", 2, &configs).await;
    for _ in 0..24 {
        produce(&mut client, "doomed", 0, large_batch(1, 900_000)).await;
    }
    let topic_id = broker.broker.topic("doomed").unwrap().topic_id;
    let request = fetch("doomed", topic_id, &[(0, 0)], 64 << 20, 12);
    // The expected bytes, through the copying path, before anything is deleted.
    let copying = broker.extra_listener(ServerOptions { zero_copy: false }).await;
    let expected = raw(&mut Client::connect(copying).await, &request, 12).await;
    assert!(expected.len() > 12 << 20, "{}", expected.len());

    // A reader that sends the fetch and does not read: the broker's sendfile stalls on
    // the full socket with most of the data still unsent.
    let zero_copy = broker.extra_listener(ServerOptions { zero_copy: true }).await;
    let mut slow = Client::connect(zero_copy).await;
    let frame = slow.encode_request(&request, 12);
    slow.stream.write_all(&frame).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let partition = broker
        .broker
        .replicas
        .partition(&TopicPartition::new("doomed", 0))
        .unwrap();
    let deleted = partition.with_log(|log| {
        let mut config = log.config().clone();
        config.retention_bytes = 0;
        log.set_config(config);
        log.apply_retention(0).unwrap()
    });
    assert!(deleted >= 1, "retention deleted the segment being sent");
    let got = slow.read_frame().await.unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the response is unchanged by the deletion");
}

#[tokio::test]
async fn slow_readers_do_not_hold_back_a_fast_one() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "shared", 2, &[("max.message.bytes", "2000000")]).await;
    for _ in 0..10 {
        produce(&mut client, "shared", 0, large_batch(1, 900_000)).await;
    }
    let topic_id = broker.broker.topic("shared").unwrap().topic_id;
    // Twenty readers ask for ~9 MB each and never read their sockets.
    let big = fetch("shared", topic_id, &[(0, 0)], 64 << 20, 12);
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut reader = broker.client().await;
        let frame = reader.encode_request(&big, 12);
        reader.stream.write_all(&frame).await.unwrap();
        slow.push(reader);
    }
    // Meanwhile a fast client produces and fetches a hundred times.
    for round in 0..100 {
        produce(
            &mut client,
            "shared",
            1,
            record_batch(1, Compression::None, round),
        )
        .await;
        let response = client
            .send(fetch("shared", topic_id, &[(1, round)], 1 << 20, 12), 12)
            .await
            .unwrap();
        let records = response.responses[0].partitions[0].records.clone().unwrap();
        assert!(!records.is_empty(), "round {round}");
    }
    // The slow readers' responses are still there to read, whole.
    let mut first = slow.remove(0);
    let mut size = [0u8; 4];
    first.stream.read_exact(&mut size).await.unwrap();
    let size = i32::from_be_bytes(size);
    assert!(size > 9_000_000, "{size}");
}
