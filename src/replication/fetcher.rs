//! Follower IO: one replica fetcher per source broker, over one connection, for every
//! partition this broker follows from that leader.
//!
//! Each round sends one Fetch (v15, with this broker's id in ReplicaState) carrying, per
//! partition, the follower's log end as fetch offset, the epoch of its last batch (for
//! the leader's divergence check) and the leader epoch it knows. The answer's batches
//! are appended byte for byte at the leader's offsets and epochs; the leader's high
//! watermark is taken; a diverging epoch cuts the log at the divergence point first
//! (KIP-101, KIP-279, KIP-595). A partition whose leader refuses it (not leader, other
//! epoch) waits until the metadata changes or a short backoff passes. The fetches run in
//! one incremental fetch session per leader (`follower_session`): after the first, a
//! request names only partitions whose fetch state changed, and an answer only
//! partitions with news.

use super::Partition;
use super::follower_session::{FollowerSession, Key};
use crate::client::KafkaConnection;
use crate::common::now_ms;
use crate::log::TopicPartition;
use crate::log::batch::split_stored;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic, ReplicaState};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long a partition waits after the leader refused it, unless the metadata
/// changes first.
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// How often a follower held back by its replication throttle looks again.
const THROTTLE_RECHECK: Duration = Duration::from_millis(100);

/// The Fetch version followers use (ReplicaState, topic ids, diverging epochs).
const FETCH_VERSION: i16 = 15;

/// A tagged field of a follower's FetchPartition (ours, not Kafka's; a broker that does
/// not know it skips it, as tagged fields allow): the follower's fsynced log end, sent
/// for partitions whose flush policy (`flush.messages=1`) promises that an
/// acknowledgement means fsynced on every ISR member. 8 bytes, big-endian.
pub const DURABLE_END_OFFSET_TAG: i32 = 0x4644;

/// The durable end a follower's fetch carries, if any.
pub fn durable_end_offset(tagged_fields: &BTreeMap<i32, bytes::Bytes>) -> Option<i64> {
    let bytes: [u8; 8] = tagged_fields
        .get(&DURABLE_END_OFFSET_TAG)?
        .as_ref()
        .try_into()
        .ok()?;
    Some(i64::from_be_bytes(bytes))
}

/// One partition a fetcher follows.
#[derive(Clone)]
pub struct FollowedPartition {
    pub partition: Arc<Partition>,
    pub topic_id: uuid::Uuid,
    /// The leader epoch this follower knows, sent so that a stale view is refused.
    pub leader_epoch: i32,
    /// Named by its topic's `follower.replication.throttled.replicas` for this broker.
    pub throttled: bool,
}

#[derive(Clone)]
pub struct FetcherConfig {
    pub node_id: i32,
    pub local_ip: Option<IpAddr>,
    /// How the inter-broker listener is secured (None: PLAINTEXT).
    pub security: Option<Arc<crate::security::ClientSecurity>>,
    pub max_wait_ms: i32,
    pub partition_max_bytes: i32,
    pub response_max_bytes: i32,
    /// `follower.replication.throttled.rate`, shared by the broker's fetchers.
    pub throttle: Arc<crate::replication::throttle::ReplicationThrottle>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The fetcher of one source broker, as the broker's publisher drives it.
pub struct ReplicaFetcher {
    pub targets: watch::Sender<BTreeMap<TopicPartition, FollowedPartition>>,
    pub endpoint: watch::Sender<Option<(String, u16)>>,
    task: tokio::task::JoinHandle<()>,
}

impl ReplicaFetcher {
    pub fn start(config: FetcherConfig, source: i32) -> Self {
        let (targets, targets_rx) = watch::channel(BTreeMap::new());
        let (endpoint, endpoint_rx) = watch::channel(None);
        let task = tokio::spawn(run(config, source, targets_rx, endpoint_rx));
        ReplicaFetcher {
            targets,
            endpoint,
            task,
        }
    }
}

impl Drop for ReplicaFetcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    config: FetcherConfig,
    source: i32,
    mut targets: watch::Receiver<BTreeMap<TopicPartition, FollowedPartition>>,
    endpoint: watch::Receiver<Option<(String, u16)>>,
) {
    let mut connection: Option<(SocketAddr, KafkaConnection)> = None;
    let mut session = FollowerSession::default();
    let mut paused: HashMap<TopicPartition, Instant> = HashMap::new();
    // Flushes of what earlier fetches appended, running while the next fetch is out.
    let mut flushes: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    loop {
        while flushes.try_join_next().is_some() {}
        if targets.has_changed().unwrap_or(false) {
            paused.clear();
        }
        let now = Instant::now();
        paused.retain(|_, until| *until > now);
        // Over the follower throttle: throttled replicas sit out until the rate falls.
        let held_back = config.throttle.exceeded(now_ms());
        let mut throttled_out = false;
        let current: Vec<(TopicPartition, FollowedPartition)> = targets
            .borrow_and_update()
            .iter()
            .filter(|(topic_partition, _)| !paused.contains_key(*topic_partition))
            .filter(|(_, followed)| {
                let out = held_back && followed.throttled;
                throttled_out |= out;
                !out
            })
            .map(|(topic_partition, followed)| (topic_partition.clone(), followed.clone()))
            .collect();
        if throttled_out {
            config
                .metrics
                .throttled("follower", THROTTLE_RECHECK.as_millis() as u64);
        }
        if current.is_empty() && throttled_out {
            tokio::time::sleep(THROTTLE_RECHECK).await;
            continue;
        }
        if current.is_empty() {
            let wake = paused.values().min().copied();
            tokio::select! {
                changed = targets.changed() => if changed.is_err() { return },
                _ = async { match wake { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } } => {}
            }
            continue;
        }
        let host = endpoint
            .borrow()
            .as_ref()
            .map(|(host, _)| host.clone())
            .unwrap_or_default();
        let Some(address) = resolve(&endpoint) else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if connection
            .as_ref()
            .is_none_or(|(connected, _)| *connected != address)
        {
            let client_id = format!("ferrolog-replica-fetcher-{}-{source}", config.node_id);
            match KafkaConnection::connect(
                address,
                &host,
                config.local_ip,
                client_id,
                config.security.as_deref(),
            )
            .await
            {
                Ok(opened) => {
                    connection = Some((address, opened));
                    session.reset();
                }
                Err(error) => {
                    tracing::debug!(source, %error, "replica fetcher cannot connect");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        let Some((_, open)) = connection.as_mut() else {
            continue;
        };
        // While fsyncs run, the leader must not hold the fetch for new data: the fetch
        // after them reports the new durable ends, and acknowledgements wait for it.
        let max_wait_ms = if flushes.is_empty() { config.max_wait_ms } else { 0 };
        let request = fetch_request(&config, &current, max_wait_ms, &mut session);
        let timeout = Duration::from_millis(config.max_wait_ms.max(0) as u64) + Duration::from_secs(10);
        let response = match tokio::time::timeout(timeout, open.call(&request, FETCH_VERSION)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                tracing::debug!(source, %error, "replica fetch failed");
                connection = None;
                session.reset();
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(_) => {
                tracing::debug!(source, "replica fetch timed out");
                connection = None;
                session.reset();
                continue;
            }
        };
        session.answered(response.error_code, response.session_id);
        if response.error_code != 0 {
            tracing::debug!(
                source,
                error_code = response.error_code,
                "replica fetch refused; opening a new session"
            );
            continue;
        }
        let by_id: HashMap<(uuid::Uuid, i32), &(TopicPartition, FollowedPartition)> = current
            .iter()
            .map(|entry| ((entry.1.topic_id, entry.0.partition), entry))
            .collect();
        let applied = apply_response(response, &by_id, &mut paused);
        config.throttle.record(applied.throttled_bytes, now_ms());
        for (topic_partition, partition) in applied.to_flush {
            flushes.spawn(async move {
                if let Err(error) = partition.flush_if_due().await {
                    tracing::error!(%topic_partition, %error, "follower flush failed");
                }
            });
        }
        if !applied.took_data {
            // Nothing new to fetch: report the durable ends once the fsyncs return.
            while flushes.join_next().await.is_some() {}
        }
    }
}

fn resolve(endpoint: &watch::Receiver<Option<(String, u16)>>) -> Option<SocketAddr> {
    let (host, port) = endpoint.borrow().clone()?;
    (host.as_str(), port).to_socket_addrs().ok()?.next()
}

fn fetch_request(
    config: &FetcherConfig,
    current: &[(TopicPartition, FollowedPartition)],
    max_wait_ms: i32,
    session: &mut FollowerSession<FetchState>,
) -> FetchRequest {
    let wanted: Vec<(Key, FetchState)> = current
        .iter()
        .map(|(topic_partition, followed)| {
            (
                (followed.topic_id, topic_partition.partition),
                FetchState {
                    current_leader_epoch: followed.leader_epoch,
                    position: followed.partition.fetch_position(),
                },
            )
        })
        .collect();
    let planned = session.request(wanted);
    let mut topics: BTreeMap<uuid::Uuid, Vec<FetchPartition>> = BTreeMap::new();
    for ((topic_id, index), state) in planned.partitions {
        let position = state.position;
        let mut partition = FetchPartition::default()
            .with_partition(index)
            .with_current_leader_epoch(state.current_leader_epoch)
            .with_fetch_offset(position.log_end_offset)
            .with_last_fetched_epoch(position.last_fetched_epoch)
            .with_log_start_offset(position.log_start_offset)
            .with_partition_max_bytes(config.partition_max_bytes);
        if let Some(durable) = position.durable_end_offset {
            partition.unknown_tagged_fields.insert(
                DURABLE_END_OFFSET_TAG,
                bytes::Bytes::copy_from_slice(&durable.to_be_bytes()),
            );
        }
        topics.entry(topic_id).or_default().push(partition);
    }
    let mut forgotten: BTreeMap<uuid::Uuid, Vec<i32>> = BTreeMap::new();
    for (topic_id, partition) in planned.forgotten {
        forgotten.entry(topic_id).or_default().push(partition);
    }
    FetchRequest::default()
        .with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(config.node_id))
                .with_replica_epoch(-1),
        )
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(config.response_max_bytes)
        .with_session_id(planned.session_id)
        .with_session_epoch(planned.epoch)
        .with_forgotten_topics_data(
            forgotten
                .into_iter()
                .map(|(topic_id, partitions)| {
                    ForgottenTopic::default()
                        .with_topic_id(topic_id)
                        .with_partitions(partitions)
                })
                .collect(),
        )
        .with_topics(
            topics
                .into_iter()
                .map(|(topic_id, partitions)| {
                    FetchTopic::default()
                        .with_topic_id(topic_id)
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

/// What the leader's session holds of one followed partition: a change of any of it
/// names the partition in the next incremental fetch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FetchState {
    current_leader_epoch: i32,
    position: super::replica::FetchPosition,
}

/// What a fetch answer did to the followed logs.
struct Applied {
    /// Partitions that took data and may be due a flush (`flush.messages`): flushed in
    /// the background, their fsyncs in parallel, while the next fetch is out.
    to_flush: Vec<(TopicPartition, Arc<Partition>)>,
    /// Whether any partition received records.
    took_data: bool,
    /// Record bytes received for throttled replicas.
    throttled_bytes: u64,
}

fn apply_response(
    response: FetchResponse,
    by_id: &HashMap<(uuid::Uuid, i32), &(TopicPartition, FollowedPartition)>,
    paused: &mut HashMap<TopicPartition, Instant>,
) -> Applied {
    let now = now_ms();
    let mut to_flush: Vec<(TopicPartition, Arc<Partition>)> = Vec::new();
    let mut took_data = false;
    let mut throttled_bytes = 0;
    for topic in response.responses {
        for data in topic.partitions {
            let Some((topic_partition, followed)) =
                by_id.get(&(topic.topic_id, data.partition_index)).copied()
            else {
                continue;
            };
            let partition = &followed.partition;
            let outcome = match ResponseError::try_from_code(data.error_code) {
                None if data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0 => {
                    let diverging = data.diverging_epoch;
                    let (own_epoch, own_end) = partition.end_offset_for_epoch(diverging.epoch);
                    let target = if own_epoch >= 0 && own_end >= 0 {
                        diverging.end_offset.min(own_end)
                    } else {
                        diverging.end_offset
                    };
                    tracing::info!(%topic_partition, epoch = diverging.epoch, target, "diverged from the leader; truncating");
                    partition.truncate_to(target.max(0), now).map(|_| false)
                }
                None => {
                    let records = data.records.unwrap_or_default();
                    took_data |= !records.is_empty();
                    if followed.throttled {
                        throttled_bytes += records.len() as u64;
                    }
                    match split_stored(&records, usize::MAX) {
                        Ok(batches) => partition.append_replicated(
                            &batches,
                            data.high_watermark,
                            data.log_start_offset,
                            now,
                        ),
                        Err(error) => {
                            tracing::warn!(%topic_partition, %error, "leader sent a bad batch");
                            paused.insert(topic_partition.clone(), Instant::now() + Duration::from_secs(1));
                            continue;
                        }
                    }
                }
                Some(ResponseError::OffsetOutOfRange) => {
                    let position = partition.fetch_position();
                    if position.log_end_offset < data.log_start_offset {
                        partition.restart_at(data.log_start_offset, now).map(|_| false)
                    } else {
                        partition
                            .truncate_to(data.high_watermark.max(0), now)
                            .map(|_| false)
                    }
                }
                Some(error) => {
                    // Most often the leader has not applied the metadata that made it leader
                    // yet (or this follower is behind on it): ask again shortly.
                    tracing::debug!(%topic_partition, ?error, "leader refused a replica fetch");
                    paused.insert(topic_partition.clone(), Instant::now() + RETRY_BACKOFF);
                    continue;
                }
            };
            match outcome {
                Ok(true) => to_flush.push((topic_partition.clone(), partition.clone())),
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(%topic_partition, %error, "follower append failed");
                    paused.insert(topic_partition.clone(), Instant::now() + Duration::from_secs(1));
                }
            }
        }
    }
    Applied {
        to_flush,
        took_data,
        throttled_bytes,
    }
}
