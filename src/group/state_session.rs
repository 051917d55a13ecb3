//! The group state machine after a member has joined: SyncGroup (the leader's
//! assignment handed to every member), heartbeats, LeaveGroup, the member check of an
//! offset commit, and the timers (`tick`: sessions, rebalance and sync deadlines,
//! pending members). Pure, like the rest of `state.rs`.

use super::codes::*;
use super::*;

impl Group {
    pub fn sync(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
        now_ms: i64,
    ) -> (Answer<SyncResult>, Vec<Reply>) {
        let error = |code| (Answer::Now(SyncResult::error(code)), Vec::new());
        if matches!(self.state, GroupState::Empty | GroupState::Dead) || self.member(member_id).is_none() {
            return error(UNKNOWN_MEMBER_ID);
        }
        if self.fenced(member_id, group_instance_id) {
            return error(FENCED_INSTANCE_ID);
        }
        if generation_id != self.generation_id {
            return error(ILLEGAL_GENERATION);
        }
        let (protocol_type, protocol_name) = protocol;
        if protocol_type.is_some_and(|name| Some(name) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|name| Some(name) != self.protocol_name.as_deref())
        {
            return error(INCONSISTENT_GROUP_PROTOCOL);
        }
        if let Some(member) = self.member_mut(member_id) {
            member.last_heartbeat_ms = now_ms;
        }
        match self.state {
            GroupState::PreparingRebalance => error(REBALANCE_IN_PROGRESS),
            GroupState::Stable => {
                let assignment = self
                    .member(member_id)
                    .map(|member| member.assignment.clone())
                    .unwrap_or_default();
                (Answer::Now(self.sync_result(assignment)), Vec::new())
            }
            GroupState::CompletingRebalance => {
                if let Some(member) = self.member_mut(member_id) {
                    member.awaiting_sync = true;
                }
                let mut replies = Vec::new();
                if self.leader_id.as_deref() == Some(member_id) {
                    let assigned: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for member in self.members.values_mut() {
                        member.assignment = assigned.get(&member.member_id).cloned().unwrap_or_default();
                    }
                    self.set_state(GroupState::Stable, now_ms);
                    self.dirty = true;
                    let waiting: Vec<(String, Bytes)> = self
                        .members
                        .values()
                        .filter(|member| member.awaiting_sync)
                        .map(|member| (member.member_id.clone(), member.assignment.clone()))
                        .collect();
                    for (waiting_id, assignment) in waiting {
                        replies.push(Reply::Sync(waiting_id.clone(), self.sync_result(assignment)));
                        if let Some(member) = self.member_mut(&waiting_id) {
                            member.awaiting_sync = false;
                        }
                    }
                }
                (Answer::Later(member_id.to_string()), replies)
            }
            GroupState::Empty | GroupState::Dead => error(UNKNOWN_MEMBER_ID),
        }
    }

    fn sync_result(&self, assignment: Bytes) -> SyncResult {
        SyncResult {
            error: NONE,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> ErrorCode {
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            return UNKNOWN_MEMBER_ID;
        }
        if self.fenced(member_id, group_instance_id) {
            return FENCED_INSTANCE_ID;
        }
        let state = self.state;
        let current_generation = self.generation_id;
        let Some(member) = self.member_mut(member_id) else {
            return UNKNOWN_MEMBER_ID;
        };
        if generation_id != current_generation {
            return ILLEGAL_GENERATION;
        }
        member.last_heartbeat_ms = now_ms;
        match state {
            GroupState::PreparingRebalance => REBALANCE_IN_PROGRESS,
            _ => NONE,
        }
    }

    /// LeaveGroup for one member (by member id, or by instance id when the id is empty).
    pub fn leave(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        now_ms: i64,
    ) -> (ErrorCode, Vec<Reply>) {
        let member_id = match (member_id, group_instance_id) {
            ("", Some(instance)) => match self.static_members.get(instance) {
                Some(id) => id.clone(),
                None => return (UNKNOWN_MEMBER_ID, Vec::new()),
            },
            (id, instance) => {
                if self.fenced(id, instance) {
                    return (FENCED_INSTANCE_ID, Vec::new());
                }
                id.to_string()
            }
        };
        if self.pending_members.remove(&member_id).is_some() {
            return (NONE, Vec::new());
        }
        if self.member(&member_id).is_none() {
            return (UNKNOWN_MEMBER_ID, Vec::new());
        }
        (NONE, self.remove_member(&member_id, now_ms))
    }

    /// Checks an OffsetCommit's member and generation against the group.
    pub fn validate_commit(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> ErrorCode {
        if generation_id < 0 && member_id.is_empty() {
            // A standalone consumer (assign + commit): allowed only while no one is a member.
            return if self.members.is_empty() {
                NONE
            } else {
                UNKNOWN_MEMBER_ID
            };
        }
        if self.fenced(member_id, group_instance_id) {
            return FENCED_INSTANCE_ID;
        }
        if self.member(member_id).is_none() {
            return UNKNOWN_MEMBER_ID;
        }
        if generation_id != self.generation_id {
            return ILLEGAL_GENERATION;
        }
        if self.state == GroupState::CompletingRebalance {
            return REBALANCE_IN_PROGRESS;
        }
        NONE
    }

    /// Applies timeouts: expired sessions and pending member ids, the initial delay, and
    /// rebalance and sync deadlines.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Reply> {
        let mut replies = Vec::new();
        self.pending_members.retain(|_, expiry| *expiry > now_ms);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|member| {
                let keep_alive = if member.awaiting_join {
                    !member.is_new || member.last_heartbeat_ms + NEW_MEMBER_JOIN_TIMEOUT_MS > now_ms
                } else {
                    member.awaiting_sync
                };
                !keep_alive && member.last_heartbeat_ms + member.session_timeout_ms as i64 <= now_ms
            })
            .map(|member| member.member_id.clone())
            .collect();
        for member_id in expired {
            replies.extend(self.remove_member(&member_id, now_ms));
        }
        match self.state {
            GroupState::PreparingRebalance => replies.extend(self.maybe_complete_join(now_ms)),
            GroupState::CompletingRebalance if now_ms >= self.rebalance_deadline_ms => {
                // The leader never sent the assignment: drop whoever did not sync, start over.
                let lagging: Vec<String> = self
                    .members
                    .values()
                    .filter(|member| !member.awaiting_sync)
                    .map(|member| member.member_id.clone())
                    .collect();
                for member_id in lagging {
                    replies.extend(self.remove_member(&member_id, now_ms));
                }
            }
            _ => {}
        }
        replies
    }

    /// Marks the group deleted.
    pub fn mark_dead(&mut self, now_ms: i64) {
        self.set_state(GroupState::Dead, now_ms);
    }
}
