//! Produce (key 0): check each batch (length, CRC-32C, `max.message.bytes`), then append
//! it as sent. acks=1 is answered after the leader's append; acks=all (-1) after every
//! in-sync replica has the batch (the high watermark covers it), or REQUEST_TIMED_OUT
//! at the request's timeout. When the flush policy asks for an fsync (`flush.messages=1`)
//! the answer also waits for it, but the append does not: the connection reads and
//! appends the next requests meanwhile, and one group commit covers them all.
//! acks=0 gets no response.

use super::{Outcome, RequestContext, error_code, led_partition, lookup_topic_name};
use crate::log::batch::{self, BatchError};
use crate::log::partition_log::AppendInfo;
use crate::log::record_check::{self, RecordRules};
use crate::replication::Partition;
use crate::replication::partition::AppendError;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

fn partition_error(index: i32, code: i16, message: String) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(Some(StrBytes::from_string(message)))
}

/// A partition's part of the answer: ready now, or once replicated (acks=all).
enum Pending {
    Ready(PartitionProduceResponse),
    /// Appended; acknowledged once flushed (when `flush`) and, with `replicate`
    /// (acks=all), once every in-sync replica has it.
    Appended {
        partition: Arc<Partition>,
        index: i32,
        info: AppendInfo,
        flush: bool,
        replicate: bool,
    },
}

fn appended(index: i32, info: &AppendInfo) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_base_offset(info.base_offset)
        .with_log_append_time_ms(info.log_append_time_ms)
        .with_log_start_offset(info.log_start_offset)
}

fn failed(topic: &str, index: i32, error: &AppendError) -> PartitionProduceResponse {
    if let AppendError::Log(log_error) = error
        && log_error.is_fatal()
    {
        tracing::error!(%error, topic, index, "append failed; log taken offline");
    }
    partition_error(index, error.code(), error.to_string())
}

/// Checks and appends one partition's batches.
async fn produce_partition(
    ctx: &RequestContext<'_>,
    topic: &str,
    index: i32,
    records: Option<bytes::Bytes>,
    acks: i16,
    transactional_id: Option<&str>,
) -> Pending {
    // Checked before anything else, so a refused produce writes nothing.
    if !ctx.allowed(Operation::Write, ResourceType::Topic, topic) {
        return Pending::Ready(partition_error(
            index,
            ResponseError::TopicAuthorizationFailed.code(),
            format!("not authorized to write to {topic}"),
        ));
    }
    let partition = match led_partition(ctx.broker, topic, index) {
        Ok(partition) => partition,
        Err(code) => {
            let message = if code == error_code::NOT_LEADER_OR_FOLLOWER {
                format!("this broker does not lead {topic}-{index}")
            } else {
                format!("unknown partition {topic}-{index}")
            };
            return Pending::Ready(partition_error(index, code, message));
        }
    };
    let Some(records) = records else {
        return Pending::Ready(partition_error(
            index,
            ResponseError::InvalidRecord.code(),
            "null records".into(),
        ));
    };
    let (max_message_bytes, codec, levels, rules) = partition.with_log(|log| {
        let config = log.config();
        (
            config.max_message_bytes.max(0) as usize,
            config.compression,
            config.compression_levels,
            RecordRules::new(
                config.compact_policy,
                !config.log_append_time,
                config.timestamp_before_max_ms,
                config.timestamp_after_max_ms,
                crate::common::now_ms(),
            ),
        )
    });
    let checked = batch::split_and_validate(&records, max_message_bytes).and_then(|batches| match codec {
        // The topic's compression.type: batches in another codec are written again.
        Some(codec) => batches
            .iter()
            .map(|batch| crate::log::recompress::to_codec(batch, codec, levels, max_message_bytes))
            .collect(),
        None => Ok(batches),
    });
    let batches = match checked {
        Ok(batches) if !batches.is_empty() => batches,
        Ok(_) => {
            return Pending::Ready(partition_error(
                index,
                error_code::INVALID_REQUEST,
                "no record batch".into(),
            ));
        }
        Err(error) => {
            let code = error.code();
            if !matches!(error, BatchError::TooLarge { .. }) {
                tracing::debug!(%error, topic, index, "rejected produce");
            }
            return Pending::Ready(partition_error(index, code, error.to_string()));
        }
    };
    // A client's transactional batch comes from a transactional producer, which is
    // idempotent: it has a producer id and a sequence.
    if batches.iter().any(|batch| {
        batch.header.is_transactional() && (batch.header.base_sequence < 0 || batch.header.producer_id < 0)
    }) {
        return Pending::Ready(partition_error(
            index,
            ResponseError::InvalidRecord.code(),
            "a transactional batch needs a producer id and a sequence".into(),
        ));
    }
    if let Some(refusal) = unverified(ctx, transactional_id, &partition, &batches).await {
        return Pending::Ready(refusal);
    }
    if let Some(refusal) = refused_records(topic, index, &batches, &rules) {
        return Pending::Ready(refusal);
    }
    let appended_bytes: usize = batches.iter().map(|batch| batch.bytes.len()).sum();
    let appended_records: i64 = batches
        .iter()
        .map(|batch| i64::from(batch.header.records_count.max(0)))
        .sum();
    let result = partition.append_unflushed(&batches, acks);
    if result.is_ok() {
        ctx.broker
            .metrics
            .produced(topic, appended_bytes as u64, appended_records as u64);
    }
    match result {
        Ok((info, flush)) if flush || acks == -1 => Pending::Appended {
            partition,
            index,
            info,
            flush,
            replicate: acks == -1,
        },
        Ok((info, _)) => Pending::Ready(appended(index, &info)),
        Err(error) => Pending::Ready(failed(topic, index, &error)),
    }
}

/// KIP-890: the first transactional batch of a producer in this partition is taken only
/// once its coordinator confirms the partition is in the producer's transaction; a
/// transactional batch without a transactional id is refused.
async fn unverified(
    ctx: &RequestContext<'_>,
    transactional_id: Option<&str>,
    partition: &Partition,
    batches: &[batch::IncomingBatch],
) -> Option<PartitionProduceResponse> {
    let index = partition.topic_partition.partition;
    let first = batches.iter().find(|batch| batch.header.is_transactional())?;
    let Some(transactional_id) = transactional_id else {
        return Some(partition_error(
            index,
            ResponseError::InvalidTxnState.code(),
            "a transactional batch without a transactional id".into(),
        ));
    };
    if !ctx.allowed(Operation::Write, ResourceType::TransactionalId, transactional_id) {
        return Some(partition_error(
            index,
            ResponseError::TransactionalIdAuthorizationFailed.code(),
            format!("not authorized to write as transactional id {transactional_id}"),
        ));
    }
    let header = first.header;
    if partition.in_transaction(header.producer_id) {
        return None;
    }
    match ctx
        .broker
        .verify_txn_partition(
            transactional_id,
            header.producer_id,
            header.producer_epoch,
            &partition.topic_partition,
        )
        .await
    {
        Ok(()) => None,
        Err(code) => Some(partition_error(
            index,
            code,
            format!(
                "the transaction coordinator did not confirm {} in the transaction",
                partition.topic_partition
            ),
        )),
    }
}

/// KIP-467: records a compacted topic or the timestamp window refuses, each named in
/// `record_errors` (the client fails those and may resend the rest of the batch).
fn refused_records(
    topic: &str,
    index: i32,
    batches: &[batch::IncomingBatch],
    rules: &RecordRules,
) -> Option<PartitionProduceResponse> {
    let name = format!("{topic}-{index}");
    let refusal = batches
        .iter()
        .find_map(|batch| record_check::check(&batch.bytes, &batch.header, rules, &name))?;
    let errors = refusal
        .records
        .iter()
        .map(|error| {
            kafka_protocol::messages::produce_response::BatchIndexAndErrorMessage::default()
                .with_batch_index(error.index as i32)
                .with_batch_index_error_message(Some(StrBytes::from_string(error.message.clone())))
        })
        .collect();
    tracing::debug!(
        topic,
        index,
        records = refusal.records.len(),
        code = refusal.code,
        "refused records"
    );
    Some(partition_error(index, refusal.code, refusal.message).with_record_errors(errors))
}

/// A partition's answer: at once, or (acks=all) once every in-sync replica has the
/// batch, or the error that ended the wait.
async fn finish(topic: &str, pending: Pending, deadline: tokio::time::Instant) -> PartitionProduceResponse {
    match pending {
        Pending::Ready(response) => response,
        Pending::Appended {
            partition,
            index,
            info,
            flush,
            replicate,
        } => {
            // The flush (a group commit shared with whatever else was appended
            // meanwhile) and replication run at once; both must finish before the ack.
            let end = info.last_offset + 1;
            let flushed = async {
                if flush {
                    partition.flush_to(end).await
                } else {
                    Ok(())
                }
            };
            let replicated = async {
                if replicate {
                    partition.wait_replicated(end, deadline).await
                } else {
                    Ok(())
                }
            };
            match tokio::join!(flushed, replicated) {
                (Ok(()), Ok(())) => appended(index, &info),
                (Err(error), _) | (_, Err(error)) => failed(topic, index, &error),
            }
        }
    }
}

/// Appends now, in request order; the answer comes when every partition's part is
/// ready. With acks=all that waits for replication, and the connection goes on reading
/// (and appending) the next requests meanwhile: answers still leave in request order.
pub async fn handle(ctx: &RequestContext<'_>, request: ProduceRequest, correlation_id: i32) -> Outcome {
    let acks = request.acks;
    let transactional_id: Option<String> = request.transactional_id.as_ref().map(|id| id.to_string());
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_millis(request.timeout_ms.max(0) as u64);
    let by_id = ctx.version >= 13;
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic_data in request.topic_data {
        let topic = lookup_topic_name(ctx.broker, &topic_data.name, topic_data.topic_id, by_id);
        let refuse = |code: i16, message: String| -> Vec<Pending> {
            topic_data
                .partition_data
                .iter()
                .map(|data| Pending::Ready(partition_error(data.index, code, message.clone())))
                .collect()
        };
        let (name, partitions) = match (&topic, acks) {
            (_, acks) if !matches!(acks, -1..=1) => (
                String::new(),
                refuse(
                    ResponseError::InvalidRequiredAcks.code(),
                    format!("acks must be -1, 0 or 1, got {acks}"),
                ),
            ),
            (Ok(name), _) if crate::broker::Broker::is_internal_topic(name) => (
                name.clone(),
                refuse(
                    ResponseError::InvalidTopicException.code(),
                    format!("cannot append to internal topic {name}"),
                ),
            ),
            (Err(code), _) => (String::new(), refuse(*code, "unknown topic".into())),
            (Ok(name), _) => {
                let appends = topic_data.partition_data.into_iter().map(|data| {
                    produce_partition(
                        ctx,
                        name,
                        data.index,
                        data.records,
                        acks,
                        transactional_id.as_deref(),
                    )
                });
                (name.clone(), futures::future::join_all(appends).await)
            }
        };
        topics.push((topic_data.name, topic_data.topic_id, name, partitions));
    }
    if acks == 0 {
        // No answer to hold back, but the flush policy still applies to what was written.
        for (_, _, _, partitions) in topics {
            for pending in partitions {
                if let Pending::Appended {
                    partition,
                    info,
                    flush: true,
                    ..
                } = pending
                {
                    tokio::spawn(async move {
                        if let Err(error) = partition.flush_to(info.last_offset + 1).await {
                            tracing::error!(topic_partition = %partition.topic_partition, %error, "flush failed");
                        }
                    });
                }
            }
        }
        return Outcome::NoResponse;
    }
    let waits = topics.iter().any(|(_, _, _, partitions)| {
        partitions
            .iter()
            .any(|pending| matches!(pending, Pending::Appended { .. }))
    });
    let version = ctx.version;
    let broker = ctx.broker.clone();
    let listener = ctx.listener.to_string();
    let respond = async move {
        // An acks=all answer waits here for replication (the produce purgatory).
        let _waiting = broker.metrics.waiting(crate::metrics::WaitKind::Produce);
        let mut responses = Vec::with_capacity(topics.len());
        let mut endpoints = std::collections::BTreeMap::new();
        for (topic_name, topic_id, name, partitions) in topics {
            let mut answers = Vec::with_capacity(partitions.len());
            for pending in partitions {
                let mut answer = finish(&name, pending, deadline).await;
                // KIP-951 (v10+): name the partition's current leader with the error.
                if version >= 10
                    && super::is_leader_error(answer.error_code)
                    && let Some((leader, epoch, endpoint)) =
                        super::current_leader(&broker.image(), &name, answer.index, &listener)
                {
                    answer.current_leader = LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(leader))
                        .with_leader_epoch(epoch);
                    endpoints.insert(leader, endpoint);
                }
                answers.push(answer);
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(topic_name)
                    .with_topic_id(topic_id)
                    .with_partition_responses(answers),
            );
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
        let response = ProduceResponse::default()
            .with_responses(responses)
            .with_node_endpoints(node_endpoints);
        broker.metrics.response_errors("Produce", |emit| {
            super::error_counts::ErrorCodes::error_codes(&response, emit)
        });
        super::respond(ApiKey::Produce, version, correlation_id, &response)
    };
    if waits {
        Outcome::Deferred(Box::pin(respond))
    } else {
        respond.await
    }
}
