//! The transaction coordinator (Kafka's `TransactionCoordinator`): the runtime around
//! the pure state machine (`state.rs`) and the table of ids (`table.rs`). It owns its
//! log IO as the group coordinator does: `__transaction_state` (created on first use,
//! compacted, replicated like `__consumer_offsets`), loading a state-log partition when
//! this broker comes to lead it (finishing what was being committed or aborted),
//! writing each transition before it takes effect, writing markers through partition
//! leaders (this broker's own partitions directly, others with WriteTxnMarkers, see
//! `markers.rs`), and the timers: open transactions past their timeout are aborted, idle
//! ids expire.
//!
//! It reaches the broker that hosts it through [`TxnHost`] (creating an internal topic,
//! and the group coordinator when a marker lands on `__consumer_offsets`).

use super::log_format;
use super::state::{self, TxnError, TxnMetadata, TxnState};
use super::table::{TxnDescription, TxnTable};
use crate::cluster::image::Endpoint;
use crate::common::topics::{OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC};
use crate::common::{ErrorCode, now_ms};
use crate::config::BrokerConfig;
use crate::log::TopicPartition;
use crate::log::control::ControlMarker;
use crate::replication::ReplicaManager;
use crate::replication::partition::AppendError;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// How long a state-log write may wait for the ISR (Kafka's
/// `transaction.state.log` writes use the request timeout; 5 s like offset commits).
const STATE_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one marker write may wait for its ISR before it is retried.
const MARKER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits out a concurrent transition of its id before answering
/// CONCURRENT_TRANSACTIONS.
const CONCURRENT_WAIT: Duration = Duration::from_millis(1000);
/// Pause between rounds of marker retries.
const MARKER_RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// What the coordinator needs of the broker that hosts it (the broker implements it;
/// the transaction floor does not know the broker).
pub trait TxnHost: Send + Sync + 'static {
    /// The partition count of internal topic `name`, creating it with these settings
    /// on first use. COORDINATOR_NOT_AVAILABLE when it cannot be created now.
    fn internal_topic_partitions<'a>(
        &'a self,
        name: &'a str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> Pin<Box<dyn Future<Output = Result<i32, ErrorCode>> + Send + 'a>>;
    /// A marker was written to `__consumer_offsets` partition `index`: the producer's
    /// pending offset commits there become visible (commit) or are dropped (abort).
    fn offsets_marker_written(&self, index: i32, producer_id: i64, commit: bool);
}

pub struct TxnCoordinator {
    table: TxnTable,
    replicas: Arc<ReplicaManager>,
    config: Arc<BrokerConfig>,
    host: OnceLock<Weak<dyn TxnHost>>,
}

impl TxnCoordinator {
    pub fn new(replicas: Arc<ReplicaManager>, config: Arc<BrokerConfig>) -> Self {
        TxnCoordinator {
            table: TxnTable::default(),
            replicas,
            config,
            host: OnceLock::new(),
        }
    }

    /// Connects the coordinator to the broker that hosts it (once, at start).
    pub fn attach(&self, host: Weak<dyn TxnHost>) {
        let _ = self.host.set(host);
    }

    fn host(&self) -> Result<Arc<dyn TxnHost>, ErrorCode> {
        self.host
            .get()
            .and_then(Weak::upgrade)
            .ok_or(ErrorCode::COORDINATOR_NOT_AVAILABLE)
    }

    /// A transactional id as last written, with its state-log partition.
    pub fn get(&self, transactional_id: &str) -> Option<TxnDescription> {
        self.table.get(transactional_id)
    }

    /// Every id this broker coordinates.
    pub fn all(&self) -> Vec<TxnDescription> {
        self.table.all()
    }

    /// The partition count of `__transaction_state`, creating it on first use.
    pub async fn state_topic_partitions(&self) -> Result<i32, ErrorCode> {
        if let Some(topic) = self.replicas.image().topic(TRANSACTION_STATE_TOPIC) {
            return Ok(topic.n_partitions());
        }
        let settings = self.config.transactions;
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            (
                "min.insync.replicas".to_string(),
                settings.state_log_min_isr.to_string(),
            ),
            (
                "segment.bytes".to_string(),
                settings.state_log_segment_bytes.to_string(),
            ),
            ("unclean.leader.election.enable".to_string(), "false".to_string()),
            // A transition is acknowledged only once fsynced.
            ("flush.messages".to_string(), "1".to_string()),
        ]);
        self.host()?
            .internal_topic_partitions(
                TRANSACTION_STATE_TOPIC,
                settings.state_log_num_partitions,
                settings.state_log_replication_factor,
                configs,
            )
            .await
    }

    /// Runs a coordinator decision for `transactional_id` (see `TxnTable::begin`);
    /// while another transition of the id is being written or its markers are in
    /// flight, waits for it (up to `CONCURRENT_WAIT`) rather than sending the client
    /// into its retry backoff at once.
    pub async fn decide<T>(
        &self,
        transactional_id: &str,
        decide: impl Fn(Option<&TxnMetadata>) -> Result<T, TxnError>,
        to_write: impl Fn(&T) -> bool,
    ) -> Result<T, TxnError> {
        let deadline = tokio::time::Instant::now() + CONCURRENT_WAIT;
        loop {
            let finished = self.table.finished();
            tokio::pin!(finished);
            finished.as_mut().enable();
            match self.table.begin(transactional_id, &decide, &to_write) {
                Err(TxnError::ConcurrentTransactions) if tokio::time::Instant::now() < deadline => {
                    let _ = tokio::time::timeout_at(deadline, finished).await;
                }
                decided => return decided,
            }
        }
    }

    /// The state-log partition of `transactional_id` (Kafka's hash of the id).
    pub async fn partition_for(&self, transactional_id: &str) -> Result<i32, ErrorCode> {
        let n_partitions = self.state_topic_partitions().await?;
        Ok(crate::common::topics::partition_for(
            transactional_id,
            n_partitions,
        ))
    }

    /// The coordinator of `transactional_id`: the leader of its state-log partition,
    /// with its endpoint on `listener`; None while that partition has no live leader.
    pub async fn coordinator_of(
        &self,
        transactional_id: &str,
        listener: &str,
    ) -> Result<Option<(i32, Endpoint)>, ErrorCode> {
        let index = self.partition_for(transactional_id).await?;
        Ok(self
            .replicas
            .image()
            .live_leader(TRANSACTION_STATE_TOPIC, index, listener))
    }

    /// Ok((state-log partition, coordinator epoch)) when this broker coordinates
    /// `transactional_id` and has loaded it; else the Kafka code to answer.
    pub async fn check_coordinator(&self, transactional_id: &str) -> Result<(i32, i32), ErrorCode> {
        let index = self.partition_for(transactional_id).await?;
        if let Some(epoch) = self.table.loaded_epoch(index) {
            return Ok((index, epoch));
        }
        if self.table.is_led(index) {
            return Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
        }
        match self
            .coordinator_of(transactional_id, &self.config.inter_broker_listener)
            .await?
        {
            None => Err(ErrorCode::COORDINATOR_NOT_AVAILABLE),
            Some((leader, _)) if leader == self.config.node_id => {
                Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)
            }
            Some(_) => Err(ErrorCode::NOT_COORDINATOR),
        }
    }

    /// Writes `metadata` (or, for a Dead one, a tombstone) to its state-log partition
    /// and waits until the ISR has it. NOT_COORDINATOR when this broker no longer leads
    /// the partition.
    async fn write_state(&self, partition_index: i32, metadata: &TxnMetadata) -> Result<(), ErrorCode> {
        let Some(partition) = self
            .replicas
            .partition_of(TRANSACTION_STATE_TOPIC, partition_index)
        else {
            return Err(ErrorCode::NOT_COORDINATOR);
        };
        let value = (metadata.state != TxnState::Dead).then(|| log_format::encode_value(metadata));
        let batch = crate::log::internal_batch::encode(
            &[(log_format::encode_key(&metadata.transactional_id), value)],
            now_ms(),
            None,
        );
        let batches = crate::log::batch::split_and_validate(&batch, usize::MAX)
            .map_err(|_| ErrorCode::UNKNOWN_SERVER_ERROR)?;
        let deadline = tokio::time::Instant::now() + STATE_WRITE_TIMEOUT;
        let appended = match partition.append(&batches, -1).await {
            Ok(info) => partition.wait_replicated(info.last_offset + 1, deadline).await,
            Err(error) => Err(error),
        };
        match appended {
            Ok(()) => Ok(()),
            Err(AppendError::NotLeader) => Err(ErrorCode::NOT_COORDINATOR),
            Err(error) => {
                tracing::warn!(%error, "writing to {TRANSACTION_STATE_TOPIC} failed");
                Err(ErrorCode::from_code(error.code()))
            }
        }
    }

    /// Takes a transition decided with [`TxnCoordinator::decide`]: writes `next`, then
    /// installs it (or, if the write failed, only clears the id's pending mark).
    pub async fn apply_transition(&self, partition_index: i32, next: &TxnMetadata) -> Result<(), ErrorCode> {
        let written = self.write_state(partition_index, next).await;
        self.table.finish(partition_index, next.clone(), written.is_ok());
        written
    }

    /// Writes a transaction marker to a partition this broker leads (WriteTxnMarkers, or
    /// the coordinator's own partitions). A marker on `__consumer_offsets` also makes
    /// the producer's pending offset commits visible (commit) or drops them (abort).
    pub async fn write_local_marker(
        &self,
        topic_partition: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        marker: ControlMarker,
        timeout: Duration,
    ) -> ErrorCode {
        let Some(partition) = self.replicas.partition(topic_partition) else {
            return match self.replicas.image().topic(&topic_partition.topic) {
                Some(_) => ErrorCode::NOT_LEADER_OR_FOLLOWER,
                None => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            };
        };
        let deadline = tokio::time::Instant::now() + timeout;
        match partition
            .write_marker(producer_id, producer_epoch, marker, deadline)
            .await
        {
            Ok(()) => {
                if topic_partition.topic == OFFSETS_TOPIC
                    && let Ok(host) = self.host()
                {
                    host.offsets_marker_written(topic_partition.partition, producer_id, marker.commit);
                }
                ErrorCode::NONE
            }
            Err(error) => ErrorCode::from_code(error.code()),
        }
    }

    /// Writes the markers of a decided transaction to every partition in it, then its
    /// completion; retried until done or until this broker stops coordinating it.
    pub async fn complete(self: Arc<Self>, partition_index: i32, prepared: TxnMetadata) {
        let commit = prepared.state == TxnState::PrepareCommit;
        let mut remaining: Vec<(String, i32)> = prepared.partitions.iter().cloned().collect();
        loop {
            let Some(coordinator_epoch) = self.table.loaded_epoch(partition_index) else {
                tracing::info!(
                    transactional_id = %prepared.transactional_id,
                    "no longer coordinating; the new coordinator finishes the transaction"
                );
                return;
            };
            let marker = ControlMarker {
                commit,
                coordinator_epoch,
            };
            remaining = self.send_markers(&prepared, marker, remaining).await;
            if remaining.is_empty() {
                break;
            }
            tokio::time::sleep(MARKER_RETRY_BACKOFF).await;
        }
        let done = state::complete(&prepared, now_ms());
        loop {
            match self.write_state(partition_index, &done).await {
                Ok(()) => {
                    self.table.finish(partition_index, done, true);
                    return;
                }
                Err(ErrorCode::NOT_COORDINATOR) => return,
                Err(_) => tokio::time::sleep(MARKER_RETRY_BACKOFF).await,
            }
        }
    }

    /// One round of markers; returns the partitions still to do.
    async fn send_markers(
        &self,
        prepared: &TxnMetadata,
        marker: ControlMarker,
        partitions: Vec<(String, i32)>,
    ) -> Vec<(String, i32)> {
        let image = self.replicas.image();
        let mut by_leader: HashMap<i32, Vec<(String, i32)>> = HashMap::new();
        let mut remaining = Vec::new();
        for (topic, index) in partitions {
            match image.topic(&topic) {
                // A deleted topic needs no marker.
                None => continue,
                Some(record) => match record.partition(index) {
                    Some(partition) if partition.leader >= 0 => by_leader
                        .entry(partition.leader)
                        .or_default()
                        .push((topic, index)),
                    Some(_) => remaining.push((topic, index)),
                    None => continue,
                },
            }
        }
        for (leader, partitions) in by_leader {
            let failed = if leader == self.config.node_id {
                let mut failed = Vec::new();
                for (topic, index) in partitions {
                    let code = self
                        .write_local_marker(
                            &TopicPartition::new(&topic, index),
                            prepared.producer_id,
                            prepared.producer_epoch,
                            marker,
                            MARKER_TIMEOUT,
                        )
                        .await;
                    if marker_retriable(code) {
                        failed.push((topic, index));
                    } else if !code.is_none() {
                        tracing::warn!(topic, index, %code, "a transaction marker was refused; not retried");
                    }
                }
                failed
            } else {
                super::markers::send_remote(
                    &self.replicas,
                    &self.config,
                    leader,
                    prepared,
                    marker,
                    partitions,
                )
                .await
            };
            remaining.extend(failed);
        }
        remaining
    }

    /// Loads the state-log partitions this broker has come to lead and forgets those
    /// it no longer leads (called after every metadata change, like groups).
    pub async fn follow_leadership(self: &Arc<Self>) {
        let Some(topic) = self.replicas.image().topic(TRANSACTION_STATE_TOPIC).cloned() else {
            return;
        };
        let led: Vec<(i32, i32)> = (0..topic.n_partitions())
            .filter_map(|index| {
                let partition = self.replicas.partition_of(TRANSACTION_STATE_TOPIC, index)?;
                partition
                    .is_leader()
                    .then(|| (index, partition.state().leader_epoch))
            })
            .collect();
        for index in self.table.led_partitions() {
            let still = led.iter().any(|(led_index, epoch)| {
                *led_index == index
                    && self
                        .table
                        .loaded_epoch(index)
                        .is_none_or(|loaded| loaded == *epoch)
            });
            if !still {
                let n_ids = self.table.unload(index);
                tracing::info!(
                    partition = index,
                    n_ids,
                    "no longer coordinating transactions of this partition"
                );
            }
        }
        for (index, epoch) in led {
            if !self.table.is_led(index) {
                self.load(index, epoch);
            }
        }
    }

    /// Loads state-log partition `index`, led here at leader epoch `epoch`, and
    /// finishes the transactions it left being committed or aborted.
    fn load(self: &Arc<Self>, index: i32, epoch: i32) {
        self.table.start_loading(index);
        let found = match super::markers::load_state_partition(&self.replicas, index) {
            Ok(found) => found,
            Err(error) => {
                tracing::error!(partition = index, %error, "cannot load transactions");
                self.table.unload(index);
                return;
            }
        };
        let unfinished: Vec<TxnMetadata> = found
            .iter()
            .filter(|metadata| metadata.state.is_preparing())
            .cloned()
            .collect();
        tracing::info!(
            partition = index,
            n_ids = found.len(),
            coordinator_epoch = epoch,
            "loaded transactions"
        );
        self.table.finish_loading(index, epoch, found);
        for prepared in unfinished {
            let prepared = if prepared.state == TxnState::PrepareEpochFence {
                TxnMetadata {
                    state: TxnState::PrepareAbort,
                    ..prepared
                }
            } else {
                prepared
            };
            tokio::spawn(self.clone().complete(index, prepared));
        }
    }

    /// KIP-890: before a partition takes the first transactional batch of a producer
    /// that has no open transaction in it, the transaction's coordinator must confirm
    /// that the partition was added to the producer's ongoing transaction (here, or with
    /// AddPartitionsToTxn v4 `verify_only` to the coordinator's broker). Otherwise a
    /// late or stray batch would open a transaction that nothing ever ends.
    pub async fn verify_partition(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic_partition: &TopicPartition,
    ) -> Result<(), ErrorCode> {
        let wanted = (topic_partition.topic.clone(), topic_partition.partition);
        match self.check_coordinator(transactional_id).await {
            Ok(_) => {
                let Some(found) = self.table.get(transactional_id) else {
                    return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
                };
                let metadata = found.metadata;
                if metadata.producer_id != producer_id {
                    Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING)
                } else if metadata.producer_epoch != producer_epoch {
                    Err(ErrorCode::INVALID_PRODUCER_EPOCH)
                } else if metadata.state != TxnState::Ongoing || !metadata.partitions.contains(&wanted) {
                    Err(ErrorCode::INVALID_TXN_STATE)
                } else {
                    Ok(())
                }
            }
            Err(ErrorCode::NOT_COORDINATOR) => {
                let Some((_, endpoint)) = self
                    .coordinator_of(transactional_id, &self.config.inter_broker_listener)
                    .await?
                else {
                    return Err(ErrorCode::NOT_ENOUGH_REPLICAS);
                };
                super::markers::verify_remote(
                    &self.replicas,
                    &endpoint,
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    wanted,
                )
                .await
            }
            // No coordinator to ask right now: the producer retries.
            Err(_) => Err(ErrorCode::NOT_ENOUGH_REPLICAS),
        }
    }

    /// One pass of the timers: aborts open transactions past their timeout (at a
    /// bumped epoch, fencing their producer) and removes idle transactional ids.
    pub async fn maintain(self: &Arc<Self>) {
        let now = now_ms();
        for description in self.table.all() {
            let metadata = description.metadata;
            let partition = description.partition;
            let next = if metadata.timed_out(now) {
                tracing::info!(transactional_id = %metadata.transactional_id, "aborting a transaction past its timeout");
                state::abort_timed_out(&metadata, now)
            } else if metadata.expired(now, self.config.transactions.id_expiration_ms) {
                TxnMetadata {
                    state: TxnState::Dead,
                    ..metadata.clone()
                }
            } else {
                continue;
            };
            if !self.table.try_mark_pending(&metadata.transactional_id, &metadata) {
                continue;
            }
            let written = self.apply_transition(partition, &next).await.is_ok();
            if written && next.state == TxnState::PrepareAbort {
                tokio::spawn(self.clone().complete(partition, next));
            }
        }
    }
}

/// Whether a marker write should be tried again (leadership moving, replicas lagging,
/// the partition not yet here).
pub(super) fn marker_retriable(code: ErrorCode) -> bool {
    [
        ErrorCode::NOT_LEADER_OR_FOLLOWER,
        ErrorCode::NOT_ENOUGH_REPLICAS,
        ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ErrorCode::REQUEST_TIMED_OUT,
        ErrorCode::KAFKA_STORAGE_ERROR,
        ErrorCode::UNKNOWN_SERVER_ERROR,
    ]
    .contains(&code)
}
