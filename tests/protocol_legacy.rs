//! The request versions Kafka 4.0 dropped that old clients still send (OffsetCommit
//! v0–1, OffsetFetch v0, DescribeConfigs v0, CreateTopics v0–1, DeleteTopics v0,
//! ListOffsets v0), encoded and decoded with the codec release that still knows them,
//! over real TCP: each answers as the client's version expects.

mod common;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::{TestBroker, create_topic, produce_request, record_batch};
use kafka_protocol::records::Compression;
use kafka_protocol_legacy::messages::*;
use kafka_protocol_legacy::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one request with the legacy codec (header v1) and decodes the answer at the
/// same version (response header v0).
async fn call<Req: Encodable, Resp: Decodable>(
    stream: &mut tokio::net::TcpStream,
    key: i16,
    version: i16,
    request: &Req,
) -> Resp {
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    frame.put_i16(key);
    frame.put_i16(version);
    frame.put_i32(7);
    frame.put_i16(6);
    frame.put_slice(b"sarama");
    request.encode(&mut frame, version).expect("encode");
    let length = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    stream.write_all(&frame).await.expect("send");
    let size = stream.read_i32().await.expect("answer");
    let mut body = vec![0u8; size as usize];
    stream.read_exact(&mut body).await.expect("answer body");
    let mut body = Bytes::from(body);
    assert_eq!(body.get_i32(), 7, "correlation id");
    let response = Resp::decode(&mut body, version).expect("decode");
    assert!(!body.has_remaining(), "{} bytes left over", body.remaining());
    response
}

fn name(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

#[tokio::test]
async fn old_client_versions_answer_as_their_version_expects() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "legacy", 1, &[]).await;
    let produced = client
        .send(
            produce_request("legacy", 0, record_batch(5, Compression::None, 10), -1),
            9,
        )
        .await
        .unwrap();
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    let stream = &mut client.stream;

    // CreateTopics v0 and v1 (v1 carries an error message).
    for version in [0, 1] {
        let topic = format!("created-v{version}");
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![
                create_topics_request::CreatableTopic::default()
                    .with_name(TopicName(name(&topic)))
                    .with_num_partitions(2)
                    .with_replication_factor(1),
            ]);
        let response: CreateTopicsResponse = call(stream, 19, version, &request).await;
        assert_eq!(response.topics[0].error_code, 0, "v{version}");
        let again: CreateTopicsResponse = call(stream, 19, version, &request).await;
        assert_eq!(again.topics[0].error_code, 36, "v{version}: TOPIC_ALREADY_EXISTS");
        if version == 1 {
            assert!(again.topics[0].error_message.is_some());
        }
    }

    // ListOffsets v0: the answer is a list of offsets.
    for (timestamp, expected) in [(-1i64, 5i64), (-2, 0)] {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(TopicName(name("legacy")))
                    .with_partitions(vec![
                        list_offsets_request::ListOffsetsPartition::default()
                            .with_partition_index(0)
                            .with_timestamp(timestamp)
                            .with_max_num_offsets(1),
                    ]),
            ]);
        let response: ListOffsetsResponse = call(stream, 2, 0, &request).await;
        let partition = &response.topics[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        assert_eq!(
            partition.old_style_offsets,
            vec![expected],
            "timestamp {timestamp}"
        );
    }

    // OffsetCommit v0 (standalone) and v1, read back by OffsetFetch v0.
    for (version, offset) in [(0i16, 3i64), (1, 4)] {
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(name("old-group")))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(TopicName(name("legacy")))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(offset)
                            .with_commit_timestamp(if version == 1 { 1_700_000_000_000 } else { -1 }),
                    ]),
            ]);
        let response: OffsetCommitResponse = call(stream, 8, version, &request).await;
        assert_eq!(response.topics[0].partitions[0].error_code, 0, "v{version}");
        let fetch = OffsetFetchRequest::default()
            .with_group_id(GroupId(name("old-group")))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(TopicName(name("legacy")))
                    .with_partition_indexes(vec![0]),
            ]));
        let fetched: OffsetFetchResponse = call(stream, 9, 0, &fetch).await;
        let partition = &fetched.topics[0].partitions[0];
        assert_eq!(
            (partition.error_code, partition.committed_offset),
            (0, offset),
            "after v{version}"
        );
    }

    // DescribeConfigs v0: defaults say so through is_default.
    let request = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(name("legacy"))
            .with_configuration_keys(Some(vec![name("retention.ms"), name("cleanup.policy")])),
    ]);
    let response: DescribeConfigsResponse = call(stream, 32, 0, &request).await;
    let result = &response.results[0];
    assert_eq!(result.error_code, 0);
    assert_eq!(result.configs.len(), 2);
    assert!(
        result.configs.iter().all(|config| config.is_default),
        "{:?}",
        result.configs
    );

    // DeleteTopics v0.
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topic_names(vec![TopicName(name("created-v0"))]);
    let response: DeleteTopicsResponse = call(stream, 20, 0, &request).await;
    assert_eq!(response.responses[0].error_code, 0);
    assert!(broker.broker.topic("created-v0").is_none());
}
