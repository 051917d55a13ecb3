//! Partition reassignment (KIP-455: AlterPartitionReassignments,
//! ListPartitionReassignments), decided against the image. Pure: the controller commits
//! the records.
//!
//! A reassignment to target replicas T of a partition whose replicas are R:
//! 1. the replicas become T followed by R − T, with `adding` = T − R and `removing` =
//!    R − T; the added brokers create the replica and fetch from the leader;
//! 2. once every member of T is in the ISR (the leader's AlterPartition adds the caught
//!    up ones), the replicas become T, the ISR loses R − T and, if the leader is not in
//!    T, leadership moves to the first of T in the ISR on a live broker. Brokers no
//!    longer named drop their replica.
//!
//! Step 2 happens at once when no replica is added and T is in sync already (a smaller
//! replication factor, or a new order). Cancelling (a null target) goes back to R − adding.

use super::image::{MetadataImage, MetadataRecord, PartitionRegistration};
use super::placement::choose_leader;
use serde::{Deserialize, Serialize};

/// Why one partition's reassignment is refused (Kafka's error for it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReassignError {
    /// UNKNOWN_TOPIC_OR_PARTITION.
    UnknownPartition,
    /// INVALID_REPLICA_ASSIGNMENT.
    InvalidAssignment(String),
    /// NO_REASSIGNMENT_IN_PROGRESS (a cancel with nothing to cancel).
    NoReassignmentInProgress,
}

/// An ongoing reassignment, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ongoing {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

fn minus(from: &[i32], remove: &[i32]) -> Vec<i32> {
    from.iter().copied().filter(|id| !remove.contains(id)).collect()
}

impl PartitionRegistration {
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas a reassignment moves to (all of them when none is ongoing).
    pub fn target_replicas(&self) -> Vec<i32> {
        minus(&self.replicas, &self.removing_replicas)
    }

    /// The replicas before the ongoing reassignment.
    pub fn original_replicas(&self) -> Vec<i32> {
        minus(&self.replicas, &self.adding_replicas)
    }
}

/// The record that settles a partition on `target` with `isr` (trimmed to it), the
/// leader kept if it is in `target`, else the first of `target` in sync on a live broker.
fn settle(
    image: &MetadataImage,
    topic_id: uuid::Uuid,
    partition: i32,
    current: &PartitionRegistration,
    target: Vec<i32>,
    isr: &[i32],
) -> MetadataRecord {
    let isr: Vec<i32> = isr.iter().copied().filter(|id| target.contains(id)).collect();
    let leader = if target.contains(&current.leader) && isr.contains(&current.leader) {
        current.leader
    } else {
        choose_leader(&target, &isr, |id| image.is_live(id))
    };
    MetadataRecord::PartitionReassignment {
        topic_id,
        partition,
        replicas: target,
        adding: Vec::new(),
        removing: Vec::new(),
        isr: Some(isr),
        leader: (leader != current.leader).then_some(leader),
    }
}

/// The records that start (or, all targets being in sync, finish) a reassignment of
/// `topic`'s partition `index` to `target`, or that cancel an ongoing one (None).
pub fn reassign(
    image: &MetadataImage,
    topic: &str,
    index: i32,
    target: Option<&[i32]>,
) -> Result<Vec<MetadataRecord>, ReassignError> {
    let (topic_id, current) = image
        .topic(topic)
        .and_then(|topic| Some((topic.topic_id, topic.partition(index)?)))
        .ok_or(ReassignError::UnknownPartition)?;
    let original = current.original_replicas();
    let Some(target) = target else {
        if !current.is_reassigning() {
            return Err(ReassignError::NoReassignmentInProgress);
        }
        return Ok(vec![settle(
            image,
            topic_id,
            index,
            current,
            original,
            &current.isr,
        )]);
    };
    if target.is_empty() {
        return Err(ReassignError::InvalidAssignment(
            "the target replica list is empty".into(),
        ));
    }
    for (position, id) in target.iter().enumerate() {
        if target[..position].contains(id) {
            return Err(ReassignError::InvalidAssignment(format!(
                "broker {id} is named twice"
            )));
        }
        if !image.brokers.contains_key(id) {
            return Err(ReassignError::InvalidAssignment(format!(
                "broker {id} is not registered"
            )));
        }
    }
    if target == current.replicas.as_slice() && !current.is_reassigning() {
        return Ok(Vec::new());
    }
    let adding = minus(target, &original);
    if adding.is_empty() && target.iter().all(|id| current.isr.contains(id)) {
        return Ok(vec![settle(
            image,
            topic_id,
            index,
            current,
            target.to_vec(),
            &current.isr,
        )]);
    }
    let mut replicas = target.to_vec();
    replicas.extend(minus(&original, target));
    Ok(vec![MetadataRecord::PartitionReassignment {
        topic_id,
        partition: index,
        replicas,
        adding,
        removing: minus(&original, target),
        isr: None,
        leader: None,
    }])
}

/// The record that finishes a reassignment once the ISR `isr` (about to be committed)
/// holds every target replica; None when there is none or it is not yet in sync.
pub fn complete_with_isr(
    image: &MetadataImage,
    topic_id: uuid::Uuid,
    partition: i32,
    current: &PartitionRegistration,
    isr: &[i32],
) -> Option<MetadataRecord> {
    if !current.is_reassigning() {
        return None;
    }
    let target = current.target_replicas();
    target
        .iter()
        .all(|id| isr.contains(id))
        .then(|| settle(image, topic_id, partition, current, target, isr))
}

/// Every ongoing reassignment, in topic and partition order (optionally only of the
/// named partitions).
pub fn ongoing(image: &MetadataImage, only: Option<&[(String, i32)]>) -> Vec<Ongoing> {
    let mut found = Vec::new();
    for topic in image.topics.values() {
        for (index, partition) in topic.partitions.iter().enumerate() {
            let index = index as i32;
            let named = only.is_none_or(|only| {
                only.iter()
                    .any(|(name, wanted)| *name == topic.name && *wanted == index)
            });
            if named && partition.is_reassigning() {
                found.push(Ongoing {
                    topic: topic.name.clone(),
                    partition: index,
                    replicas: partition.replicas.clone(),
                    adding: partition.adding_replicas.clone(),
                    removing: partition.removing_replicas.clone(),
                });
            }
        }
    }
    found
}

#[cfg(test)]
#[path = "reassignment_tests.rs"]
mod tests;
