//! A KIP-848 consumer group as a pure state machine: ConsumerGroupHeartbeat in, the
//! member's epoch and assignment out; session and rebalance timeouts in `tick`.
//!
//! The group epoch moves when membership, a subscription or a subscribed topic's
//! partition count changes; the target assignment is then computed again by the
//! server-side assignor (at the group epoch, so the assignment epoch follows it), and
//! each member reconciles toward its target on its own heartbeats. Everything
//! durable is in the records `take_records` returns, written to `__consumer_offsets`.

use super::assignor::{Assignment, AssignorKind};
use super::member::{ConsumerMember, LEAVE_EPOCH, LEAVE_STATIC_EPOCH, MemberState};
use super::records::{ConsumerRecord, MemberMetadata};
use crate::common::ErrorCode;
use kafka_protocol::ResponseError;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// Broker settings for consumer groups (`group.consumer.*`).
#[derive(Debug, Clone)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.heartbeat.interval.ms` (default 5000).
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.session.timeout.ms` (default 45000).
    pub session_timeout_ms: i32,
    /// `group.consumer.assignors` (default uniform,range): the first is the default.
    pub assignors: Vec<AssignorKind>,
    /// `group.consumer.max.size` (default unbounded).
    pub max_size: usize,
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        ConsumerGroupConfig {
            heartbeat_interval_ms: 5000,
            session_timeout_ms: 45000,
            assignors: vec![AssignorKind::Uniform, AssignorKind::Range],
            max_size: usize::MAX,
        }
    }
}

/// The topics a group may subscribe to: name → (topic id, partition count).
pub type TopicsView = BTreeMap<String, (Uuid, i32)>;

/// A ConsumerGroupHeartbeat as the state machine takes it.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    /// None: unchanged since the last heartbeat.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// None: unchanged; Some(""): no regex any more.
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns; None: unchanged.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatAnswer {
    pub error: ErrorCode,
    pub message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's assignment, when it must hear it (join, full request, change).
    pub assignment: Option<Assignment>,
}

/// Kafka's consumer group states, as ListGroups and ConsumerGroupDescribe name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// What must be written for the group since the last `take_records`.
#[derive(Debug, Default, Clone)]
struct Dirty {
    epoch: bool,
    assignment_epoch: bool,
    metadata: BTreeSet<String>,
    target: BTreeSet<String>,
    current: BTreeSet<String>,
    removed: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    pub group_id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    /// Each member's target assignment at `assignment_epoch`.
    pub target: BTreeMap<String, Assignment>,
    /// The subscribed topics as last seen: topic id → (name, partition count). A
    /// change moves the group epoch.
    subscribed: BTreeMap<Uuid, (String, i32)>,
    regexes: HashMap<String, regex::Regex>,
    dirty: Dirty,
}

fn error(code: ResponseError, message: impl Into<String>) -> (ErrorCode, Option<String>) {
    (ErrorCode::of(code), Some(message.into()))
}

impl ConsumerGroup {
    pub fn new(group_id: &str) -> Self {
        ConsumerGroup {
            group_id: group_id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            subscribed: BTreeMap::new(),
            regexes: HashMap::new(),
            dirty: Dirty::default(),
        }
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|member| member.state != MemberState::Stable || member.member_epoch != self.assignment_epoch)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    fn bump_epoch(&mut self) {
        self.group_epoch += 1;
        self.dirty.epoch = true;
    }

    fn remove_member(&mut self, member_id: &str) {
        if self.members.remove(member_id).is_some() {
            self.target.remove(member_id);
            self.dirty.removed.insert(member_id.to_string());
            self.dirty.metadata.remove(member_id);
            self.dirty.target.remove(member_id);
            self.dirty.current.remove(member_id);
            self.bump_epoch();
        }
    }

    fn validate(request: &Heartbeat) -> Result<(), (ErrorCode, Option<String>)> {
        let invalid = |message: &str| Err(error(ResponseError::InvalidRequest, message));
        if request.member_id.is_empty() && request.member_epoch != 0 {
            return invalid("MemberId can't be empty.");
        }
        if request.instance_id.as_deref() == Some("") {
            return invalid("InstanceId can't be empty.");
        }
        if request.member_epoch == 0 {
            if request.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if request.owned.as_ref().is_none_or(|owned| !owned.is_empty()) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            let no_names = request.subscribed_topic_names.is_none();
            if no_names && request.subscribed_topic_regex.is_none() {
                return invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.");
            }
        } else if request.member_epoch == LEAVE_STATIC_EPOCH && request.instance_id.is_none() {
            return invalid("InstanceId can't be null for a static member leaving with epoch -2.");
        } else if request.member_epoch < LEAVE_STATIC_EPOCH {
            return invalid(&format!("MemberEpoch {} is invalid.", request.member_epoch));
        }
        Ok(())
    }

    /// ConsumerGroupHeartbeat. `new_member_id` names a member that joins without one
    /// (version 0); `topics` is every topic the group may subscribe to.
    pub fn heartbeat(
        &mut self,
        request: Heartbeat,
        topics: &TopicsView,
        config: &ConsumerGroupConfig,
        now_ms: i64,
        new_member_id: impl FnOnce() -> String,
    ) -> HeartbeatAnswer {
        let mut answer = HeartbeatAnswer {
            error: ErrorCode::NONE,
            message: None,
            member_id: request.member_id.clone(),
            member_epoch: request.member_epoch,
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            assignment: None,
        };
        if let Err((code, message)) = Self::validate(&request) {
            answer.error = code;
            answer.message = message;
            return answer;
        }
        if request.member_epoch == LEAVE_EPOCH || request.member_epoch == LEAVE_STATIC_EPOCH {
            self.leave(&request, now_ms);
            return answer;
        }
        let member_id = match self.admit(&request, config, now_ms, new_member_id) {
            Ok(member_id) => member_id,
            Err((code, message)) => {
                answer.error = code;
                answer.message = message;
                return answer;
            }
        };
        answer.member_id = member_id.clone();
        if let Err((code, message)) = self.update_subscription(&member_id, &request, topics) {
            answer.error = code;
            answer.message = message;
            return answer;
        }
        self.compute_target(topics, config);
        let before = self.members[&member_id].assigned.clone();
        let owners = self.owners();
        let target = self.target.get(&member_id).cloned().unwrap_or_default();
        let assignment_epoch = self.assignment_epoch;
        let Some(member) = self.members.get_mut(&member_id) else {
            return answer;
        };
        member.session_deadline_ms = now_ms + i64::from(config.session_timeout_ms);
        if member.reconcile(assignment_epoch, &target, request.owned.as_ref(), &owners, now_ms) {
            self.dirty.current.insert(member_id.clone());
        }
        let member = &self.members[&member_id];
        answer.member_epoch = member.member_epoch;
        let full = request.rebalance_timeout_ms != -1
            && (request.subscribed_topic_names.is_some() || request.subscribed_topic_regex.is_some())
            && request.owned.is_some();
        if request.member_epoch == 0 || full || member.assigned != before {
            answer.assignment = Some(member.assigned.clone());
        }
        answer
    }

    fn leave(&mut self, request: &Heartbeat, now_ms: i64) {
        let member_id = match &request.instance_id {
            Some(instance) => self
                .members
                .values()
                .find(|member| member.instance_id.as_deref() == Some(instance))
                .map(|member| member.member_id.clone()),
            None => Some(request.member_id.clone()),
        };
        let Some(member_id) = member_id else { return };
        if request.member_epoch == LEAVE_STATIC_EPOCH {
            // Kept with its assignment until its session ends or it comes back.
            if let Some(member) = self.members.get_mut(&member_id) {
                member.member_epoch = LEAVE_STATIC_EPOCH;
                member.session_deadline_ms = member.session_deadline_ms.max(now_ms);
                self.dirty.current.insert(member_id);
            }
        } else {
            self.remove_member(&member_id);
        }
    }

    /// Finds or creates the member and checks its epoch.
    fn admit(
        &mut self,
        request: &Heartbeat,
        config: &ConsumerGroupConfig,
        now_ms: i64,
        new_member_id: impl FnOnce() -> String,
    ) -> Result<String, (ErrorCode, Option<String>)> {
        let member_id = if request.member_id.is_empty() {
            new_member_id()
        } else {
            request.member_id.clone()
        };
        if request.member_epoch != 0 {
            let Some(member) = self.members.get(&member_id) else {
                return Err(error(
                    ResponseError::UnknownMemberId,
                    format!("Member {member_id} is not a member of group {}.", self.group_id),
                ));
            };
            let epoch = request.member_epoch;
            let retried = epoch == member.previous_member_epoch
                && request
                    .owned
                    .as_ref()
                    .is_none_or(|owned| is_subset(owned, &member.assigned));
            if epoch != member.member_epoch && !retried {
                return Err(error(
                    ResponseError::FencedMemberEpoch,
                    format!(
                        "The member epoch {epoch} is fenced; the current one is {}.",
                        member.member_epoch
                    ),
                ));
            }
            return Ok(member_id);
        }
        // Joining (epoch 0).
        if let Some(instance) = &request.instance_id {
            let previous = self
                .members
                .values()
                .find(|member| member.instance_id.as_deref() == Some(instance.as_str()))
                .cloned();
            if let Some(previous) = previous {
                if previous.member_epoch != LEAVE_STATIC_EPOCH && previous.member_id != member_id {
                    return Err(error(
                        ResponseError::UnreleasedInstanceId,
                        format!(
                            "Static member {instance} is still in use by member {}.",
                            previous.member_id
                        ),
                    ));
                }
                // The instance comes back under a new member id: it takes over the
                // old member's epoch and assignment, with no rebalance.
                let target = self.target.remove(&previous.member_id);
                self.members.remove(&previous.member_id);
                self.dirty.removed.insert(previous.member_id.clone());
                let mut member = previous;
                member.member_id = member_id.clone();
                if member.member_epoch == LEAVE_STATIC_EPOCH {
                    member.member_epoch = member.previous_member_epoch.max(self.assignment_epoch);
                }
                self.dirty.removed.remove(&member_id);
                self.members.insert(member_id.clone(), member);
                if let Some(target) = target {
                    self.target.insert(member_id.clone(), target);
                }
                self.dirty.metadata.insert(member_id.clone());
                self.dirty.target.insert(member_id.clone());
                self.dirty.current.insert(member_id.clone());
                return Ok(member_id);
            }
        }
        match self.members.get_mut(&member_id) {
            Some(member) => {
                // Rejoining after being fenced: it gave up everything it owned.
                member.assigned = Assignment::new();
                member.pending_revocation = Assignment::new();
                member.state = MemberState::Stable;
                member.member_epoch = 0;
                member.revocation_deadline_ms = None;
                self.dirty.current.insert(member_id.clone());
            }
            None => {
                if self.members.len() >= config.max_size {
                    return Err(error(
                        ResponseError::GroupMaxSizeReached,
                        format!(
                            "The consumer group has reached its maximum capacity of {} members.",
                            config.max_size
                        ),
                    ));
                }
                let mut member = ConsumerMember::new(member_id.clone(), now_ms);
                member.instance_id = request.instance_id.clone();
                self.members.insert(member_id.clone(), member);
                self.dirty.removed.remove(&member_id);
                self.bump_epoch();
            }
        }
        Ok(member_id)
    }

    /// Applies the request's metadata; a changed subscription or subscribed topic
    /// moves the group epoch.
    fn update_subscription(
        &mut self,
        member_id: &str,
        request: &Heartbeat,
        topics: &TopicsView,
    ) -> Result<(), (ErrorCode, Option<String>)> {
        if let Some(regex) = request.subscribed_topic_regex.as_deref()
            && !regex.is_empty()
            && !self.regexes.contains_key(regex)
        {
            match regex::Regex::new(&format!("^(?:{regex})$")) {
                Ok(compiled) => {
                    self.regexes.insert(regex.to_string(), compiled);
                }
                Err(_) => {
                    return Err(error(
                        ResponseError::InvalidRegularExpression,
                        format!("SubscribedTopicRegex `{regex}` is not a valid regular expression."),
                    ));
                }
            }
        }
        let Some(member) = self.members.get_mut(member_id) else {
            return Ok(());
        };
        let before = member.clone();
        if let Some(names) = &request.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            member.subscribed_topic_names = names;
        }
        if let Some(regex) = &request.subscribed_topic_regex {
            member.subscribed_topic_regex = (!regex.is_empty()).then(|| regex.clone());
        }
        if request.rebalance_timeout_ms != -1 {
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
        if request.server_assignor.is_some() {
            member.server_assignor = request.server_assignor.clone();
        }
        if request.rack_id.is_some() {
            member.rack_id = request.rack_id.clone();
        }
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        let subscription_changed = member.subscribed_topic_names != before.subscribed_topic_names
            || member.subscribed_topic_regex != before.subscribed_topic_regex;
        if *member != before {
            self.dirty.metadata.insert(member_id.to_string());
        }
        if subscription_changed {
            self.bump_epoch();
        }
        self.refresh_subscribed(topics);
        Ok(())
    }

    /// The topics any member subscribes to (by name or regex), as they are now.
    fn member_topics(&self, member: &ConsumerMember, topics: &TopicsView) -> BTreeSet<Uuid> {
        let mut subscribed: BTreeSet<Uuid> = member
            .subscribed_topic_names
            .iter()
            .filter_map(|name| topics.get(name).map(|(topic_id, _)| *topic_id))
            .collect();
        if let Some(regex) = member
            .subscribed_topic_regex
            .as_ref()
            .and_then(|regex| self.regexes.get(regex))
        {
            subscribed.extend(
                topics
                    .iter()
                    .filter(|(name, _)| regex.is_match(name))
                    .map(|(_, (topic_id, _))| *topic_id),
            );
        }
        subscribed
    }

    /// Moves the group epoch when a subscribed topic appeared, went, or changed its
    /// partition count (a topic created later that a regex matches, say).
    pub fn refresh_subscribed(&mut self, topics: &TopicsView) {
        let by_id: HashMap<Uuid, (&String, i32)> = topics
            .iter()
            .map(|(name, (topic_id, n_partitions))| (*topic_id, (name, *n_partitions)))
            .collect();
        let mut now: BTreeMap<Uuid, (String, i32)> = BTreeMap::new();
        for member in self.members.values() {
            for topic_id in self.member_topics(member, topics) {
                if let Some((name, n_partitions)) = by_id.get(&topic_id) {
                    now.insert(topic_id, ((*name).clone(), *n_partitions));
                }
            }
        }
        if now != self.subscribed {
            self.subscribed = now;
            self.bump_epoch();
        }
    }

    /// The assignor: one a member names (the most named), else the broker's default.
    pub fn assignor(&self, config: &ConsumerGroupConfig) -> AssignorKind {
        let mut named: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(name) = member.server_assignor.as_deref() {
                *named.entry(name).or_default() += 1;
            }
        }
        named
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .and_then(|(name, _)| AssignorKind::from_name(name))
            .filter(|kind| config.assignors.contains(kind))
            .or_else(|| config.assignors.first().copied())
            .unwrap_or(AssignorKind::Uniform)
    }

    /// A new target assignment when the group epoch moved past the assignment epoch.
    fn compute_target(&mut self, topics: &TopicsView, config: &ConsumerGroupConfig) {
        if self.group_epoch <= self.assignment_epoch {
            return;
        }
        let subscriptions: BTreeMap<String, BTreeSet<Uuid>> = self
            .members
            .iter()
            .map(|(member_id, member)| (member_id.clone(), self.member_topics(member, topics)))
            .collect();
        let counts: BTreeMap<Uuid, i32> = self
            .subscribed
            .iter()
            .map(|(topic_id, (_, n_partitions))| (*topic_id, *n_partitions))
            .collect();
        let target = self
            .assignor(config)
            .assign(&subscriptions, &self.target, &counts);
        for (member_id, assignment) in &target {
            if self.target.get(member_id) != Some(assignment) {
                self.dirty.target.insert(member_id.clone());
            }
        }
        self.target = target;
        self.assignment_epoch = self.group_epoch;
        self.dirty.assignment_epoch = true;
    }

    /// Who owns each partition now: assigned to, or still being revoked by, a member.
    fn owners(&self) -> HashMap<(Uuid, i32), String> {
        let mut owners = HashMap::new();
        for member in self.members.values() {
            for assignment in [&member.assigned, &member.pending_revocation] {
                for (topic_id, partitions) in assignment {
                    for partition in partitions {
                        owners.insert((*topic_id, *partition), member.member_id.clone());
                    }
                }
            }
        }
        owners
    }

    /// Session and rebalance timeouts: members fenced by them leave the group.
    /// Returns the ids removed.
    pub fn tick(&mut self, now_ms: i64) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|member| {
                member.session_deadline_ms < now_ms
                    || member
                        .revocation_deadline_ms
                        .is_some_and(|deadline| deadline < now_ms)
            })
            .map(|member| member.member_id.clone())
            .collect();
        for member_id in &expired {
            self.remove_member(member_id);
        }
        expired
    }

    /// Every member's offset commit check (Kafka's `validateOffsetCommit`): a commit
    /// outside the group (epoch < 0, no member id) only when it has no members.
    pub fn validate_offset_commit(&self, member_id: &str, member_epoch: i32) -> ErrorCode {
        if member_epoch < 0 && member_id.is_empty() {
            return if self.members.is_empty() {
                ErrorCode::NONE
            } else {
                ErrorCode::of(ResponseError::UnknownMemberId)
            };
        }
        match self.members.get(member_id) {
            None => ErrorCode::of(ResponseError::UnknownMemberId),
            Some(member) if member.member_epoch != member_epoch => {
                ErrorCode::of(ResponseError::StaleMemberEpoch)
            }
            Some(_) => ErrorCode::NONE,
        }
    }

    /// OffsetFetch's check: none for an admin (no member id, epoch -1).
    pub fn validate_offset_fetch(&self, member_id: Option<&str>, member_epoch: i32) -> ErrorCode {
        match member_id {
            None | Some("") if member_epoch < 0 => ErrorCode::NONE,
            _ => self.validate_offset_commit(member_id.unwrap_or_default(), member_epoch),
        }
    }

    /// The records that make the log say what the group is now; clears the marks.
    pub fn take_records(&mut self) -> Vec<ConsumerRecord> {
        let dirty = std::mem::take(&mut self.dirty);
        let group_id = &self.group_id;
        let mut records = Vec::new();
        for member_id in &dirty.removed {
            records.push(ConsumerRecord::Current {
                group_id: group_id.clone(),
                member_id: member_id.clone(),
                value: None,
            });
            records.push(ConsumerRecord::Target {
                group_id: group_id.clone(),
                member_id: member_id.clone(),
                value: None,
            });
            records.push(ConsumerRecord::Member {
                group_id: group_id.clone(),
                member_id: member_id.clone(),
                value: None,
            });
        }
        for member_id in &dirty.metadata {
            if let Some(member) = self.members.get(member_id) {
                records.push(ConsumerRecord::Member {
                    group_id: group_id.clone(),
                    member_id: member_id.clone(),
                    value: Some(MemberMetadata::of(member)),
                });
            }
        }
        if dirty.epoch {
            records.push(ConsumerRecord::Metadata {
                group_id: group_id.clone(),
                epoch: Some(self.group_epoch),
            });
        }
        for member_id in &dirty.target {
            if let Some(assignment) = self.target.get(member_id) {
                records.push(ConsumerRecord::Target {
                    group_id: group_id.clone(),
                    member_id: member_id.clone(),
                    value: Some(assignment.clone()),
                });
            }
        }
        if dirty.assignment_epoch {
            records.push(ConsumerRecord::TargetMetadata {
                group_id: group_id.clone(),
                assignment_epoch: Some(self.assignment_epoch),
            });
        }
        for member_id in &dirty.current {
            if let Some(member) = self.members.get(member_id) {
                records.push(ConsumerRecord::current_of(group_id, member));
            }
        }
        records
    }

    /// Tombstones for the whole group (it is deleted, or becomes a classic group).
    pub fn tombstones(&self) -> Vec<ConsumerRecord> {
        let group_id = self.group_id.clone();
        vec![
            ConsumerRecord::TargetMetadata {
                group_id: group_id.clone(),
                assignment_epoch: None,
            },
            ConsumerRecord::Metadata {
                group_id,
                epoch: None,
            },
        ]
    }

    /// Replays one record (loading the group on coordinator failover). Members get a
    /// whole session from `now_ms`.
    pub fn replay(&mut self, record: &ConsumerRecord, session_timeout_ms: i32, now_ms: i64) {
        let session_deadline = now_ms + i64::from(session_timeout_ms);
        match record {
            ConsumerRecord::Metadata { epoch, .. } => self.group_epoch = epoch.unwrap_or(0),
            ConsumerRecord::TargetMetadata { assignment_epoch, .. } => {
                self.assignment_epoch = assignment_epoch.unwrap_or(0)
            }
            ConsumerRecord::Member { member_id, value, .. } => match value {
                Some(metadata) => {
                    let member = self
                        .members
                        .entry(member_id.clone())
                        .or_insert_with(|| ConsumerMember::new(member_id.clone(), now_ms));
                    metadata.apply_to(member);
                    member.session_deadline_ms = session_deadline;
                }
                None => {
                    self.members.remove(member_id);
                }
            },
            ConsumerRecord::Target { member_id, value, .. } => match value {
                Some(assignment) => {
                    self.target.insert(member_id.clone(), assignment.clone());
                }
                None => {
                    self.target.remove(member_id);
                }
            },
            ConsumerRecord::Current { member_id, value, .. } => {
                if let (Some(current), Some(member)) = (value, self.members.get_mut(member_id)) {
                    current.apply_to(member);
                    member.session_deadline_ms = session_deadline;
                    if member.state == MemberState::UnrevokedPartitions {
                        member.revocation_deadline_ms =
                            Some(now_ms + i64::from(member.rebalance_timeout_ms.max(0)));
                    }
                }
            }
        }
    }

    /// After a load: the subscribed topics as the members' subscriptions find them,
    /// without moving the epoch (the log already has it).
    pub fn after_load(&mut self, topics: &TopicsView) {
        for regex in self
            .members
            .values()
            .filter_map(|member| member.subscribed_topic_regex.clone())
        {
            if let Ok(compiled) = regex::Regex::new(&format!("^(?:{regex})$")) {
                self.regexes.insert(regex, compiled);
            }
        }
        let epoch = self.group_epoch;
        self.refresh_subscribed(topics);
        self.group_epoch = epoch;
        self.dirty.epoch = false;
        // A subscribed topic that changed while no coordinator watched: the target
        // no longer covers exactly the subscribed partitions, so assign again.
        let mut covered: BTreeSet<(Uuid, i32)> = BTreeSet::new();
        for assignment in self.target.values() {
            for (topic_id, partitions) in assignment {
                covered.extend(partitions.iter().map(|partition| (*topic_id, *partition)));
            }
        }
        let wanted: BTreeSet<(Uuid, i32)> = self
            .subscribed
            .iter()
            .flat_map(|(topic_id, (_, n_partitions))| {
                (0..*n_partitions).map(move |partition| (*topic_id, partition))
            })
            .collect();
        if covered != wanted && !self.members.is_empty() {
            self.bump_epoch();
        }
    }
}

fn is_subset(owned: &Assignment, assigned: &Assignment) -> bool {
    owned.iter().all(|(topic_id, partitions)| {
        partitions.is_empty()
            || assigned
                .get(topic_id)
                .is_some_and(|have| partitions.is_subset(have))
    })
}
