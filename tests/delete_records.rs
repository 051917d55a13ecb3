//! DeleteRecords over real TCP: the log start moves, reads below it are out of range,
//! the new start survives a restart, and followers follow before the answer.

mod common;

use common::{TestBroker, create_topic, fetch_request, produce_request, record_batch, topic_name};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, delete_records_request,
    list_offsets_request,
};
use kafka_protocol::records::Compression;

fn delete_request(topic: &str, partitions: &[(i32, i64)]) -> DeleteRecordsRequest {
    DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            delete_records_request::DeleteRecordsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|(partition, offset)| {
                            delete_records_request::DeleteRecordsPartition::default()
                                .with_partition_index(*partition)
                                .with_offset(*offset)
                        })
                        .collect(),
                ),
        ])
}

/// (low watermark, error code) per partition, in request order.
fn results(response: &DeleteRecordsResponse) -> Vec<(i64, i16)> {
    response.topics[0]
        .partitions
        .iter()
        .map(|partition| (partition.low_watermark, partition.error_code))
        .collect()
}

async fn earliest(client: &mut common::Client, topic: &str) -> i64 {
    let request = ListOffsetsRequest::default().with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default().with_timestamp(-2),
            ]),
    ]);
    let response = client.send(request, 7).await.unwrap();
    response.topics[0].partitions[0].offset
}

async fn fetch_code(client: &mut common::Client, topic: &str, offset: i64) -> i16 {
    let response = client.send(fetch_request(topic, 0, offset), 12).await.unwrap();
    response.responses[0].partitions[0].error_code
}

#[tokio::test]
async fn deleted_records_are_out_of_range_and_stay_deleted_after_a_restart() {
    let broker = TestBroker::start(&[("log.segment.bytes", "1024")]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "trimmed", 2, &[]).await;
    for _ in 0..6 {
        let response = client
            .send(
                produce_request("trimmed", 0, record_batch(10, Compression::None, 100), 1),
                9,
            )
            .await
            .unwrap();
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    }
    let response = client
        .send(delete_request("trimmed", &[(0, 25), (1, 5), (7, 1)]), 2)
        .await
        .unwrap();
    assert_eq!(
        results(&response),
        vec![
            (25, 0),
            (-1, ResponseError::OffsetOutOfRange.code()),
            (-1, ResponseError::UnknownTopicOrPartition.code()),
        ],
        "partition 1 is empty: 5 is above its high watermark"
    );
    assert_eq!(earliest(&mut client, "trimmed").await, 25);
    assert_eq!(
        fetch_code(&mut client, "trimmed", 24).await,
        ResponseError::OffsetOutOfRange.code()
    );
    assert_eq!(fetch_code(&mut client, "trimmed", 25).await, 0);
    let partition = broker
        .broker
        .replicas
        .partition(&ferrolog::log::TopicPartition::new("trimmed", 0))
        .unwrap();
    assert!(
        partition.with_log(|log| log.n_segments()) < 6,
        "segments wholly below the start were deleted"
    );
    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, &[("log.segment.bytes", "1024")]).await;
    let mut client = broker.client().await;
    assert_eq!(
        earliest(&mut client, "trimmed").await,
        25,
        "the start survives a restart"
    );
    assert_eq!(
        fetch_code(&mut client, "trimmed", 24).await,
        ResponseError::OffsetOutOfRange.code()
    );
    // -1 deletes up to the high watermark.
    let response = client
        .send(delete_request("trimmed", &[(0, -1)]), 0)
        .await
        .unwrap();
    assert_eq!(results(&response), vec![(60, 0)]);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_comes_once_the_follower_has_deleted_too() {
    let nodes = TestBroker::start_cluster(2, &[("replica.fetch.wait.max.ms", "100")]).await;
    let mut client = nodes[0].client().await;
    let request = kafka_protocol::messages::CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name(topic_name("replicated"))
                .with_num_partitions(1)
                .with_replication_factor(2),
        ]);
    let response = client.send(request, 7).await.unwrap();
    assert_eq!(response.topics[0].error_code, 0);
    let topic_partition = ferrolog::log::TopicPartition::new("replicated", 0);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let (leader, follower) = loop {
        let leads = |index: usize| {
            nodes[index]
                .broker
                .replicas
                .partition(&topic_partition)
                .is_some_and(|partition| partition.is_leader())
        };
        if leads(0) {
            break (&nodes[0], &nodes[1]);
        }
        if leads(1) {
            break (&nodes[1], &nodes[0]);
        }
        assert!(tokio::time::Instant::now() < deadline, "a leader");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let mut client = leader.client().await;
    for _ in 0..3 {
        let response = client
            .send(
                produce_request("replicated", 0, record_batch(10, Compression::Lz4, 50), -1),
                9,
            )
            .await
            .unwrap();
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    }
    let response = client
        .send(delete_request("replicated", &[(0, 17)]), 2)
        .await
        .unwrap();
    assert_eq!(results(&response), vec![(17, 0)]);
    let follower_start = follower
        .broker
        .replicas
        .partition(&topic_partition)
        .unwrap()
        .with_log(|log| log.log_start_offset());
    assert_eq!(follower_start, 17, "the low watermark counts the follower");
    for node in nodes {
        node.stop().await;
    }
}
