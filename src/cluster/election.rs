//! Leader elections an operator asks for (ElectLeaders), decided against the image.
//! Pure: the controller commits the records.
//!
//! - Preferred: the partition's first replica leads, if it is in the ISR on a live
//!   broker; nothing to do if it already leads.
//! - Unclean: only for a partition without a leader: an ISR member on a live broker if
//!   there is one, else an eligible leader replica or the last known leader (KIP-966),
//!   else any live replica (whatever the topic's `unclean.leader.election.enable`: the
//!   operator asked), whose ISR becomes itself.

use super::image::{MetadataImage, MetadataRecord, NO_LEADER};
use super::partition_change::{self, ChangeRequest, ClusterPolicy, ElectionKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

/// What an election did for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionOutcome {
    Elected,
    /// The preferred replica already leads (preferred), or a leader exists (unclean).
    NotNeeded,
    /// The preferred replica is not in the ISR or not on a live broker.
    PreferredNotAvailable,
    /// No live replica can lead.
    EligibleNotAvailable,
    UnknownPartition,
}

/// The outcome for `topic`'s partition `index`, and the record that carries it out.
pub fn elect(
    image: &MetadataImage,
    topic: &str,
    index: i32,
    election: ElectionType,
    policy: &ClusterPolicy,
) -> (ElectionOutcome, Option<MetadataRecord>) {
    let Some((topic, partition)) = image.topic(topic).and_then(|topic| {
        let partition = topic.partitions.get(usize::try_from(index).ok()?)?;
        Some((topic, partition))
    }) else {
        return (ElectionOutcome::UnknownPartition, None);
    };
    let topic_id = topic.topic_id;
    match election {
        ElectionType::Preferred => {
            let Some(&preferred) = partition.replicas.first() else {
                return (ElectionOutcome::PreferredNotAvailable, None);
            };
            if partition.leader == preferred {
                (ElectionOutcome::NotNeeded, None)
            } else if partition.isr.contains(&preferred) && image.is_live(preferred) {
                (
                    ElectionOutcome::Elected,
                    Some(MetadataRecord::partition_change(
                        topic_id,
                        index,
                        Some(preferred),
                        None,
                    )),
                )
            } else {
                (ElectionOutcome::PreferredNotAvailable, None)
            }
        }
        ElectionType::Unclean => {
            if partition.leader != NO_LEADER && image.is_live(partition.leader) {
                return (ElectionOutcome::NotNeeded, None);
            }
            // The ISR first, then the ELR and the last known leader, then any live
            // replica: the operator asked, whatever the topic's own setting.
            let may_lead = |replica: i32| image.is_live(replica);
            let request = ChangeRequest {
                target_isr: partition.isr.clone(),
                unclean_shutdown: None,
                may_lead: &may_lead,
            };
            let mut policy = policy.for_topic(topic);
            policy.unclean_allowed = true;
            match partition_change::plan(topic_id, index, partition, request, policy) {
                (Some(record), kind) if kind != ElectionKind::None => {
                    (ElectionOutcome::Elected, Some(record))
                }
                _ => (ElectionOutcome::EligibleNotAvailable, None),
            }
        }
    }
}

/// Kafka's automatic preferred-leader rebalance (`auto.leader.rebalance.enable`), one
/// check: for each broker, the share of the partitions whose preferred (first) replica
/// it is that another broker leads; where that share exceeds
/// `imbalance_percentage` / 100, each of those partitions whose preferred replica is
/// live and in the ISR is elected back to it. Partitions under reassignment are left
/// alone. The records are the ones a preferred ElectLeaders writes.
pub fn rebalance(
    image: &MetadataImage,
    imbalance_percentage: i64,
    policy: &ClusterPolicy,
) -> Vec<MetadataRecord> {
    use std::collections::BTreeMap;
    /// The partitions a broker prefers to lead, and those of them another broker leads.
    type Preferred<'a> = (usize, Vec<(&'a str, i32)>);
    let mut preferred: BTreeMap<i32, Preferred> = BTreeMap::new();
    for topic in image.topics.values() {
        for (index, partition) in topic.partitions.iter().enumerate() {
            let Some(&first) = partition.replicas.first() else {
                continue;
            };
            let entry = preferred.entry(first).or_default();
            entry.0 += 1;
            let moving = !partition.adding_replicas.is_empty() || !partition.removing_replicas.is_empty();
            if partition.leader != first && !moving {
                entry.1.push((topic.name.as_str(), index as i32));
            }
        }
    }
    let mut records = Vec::new();
    for (total, led_elsewhere) in preferred.values() {
        // ratio > percentage / 100, in integers
        if *total == 0 || led_elsewhere.len() as i64 * 100 <= imbalance_percentage * *total as i64 {
            continue;
        }
        for (topic, index) in led_elsewhere {
            if let (ElectionOutcome::Elected, Some(record)) =
                elect(image, topic, *index, ElectionType::Preferred, policy)
            {
                records.push(record);
            }
        }
    }
    records
}

/// Every partition of the cluster, for an election that names none.
pub fn all_partitions(image: &MetadataImage) -> Vec<(String, i32)> {
    image
        .topics
        .values()
        .flat_map(|topic| (0..topic.partitions.len() as i32).map(|index| (topic.name.clone(), index)))
        .collect()
}

#[cfg(test)]
#[path = "election_tests.rs"]
mod tests;
