//! ShareFetch (key 78): a share group member's fetch. It applies the share session
//! (epoch 0 opens it, -1 closes it and releases what the member holds), the
//! acknowledgements it carries, then reads each of the session's partitions this
//! broker leads from the share-partition's next available offset and acquires the
//! records read for the member, waiting up to `max_wait_ms` for some. The records go
//! out as stored; only the acquired ranges (with their delivery counts) say which of
//! them are the member's. Record data leaves by sendfile (`share_fetch_frame.rs`).

use super::RequestContext;
use super::share_fetch_frame::ShareFetchReply;
use crate::common::{ErrorCode, now_ms};
use crate::group::overrides::GroupOverrides;
use crate::group::share::isolation::{ReadBatch, aborted_ranges};
use crate::group::share::manager::{AcquireLimits, ShareKey};
use crate::log::TopicPartition;
use crate::log::segment::FileSlice;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, LeaderIdAndEpoch, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::{ShareFetchRequest, ShareFetchResponse};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use uuid::Uuid;

/// What a partition read gave the member: the records as stored, its acquired
/// ranges, and the leader (id, epoch).
type Acquired = (FileSlice, Vec<AcquiredRecords>, (i32, i32));

/// One partition read and acquired: its data, or None when it had nothing.
fn read_partition(
    ctx: &RequestContext<'_>,
    key: &ShareKey,
    member_id: &str,
    max_bytes: u64,
    limits: AcquireLimits,
    read_committed: bool,
) -> Result<Option<Acquired>, ErrorCode> {
    let max_records = limits.max_records;
    let broker = ctx.broker;
    let image = broker.image();
    let (_, topic_id, index) = key;
    let Some(topic) = image.topic_by_id(*topic_id) else {
        return Err(ErrorCode::UNKNOWN_TOPIC_ID);
    };
    let tp = TopicPartition::new(&topic.name, *index);
    let Some(partition) = broker
        .replicas
        .partition(&tp)
        .filter(|partition| partition.is_leader())
    else {
        return Err(ErrorCode::NOT_LEADER_OR_FOLLOWER);
    };
    let shares = &broker.groups.shares;
    let read = partition.with_log(|log| {
        // read_committed: nothing past the last stable offset.
        let high_watermark = if read_committed {
            log.last_stable_offset()
        } else {
            log.high_watermark()
        };
        let start = log.log_start_offset();
        let leader = (broker.config.node_id, log.leader_epoch());
        // Not loaded: its share coordinator could not be reached yet; nothing this time.
        let from = shares.next_fetch_offset(key, start).unwrap_or(high_watermark);
        if from >= high_watermark {
            return Ok((None, from, high_watermark, leader));
        }
        // Read about as far as this fetch may acquire: the member gets no records it
        // could not take.
        let upto = high_watermark.min(from.saturating_add(max_records as i64));
        let aborted = if read_committed {
            log.aborted_overlapping(from, upto)
        } else {
            Vec::new()
        };
        log.read(from, upto, max_bytes, true)
            .map(|slice| (slice.map(|slice| (slice, aborted)), from, upto, leader))
    });
    let (slice, from, high_watermark, leader) = read.map_err(|error| {
        tracing::warn!(%error, topic = %topic.name, partition = index, "share fetch read failed");
        ErrorCode::KAFKA_STORAGE_ERROR
    })?;
    let Some((slice, aborted)) = slice else {
        return Ok(None);
    };
    let end = (slice.last_offset + 1).min(high_watermark);
    let archived = if aborted.is_empty() {
        Vec::new()
    } else {
        aborted_in(&slice, &aborted).map_err(|error| {
            tracing::warn!(%error, topic = %topic.name, partition = index, "share fetch read failed");
            ErrorCode::KAFKA_STORAGE_ERROR
        })?
    };
    let acquired = shares.acquire(key, member_id, from..end, &archived, limits, now_ms());
    if acquired.is_empty() {
        return Ok(None);
    }
    let acquired = acquired
        .into_iter()
        .map(|range| {
            AcquiredRecords::default()
                .with_first_offset(range.first_offset)
                .with_last_offset(range.last_offset)
                .with_delivery_count(range.delivery_count)
        })
        .collect();
    Ok(Some((slice, acquired, leader)))
}

/// The offsets of aborted transactions' batches in `slice` (read_committed): the batch
/// headers are read from the file, the rule is `group::share::isolation`'s.
fn aborted_in(slice: &FileSlice, aborted: &[(i64, i64)]) -> std::io::Result<Vec<(i64, i64)>> {
    let bytes = bytes::Bytes::from(slice.read_to_vec()?);
    let batches = crate::log::batch::split_stored(&bytes, usize::MAX)
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    let read: Vec<ReadBatch> = batches
        .iter()
        .map(|batch| ReadBatch {
            base_offset: batch.header.base_offset,
            last_offset: batch.header.last_offset(),
            producer_id: batch.header.producer_id,
            transactional: batch.header.is_transactional(),
            marker_abort: crate::log::control::marker(&batch.header, &batch.bytes)
                .map(|marker| !marker.commit),
        })
        .collect();
    Ok(aborted_ranges(&read, aborted))
}

fn refused(code: i16) -> ShareFetchReply {
    ShareFetchReply {
        response: ShareFetchResponse::default().with_error_code(code),
        slices: Vec::new(),
    }
}

pub async fn handle(ctx: &RequestContext<'_>, request: ShareFetchRequest) -> ShareFetchReply {
    let (Some(group_id), Some(member_id)) = (request.group_id.clone(), request.member_id.clone()) else {
        return refused(ResponseError::InvalidRequest.code());
    };
    let (group_id, member_id) = (group_id.to_string(), member_id.to_string());
    if !ctx.allowed(Operation::Read, ResourceType::Group, &group_id) {
        return refused(ResponseError::GroupAuthorizationFailed.code());
    }
    let shares = &ctx.broker.groups.shares;
    let overrides = GroupOverrides::parse(ctx.broker.image().group_configs.get(&group_id));
    let lock_duration_ms = overrides
        .share_record_lock_duration_ms
        .unwrap_or(shares.config.lock_duration_ms);
    let added: Vec<(Uuid, i32)> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|p| (topic.topic_id, p.partition_index))
        })
        .collect();
    let forgotten: Vec<(Uuid, i32)> = request
        .forgotten_topics_data
        .iter()
        .flat_map(|topic| topic.partitions.iter().map(|p| (topic.topic_id, *p)))
        .collect();
    let epoch = request.share_session_epoch;
    let session = match shares.session(&group_id, &member_id, epoch, &added, &forgotten) {
        Ok(session) => session,
        Err(code) => return refused(code.code()),
    };
    // Acknowledgements first: they may free records this fetch then acquires.
    let mut acknowledged: HashMap<(Uuid, i32), ErrorCode> = HashMap::new();
    for topic in &request.topics {
        for partition in &topic.partitions {
            let key = (group_id.clone(), topic.topic_id, partition.partition_index);
            for batch in &partition.acknowledgement_batches {
                let code = shares.acknowledge(
                    &key,
                    &member_id,
                    batch.first_offset,
                    batch.last_offset,
                    &batch.acknowledge_types,
                );
                let entry = acknowledged
                    .entry((topic.topic_id, partition.partition_index))
                    .or_insert(code);
                if entry.is_none() {
                    *entry = code;
                }
            }
        }
    }
    // An acknowledgement is answered once its state is durable at the share
    // coordinator.
    for ((topic_id, index), code) in acknowledged.iter_mut() {
        if code.is_none() {
            let key = (group_id.clone(), *topic_id, *index);
            *code = ctx.broker.persist_share_partition(&key).await;
        }
    }
    let mut fetched: BTreeMap<(Uuid, i32), Result<Option<_>, ErrorCode>> = BTreeMap::new();
    if epoch == -1 {
        shares.release_member(&group_id, &member_id);
    } else {
        let topics_allowed = |topic_id: Uuid| {
            ctx.broker
                .image()
                .topic_by_id(topic_id)
                .is_some_and(|topic| ctx.allowed(Operation::Read, ResourceType::Topic, &topic.name))
        };
        let max_records = if request.max_records > 0 {
            request.max_records as usize
        } else {
            500
        };
        let partition_max = request.max_bytes.max(1) as u64;
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(request.max_wait_ms.clamp(0, 30_000) as u64);
        loop {
            let mut remaining = max_records;
            for (topic_id, index) in &session {
                if remaining == 0 {
                    break;
                }
                let outcome = if topics_allowed(*topic_id) {
                    let key = (group_id.clone(), *topic_id, *index);
                    match ctx.broker.load_share_partition(&key).await {
                        Err(ErrorCode::NOT_LEADER_OR_FOLLOWER) => Err(ErrorCode::NOT_LEADER_OR_FOLLOWER),
                        // Its state is not reachable yet: nothing this time.
                        Err(_) => Ok(None),
                        Ok(()) => {
                            let limits = AcquireLimits {
                                max_records: remaining,
                                lock_duration_ms,
                            };
                            read_partition(
                                ctx,
                                &key,
                                &member_id,
                                partition_max,
                                limits,
                                overrides.share_read_committed,
                            )
                        }
                    }
                } else {
                    Err(ErrorCode::of(ResponseError::TopicAuthorizationFailed))
                };
                if let Ok(Some((_, acquired, _))) = &outcome {
                    let n: i64 = acquired
                        .iter()
                        .map(|range: &AcquiredRecords| range.last_offset - range.first_offset + 1)
                        .sum();
                    remaining = remaining.saturating_sub(n as usize);
                }
                fetched.insert((*topic_id, *index), outcome);
            }
            let got_any = fetched.values().any(|outcome| matches!(outcome, Ok(Some(_))));
            if got_any || tokio::time::Instant::now() >= deadline || session.is_empty() {
                break;
            }
            fetched.clear();
            // New records are looked for every 20 ms; released ones at once.
            let _ = tokio::time::timeout(Duration::from_millis(20), shares.released.notified()).await;
        }
    }
    let mut by_topic: BTreeMap<Uuid, Vec<(PartitionData, Option<FileSlice>)>> = BTreeMap::new();
    let keys: std::collections::BTreeSet<(Uuid, i32)> =
        fetched.keys().chain(acknowledged.keys()).copied().collect();
    for (topic_id, index) in keys {
        let mut data = PartitionData::default().with_partition_index(index);
        let mut file = None;
        if let Some(code) = acknowledged.get(&(topic_id, index)) {
            data = data.with_acknowledge_error_code(code.code());
        }
        match fetched.remove(&(topic_id, index)) {
            Some(Ok(Some((slice, acquired, (leader_id, leader_epoch))))) => {
                file = Some(slice);
                data = data
                    .with_records(None)
                    .with_acquired_records(acquired)
                    .with_current_leader(
                        LeaderIdAndEpoch::default()
                            .with_leader_id(leader_id)
                            .with_leader_epoch(leader_epoch),
                    );
            }
            Some(Ok(None)) | None => {}
            Some(Err(code)) => data = data.with_error_code(code.code()),
        }
        by_topic.entry(topic_id).or_default().push((data, file));
    }
    let mut slices = Vec::new();
    let mut responses = Vec::with_capacity(by_topic.len());
    for (topic_index, (topic_id, partitions)) in by_topic.into_iter().enumerate() {
        let mut datas = Vec::with_capacity(partitions.len());
        for (partition_index, (data, file)) in partitions.into_iter().enumerate() {
            if let Some(slice) = file {
                slices.push(((topic_index, partition_index), slice));
            }
            datas.push(data);
        }
        responses.push(
            ShareFetchableTopicResponse::default()
                .with_topic_id(topic_id)
                .with_partitions(datas),
        );
    }
    ShareFetchReply {
        response: ShareFetchResponse::default()
            .with_acquisition_lock_timeout_ms(lock_duration_ms as i32)
            .with_responses(responses),
        slices,
    }
}
