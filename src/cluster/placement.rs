//! Pure decisions about where replicas live and who leads: replica placement for new
//! partitions, leader choice, and the partition changes that follow a broker being
//! fenced or coming back. No IO; the controller turns the answers into records.
//!
//! Leaders are chosen only among replicas that may lead: in the ISR and on a live
//! (registered, unfenced) broker, preferring replica order, so the first replica (the
//! preferred leader) leads whenever it can. Only when no ISR member is live and the
//! topic allows it (`unclean.leader.election.enable`, default false) does a live replica
//! outside the ISR lead, with an ISR of itself: availability bought with the writes it
//! never had.

use super::image::{MetadataImage, MetadataRecord, NO_LEADER, PartitionRegistration, TopicImage};
use super::partition_change::{self, ChangeRequest, ClusterPolicy};

/// The topic config that allows unclean leader election, and its broker default name.
pub const UNCLEAN_ELECTION: &str = "unclean.leader.election.enable";

/// Whether `topic` allows electing a leader outside the ISR: its own config, else the
/// broker default.
pub fn unclean_allowed(topic: &TopicImage, broker_default: bool) -> bool {
    topic
        .configs
        .get(UNCLEAN_ELECTION)
        .map_or(broker_default, |value| value.trim().eq_ignore_ascii_case("true"))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("replication factor {replication_factor} is not between 1 and the {live} live broker(s)")]
    InvalidReplicationFactor { replication_factor: i16, live: usize },
}

/// Replica lists for partitions `first_partition..first_partition + n_partitions`,
/// spread over `brokers` the way Kafka spreads them without racks: partition `p`'s first
/// replica (its preferred leader) is broker `(p + start_index) % n`, and the followers
/// come at a shift that grows every `n` partitions, so leaders and followers are both
/// spread evenly. `start_index` and `shift` are the caller's (random) choices.
pub fn assign_replicas(
    brokers: &[i32],
    first_partition: i32,
    n_partitions: i32,
    replication_factor: i16,
    start_index: usize,
    shift: usize,
) -> Result<Vec<Vec<i32>>, PlacementError> {
    let n_brokers = brokers.len();
    if replication_factor < 1 || replication_factor as usize > n_brokers {
        return Err(PlacementError::InvalidReplicationFactor {
            replication_factor,
            live: n_brokers,
        });
    }
    let mut brokers = brokers.to_vec();
    brokers.sort_unstable();
    let mut shift = shift % n_brokers;
    let mut assignments = Vec::with_capacity(n_partitions.max(0) as usize);
    for partition in first_partition.max(0)..first_partition.max(0) + n_partitions.max(0) {
        let partition = partition as usize;
        if partition > 0 && partition.is_multiple_of(n_brokers) {
            shift += 1;
        }
        let first = (partition + start_index) % n_brokers;
        let mut replicas = vec![brokers[first]];
        for follower in 0..(replication_factor as usize - 1) {
            let step = 1 + (shift + follower) % (n_brokers - 1);
            replicas.push(brokers[(first + step) % n_brokers]);
        }
        assignments.push(replicas);
    }
    Ok(assignments)
}

/// The first replica, in replica order, that is in the ISR and may lead; else
/// [`NO_LEADER`].
pub fn choose_leader(replicas: &[i32], isr: &[i32], may_lead: impl Fn(i32) -> bool) -> i32 {
    replicas
        .iter()
        .copied()
        .find(|replica| isr.contains(replica) && may_lead(*replica))
        .unwrap_or(NO_LEADER)
}

fn each_partition(image: &MetadataImage) -> impl Iterator<Item = (&TopicImage, i32, &PartitionRegistration)> {
    image.topics.values().flat_map(|topic| {
        topic
            .partitions
            .iter()
            .enumerate()
            .map(move |(index, partition)| (topic, index as i32, partition))
    })
}

/// The partition changes when `broker_id` is fenced: it leaves every ISR it is in, and
/// every partition it led gets a new leader (`cluster::partition_change`: from the rest
/// of the ISR on live brokers, else the ELR, else none). With ELR an ISR may become
/// empty and the broker stays eligible; without it the last member is kept in the ISR,
/// as Kafka keeps it, so that the partition's last in-sync replica is remembered.
pub fn on_broker_fenced(
    image: &MetadataImage,
    broker_id: i32,
    policy: &ClusterPolicy,
) -> Vec<MetadataRecord> {
    remove_broker(image, broker_id, false, policy)
}

/// The partition changes when `broker_id` registers again after an unclean shutdown
/// (KIP-966): its log may have lost acknowledged writes that another replica holds, so
/// it leaves every ISR and ELR and leads nothing; it rejoins an ISR only by catching up
/// from a leader. (A partition whose ISR and ELR end up empty remembers its last
/// leader, which may lead again: nobody else is known to hold more.)
pub fn on_broker_unclean_restart(
    image: &MetadataImage,
    broker_id: i32,
    policy: &ClusterPolicy,
) -> Vec<MetadataRecord> {
    remove_broker(image, broker_id, true, policy)
}

fn remove_broker(
    image: &MetadataImage,
    broker_id: i32,
    unclean: bool,
    policy: &ClusterPolicy,
) -> Vec<MetadataRecord> {
    let may_lead = |replica: i32| replica != broker_id && image.is_live(replica);
    each_partition(image)
        .filter(|(_, _, partition)| {
            partition.leader == broker_id
                || partition.isr.contains(&broker_id)
                || (unclean && partition.elr.contains(&broker_id))
        })
        .filter_map(|(topic, index, partition)| {
            let target_isr = partition
                .isr
                .iter()
                .copied()
                .filter(|replica| *replica != broker_id)
                .collect();
            let request = ChangeRequest {
                target_isr,
                unclean_shutdown: unclean.then_some(broker_id),
                may_lead: &may_lead,
            };
            partition_change::plan(topic.topic_id, index, partition, request, policy.for_topic(topic)).0
        })
        .collect()
}

/// The partition changes when `broker_id` is unfenced: it leads the leaderless
/// partitions where it may: in their ISR, in their ELR when the ISR is empty, their last
/// known leader, or any replica when the topic allows unclean elections. It does not
/// rejoin other ISRs here: as a follower it catches up and its leader adds it back.
pub fn on_broker_unfenced(
    image: &MetadataImage,
    broker_id: i32,
    policy: &ClusterPolicy,
) -> Vec<MetadataRecord> {
    let may_lead = |replica: i32| replica == broker_id || image.is_live(replica);
    each_partition(image)
        .filter(|(topic, _, partition)| {
            partition.leader == NO_LEADER
                && (partition.isr.contains(&broker_id)
                    || partition.elr.contains(&broker_id)
                    || partition.last_known_elr == [broker_id]
                    || (partition.replicas.contains(&broker_id)
                        && unclean_allowed(topic, policy.unclean_default)))
        })
        .filter_map(|(topic, index, partition)| {
            let request = ChangeRequest {
                target_isr: partition.isr.clone(),
                unclean_shutdown: None,
                may_lead: &may_lead,
            };
            partition_change::plan(topic.topic_id, index, partition, request, policy.for_topic(topic)).0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::image::MetadataRecord;
    use std::collections::BTreeMap;

    /// Kafka's rules before ELR (`eligible.leader.replicas.version=0`).
    fn classic(unclean_default: bool) -> ClusterPolicy {
        ClusterPolicy {
            unclean_default,
            min_insync_replicas_default: 1,
            elr_enabled: false,
        }
    }

    #[test]
    fn replicas_and_leaders_spread_evenly() {
        let brokers = [1, 2, 3];
        let assignments = assign_replicas(&brokers, 0, 6, 3, 0, 0).unwrap();
        let mut leaders = BTreeMap::new();
        let mut replicas = BTreeMap::new();
        for assignment in &assignments {
            assert_eq!(assignment.len(), 3);
            let mut distinct = assignment.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(
                distinct.len(),
                3,
                "a partition's replicas are on distinct brokers: {assignment:?}"
            );
            *leaders.entry(assignment[0]).or_insert(0) += 1;
            for replica in assignment {
                *replicas.entry(*replica).or_insert(0) += 1;
            }
        }
        assert_eq!(leaders, BTreeMap::from([(1, 2), (2, 2), (3, 2)]));
        assert_eq!(replicas, BTreeMap::from([(1, 6), (2, 6), (3, 6)]));
        // Any start index still gives each broker one leader of three partitions.
        for start in 0..3 {
            let assignments = assign_replicas(&brokers, 0, 3, 2, start, start).unwrap();
            let mut firsts: Vec<i32> = assignments.iter().map(|replicas| replicas[0]).collect();
            firsts.sort();
            assert_eq!(firsts, vec![1, 2, 3]);
        }
    }

    #[test]
    fn followers_shift_so_pairs_differ() {
        let brokers = [0, 1, 2, 3, 4];
        let assignments = assign_replicas(&brokers, 0, 10, 2, 0, 0).unwrap();
        assert_ne!(
            assignments[0][1] - assignments[0][0],
            assignments[5][1] - assignments[5][0]
        );
        // New partitions of an existing topic continue the pattern.
        let more = assign_replicas(&brokers, 10, 2, 2, 0, 0).unwrap();
        assert_eq!(more.len(), 2);
    }

    #[test]
    fn replication_factor_is_bounded_by_live_brokers() {
        assert_eq!(
            assign_replicas(&[1, 2], 0, 1, 3, 0, 0),
            Err(PlacementError::InvalidReplicationFactor {
                replication_factor: 3,
                live: 2
            })
        );
        assert!(assign_replicas(&[1, 2], 0, 1, 0, 0, 0).is_err());
        assert_eq!(
            assign_replicas(&[7], 0, 2, 1, 0, 0).unwrap(),
            vec![vec![7], vec![7]]
        );
    }

    #[test]
    fn leader_is_first_live_isr_replica() {
        assert_eq!(choose_leader(&[1, 2, 3], &[2, 3], |_| true), 2);
        assert_eq!(choose_leader(&[1, 2, 3], &[1, 2, 3], |id| id != 1), 2);
        assert_eq!(choose_leader(&[1, 2, 3], &[3], |id| id != 3), NO_LEADER);
    }

    fn cluster(live: &[i32]) -> (MetadataImage, uuid::Uuid) {
        let mut image = crate::cluster::test_images::brokers(1..=3, live);
        let topic_id = uuid::Uuid::from_u128(7);
        let mut records = vec![MetadataRecord::Topic {
            name: "t".into(),
            topic_id,
        }];
        for (partition, replicas) in [vec![1, 2, 3], vec![2, 3, 1], vec![3, 1, 2]]
            .into_iter()
            .enumerate()
        {
            records.push(MetadataRecord::Partition {
                topic_id,
                partition: partition as i32,
                isr: replicas.clone(),
                leader: replicas[0],
                replicas,
                leader_epoch: 0,
            });
        }
        image.apply_batch(20, &records);
        (image, topic_id)
    }

    #[test]
    fn fencing_moves_leadership_within_the_isr() {
        let (mut image, _) = cluster(&[1, 2, 3]);
        let changes = on_broker_fenced(&image, 1, &classic(false));
        assert_eq!(changes.len(), 3, "broker 1 is in every ISR");
        image.apply_batch(30, &changes);
        let topic = image.topic("t").unwrap();
        assert_eq!(topic.partitions[0].leader, 2);
        assert_eq!(topic.partitions[0].leader_epoch, 1);
        assert_eq!(topic.partitions[0].isr, vec![2, 3]);
        assert_eq!(topic.partitions[1].leader, 2, "untouched leader");
        assert_eq!(topic.partitions[1].leader_epoch, 0);
        assert_eq!(topic.partitions[1].isr, vec![2, 3]);
    }

    #[test]
    fn last_isr_member_stays_and_partition_goes_leaderless() {
        let (mut image, topic_id) = cluster(&[1]);
        image.apply_batch(
            30,
            &[MetadataRecord::partition_change(topic_id, 0, None, Some(vec![1]))],
        );
        image.apply_batch(31, &on_broker_fenced(&image, 1, &classic(false)));
        let partition = &image.topic("t").unwrap().partitions[0];
        assert_eq!(partition.leader, NO_LEADER);
        assert_eq!(partition.isr, vec![1]);
        // When it comes back it leads again.
        image.apply_batch(32, &on_broker_unfenced(&image, 1, &classic(false)));
        let partition = &image.topic("t").unwrap().partitions[0];
        assert_eq!(partition.leader, 1);
        assert_eq!(partition.leader_epoch, 2);
    }

    #[test]
    fn unfenced_broker_does_not_rejoin_isrs_by_itself() {
        let (mut image, _) = cluster(&[1, 2, 3]);
        image.apply_batch(30, &on_broker_fenced(&image, 1, &classic(false)));
        assert!(
            on_broker_unfenced(&image, 1, &classic(false)).is_empty(),
            "followers rejoin through their leader"
        );
        let topic = image.topic("t").unwrap();
        assert_eq!(topic.partitions[0].isr, vec![2, 3]);
        assert_eq!(topic.partitions[0].leader, 2, "no preferred-leader move-back");
    }

    /// Partition 0's ISR shrunk to broker 1 alone.
    fn only_one_in_sync(live: &[i32], unclean: Option<&str>) -> MetadataImage {
        let (mut image, topic_id) = cluster(live);
        let mut records = vec![MetadataRecord::partition_change(topic_id, 0, None, Some(vec![1]))];
        if let Some(value) = unclean {
            records.push(MetadataRecord::TopicConfigs {
                topic_id,
                configs: BTreeMap::from([(UNCLEAN_ELECTION.to_string(), value.to_string())]),
            });
        }
        image.apply_batch(30, &records);
        image
    }

    #[test]
    fn unclean_election_only_when_allowed_and_no_isr_member_is_live() {
        // Broker 1, the last in-sync replica, is fenced; 2 and 3 are live but behind.
        let clean = only_one_in_sync(&[1, 2, 3], None);
        let changes = on_broker_fenced(&clean, 1, &classic(false));
        let mut image = clean.clone();
        image.apply_batch(31, &changes);
        assert_eq!(image.topic("t").unwrap().partitions[0].leader, NO_LEADER);
        // The broker default allows it: the first live replica leads, alone in the ISR.
        let mut image = clean.clone();
        image.apply_batch(31, &on_broker_fenced(&clean, 1, &classic(true)));
        let partition = &image.topic("t").unwrap().partitions[0];
        assert_eq!((partition.leader, partition.isr.clone()), (2, vec![2]));
        assert_eq!(partition.leader_epoch, 1);
        // The topic config overrides the broker default, either way.
        let topic_says_no = only_one_in_sync(&[1, 2, 3], Some("false"));
        let mut image = topic_says_no.clone();
        image.apply_batch(31, &on_broker_fenced(&topic_says_no, 1, &classic(true)));
        assert_eq!(image.topic("t").unwrap().partitions[0].leader, NO_LEADER);
        let topic_says_yes = only_one_in_sync(&[1, 2, 3], Some("true"));
        let mut image = topic_says_yes.clone();
        image.apply_batch(31, &on_broker_fenced(&topic_says_yes, 1, &classic(false)));
        assert_eq!(image.topic("t").unwrap().partitions[0].leader, 2);
    }

    #[test]
    fn a_returning_out_of_sync_replica_leads_only_if_unclean_election_is_allowed() {
        let mut image = only_one_in_sync(&[1], None);
        let mut fence = vec![MetadataRecord::FenceBroker {
            broker_id: 1,
            broker_epoch: 1,
        }];
        fence.extend(on_broker_fenced(&image, 1, &classic(false)));
        image.apply_batch(31, &fence);
        assert_eq!(image.topic("t").unwrap().partitions[0].leader, NO_LEADER);
        // (Partitions 1 and 2, led by fenced brokers in this image, get broker 2.)
        let partition_0 = |records: Vec<MetadataRecord>| {
            records
                .into_iter()
                .filter(|record| matches!(record, MetadataRecord::PartitionChange { partition: 0, .. }))
                .count()
        };
        assert_eq!(
            partition_0(on_broker_unfenced(&image, 2, &classic(false))),
            0,
            "it waits for broker 1"
        );
        image.apply_batch(32, &on_broker_unfenced(&image, 2, &classic(true)));
        let partition = &image.topic("t").unwrap().partitions[0];
        assert_eq!((partition.leader, partition.isr.clone()), (2, vec![2]));
    }
}
