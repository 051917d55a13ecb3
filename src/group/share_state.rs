//! The share coordinator on the broker that hosts it (Kafka's KIP-932 share
//! coordinator): each share-partition's state lives on the leader of its
//! `__share_group_state` partition (chosen by `group:topic_id:partition`), which
//! appends every change acks=all before answering, and replays the partition when it
//! comes to lead it. The coordinator reaches the broker through [`ShareStateLog`].

use super::log_writer::append_batch;
use super::offsets::partition_for;
use super::share::coordinator::ShareCoordinator;
use super::share::manager::ShareKey;
use super::share::snapshot::{ShareSnapshot, ShareStateRecord, StateWrite, WriteRefusal};
use crate::common::{ErrorCode, now_ms};
use crate::replication::Partition;
use kafka_protocol::ResponseError;
use std::sync::Arc;

pub const SHARE_STATE_TOPIC: &str = "__share_group_state";

/// What the share coordinator needs of the broker that hosts it.
pub trait ShareStateLog: Send + Sync + 'static {
    /// `__share_group_state`'s partition count, creating the topic on first use.
    fn share_state_partitions(&self) -> impl std::future::Future<Output = Result<i32, ErrorCode>> + Send;
    /// Its partition count as the metadata knows it now; None before it exists.
    fn known_share_state_partitions(&self) -> Option<i32>;
    /// This broker's replica of one of its partitions.
    fn share_state_partition(&self, index: i32) -> Option<Arc<Partition>>;
    fn share_coordinator(&self) -> &ShareCoordinator;
}

/// The `__share_group_state` partition that holds `key`'s state.
pub fn state_partition_for(key: &ShareKey, n_partitions: i32) -> i32 {
    partition_for(&ShareStateRecord::coordinator_key(key), n_partitions)
}

/// The `__share_group_state` partition of `key` when this broker coordinates it; else
/// COORDINATOR_LOAD_IN_PROGRESS while it loads, NOT_COORDINATOR when it is not led here.
pub async fn check_coordinator(host: &impl ShareStateLog, key: &ShareKey) -> Result<i32, ErrorCode> {
    let n_partitions = host.share_state_partitions().await?;
    let index = state_partition_for(key, n_partitions);
    match host.share_state_partition(index) {
        Some(partition) if partition.is_leader() => {
            if host.share_coordinator().led.is_loaded(index) {
                Ok(index)
            } else {
                Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)
            }
        }
        _ => Err(ErrorCode::NOT_COORDINATOR),
    }
}

/// ReadShareGroupState: the share-partition's state, None when it has none.
pub async fn read(host: &impl ShareStateLog, key: &ShareKey) -> Result<Option<ShareSnapshot>, ErrorCode> {
    check_coordinator(host, key).await?;
    Ok(host.share_coordinator().read(key))
}

/// Appends `record` and applies it once every in-sync replica has it.
async fn append(host: &impl ShareStateLog, index: i32, record: ShareStateRecord) -> ErrorCode {
    let Some(partition) = host.share_state_partition(index) else {
        return ErrorCode::NOT_COORDINATOR;
    };
    let batch = crate::log::internal_batch::encode(&[record.encode(now_ms())], now_ms(), None);
    let code = append_batch(&partition, &batch, SHARE_STATE_TOPIC).await;
    if code.is_none() {
        host.share_coordinator().apply(record);
    }
    code
}

/// WriteShareGroupState: merges `write` into the stored state, durably.
pub async fn write(host: &impl ShareStateLog, key: &ShareKey, write: &StateWrite) -> ErrorCode {
    let index = match check_coordinator(host, key).await {
        Ok(index) => index,
        Err(code) => return code,
    };
    let lock = host.share_coordinator().write_lock(index);
    let _writing = lock.lock().await;
    let stored = host.share_coordinator().read(key).unwrap_or_default();
    match stored.merge(write) {
        Ok(snapshot) => {
            let record = ShareStateRecord {
                key: key.clone(),
                snapshot: Some(snapshot),
            };
            append(host, index, record).await
        }
        Err(WriteRefusal::FencedLeaderEpoch) => ErrorCode::FENCED_LEADER_EPOCH,
        Err(WriteRefusal::FencedStateEpoch) => ErrorCode::of(ResponseError::FencedStateEpoch),
    }
}

/// InitializeShareGroupState: a fresh state at `start_offset`, unless the stored one
/// has this state epoch or a newer one (FENCED_STATE_EPOCH).
pub async fn initialize(
    host: &impl ShareStateLog,
    key: &ShareKey,
    state_epoch: i32,
    start_offset: i64,
) -> ErrorCode {
    let index = match check_coordinator(host, key).await {
        Ok(index) => index,
        Err(code) => return code,
    };
    let lock = host.share_coordinator().write_lock(index);
    let _writing = lock.lock().await;
    let stored = host.share_coordinator().read(key);
    if stored
        .as_ref()
        .is_some_and(|stored| stored.state_epoch >= state_epoch)
    {
        return ErrorCode::of(ResponseError::FencedStateEpoch);
    }
    let snapshot = ShareSnapshot {
        snapshot_epoch: stored.map_or(0, |stored| stored.snapshot_epoch + 1),
        state_epoch,
        leader_epoch: -1,
        start_offset,
        batches: Vec::new(),
    };
    let record = ShareStateRecord {
        key: key.clone(),
        snapshot: Some(snapshot),
    };
    append(host, index, record).await
}

/// DeleteShareGroupState: a tombstone for the share-partition.
pub async fn delete(host: &impl ShareStateLog, key: &ShareKey) -> ErrorCode {
    let index = match check_coordinator(host, key).await {
        Ok(index) => index,
        Err(code) => return code,
    };
    let lock = host.share_coordinator().write_lock(index);
    let _writing = lock.lock().await;
    if host.share_coordinator().read(key).is_none() {
        return ErrorCode::NONE;
    }
    let record = ShareStateRecord {
        key: key.clone(),
        snapshot: None,
    };
    append(host, index, record).await
}

/// Replays one `__share_group_state` partition into the table.
fn load_partition(host: &impl ShareStateLog, index: i32) -> Result<usize, crate::log::LogError> {
    let Some(partition) = host.share_state_partition(index) else {
        return Ok(0);
    };
    let mut n_records = 0;
    partition.replay(|_, batches| {
        for batch in batches {
            if batch.header.is_control() {
                continue;
            }
            let mut buf = batch.bytes.clone();
            let Ok(sets) = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf) else {
                tracing::error!(partition = index, "undecodable batch in __share_group_state");
                continue;
            };
            for record in sets.into_iter().flat_map(|set| set.records) {
                let Some(key) = record.key else { continue };
                match ShareStateRecord::decode(key, record.value) {
                    Ok(record) => {
                        n_records += 1;
                        host.share_coordinator().apply(record);
                    }
                    Err(error) => tracing::warn!(%error, "skipping a __share_group_state record"),
                }
            }
        }
    })?;
    Ok(n_records)
}

/// Loads the states of every `__share_group_state` partition this broker has come to
/// lead, and forgets those of partitions it no longer leads.
pub fn follow_leadership(host: &impl ShareStateLog) {
    let Some(n_partitions) = host.known_share_state_partitions() else {
        return;
    };
    let led: Vec<i32> = (0..n_partitions)
        .filter(|index| {
            host.share_state_partition(*index)
                .is_some_and(|partition| partition.is_leader())
        })
        .collect();
    let coordinator = host.share_coordinator();
    let (lost, gained) = coordinator.led.set_led(&led);
    for index in lost.iter().chain(&gained) {
        coordinator.unload(|key| state_partition_for(key, n_partitions) == *index);
    }
    for index in gained {
        match load_partition(host, index) {
            Ok(n_records) => tracing::debug!(partition = index, n_records, "loaded share-partition states"),
            Err(error) => tracing::error!(partition = index, %error, "cannot load share-partition states"),
        }
        coordinator.led.mark_loaded(index);
    }
}
