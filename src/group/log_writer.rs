//! The one task that writes `__consumer_offsets`: appends in queue order and updates the
//! coordinator's offset cache after each successful append. The log cleaner compacts
//! the topic like any compacted topic.

use super::coordinator::WriteJob;
pub use super::host::OffsetsLog;
use super::offsets::{self, OffsetsRecord};
use crate::common::ErrorCode;
use crate::common::now_ms;
use crate::log::batch::split_and_validate;
use std::sync::Weak;
use tokio::sync::mpsc::UnboundedReceiver;

pub async fn run<B: OffsetsLog>(broker: Weak<B>, mut jobs: UnboundedReceiver<WriteJob>) {
    while let Some(job) = jobs.recv().await {
        let Some(broker) = broker.upgrade() else { break };
        match job {
            WriteJob::Append {
                group_id,
                records,
                transaction,
                done,
            } => {
                let code = match broker.offsets_topic_partitions().await {
                    Ok(n_partitions) => {
                        let index = offsets::partition_for(&group_id, n_partitions);
                        append(broker.as_ref(), index, &records, transaction).await
                    }
                    Err(code) => code,
                };
                match transaction {
                    _ if !code.is_none() => {}
                    Some((producer_id, _)) => broker.groups().apply_pending(producer_id, &records, now_ms()),
                    None => broker.groups().apply(&records, false, now_ms()),
                }
                if let Some(done) = done {
                    let _ = done.send(code);
                }
            }
        }
    }
}

async fn append(
    broker: &impl OffsetsLog,
    partition_index: i32,
    records: &[OffsetsRecord],
    transaction: Option<(i64, i16)>,
) -> ErrorCode {
    let Some(partition) = broker.offsets_partition(partition_index) else {
        return ErrorCode::COORDINATOR_NOT_AVAILABLE;
    };
    let batch = offsets::encode_batch(records, now_ms(), transaction);
    append_batch(&partition, &batch, "__consumer_offsets").await
}

/// Appends one batch the coordinator encoded to its internal topic's partition.
/// Like Kafka's coordinators: acks=all, answered once every in-sync replica has it
/// (within offsets.commit.timeout.ms); NOT_COORDINATOR when the partition is no longer
/// led here.
pub(super) async fn append_batch(
    partition: &std::sync::Arc<crate::replication::Partition>,
    batch: &bytes::Bytes,
    topic: &str,
) -> ErrorCode {
    let batches = match split_and_validate(batch, usize::MAX) {
        Ok(batches) if !batches.is_empty() => batches,
        _ => {
            tracing::error!(topic, "could not encode an internal batch");
            return ErrorCode::UNKNOWN_SERVER_ERROR;
        }
    };
    let deadline = tokio::time::Instant::now() + OFFSETS_COMMIT_TIMEOUT;
    let appended = match partition.append(&batches, -1).await {
        Ok(info) => partition.wait_replicated(info.last_offset + 1, deadline).await,
        Err(error) => Err(error),
    };
    match appended {
        Ok(()) => ErrorCode::NONE,
        Err(crate::replication::partition::AppendError::NotLeader) => ErrorCode::NOT_COORDINATOR,
        Err(error) => {
            tracing::warn!(%error, topic, "appending to an internal topic failed");
            ErrorCode::from_code(error.code())
        }
    }
}

/// Kafka's `offsets.commit.timeout.ms` default.
const OFFSETS_COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Replays one `__consumer_offsets` partition into the coordinator (when this broker
/// becomes its leader).
pub fn load_partition(broker: &impl OffsetsLog, index: i32) -> Result<usize, crate::log::LogError> {
    let mut n_records = 0;
    let now = now_ms();
    let Some(partition) = broker.offsets_partition(index) else {
        return Ok(0);
    };
    partition.replay(|_, batches| {
        let n_partitions = broker.known_offsets_partitions().unwrap_or(1);
        for batch in batches {
            let header = batch.header;
            if header.is_control() {
                // A transaction's outcome: its pending offsets count or go.
                if let Some(marker) = crate::log::control::marker(&header, &batch.bytes) {
                    broker
                        .groups()
                        .complete_txn(header.producer_id, marker.commit, |group| {
                            offsets::partition_for(group, n_partitions) == index
                        });
                }
                continue;
            }
            let records = offsets::decode_batches(batch.bytes);
            n_records += records.len();
            if header.is_transactional() {
                broker.groups().apply_pending(header.producer_id, &records, now);
            } else {
                broker.groups().apply(&records, true, now);
            }
        }
    })?;
    Ok(n_records)
}
