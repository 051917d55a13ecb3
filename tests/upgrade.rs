//! A data directory written by the single-node version (topics in
//! `cluster-metadata.yaml`) opens with its topics, ids, configs, records and committed
//! offsets. `tests/fixtures/single-node-data` was written by that version: topic
//! `legacy` (2 partitions, `retention.ms=604800001`, records `k0..k9`/`v0..v9` spread
//! over the partitions), group `legacy-group` with offsets 3 and 4 committed, and
//! `__consumer_offsets` with 3 partitions; then a clean shutdown.

mod common;

use common::{TestBroker, fetch_request};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use std::path::Path;

const LEGACY_TOPIC_ID: &str = "75ecb78b-be89-490d-af12-463f83d19c7f";
const LEGACY_CLUSTER_ID: &str = "PHxrQH6mQ2-2mprJxyS1Fw";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

async fn check_everything_is_there(broker: &TestBroker) {
    assert_eq!(broker.broker.cluster_id, LEGACY_CLUSTER_ID);
    let topic = broker.broker.topic("legacy").expect("the topic is carried over");
    assert_eq!(topic.topic_id.to_string(), LEGACY_TOPIC_ID);
    assert_eq!(topic.n_partitions(), 2);
    assert_eq!(
        topic.configs.get("retention.ms").map(String::as_str),
        Some("604800001")
    );
    assert_eq!(
        broker
            .broker
            .topic("__consumer_offsets")
            .map(|t| t.n_partitions()),
        Some(3)
    );
    let mut client = broker.client().await;
    let mut values = Vec::new();
    for partition in 0..2 {
        let response = client
            .send(fetch_request("legacy", partition, 0), 12)
            .await
            .unwrap();
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0);
        assert_eq!(data.high_watermark, 5);
        let mut records = data.records.clone().expect("records");
        for record in RecordBatchDecoder::decode(&mut records).unwrap().records {
            values.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
        }
    }
    values.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    expected.sort();
    assert_eq!(values, expected);
    let response = client
        .send(
            OffsetFetchRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("legacy-group")))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_static_str("legacy")))
                        .with_partition_indexes(vec![0, 1]),
                ])),
            7,
        )
        .await
        .unwrap();
    assert_eq!(response.error_code, 0);
    let committed: Vec<(i32, i64)> = response.topics[0]
        .partitions
        .iter()
        .map(|partition| (partition.partition_index, partition.committed_offset))
        .collect();
    assert_eq!(committed, vec![(0, 3), (1, 4)]);
}

#[tokio::test]
async fn a_single_node_data_dir_opens_with_its_topics_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/single-node-data"),
        dir.path(),
    );
    let broker = TestBroker::start_in(dir, &[]).await;
    check_everything_is_there(&broker).await;
    let data = broker.dir.path().to_path_buf();
    assert!(!data.join("cluster-metadata.yaml").exists());
    assert!(data.join("cluster-metadata.yaml.migrated").exists());
    // Once carried over, the metadata lives in the quorum's log: a restart keeps it.
    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, &[]).await;
    check_everything_is_there(&broker).await;
    let image = broker.broker.image();
    assert_eq!(image.topics.len(), 2, "carried over once, not twice");
    broker.stop().await;
}
