use super::*;
use crate::cluster::image::MetadataImage;
use crate::cluster::lifecycle::{Registration, RegistrationDecision, on_registration};
use crate::cluster::placement::{on_broker_fenced, on_broker_unclean_restart, on_broker_unfenced};
use std::collections::BTreeMap;

const TOPIC: u128 = 7;

fn policy(min_insync_replicas_default: i32) -> ClusterPolicy {
    ClusterPolicy {
        unclean_default: false,
        min_insync_replicas_default,
        elr_enabled: true,
    }
}

/// Brokers 1..=3 (`live` unfenced), topic "t" with one partition on [1, 2, 3], led by
/// 1 with the ISR given.
fn cluster(live: &[i32], isr: &[i32]) -> MetadataImage {
    let mut image = crate::cluster::test_images::brokers(1..=3, live);
    let topic_id = uuid::Uuid::from_u128(TOPIC);
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
                isr: isr.to_vec(),
                leader: 1,
                leader_epoch: 0,
            },
        ],
    );
    image
}

fn partition(image: &MetadataImage) -> &PartitionRegistration {
    &image.topic("t").unwrap().partitions[0]
}

/// Applies a leader's ISR proposal as the controller plans it.
fn shrink(image: &mut MetadataImage, offset: i64, isr: &[i32], policy: &ClusterPolicy) {
    let current = partition(image).clone();
    let records = crate::cluster::commands::alter_partition(
        image,
        current.leader,
        uuid::Uuid::from_u128(TOPIC),
        0,
        current.leader_epoch,
        current.partition_epoch,
        isr,
        policy,
    )
    .unwrap();
    image.apply_batch(offset, &records);
}

fn fence(image: &mut MetadataImage, offset: i64, broker_id: i32, policy: &ClusterPolicy) {
    let epoch = image.brokers[&broker_id].broker_epoch;
    let mut records = vec![MetadataRecord::FenceBroker {
        broker_id,
        broker_epoch: epoch,
    }];
    records.extend(on_broker_fenced(image, broker_id, policy));
    image.apply_batch(offset, &records);
}

fn unfence(image: &mut MetadataImage, offset: i64, broker_id: i32, policy: &ClusterPolicy) {
    let epoch = image.brokers[&broker_id].broker_epoch;
    let mut records = vec![MetadataRecord::UnfenceBroker {
        broker_id,
        broker_epoch: epoch,
    }];
    records.extend(on_broker_unfenced(image, broker_id, policy));
    image.apply_batch(offset, &records);
}

/// A new incarnation of `broker_id` registers, after a clean stop (`previous` is the
/// old epoch) or not (-1).
fn reregister(
    image: &mut MetadataImage,
    offset: i64,
    broker_id: i32,
    previous: i64,
    policy: &ClusterPolicy,
) -> bool {
    let endpoints = image.brokers[&broker_id].endpoints.clone();
    let registration = Registration {
        broker_id,
        incarnation_id: uuid::Uuid::from_u128(offset as u128 + 1000),
        endpoints,
        rack: None,
        capacity: None,
    };
    match on_registration(image, registration, previous, policy) {
        RegistrationDecision::Register {
            records,
            unclean_shutdown,
        } => {
            image.apply_batch(offset, &records);
            unclean_shutdown
        }
        other => panic!("expected a registration, got {other:?}"),
    }
}

#[test]
fn a_new_incarnation_fences_the_old_one_at_once() {
    let policy = policy(2);
    let mut image = cluster(&[1, 2, 3], &[1, 2, 3]);
    let old_epoch = image.brokers[&1].broker_epoch;
    // A clean stop whose controlled shutdown never reached the controller.
    assert!(!reregister(&mut image, 30, 1, old_epoch, &policy));
    assert_eq!(image.brokers[&1].broker_epoch, 30);
    assert!(image.brokers[&1].fenced, "the new registration starts fenced");
    let partition = partition(&image);
    assert_eq!(partition.leader, 2, "leadership moved in the same batch");
    assert_eq!(partition.isr, vec![2, 3]);
}

#[test]
fn unclean_registration_removes_the_broker_from_isr_and_leadership() {
    let policy = policy(2);
    let mut image = cluster(&[1, 2, 3], &[1, 2, 3]);
    // The leader lost power and registers again before its session ran out.
    assert!(reregister(&mut image, 30, 1, -1, &policy));
    let after = partition(&image).clone();
    assert_eq!(after.leader, 2);
    assert_eq!(after.leader_epoch, 1);
    assert_eq!(after.isr, vec![2, 3]);
    assert!(after.elr.is_empty());
    // Unfenced, it leads nothing and stays out of the ISR: its leader adds it back.
    unfence(&mut image, 31, 1, &policy);
    assert_eq!(partition(&image), &after);
    // A wrong previous epoch counts as unclean too.
    let mut image = cluster(&[1, 2, 3], &[1, 2, 3]);
    assert!(reregister(&mut image, 30, 2, 12345, &policy));
    assert_eq!(partition(&image).isr, vec![1, 3]);
}

#[test]
fn an_unclean_restart_of_a_fenced_broker_also_leaves_the_elr() {
    let policy = policy(2);
    // ISR shrank to the leader alone: 2 and 3 are eligible.
    let mut image = cluster(&[1, 2, 3], &[1, 2, 3]);
    shrink(&mut image, 30, &[1], &policy);
    assert_eq!(partition(&image).elr, vec![2, 3]);
    fence(&mut image, 31, 3, &policy);
    assert_eq!(
        partition(&image).elr,
        vec![2, 3],
        "fencing keeps a replica eligible"
    );
    assert!(reregister(&mut image, 32, 3, -1, &policy));
    assert_eq!(partition(&image).elr, vec![2]);
    assert_eq!(partition(&image).leader, 1);
}

#[test]
fn elr_entry_and_exit() {
    let policy = policy(2);
    let mut image = cluster(&[1, 2, 3], &[1, 2, 3]);
    // Down to min.insync.replicas: the one that left is not eligible (the high
    // watermark moves on without it).
    shrink(&mut image, 30, &[1, 2], &policy);
    assert!(partition(&image).elr.is_empty());
    // Below it: the one that leaves now is.
    shrink(&mut image, 31, &[1], &policy);
    assert_eq!(partition(&image).elr, vec![2]);
    // Back to min.insync.replicas: the ELR is cleared.
    shrink(&mut image, 32, &[1, 3], &policy);
    assert_eq!(partition(&image).isr, vec![1, 3]);
    assert!(partition(&image).elr.is_empty());
    // With a larger minimum a joining replica leaves the ELR while others stay.
    let policy = ClusterPolicy {
        min_insync_replicas_default: 3,
        ..policy
    };
    let mut image = cluster(&[1, 2, 3], &[1, 2, 3]);
    shrink(&mut image, 30, &[1], &policy);
    assert_eq!(partition(&image).elr, vec![2, 3]);
    shrink(&mut image, 31, &[1, 2], &policy);
    assert_eq!(partition(&image).elr, vec![3]);
    // The topic's own min.insync.replicas counts, not the broker default.
    let mut image = cluster(&[1, 2, 3], &[1, 2, 3]);
    image.apply_batch(
        29,
        &[MetadataRecord::TopicConfigs {
            topic_id: uuid::Uuid::from_u128(TOPIC),
            configs: BTreeMap::from([(MIN_INSYNC_REPLICAS.to_string(), "1".to_string())]),
        }],
    );
    shrink(&mut image, 30, &[1], &policy);
    assert!(partition(&image).elr.is_empty());
}

#[test]
fn election_order_isr_then_elr_then_last_leader() {
    let policy = policy(2);
    // ISR first, in replica order.
    let mut image = cluster(&[1, 2, 3], &[1, 2, 3]);
    fence(&mut image, 30, 1, &policy);
    assert_eq!(
        (partition(&image).leader, partition(&image).isr.clone()),
        (2, vec![2, 3])
    );

    // The shrunk-ISR power cut: ISR [1], ELR [2, 3]; the leader restarts uncleanly
    // while its followers are fenced. Nobody leads until an eligible replica is back,
    // and then it leads, not the replica that lost its data.
    let mut image = cluster(&[1, 2, 3], &[1, 2, 3]);
    shrink(&mut image, 30, &[1], &policy);
    fence(&mut image, 31, 2, &policy);
    fence(&mut image, 32, 3, &policy);
    assert!(reregister(&mut image, 33, 1, -1, &policy));
    let leaderless = partition(&image).clone();
    assert_eq!(leaderless.leader, NO_LEADER);
    assert!(leaderless.isr.is_empty());
    assert_eq!(leaderless.elr, vec![2, 3]);
    assert_eq!(leaderless.last_known_elr, vec![1]);
    unfence(&mut image, 34, 1, &policy);
    assert_eq!(
        partition(&image).leader,
        NO_LEADER,
        "the last leader waits for the ELR"
    );
    unfence(&mut image, 35, 3, &policy);
    let elected = partition(&image).clone();
    assert_eq!(elected.leader, 3);
    assert_eq!(elected.isr, vec![3]);
    assert_eq!(elected.elr, vec![2]);
    assert!(elected.last_known_elr.is_empty());

    // Every replica restarted uncleanly (a whole-cluster power cut): the last leader
    // leads again, with an ISR of itself.
    let mut image = cluster(&[1, 2, 3], &[1, 2, 3]);
    for (offset, broker) in [(30, 2), (31, 1), (32, 3)] {
        assert!(reregister(&mut image, offset, broker, -1, &policy));
    }
    let empty = partition(&image).clone();
    assert!(empty.isr.is_empty() && empty.elr.is_empty());
    assert_eq!(empty.leader, NO_LEADER);
    assert_eq!(empty.last_known_elr, vec![3]);
    unfence(&mut image, 33, 1, &policy);
    assert_eq!(
        partition(&image).leader,
        NO_LEADER,
        "only the last leader may lead"
    );
    unfence(&mut image, 34, 3, &policy);
    assert_eq!(
        (partition(&image).leader, partition(&image).isr.clone()),
        (3, vec![3])
    );

    // Unclean election, when allowed, comes after all of these.
    let unclean = ClusterPolicy {
        unclean_default: true,
        ..policy
    };
    let mut image = cluster(&[2, 3], &[1]);
    image.apply_batch(
        30,
        &[MetadataRecord::PartitionChange {
            topic_id: uuid::Uuid::from_u128(TOPIC),
            partition: 0,
            leader: None,
            isr: None,
            elr: None,
            last_known_elr: Some(vec![1]),
        }],
    );
    fence(&mut image, 31, 1, &ClusterPolicy::default());
    assert_eq!(partition(&image).leader, NO_LEADER, "ELR [1] is fenced");
    let mut allowed = image.clone();
    fence(&mut allowed, 31, 1, &unclean);
    assert_eq!(partition(&allowed).leader, NO_LEADER);
    unfence(&mut allowed, 32, 2, &unclean);
    assert_eq!(
        (partition(&allowed).leader, partition(&allowed).isr.clone()),
        (2, vec![2])
    );
    assert!(
        partition(&allowed).elr.is_empty(),
        "an unclean election clears the ELR"
    );
}

#[test]
fn without_elr_the_last_isr_member_is_kept() {
    let classic = ClusterPolicy {
        elr_enabled: false,
        ..policy(2)
    };
    let mut image = cluster(&[1, 2, 3], &[1, 2, 3]);
    shrink(&mut image, 30, &[1], &classic);
    assert!(partition(&image).elr.is_empty());
    assert!(reregister(&mut image, 31, 1, -1, &classic));
    let partition = partition(&image);
    assert_eq!(partition.isr, vec![1]);
    assert_eq!(partition.leader, NO_LEADER);
}

#[test]
fn plan_changes_nothing_when_nothing_changes() {
    let image = cluster(&[1, 2, 3], &[1, 2, 3]);
    let current = partition(&image);
    let may_lead = |_| true;
    let request = ChangeRequest {
        target_isr: vec![1, 2, 3],
        unclean_shutdown: None,
        may_lead: &may_lead,
    };
    let (record, kind) = plan(
        uuid::Uuid::from_u128(TOPIC),
        0,
        current,
        request,
        policy(2).for_topic(image.topic("t").unwrap()),
    );
    assert_eq!(record, None);
    assert_eq!(kind, ElectionKind::None);
}

#[test]
fn unclean_restart_without_the_broker_changes_nothing() {
    let image = cluster(&[1, 2, 3], &[1, 2]);
    assert!(on_broker_unclean_restart(&image, 3, &policy(2)).is_empty());
}
