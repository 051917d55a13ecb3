//! Leader elections an operator asks for (ElectLeaders), decided against the image.
//! Pure: the controller commits the records.
//!
//! - Preferred: the partition's first replica leads, if it is in the ISR on a live
//!   broker; nothing to do if it already leads.
//! - Unclean: only for a partition without a leader: an ISR member on a live broker if
//!   there is one, else any live replica (whatever the topic's
//!   `unclean.leader.election.enable`: the operator asked), whose ISR becomes itself.

use super::image::{MetadataImage, MetadataRecord, NO_LEADER};
use super::placement::choose_leader;
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
) -> (ElectionOutcome, Option<MetadataRecord>) {
    let Some((topic_id, partition)) = image.topic(topic).and_then(|topic| {
        let partition = topic.partitions.get(usize::try_from(index).ok()?)?;
        Some((topic.topic_id, partition))
    }) else {
        return (ElectionOutcome::UnknownPartition, None);
    };
    let change = |leader: i32, isr: Option<Vec<i32>>| MetadataRecord::PartitionChange {
        topic_id,
        partition: index,
        leader: Some(leader),
        isr,
    };
    match election {
        ElectionType::Preferred => {
            let Some(&preferred) = partition.replicas.first() else {
                return (ElectionOutcome::PreferredNotAvailable, None);
            };
            if partition.leader == preferred {
                (ElectionOutcome::NotNeeded, None)
            } else if partition.isr.contains(&preferred) && image.is_live(preferred) {
                (ElectionOutcome::Elected, Some(change(preferred, None)))
            } else {
                (ElectionOutcome::PreferredNotAvailable, None)
            }
        }
        ElectionType::Unclean => {
            if partition.leader != NO_LEADER && image.is_live(partition.leader) {
                return (ElectionOutcome::NotNeeded, None);
            }
            let may_lead = |replica: i32| image.is_live(replica);
            let clean = choose_leader(&partition.replicas, &partition.isr, may_lead);
            if clean != NO_LEADER {
                return (ElectionOutcome::Elected, Some(change(clean, None)));
            }
            match partition
                .replicas
                .iter()
                .copied()
                .find(|replica| may_lead(*replica))
            {
                Some(leader) => (ElectionOutcome::Elected, Some(change(leader, Some(vec![leader])))),
                None => (ElectionOutcome::EligibleNotAvailable, None),
            }
        }
    }
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
