//! A KIP-932 share group's membership as a pure state machine: ShareGroupHeartbeat
//! in, the member's epoch and assignment out; sessions end in `tick`.
//!
//! Share group members do not own partitions: many members may be assigned the same
//! partition and the share-partition hands each record to one of them. So there is
//! no revocation: a member simply gets its new assignment at the group epoch. The
//! simple assignor gives every subscribed partition at least one member and every
//! member at least one partition when there are any (with more members than
//! partitions, members share partitions round-robin).

use crate::common::ErrorCode;
use crate::group::consumer::TopicsView;
use crate::group::consumer::assignor::Assignment;
use kafka_protocol::ResponseError;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct ShareMember {
    pub member_id: String,
    pub member_epoch: i32,
    /// The epoch before the last bump: a member whose answer was lost retries with it.
    pub previous_member_epoch: i32,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub assignment: Assignment,
    pub session_deadline_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ShareHeartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub rack_id: Option<String>,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShareAnswer {
    pub error: ErrorCode,
    pub message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    pub assignment: Option<Assignment>,
}

#[derive(Debug, Clone)]
pub struct ShareGroup {
    pub group_id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ShareMember>,
    /// Subscribed topics as last seen: id → partition count.
    subscribed: BTreeMap<Uuid, i32>,
    /// Each member's assignment at `assignment_epoch`; a member takes it (and the
    /// epoch) at its next heartbeat.
    pub target: BTreeMap<String, Assignment>,
    /// Every topic the group has subscribed to since this coordinator loaded it: id →
    /// partition count. Their share-partitions may have state (DescribeShareGroupOffsets
    /// of all topics, DeleteGroups).
    pub known_topics: BTreeMap<Uuid, i32>,
}

impl ShareGroup {
    pub fn new(group_id: &str) -> Self {
        ShareGroup {
            group_id: group_id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            subscribed: BTreeMap::new(),
            target: BTreeMap::new(),
            known_topics: BTreeMap::new(),
        }
    }

    /// "Empty" or "Stable", as ListGroups and ShareGroupDescribe name them.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }

    pub fn heartbeat(
        &mut self,
        request: ShareHeartbeat,
        topics: &TopicsView,
        session_timeout_ms: i32,
        now_ms: i64,
    ) -> ShareAnswer {
        let mut answer = ShareAnswer {
            error: ErrorCode::NONE,
            message: None,
            member_id: request.member_id.clone(),
            member_epoch: request.member_epoch,
            assignment: None,
        };
        let refuse = |answer: &mut ShareAnswer, code: ResponseError, message: String| {
            answer.error = ErrorCode::of(code);
            answer.message = Some(message);
        };
        if request.member_id.is_empty() {
            refuse(
                &mut answer,
                ResponseError::InvalidRequest,
                "MemberId can't be empty.".into(),
            );
            return answer;
        }
        match request.member_epoch {
            -1 => {
                if self.members.remove(&request.member_id).is_some() {
                    self.target.remove(&request.member_id);
                    self.group_epoch += 1;
                }
                return answer;
            }
            0 => {
                if request.subscribed_topic_names.is_none() {
                    let message = "SubscribedTopicNames must be set in first request.".to_string();
                    refuse(&mut answer, ResponseError::InvalidRequest, message);
                    return answer;
                }
                if !self.members.contains_key(&request.member_id) {
                    self.members.insert(
                        request.member_id.clone(),
                        ShareMember {
                            member_id: request.member_id.clone(),
                            member_epoch: 0,
                            previous_member_epoch: 0,
                            rack_id: None,
                            client_id: String::new(),
                            client_host: String::new(),
                            subscribed_topic_names: Vec::new(),
                            assignment: Assignment::new(),
                            session_deadline_ms: now_ms,
                        },
                    );
                    self.group_epoch += 1;
                }
            }
            epoch if epoch < 0 => {
                let message = format!("MemberEpoch {epoch} is invalid.");
                refuse(&mut answer, ResponseError::InvalidRequest, message);
                return answer;
            }
            epoch => match self.members.get(&request.member_id) {
                None => {
                    let message = format!(
                        "Member {} is not a member of group {}.",
                        request.member_id, self.group_id
                    );
                    refuse(&mut answer, ResponseError::UnknownMemberId, message);
                    return answer;
                }
                Some(member) if member.member_epoch != epoch && member.previous_member_epoch != epoch => {
                    let message = format!(
                        "The member epoch {epoch} is fenced; the current one is {}.",
                        member.member_epoch
                    );
                    refuse(&mut answer, ResponseError::FencedMemberEpoch, message);
                    return answer;
                }
                Some(_) => {}
            },
        }
        let Some(member) = self.members.get_mut(&request.member_id) else {
            return answer;
        };
        member.session_deadline_ms = now_ms + i64::from(session_timeout_ms);
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        if request.rack_id.is_some() {
            member.rack_id = request.rack_id;
        }
        if let Some(mut names) = request.subscribed_topic_names {
            names.sort();
            names.dedup();
            if names != member.subscribed_topic_names {
                member.subscribed_topic_names = names;
                self.group_epoch += 1;
            }
        }
        self.refresh_subscribed(topics);
        self.assign(topics);
        let target = self.target.get(&request.member_id).cloned().unwrap_or_default();
        let assignment_epoch = self.assignment_epoch;
        let Some(member) = self.members.get_mut(&request.member_id) else {
            return answer;
        };
        let changed = member.member_epoch != assignment_epoch;
        if changed {
            member.previous_member_epoch = member.member_epoch;
            member.member_epoch = assignment_epoch;
            member.assignment = target;
        }
        answer.member_epoch = member.member_epoch;
        if changed || request.member_epoch == 0 {
            answer.assignment = Some(member.assignment.clone());
        }
        answer
    }

    fn refresh_subscribed(&mut self, topics: &TopicsView) {
        let names: BTreeSet<&String> = self
            .members
            .values()
            .flat_map(|member| member.subscribed_topic_names.iter())
            .collect();
        let now: BTreeMap<Uuid, i32> = names
            .into_iter()
            .filter_map(|name| topics.get(name).copied())
            .collect();
        if now != self.subscribed {
            self.known_topics
                .extend(now.iter().map(|(topic_id, n)| (*topic_id, *n)));
            self.subscribed = now;
            self.group_epoch += 1;
        }
    }

    /// The simple assignor, when the group epoch moved: every member moves to it.
    fn assign(&mut self, topics: &TopicsView) {
        if self.assignment_epoch == self.group_epoch {
            return;
        }
        let mut target: BTreeMap<String, Assignment> = self
            .members
            .keys()
            .map(|id| (id.clone(), Assignment::new()))
            .collect();
        for (name, (topic_id, n_partitions)) in topics {
            let subscribers: Vec<&String> = self
                .members
                .values()
                .filter(|member| member.subscribed_topic_names.contains(name))
                .map(|member| &member.member_id)
                .collect();
            if subscribers.is_empty() || *n_partitions <= 0 {
                continue;
            }
            let n = (*n_partitions as usize).max(subscribers.len());
            for slot in 0..n {
                let partition = (slot % *n_partitions as usize) as i32;
                let member_id = subscribers[slot % subscribers.len()];
                target
                    .entry(member_id.clone())
                    .or_default()
                    .entry(*topic_id)
                    .or_default()
                    .insert(partition);
            }
        }
        self.target = target;
        self.assignment_epoch = self.group_epoch;
    }

    /// Members whose session ended leave; returns their ids.
    pub fn tick(&mut self, now_ms: i64) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|member| member.session_deadline_ms < now_ms)
            .map(|member| member.member_id.clone())
            .collect();
        for member_id in &expired {
            self.members.remove(member_id);
            self.target.remove(member_id);
        }
        if !expired.is_empty() {
            self.group_epoch += 1;
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> TopicsView {
        TopicsView::from([
            ("t".to_string(), (Uuid::from_u128(1), 1)),
            ("u".to_string(), (Uuid::from_u128(2), 4)),
        ])
    }

    fn join(group: &mut ShareGroup, id: &str, topics: &[&str], now: i64) -> ShareAnswer {
        group.heartbeat(
            ShareHeartbeat {
                member_id: id.into(),
                member_epoch: 0,
                subscribed_topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
                ..Default::default()
            },
            &view(),
            10_000,
            now,
        )
    }

    /// Every member heartbeats once more at its epoch, and takes the newest target.
    fn settle(group: &mut ShareGroup) {
        let members: Vec<(String, i32)> = group
            .members
            .values()
            .map(|m| (m.member_id.clone(), m.member_epoch))
            .collect();
        for (member_id, epoch) in members {
            let answer = group.heartbeat(
                ShareHeartbeat {
                    member_id,
                    member_epoch: epoch,
                    ..Default::default()
                },
                &view(),
                10_000,
                1,
            );
            assert_eq!(answer.error, ErrorCode::NONE, "{answer:?}");
        }
    }

    #[test]
    fn three_members_share_one_partition() {
        let mut group = ShareGroup::new("s");
        for id in ["a", "b", "c"] {
            join(&mut group, id, &["t"], 0);
        }
        settle(&mut group);
        for member in group.members.values() {
            assert_eq!(
                member.assignment[&Uuid::from_u128(1)],
                BTreeSet::from([0]),
                "{member:?}"
            );
        }
    }

    #[test]
    fn every_partition_has_a_member_and_every_member_a_partition() {
        let mut group = ShareGroup::new("s");
        join(&mut group, "a", &["u"], 0);
        join(&mut group, "b", &["u"], 0);
        settle(&mut group);
        let mut covered = BTreeSet::new();
        for member in group.members.values() {
            let partitions = &member.assignment[&Uuid::from_u128(2)];
            assert_eq!(partitions.len(), 2);
            covered.extend(partitions.iter().copied());
        }
        assert_eq!(covered, BTreeSet::from([0, 1, 2, 3]));
    }

    #[test]
    fn epochs_fence_and_sessions_end() {
        let mut group = ShareGroup::new("s");
        let joined = join(&mut group, "a", &["t"], 0);
        let beat = |group: &mut ShareGroup, epoch, now| {
            group.heartbeat(
                ShareHeartbeat {
                    member_id: "a".into(),
                    member_epoch: epoch,
                    ..Default::default()
                },
                &view(),
                10_000,
                now,
            )
        };
        assert_eq!(beat(&mut group, joined.member_epoch, 5).error, ErrorCode::NONE);
        assert_eq!(
            beat(&mut group, joined.member_epoch + 1, 6).error,
            ErrorCode::of(ResponseError::FencedMemberEpoch)
        );
        assert!(group.tick(10_004).is_empty());
        assert_eq!(group.tick(10_006), vec!["a".to_string()]);
        assert_eq!(group.state_name(), "Empty");
    }
}
