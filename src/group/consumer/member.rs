//! A KIP-848 consumer group member and its reconciliation: how the member's current
//! assignment moves toward its target one epoch at a time (Kafka's
//! `CurrentAssignmentBuilder`).
//!
//! A partition is revoked from its owner before another member gets it: a member first
//! gives up what its target no longer holds (UNREVOKED_PARTITIONS, its epoch
//! unchanged), then moves to the target epoch with what it kept plus every new
//! partition no other member still owns (UNRELEASED_PARTITIONS while some are still
//! owned elsewhere), and is STABLE once it holds its whole target.

use super::assignor::Assignment;
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// Kafka's `MemberState`, with its record byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    UnrevokedPartitions,
    UnreleasedPartitions,
}

impl MemberState {
    pub fn value(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
        }
    }

    pub fn from_value(value: i8) -> Self {
        match value {
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MemberState::Stable => "stable",
            MemberState::UnrevokedPartitions => "unrevoked_partitions",
            MemberState::UnreleasedPartitions => "unreleased_partitions",
        }
    }
}

/// The member epoch of a static member that left for now (KIP-848's -2): it keeps
/// its assignment until its session times out or its instance id joins again.
pub const LEAVE_STATIC_EPOCH: i32 = -2;
/// The member epoch of a member leaving for good.
pub const LEAVE_EPOCH: i32 = -1;

#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    pub member_epoch: i32,
    /// The epoch before the last bump: a member whose response was lost may retry with it.
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    /// When the member's session ends without a heartbeat (not persisted: a loaded
    /// member gets a whole session from the load).
    pub session_deadline_ms: i64,
    /// When a member asked to revoke partitions must have done it (its rebalance
    /// timeout from the request to revoke).
    pub revocation_deadline_ms: Option<i64>,
}

impl ConsumerMember {
    pub fn new(member_id: String, now_ms: i64) -> Self {
        ConsumerMember {
            member_id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            rebalance_timeout_ms: -1,
            server_assignor: None,
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline_ms: now_ms,
            revocation_deadline_ms: None,
        }
    }

    /// Whether it owns any of `partitions` by what it reported (`owned`; None: the
    /// member did not say, so it still owns what it was given).
    fn still_owns(owned: Option<&Assignment>, partitions: &Assignment) -> bool {
        match owned {
            None => partitions.values().any(|set| !set.is_empty()),
            Some(owned) => partitions
                .iter()
                .any(|(topic_id, set)| owned.get(topic_id).is_some_and(|have| !have.is_disjoint(set))),
        }
    }

    /// One reconciliation step toward `target` at `target_epoch`. `owner_of` says
    /// which member owns a partition now (assigned or pending revocation), if any.
    /// Returns whether the member changed.
    pub fn reconcile(
        &mut self,
        target_epoch: i32,
        target: &Assignment,
        owned: Option<&Assignment>,
        owner_of: &HashMap<(Uuid, i32), String>,
        now_ms: i64,
    ) -> bool {
        match self.state {
            MemberState::UnrevokedPartitions => {
                if Self::still_owns(owned, &self.pending_revocation) {
                    return false;
                }
                self.next(target_epoch, target, owner_of, now_ms)
            }
            MemberState::UnreleasedPartitions => self.next(target_epoch, target, owner_of, now_ms),
            MemberState::Stable if self.member_epoch != target_epoch || &self.assigned != target => {
                self.next(target_epoch, target, owner_of, now_ms)
            }
            MemberState::Stable => false,
        }
    }

    fn next(
        &mut self,
        target_epoch: i32,
        target: &Assignment,
        owner_of: &HashMap<(Uuid, i32), String>,
        now_ms: i64,
    ) -> bool {
        let before = self.clone();
        let mut kept = Assignment::new();
        let mut revoke = Assignment::new();
        let mut add = Assignment::new();
        let mut unreleased = false;
        let topics: BTreeSet<Uuid> = self.assigned.keys().chain(target.keys()).copied().collect();
        let empty = BTreeSet::new();
        for topic_id in topics {
            let current = self.assigned.get(&topic_id).unwrap_or(&empty);
            let wanted = target.get(&topic_id).unwrap_or(&empty);
            for &partition in current {
                let side = if wanted.contains(&partition) {
                    &mut kept
                } else {
                    &mut revoke
                };
                side.entry(topic_id).or_default().insert(partition);
            }
            for &partition in wanted.difference(current) {
                let owner = owner_of.get(&(topic_id, partition));
                if owner.is_some_and(|owner| owner != &self.member_id) {
                    unreleased = true;
                } else {
                    add.entry(topic_id).or_default().insert(partition);
                }
            }
        }
        if !revoke.is_empty() {
            // Give up first; the epoch moves only once the member has revoked.
            self.assigned = kept;
            self.pending_revocation = revoke;
            self.state = MemberState::UnrevokedPartitions;
            if self.revocation_deadline_ms.is_none() {
                self.revocation_deadline_ms = Some(now_ms + i64::from(self.rebalance_timeout_ms.max(0)));
            }
        } else {
            for (topic_id, partitions) in add {
                kept.entry(topic_id).or_default().extend(partitions);
            }
            self.assigned = kept;
            self.pending_revocation = Assignment::new();
            self.revocation_deadline_ms = None;
            if self.member_epoch != target_epoch {
                self.previous_member_epoch = self.member_epoch;
                self.member_epoch = target_epoch;
            }
            self.state = if unreleased {
                MemberState::UnreleasedPartitions
            } else {
                MemberState::Stable
            };
        }
        *self != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic() -> Uuid {
        Uuid::from_u128(7)
    }

    fn assignment(partitions: &[i32]) -> Assignment {
        if partitions.is_empty() {
            return Assignment::new();
        }
        Assignment::from([(topic(), partitions.iter().copied().collect())])
    }

    fn member(id: &str, epoch: i32, partitions: &[i32]) -> ConsumerMember {
        let mut member = ConsumerMember::new(id.to_string(), 0);
        member.member_epoch = epoch;
        member.assigned = assignment(partitions);
        member.rebalance_timeout_ms = 1000;
        member
    }

    #[test]
    fn a_member_revokes_before_it_moves_to_the_new_epoch() {
        let mut a = member("a", 1, &[0, 1, 2, 3]);
        let owners = HashMap::new();
        // Target at epoch 2: a keeps 0 and 1; 2 and 3 go elsewhere.
        assert!(a.reconcile(2, &assignment(&[0, 1]), None, &owners, 100));
        assert_eq!(a.state, MemberState::UnrevokedPartitions);
        assert_eq!(a.member_epoch, 1, "the epoch waits for the revocation");
        assert_eq!(a.pending_revocation, assignment(&[2, 3]));
        assert_eq!(a.revocation_deadline_ms, Some(1100));
        // Still owning them: nothing moves.
        let still = assignment(&[0, 1, 2, 3]);
        assert!(!a.reconcile(2, &assignment(&[0, 1]), Some(&still), &owners, 200));
        // Revoked: the member reaches epoch 2, stable.
        assert!(a.reconcile(2, &assignment(&[0, 1]), Some(&assignment(&[0, 1])), &owners, 300));
        assert_eq!(
            (a.state, a.member_epoch, a.previous_member_epoch),
            (MemberState::Stable, 2, 1)
        );
        assert!(a.pending_revocation.is_empty());
    }

    #[test]
    fn a_partition_still_owned_by_another_member_waits() {
        let mut b = member("b", 1, &[]);
        let owners = HashMap::from([((topic(), 2), "a".to_string())]);
        assert!(b.reconcile(2, &assignment(&[2, 3]), Some(&Assignment::new()), &owners, 0));
        assert_eq!(b.state, MemberState::UnreleasedPartitions);
        assert_eq!(b.member_epoch, 2);
        assert_eq!(b.assigned, assignment(&[3]), "only the free partition");
        // Released: b takes it and is stable.
        assert!(b.reconcile(2, &assignment(&[2, 3]), None, &HashMap::new(), 0));
        assert_eq!(b.state, MemberState::Stable);
        assert_eq!(b.assigned, assignment(&[2, 3]));
    }
}
