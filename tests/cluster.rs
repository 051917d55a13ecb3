//! Brokers of one cluster in this process, over real TCP: requests to a broker that
//! does not lead a partition are refused with the leader named (KIP-951).

mod common;

use common::{TestBroker, fetch_request, produce_request, record_batch, with_producer};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{CreateTopicsRequest, create_topics_request};
use kafka_protocol::records::Compression;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_refuses_produce_and_fetch_and_names_the_leader() {
    let nodes = TestBroker::start_cluster(2, &[]).await;
    let mut client = nodes[0].client().await;
    let assignment = create_topics_request::CreatableReplicaAssignment::default()
        .with_partition_index(0)
        .with_broker_ids(vec![2.into(), 1.into()]);
    let response = client
        .send(
            CreateTopicsRequest::default().with_topics(vec![
                create_topics_request::CreatableTopic::default()
                    .with_name(common::topic_name("led-by-2"))
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
    // The same for a consumer's fetch (v16+), through the zero-copy framing.
    let mut request = fetch_request("led-by-2", 0, 0);
    request.topics[0].topic_id = nodes[0].broker.topic("led-by-2").unwrap().topic_id;
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
        .partition(&ferrolog::log::TopicPartition::new(topic, 0))
        .is_some_and(|partition| partition.is_leader())
    {
        assert!(tokio::time::Instant::now() < deadline, "node never led {topic}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_answers_a_retried_idempotent_batch_as_a_duplicate() {
    use kafka_protocol::messages::{InitProducerIdRequest, ProducerId};
    let nodes = TestBroker::start_cluster(2, &[]).await;
    let mut client = nodes[1].client().await;
    let assignment = create_topics_request::CreatableReplicaAssignment::default()
        .with_partition_index(0)
        .with_broker_ids(vec![2.into(), 1.into()]);
    let response = client
        .send(
            CreateTopicsRequest::default().with_topics(vec![
                create_topics_request::CreatableTopic::default()
                    .with_name(common::topic_name("retried"))
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
    wait_until_leading(&nodes[1], "retried").await;
    let init = client
        .send(
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
            4,
        )
        .await
        .unwrap();
    assert_eq!(init.error_code, 0);
    let producer_id = *init.producer_id;
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
        .partition(&ferrolog::log::TopicPartition::new("retried", 0))
        .unwrap();
    assert_eq!(partition.with_log(|log| log.log_end_offset()), 3);
    for node in nodes {
        node.stop().await;
    }
}
