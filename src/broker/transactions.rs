//! The transaction coordinator's IO: `__transaction_state` (created on first use,
//! compacted, replicated like `__consumer_offsets`), loading a state-log partition when
//! this broker comes to lead it (finishing what was being committed or aborted),
//! writing each transition before it takes effect, writing markers through partition
//! leaders (this broker's own partitions directly, others with WriteTxnMarkers), and
//! the timers: open transactions past their timeout are aborted, idle ids expire.

use super::Broker;
use crate::cluster::image::Endpoint;
use crate::common::now_ms;
use crate::log::TopicPartition;
use crate::log::control::ControlMarker;
use crate::replication::partition::AppendError;
use crate::txn::TRANSACTION_STATE_TOPIC;
use crate::txn::log_format;
use crate::txn::state::{self, TxnError, TxnMetadata, TxnState};
use kafka_protocol::ResponseError;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
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

impl Broker {
    /// The partition count of `__transaction_state`, creating it on first use.
    pub async fn txn_topic_partitions(&self) -> Result<i32, i16> {
        if let Some(topic) = self.topic(TRANSACTION_STATE_TOPIC) {
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
        self.internal_topic_partitions(
            TRANSACTION_STATE_TOPIC,
            settings.state_log_num_partitions,
            settings.state_log_replication_factor,
            configs,
        )
        .await
    }

    /// Runs a coordinator decision for `transactional_id` (see `TxnCoordinator::begin`);
    /// while another transition of the id is being written or its markers are in
    /// flight, waits for it (up to `CONCURRENT_WAIT`) rather than sending the client
    /// into its retry backoff at once.
    pub async fn txn_decide<T>(
        &self,
        transactional_id: &str,
        decide: impl Fn(Option<&TxnMetadata>) -> Result<T, TxnError>,
        to_write: impl Fn(&T) -> bool,
    ) -> Result<T, TxnError> {
        let deadline = tokio::time::Instant::now() + CONCURRENT_WAIT;
        loop {
            let finished = self.transactions.finished();
            tokio::pin!(finished);
            finished.as_mut().enable();
            match self.transactions.begin(transactional_id, &decide, &to_write) {
                Err(TxnError::ConcurrentTransactions) if tokio::time::Instant::now() < deadline => {
                    let _ = tokio::time::timeout_at(deadline, finished).await;
                }
                decided => return decided,
            }
        }
    }

    /// The state-log partition of `transactional_id` (Kafka's hash of the id).
    pub async fn txn_partition_for(&self, transactional_id: &str) -> Result<i32, i16> {
        let n_partitions = self.txn_topic_partitions().await?;
        Ok(crate::group::offsets::partition_for(
            transactional_id,
            n_partitions,
        ))
    }

    /// The coordinator of `transactional_id`: the leader of its state-log partition,
    /// with its endpoint on `listener`; None while that partition has no live leader.
    pub async fn txn_coordinator(
        &self,
        transactional_id: &str,
        listener: &str,
    ) -> Result<Option<(i32, Endpoint)>, i16> {
        let index = self.txn_partition_for(transactional_id).await?;
        Ok(self.live_leader(TRANSACTION_STATE_TOPIC, index, listener))
    }

    /// Ok((state-log partition, coordinator epoch)) when this broker coordinates
    /// `transactional_id` and has loaded it; else the Kafka code to answer.
    pub async fn check_txn_coordinator(&self, transactional_id: &str) -> Result<(i32, i32), i16> {
        let index = self.txn_partition_for(transactional_id).await?;
        if let Some(epoch) = self.transactions.loaded_epoch(index) {
            return Ok((index, epoch));
        }
        if self.transactions.is_led(index) {
            return Err(ResponseError::CoordinatorLoadInProgress.code());
        }
        match self
            .txn_coordinator(transactional_id, &self.config.inter_broker_listener)
            .await?
        {
            None => Err(ResponseError::CoordinatorNotAvailable.code()),
            Some((leader, _)) if leader == self.config.node_id => {
                Err(ResponseError::CoordinatorLoadInProgress.code())
            }
            Some(_) => Err(ResponseError::NotCoordinator.code()),
        }
    }

    /// Writes `metadata` (or, for a Dead one, a tombstone) to its state-log partition
    /// and waits until the ISR has it. NOT_COORDINATOR when this broker no longer leads
    /// the partition.
    pub async fn write_txn_state(&self, partition_index: i32, metadata: &TxnMetadata) -> Result<(), i16> {
        let Some(partition) = self
            .replicas
            .partition(&TopicPartition::new(TRANSACTION_STATE_TOPIC, partition_index))
        else {
            return Err(ResponseError::NotCoordinator.code());
        };
        let value = (metadata.state != TxnState::Dead).then(|| log_format::encode_value(metadata));
        let batch = crate::log::internal_batch::encode(
            &[(log_format::encode_key(&metadata.transactional_id), value)],
            now_ms(),
            None,
        );
        let batches = crate::log::batch::split_and_validate(&batch, usize::MAX)
            .map_err(|_| ResponseError::UnknownServerError.code())?;
        let deadline = tokio::time::Instant::now() + STATE_WRITE_TIMEOUT;
        let appended = match partition.append(&batches, -1).await {
            Ok(info) => partition.wait_replicated(info.last_offset + 1, deadline).await,
            Err(error) => Err(error),
        };
        match appended {
            Ok(()) => Ok(()),
            Err(AppendError::NotLeader) => Err(ResponseError::NotCoordinator.code()),
            Err(error) => {
                tracing::warn!(%error, "writing to {TRANSACTION_STATE_TOPIC} failed");
                Err(error.code())
            }
        }
    }

    /// Takes a transition decided with `txn_decide`: writes `next`, then installs it (or,
    /// if the write failed, only clears the id's pending mark).
    pub async fn apply_txn_transition(&self, partition_index: i32, next: &TxnMetadata) -> Result<(), i16> {
        let written = self.write_txn_state(partition_index, next).await;
        self.transactions
            .finish(partition_index, next.clone(), written.is_ok());
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
    ) -> i16 {
        let Some(partition) = self.replicas.partition(topic_partition) else {
            return match self.topic(&topic_partition.topic) {
                Some(_) => crate::common::error_code::NOT_LEADER_OR_FOLLOWER,
                None => crate::common::error_code::UNKNOWN_TOPIC_OR_PARTITION,
            };
        };
        let deadline = tokio::time::Instant::now() + timeout;
        match partition
            .write_marker(producer_id, producer_epoch, marker, deadline)
            .await
        {
            Ok(()) => {
                if topic_partition.topic == crate::group::coordinator::OFFSETS_TOPIC {
                    self.groups.complete_txn(producer_id, marker.commit, |group| {
                        self.offsets_partition_of(group) == Some(topic_partition.partition)
                    });
                }
                crate::common::error_code::NONE
            }
            Err(error) => error.code(),
        }
    }

    /// The `__consumer_offsets` partition of `group_id`, if the topic exists.
    fn offsets_partition_of(&self, group_id: &str) -> Option<i32> {
        let n = self
            .topic(crate::group::coordinator::OFFSETS_TOPIC)?
            .n_partitions();
        Some(crate::group::offsets::partition_for(group_id, n))
    }

    /// Writes the markers of a decided transaction to every partition in it, then its
    /// completion; retried until done or until this broker stops coordinating it.
    pub async fn complete_transaction(self: Arc<Self>, partition_index: i32, prepared: TxnMetadata) {
        let commit = prepared.state == TxnState::PrepareCommit;
        let mut remaining: Vec<(String, i32)> = prepared.partitions.iter().cloned().collect();
        loop {
            let Some(coordinator_epoch) = self.transactions.loaded_epoch(partition_index) else {
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
            match self.write_txn_state(partition_index, &done).await {
                Ok(()) => {
                    self.transactions.finish(partition_index, done, true);
                    return;
                }
                Err(code) if code == ResponseError::NotCoordinator.code() => return,
                Err(_) => tokio::time::sleep(MARKER_RETRY_BACKOFF).await,
            }
        }
    }

    /// One round of markers; returns the partitions still to do.
    async fn send_markers(
        self: &Arc<Self>,
        prepared: &TxnMetadata,
        marker: ControlMarker,
        partitions: Vec<(String, i32)>,
    ) -> Vec<(String, i32)> {
        let image = self.image();
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
                    } else if code != crate::common::error_code::NONE {
                        tracing::warn!(
                            topic,
                            index,
                            code,
                            "a transaction marker was refused; not retried"
                        );
                    }
                }
                failed
            } else {
                super::txn_markers::send_remote(self, leader, prepared, marker, partitions).await
            };
            remaining.extend(failed);
        }
        remaining
    }

    /// Loads the state-log partitions this broker has come to lead and forgets those
    /// it no longer leads (called after every metadata change, like groups).
    pub(super) async fn follow_txn_leadership(self: &Arc<Self>) {
        let Some(topic) = self.topic(TRANSACTION_STATE_TOPIC) else {
            return;
        };
        let led: Vec<(i32, i32)> = (0..topic.n_partitions())
            .filter_map(|index| {
                let partition = self
                    .replicas
                    .partition(&TopicPartition::new(TRANSACTION_STATE_TOPIC, index))?;
                partition
                    .is_leader()
                    .then(|| (index, partition.state().leader_epoch))
            })
            .collect();
        for index in self.transactions.led_partitions() {
            let still = led.iter().any(|(led_index, epoch)| {
                *led_index == index
                    && self
                        .transactions
                        .loaded_epoch(index)
                        .is_none_or(|loaded| loaded == *epoch)
            });
            if !still {
                let n_ids = self.transactions.unload(index);
                tracing::info!(
                    partition = index,
                    n_ids,
                    "no longer coordinating transactions of this partition"
                );
            }
        }
        for (index, epoch) in led {
            if self.transactions.is_led(index) {
                continue;
            }
            self.transactions.start_loading(index);
            let found = match super::txn_markers::load_state_partition(self, index) {
                Ok(found) => found,
                Err(error) => {
                    tracing::error!(partition = index, %error, "cannot load transactions");
                    self.transactions.unload(index);
                    continue;
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
            self.transactions.finish_loading(index, epoch, found);
            for prepared in unfinished {
                let prepared = if prepared.state == TxnState::PrepareEpochFence {
                    TxnMetadata {
                        state: TxnState::PrepareAbort,
                        ..prepared
                    }
                } else {
                    prepared
                };
                tokio::spawn(self.clone().complete_transaction(index, prepared));
            }
        }
    }

    /// KIP-890: before a partition takes the first transactional batch of a producer
    /// that has no open transaction in it, the transaction's coordinator must confirm
    /// that the partition was added to the producer's ongoing transaction (here, or with
    /// AddPartitionsToTxn v4 `verify_only` to the coordinator's broker). Otherwise a
    /// late or stray batch would open a transaction that nothing ever ends.
    pub async fn verify_txn_partition(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic_partition: &TopicPartition,
    ) -> Result<(), i16> {
        let wanted = (topic_partition.topic.clone(), topic_partition.partition);
        match self.check_txn_coordinator(transactional_id).await {
            Ok(_) => {
                let Some(found) = self.transactions.get(transactional_id) else {
                    return Err(ResponseError::InvalidProducerIdMapping.code());
                };
                let metadata = found.metadata;
                if metadata.producer_id != producer_id {
                    Err(ResponseError::InvalidProducerIdMapping.code())
                } else if metadata.producer_epoch != producer_epoch {
                    Err(ResponseError::InvalidProducerEpoch.code())
                } else if metadata.state != TxnState::Ongoing || !metadata.partitions.contains(&wanted) {
                    Err(ResponseError::InvalidTxnState.code())
                } else {
                    Ok(())
                }
            }
            Err(code) if code == ResponseError::NotCoordinator.code() => {
                super::txn_markers::verify_remote(self, transactional_id, producer_id, producer_epoch, wanted)
                    .await
            }
            // No coordinator to ask right now: the producer retries.
            Err(_) => Err(ResponseError::NotEnoughReplicas.code()),
        }
    }

    /// One pass of the timers: aborts open transactions past their timeout (at a
    /// bumped epoch, fencing their producer) and removes idle transactional ids.
    pub async fn maintain_transactions(self: &Arc<Self>) {
        let now = now_ms();
        for description in self.transactions.all() {
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
            if !self
                .transactions
                .try_mark_pending(&metadata.transactional_id, &metadata)
            {
                continue;
            }
            let written = self.apply_txn_transition(partition, &next).await.is_ok();
            if written && next.state == TxnState::PrepareAbort {
                tokio::spawn(self.clone().complete_transaction(partition, next));
            }
        }
    }
}

/// Whether a marker write should be tried again (leadership moving, replicas lagging,
/// the partition not yet here).
pub(super) fn marker_retriable(code: i16) -> bool {
    code == ResponseError::NotLeaderOrFollower.code()
        || code == ResponseError::NotEnoughReplicas.code()
        || code == ResponseError::NotEnoughReplicasAfterAppend.code()
        || code == ResponseError::RequestTimedOut.code()
        || code == ResponseError::KafkaStorageError.code()
        || code == ResponseError::UnknownServerError.code()
}
