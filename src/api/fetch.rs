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
use super::{RequestContext, current_leader, is_leader_error, lookup_topic_name};
use crate::common::ErrorCode;
use crate::log::segment::FileSlice;
use crate::replication::manager::{FetchSpec, FetchTarget, PartitionRead};
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, ProducerId, TopicName};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;

fn answer(read: &PartitionRead) -> Answer {
    Answer {
        high_watermark: read.high_watermark,
        log_start_offset: read.log_start_offset,
        last_stable_offset: read.last_stable_offset,
        has_records: read.has_records(),
        must_send: read.must_send(),
    }
}

/// A partition's entry in the response; its file range, if any, goes beside it.
fn into_data(read: PartitionRead, partition_index: i32) -> (PartitionData, Option<FileSlice>) {
    let mut data = PartitionData::default()
        .with_partition_index(partition_index)
        .with_error_code(read.error_code.code())
        .with_high_watermark(read.high_watermark)
        .with_last_stable_offset(read.last_stable_offset)
        .with_log_start_offset(read.log_start_offset)
        .with_records(match &read.slice {
            Some(_) => None,
            None => Some(read.copied.map(|(records, _)| records).unwrap_or_default()),
        });
    if let Some(aborted) = read.aborted {
        data.aborted_transactions = Some(
            aborted
                .into_iter()
                .map(|(producer_id, first_offset)| {
                    AbortedTransaction::default()
                        .with_producer_id(ProducerId(producer_id))
                        .with_first_offset(first_offset)
                })
                .collect(),
        );
    }
    if let Some((epoch, end_offset)) = read.diverging {
        data.diverging_epoch = EpochEndOffset::default()
            .with_epoch(epoch)
            .with_end_offset(end_offset);
    }
    if let Some(replica) = read.preferred_read_replica {
        data.preferred_read_replica = BrokerId(replica);
    }
    (data, read.slice)
}

/// A topic as the partitions read name it, looked up once per run of its partitions.
struct TopicRef {
    key_topic: String,
    topic_id: uuid::Uuid,
    /// Its name, when it exists (and the fetcher may see that it does).
    name: Option<String>,
    record: Result<String, ErrorCode>,
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
    let mut targets = Vec::with_capacity(to_read.len());
    // Per target: its topic (an index into `topics`) and partition index.
    let mut names: Vec<(usize, i32)> = Vec::with_capacity(to_read.len());
    let mut topics: Vec<TopicRef> = Vec::new();
    // A follower needs ClusterAction on the cluster; a consumer Read on each topic.
    let replica_allowed = !replica || ctx.allowed_on_cluster(Operation::ClusterAction);
    let replicas = &ctx.broker.replicas;
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
                Ok(_) if !authorized => Err(ResponseError::TopicAuthorizationFailed.into()),
                Err(_) if !authorized && !by_id => Err(ResponseError::TopicAuthorizationFailed.into()),
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
            (Ok(_), Some(_)) => Err(ErrorCode::NOT_LEADER_OR_FOLLOWER),
            (Ok(name), None) if any_replica => replicas.local_replica(name, key.partition),
            (Ok(name), None) => replicas.led_partition(name, key.partition),
            (Err(code), _) => Err(*code),
        };
        names.push((topic_index, key.partition));
        targets.push(FetchTarget {
            partition: resolved,
            fetch_offset: params.fetch_offset,
            log_start_offset: params.log_start_offset,
            durable_end_offset: params.durable_end_offset,
            partition_max_bytes: params.partition_max_bytes,
            current_leader_epoch: params.current_leader_epoch,
            last_fetched_epoch: params.last_fetched_epoch,
        });
    }
    let spec = FetchSpec {
        replica_id: replica.then_some(replica_id),
        any_replica,
        read_committed,
        rack_id: request.rack_id.to_string(),
        max_bytes: if request.max_bytes <= 0 {
            i32::MAX as u64
        } else {
            request.max_bytes as u64
        },
        min_bytes: request.min_bytes.max(0) as u64,
        max_wait: Duration::from_millis(request.max_wait_ms.max(0) as u64),
    };
    let results = replicas.fetch(&spec, &targets).await;

    let answers: Vec<Answer> = results.iter().map(answer).collect();
    let resolved = targets
        .iter()
        .map(|target| {
            target
                .partition
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
    for ((&(topic_index, partition_index), read), included) in names.iter().zip(results).zip(include) {
        if !replica
            && let Some(name) = &topics[topic_index].name
            && let Some((records, count)) = &read.copied
        {
            // Ranges copied into the response are consumed whether or not it names them.
            ctx.broker.metrics.consumed(name, records.len() as u64, *count);
        }
        if !included {
            continue;
        }
        let (data, slice) = into_data(read, partition_index);
        let topic = &topics[topic_index];
        if response_topic.last() != Some(&topic_index) {
            response_topic.push(topic_index);
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
                current_leader(&ctx.broker.image(), name, partition_index, ctx.listener)
        {
            data.current_leader = LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(epoch);
            endpoints.insert(leader, endpoint);
        }
        let partitions = &mut responses[topic_position].partitions;
        match slice {
            Some(slice) => {
                if !replica && let Some(name) = &topic.name {
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
    // consumer_byte_rate: the record bytes a consumer's fetch returns.
    let throttle_ms = if replica {
        0
    } else {
        let inline: u64 = responses
            .iter()
            .flat_map(|topic| &topic.partitions)
            .map(|data| data.records.as_ref().map_or(0, |records| records.len() as u64))
            .sum();
        let sent = inline + slices.iter().map(|(_, slice)| slice.len).sum::<u64>();
        ctx.record_quota(crate::broker::quotas::QuotaKind::Fetch, sent as f64)
    };
    FetchReply {
        response: FetchResponse::default()
            .with_throttle_time_ms(throttle_ms)
            .with_session_id(session_id)
            .with_responses(responses)
            .with_node_endpoints(node_endpoints),
        slices,
    }
}
