//! Brokers of one cluster in this process, over real TCP: requests to a broker that
//! does not lead a partition are refused with the leader named (KIP-951).

mod common;

use common::{TestBroker, fetch_request, produce_request, record_batch, with_producer};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{CreateTopicsRequest, create_topics_request};
use kafka_protocol::records::Compression;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_refuses_produce_and_a_non_replica_refuses_fetch_naming_the_leader() {
    let nodes = TestBroker::start_cluster(2, &[]).await;
    let mut client = nodes[0].client().await;
    create_placed(&mut client, "led-by-2", &[2, 1]).await;
    let leader_port = nodes[1].address.port() as i32;
    // Node 1 follows: a produce there names node 2, with its endpoint (v10+).
    let response = client
        .send(
            produce_request("led-by-2", 0, record_batch(1, Compression::None, 1), 1),
            10,
        )
        .await
        .unwrap();
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, ResponseError::NotLeaderOrFollower.code());
    assert_eq!(
        (
            *partition.current_leader.leader_id,
            partition.current_leader.leader_epoch
        ),
        (2, 0)
    );
    assert_eq!(response.node_endpoints.len(), 1);
    assert_eq!(
        (
            *response.node_endpoints[0].node_id,
            response.node_endpoints[0].port
        ),
        (2, leader_port)
    );
    // Older versions have no such fields: just the error.
    let response = client
        .send(
            produce_request("led-by-2", 0, record_batch(1, Compression::None, 1), 1),
            9,
        )
        .await
        .unwrap();
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        ResponseError::NotLeaderOrFollower.code()
    );
    // The same for a consumer's fetch (v16+), through the zero-copy framing, at a
    // broker that holds no replica (a follower would serve it: KIP-392).
    create_placed(&mut client, "only-on-2", &[2]).await;
    let mut request = fetch_request("only-on-2", 0, 0);
    request.topics[0].topic_id = nodes[0].broker.topic("only-on-2").unwrap().topic_id;
    let response = client.send(request, 16).await.unwrap();
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, ResponseError::NotLeaderOrFollower.code());
    assert_eq!(*partition.current_leader.leader_id, 2);
    assert_eq!(
        (
            *response.node_endpoints[0].node_id,
            response.node_endpoints[0].port
        ),
        (2, leader_port)
    );
    // The leader takes the write (once it has applied the metadata that makes it
    // leader: metadata reaches nodes at their own pace), and its follower gets it.
    let led = nodes[1].broker.clone();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !led
        .replicas
        .partition(&ferrolog::log::TopicPartition::new("led-by-2", 0))
        .is_some_and(|partition| partition.is_leader())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node 2 never led the partition"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut leader = nodes[1].client().await;
    let response = leader
        .send(
            produce_request("led-by-2", 0, record_batch(3, Compression::None, 1), -1),
            9,
        )
        .await
        .unwrap();
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    let follower = nodes[0]
        .broker
        .replicas
        .partition(&ferrolog::log::TopicPartition::new("led-by-2", 0))
        .unwrap();
    assert_eq!(
        follower.with_log(|log| log.log_end_offset()),
        3,
        "acks=all waited for the follower"
    );
    for node in nodes {
        node.stop().await;
    }
}

/// Waits until `node` leads `topic`-0 by its applied metadata.
async fn wait_until_leading(node: &TestBroker, topic: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !node
        .broker
        .replicas
        .partition(&ferrolog::log::TopicPartition::new(topic, 0))
        .is_some_and(|partition| partition.is_leader())
    {
        assert!(tokio::time::Instant::now() < deadline, "node never led {topic}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_answers_a_retried_idempotent_batch_as_a_duplicate() {
    let nodes = TestBroker::start_cluster(2, &[]).await;
    let mut client = nodes[1].client().await;
    create_placed(&mut client, "retried", &[2, 1]).await;
    wait_until_leading(&nodes[1], "retried").await;
    let producer_id = common::init_producer_id(&mut client).await;
    let batch = |sequence| with_producer(&record_batch(1, Compression::Lz4, 1), producer_id, 0, sequence);
    let answer = |response: kafka_protocol::messages::ProduceResponse| {
        let partition = &response.responses[0].partition_responses[0];
        (partition.error_code, partition.base_offset)
    };
    for sequence in 0..3 {
        let response = client
            .send(produce_request("retried", 0, batch(sequence), -1), 9)
            .await
            .unwrap();
        assert_eq!(answer(response), (0, sequence as i64));
    }
    // Leadership moves to node 1 (a controlled shutdown of node 2), as if the answer
    // to the last batch had been lost and the producer retried it at the new leader.
    nodes[1].broker.controlled_shutdown().await;
    wait_until_leading(&nodes[0], "retried").await;
    let mut new_leader = nodes[0].client().await;
    let response = new_leader
        .send(produce_request("retried", 0, batch(2), -1), 9)
        .await
        .unwrap();
    assert_eq!(answer(response), (0, 2), "the retry is a duplicate at its offset");
    let response = new_leader
        .send(produce_request("retried", 0, batch(4), -1), 9)
        .await
        .unwrap();
    assert_eq!(
        answer(response).0,
        ResponseError::OutOfOrderSequenceNumber.code(),
        "the new leader knows the producer's sequence"
    );
    let partition = nodes[0]
        .broker
        .replicas
        .partition(&ferrolog::log::TopicPartition::new("retried", 0))
        .unwrap();
    assert_eq!(partition.with_log(|log| log.log_end_offset()), 3);
    for node in nodes {
        node.stop().await;
    }
}

/// Creates `topic` with one partition on `replicas` (the first leads) through `client`.
async fn create_placed(client: &mut common::Client, topic: &str, replicas: &[i32]) {
    let assignment = create_topics_request::CreatableReplicaAssignment::default()
        .with_partition_index(0)
        .with_broker_ids(replicas.iter().map(|id| (*id).into()).collect());
    let response = client
        .send(
            CreateTopicsRequest::default().with_topics(vec![
                create_topics_request::CreatableTopic::default()
                    .with_name(common::topic_name(topic))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
                    .with_assignments(vec![assignment]),
            ]),
            7,
        )
        .await
        .unwrap();
    assert_eq!(
        response.topics[0].error_code, 0,
        "{:?}",
        response.topics[0].error_message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_is_sent_to_the_replica_in_its_rack_and_reads_there() {
    let nodes = TestBroker::start_cluster(
        2,
        &[
            ("broker.rack", "rack-{id}"),
            (
                "replica.selector.class",
                "org.apache.kafka.common.replica.RackAwareReplicaSelector",
            ),
        ],
    )
    .await;
    let mut leader = nodes[0].client().await;
    create_placed(&mut leader, "racked", &[1, 2]).await;
    wait_until_leading(&nodes[0], "racked").await;
    let response = leader
        .send(
            produce_request("racked", 0, record_batch(3, Compression::None, 1), -1),
            9,
        )
        .await
        .unwrap();
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    let fetch = |rack: &str| {
        let mut request = fetch_request("racked", 0, 0);
        request.rack_id = kafka_protocol::protocol::StrBytes::from_string(rack.to_string());
        request
    };
    // The leader sends a consumer in rack-2 to node 2, with no records.
    let response = leader.send(fetch("rack-2"), 11).await.unwrap();
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    assert_eq!(*partition.preferred_read_replica, 2);
    assert!(
        partition
            .records
            .as_ref()
            .is_none_or(|records| records.is_empty())
    );
    // A consumer in its own rack, or with none, reads from the leader.
    for rack in ["rack-1", ""] {
        let response = leader.send(fetch(rack), 11).await.unwrap();
        let partition = &response.responses[0].partitions[0];
        assert_eq!(*partition.preferred_read_replica, -1);
        assert_eq!(record_count(partition.records.as_ref().unwrap()), 3);
    }
    // Node 2 serves the consumer up to its own high watermark, which reaches 3 with
    // its next fetch from the leader.
    let mut follower = nodes[1].client().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let response = follower.send(fetch("rack-2"), 11).await.unwrap();
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        assert_eq!(*partition.preferred_read_replica, -1);
        let records = partition.records.as_ref().map_or(0, record_count);
        assert!(
            records <= partition.high_watermark,
            "never past its high watermark"
        );
        if partition.high_watermark == 3 {
            assert_eq!(records, 3);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "follower high watermark stuck"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Before v11 a consumer may only read from the leader.
    let response = follower.send(fetch_request("racked", 0, 0), 10).await.unwrap();
    assert_eq!(
        response.responses[0].partitions[0].error_code,
        ResponseError::NotLeaderOrFollower.code()
    );
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_rack_aware_selector_every_consumer_reads_from_the_leader() {
    let nodes = TestBroker::start_cluster(2, &[("broker.rack", "rack-{id}")]).await;
    let mut leader = nodes[0].client().await;
    create_placed(&mut leader, "unracked", &[1, 2]).await;
    wait_until_leading(&nodes[0], "unracked").await;
    let response = leader
        .send(
            produce_request("unracked", 0, record_batch(2, Compression::None, 1), -1),
            9,
        )
        .await
        .unwrap();
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    let mut request = fetch_request("unracked", 0, 0);
    request.rack_id = kafka_protocol::protocol::StrBytes::from_static_str("rack-2");
    let response = leader.send(request, 11).await.unwrap();
    let partition = &response.responses[0].partitions[0];
    assert_eq!(*partition.preferred_read_replica, -1);
    assert_eq!(record_count(partition.records.as_ref().unwrap()), 2);
    for node in nodes {
        node.stop().await;
    }
}

/// How many records the batches hold.
fn record_count(records: &bytes::Bytes) -> i64 {
    ferrolog::log::batch::split_and_validate(records, usize::MAX)
        .unwrap()
        .iter()
        .map(|batch| batch.header.last_offset_delta as i64 + 1)
        .sum()
}

/// The node ids a Metadata answer from `node` names.
async fn listed_brokers(node: &TestBroker) -> Vec<i32> {
    let mut client = node.client().await;
    let response = client
        .send(kafka_protocol::messages::MetadataRequest::default(), 12)
        .await
        .unwrap();
    let mut ids: Vec<i32> = response.brokers.iter().map(|broker| broker.node_id.0).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_broker_still_names_itself_while_others_leave_it_out() {
    // A single node in controlled shutdown is fenced but still serves: clients must keep
    // a broker to ask (librdkafka forgets brokers missing from metadata).
    let single = TestBroker::start(&[]).await;
    let id = single.broker.config.node_id;
    let mut client = single.client().await;
    common::create_topic(&mut client, "drain", 1, &[]).await;
    single.broker.controlled_shutdown().await;
    let response = client
        .send(
            kafka_protocol::messages::MetadataRequest::default().with_topics(None),
            12,
        )
        .await
        .unwrap();
    assert_eq!(
        response.topics[0].partitions[0].leader_id.0, -1,
        "the shutdown moved leadership away"
    );
    assert_eq!(listed_brokers(&single).await, vec![id]);
    single.stop().await;

    // In a cluster, the others stop naming the draining broker; it names everyone.
    let nodes = TestBroker::start_cluster(3, &[]).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while listed_brokers(&nodes[1]).await != vec![1, 2, 3] {
        assert!(tokio::time::Instant::now() < deadline, "all three registered");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    nodes[0].broker.controlled_shutdown().await;
    while listed_brokers(&nodes[1]).await != vec![2, 3] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node 1 fenced at the others"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(listed_brokers(&nodes[0]).await, vec![1, 2, 3]);
    for node in nodes {
        node.stop().await;
    }
}

/// Offsets are committed for any partition the cluster has, not only those with a replica
/// on the coordinator's broker: with two single-replica topics on different nodes, one
/// of them always lives away from the group's coordinator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_coordinator_commits_offsets_of_partitions_it_does_not_host() {
    use kafka_protocol::messages::{
        FindCoordinatorRequest, GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName,
        offset_commit_request, offset_fetch_request,
    };
    use kafka_protocol::protocol::StrBytes;
    let nodes = TestBroker::start_cluster(2, &[]).await;
    let mut client = nodes[0].client().await;
    create_placed(&mut client, "on-1", &[1]).await;
    create_placed(&mut client, "on-2", &[2]).await;
    let group = GroupId(StrBytes::from_static_str("away"));
    let topics = ["on-1", "on-2"];
    let commit = OffsetCommitRequest::default()
        .with_group_id(group.clone())
        .with_generation_id_or_member_epoch(-1)
        .with_topics(
            topics
                .iter()
                .zip([7, 9])
                .map(|(topic, offset)| {
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_static_str(topic)))
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(offset),
                        ])
                })
                .collect(),
        );
    // The coordinator's offsets partition may still be loading: retry until it answers.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let (coordinator, codes) = loop {
        let found = client
            .send(FindCoordinatorRequest::default().with_key(group.0.clone()), 2)
            .await
            .unwrap();
        if found.error_code == 0 {
            let coordinator = nodes
                .iter()
                .find(|node| i32::from(node.address.port()) == found.port)
                .expect("the coordinator is one of the nodes");
            let mut at_coordinator = coordinator.client().await;
            let response = at_coordinator.send(commit.clone(), 8).await.unwrap();
            let codes: Vec<i16> = response
                .topics
                .iter()
                .map(|topic| topic.partitions[0].error_code)
                .collect();
            let retriable = [
                ResponseError::CoordinatorLoadInProgress.code(),
                ResponseError::NotCoordinator.code(),
                ResponseError::CoordinatorNotAvailable.code(),
            ];
            if !codes.iter().any(|code| retriable.contains(code)) {
                break (at_coordinator, codes);
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no coordinator answered");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(codes, vec![0, 0], "both partitions' offsets are committed");
    let mut coordinator = coordinator;
    let fetched = coordinator
        .send(
            OffsetFetchRequest::default()
                .with_group_id(group)
                .with_topics(Some(
                    topics
                        .iter()
                        .map(|topic| {
                            offset_fetch_request::OffsetFetchRequestTopic::default()
                                .with_name(TopicName(StrBytes::from_static_str(topic)))
                                .with_partition_indexes(vec![0])
                        })
                        .collect(),
                )),
            7,
        )
        .await
        .unwrap();
    let offsets: Vec<(String, i64)> = fetched
        .topics
        .iter()
        .map(|topic| (topic.name.to_string(), topic.partitions[0].committed_offset))
        .collect();
    assert_eq!(offsets, vec![("on-1".to_string(), 7), ("on-2".to_string(), 9)]);
    for node in nodes {
        node.stop().await;
    }
}
