//! KIP-848's server-side assignors, `uniform` and `range`: from the members'
//! subscriptions and the subscribed topics' partition counts, the target assignment.
//!
//! `uniform` is sticky and balanced: a member keeps every partition of its previous
//! target that is still valid, the rest go to the least-loaded subscribed member, and
//! partitions then move from the most to the least loaded member (among those
//! subscribed to the topic) until no move narrows the spread. With one subscription for
//! all, members' counts differ by at most one.
//!
//! `range` is Kafka's range assignor per topic: the subscribed members, sorted by
//! member id, take consecutive ranges, the first `n_partitions % n_members` one more,
//! so members subscribed to co-partitioned topics get the same partition numbers.

use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// A member's partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The assignors a broker knows, by the names clients and `group.consumer.assignors`
/// use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignorKind {
    Uniform,
    Range,
}

impl AssignorKind {
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Uniform => "uniform",
            AssignorKind::Range => "range",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "uniform" | "org.apache.kafka.coordinator.group.assignor.uniformassignor" => {
                Some(AssignorKind::Uniform)
            }
            "range" | "org.apache.kafka.coordinator.group.assignor.rangeassignor" => {
                Some(AssignorKind::Range)
            }
            _ => None,
        }
    }

    /// The target assignment of every member (members with nothing get an empty one).
    /// `members`: member id → subscribed topic ids; `previous`: the last target;
    /// `topics`: topic id → partition count, for every subscribed topic that exists.
    pub fn assign(
        self,
        members: &BTreeMap<String, BTreeSet<Uuid>>,
        previous: &BTreeMap<String, Assignment>,
        topics: &BTreeMap<Uuid, i32>,
    ) -> BTreeMap<String, Assignment> {
        match self {
            AssignorKind::Uniform => uniform(members, previous, topics),
            AssignorKind::Range => range(members, topics),
        }
    }
}

fn count(assignment: &Assignment) -> usize {
    assignment.values().map(BTreeSet::len).sum()
}

fn uniform(
    members: &BTreeMap<String, BTreeSet<Uuid>>,
    previous: &BTreeMap<String, Assignment>,
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut target: BTreeMap<String, Assignment> = members
        .keys()
        .map(|member| (member.clone(), Assignment::new()))
        .collect();
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    // Stickiness: what each member had and may still have.
    for (member_id, subscribed) in members {
        let Some(had) = previous.get(member_id) else {
            continue;
        };
        for (topic_id, partitions) in had {
            let Some(&n_partitions) = topics.get(topic_id) else {
                continue;
            };
            if !subscribed.contains(topic_id) {
                continue;
            }
            for &partition in partitions {
                if partition < n_partitions && taken.insert((*topic_id, partition)) {
                    target
                        .entry(member_id.clone())
                        .or_default()
                        .entry(*topic_id)
                        .or_default()
                        .insert(partition);
                }
            }
        }
    }
    // The rest to the least-loaded subscribed member.
    for (topic_id, &n_partitions) in topics {
        let eligible: Vec<&String> = members
            .iter()
            .filter(|(_, subscribed)| subscribed.contains(topic_id))
            .map(|(member_id, _)| member_id)
            .collect();
        if eligible.is_empty() {
            continue;
        }
        for partition in 0..n_partitions {
            if taken.contains(&(*topic_id, partition)) {
                continue;
            }
            let Some(member_id) = eligible
                .iter()
                .min_by_key(|member_id| (count(&target[**member_id]), **member_id))
            else {
                continue;
            };
            taken.insert((*topic_id, partition));
            target
                .entry((*member_id).clone())
                .or_default()
                .entry(*topic_id)
                .or_default()
                .insert(partition);
        }
    }
    balance(members, &mut target);
    target.retain(|_, assignment| {
        assignment.retain(|_, partitions| !partitions.is_empty());
        true
    });
    target
}

/// Moves one partition at a time from a member to one with at least two fewer that
/// is subscribed to its topic; each move lowers the sum of squared counts, so it ends.
fn balance(members: &BTreeMap<String, BTreeSet<Uuid>>, target: &mut BTreeMap<String, Assignment>) {
    loop {
        let mut by_load: Vec<(usize, String)> = target
            .iter()
            .map(|(member_id, assignment)| (count(assignment), member_id.clone()))
            .collect();
        by_load.sort();
        let mut moved = false;
        'givers: for (giver_count, giver) in by_load.iter().rev() {
            for (taker_count, taker) in by_load.iter() {
                if taker_count + 2 > *giver_count {
                    break;
                }
                let subscribed = &members[taker];
                let candidate = target[giver].iter().find_map(|(topic_id, partitions)| {
                    if subscribed.contains(topic_id) {
                        partitions
                            .iter()
                            .next_back()
                            .map(|partition| (*topic_id, *partition))
                    } else {
                        None
                    }
                });
                if let Some((topic_id, partition)) = candidate {
                    if let Some(partitions) = target.get_mut(giver).and_then(|a| a.get_mut(&topic_id)) {
                        partitions.remove(&partition);
                    }
                    target
                        .entry(taker.clone())
                        .or_default()
                        .entry(topic_id)
                        .or_default()
                        .insert(partition);
                    moved = true;
                    break 'givers;
                }
            }
        }
        if !moved {
            return;
        }
    }
}

fn range(
    members: &BTreeMap<String, BTreeSet<Uuid>>,
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut target: BTreeMap<String, Assignment> = members
        .keys()
        .map(|member| (member.clone(), Assignment::new()))
        .collect();
    for (topic_id, &n_partitions) in topics {
        let subscribed: Vec<&String> = members
            .iter()
            .filter(|(_, topics)| topics.contains(topic_id))
            .map(|(member_id, _)| member_id)
            .collect();
        if subscribed.is_empty() || n_partitions <= 0 {
            continue;
        }
        let n_members = subscribed.len() as i32;
        let (per_member, extra) = (n_partitions / n_members, n_partitions % n_members);
        let mut next = 0;
        for (idx, member_id) in subscribed.into_iter().enumerate() {
            let n = per_member + i32::from((idx as i32) < extra);
            if n > 0 {
                let partitions = target
                    .entry(member_id.clone())
                    .or_default()
                    .entry(*topic_id)
                    .or_default();
                partitions.extend(next..next + n);
            }
            next += n;
        }
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn topic(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn members(subscriptions: &[(&str, &[u128])]) -> BTreeMap<String, BTreeSet<Uuid>> {
        subscriptions
            .iter()
            .map(|(member_id, topics)| (member_id.to_string(), topics.iter().map(|t| topic(*t)).collect()))
            .collect()
    }

    /// Every partition of a topic someone subscribes to is assigned exactly once, and
    /// only to a member subscribed to it.
    fn check_exactly_once(
        members: &BTreeMap<String, BTreeSet<Uuid>>,
        topics: &BTreeMap<Uuid, i32>,
        target: &BTreeMap<String, Assignment>,
    ) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for (member_id, assignment) in target {
            for (topic_id, partitions) in assignment {
                if !members[member_id].contains(topic_id) {
                    return Err(format!("{member_id} got unsubscribed topic {topic_id}"));
                }
                for partition in partitions {
                    if !seen.insert((*topic_id, *partition)) {
                        return Err(format!("{topic_id}-{partition} assigned twice"));
                    }
                }
            }
        }
        for (topic_id, n_partitions) in topics {
            if members.values().any(|subscribed| subscribed.contains(topic_id)) {
                for partition in 0..*n_partitions {
                    if !seen.contains(&(*topic_id, partition)) {
                        return Err(format!("{topic_id}-{partition} not assigned"));
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn uniform_spreads_twelve_partitions_over_three_then_four_members_keeping_most() {
        let topics = BTreeMap::from([(topic(1), 12)]);
        let three = members(&[("a", &[1]), ("b", &[1]), ("c", &[1])]);
        let first = AssignorKind::Uniform.assign(&three, &BTreeMap::new(), &topics);
        assert!(first.values().all(|assignment| count(assignment) == 4));
        let four = members(&[("a", &[1]), ("b", &[1]), ("c", &[1]), ("d", &[1])]);
        let second = AssignorKind::Uniform.assign(&four, &first, &topics);
        assert!(
            second.values().all(|assignment| count(assignment) == 3),
            "{second:?}"
        );
        // Each old member keeps three of its four: only three partitions move.
        for member_id in ["a", "b", "c"] {
            let kept = second[member_id][&topic(1)]
                .intersection(&first[member_id][&topic(1)])
                .count();
            assert_eq!(kept, 3, "{member_id} keeps three of its partitions");
        }
        check_exactly_once(&four, &topics, &second).unwrap();
    }

    #[test]
    fn range_gives_consecutive_ranges_and_co_partitions_topics() {
        let topics = BTreeMap::from([(topic(1), 5), (topic(2), 5)]);
        let group = members(&[("a", &[1, 2]), ("b", &[1, 2])]);
        let target = AssignorKind::Range.assign(&group, &BTreeMap::new(), &topics);
        assert_eq!(target["a"][&topic(1)], BTreeSet::from([0, 1, 2]));
        assert_eq!(target["b"][&topic(1)], BTreeSet::from([3, 4]));
        assert_eq!(target["a"][&topic(2)], target["a"][&topic(1)]);
    }

    #[test]
    fn assignor_names_are_kafkas() {
        assert_eq!(AssignorKind::from_name("uniform"), Some(AssignorKind::Uniform));
        assert_eq!(AssignorKind::from_name("range"), Some(AssignorKind::Range));
        assert_eq!(AssignorKind::from_name("sticky"), None);
    }

    fn scenario() -> impl Strategy<Value = (Vec<(u8, Vec<u8>)>, Vec<i32>)> {
        (
            proptest::collection::vec((0u8..8, proptest::collection::vec(0u8..4, 0..4)), 1..8),
            proptest::collection::vec(0i32..10, 4),
        )
    }

    fn build(
        raw: &[(u8, Vec<u8>)],
        counts: &[i32],
    ) -> (BTreeMap<String, BTreeSet<Uuid>>, BTreeMap<Uuid, i32>) {
        let members = raw
            .iter()
            .map(|(member, topics)| {
                (
                    format!("m{member}"),
                    topics.iter().map(|t| topic(u128::from(*t))).collect(),
                )
            })
            .collect();
        let topics = counts
            .iter()
            .enumerate()
            .map(|(idx, n)| (topic(idx as u128), *n))
            .collect();
        (members, topics)
    }

    proptest! {
        #[test]
        fn every_subscribed_partition_is_assigned_exactly_once(
            (before, counts) in scenario(),
            (after, _) in scenario(),
        ) {
            for kind in [AssignorKind::Uniform, AssignorKind::Range] {
                let (members_before, topics) = build(&before, &counts);
                let first = kind.assign(&members_before, &BTreeMap::new(), &topics);
                prop_assert!(check_exactly_once(&members_before, &topics, &first).is_ok());
                // A later assignment from a different membership, sticky to the first.
                let (members_after, _) = build(&after, &counts);
                let second = kind.assign(&members_after, &first, &topics);
                let checked = check_exactly_once(&members_after, &topics, &second);
                prop_assert!(checked.is_ok(), "{:?}", checked);
            }
        }

        #[test]
        fn uniform_with_one_subscription_differs_by_at_most_one(n_members in 1usize..9, n_partitions in 0i32..40) {
            let group: BTreeMap<String, BTreeSet<Uuid>> =
                (0..n_members).map(|idx| (format!("m{idx}"), BTreeSet::from([topic(1)]))).collect();
            let topics = BTreeMap::from([(topic(1), n_partitions)]);
            let target = AssignorKind::Uniform.assign(&group, &BTreeMap::new(), &topics);
            let counts: Vec<usize> = group.keys().map(|m| target.get(m).map_or(0, count)).collect();
            let (min, max) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
            prop_assert!(max - min <= 1, "{:?}", counts);
        }
    }
}
