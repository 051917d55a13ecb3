//! The one task that writes `__consumer_offsets`: appends in queue order, updates the
//! coordinator's offset cache after each successful append, and compacts a partition by
//! snapshot-and-truncate (roll, rewrite the live state, delete the older segments).

use super::coordinator::{OFFSETS_TOPIC, WriteJob};
use super::offsets::{self, OffsetsRecord};
use crate::api::error_code;
use crate::broker::Broker;
use crate::log::TopicPartition;
use crate::log::batch::split_and_validate;
use crate::replication::partition::now_ms;
use std::sync::Weak;
use tokio::sync::mpsc::UnboundedReceiver;

pub async fn run(broker: Weak<Broker>, mut jobs: UnboundedReceiver<WriteJob>) {
    while let Some(job) = jobs.recv().await {
        let Some(broker) = broker.upgrade() else { break };
        match job {
            WriteJob::Append {
                group_id,
                records,
                done,
            } => {
                let code = match broker.offsets_topic_partitions().await {
                    Ok(n_partitions) => {
                        append(&broker, offsets::partition_for(&group_id, n_partitions), &records).await
                    }
                    Err(code) => code,
                };
                if code == error_code::NONE {
                    broker.groups.apply(&records, false, now_ms());
                }
                if let Some(done) = done {
                    let _ = done.send(code);
                }
            }
            WriteJob::Snapshot { partition } => {
                if let Err(error) = snapshot(&broker, partition).await {
                    tracing::error!(partition, %error, "compacting __consumer_offsets failed");
                }
            }
        }
    }
}

async fn append(broker: &Broker, partition_index: i32, records: &[OffsetsRecord]) -> i16 {
    let Some(partition) = broker.partition(&TopicPartition::new(OFFSETS_TOPIC, partition_index)) else {
        return kafka_protocol::ResponseError::CoordinatorNotAvailable.code();
    };
    let batch = offsets::encode_batch(records, now_ms());
    let batches = match split_and_validate(&batch, usize::MAX) {
        Ok(batches) if !batches.is_empty() => batches,
        _ => {
            tracing::error!("could not encode a __consumer_offsets batch");
            return kafka_protocol::ResponseError::UnknownServerError.code();
        }
    };
    // Like Kafka's coordinator: acks=all, answered once every in-sync replica has it
    // (within offsets.commit.timeout.ms).
    let deadline = tokio::time::Instant::now() + OFFSETS_COMMIT_TIMEOUT;
    let appended = match partition.append(&batches, -1).await {
        Ok(info) => partition.wait_replicated(info.last_offset + 1, deadline).await,
        Err(error) => Err(error),
    };
    match appended {
        Ok(()) => error_code::NONE,
        Err(crate::replication::partition::AppendError::NotLeader) => {
            kafka_protocol::ResponseError::NotCoordinator.code()
        }
        Err(error) => {
            tracing::warn!(%error, "appending to __consumer_offsets failed");
            error_code::append_error(&error)
        }
    }
}

/// Kafka's `offsets.commit.timeout.ms` default.
const OFFSETS_COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn snapshot(broker: &Broker, partition_index: i32) -> Result<(), crate::log::LogError> {
    let Ok(n_partitions) = broker.offsets_topic_partitions().await else {
        return Ok(());
    };
    let Some(partition) = broker.partition(&TopicPartition::new(OFFSETS_TOPIC, partition_index)) else {
        return Ok(());
    };
    // The in-memory groups restate the partition only while this broker leads it and
    // has loaded it; a request made before leadership moved must not act on the empty
    // state left behind (that deleted every committed offset of the partition).
    let epoch = partition.state().leader_epoch;
    if !broker.coordinates_loaded(partition_index) {
        return Ok(());
    }
    // Only this task writes the topic, so nothing lands between the roll and the rewrite.
    let records = broker.groups.live_records(partition_index, n_partitions);
    let start = partition.with_log(|log| {
        log.roll(now_ms())?;
        Ok::<_, crate::log::LogError>(log.log_end_offset())
    })?;
    if !records.is_empty() && append(broker, partition_index, &records).await != error_code::NONE {
        return Ok(());
    }
    // The history goes only if the state it was restated from is still this broker's
    // own, in the same leadership, with the restatement replicated.
    if !broker.coordinates_loaded(partition_index) || partition.state().leader_epoch != epoch {
        return Ok(());
    }
    let removed = partition.with_log(|log| log.delete_segments_below(start))?;
    tracing::info!(
        partition = partition_index,
        n_records = records.len(),
        removed,
        "compacted __consumer_offsets"
    );
    Ok(())
}

/// Replays one `__consumer_offsets` partition into the coordinator (when this broker
/// becomes its leader).
pub fn load_partition(broker: &Broker, index: i32) -> Result<usize, crate::log::LogError> {
    let mut n_records = 0;
    let now = now_ms();
    {
        let Some(partition) = broker.partition(&TopicPartition::new(OFFSETS_TOPIC, index)) else {
            return Ok(0);
        };
        let mut offset = partition.with_log(|log| log.log_start_offset());
        loop {
            let slice = partition.with_log(|log| log.read(offset, log.log_end_offset(), 1 << 20, true))?;
            let Some(slice) = slice else { break };
            let bytes = bytes::Bytes::from(slice.read_to_vec().map_err(|source| {
                crate::log::LogError::io(std::path::Path::new(OFFSETS_TOPIC), "load", source)
            })?);
            let batches = split_and_validate(&bytes, usize::MAX).unwrap_or_default();
            let Some(last) = batches.last() else { break };
            offset = last.header.last_offset() + 1;
            let records = offsets::decode_batches(bytes);
            n_records += records.len();
            broker.groups.apply(&records, true, now);
        }
    }
    Ok(n_records)
}
