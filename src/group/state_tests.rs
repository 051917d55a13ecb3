//! Unit tests for every transition of the group state machine.

use super::*;

const CONFIG: GroupConfig = GroupConfig {
    min_session_timeout_ms: 6_000,
    max_session_timeout_ms: 1_800_000,
    initial_rebalance_delay_ms: 0,
};

fn request(member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        group_instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|name| (name.to_string(), Bytes::from(format!("meta-{name}"))))
            .collect(),
        require_known_member_id: false,
    }
}

fn join(group: &mut Group, request: JoinRequest, now: i64, id: &str) -> (Answer<JoinResult>, Vec<Reply>) {
    group.join(request, &CONFIG, now, || id.to_string())
}

fn join_replies(replies: &[Reply]) -> Vec<(String, JoinResult)> {
    replies
        .iter()
        .filter_map(|reply| match reply {
            Reply::Join(id, result) => Some((id.clone(), result.clone())),
            Reply::Sync(..) => None,
        })
        .collect()
}

/// A group with members a (leader) and b, Stable at generation 2.
fn stable_pair() -> Group {
    let mut group = Group::new("g", 0);
    join(&mut group, request("", &["range"]), 0, "a");
    group.sync(
        "a",
        None,
        1,
        (None, None),
        vec![("a".into(), Bytes::from("A"))],
        0,
    );
    let (answer, _) = join(&mut group, request("", &["range"]), 10, "b");
    assert_eq!(answer, Answer::Later("b".into()));
    let (_, replies) = join(&mut group, request("a", &["range"]), 20, "unused");
    assert_eq!(join_replies(&replies).len(), 2);
    group.sync("b", None, 2, (None, None), vec![], 30);
    let (_, replies) = group.sync(
        "a",
        None,
        2,
        (None, None),
        vec![("a".into(), Bytes::from("A2")), ("b".into(), Bytes::from("B2"))],
        30,
    );
    assert_eq!(replies.len(), 2);
    assert_eq!(group.state, GroupState::Stable);
    group
}

#[test]
fn new_member_needs_a_member_id_from_v4() {
    let mut group = Group::new("g", 0);
    let mut first = request("", &["range"]);
    first.require_known_member_id = true;
    let (answer, replies) = join(&mut group, first, 0, "m-1");
    let Answer::Now(result) = answer else {
        panic!("expected an immediate answer")
    };
    assert_eq!(result.error, MEMBER_ID_REQUIRED);
    assert_eq!(result.member_id, "m-1");
    assert!(replies.is_empty());
    assert_eq!(group.state, GroupState::Empty);
    // Rejoining with the id completes the first rebalance at once (no initial delay).
    let (answer, replies) = join(&mut group, request("m-1", &["range"]), 1, "unused");
    assert_eq!(answer, Answer::Later("m-1".into()));
    let joined = join_replies(&replies);
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0].1.generation_id, 1);
    assert_eq!(joined[0].1.leader_id, "m-1");
    assert_eq!(joined[0].1.members.len(), 1, "the leader gets the member list");
    assert_eq!(group.state, GroupState::CompletingRebalance);
}

#[test]
fn leader_sync_makes_the_group_stable_and_answers_waiting_followers() {
    let mut group = Group::new("g", 0);
    join(&mut group, request("", &["range"]), 0, "a");
    let (_, replies) = join(&mut group, request("", &["range"]), 0, "b");
    // b joined while a had not been answered yet... both are awaiting: all joined.
    assert_eq!(
        join_replies(&replies).len(),
        0,
        "a was already answered by its own join"
    );
    assert_eq!(group.state, GroupState::PreparingRebalance);
    let (_, replies) = join(&mut group, request("a", &["range"]), 1, "unused");
    let joined = join_replies(&replies);
    assert_eq!(joined.len(), 2);
    let leader = joined.iter().find(|(id, _)| id == "a").unwrap();
    let follower = joined.iter().find(|(id, _)| id == "b").unwrap();
    assert_eq!(leader.1.members.len(), 2);
    assert!(follower.1.members.is_empty());
    let generation = leader.1.generation_id;
    let (answer, replies) = group.sync("b", None, generation, (None, None), vec![], 2);
    assert_eq!(answer, Answer::Later("b".into()));
    assert!(replies.is_empty());
    let (answer, replies) = group.sync(
        "a",
        None,
        generation,
        (Some("consumer"), Some("range")),
        vec![("a".into(), Bytes::from("A")), ("b".into(), Bytes::from("B"))],
        3,
    );
    assert_eq!(answer, Answer::Later("a".into()));
    assert_eq!(group.state, GroupState::Stable);
    assert!(replies.contains(&Reply::Sync(
        "b".into(),
        SyncResult {
            error: NONE,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignment: Bytes::from("B"),
        }
    )));
    assert!(group.take_dirty());
    // In Stable a sync is answered at once with the stored assignment.
    let (answer, _) = group.sync("b", None, generation, (None, None), vec![], 4);
    assert!(matches!(answer, Answer::Now(SyncResult { error: NONE, .. })));
}

#[test]
fn a_new_member_triggers_a_rebalance_that_others_see_in_heartbeats() {
    let mut group = stable_pair();
    assert_eq!(group.heartbeat("b", None, 2, 100), NONE);
    let (answer, _) = join(&mut group, request("", &["range"]), 100, "c");
    assert_eq!(answer, Answer::Later("c".into()));
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(group.heartbeat("a", None, 2, 101), REBALANCE_IN_PROGRESS);
    assert_eq!(
        group.validate_commit("a", None, 2),
        NONE,
        "commits allowed while preparing"
    );
    join(&mut group, request("a", &["range"]), 102, "unused");
    let (_, replies) = join(&mut group, request("b", &["range"]), 103, "unused");
    assert_eq!(join_replies(&replies).len(), 3);
    assert_eq!(group.generation_id, 3);
    assert_eq!(
        group.leader_id.as_deref(),
        Some("a"),
        "the old leader stays leader"
    );
    assert_eq!(group.validate_commit("a", None, 3), REBALANCE_IN_PROGRESS);
}

#[test]
fn errors_for_unknown_members_and_old_generations() {
    let mut group = stable_pair();
    assert_eq!(group.heartbeat("zz", None, 2, 1), UNKNOWN_MEMBER_ID);
    assert_eq!(group.heartbeat("a", None, 1, 1), ILLEGAL_GENERATION);
    assert_eq!(group.validate_commit("a", None, 1), ILLEGAL_GENERATION);
    assert_eq!(group.validate_commit("zz", None, 2), UNKNOWN_MEMBER_ID);
    assert_eq!(
        group.validate_commit("", None, -1),
        UNKNOWN_MEMBER_ID,
        "group has members"
    );
    let (answer, _) = group.sync("a", None, 1, (None, None), vec![], 1);
    assert_eq!(answer, Answer::Now(SyncResult::error(ILLEGAL_GENERATION)));
    let (answer, _) = join(&mut group, request("zz", &["range"]), 1, "unused");
    assert!(matches!(
        answer,
        Answer::Now(JoinResult {
            error: UNKNOWN_MEMBER_ID,
            ..
        })
    ));
    let mut bad = request("", &["range"]);
    bad.session_timeout_ms = 10;
    let (answer, _) = join(&mut group, bad, 1, "x");
    assert!(matches!(
        answer,
        Answer::Now(JoinResult {
            error: INVALID_SESSION_TIMEOUT,
            ..
        })
    ));
    let (answer, _) = join(&mut group, request("", &["roundrobin"]), 1, "x");
    assert!(matches!(
        answer,
        Answer::Now(JoinResult {
            error: INCONSISTENT_GROUP_PROTOCOL,
            ..
        })
    ));
    let mut other_type = request("", &["range"]);
    other_type.protocol_type = "connect".into();
    let (answer, _) = join(&mut group, other_type, 1, "x");
    assert!(matches!(
        answer,
        Answer::Now(JoinResult {
            error: INCONSISTENT_GROUP_PROTOCOL,
            ..
        })
    ));
}

#[test]
fn session_expiry_removes_the_member_and_rebalances() {
    let mut group = stable_pair();
    assert_eq!(group.heartbeat("a", None, 2, 9_000), NONE);
    // b's last heartbeat was at 30; its 10 s session ends at 10_030.
    assert!(group.tick(10_000).is_empty());
    group.tick(10_030);
    assert!(group.member("b").is_none());
    assert_eq!(group.state, GroupState::PreparingRebalance);
    let (_, replies) = join(&mut group, request("a", &["range"]), 10_040, "unused");
    assert_eq!(join_replies(&replies).len(), 1);
    assert_eq!(group.state, GroupState::CompletingRebalance);
    assert_eq!(group.generation_id, 3);
}

#[test]
fn leave_rebalances_and_last_leave_empties_the_group() {
    let mut group = stable_pair();
    let (code, _) = group.leave("b", None, 50);
    assert_eq!(code, NONE);
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(group.leave("b", None, 51).0, UNKNOWN_MEMBER_ID);
    join(&mut group, request("a", &["range"]), 52, "unused");
    assert_eq!(group.state, GroupState::CompletingRebalance);
    group.leave("a", None, 53);
    // Nobody left to rejoin: the rebalance completes into Empty.
    assert_eq!(group.state, GroupState::Empty);
    assert!(group.members.is_empty());
    assert_eq!(
        group.validate_commit("", None, -1),
        NONE,
        "standalone commits on an empty group"
    );
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
    let mut group = stable_pair();
    join(&mut group, request("a", &["range"]), 1_000, "unused");
    assert_eq!(group.state, GroupState::PreparingRebalance);
    // b keeps heartbeating but never rejoins; the rebalance timeout is 30 s.
    assert_eq!(group.heartbeat("b", None, 2, 25_000), REBALANCE_IN_PROGRESS);
    assert!(group.tick(30_999).is_empty());
    let replies = group.tick(31_000);
    let joined = join_replies(&replies);
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0].0, "a");
    assert!(group.member("b").is_none());
}

#[test]
fn initial_rebalance_delay_waits_for_more_members() {
    let config = GroupConfig {
        initial_rebalance_delay_ms: 3_000,
        ..CONFIG
    };
    let mut group = Group::new("g", 0);
    let (_, replies) = group.join(request("", &["range"]), &config, 0, || "a".into());
    assert!(replies.is_empty(), "held for the initial delay");
    let (_, replies) = group.join(request("", &["range"]), &config, 2_000, || "b".into());
    assert!(replies.is_empty());
    // The delay was pushed to 5_000 by b's join.
    assert!(group.tick(4_999).is_empty());
    let replies = group.tick(5_000);
    assert_eq!(join_replies(&replies).len(), 2);
    assert_eq!(group.generation_id, 1);
}

#[test]
fn static_member_rejoins_without_rebalance_and_fences_its_old_id() {
    let mut group = Group::new("g", 0);
    let mut static_request = request("", &["range"]);
    static_request.group_instance_id = Some("instance-1".into());
    join(&mut group, static_request.clone(), 0, "old");
    group.sync(
        "old",
        Some("instance-1"),
        1,
        (None, None),
        vec![("old".into(), Bytes::from("X"))],
        0,
    );
    assert_eq!(group.state, GroupState::Stable);
    let (answer, _) = join(&mut group, static_request, 100, "new");
    let Answer::Now(result) = answer else {
        panic!("static rejoin answers at once")
    };
    assert_eq!(result.error, NONE);
    assert_eq!(result.member_id, "new");
    assert_eq!(result.generation_id, 1, "no rebalance");
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(
        group.heartbeat("old", Some("instance-1"), 1, 101),
        FENCED_INSTANCE_ID
    );
    assert_eq!(group.heartbeat("new", Some("instance-1"), 1, 101), NONE);
    let (answer, _) = group.sync("new", Some("instance-1"), 1, (None, None), vec![], 102);
    assert_eq!(
        answer,
        Answer::Now(SyncResult {
            error: NONE,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignment: Bytes::from("X"),
        })
    );
    assert_eq!(group.leave("", Some("instance-1"), 103).0, NONE);
    assert_eq!(group.state, GroupState::Empty);
}

#[test]
fn leader_that_never_syncs_is_dropped_at_the_sync_deadline() {
    let mut group = Group::new("g", 0);
    join(&mut group, request("", &["range"]), 0, "a");
    join(&mut group, request("", &["range"]), 0, "b");
    join(&mut group, request("a", &["range"]), 0, "unused");
    assert_eq!(group.state, GroupState::CompletingRebalance);
    let (answer, _) = group.sync("b", None, group.generation_id, (None, None), vec![], 10);
    assert_eq!(answer, Answer::Later("b".into()));
    let replies = group.tick(30_000);
    assert!(group.member("a").is_none(), "the silent leader is gone");
    assert!(replies.contains(&Reply::Sync("b".into(), SyncResult::error(REBALANCE_IN_PROGRESS))));
    assert_eq!(group.state, GroupState::PreparingRebalance);
}

#[test]
fn protocol_selection_takes_the_most_preferred_common_protocol() {
    let mut group = Group::new("g", 0);
    join(&mut group, request("", &["cooperative-sticky", "range"]), 0, "a");
    join(&mut group, request("", &["range", "cooperative-sticky"]), 0, "b");
    join(&mut group, request("", &["range"]), 0, "c");
    join(
        &mut group,
        request("a", &["cooperative-sticky", "range"]),
        0,
        "unused",
    );
    join(
        &mut group,
        request("b", &["range", "cooperative-sticky"]),
        0,
        "unused",
    );
    assert_eq!(group.state, GroupState::CompletingRebalance);
    assert_eq!(group.protocol_name.as_deref(), Some("range"));
}

#[test]
fn restored_group_is_stable_with_its_members() {
    let member = Group::restored_member(
        "m".into(),
        None,
        "c".into(),
        "/h".into(),
        10_000,
        30_000,
        Some(("range".into(), Bytes::from("meta"))),
        Bytes::from("assignment"),
    );
    let mut group = Group::restore(
        "g",
        7,
        Some("consumer".into()),
        Some("range".into()),
        Some("m".into()),
        vec![member],
        500,
    );
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(group.heartbeat("m", None, 7, 600), NONE);
    // Its session starts at the restore time.
    assert!(group.tick(10_499).is_empty());
    group.tick(10_600);
    assert!(group.member("m").is_none());
}
