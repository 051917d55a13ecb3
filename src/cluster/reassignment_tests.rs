use super::*;
use crate::cluster::commands::alter_partition;
use crate::cluster::image::MetadataRecord;

const TOPIC_ID: uuid::Uuid = uuid::Uuid::from_u128(9);

/// Brokers 1-4 registered and live; topic "t" with one partition of `replicas`, all in
/// sync, led by the first.
fn image(replicas: Vec<i32>) -> MetadataImage {
    let mut image = crate::cluster::test_images::brokers(1..=4, &[1, 2, 3, 4]);
    image.apply_batch(
        20,
        &[
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id: TOPIC_ID,
            },
            MetadataRecord::Partition {
                topic_id: TOPIC_ID,
                partition: 0,
                leader: replicas[0],
                isr: replicas.clone(),
                replicas,
                leader_epoch: 0,
            },
        ],
    );
    image
}

fn apply(image: &mut MetadataImage, records: Vec<MetadataRecord>) -> &PartitionRegistration {
    let offset = image.offset + 1;
    image.apply_batch(offset, &records);
    &image.topic("t").unwrap().partitions[0]
}

/// The leader's AlterPartition adding `member` to the ISR.
fn caught_up(image: &MetadataImage, member: i32) -> Vec<MetadataRecord> {
    let partition = &image.topic("t").unwrap().partitions[0];
    let mut isr = partition.isr.clone();
    isr.push(member);
    alter_partition(
        image,
        partition.leader,
        TOPIC_ID,
        0,
        partition.leader_epoch,
        partition.partition_epoch,
        &isr,
        &crate::cluster::partition_change::ClusterPolicy::default(),
    )
    .unwrap()
}

#[test]
fn a_larger_replication_factor_adds_replicas_that_join_once_caught_up() {
    let mut image = image(vec![1]);
    let records = reassign(&image, "t", 0, Some(&[1, 2, 3])).unwrap();
    let partition = apply(&mut image, records).clone();
    assert_eq!(partition.replicas, vec![1, 2, 3]);
    assert_eq!(partition.adding_replicas, vec![2, 3]);
    assert!(partition.removing_replicas.is_empty());
    assert_eq!((partition.leader, partition.isr.clone()), (1, vec![1]));
    assert_eq!(ongoing(&image, None).len(), 1);
    // One caught up: still under way.
    let records = caught_up(&image, 2);
    assert_eq!(apply(&mut image, records).adding_replicas, vec![2, 3]);
    // The last one: done.
    let records = caught_up(&image, 3);
    let partition = apply(&mut image, records).clone();
    assert_eq!(partition.replicas, vec![1, 2, 3]);
    assert_eq!(partition.isr, vec![1, 2, 3]);
    assert!(!partition.is_reassigning());
    assert_eq!(
        (partition.leader, partition.leader_epoch),
        (1, 0),
        "the leader stays"
    );
    assert!(ongoing(&image, None).is_empty());
}

#[test]
fn moving_off_the_leader_elects_a_target_replica_and_drops_the_old_ones() {
    let mut image = image(vec![1, 2]);
    let records = reassign(&image, "t", 0, Some(&[3, 4])).unwrap();
    let partition = apply(&mut image, records).clone();
    assert_eq!(partition.replicas, vec![3, 4, 1, 2]);
    assert_eq!(partition.adding_replicas, vec![3, 4]);
    assert_eq!(partition.removing_replicas, vec![1, 2]);
    let records = caught_up(&image, 3);
    apply(&mut image, records);
    let records = caught_up(&image, 4);
    let partition = apply(&mut image, records).clone();
    assert_eq!(partition.replicas, vec![3, 4]);
    assert_eq!(partition.isr, vec![3, 4]);
    assert_eq!((partition.leader, partition.leader_epoch), (3, 1));
}

#[test]
fn a_smaller_replication_factor_in_sync_finishes_at_once() {
    let mut image = image(vec![1, 2, 3]);
    let records = reassign(&image, "t", 0, Some(&[2, 3])).unwrap();
    let partition = apply(&mut image, records).clone();
    assert_eq!(partition.replicas, vec![2, 3]);
    assert_eq!(partition.isr, vec![2, 3]);
    assert_eq!(partition.leader, 2, "the removed leader hands over");
    assert!(!partition.is_reassigning());
    // The same replicas again: nothing to do.
    assert!(reassign(&image, "t", 0, Some(&[2, 3])).unwrap().is_empty());
}

#[test]
fn a_cancel_goes_back_to_the_original_replicas() {
    let mut image = image(vec![1, 2]);
    let records = reassign(&image, "t", 0, Some(&[1, 2, 3, 4])).unwrap();
    apply(&mut image, records);
    let records = caught_up(&image, 3);
    apply(&mut image, records);
    let records = reassign(&image, "t", 0, None).unwrap();
    let partition = apply(&mut image, records).clone();
    assert_eq!(partition.replicas, vec![1, 2]);
    assert_eq!(partition.isr, vec![1, 2]);
    assert!(!partition.is_reassigning());
    assert_eq!(
        reassign(&image, "t", 0, None),
        Err(ReassignError::NoReassignmentInProgress)
    );
}

#[test]
fn a_new_target_during_a_reassignment_starts_from_the_original_replicas() {
    let mut image = image(vec![1]);
    let records = reassign(&image, "t", 0, Some(&[1, 2])).unwrap();
    apply(&mut image, records);
    let records = reassign(&image, "t", 0, Some(&[1, 3])).unwrap();
    let partition = apply(&mut image, records).clone();
    assert_eq!(partition.replicas, vec![1, 3]);
    assert_eq!(partition.adding_replicas, vec![3]);
}

#[test]
fn bad_targets_are_refused() {
    let image = image(vec![1]);
    let invalid = |target: &[i32]| {
        matches!(
            reassign(&image, "t", 0, Some(target)),
            Err(ReassignError::InvalidAssignment(_))
        )
    };
    assert!(invalid(&[]));
    assert!(invalid(&[1, 1]));
    assert!(invalid(&[1, 9]), "broker 9 is not registered");
    assert_eq!(
        reassign(&image, "t", 5, Some(&[1])),
        Err(ReassignError::UnknownPartition)
    );
    assert_eq!(
        reassign(&image, "nope", 0, Some(&[1])),
        Err(ReassignError::UnknownPartition)
    );
}
