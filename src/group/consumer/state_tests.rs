//! The consumer group state machine, driven by simulated members that do what a
//! KIP-848 client does: own what the last answer gave them, revoke at once.

use super::assignor::Assignment;
use super::member::MemberState;
use super::state::*;
use crate::common::ErrorCode;
use kafka_protocol::ResponseError;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

fn config() -> ConsumerGroupConfig {
    ConsumerGroupConfig {
        heartbeat_interval_ms: 1000,
        session_timeout_ms: 10_000,
        ..Default::default()
    }
}

fn topics(specs: &[(&str, u128, i32)]) -> TopicsView {
    specs
        .iter()
        .map(|(name, id, n)| (name.to_string(), (Uuid::from_u128(*id), *n)))
        .collect()
}

/// A client: its member id, epoch and what it owns.
#[derive(Debug, Clone)]
struct Client {
    member_id: String,
    epoch: i32,
    owned: Assignment,
}

fn join(group: &mut ConsumerGroup, id: &str, names: &[&str], topics: &TopicsView, now: i64) -> Client {
    let answer = group.heartbeat(
        Heartbeat {
            member_id: id.to_string(),
            member_epoch: 0,
            rebalance_timeout_ms: 5000,
            subscribed_topic_names: Some(names.iter().map(|n| n.to_string()).collect()),
            owned: Some(Assignment::new()),
            ..Default::default()
        },
        topics,
        &config(),
        now,
        || unreachable!(),
    );
    assert_eq!(answer.error, ErrorCode::NONE, "{answer:?}");
    Client {
        member_id: answer.member_id,
        epoch: answer.member_epoch,
        owned: answer.assignment.unwrap_or_default(),
    }
}

fn beat(group: &mut ConsumerGroup, client: &mut Client, topics: &TopicsView, now: i64) -> HeartbeatAnswer {
    let answer = group.heartbeat(
        Heartbeat {
            member_id: client.member_id.clone(),
            member_epoch: client.epoch,
            rebalance_timeout_ms: -1,
            owned: Some(client.owned.clone()),
            ..Default::default()
        },
        topics,
        &config(),
        now,
        || unreachable!(),
    );
    if answer.error == ErrorCode::NONE {
        client.epoch = answer.member_epoch;
        if let Some(assignment) = &answer.assignment {
            client.owned = assignment.clone();
        }
    }
    answer
}

fn count(assignment: &Assignment) -> usize {
    assignment.values().map(BTreeSet::len).sum()
}

/// No partition is owned (assigned or being revoked) by two members.
fn no_double_owner(group: &ConsumerGroup) -> Result<(), String> {
    let mut owners: HashMap<(Uuid, i32), &str> = HashMap::new();
    for member in group.members.values() {
        for assignment in [&member.assigned, &member.pending_revocation] {
            for (topic_id, partitions) in assignment {
                for partition in partitions {
                    if let Some(other) = owners.insert((*topic_id, *partition), &member.member_id) {
                        return Err(format!(
                            "{topic_id}-{partition} owned by {other} and {}",
                            member.member_id
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

#[test]
fn three_members_share_twelve_partitions_then_a_fourth_joins_incrementally() {
    let view = topics(&[("t", 1, 12)]);
    let mut group = ConsumerGroup::new("g");
    let mut clients: Vec<Client> = ["a", "b", "c"]
        .iter()
        .map(|id| join(&mut group, id, &["t"], &view, 0))
        .collect();
    for _ in 0..3 {
        for client in clients.iter_mut() {
            beat(&mut group, client, &view, 1);
        }
    }
    assert_eq!(group.state(), ConsumerGroupState::Stable);
    assert!(clients.iter().all(|client| count(&client.owned) == 4));
    let before: Vec<Assignment> = clients.iter().map(|client| client.owned.clone()).collect();
    // d joins: the group epoch moves; d gets nothing another member still owns.
    let mut d = join(&mut group, "d", &["t"], &view, 2);
    assert_eq!(count(&d.owned), 0, "every partition is still owned");
    assert_eq!(group.state(), ConsumerGroupState::Reconciling);
    // Each old member gives up one partition and keeps consuming the other three.
    for (client, had) in clients.iter_mut().zip(&before) {
        let answer = beat(&mut group, client, &view, 3);
        let kept = answer.assignment.expect("a new assignment");
        assert_eq!(count(&kept), 3);
        assert!(kept[&Uuid::from_u128(1)].is_subset(&had[&Uuid::from_u128(1)]));
        no_double_owner(&group).unwrap();
    }
    for client in clients.iter_mut() {
        beat(&mut group, client, &view, 4);
    }
    beat(&mut group, &mut d, &view, 5);
    assert_eq!(count(&d.owned), 3);
    assert_eq!(group.state(), ConsumerGroupState::Stable);
    assert!(
        group
            .members
            .values()
            .all(|member| member.member_epoch == group.group_epoch)
    );
}

#[test]
fn a_silent_member_is_removed_after_its_session_and_its_partitions_move() {
    let view = topics(&[("t", 1, 4)]);
    let mut group = ConsumerGroup::new("g");
    let mut a = join(&mut group, "a", &["t"], &view, 0);
    let mut b = join(&mut group, "b", &["t"], &view, 0);
    for now in 1..4 {
        beat(&mut group, &mut a, &view, now);
        beat(&mut group, &mut b, &view, now);
    }
    assert_eq!(count(&a.owned), 2);
    // b goes silent; a keeps beating.
    assert!(group.tick(5_000).is_empty());
    beat(&mut group, &mut a, &view, 9_000);
    assert_eq!(group.tick(10_004), vec!["b".to_string()]);
    beat(&mut group, &mut a, &view, 10_005);
    assert_eq!(count(&a.owned), 4, "b's partitions moved to a");
    // b comes back with its old epoch: fenced.
    let answer = beat(&mut group, &mut b, &view, 10_006);
    assert_eq!(answer.error, ErrorCode::of(ResponseError::UnknownMemberId));
}

#[test]
fn a_member_that_does_not_revoke_within_its_rebalance_timeout_is_fenced() {
    let view = topics(&[("t", 1, 4)]);
    let mut group = ConsumerGroup::new("g");
    let mut a = join(&mut group, "a", &["t"], &view, 0);
    beat(&mut group, &mut a, &view, 1);
    let mut b = join(&mut group, "b", &["t"], &view, 2);
    // a is asked to revoke but keeps reporting it owns everything.
    let owned_all = a.owned.clone();
    beat(&mut group, &mut a, &view, 3);
    assert_eq!(group.members["a"].state, MemberState::UnrevokedPartitions);
    a.owned = owned_all;
    beat(&mut group, &mut a, &view, 4_000);
    beat(&mut group, &mut b, &view, 4_000);
    assert_eq!(
        group.tick(5_004),
        vec!["a".to_string()],
        "the rebalance timeout is 5 s"
    );
}

#[test]
fn a_stale_epoch_is_fenced_but_a_lost_answer_may_retry_with_the_previous_one() {
    let view = topics(&[("t", 1, 2)]);
    let mut group = ConsumerGroup::new("g");
    let mut a = join(&mut group, "a", &["t"], &view, 0);
    beat(&mut group, &mut a, &view, 1);
    let epoch = a.epoch;
    let mut b = join(&mut group, "b", &["t"], &view, 2);
    beat(&mut group, &mut a, &view, 3);
    beat(&mut group, &mut a, &view, 4);
    assert!(a.epoch > epoch);
    // The answer carrying the bump was lost: the previous epoch is accepted once.
    let mut lost = a.clone();
    lost.epoch = group.members["a"].previous_member_epoch;
    assert_eq!(beat(&mut group, &mut lost, &view, 5).error, ErrorCode::NONE);
    let mut ancient = a.clone();
    ancient.epoch = epoch - 1;
    assert_eq!(
        beat(&mut group, &mut ancient, &view, 6).error,
        ErrorCode::of(ResponseError::FencedMemberEpoch)
    );
    let mut future = a.clone();
    future.epoch += 10;
    assert_eq!(
        beat(&mut group, &mut future, &view, 7).error,
        ErrorCode::of(ResponseError::FencedMemberEpoch)
    );
    beat(&mut group, &mut b, &view, 8);
}

#[test]
fn a_static_member_leaving_with_minus_two_comes_back_to_its_assignment() {
    let view = topics(&[("t", 1, 4)]);
    let mut group = ConsumerGroup::new("g");
    let heartbeat = |member_id: &str, epoch: i32| Heartbeat {
        member_id: member_id.to_string(),
        member_epoch: epoch,
        instance_id: Some("instance-1".into()),
        rebalance_timeout_ms: 5000,
        subscribed_topic_names: Some(vec!["t".into()]),
        owned: Some(Assignment::new()),
        ..Default::default()
    };
    let first = group.heartbeat(heartbeat("m1", 0), &view, &config(), 0, || unreachable!());
    assert_eq!(count(first.assignment.as_ref().unwrap()), 4);
    let epoch = group.group_epoch;
    let left = group.heartbeat(heartbeat("m1", -2), &view, &config(), 1, || unreachable!());
    assert_eq!(left.member_epoch, -2);
    // Another member with the same instance id while m1 is active would be refused;
    // after -2, a new member id takes over with no rebalance.
    let back = group.heartbeat(heartbeat("m2", 0), &view, &config(), 2, || unreachable!());
    assert_eq!(back.error, ErrorCode::NONE);
    assert_eq!(count(back.assignment.as_ref().unwrap()), 4);
    assert_eq!(group.group_epoch, epoch, "no new group epoch");
    assert!(!group.members.contains_key("m1"));
    let clash = group.heartbeat(heartbeat("m3", 0), &view, &config(), 3, || unreachable!());
    assert_eq!(clash.error, ErrorCode::of(ResponseError::UnreleasedInstanceId));
}

#[test]
fn a_regex_subscription_picks_up_a_topic_created_later() {
    let mut view = topics(&[("orders-eu", 1, 2), ("other", 2, 2)]);
    let mut group = ConsumerGroup::new("g");
    let answer = group.heartbeat(
        Heartbeat {
            member_id: "a".into(),
            rebalance_timeout_ms: 5000,
            subscribed_topic_regex: Some("orders-.*".into()),
            owned: Some(Assignment::new()),
            ..Default::default()
        },
        &view,
        &config(),
        0,
        || unreachable!(),
    );
    let mut a = Client {
        member_id: "a".into(),
        epoch: answer.member_epoch,
        owned: answer.assignment.unwrap(),
    };
    assert_eq!(
        a.owned.keys().copied().collect::<Vec<_>>(),
        vec![Uuid::from_u128(1)]
    );
    view.insert("orders-us".into(), (Uuid::from_u128(3), 3));
    beat(&mut group, &mut a, &view, 1);
    assert_eq!(count(&a.owned), 5, "2 of orders-eu and 3 of orders-us");
    let bad = group.heartbeat(
        Heartbeat {
            member_id: "b".into(),
            rebalance_timeout_ms: 5000,
            subscribed_topic_regex: Some("(".into()),
            owned: Some(Assignment::new()),
            ..Default::default()
        },
        &view,
        &config(),
        2,
        || unreachable!(),
    );
    assert_eq!(bad.error, ErrorCode::of(ResponseError::InvalidRegularExpression));
}

#[test]
fn offset_commits_check_the_member_epoch() {
    let view = topics(&[("t", 1, 2)]);
    let mut group = ConsumerGroup::new("g");
    let a = join(&mut group, "a", &["t"], &view, 0);
    assert_eq!(group.validate_offset_commit("a", a.epoch), ErrorCode::NONE);
    assert_eq!(
        group.validate_offset_commit("a", a.epoch - 1),
        ErrorCode::of(ResponseError::StaleMemberEpoch)
    );
    assert_eq!(
        group.validate_offset_commit("x", 1),
        ErrorCode::of(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        group.validate_offset_commit("", -1),
        ErrorCode::of(ResponseError::UnknownMemberId)
    );
    assert_eq!(group.validate_offset_fetch(None, -1), ErrorCode::NONE);
}

#[test]
fn the_records_replayed_rebuild_the_group() {
    let view = topics(&[("t", 1, 6)]);
    let mut group = ConsumerGroup::new("g");
    let mut clients: Vec<Client> = ["a", "b"]
        .iter()
        .map(|id| join(&mut group, id, &["t"], &view, 0))
        .collect();
    let mut records = group.take_records();
    for now in 1..4 {
        for client in clients.iter_mut() {
            beat(&mut group, client, &view, now);
        }
        records.extend(group.take_records());
    }
    let mut loaded = ConsumerGroup::new("g");
    for record in &records {
        loaded.replay(record, 10_000, 100);
    }
    loaded.after_load(&view);
    assert_eq!(loaded.group_epoch, group.group_epoch);
    assert_eq!(loaded.assignment_epoch, group.assignment_epoch);
    assert_eq!(loaded.target, group.target);
    for (member_id, member) in &group.members {
        let other = &loaded.members[member_id];
        assert_eq!(
            (other.member_epoch, &other.assigned, &other.subscribed_topic_names),
            (
                member.member_epoch,
                &member.assigned,
                &member.subscribed_topic_names
            )
        );
    }
    assert_eq!(loaded.state(), ConsumerGroupState::Stable);
    // The loaded group answers the members' next heartbeats without fencing them.
    for client in clients.iter_mut() {
        assert_eq!(beat(&mut loaded, client, &view, 200).error, ErrorCode::NONE);
    }
}

#[derive(Debug, Clone)]
enum Step {
    Join(u8),
    Beat(u8),
    Leave(u8),
    Expire(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..5).prop_map(Step::Join),
        (0u8..5).prop_map(Step::Beat),
        (0u8..5).prop_map(Step::Beat),
        (0u8..5).prop_map(Step::Beat),
        (0u8..5).prop_map(Step::Leave),
        (0u8..5).prop_map(Step::Expire),
    ]
}

proptest! {
    /// At every step no partition has two owners; once members stop changing and
    /// keep heartbeating, every partition is assigned exactly once and all are stable.
    #[test]
    fn no_partition_ever_has_two_owners_and_reconciliation_converges(
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let view = topics(&[("t", 1, 7), ("u", 2, 3)]);
        let mut group = ConsumerGroup::new("g");
        let mut clients: BTreeMap<u8, Client> = BTreeMap::new();
        let mut now = 0;
        for step in steps {
            now += 10;
            match step {
                Step::Join(id) if !clients.contains_key(&id) => {
                    let names: &[&str] = if id % 2 == 0 { &["t", "u"] } else { &["t"] };
                    clients.insert(id, join(&mut group, &format!("m{id}"), names, &view, now));
                }
                Step::Join(_) => {}
                Step::Beat(id) => {
                    if let Some(client) = clients.get_mut(&id) {
                        let answer = beat(&mut group, client, &view, now);
                        prop_assert!(answer.error == ErrorCode::NONE, "{:?}", answer);
                    }
                }
                Step::Leave(id) => {
                    if let Some(client) = clients.remove(&id) {
                        group.heartbeat(
                            Heartbeat { member_id: client.member_id, member_epoch: -1, ..Default::default() },
                            &view, &config(), now, || unreachable!(),
                        );
                    }
                }
                Step::Expire(id) => {
                    // The member dies; its session runs out.
                    if let Some(client) = clients.remove(&id)
                        && let Some(member) = group.members.get_mut(&client.member_id)
                    {
                        member.session_deadline_ms = now - 1;
                        group.tick(now);
                    }
                }
            }
            let checked = no_double_owner(&group);
            prop_assert!(checked.is_ok(), "{:?}", checked);
        }
        for _ in 0..4 {
            now += 10;
            for client in clients.values_mut() {
                beat(&mut group, client, &view, now);
            }
        }
        if clients.is_empty() {
            prop_assert_eq!(group.state(), ConsumerGroupState::Empty);
        } else {
            prop_assert_eq!(group.state(), ConsumerGroupState::Stable);
            let mut seen = BTreeSet::new();
            for client in clients.values() {
                for (topic_id, partitions) in &client.owned {
                    for partition in partitions {
                        prop_assert!(seen.insert((*topic_id, *partition)), "owned twice");
                    }
                }
            }
            let expected = if clients.keys().any(|id| id % 2 == 0) { 10 } else { 7 };
            prop_assert_eq!(seen.len(), expected, "every subscribed partition");
        }
    }
}
