//! The group coordinator: runs each group's state machine, keeps committed offsets, and
//! persists both to `__consumer_offsets`.
//!
//! Every write to `__consumer_offsets` goes through one writer task, in order, so a
//! later group snapshot or commit can never be overtaken by an earlier one. An offset
//! commit is answered only after its records are appended (and, with the internal
//! topic's `flush.messages=1`, fsynced); the cache is updated by the writer after the
//! append, never before. The coordinator of a group is the leader of the group's
//! `__consumer_offsets` partition; appends are acks=all, and a new leader replays the
//! partition before it answers for the group.

use super::consumer::{ConsumerGroup, ConsumerGroupConfig};
pub use super::consumer_coordinator::MigrationPolicy;
use super::offsets::{CommittedOffset, GroupRecord, MemberRecord, OffsetsRecord};
use super::state::{
    Answer, Group, GroupConfig, GroupState, JoinRequest, JoinResult, Reply, SyncResult, codes,
};
use crate::common::ErrorCode;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use tokio::sync::{mpsc, oneshot};

pub use crate::common::topics::OFFSETS_TOPIC;

/// Coordinator settings from the broker config.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub group: GroupConfig,
    pub consumer: ConsumerGroupConfig,
    pub migration_policy: MigrationPolicy,
    /// KIP-932: record locks and delivery limits of share-partitions.
    pub share: super::share::partition::ShareConfig,
    pub share_session_timeout_ms: i32,
    pub share_heartbeat_interval_ms: i32,
    pub offsets_retention_ms: i64,
    pub offset_metadata_max_bytes: usize,
}

/// An answer now, or a receiver for one that comes when the group moves on.
pub enum Wait<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

pub(super) struct GroupEntry {
    pub(super) group: Group,
    /// Set when the group is a KIP-848 consumer group (its classic half is then Empty).
    pub(super) consumer: Option<ConsumerGroup>,
    /// Set when the group is a KIP-932 share group.
    pub(super) share: Option<super::share::group::ShareGroup>,
    pub(super) offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Offsets committed in open transactions (TxnOffsetCommit), by producer id: they
    /// become `offsets` when the transaction's COMMIT marker lands, or go on ABORT.
    pending_txn: HashMap<i64, BTreeMap<(String, i32), CommittedOffset>>,
    join_waiters: HashMap<String, oneshot::Sender<JoinResult>>,
    sync_waiters: HashMap<String, oneshot::Sender<SyncResult>>,
}

impl GroupEntry {
    /// Whether it is a consumer or share group with members.
    pub(super) fn has_modern_members(&self) -> bool {
        self.consumer
            .as_ref()
            .is_some_and(|consumer| !consumer.members.is_empty())
            || self.share.as_ref().is_some_and(|share| !share.members.is_empty())
    }

    pub(super) fn new(group_id: &str, now_ms: i64) -> Self {
        GroupEntry {
            group: Group::new(group_id, now_ms),
            consumer: None,
            share: None,
            offsets: BTreeMap::new(),
            pending_txn: HashMap::new(),
            join_waiters: HashMap::new(),
            sync_waiters: HashMap::new(),
        }
    }

    fn deliver(&mut self, replies: Vec<Reply>) {
        for reply in replies {
            match reply {
                Reply::Join(member_id, result) => {
                    if let Some(waiter) = self.join_waiters.remove(&member_id) {
                        let _ = waiter.send(result);
                    }
                }
                Reply::Sync(member_id, result) => {
                    if let Some(waiter) = self.sync_waiters.remove(&member_id) {
                        let _ = waiter.send(result);
                    }
                }
            }
        }
    }

    fn metadata_record(&self) -> OffsetsRecord {
        let group = &self.group;
        let protocol = group.protocol_name.clone().unwrap_or_default();
        OffsetsRecord::Group {
            group_id: group.group_id.clone(),
            value: Some(GroupRecord {
                protocol_type: group.protocol_type.clone().unwrap_or_default(),
                generation_id: group.generation_id,
                protocol_name: group.protocol_name.clone(),
                leader_id: group.leader_id.clone(),
                state_timestamp_ms: group.state_timestamp_ms,
                members: group
                    .members
                    .values()
                    .map(|member| MemberRecord {
                        member_id: member.member_id.clone(),
                        group_instance_id: member.group_instance_id.clone(),
                        client_id: member.client_id.clone(),
                        client_host: member.client_host.clone(),
                        rebalance_timeout_ms: member.rebalance_timeout_ms,
                        session_timeout_ms: member.session_timeout_ms,
                        subscription: member.metadata(&protocol),
                        assignment: member.assignment.clone(),
                    })
                    .collect(),
            }),
        }
    }
}

/// One unit of work for the writer task.
pub enum WriteJob {
    /// Append these records (to the partition of their group); update the offset cache
    /// after the append; report the outcome as a Kafka error code. With `transaction`
    /// (producer id, epoch) the batch is transactional and its offsets stay pending.
    Append {
        group_id: String,
        records: Vec<OffsetsRecord>,
        transaction: Option<(i64, i16)>,
        done: Option<oneshot::Sender<ErrorCode>>,
    },
}

/// A SyncGroup request as the coordinator takes it.
pub struct SyncRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignment: (member id, assignment).
    pub assignments: Vec<(String, Bytes)>,
}

/// A group as ListGroups reports it.
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: &'static str,
    pub n_members: usize,
    /// The generation (classic) or the group epoch (consumer).
    pub epoch: i32,
}

/// Committed offsets by topic: (topic, [(partition, offset if committed)]).
pub type TopicOffsets = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

/// A group as DescribeGroups reports it.
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_name: String,
    /// (member id, instance id, client id, client host, metadata, assignment)
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

pub struct GroupCoordinator {
    pub config: CoordinatorConfig,
    pub(super) groups: Mutex<HashMap<String, GroupEntry>>,
    pub(super) writer: mpsc::UnboundedSender<WriteJob>,
    /// The write queue's other end, until the writer task takes it.
    jobs: Mutex<Option<mpsc::UnboundedReceiver<WriteJob>>>,
    /// `__consumer_offsets` partitions this broker leads, loaded or loading.
    pub led: super::led::LedPartitions,
    /// The share-partitions this broker leads and its members' share sessions.
    pub shares: super::share::manager::SharePartitionManager,
    /// The share coordinator's table: the persisted states of share-partitions whose
    /// `__share_group_state` partition this broker leads.
    pub share_states: super::share::coordinator::ShareCoordinator,
}

/// The `__consumer_offsets` records committing `offsets` for `group_id`.
fn offset_records(group_id: &str, offsets: Vec<(String, i32, CommittedOffset)>) -> Vec<OffsetsRecord> {
    offsets
        .into_iter()
        .map(|(topic, partition, value)| OffsetsRecord::Offset {
            group_id: group_id.to_string(),
            topic,
            partition,
            value: Some(value),
        })
        .collect()
}

/// Turns a state-machine answer into one the handler can await, registering the
/// member's waiter when the answer comes later.
fn register<T>(answer: Answer<T>, waiters: &mut HashMap<String, oneshot::Sender<T>>) -> Wait<T> {
    match answer {
        Answer::Now(result) => Wait::Now(result),
        Answer::Later(member_id) => {
            let (sender, receiver) = oneshot::channel();
            waiters.insert(member_id, sender);
            Wait::Later(receiver)
        }
    }
}

fn new_member_id(client_id: &str) -> String {
    format!("{client_id}-{}", uuid::Uuid::new_v4())
}

impl GroupCoordinator {
    pub fn new(config: CoordinatorConfig) -> Self {
        let (writer, jobs) = mpsc::unbounded_channel();
        GroupCoordinator {
            shares: super::share::manager::SharePartitionManager::new(config.share),
            share_states: Default::default(),
            config,
            groups: Mutex::new(HashMap::new()),
            writer,
            jobs: Mutex::new(Some(jobs)),
            led: Default::default(),
        }
    }

    /// The write queue, for the one writer task (`log_writer::run`); None once taken.
    pub fn take_write_jobs(&self) -> Option<mpsc::UnboundedReceiver<WriteJob>> {
        self.jobs.lock().take()
    }

    fn persist_if_dirty(&self, entry: &mut GroupEntry) {
        if entry.group.take_dirty() {
            let _ = self.writer.send(WriteJob::Append {
                group_id: entry.group.group_id.clone(),
                records: vec![entry.metadata_record()],
                transaction: None,
                done: None,
            });
        }
    }

    pub fn join(&self, group_id: &str, request: JoinRequest, now_ms: i64) -> Wait<JoinResult> {
        let mut groups = self.groups.lock();
        let entry = groups
            .entry(group_id.to_string())
            .or_insert_with(|| GroupEntry::new(group_id, now_ms));
        if let Some(refused) = self.classic_join_refused(entry) {
            return Wait::Now(JoinResult {
                error: refused,
                member_id: request.member_id.clone(),
                ..Default::default()
            });
        }
        let client_id = request.client_id.clone();
        let (answer, replies) = entry
            .group
            .join(request, &self.config.group, now_ms, || new_member_id(&client_id));
        let wait = register(answer, &mut entry.join_waiters);
        entry.deliver(replies);
        self.persist_if_dirty(entry);
        wait
    }

    pub fn sync(&self, group_id: &str, request: SyncRequest, now_ms: i64) -> Wait<SyncResult> {
        let mut groups = self.groups.lock();
        let Some(entry) = groups.get_mut(group_id) else {
            return Wait::Now(SyncResult {
                error: codes::UNKNOWN_MEMBER_ID,
                ..Default::default()
            });
        };
        let (answer, replies) = entry.group.sync(
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
            (request.protocol_type.as_deref(), request.protocol_name.as_deref()),
            request.assignments,
            now_ms,
        );
        let wait = register(answer, &mut entry.sync_waiters);
        entry.deliver(replies);
        self.persist_if_dirty(entry);
        wait
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> ErrorCode {
        match self.groups.lock().get_mut(group_id) {
            Some(entry) => entry
                .group
                .heartbeat(member_id, group_instance_id, generation_id, now_ms),
            None => codes::UNKNOWN_MEMBER_ID,
        }
    }

    /// LeaveGroup for each (member id, instance id); one error code per member.
    pub fn leave(&self, group_id: &str, members: &[(String, Option<String>)], now_ms: i64) -> Vec<ErrorCode> {
        let mut groups = self.groups.lock();
        let Some(entry) = groups.get_mut(group_id) else {
            return vec![codes::UNKNOWN_MEMBER_ID; members.len()];
        };
        let mut results = Vec::with_capacity(members.len());
        for (member_id, instance) in members {
            let (code, replies) = entry.group.leave(member_id, instance.as_deref(), now_ms);
            entry.deliver(replies);
            results.push(code);
        }
        self.persist_if_dirty(entry);
        results
    }

    /// Validates a commit, appends it, and answers once it is in the log.
    /// `offsets` are (topic, partition, offset); the result is one group-level code.
    pub async fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        offsets: Vec<(String, i32, CommittedOffset)>,
        now_ms: i64,
    ) -> ErrorCode {
        let member = (member_id, group_instance_id, generation_id);
        self.commit_with(group_id, member, None, offsets, now_ms).await
    }

    /// TxnOffsetCommit: validates like a commit (a generation of -1 skips the member
    /// check), appends the offsets as the producer's transactional batch, and keeps them
    /// pending until the transaction's marker.
    #[allow(clippy::too_many_arguments)]
    pub async fn commit_in_transaction(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        producer: (i64, i16),
        offsets: Vec<(String, i32, CommittedOffset)>,
        now_ms: i64,
    ) -> ErrorCode {
        let member = (member_id, group_instance_id, generation_id);
        self.commit_with(group_id, member, Some(producer), offsets, now_ms)
            .await
    }

    /// `member` is (member id, group instance id, generation); `transaction` the
    /// producer whose transactional batch carries the offsets, if any.
    async fn commit_with(
        &self,
        group_id: &str,
        member: (&str, Option<&str>, i32),
        transaction: Option<(i64, i16)>,
        offsets: Vec<(String, i32, CommittedOffset)>,
        now_ms: i64,
    ) -> ErrorCode {
        let (member_id, group_instance_id, generation_id) = member;
        let validation = {
            let mut groups = self.groups.lock();
            match groups.get(group_id) {
                Some(_) if transaction.is_some() && generation_id < 0 => codes::NONE,
                Some(GroupEntry {
                    consumer: Some(consumer),
                    ..
                }) => consumer.validate_offset_commit(member_id, generation_id),
                Some(entry) => entry
                    .group
                    .validate_commit(member_id, group_instance_id, generation_id),
                None if generation_id < 0 || transaction.is_some() => {
                    groups.insert(group_id.to_string(), GroupEntry::new(group_id, now_ms));
                    codes::NONE
                }
                None => codes::UNKNOWN_MEMBER_ID,
            }
        };
        if validation != codes::NONE {
            return validation;
        }
        let records = offset_records(group_id, offsets);
        self.append_with(group_id, records, transaction).await
    }

    pub(super) async fn append(&self, group_id: &str, records: Vec<OffsetsRecord>) -> ErrorCode {
        self.append_with(group_id, records, None).await
    }

    async fn append_with(
        &self,
        group_id: &str,
        records: Vec<OffsetsRecord>,
        transaction: Option<(i64, i16)>,
    ) -> ErrorCode {
        let (done, outcome) = oneshot::channel();
        let job = WriteJob::Append {
            group_id: group_id.to_string(),
            records,
            transaction,
            done: Some(done),
        };
        if self.writer.send(job).is_err() {
            return ErrorCode::COORDINATOR_NOT_AVAILABLE;
        }
        outcome.await.unwrap_or(ErrorCode::COORDINATOR_NOT_AVAILABLE)
    }

    /// Keeps appended (or replayed) transactional offset records pending for `producer_id`.
    pub fn apply_pending(&self, producer_id: i64, records: &[OffsetsRecord], now_ms: i64) {
        let mut groups = self.groups.lock();
        for record in records {
            if let OffsetsRecord::Offset {
                group_id,
                topic,
                partition,
                value: Some(committed),
            } = record
            {
                groups
                    .entry(group_id.clone())
                    .or_insert_with(|| GroupEntry::new(group_id, now_ms))
                    .pending_txn
                    .entry(producer_id)
                    .or_default()
                    .insert((topic.clone(), *partition), committed.clone());
            }
        }
    }

    /// A transaction marker for `producer_id` landed on the offsets partition of the
    /// groups `in_partition` accepts: their pending offsets become committed (COMMIT) or
    /// go (ABORT).
    pub fn complete_txn(&self, producer_id: i64, commit: bool, in_partition: impl Fn(&str) -> bool) {
        let mut groups = self.groups.lock();
        for (group_id, entry) in groups.iter_mut() {
            if !in_partition(group_id) {
                continue;
            }
            if let Some(pending) = entry.pending_txn.remove(&producer_id)
                && commit
            {
                entry.offsets.extend(pending);
            }
        }
    }

    /// Whether an open transaction holds an offset commit for this partition (OffsetFetch
    /// with require_stable answers UNSTABLE_OFFSET_COMMIT then).
    pub fn has_pending(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.groups.lock().get(group_id).is_some_and(|entry| {
            entry
                .pending_txn
                .values()
                .any(|pending| pending.contains_key(&(topic.to_string(), partition)))
        })
    }

    /// Committed offsets of a group: all of them, or those of the requested partitions
    /// (None where nothing is committed).
    pub fn fetch_offsets(&self, group_id: &str, wanted: Option<Vec<(String, Vec<i32>)>>) -> TopicOffsets {
        let groups = self.groups.lock();
        let offsets = groups.get(group_id).map(|entry| &entry.offsets);
        match wanted {
            Some(wanted) => wanted
                .into_iter()
                .map(|(topic, partitions)| {
                    let found = partitions
                        .into_iter()
                        .map(|partition| {
                            let committed =
                                offsets.and_then(|offsets| offsets.get(&(topic.clone(), partition)).cloned());
                            (partition, committed)
                        })
                        .collect();
                    (topic, found)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<(i32, Option<CommittedOffset>)>> = BTreeMap::new();
                for ((topic, partition), committed) in offsets.into_iter().flatten() {
                    by_topic
                        .entry(topic.clone())
                        .or_default()
                        .push((*partition, Some(committed.clone())));
                }
                by_topic.into_iter().collect()
            }
        }
    }

    /// Every live group, classic and consumer.
    pub fn list_groups(&self) -> Vec<ListedGroup> {
        self.groups
            .lock()
            .values()
            .filter(|entry| entry.group.state != GroupState::Dead)
            .map(|entry| match (&entry.consumer, &entry.share) {
                (_, Some(share)) => ListedGroup {
                    group_id: share.group_id.clone(),
                    protocol_type: "share".to_string(),
                    state: share.state_name(),
                    group_type: "share",
                    n_members: share.members.len(),
                    epoch: share.group_epoch,
                },
                (Some(consumer), None) => ListedGroup {
                    group_id: consumer.group_id.clone(),
                    protocol_type: "consumer".to_string(),
                    state: consumer.state().name(),
                    group_type: "consumer",
                    n_members: consumer.members.len(),
                    epoch: consumer.group_epoch,
                },
                (None, None) => ListedGroup {
                    group_id: entry.group.group_id.clone(),
                    protocol_type: entry.group.protocol_type.clone().unwrap_or_default(),
                    state: entry.group.state.name(),
                    group_type: "classic",
                    n_members: entry.group.members.len(),
                    epoch: entry.group.generation_id,
                },
            })
            .collect()
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.groups.lock();
        let group = &groups.get(group_id)?.group;
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let stable = group.state == GroupState::Stable;
        Some(GroupDescription {
            state: group.state,
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol_name: if stable { protocol.clone() } else { String::new() },
            members: group
                .members
                .values()
                .map(|member| {
                    (
                        member.member_id.clone(),
                        member.group_instance_id.clone(),
                        member.client_id.clone(),
                        member.client_host.clone(),
                        if stable {
                            member.metadata(&protocol)
                        } else {
                            Bytes::new()
                        },
                        if stable {
                            member.assignment.clone()
                        } else {
                            Bytes::new()
                        },
                    )
                })
                .collect(),
        })
    }

    /// DeleteGroups for one group: only an empty group can go.
    pub async fn delete_group(&self, group_id: &str, now_ms: i64) -> ErrorCode {
        let records = {
            let groups = self.groups.lock();
            let Some(entry) = groups.get(group_id) else {
                return ErrorCode::of(kafka_protocol::ResponseError::GroupIdNotFound);
            };
            let consumer_members = entry.has_modern_members();
            if !entry.group.members.is_empty() || entry.group.state != GroupState::Empty || consumer_members {
                return ErrorCode::of(kafka_protocol::ResponseError::NonEmptyGroup);
            }
            let mut records: Vec<OffsetsRecord> = entry
                .offsets
                .keys()
                .map(|(topic, partition)| OffsetsRecord::Offset {
                    group_id: group_id.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: None,
                })
                .collect();
            records.push(OffsetsRecord::Group {
                group_id: group_id.to_string(),
                value: None,
            });
            if let Some(consumer) = &entry.consumer {
                records.extend(consumer.tombstones().into_iter().map(OffsetsRecord::Consumer));
            }
            records
        };
        let code = self.append(group_id, records).await;
        if code == codes::NONE
            && let Some(mut entry) = self.groups.lock().remove(group_id)
        {
            entry.group.mark_dead(now_ms);
        }
        code
    }

    /// Topics the group's consumer members are subscribed to (for OffsetDelete).
    pub fn subscribed_topics(&self, group_id: &str) -> Vec<String> {
        use kafka_protocol::messages::ConsumerProtocolSubscription;
        use kafka_protocol::protocol::Decodable;
        let groups = self.groups.lock();
        let Some(entry) = groups.get(group_id) else {
            return Vec::new();
        };
        if let Some(consumer) = &entry.consumer {
            let mut topics: Vec<String> = consumer
                .members
                .values()
                .flat_map(|member| member.subscribed_topic_names.iter().cloned())
                .collect();
            topics.sort();
            topics.dedup();
            return topics;
        }
        let group = &entry.group;
        if group.protocol_type.as_deref() != Some("consumer") {
            return Vec::new();
        }
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let mut topics = Vec::new();
        for member in group.members.values() {
            let mut metadata = member.metadata(&protocol);
            if metadata.len() < 2 {
                continue;
            }
            let version = i16::from_be_bytes([metadata[0], metadata[1]]);
            let _ = bytes::Buf::get_i16(&mut metadata);
            if let Ok(subscription) = ConsumerProtocolSubscription::decode(&mut metadata, version) {
                topics.extend(subscription.topics.iter().map(|topic| topic.to_string()));
            }
        }
        topics.sort();
        topics.dedup();
        topics
    }

    pub fn group_exists(&self, group_id: &str) -> bool {
        self.groups.lock().contains_key(group_id)
    }

    /// OffsetDelete: tombstones for these partitions' offsets.
    pub async fn delete_offsets(&self, group_id: &str, partitions: Vec<(String, i32)>) -> ErrorCode {
        let records = partitions
            .into_iter()
            .map(|(topic, partition)| OffsetsRecord::Offset {
                group_id: group_id.to_string(),
                topic,
                partition,
                value: None,
            })
            .collect();
        self.append(group_id, records).await
    }

    /// Applies timeouts to every group and answers whoever they release.
    pub fn tick(&self, now_ms: i64) {
        let mut groups = self.groups.lock();
        for entry in groups.values_mut() {
            let replies = entry.group.tick(now_ms);
            entry.deliver(replies);
            self.persist_if_dirty(entry);
            if let Some(consumer) = entry.consumer.as_mut()
                && !consumer.tick(now_ms).is_empty()
            {
                self.persist_consumer(consumer);
            }
            if let Some(share) = entry.share.as_mut() {
                for member_id in share.tick(now_ms) {
                    self.shares.release_member(&share.group_id, &member_id);
                }
            }
        }
        self.shares.expire_locks(now_ms);
    }
}
