//! One partition's registration change, planned the way Kafka's controller plans it
//! (its `PartitionChangeBuilder`): a target ISR in, a leader election and the eligible
//! leader replicas (KIP-966) worked out, one `PartitionChange` record out, or none when
//! nothing changes. Pure: the caller says which brokers may lead.
//!
//! Eligible leader replicas (ELR), when `eligible.leader.replicas.version` is 1:
//! - The high watermark only advances while the ISR has at least `min.insync.replicas`
//!   members (the leader enforces that), so a replica that leaves an ISR that is (or
//!   becomes) smaller than that still holds everything below the high watermark: it
//!   enters the ELR. An ISR of `min.insync.replicas` or more clears the ELR.
//! - A broker that restarts after an unclean shutdown may have lost acknowledged
//!   writes: it leaves the ISR and the ELR of every partition (KIP-966's unclean-shutdown
//!   rule), so it can only come back by catching up from a leader.
//! - With ELR the ISR may become empty. The partition then remembers its last leader
//!   (`last_known_elr`, KIP-966's balanced recovery): when the ISR and ELR are both
//!   empty, that replica may lead again once it is live, as the last in-sync replica
//!   did before ELR existed.
//!
//! Elections, in order: the current leader if it may still lead; the first replica (in
//! replica order) that is in the ISR, or, with an empty ISR, in the ELR; the last known
//! leader; and only with unclean leader election allowed, any replica that may lead.
//! A leader from the ELR or from the last two steps starts with an ISR of itself.

use super::image::{MetadataRecord, NO_LEADER, PartitionRegistration, TopicImage};

/// The settings a change is planned under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangePolicy {
    /// The topic's `min.insync.replicas` (its override, else the broker default).
    pub min_insync_replicas: usize,
    /// `eligible.leader.replicas.version` >= 1.
    pub elr_enabled: bool,
    /// The topic's `unclean.leader.election.enable`.
    pub unclean_allowed: bool,
}

/// The cluster-wide defaults a topic's [`ChangePolicy`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterPolicy {
    /// The broker default of `unclean.leader.election.enable`.
    pub unclean_default: bool,
    /// The broker default of `min.insync.replicas`.
    pub min_insync_replicas_default: i32,
    /// `eligible.leader.replicas.version` >= 1.
    pub elr_enabled: bool,
}

impl Default for ClusterPolicy {
    fn default() -> Self {
        ClusterPolicy {
            unclean_default: false,
            min_insync_replicas_default: 1,
            elr_enabled: true,
        }
    }
}

/// The topic config that sets a topic's minimum ISR.
pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";

impl ClusterPolicy {
    /// `topic`'s policy: its own overrides, else these defaults.
    pub fn for_topic(&self, topic: &TopicImage) -> ChangePolicy {
        let min_insync_replicas = topic
            .configs
            .get(MIN_INSYNC_REPLICAS)
            .and_then(|value| value.trim().parse::<i32>().ok())
            .unwrap_or(self.min_insync_replicas_default)
            .max(1) as usize;
        ChangePolicy {
            min_insync_replicas,
            elr_enabled: self.elr_enabled,
            unclean_allowed: super::placement::unclean_allowed(topic, self.unclean_default),
        }
    }
}

/// What is asked of one partition.
pub struct ChangeRequest<'a> {
    /// The ISR wanted (before the election, which may replace it).
    pub target_isr: Vec<i32>,
    /// A broker that restarted after an unclean shutdown: it leaves the ISR and ELR.
    pub unclean_shutdown: Option<i32>,
    /// Whether a replica may lead (registered, unfenced, not the broker being removed).
    pub may_lead: &'a dyn Fn(i32) -> bool,
}

/// How a leader was found, for the log line a caller writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionKind {
    /// No new leader (kept, or none to be had).
    None,
    Isr,
    Elr,
    LastKnownLeader,
    Unclean,
}

/// The record for this change (None when nothing changes) and how the leader came.
pub fn plan(
    topic_id: uuid::Uuid,
    partition: i32,
    current: &PartitionRegistration,
    request: ChangeRequest<'_>,
    policy: ChangePolicy,
) -> (Option<MetadataRecord>, ElectionKind) {
    let ChangeRequest {
        target_isr,
        unclean_shutdown,
        may_lead,
    } = request;
    let mut isr: Vec<i32> = target_isr
        .into_iter()
        .filter(|replica| Some(*replica) != unclean_shutdown)
        .collect();
    let mut elr = if policy.elr_enabled && isr.len() < policy.min_insync_replicas {
        let mut candidates: Vec<i32> = current.elr.clone();
        for replica in &current.isr {
            if !candidates.contains(replica) {
                candidates.push(*replica);
            }
        }
        current
            .replicas
            .iter()
            .copied()
            .filter(|replica| {
                candidates.contains(replica) && !isr.contains(replica) && Some(*replica) != unclean_shutdown
            })
            .collect()
    } else {
        Vec::new()
    };

    let valid = |replica: i32, isr: &[i32], elr: &[i32]| {
        (isr.contains(&replica) || (isr.is_empty() && elr.contains(&replica))) && may_lead(replica)
    };
    let mut leader = current.leader;
    let mut kind = ElectionKind::None;
    if leader == NO_LEADER || !valid(leader, &isr, &elr) {
        leader = NO_LEADER;
        if let Some(replica) = current
            .replicas
            .iter()
            .copied()
            .find(|replica| valid(*replica, &isr, &elr))
        {
            leader = replica;
            kind = if isr.contains(&replica) {
                ElectionKind::Isr
            } else {
                ElectionKind::Elr
            };
        } else if policy.elr_enabled
            && isr.is_empty()
            && elr.is_empty()
            && current.last_known_elr.len() == 1
            && may_lead(current.last_known_elr[0])
        {
            leader = current.last_known_elr[0];
            kind = ElectionKind::LastKnownLeader;
        } else if policy.unclean_allowed
            && let Some(replica) = current
                .replicas
                .iter()
                .copied()
                .find(|replica| may_lead(*replica))
        {
            leader = replica;
            kind = ElectionKind::Unclean;
        }
    }
    match kind {
        ElectionKind::Elr => {
            isr = vec![leader];
            elr.retain(|replica| *replica != leader);
        }
        ElectionKind::LastKnownLeader | ElectionKind::Unclean => {
            isr = vec![leader];
            elr.clear();
        }
        ElectionKind::None | ElectionKind::Isr => {}
    }
    // Without ELR the ISR is never emptied: its last member is remembered there.
    if !policy.elr_enabled && isr.is_empty() {
        isr = current.isr.clone();
    }
    let last_known_elr = if !policy.elr_enabled {
        Vec::new()
    } else if isr.is_empty() && !current.isr.is_empty() && current.leader != NO_LEADER {
        // Leaderless for the first time: remember who led last.
        vec![current.leader]
    } else if leader != NO_LEADER {
        Vec::new()
    } else {
        current.last_known_elr.clone()
    };

    let leader_changed = leader != current.leader;
    let isr_changed = isr != current.isr;
    let elr_changed = elr != current.elr;
    let last_known_changed = last_known_elr != current.last_known_elr;
    if !(leader_changed || isr_changed || elr_changed || last_known_changed) {
        return (None, ElectionKind::None);
    }
    let record = MetadataRecord::PartitionChange {
        topic_id,
        partition,
        leader: leader_changed.then_some(leader),
        isr: isr_changed.then_some(isr),
        elr: elr_changed.then_some(elr),
        last_known_elr: last_known_changed.then_some(last_known_elr),
    };
    (
        Some(record),
        if leader_changed { kind } else { ElectionKind::None },
    )
}

#[cfg(test)]
#[path = "partition_change_tests.rs"]
mod tests;
