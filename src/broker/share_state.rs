//! The broker as the share coordinator's host (`__share_group_state`, created on first
//! use), and as the persister of the share-partitions it leads (Kafka's
//! `DefaultStatePersister`): a share-partition is loaded from its share coordinator
//! before it serves a fetch, and its state is written there before an acknowledgement
//! is answered. The coordinator is called in process when this broker is it, else over
//! the inter-broker listener (ReadShareGroupState, WriteShareGroupState).

use super::Broker;
use crate::client::KafkaConnection;
use crate::common::ErrorCode;
use crate::group::overrides::{GroupOverrides, ShareOffsetReset};
use crate::group::share::coordinator::ShareCoordinator;
use crate::group::share::manager::ShareKey;
use crate::group::share::partition::SharePartition;
use crate::group::share::snapshot::{ShareSnapshot, StateBatch, StateWrite};
use crate::group::share_state::{self, SHARE_STATE_TOPIC, ShareStateLog, state_partition_for};
use crate::log::TopicPartition;
use crate::replication::Partition;
use kafka_protocol::messages::{
    DeleteShareGroupStateRequest, InitializeShareGroupStateRequest, ReadShareGroupStateRequest,
    WriteShareGroupStateRequest, delete_share_group_state_request, initialize_share_group_state_request,
    read_share_group_state_request, write_share_group_state_request,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a state write keeps trying while the share coordinator moves.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

impl ShareStateLog for Broker {
    async fn share_state_partitions(&self) -> Result<i32, ErrorCode> {
        if let Some(topic) = self.topic(SHARE_STATE_TOPIC) {
            return Ok(topic.n_partitions());
        }
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("retention.ms".to_string(), "-1".to_string()),
            ("retention.bytes".to_string(), "-1".to_string()),
            (
                "min.insync.replicas".to_string(),
                self.config.share_state_topic_min_isr.to_string(),
            ),
            // An acknowledgement is answered only once its state is fsynced.
            ("flush.messages".to_string(), "1".to_string()),
        ]);
        self.internal_topic_partitions(
            SHARE_STATE_TOPIC,
            self.config.share_state_topic_num_partitions,
            self.config.share_state_topic_replication_factor,
            configs,
        )
        .await
    }

    fn known_share_state_partitions(&self) -> Option<i32> {
        self.topic(SHARE_STATE_TOPIC).map(|topic| topic.n_partitions())
    }

    fn share_state_partition(&self, index: i32) -> Option<Arc<Partition>> {
        self.replicas.partition_of(SHARE_STATE_TOPIC, index)
    }

    fn share_coordinator(&self) -> &ShareCoordinator {
        &self.groups.share_states
    }
}

/// Whether a failed call to the share coordinator is worth trying again.
fn retriable(code: ErrorCode) -> bool {
    [
        ErrorCode::NOT_COORDINATOR,
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
        ErrorCode::COORDINATOR_NOT_AVAILABLE,
        ErrorCode::NOT_ENOUGH_REPLICAS,
        ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ErrorCode::REQUEST_TIMED_OUT,
        ErrorCode::NOT_LEADER_OR_FOLLOWER,
    ]
    .contains(&code)
}

/// A call to another broker's share coordinator that failed on the way.
fn unreachable(error: crate::client::ConnectionError) -> ErrorCode {
    tracing::debug!(%error, "a share coordinator call failed");
    ErrorCode::COORDINATOR_NOT_AVAILABLE
}

fn as_result(code: ErrorCode) -> Result<(), ErrorCode> {
    if code.is_none() { Ok(()) } else { Err(code) }
}

/// The first partition's error code of a share coordinator's answer.
fn first_code<P>(mut partitions: impl Iterator<Item = P>, code: impl Fn(&P) -> i16) -> ErrorCode {
    partitions
        .next()
        .map_or(ErrorCode::UNKNOWN_SERVER_ERROR, |partition| {
            ErrorCode::from_code(code(&partition))
        })
}

fn group_id(key: &ShareKey) -> StrBytes {
    StrBytes::from_string(key.0.clone())
}

impl Broker {
    /// The broker that coordinates `key`'s state: None while it has no live leader.
    async fn share_coordinator_of(&self, key: &ShareKey) -> Result<Option<i32>, ErrorCode> {
        let n_partitions = self.share_state_partitions().await?;
        let index = state_partition_for(key, n_partitions);
        Ok(self
            .image()
            .live_leader(SHARE_STATE_TOPIC, index, &self.config.inter_broker_listener)
            .map(|(leader, _)| leader))
    }

    /// A connection to broker `node_id`'s inter-broker listener.
    async fn share_state_connection(&self, node_id: i32) -> Result<KafkaConnection, ErrorCode> {
        let image = self.image();
        let endpoint = image
            .brokers
            .get(&node_id)
            .filter(|broker| !broker.fenced)
            .and_then(|broker| broker.endpoint(&self.config.inter_broker_listener))
            .ok_or(ErrorCode::COORDINATOR_NOT_AVAILABLE)?;
        self.replicas
            .connect_to_broker(endpoint, "share-state")
            .await
            .ok_or(ErrorCode::COORDINATOR_NOT_AVAILABLE)
    }

    /// Where `key`'s share coordinator is: here (None), or a connection to it.
    async fn route(&self, key: &ShareKey) -> Result<Option<KafkaConnection>, ErrorCode> {
        let coordinator = self
            .share_coordinator_of(key)
            .await?
            .ok_or(ErrorCode::COORDINATOR_NOT_AVAILABLE)?;
        if coordinator == self.config.node_id {
            return Ok(None);
        }
        self.share_state_connection(coordinator).await.map(Some)
    }

    /// One ReadShareGroupState of `key`, wherever its coordinator is.
    async fn read_share_state_once(&self, key: &ShareKey) -> Result<Option<ShareSnapshot>, ErrorCode> {
        let Some(mut connection) = self.route(key).await? else {
            return share_state::read(self, key).await;
        };
        let request = ReadShareGroupStateRequest::default()
            .with_group_id(group_id(key))
            .with_topics(vec![
                read_share_group_state_request::ReadStateData::default()
                    .with_topic_id(key.1)
                    .with_partitions(vec![
                        read_share_group_state_request::PartitionData::default()
                            .with_partition(key.2)
                            .with_leader_epoch(-1),
                    ]),
            ]);
        let response = connection.call(&request, 0).await.map_err(unreachable)?;
        let result = response
            .results
            .into_iter()
            .flat_map(|topic| topic.partitions)
            .next()
            .ok_or(ErrorCode::UNKNOWN_SERVER_ERROR)?;
        let code = ErrorCode::from_code(result.error_code);
        if code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION {
            return Ok(None);
        }
        if !code.is_none() {
            return Err(code);
        }
        Ok(Some(ShareSnapshot {
            snapshot_epoch: 0,
            state_epoch: result.state_epoch,
            leader_epoch: -1,
            start_offset: result.start_offset,
            batches: result
                .state_batches
                .iter()
                .map(|batch| StateBatch {
                    first_offset: batch.first_offset,
                    last_offset: batch.last_offset,
                    delivery_state: batch.delivery_state,
                    delivery_count: batch.delivery_count,
                })
                .collect(),
        }))
    }

    /// One WriteShareGroupState of `key`, wherever its coordinator is.
    async fn write_share_state_once(&self, key: &ShareKey, write: &StateWrite) -> ErrorCode {
        let mut connection = match self.route(key).await {
            Ok(Some(connection)) => connection,
            Ok(None) => return share_state::write(self, key, write).await,
            Err(code) => return code,
        };
        let batches = write
            .batches
            .iter()
            .map(|batch| {
                write_share_group_state_request::StateBatch::default()
                    .with_first_offset(batch.first_offset)
                    .with_last_offset(batch.last_offset)
                    .with_delivery_state(batch.delivery_state)
                    .with_delivery_count(batch.delivery_count)
            })
            .collect();
        let request = WriteShareGroupStateRequest::default()
            .with_group_id(group_id(key))
            .with_topics(vec![
                write_share_group_state_request::WriteStateData::default()
                    .with_topic_id(key.1)
                    .with_partitions(vec![
                        write_share_group_state_request::PartitionData::default()
                            .with_partition(key.2)
                            .with_state_epoch(write.state_epoch)
                            .with_leader_epoch(write.leader_epoch)
                            .with_start_offset(write.start_offset)
                            .with_state_batches(batches),
                    ]),
            ]);
        match connection.call(&request, 0).await {
            Ok(response) => first_code(
                response.results.into_iter().flat_map(|topic| topic.partitions),
                |p| p.error_code,
            ),
            Err(error) => unreachable(error),
        }
    }

    /// One InitializeShareGroupState of `key`, wherever its coordinator is.
    async fn initialize_share_state_once(
        &self,
        key: &ShareKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> ErrorCode {
        let mut connection = match self.route(key).await {
            Ok(Some(connection)) => connection,
            Ok(None) => return share_state::initialize(self, key, state_epoch, start_offset).await,
            Err(code) => return code,
        };
        let request = InitializeShareGroupStateRequest::default()
            .with_group_id(group_id(key))
            .with_topics(vec![
                initialize_share_group_state_request::InitializeStateData::default()
                    .with_topic_id(key.1)
                    .with_partitions(vec![
                        initialize_share_group_state_request::PartitionData::default()
                            .with_partition(key.2)
                            .with_state_epoch(state_epoch)
                            .with_start_offset(start_offset),
                    ]),
            ]);
        match connection.call(&request, 0).await {
            Ok(response) => first_code(
                response.results.into_iter().flat_map(|topic| topic.partitions),
                |p| p.error_code,
            ),
            Err(error) => unreachable(error),
        }
    }

    /// One DeleteShareGroupState of `key`, wherever its coordinator is.
    async fn delete_share_state_once(&self, key: &ShareKey) -> ErrorCode {
        let mut connection = match self.route(key).await {
            Ok(Some(connection)) => connection,
            Ok(None) => return share_state::delete(self, key).await,
            Err(code) => return code,
        };
        let request = DeleteShareGroupStateRequest::default()
            .with_group_id(group_id(key))
            .with_topics(vec![
                delete_share_group_state_request::DeleteStateData::default()
                    .with_topic_id(key.1)
                    .with_partitions(vec![
                        delete_share_group_state_request::PartitionData::default().with_partition(key.2),
                    ]),
            ]);
        match connection.call(&request, 0).await {
            Ok(response) => first_code(
                response.results.into_iter().flat_map(|topic| topic.partitions),
                |p| p.error_code,
            ),
            Err(error) => unreachable(error),
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the write timeout passes.
    async fn retrying<T, F, Fut>(attempt: F) -> Result<T, ErrorCode>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, ErrorCode>>,
    {
        let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
        loop {
            match attempt().await {
                Err(code) if retriable(code) && tokio::time::Instant::now() + RETRY_BACKOFF < deadline => {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// The share-partition's persisted start offset and the leader epoch of its last
    /// writer (DescribeShareGroupOffsets); None when it has no state.
    pub async fn share_start_offset(&self, key: &ShareKey) -> Result<Option<(i64, i32)>, ErrorCode> {
        let snapshot = Self::retrying(|| self.read_share_state_once(key)).await?;
        Ok(snapshot.map(|snapshot| (snapshot.start_offset, snapshot.leader_epoch)))
    }

    /// AlterShareGroupOffsets for one share-partition: its state starts over at
    /// `start_offset` under the next state epoch; the leader loads it again.
    pub async fn reset_share_partition(&self, key: &ShareKey, start_offset: i64) -> ErrorCode {
        let outcome = Self::retrying(|| async {
            let state_epoch = self
                .read_share_state_once(key)
                .await?
                .map_or(0, |snapshot| snapshot.state_epoch);
            as_result(
                self.initialize_share_state_once(key, state_epoch + 1, start_offset)
                    .await,
            )
        })
        .await;
        self.groups.shares.forget(key);
        outcome.err().unwrap_or_default()
    }

    /// DeleteShareGroupOffsets and DeleteGroups for one share-partition.
    pub async fn delete_share_partition(&self, key: &ShareKey) -> ErrorCode {
        let outcome = Self::retrying(|| async { as_result(self.delete_share_state_once(key).await) }).await;
        self.groups.shares.forget(key);
        outcome.err().unwrap_or_default()
    }

    /// The leader epoch of the share-partition's data partition, when led here.
    fn led_epoch(&self, key: &ShareKey) -> Option<(Arc<Partition>, i32)> {
        let topic = self.image().topic_by_id(key.1)?.name.clone();
        let partition = self
            .replicas
            .partition(&TopicPartition::new(&topic, key.2))
            .filter(|partition| partition.is_leader())?;
        let epoch = partition.with_log(|log| log.leader_epoch());
        Some((partition, epoch))
    }

    /// Makes sure the share-partition `key` (led here) is loaded: from its persisted
    /// state, or new where the group's `share.auto.offset.reset` says (the log end by
    /// default, else the log start) with that state written first. Err while its share coordinator cannot be reached.
    pub async fn load_share_partition(&self, key: &ShareKey) -> Result<(), ErrorCode> {
        let shares = &self.groups.shares;
        if shares.is_loaded(key) {
            return Ok(());
        }
        let lock = shares.persist_lock(key);
        let _loading = lock.lock().await;
        if shares.is_loaded(key) {
            return Ok(());
        }
        let (partition, leader_epoch) = self.led_epoch(key).ok_or(ErrorCode::NOT_LEADER_OR_FOLLOWER)?;
        match self.read_share_state_once(key).await? {
            Some(snapshot) => shares.install(key, SharePartition::restore(&snapshot)),
            None => {
                let overrides = GroupOverrides::parse(self.image().group_configs.get(&key.0));
                let start = partition.with_log(|log| match overrides.share_auto_offset_reset {
                    ShareOffsetReset::Latest => log.high_watermark(),
                    ShareOffsetReset::Earliest => log.log_start_offset(),
                });
                let fresh = SharePartition::new(start);
                let write = StateWrite {
                    state_epoch: 0,
                    leader_epoch,
                    start_offset: start,
                    batches: Vec::new(),
                };
                let code = self.write_share_state_once(key, &write).await;
                if !code.is_none() {
                    return Err(code);
                }
                shares.install(key, fresh);
            }
        }
        tracing::debug!(group = key.0, topic_id = %key.1, partition = key.2, "share-partition loaded");
        Ok(())
    }

    /// Writes the share-partition's whole state to its share coordinator and waits for
    /// it to be durable: an acknowledgement is answered only after this.
    pub async fn persist_share_partition(&self, key: &ShareKey) -> ErrorCode {
        let shares = &self.groups.shares;
        let lock = shares.persist_lock(key);
        let _writing = lock.lock().await;
        let Some((_, leader_epoch)) = self.led_epoch(key) else {
            return ErrorCode::NOT_LEADER_OR_FOLLOWER;
        };
        let Some(write) = shares.state_write(key, leader_epoch) else {
            return ErrorCode::NONE;
        };
        // Tried again while the coordinator moves.
        let code = Self::retrying(|| async { as_result(self.write_share_state_once(key, &write).await) })
            .await
            .err()
            .unwrap_or_default();
        if !code.is_none() {
            tracing::warn!(
                group = key.0,
                partition = key.2,
                code = code.name(),
                "share-partition state not written"
            );
            if retriable(code) {
                shares.mark_dirty(key);
            } else if code == ErrorCode::of(kafka_protocol::ResponseError::FencedStateEpoch) {
                // Its offsets were altered: the next fetch loads the new state.
                shares.forget(key);
            }
        }
        code
    }

    /// Writes the states changed by lock expiries and departures.
    pub async fn persist_dirty_share_partitions(&self) {
        for key in self.groups.shares.take_dirty() {
            if self.led_epoch(&key).is_some() {
                self.persist_share_partition(&key).await;
            }
        }
    }
}

/// How often released records' states are written in the background.
pub const DIRTY_WRITE_INTERVAL: Duration = Duration::from_millis(200);
