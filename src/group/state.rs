//! The classic consumer-group state machine, as a pure core: no IO, time passed in.
//!
//! States: Empty → PreparingRebalance → CompletingRebalance → Stable, and Dead once a
//! group is deleted. A JoinGroup or SyncGroup that has to wait (for the other members,
//! or for the leader's assignment) gets `Answer::Later`; its answer comes back later as a
//! [`Reply`] from whichever call completes the step (another member's join or sync, a
//! leave, or `tick` when a timeout passes). The caller keeps one waiter per member and
//! hands each reply to it.

pub use super::member::{Answer, JoinRequest, JoinResult, Member, Reply, SyncResult};
use crate::common::ErrorCode;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};

/// Kafka error codes the group APIs answer with.
pub mod codes {
    use crate::common::ErrorCode;
    use kafka_protocol::ResponseError;
    pub const NONE: ErrorCode = ErrorCode::NONE;
    pub const ILLEGAL_GENERATION: ErrorCode = ErrorCode::of(ResponseError::IllegalGeneration);
    pub const INCONSISTENT_GROUP_PROTOCOL: ErrorCode =
        ErrorCode::of(ResponseError::InconsistentGroupProtocol);
    pub const UNKNOWN_MEMBER_ID: ErrorCode = ErrorCode::of(ResponseError::UnknownMemberId);
    pub const INVALID_SESSION_TIMEOUT: ErrorCode = ErrorCode::of(ResponseError::InvalidSessionTimeout);
    pub const REBALANCE_IN_PROGRESS: ErrorCode = ErrorCode::of(ResponseError::RebalanceInProgress);
    pub const MEMBER_ID_REQUIRED: ErrorCode = ErrorCode::of(ResponseError::MemberIdRequired);
    pub const FENCED_INSTANCE_ID: ErrorCode = ErrorCode::of(ResponseError::FencedInstanceId);
}
use codes::*;

/// How long a member that joined but was never answered is kept (Kafka's 5 minutes).
const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 300_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// Kafka's name for the state, as DescribeGroups and ListGroups report it.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Limits from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    /// Members in join order.
    pub members: BTreeMap<u64, Member>,
    next_join_order: u64,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with their expiry time.
    pending_members: HashMap<String, i64>,
    /// group.instance.id → member id of static members.
    static_members: HashMap<String, String>,
    /// When a rebalance (PreparingRebalance) or sync wait (CompletingRebalance) times out.
    rebalance_deadline_ms: i64,
    /// `group.initial.rebalance.delay.ms` window of a first rebalance: (deadline, cap).
    initial_delay: Option<(i64, i64)>,
    /// When the state last changed (offsets of an Empty group expire from here).
    pub state_timestamp_ms: i64,
    /// Set when the group metadata changed in a way worth persisting.
    dirty: bool,
}

impl Group {
    pub fn new(group_id: &str, now_ms: i64) -> Self {
        Group {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            next_join_order: 0,
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline_ms: 0,
            initial_delay: None,
            state_timestamp_ms: now_ms,
            dirty: false,
        }
    }

    /// Rebuilds a group from persisted metadata; members get a fresh session.
    pub fn restore(
        group_id: &str,
        generation_id: i32,
        protocol_type: Option<String>,
        protocol_name: Option<String>,
        leader_id: Option<String>,
        members: Vec<Member>,
        now_ms: i64,
    ) -> Self {
        let mut group = Group::new(group_id, now_ms);
        group.generation_id = generation_id;
        group.protocol_type = protocol_type;
        group.protocol_name = protocol_name;
        group.leader_id = leader_id;
        for mut member in members {
            member.last_heartbeat_ms = now_ms;
            if let Some(instance) = &member.group_instance_id {
                group
                    .static_members
                    .insert(instance.clone(), member.member_id.clone());
            }
            group.add_member(member);
        }
        group.state = if group.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        group
    }

    /// A persisted-metadata-ready member, for restoring.
    #[allow(clippy::too_many_arguments)]
    pub fn restored_member(
        member_id: String,
        group_instance_id: Option<String>,
        client_id: String,
        client_host: String,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
        protocol: Option<(String, Bytes)>,
        assignment: Bytes,
    ) -> Member {
        Member {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            session_timeout_ms,
            rebalance_timeout_ms,
            protocols: protocol.into_iter().collect(),
            assignment,
            last_heartbeat_ms: 0,
            awaiting_join: false,
            awaiting_sync: false,
            is_new: false,
        }
    }

    /// Whether the metadata changed since the last call (and clears the flag).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    fn add_member(&mut self, member: Member) {
        self.members.insert(self.next_join_order, member);
        self.next_join_order += 1;
    }

    fn order_of(&self, member_id: &str) -> Option<u64> {
        self.members
            .iter()
            .find(|(_, member)| member.member_id == member_id)
            .map(|(order, _)| *order)
    }

    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.values().find(|member| member.member_id == member_id)
    }

    fn member_mut(&mut self, member_id: &str) -> Option<&mut Member> {
        self.members
            .values_mut()
            .find(|member| member.member_id == member_id)
    }

    fn set_state(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    /// Static-membership check: the instance id, if any, must map to this member id.
    fn fenced(&self, member_id: &str, group_instance_id: Option<&str>) -> bool {
        match group_instance_id.and_then(|instance| self.static_members.get(instance)) {
            Some(current) => current != member_id,
            None => false,
        }
    }

    /// The protocols every member supports, in the order the first member prefers them.
    fn candidate_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return Vec::new();
        };
        let others: Vec<&Member> = members.collect();
        first
            .protocols
            .iter()
            .map(|(name, _)| name.clone())
            .filter(|name| {
                others
                    .iter()
                    .all(|member| member.protocols.iter().any(|(other, _)| other == name))
            })
            .collect()
    }

    /// Kafka's rule: each member votes for its most preferred candidate; most votes wins.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|name| (name.clone(), 0)).collect();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(name, _)| candidates.contains(name))
                && let Some(vote) = votes.iter_mut().find(|(candidate, _)| candidate == name)
            {
                vote.1 += 1;
            }
        }
        let best = votes.iter().map(|(_, count)| *count).max()?;
        votes
            .into_iter()
            .find(|(_, count)| *count == best)
            .map(|(name, _)| name)
    }

    /// Whether a joining member's protocols fit the group.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidate_protocols();
        protocols.iter().any(|(name, _)| candidates.contains(name))
    }

    fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|member| member.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0)
    }

    fn join_result_for(&self, member_id: &str) -> JoinResult {
        let is_leader = self.leader_id.as_deref() == Some(member_id);
        let protocol = self.protocol_name.clone().unwrap_or_default();
        JoinResult {
            error: NONE,
            member_id: member_id.to_string(),
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader_id: self.leader_id.clone().unwrap_or_default(),
            members: if is_leader {
                self.members
                    .values()
                    .map(|member| {
                        (
                            member.member_id.clone(),
                            member.group_instance_id.clone(),
                            member.metadata(&protocol),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
            skip_assignment: false,
        }
    }

    pub fn join(
        &mut self,
        request: JoinRequest,
        config: &GroupConfig,
        now_ms: i64,
        new_member_id: impl FnOnce() -> String,
    ) -> (Answer<JoinResult>, Vec<Reply>) {
        let member_id = request.member_id.clone();
        let now = |error| (Answer::Now(JoinResult::error(error, &member_id)), Vec::new());
        if request.session_timeout_ms < config.min_session_timeout_ms
            || request.session_timeout_ms > config.max_session_timeout_ms
        {
            return now(INVALID_SESSION_TIMEOUT);
        }
        if self.state == GroupState::Dead {
            return now(UNKNOWN_MEMBER_ID);
        }
        if !self.supports(&request.protocol_type, &request.protocols) {
            return now(INCONSISTENT_GROUP_PROTOCOL);
        }
        let instance = request.group_instance_id.clone();
        if member_id.is_empty() {
            // A known static instance rejoining under a new member id replaces the old one.
            if let Some(instance) = &instance
                && let Some(old_id) = self.static_members.get(instance).cloned()
            {
                return self.replace_static_member(&old_id, request, now_ms, new_member_id());
            }
            let new_id = new_member_id();
            if request.require_known_member_id && instance.is_none() {
                let expiry = now_ms + request.session_timeout_ms as i64;
                self.pending_members.insert(new_id.clone(), expiry);
                return (
                    Answer::Now(JoinResult::error(MEMBER_ID_REQUIRED, &new_id)),
                    Vec::new(),
                );
            }
            return self.add_new_member(new_id, request, now_ms, config);
        }
        if self.fenced(&member_id, instance.as_deref()) {
            return now(FENCED_INSTANCE_ID);
        }
        if self.pending_members.remove(&member_id).is_some() {
            return self.add_new_member(member_id, request, now_ms, config);
        }
        let Some(member) = self.member(&member_id).cloned() else {
            return now(UNKNOWN_MEMBER_ID);
        };
        let same_protocols = member.protocols == request.protocols;
        let is_leader = self.leader_id.as_deref() == Some(member_id.as_str());
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance
                if same_protocols && (!is_leader || self.state == GroupState::CompletingRebalance) =>
            {
                if let Some(member) = self.member_mut(&member_id) {
                    member.last_heartbeat_ms = now_ms;
                }
                (Answer::Now(self.join_result_for(&member_id)), Vec::new())
            }
            _ => {
                if let Some(member) = self.member_mut(&member_id) {
                    member.protocols = request.protocols;
                    member.session_timeout_ms = request.session_timeout_ms;
                    member.rebalance_timeout_ms = request.rebalance_timeout_ms;
                    member.awaiting_join = true;
                    member.last_heartbeat_ms = now_ms;
                }
                let mut replies = Vec::new();
                if self.state != GroupState::PreparingRebalance {
                    replies.extend(self.prepare_rebalance(now_ms, config));
                }
                replies.extend(self.maybe_complete_join(now_ms));
                (Answer::Later(member_id), replies)
            }
        }
    }

    fn add_new_member(
        &mut self,
        member_id: String,
        request: JoinRequest,
        now_ms: i64,
        config: &GroupConfig,
    ) -> (Answer<JoinResult>, Vec<Reply>) {
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        if let Some(instance) = &request.group_instance_id {
            self.static_members.insert(instance.clone(), member_id.clone());
        }
        self.add_member(Member {
            member_id: member_id.clone(),
            group_instance_id: request.group_instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            protocols: request.protocols,
            assignment: Bytes::new(),
            last_heartbeat_ms: now_ms,
            awaiting_join: true,
            awaiting_sync: false,
            is_new: true,
        });
        let mut replies = Vec::new();
        match self.state {
            GroupState::PreparingRebalance => {
                // A new member during the initial delay pushes the delay out, up to its cap.
                if let Some((deadline, cap)) = self.initial_delay.as_mut() {
                    *deadline = (now_ms + config.initial_rebalance_delay_ms)
                        .min(*cap)
                        .max(*deadline);
                }
                self.rebalance_deadline_ms = self
                    .rebalance_deadline_ms
                    .max(now_ms + self.max_rebalance_timeout_ms());
            }
            _ => replies.extend(self.prepare_rebalance(now_ms, config)),
        }
        replies.extend(self.maybe_complete_join(now_ms));
        (Answer::Later(member_id), replies)
    }

    fn replace_static_member(
        &mut self,
        old_id: &str,
        request: JoinRequest,
        now_ms: i64,
        new_id: String,
    ) -> (Answer<JoinResult>, Vec<Reply>) {
        let mut replies = Vec::new();
        let Some(order) = self.order_of(old_id) else {
            return (Answer::Now(JoinResult::error(UNKNOWN_MEMBER_ID, "")), replies);
        };
        let same_protocols = self
            .members
            .get(&order)
            .is_some_and(|member| member.protocols == request.protocols);
        if let Some(member) = self.members.get_mut(&order) {
            // The old incarnation is fenced: answer anything it still waits for.
            if member.awaiting_join {
                replies.push(Reply::Join(
                    old_id.to_string(),
                    JoinResult::error(FENCED_INSTANCE_ID, old_id),
                ));
            }
            if member.awaiting_sync {
                replies.push(Reply::Sync(
                    old_id.to_string(),
                    SyncResult::error(FENCED_INSTANCE_ID),
                ));
            }
            member.member_id = new_id.clone();
            member.client_id = request.client_id.clone();
            member.client_host = request.client_host.clone();
            member.session_timeout_ms = request.session_timeout_ms;
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
            member.last_heartbeat_ms = now_ms;
            member.awaiting_sync = false;
        }
        if let Some(instance) = &request.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.leader_id.as_deref() == Some(old_id) {
            self.leader_id = Some(new_id.clone());
        }
        self.dirty = true;
        if self.state == GroupState::Stable && same_protocols {
            // No rebalance: the static member gets its old place and assignment back.
            let mut result = self.join_result_for(&new_id);
            result.skip_assignment = !result.members.is_empty();
            return (Answer::Now(result), replies);
        }
        if let Some(member) = self.members.get_mut(&order) {
            member.protocols = request.protocols;
            member.awaiting_join = true;
        }
        let config = GroupConfig {
            min_session_timeout_ms: 0,
            max_session_timeout_ms: i32::MAX,
            initial_rebalance_delay_ms: 0,
        };
        if self.state != GroupState::PreparingRebalance {
            replies.extend(self.prepare_rebalance(now_ms, &config));
        }
        replies.extend(self.maybe_complete_join(now_ms));
        (Answer::Later(new_id), replies)
    }

    /// Moves to PreparingRebalance: members must rejoin; pending syncs are told so.
    fn prepare_rebalance(&mut self, now_ms: i64, config: &GroupConfig) -> Vec<Reply> {
        let mut replies = Vec::new();
        for member in self.members.values_mut() {
            if member.awaiting_sync {
                member.awaiting_sync = false;
                replies.push(Reply::Sync(
                    member.member_id.clone(),
                    SyncResult::error(REBALANCE_IN_PROGRESS),
                ));
            }
        }
        let timeout = self.max_rebalance_timeout_ms();
        self.initial_delay =
            (self.state == GroupState::Empty && config.initial_rebalance_delay_ms > 0).then(|| {
                (
                    now_ms + config.initial_rebalance_delay_ms.min(timeout),
                    now_ms + timeout,
                )
            });
        self.rebalance_deadline_ms = now_ms + timeout;
        self.set_state(GroupState::PreparingRebalance, now_ms);
        replies
    }

    fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|member| member.awaiting_join)
    }

    fn maybe_complete_join(&mut self, now_ms: i64) -> Vec<Reply> {
        if self.state != GroupState::PreparingRebalance {
            return Vec::new();
        }
        let delay_over = self.initial_delay.is_none_or(|(deadline, _)| now_ms >= deadline);
        if (self.all_members_joined() && delay_over) || now_ms >= self.rebalance_deadline_ms {
            self.complete_join(now_ms)
        } else {
            Vec::new()
        }
    }

    /// Ends the join phase: members that did not rejoin are dropped, the generation moves
    /// on, a protocol and a leader are chosen and every waiting member is answered.
    fn complete_join(&mut self, now_ms: i64) -> Vec<Reply> {
        let dropped: Vec<u64> = self
            .members
            .iter()
            .filter(|(_, member)| !member.awaiting_join)
            .map(|(order, _)| *order)
            .collect();
        for order in dropped {
            self.remove_member_at(order);
        }
        self.pending_members.clear();
        self.initial_delay = None;
        self.generation_id += 1;
        self.dirty = true;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader_id = None;
            self.set_state(GroupState::Empty, now_ms);
            return Vec::new();
        }
        self.protocol_name = self.select_protocol();
        let leader_present = self
            .leader_id
            .as_deref()
            .is_some_and(|leader| self.member(leader).is_some());
        if !leader_present {
            self.leader_id = self
                .members
                .values()
                .next()
                .map(|member| member.member_id.clone());
        }
        self.set_state(GroupState::CompletingRebalance, now_ms);
        self.rebalance_deadline_ms = now_ms + self.max_rebalance_timeout_ms();
        let ids: Vec<String> = self
            .members
            .values()
            .map(|member| member.member_id.clone())
            .collect();
        let mut replies = Vec::with_capacity(ids.len());
        for member_id in ids {
            replies.push(Reply::Join(member_id.clone(), self.join_result_for(&member_id)));
            if let Some(member) = self.member_mut(&member_id) {
                member.awaiting_join = false;
                member.is_new = false;
                member.last_heartbeat_ms = now_ms;
            }
        }
        replies
    }

    fn remove_member_at(&mut self, order: u64) -> Option<Member> {
        let member = self.members.remove(&order)?;
        if let Some(instance) = &member.group_instance_id
            && self.static_members.get(instance) == Some(&member.member_id)
        {
            self.static_members.remove(instance);
        }
        if self.leader_id.as_deref() == Some(member.member_id.as_str()) {
            self.leader_id = None;
        }
        Some(member)
    }

    /// Removes a member (leave or expiry) and moves the group on.
    fn remove_member(&mut self, member_id: &str, now_ms: i64) -> Vec<Reply> {
        let Some(order) = self.order_of(member_id) else {
            return Vec::new();
        };
        let mut replies = Vec::new();
        if let Some(member) = self.remove_member_at(order) {
            if member.awaiting_join {
                replies.push(Reply::Join(
                    member.member_id.clone(),
                    JoinResult::error(UNKNOWN_MEMBER_ID, member_id),
                ));
            }
            if member.awaiting_sync {
                replies.push(Reply::Sync(
                    member.member_id.clone(),
                    SyncResult::error(UNKNOWN_MEMBER_ID),
                ));
            }
        }
        let no_delay = GroupConfig {
            min_session_timeout_ms: 0,
            max_session_timeout_ms: i32::MAX,
            initial_rebalance_delay_ms: 0,
        };
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                replies.extend(self.prepare_rebalance(now_ms, &no_delay));
                replies.extend(self.maybe_complete_join(now_ms));
            }
            GroupState::PreparingRebalance => replies.extend(self.maybe_complete_join(now_ms)),
            GroupState::Empty | GroupState::Dead => {}
        }
        replies
    }
}

#[path = "state_session.rs"]
mod session;

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
