use super::*;
use crate::cluster::image::MetadataRecord;
use crate::cluster::partition_change::ClusterPolicy;

/// Brokers 1-3 registered, `live` of them unfenced; topic "t" with one partition of
/// replicas [1, 2, 3], leader `leader`, ISR `isr`.
fn image(live: &[i32], leader: i32, isr: Vec<i32>) -> MetadataImage {
    let mut image = crate::cluster::test_images::brokers(1..=3, live);
    let topic_id = uuid::Uuid::from_u128(7);
    image.apply_batch(
        20,
        &[
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id,
            },
            MetadataRecord::Partition {
                topic_id,
                partition: 0,
                replicas: vec![1, 2, 3],
                isr,
                leader,
                leader_epoch: 3,
            },
        ],
    );
    image
}

fn applied(mut image: MetadataImage, record: Option<MetadataRecord>) -> (i32, Vec<i32>, i32) {
    image.apply_batch(30, &record.into_iter().collect::<Vec<_>>());
    let partition = &image.topic("t").unwrap().partitions[0];
    (partition.leader, partition.isr.clone(), partition.leader_epoch)
}

#[test]
fn preferred_election_moves_leadership_back_to_the_first_replica() {
    let before = image(&[1, 2, 3], 2, vec![1, 2, 3]);
    let (outcome, record) = elect(
        &before,
        "t",
        0,
        ElectionType::Preferred,
        &ClusterPolicy::default(),
    );
    assert_eq!(outcome, ElectionOutcome::Elected);
    assert_eq!(applied(before, record), (1, vec![1, 2, 3], 4));
}

#[test]
fn preferred_election_needs_the_first_replica_in_sync_and_live() {
    let leads = image(&[1, 2, 3], 1, vec![1, 2, 3]);
    assert_eq!(
        elect(&leads, "t", 0, ElectionType::Preferred, &ClusterPolicy::default()),
        (ElectionOutcome::NotNeeded, None)
    );
    let out_of_sync = image(&[1, 2, 3], 2, vec![2, 3]);
    assert_eq!(
        elect(
            &out_of_sync,
            "t",
            0,
            ElectionType::Preferred,
            &ClusterPolicy::default()
        ),
        (ElectionOutcome::PreferredNotAvailable, None)
    );
    let fenced = image(&[2, 3], 2, vec![1, 2, 3]);
    assert_eq!(
        elect(
            &fenced,
            "t",
            0,
            ElectionType::Preferred,
            &ClusterPolicy::default()
        ),
        (ElectionOutcome::PreferredNotAvailable, None)
    );
    assert_eq!(
        elect(
            &fenced,
            "t",
            1,
            ElectionType::Preferred,
            &ClusterPolicy::default()
        ),
        (ElectionOutcome::UnknownPartition, None)
    );
    assert_eq!(
        elect(
            &fenced,
            "u",
            0,
            ElectionType::Preferred,
            &ClusterPolicy::default()
        ),
        (ElectionOutcome::UnknownPartition, None)
    );
}

#[test]
fn unclean_election_only_for_a_leaderless_partition_and_prefers_the_isr() {
    let led = image(&[1, 2, 3], 2, vec![2]);
    assert_eq!(
        elect(&led, "t", 0, ElectionType::Unclean, &ClusterPolicy::default()),
        (ElectionOutcome::NotNeeded, None)
    );
    // The last ISR member (1) is down; 3 is live but out of sync: it leads alone.
    let leaderless = image(&[3], NO_LEADER, vec![1]);
    let (outcome, record) = elect(
        &leaderless,
        "t",
        0,
        ElectionType::Unclean,
        &ClusterPolicy::default(),
    );
    assert_eq!(outcome, ElectionOutcome::Elected);
    assert_eq!(applied(leaderless, record), (3, vec![3], 4));
    // An ISR member is live: a clean choice, ISR kept.
    let clean = image(&[2, 3], NO_LEADER, vec![2, 3]);
    let (outcome, record) = elect(&clean, "t", 0, ElectionType::Unclean, &ClusterPolicy::default());
    assert_eq!(outcome, ElectionOutcome::Elected);
    assert_eq!(applied(clean, record), (2, vec![2, 3], 4));
    let nobody = image(&[], NO_LEADER, vec![1]);
    assert_eq!(
        elect(&nobody, "t", 0, ElectionType::Unclean, &ClusterPolicy::default()),
        (ElectionOutcome::EligibleNotAvailable, None)
    );
}

/// Topic "r" with partitions led by `leaders`, partition i's replicas rotated from
/// [1, 2, 3] (preferred 1, 2, 3, 1, ...), the ISR all three unless `isr` says.
fn spread(leaders: &[i32], isr: Option<Vec<i32>>) -> MetadataImage {
    let mut image = crate::cluster::test_images::brokers(1..=3, &[1, 2, 3]);
    let topic_id = uuid::Uuid::from_u128(9);
    let mut records = vec![MetadataRecord::Topic {
        name: "r".into(),
        topic_id,
    }];
    for (index, leader) in leaders.iter().enumerate() {
        let mut replicas = vec![1, 2, 3];
        replicas.rotate_left(index % 3);
        records.push(MetadataRecord::Partition {
            topic_id,
            partition: index as i32,
            replicas,
            isr: isr.clone().unwrap_or(vec![1, 2, 3]),
            leader: *leader,
            leader_epoch: 1,
        });
    }
    image.apply_batch(20, &records);
    image
}

fn leaders_after(mut image: MetadataImage, records: Vec<MetadataRecord>) -> Vec<i32> {
    image.apply_batch(30, &records);
    image
        .topic("r")
        .unwrap()
        .partitions
        .iter()
        .map(|p| p.leader)
        .collect()
}

#[test]
fn rebalance_gives_a_returned_broker_its_preferred_partitions_back() {
    // Broker 1 came back: the partitions it prefers (0 and 3) are led by 2 and 3.
    let before = spread(&[2, 2, 3, 3, 2, 3], None);
    let records = rebalance(&before, 10, &ClusterPolicy::default());
    assert_eq!(records.len(), 2);
    assert_eq!(leaders_after(before, records), vec![1, 2, 3, 1, 2, 3]);
    // Balanced: nothing to do.
    let balanced = spread(&[1, 2, 3, 1, 2, 3], None);
    assert!(rebalance(&balanced, 10, &ClusterPolicy::default()).is_empty());
}

#[test]
fn rebalance_waits_for_the_threshold_and_the_isr() {
    // Broker 1 prefers 10 partitions (0, 3, ..., 27) and leads all but one: 10 % is
    // not above a 10 % threshold, but is above 5 %.
    let mut leaders: Vec<i32> = (0..30).map(|i| (i % 3) + 1).collect();
    leaders[3] = 2;
    let before = spread(&leaders, None);
    assert!(rebalance(&before, 10, &ClusterPolicy::default()).is_empty());
    assert_eq!(rebalance(&before, 5, &ClusterPolicy::default()).len(), 1);
    // Out of the ISR: not elected, however imbalanced.
    let out_of_sync = spread(&[2, 2, 3], Some(vec![2, 3]));
    assert!(rebalance(&out_of_sync, 10, &ClusterPolicy::default()).is_empty());
}
