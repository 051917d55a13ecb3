use super::*;
use proptest::prelude::*;

fn endpoint(port: u16) -> Endpoint {
    Endpoint {
        listener: "PLAINTEXT".into(),
        host: "127.0.0.1".into(),
        port,
        security_protocol: "PLAINTEXT".into(),
    }
}

fn register(broker_id: i32) -> MetadataRecord {
    MetadataRecord::RegisterBroker {
        broker_id,
        incarnation_id: uuid::Uuid::from_u128(broker_id as u128),
        endpoints: vec![endpoint(9000 + broker_id as u16)],
        rack: None,
        capacity: None,
    }
}

fn topic_id(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n + 1000)
}

fn topic_with_partitions(name: &str, id: uuid::Uuid, replicas: &[Vec<i32>]) -> Vec<MetadataRecord> {
    let mut records = vec![MetadataRecord::Topic {
        name: name.into(),
        topic_id: id,
    }];
    for (index, replicas) in replicas.iter().enumerate() {
        records.push(MetadataRecord::Partition {
            topic_id: id,
            partition: index as i32,
            replicas: replicas.clone(),
            isr: replicas.clone(),
            leader: replicas[0],
            leader_epoch: 0,
        });
    }
    records
}

#[test]
fn cluster_id_is_set_once() {
    let mut image = MetadataImage::empty();
    image.apply_batch(
        0,
        &[MetadataRecord::ClusterId {
            cluster_id: "a".into(),
        }],
    );
    image.apply_batch(
        1,
        &[MetadataRecord::ClusterId {
            cluster_id: "b".into(),
        }],
    );
    assert_eq!(image.cluster_id.as_deref(), Some("a"));
    assert_eq!(image.offset, 1);
}

#[test]
fn brokers_register_fenced_and_are_unfenced_and_fenced_by_epoch() {
    let mut image = MetadataImage::empty();
    image.apply_batch(5, &[register(1)]);
    let broker = &image.brokers[&1];
    assert!(broker.fenced);
    assert_eq!(broker.broker_epoch, 5);
    assert!(!image.is_live(1));
    // A stale epoch changes nothing.
    image.apply_batch(
        6,
        &[MetadataRecord::UnfenceBroker {
            broker_id: 1,
            broker_epoch: 4,
        }],
    );
    assert!(!image.is_live(1));
    image.apply_batch(
        7,
        &[MetadataRecord::UnfenceBroker {
            broker_id: 1,
            broker_epoch: 5,
        }],
    );
    assert!(image.is_live(1));
    assert_eq!(image.live_brokers().count(), 1);
    image.apply_batch(
        8,
        &[MetadataRecord::FenceBroker {
            broker_id: 1,
            broker_epoch: 5,
        }],
    );
    assert!(!image.is_live(1));
    // Re-registration starts a new epoch, fenced.
    image.apply_batch(9, &[register(1)]);
    assert_eq!(image.brokers[&1].broker_epoch, 9);
    assert!(image.brokers[&1].fenced);
}

#[test]
fn topics_partitions_configs_and_removal() {
    let mut image = MetadataImage::empty();
    let id = topic_id(1);
    image.apply_batch(0, &topic_with_partitions("t", id, &[vec![1, 2], vec![2, 1]]));
    let topic = image.topic("t").unwrap();
    assert_eq!(topic.n_partitions(), 2);
    assert_eq!(topic.replication_factor(), 2);
    assert_eq!(topic.partition(1).unwrap().leader, 2);
    assert_eq!(image.topic_by_id(id).unwrap().name, "t");
    // A second topic of the same name or id is skipped, with its partitions.
    image.apply_batch(1, &topic_with_partitions("t", topic_id(2), &[vec![3]]));
    image.apply_batch(2, &topic_with_partitions("u", id, &[vec![3]]));
    assert_eq!(image.topics.len(), 1);
    assert_eq!(image.topic("t").unwrap().n_partitions(), 2);
    // Partitions out of sequence are skipped; the next one is added.
    image.apply_batch(
        3,
        &[
            MetadataRecord::Partition {
                topic_id: id,
                partition: 5,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
            },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 2,
                replicas: vec![1, 2],
                isr: vec![1, 2],
                leader: 1,
                leader_epoch: 3,
            },
        ],
    );
    assert_eq!(image.topic("t").unwrap().n_partitions(), 3);
    assert_eq!(image.topic("t").unwrap().partitions[2].leader_epoch, 3);
    let configs = BTreeMap::from([("retention.ms".to_string(), "100".to_string())]);
    image.apply_batch(
        4,
        &[MetadataRecord::TopicConfigs {
            topic_id: id,
            configs: configs.clone(),
        }],
    );
    assert_eq!(image.topic("t").unwrap().configs, configs);
    image.apply_batch(5, &[MetadataRecord::RemoveTopic { topic_id: id }]);
    assert!(image.topic("t").is_none());
    assert!(image.topic_by_id(id).is_none());
    // The name is free again.
    image.apply_batch(6, &topic_with_partitions("t", topic_id(3), &[vec![1]]));
    assert_eq!(image.topic("t").unwrap().topic_id, topic_id(3));
}

#[test]
fn partition_changes_bump_epochs() {
    let mut image = MetadataImage::empty();
    let id = topic_id(1);
    image.apply_batch(0, &topic_with_partitions("t", id, &[vec![1, 2, 3]]));
    let change =
        |leader: Option<i32>, isr: Option<Vec<i32>>| MetadataRecord::partition_change(id, 0, leader, isr);
    image.apply_batch(1, &[change(None, Some(vec![1, 2]))]);
    let partition = image.topic("t").unwrap().partitions[0].clone();
    assert_eq!(
        (
            partition.leader,
            partition.leader_epoch,
            partition.partition_epoch
        ),
        (1, 0, 1)
    );
    assert_eq!(partition.isr, vec![1, 2]);
    image.apply_batch(2, &[change(Some(2), Some(vec![2]))]);
    let partition = image.topic("t").unwrap().partitions[0].clone();
    assert_eq!(
        (
            partition.leader,
            partition.leader_epoch,
            partition.partition_epoch
        ),
        (2, 1, 2)
    );
    // Naming the current leader again is not a leader change.
    image.apply_batch(3, &[change(Some(2), None)]);
    let partition = image.topic("t").unwrap().partitions[0].clone();
    assert_eq!((partition.leader_epoch, partition.partition_epoch), (1, 3));
    // Unknown partitions are skipped.
    image.apply_batch(4, &[MetadataRecord::partition_change(id, 9, Some(1), None)]);
    assert_eq!(image.topic("t").unwrap().partitions.len(), 1);
}

#[test]
fn producer_ids_only_move_forward() {
    let mut image = MetadataImage::empty();
    image.apply_batch(
        0,
        &[MetadataRecord::ProducerIds {
            broker_id: 1,
            next_producer_id: 1000,
        }],
    );
    image.apply_batch(
        1,
        &[MetadataRecord::ProducerIds {
            broker_id: 2,
            next_producer_id: 500,
        }],
    );
    assert_eq!(image.next_producer_id, 1000);
}

#[test]
fn canonical_dump_leaves_out_liveness() {
    let mut a = MetadataImage::empty();
    a.apply_batch(0, &[register(1)]);
    a.apply_batch(1, &topic_with_partitions("t", topic_id(1), &[vec![1]]));
    let mut b = a.clone();
    b.apply_batch(2, &[register(1)]);
    b.apply_batch(
        3,
        &[MetadataRecord::partition_change(
            topic_id(1),
            0,
            Some(NO_LEADER),
            None,
        )],
    );
    b.apply_batch(
        4,
        &[MetadataRecord::UnfenceBroker {
            broker_id: 1,
            broker_epoch: 2,
        }],
    );
    assert_ne!(a, b);
    assert_eq!(a.canonical_dump(), b.canonical_dump());
    assert!(a.canonical_dump().contains("partition 0 replicas=[1]"));
}

#[test]
fn topic_names() {
    assert!(validate_topic_name("a-b.c_d").is_ok());
    assert!(validate_topic_name("..").is_err());
    assert!(validate_topic_name("a b").is_err());
    assert!(validate_topic_name(&"x".repeat(250)).is_err());
}

fn any_record() -> impl Strategy<Value = MetadataRecord> {
    let broker = 0..4i32;
    let topic = 0..3u128;
    prop_oneof![
        broker.clone().prop_map(register),
        (broker.clone(), 0..12i64).prop_map(|(broker_id, broker_epoch)| MetadataRecord::FenceBroker {
            broker_id,
            broker_epoch
        }),
        (broker.clone(), 0..12i64).prop_map(|(broker_id, broker_epoch)| {
            MetadataRecord::UnfenceBroker {
                broker_id,
                broker_epoch,
            }
        }),
        (topic.clone(), 0..2u8).prop_map(|(n, name)| MetadataRecord::Topic {
            name: format!("t{name}"),
            topic_id: topic_id(n),
        }),
        (
            topic.clone(),
            0..3i32,
            proptest::collection::vec(broker.clone(), 1..3)
        )
            .prop_map(|(n, partition, replicas)| MetadataRecord::Partition {
                topic_id: topic_id(n),
                partition,
                isr: replicas.clone(),
                leader: replicas[0],
                replicas,
                leader_epoch: 0,
            }),
        (topic.clone(), 0..3i32, proptest::option::of(broker.clone())).prop_map(|(n, partition, leader)| {
            MetadataRecord::partition_change(
                topic_id(n),
                partition,
                leader,
                leader.map(|leader| vec![leader]),
            )
        }),
        topic.clone().prop_map(|n| MetadataRecord::RemoveTopic {
            topic_id: topic_id(n)
        }),
        (topic, 0..100i64).prop_map(|(n, ms)| MetadataRecord::TopicConfigs {
            topic_id: topic_id(n),
            configs: BTreeMap::from([("retention.ms".to_string(), ms.to_string())]),
        }),
        (broker, 0..5000i64).prop_map(|(broker_id, next_producer_id)| MetadataRecord::ProducerIds {
            broker_id,
            next_producer_id
        }),
    ]
}

proptest! {
    /// Applying batches one at a time, or restoring a snapshot taken at any point and
    /// replaying the rest, yields the same image.
    #[test]
    fn replay_from_a_snapshot_equals_incremental_apply(
        batches in proptest::collection::vec(proptest::collection::vec(any_record(), 1..4), 1..30),
        cut in 0usize..30,
    ) {
        let mut incremental = MetadataImage::empty();
        for (offset, batch) in batches.iter().enumerate() {
            incremental.apply_batch(offset as i64, batch);
        }
        let cut = cut.min(batches.len());
        let mut before = MetadataImage::empty();
        for (offset, batch) in batches[..cut].iter().enumerate() {
            before.apply_batch(offset as i64, batch);
        }
        let snapshot = serde_json::to_vec(&before).unwrap();
        let mut restored: MetadataImage = serde_json::from_slice(&snapshot).unwrap();
        for (offset, batch) in batches.iter().enumerate().skip(cut) {
            restored.apply_batch(offset as i64, batch);
        }
        prop_assert_eq!(&restored, &incremental);
        // The id index always matches the topics.
        prop_assert_eq!(incremental.topic_ids.len(), incremental.topics.len());
        for topic in incremental.topics.values() {
            prop_assert_eq!(incremental.topic_ids.get(&topic.topic_id), Some(&topic.name));
        }
    }
}
