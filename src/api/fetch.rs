//! Fetch (key 1): whole record batches up to the high watermark, long-polling on
//! `max_wait_ms`/`min_bytes`, bounded by `max_bytes` and `partition_max_bytes`.
//!
//! Fetch sessions (KIP-227, v7+) are kept in [`fetch_session`]: an incremental fetch
//! reads every partition of its session and answers only those with news. Record data is not read here: each
//! partition's data is a file range that `fetch_frame` frames and the server sends.
//!
//! Consumers (v11+) may read from a follower, up to its high watermark (KIP-392). With
//! the rack-aware selector configured, a leader answers a consumer that names its rack
//! with a preferred read replica and no records when an in-sync replica in that rack
//! can serve it.

use super::fetch_frame::FetchReply;
use super::fetch_session::{self, Answer, FetchParams, PartitionKey, Plan, Resolved, SessionError};
use super::{
    RequestContext, check_leader_epoch, current_leader, error_code, is_leader_error, led_partition,
    local_replica, lookup_topic_name,
};
use crate::log::segment::FileSlice;
use crate::replication::Partition;
use crate::replication::read_replica::{ReplicaView, preferred_read_replica};
use crate::security::acl::{Operation, ResourceType};
use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, ProducerId, TopicName};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;
use std::time::Duration;

/// One requested partition, resolved once per request.
struct Wanted {
    topic_index: usize,
    partition_index: i32,
    fetch_offset: i64,
    /// A follower's log start offset (v5+), for DeleteRecords' low watermark.
    log_start_offset: i64,
    /// A durable follower's fsynced log end: only that much counts as replicated.
    durable_end_offset: Option<i64>,
    partition_max_bytes: i32,
    current_leader_epoch: i32,
    /// The epoch of the follower's last batch (v12+; -1 unknown), for divergence.
    last_fetched_epoch: i32,
    /// A follower's fetch: it reads past the high watermark, up to the log end.
    replica: bool,
    /// A consumer that may read from a follower (v11+, KIP-392).
    any_replica: bool,
    /// Where the leader sends this consumer instead (KIP-392), if elsewhere.
    preferred_read_replica: Option<i32>,
    /// isolation_level=READ_COMMITTED (v4+): up to the last stable offset, with the
    /// aborted transactions in what is sent.
    read_committed: bool,
    partition: Result<Arc<Partition>, i16>,
}

/// KIP-392: the in-sync replica in the consumer's rack that the leader sends it to,
/// when the rack-aware selector is configured and such a replica is not the leader.
fn preferred_replica(
    ctx: &RequestContext<'_>,
    partition: &Partition,
    rack_id: &str,
    fetch_offset: i64,
) -> Option<i32> {
    let config = &ctx.broker.config;
    if !config.rack_aware_reads || rack_id.is_empty() {
        return None;
    }
    let (leader_log_end_offset, candidates) = partition.read_candidates(fetch_offset)?;
    let image = ctx.broker.image();
    let followers: Vec<ReplicaView> = candidates
        .into_iter()
        .filter_map(|candidate| {
            let registered = image
                .brokers
                .get(&candidate.broker_id)
                .filter(|broker| !broker.fenced)?;
            Some(ReplicaView {
                rack: registered.rack.clone(),
                ..candidate
            })
        })
        .collect();
    let leader = ReplicaView {
        broker_id: config.node_id,
        rack: config.broker_rack.clone(),
        log_end_offset: leader_log_end_offset,
        last_caught_up_ms: i64::MAX,
    };
    preferred_read_replica(rack_id, &leader, &followers)
}

/// File ranges one fetch response sends with sendfile; the rest of its ranges are
/// copied into the response (see where they are collected).
const MAX_FILE_SLICES: usize = 16;

/// What reading one partition found. The protocol's `PartitionData` is built only for
/// the partitions the response names (an idle session reads thousands and names none).
struct Read {
    error_code: i16,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    /// KIP-320/KIP-595: where the follower's last epoch ends here (epoch, end offset).
    diverging: Option<(i32, i64)>,
    preferred_read_replica: Option<i32>,
    aborted: Option<Vec<AbortedTransaction>>,
    /// Records copied into the response (past the first few ranges).
    copied: Option<Bytes>,
    /// Records sent from the file.
    slice: Option<FileSlice>,
}

impl Read {
    fn failed(error_code: i16) -> Self {
        Read {
            error_code,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            diverging: None,
            preferred_read_replica: None,
            aborted: None,
            copied: None,
            slice: None,
        }
    }

    /// An error, a diverging epoch or a preferred read replica: always answered, and
    /// the end of waiting.
    fn must_send(&self) -> bool {
        self.error_code != error_code::NONE
            || self.diverging.is_some()
            || self.preferred_read_replica.is_some()
    }

    fn answer(&self) -> Answer {
        Answer {
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
            last_stable_offset: self.last_stable_offset,
            has_records: self.slice.as_ref().is_some_and(|slice| slice.len > 0)
                || self.copied.as_ref().is_some_and(|records| !records.is_empty()),
            must_send: self.must_send(),
        }
    }

    /// The partition's entry in the response; its file range, if any, goes beside it.
    fn into_data(self, partition_index: i32) -> (PartitionData, Option<FileSlice>) {
        let mut data = PartitionData::default()
            .with_partition_index(partition_index)
            .with_error_code(self.error_code)
            .with_high_watermark(self.high_watermark)
            .with_last_stable_offset(self.last_stable_offset)
            .with_log_start_offset(self.log_start_offset)
            .with_records(match &self.slice {
                Some(_) => None,
                None => Some(self.copied.unwrap_or_default()),
            });
        if self.aborted.is_some() {
            data.aborted_transactions = self.aborted;
        }
        if let Some((epoch, end_offset)) = self.diverging {
            data.diverging_epoch = EpochEndOffset::default()
                .with_epoch(epoch)
                .with_end_offset(end_offset);
        }
        if let Some(replica) = self.preferred_read_replica {
            data.preferred_read_replica = BrokerId(replica);
        }
        (data, self.slice)
    }
}

fn read_partition(wanted: &Wanted, remaining: u64, min_one: bool) -> Read {
    let partition = match &wanted.partition {
        Ok(partition) => partition,
        Err(code) => return Read::failed(*code),
    };
    if !wanted.any_replica && !partition.is_leader() {
        // Leadership moved while the fetch waited.
        return Read::failed(error_code::NOT_LEADER_OR_FOLLOWER);
    }
    partition.with_log(|log| {
        let high_watermark = log.high_watermark();
        let last_stable_offset = log.last_stable_offset();
        let mut read = Read {
            high_watermark,
            last_stable_offset,
            log_start_offset: log.log_start_offset(),
            ..Read::failed(error_code::NONE)
        };
        if let Err(code) = check_leader_epoch(wanted.current_leader_epoch, log.leader_epoch()) {
            read.error_code = code;
            return read;
        }
        if wanted.preferred_read_replica.is_some() {
            read.preferred_read_replica = wanted.preferred_read_replica;
            return read;
        }
        if wanted.replica && wanted.last_fetched_epoch >= 0 {
            // KIP-320/KIP-595 divergence: where the follower's last epoch ends here.
            let (epoch, end_offset) = log.end_offset_for_epoch(wanted.last_fetched_epoch);
            if end_offset >= 0 && (end_offset < wanted.fetch_offset || epoch < wanted.last_fetched_epoch) {
                read.diverging = Some((epoch, end_offset));
                return read;
            }
        }
        let max_bytes = (wanted.partition_max_bytes.max(0) as u64).min(remaining);
        if max_bytes == 0 && !min_one {
            return read;
        }
        // Followers read what the leader has; consumers only what is committed, and
        // read_committed ones only what is stable.
        let max_offset = if wanted.replica {
            log.log_end_offset()
        } else if wanted.read_committed {
            last_stable_offset
        } else {
            high_watermark
        };
        match log.read(wanted.fetch_offset, max_offset, max_bytes, min_one) {
            Ok(slice) => {
                if wanted.read_committed {
                    // Only the list is computed; the records still go out as file ranges.
                    read.aborted = Some(
                        log.aborted_overlapping(wanted.fetch_offset, max_offset)
                            .into_iter()
                            .map(|(producer_id, first_offset)| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(producer_id))
                                    .with_first_offset(first_offset)
                            })
                            .collect(),
                    );
                }
                read.slice = slice;
            }
            Err(error) => read.error_code = error.code(),
        }
        read
    })
}

/// A topic as the partitions read name it, looked up once per run of its partitions.
struct TopicRef {
    key_topic: String,
    topic_id: uuid::Uuid,
    /// Its name, when it exists (and the fetcher may see that it does).
    name: Option<String>,
    record: Result<String, i16>,
}

/// The request as the session cache sees it.
fn session_request(request: &FetchRequest, replica: bool, by_id: bool) -> fetch_session::Request {
    let key = |topic: &str, topic_id: uuid::Uuid, partition: i32| PartitionKey {
        topic: if by_id { String::new() } else { topic.to_string() },
        topic_id: if by_id { topic_id } else { uuid::Uuid::nil() },
        partition,
    };
    let partitions = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(move |partition| {
                (
                    key(topic.topic.as_str(), topic.topic_id, partition.partition),
                    FetchParams {
                        fetch_offset: partition.fetch_offset,
                        log_start_offset: partition.log_start_offset,
                        partition_max_bytes: partition.partition_max_bytes,
                        current_leader_epoch: partition.current_leader_epoch,
                        last_fetched_epoch: partition.last_fetched_epoch,
                        durable_end_offset: crate::replication::fetcher::durable_end_offset(
                            &partition.unknown_tagged_fields,
                        ),
                    },
                )
            })
        })
        .collect();
    let forgotten = request
        .forgotten_topics_data
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(move |&partition| key(topic.topic.as_str(), topic.topic_id, partition))
        })
        .collect();
    fetch_session::Request {
        session_id: request.session_id,
        epoch: request.session_epoch,
        privileged: replica,
        uses_topic_ids: by_id,
        partitions,
        forgotten,
    }
}

pub async fn handle(ctx: &RequestContext<'_>, request: FetchRequest) -> FetchReply {
    let by_id = ctx.version >= 13;
    let replica_id = if ctx.version >= 15 {
        *request.replica_state.replica_id
    } else {
        *request.replica_id
    };
    let replica = replica_id >= 0;
    let any_replica = !replica && ctx.version >= 11;
    let sessions = &ctx.api.fetch_sessions;
    let session_request = session_request(&request, replica, by_id);
    let now = crate::common::now_ms().max(0) as u64;
    // Before v7 there are no sessions: every fetch is full.
    let plan = if ctx.version >= 7 {
        sessions.begin(&session_request, now)
    } else {
        Ok(Plan::Sessionless)
    };
    let plan = match plan {
        Ok(plan) => plan,
        Err(SessionError(code)) => {
            return FetchReply {
                response: FetchResponse::default().with_error_code(code),
                slices: Vec::new(),
            };
        }
    };
    let (to_read, known): (_, &[Resolved]) = match &plan {
        Plan::Incremental {
            partitions, resolved, ..
        } => (partitions, resolved),
        Plan::Open | Plan::Sessionless => (&session_request.partitions, &[]),
    };
    let read_committed = ctx.version >= 4 && request.isolation_level == 1 && !replica;
    let mut wanted = Vec::with_capacity(to_read.len());
    let mut topics: Vec<TopicRef> = Vec::new();
    // A follower needs ClusterAction on the cluster; a consumer Read on each topic.
    let replica_allowed = !replica || ctx.allowed_on_cluster(Operation::ClusterAction);
    for (read, (key, params)) in to_read.iter().enumerate() {
        let same_topic = topics
            .last()
            .is_some_and(|last| last.key_topic == key.topic && last.topic_id == key.topic_id);
        if !same_topic {
            let record = lookup_topic_name(ctx.broker, &key.topic, key.topic_id, by_id);
            let name = record.as_ref().map_or(key.topic.as_str(), String::as_str);
            let authorized = if replica {
                replica_allowed
            } else {
                ctx.allowed(Operation::Read, ResourceType::Topic, name)
            };
            let record = match record {
                Ok(_) if !authorized => Err(ResponseError::TopicAuthorizationFailed.code()),
                Err(_) if !authorized && !by_id => Err(ResponseError::TopicAuthorizationFailed.code()),
                other => other,
            };
            topics.push(TopicRef {
                key_topic: key.topic.clone(),
                topic_id: key.topic_id,
                name: record.as_ref().ok().cloned(),
                record,
            });
        }
        let topic_index = topics.len() - 1;
        // The replica the session read last time, if the broker still hosts it (a
        // lookup per partition is most of an idle follower fetch's cost).
        let known = known.get(read).and_then(Resolved::get);
        let resolved = match (&topics[topic_index].record, known) {
            (Ok(_), Some(local)) if any_replica || local.is_leader() => Ok(local),
            (Ok(_), Some(_)) => Err(error_code::NOT_LEADER_OR_FOLLOWER),
            (Ok(name), None) if any_replica => local_replica(ctx.broker, name, key.partition),
            (Ok(name), None) => led_partition(ctx.broker, name, key.partition),
            (Err(code), _) => Err(*code),
        };
        let preferred_read_replica = match &resolved {
            Ok(local) if any_replica => {
                preferred_replica(ctx, local, request.rack_id.as_str(), params.fetch_offset)
            }
            _ => None,
        };
        wanted.push(Wanted {
            topic_index,
            partition_index: key.partition,
            fetch_offset: params.fetch_offset,
            log_start_offset: params.log_start_offset,
            durable_end_offset: params.durable_end_offset,
            partition_max_bytes: params.partition_max_bytes,
            current_leader_epoch: params.current_leader_epoch,
            last_fetched_epoch: params.last_fetched_epoch,
            replica,
            any_replica,
            preferred_read_replica,
            read_committed,
            partition: resolved,
        });
    }
    if replica {
        // A follower's fetch offset is its log end: record its progress (which may move
        // the high watermark); one outside the ISR may be due to join it.
        let now = crate::common::now_ms();
        for item in &wanted {
            if let Ok(partition) = &item.partition
                && partition.record_follower_fetch(
                    replica_id,
                    item.fetch_offset,
                    item.durable_end_offset,
                    item.log_start_offset,
                    now,
                )
            {
                ctx.broker.propose_isr_change(partition);
            }
        }
    }
    let max_bytes = if request.max_bytes <= 0 {
        i32::MAX as u64
    } else {
        request.max_bytes as u64
    };
    let min_bytes = request.min_bytes.max(0) as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);

    // Ranges copied into the response (topic, bytes, records), counted as consumed below.
    let mut copied: Vec<(usize, u64, u64)> = Vec::new();
    let results = loop {
        // Register for wake-ups before reading, so an append in between is not missed.
        let mut waits: Vec<_> = wanted
            .iter()
            .filter_map(|item| item.partition.as_ref().ok())
            .map(|partition| Box::pin(partition.appended()))
            .collect();
        for wait in &mut waits {
            wait.as_mut().enable();
        }
        let mut results = Vec::with_capacity(wanted.len());
        copied.clear();
        let mut total: u64 = 0;
        let mut any_error = false;
        let mut n_slices = 0;
        for item in &wanted {
            let mut read = read_partition(item, max_bytes - total.min(max_bytes), total == 0);
            total += read.slice.as_ref().map_or(0, |slice| slice.len);
            if read.slice.is_some() {
                n_slices += 1;
            }
            if n_slices > MAX_FILE_SLICES
                && let Some(range) = read.slice.take()
            {
                // Past the first few, ranges are copied at once: a slice holds its
                // segment's descriptor until sent, and a fetch over thousands of
                // partitions must not hold thousands of them past the open-file budget.
                match range.read_to_vec() {
                    Ok(bytes) => {
                        if !item.replica {
                            copied.push((item.topic_index, range.len, range.records));
                        }
                        read.copied = Some(Bytes::from(bytes));
                    }
                    Err(error) => {
                        tracing::error!(partition = item.partition_index, %error, "cannot read a fetched range");
                        read.error_code = error_code::KAFKA_STORAGE_ERROR;
                    }
                };
            }
            any_error |= read.must_send();
            results.push(read);
        }
        let expired = tokio::time::Instant::now() >= deadline;
        if total >= min_bytes || any_error || expired || waits.is_empty() {
            break results;
        }
        // Ranges found are not held through the wait (each holds a segment descriptor).
        let kept = (n_slices == 0 && copied.is_empty()).then_some(results);
        let _waiting = ctx.broker.metrics.waiting(crate::metrics::WaitKind::Fetch);
        let woken = tokio::time::timeout_at(deadline, futures::future::select_all(waits)).await;
        // A wait that timed out with no wake-up saw no append, high-watermark, log-start,
        // marker or leadership change in any partition read (each notifies `appended`):
        // the read before it is the answer.
        if woken.is_err()
            && let Some(results) = kept
        {
            break results;
        }
    };

    for (topic_index, len, records) in copied {
        if let Some(name) = &topics[topic_index].name {
            ctx.broker.metrics.consumed(name, len, records);
        }
    }
    let answers: Vec<Answer> = results.iter().map(Read::answer).collect();
    let resolved = wanted
        .iter()
        .map(|item| {
            item.partition
                .as_ref()
                .map_or_else(|_| Resolved::default(), Resolved::of)
        })
        .collect();
    let (session_id, include) = sessions.finish(&plan, &session_request, &answers, resolved, now);

    // Consecutive partitions of one topic share a topic entry.
    let mut responses: Vec<FetchableTopicResponse> = Vec::new();
    let mut response_topic: Vec<usize> = Vec::new();
    let mut slices = Vec::new();
    let mut endpoints = std::collections::BTreeMap::new();
    for ((item, read), included) in wanted.iter().zip(results).zip(include) {
        if !included {
            continue;
        }
        let (data, slice) = read.into_data(item.partition_index);
        let topic = &topics[item.topic_index];
        if response_topic.last() != Some(&item.topic_index) {
            response_topic.push(item.topic_index);
            responses.push(
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.key_topic.clone())))
                    .with_topic_id(topic.topic_id),
            );
        }
        let topic_position = responses.len() - 1;
        // KIP-951 (v16+): name the partition's current leader with a leader error.
        let mut data = data;
        if ctx.version >= 16
            && is_leader_error(data.error_code)
            && let Some(name) = &topic.name
            && let Some((leader, epoch, endpoint)) =
                current_leader(&ctx.broker.image(), name, item.partition_index, ctx.listener)
        {
            data.current_leader = LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(epoch);
            endpoints.insert(leader, endpoint);
        }
        let partitions = &mut responses[topic_position].partitions;
        match slice {
            Some(slice) => {
                if !item.replica
                    && let Some(name) = &topic.name
                {
                    ctx.broker.metrics.consumed(name, slice.len, slice.records);
                }
                slices.push(((topic_position, partitions.len()), slice));
                partitions.push(data.with_records(None));
            }
            None => partitions.push(data),
        }
    }
    let node_endpoints = endpoints
        .into_iter()
        .map(|(node_id, endpoint)| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(node_id))
                .with_host(StrBytes::from_string(endpoint.host))
                .with_port(endpoint.port as i32)
        })
        .collect();
    FetchReply {
        response: FetchResponse::default()
            .with_session_id(session_id)
            .with_responses(responses)
            .with_node_endpoints(node_endpoints),
        slices,
    }
}
