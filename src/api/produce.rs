//! Produce (key 0): the replica manager validates each partition's batches (the log
//! validator: length, CRC-32C, `max.message.bytes`, keys, timestamps), then appends
//! them as sent. acks=1 is answered after the leader's append; acks=all (-1) after every
//! in-sync replica has the batch (the high watermark covers it), or REQUEST_TIMED_OUT
//! at the request's timeout. When the flush policy asks for an fsync (`flush.messages=1`)
//! the answer also waits for it, but the append does not: the connection reads and
//! appends the next requests meanwhile, and one group commit covers them all.
//! acks=0 gets no response.

use super::{Outcome, RequestContext, lookup_topic_name};
use crate::common::ErrorCode;
use crate::log::partition_log::AppendInfo;
use crate::replication::manager::{Appended, Refused, TxnProducer};
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

fn partition_error(index: i32, code: i16, message: String) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(Some(StrBytes::from_string(message)))
}

/// A refusal as answered, with each refused record named (KIP-467).
fn refused(index: i32, refusal: Refused) -> PartitionProduceResponse {
    let errors: Vec<BatchIndexAndErrorMessage> = refusal
        .record_errors
        .iter()
        .map(|error| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(error.index as i32)
                .with_batch_index_error_message(Some(StrBytes::from_string(error.message.clone())))
        })
        .collect();
    partition_error(index, refusal.code.code(), refusal.message).with_record_errors(errors)
}

/// A partition's part of the answer: ready now, or once flushed and replicated.
enum Pending {
    Ready(PartitionProduceResponse),
    Appended { index: i32, appended: Appended },
}

fn appended(index: i32, info: &AppendInfo) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_base_offset(info.base_offset)
        .with_log_append_time_ms(info.log_append_time_ms)
        .with_log_start_offset(info.log_start_offset)
}

/// Authorizes and appends one partition's records.
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
    let verify = |producer| verify_transaction(ctx, transactional_id, topic, index, producer);
    match ctx
        .broker
        .replicas
        .append_records(topic, index, records, acks, verify)
        .await
    {
        Ok(done) if done.must_wait() => Pending::Appended {
            index,
            appended: done,
        },
        Ok(done) => Pending::Ready(appended(index, &done.info)),
        Err(refusal) => Pending::Ready(refused(index, refusal)),
    }
}

/// KIP-890: the first transactional batch of a producer in this partition is taken only
/// once its coordinator confirms the partition is in the producer's transaction; a
/// transactional batch without a transactional id is refused.
async fn verify_transaction(
    ctx: &RequestContext<'_>,
    transactional_id: Option<&str>,
    topic: &str,
    index: i32,
    producer: TxnProducer,
) -> Result<(), Refused> {
    let Some(transactional_id) = transactional_id else {
        return Err(Refused::new(
            ErrorCode::INVALID_TXN_STATE,
            "a transactional batch without a transactional id",
        ));
    };
    if !ctx.allowed(Operation::Write, ResourceType::TransactionalId, transactional_id) {
        return Err(Refused::new(
            ResponseError::TransactionalIdAuthorizationFailed.into(),
            format!("not authorized to write as transactional id {transactional_id}"),
        ));
    }
    if producer.in_transaction {
        return Ok(());
    }
    let topic_partition = crate::log::TopicPartition::new(topic, index);
    ctx.broker
        .transactions
        .verify_partition(
            transactional_id,
            producer.producer_id,
            producer.producer_epoch,
            &topic_partition,
        )
        .await
        .map_err(|code| {
            Refused::new(
                code,
                format!("the transaction coordinator did not confirm {topic_partition} in the transaction"),
            )
        })
}

/// A partition's answer: at once, or once the acknowledgement's wait is over.
async fn finish(pending: Pending, deadline: tokio::time::Instant) -> PartitionProduceResponse {
    match pending {
        Pending::Ready(response) => response,
        Pending::Appended {
            index,
            appended: done,
        } => match done.complete(deadline).await {
            Ok(info) => appended(index, &info),
            Err(refusal) => refused(index, refusal),
        },
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
    // producer_byte_rate: the request's record bytes, appended whatever the quota says.
    let produced: usize = request
        .topic_data
        .iter()
        .flat_map(|topic| &topic.partition_data)
        .map(|data| data.records.as_ref().map_or(0, |records| records.len()))
        .sum();
    let throttle_ms = ctx.record_quota(crate::broker::quotas::QuotaKind::Produce, produced as f64);
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
            (Err(code), _) => (String::new(), refuse(code.code(), "unknown topic".into())),
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
                if let Pending::Appended { appended, .. } = pending {
                    appended.flush_in_background();
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
                let mut answer = finish(pending, deadline).await;
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
            .with_throttle_time_ms(throttle_ms)
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
