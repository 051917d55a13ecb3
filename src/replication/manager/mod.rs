//! The replica manager (Kafka's `ReplicaManager`): every partition replica this broker
//! hosts, and what is done to them all.
//!
//! It owns the partitions map and the replicas that could not be opened, the log
//! manager under them, one replica fetcher per leader this broker follows, the ISR
//! changes its led partitions propose (`isr.rs`), and the waiting requests: an acks=all
//! append waits for replication in [`ReplicaManager::append_records`] (`append.rs`), a
//! long-polling fetch for data in [`ReplicaManager::fetch`] (`fetch.rs`). It follows
//! the metadata image (`publish.rs`): replicas are created, updated and removed as the
//! image gives them to this broker. API handlers decode, authorize, call it and encode;
//! they do not touch logs.

mod append;
mod fetch;
mod isr;
mod publish;

pub use append::{AppendOutcome, Appended, Refused, TxnProducer};
pub use fetch::{FetchSpec, FetchTarget, PartitionRead, check_leader_epoch};
pub use isr::{check_isr, send_isr_changes};

use crate::cluster::image::{MetadataImage, TopicImage};
use crate::common::ErrorCode;
use crate::common::now_ms;
use crate::config::BrokerConfig;
use crate::controller::client::ControllerClient;
use crate::log::manager::{FailedLog, LogManager};
use crate::log::{LogError, TopicPartition};
use crate::metrics::Metrics;
use crate::replication::Partition;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

pub struct ReplicaManager {
    config: Arc<BrokerConfig>,
    image: watch::Receiver<Arc<MetadataImage>>,
    logs: LogManager,
    /// Keyed so that a request's (name, index) finds its partition without allocating.
    partitions: RwLock<indexmap::IndexMap<TopicPartition, Arc<Partition>>>,
    /// Partition logs that could not be opened at start: offline here
    /// (KAFKA_STORAGE_ERROR), their directories kept as found, never created afresh.
    offline_logs: RwLock<HashMap<TopicPartition, FailedLog>>,
    /// ISR changes led partitions propose, waiting for the controller.
    isr_changes: Arc<isr::IsrChanges>,
    controller: Arc<ControllerClient>,
    /// One replica fetcher per leader this broker follows, by leader id.
    fetchers: parking_lot::Mutex<HashMap<i32, crate::replication::fetcher::ReplicaFetcher>>,
    /// How replica fetchers secure their connections; None on PLAINTEXT.
    inter_broker_security: Option<Arc<crate::security::ClientSecurity>>,
    metrics: Arc<Metrics>,
    /// Replication throttles (KIP-73): what this broker fetches for throttled replicas
    /// it follows, and sends for throttled replicas it leads.
    pub follower_throttle: Arc<crate::replication::throttle::ReplicationThrottle>,
    pub leader_throttle: Arc<crate::replication::throttle::ReplicationThrottle>,
}

/// What a replica manager starts with.
pub struct Parts {
    pub config: Arc<BrokerConfig>,
    pub image: watch::Receiver<Arc<MetadataImage>>,
    pub logs: LogManager,
    pub loaded: Vec<crate::log::manager::LoadedLog>,
    pub failed: Vec<FailedLog>,
    pub controller: Arc<ControllerClient>,
    pub inter_broker_security: Option<Arc<crate::security::ClientSecurity>>,
    pub metrics: Arc<Metrics>,
}

/// A replication throttle measured as `replication.quota.window.*` say.
fn throttle(config: &BrokerConfig) -> crate::replication::throttle::ReplicationThrottle {
    let setting = |name: &str, default: i64| -> i64 {
        config
            .value(name)
            .and_then(|(value, _)| value.trim().parse().ok())
            .unwrap_or(default)
    };
    crate::replication::throttle::ReplicationThrottle::new(
        setting("replication.quota.window.num", 11) as usize,
        setting("replication.quota.window.size.seconds", 1) * 1000,
    )
}

/// The broker config with the image's dynamic broker configs (KIP-226) over it: the
/// cluster default, then this broker's own.
pub fn effective_config(config: &Arc<BrokerConfig>, image: &MetadataImage) -> Arc<BrokerConfig> {
    let cluster_default = image.broker_configs.get("");
    let own = image.broker_configs.get(&config.node_id.to_string());
    if cluster_default.is_none() && own.is_none() {
        return config.clone();
    }
    Arc::new(config.with_dynamic(cluster_default, own))
}

/// A topic's log config. `__consumer_offsets` and `__transaction_state` are always
/// compacted, also when created without `cleanup.policy=compact`.
pub fn topic_log_config(config: &BrokerConfig, topic: &TopicImage) -> crate::log::LogConfig {
    let mut log = config.log_config(&topic.configs);
    if crate::common::topics::is_internal_topic(&topic.name) {
        log.compact_policy = true;
        log.delete_policy = false;
    }
    log
}

impl ReplicaManager {
    /// The replica manager over the logs found at start, as `image` places them.
    pub fn new(parts: Parts) -> Self {
        let Parts {
            config,
            image,
            logs,
            loaded,
            failed,
            controller,
            inter_broker_security,
            metrics,
        } = parts;
        let follower_throttle = Arc::new(throttle(&config));
        let leader_throttle = Arc::new(throttle(&config));
        let current = image.borrow().clone();
        let mut partitions = indexmap::IndexMap::new();
        for loaded_log in loaded {
            let topic_partition = loaded_log.log.topic_partition.clone();
            let Some(topic) = current.topic(&topic_partition.topic) else {
                continue;
            };
            let Some(registration) = topic.partition(topic_partition.partition) else {
                continue;
            };
            let partition = Partition::new(
                loaded_log.log,
                topic.topic_id,
                config.node_id,
                registration.into(),
                config.replica_lag_time_max_ms,
            );
            partition.set_strict_min_isr(config.eligible_leader_replicas_version >= 1);
            partitions.insert(topic_partition, Arc::new(partition));
        }
        ReplicaManager {
            config,
            image,
            logs,
            partitions: RwLock::new(partitions),
            offline_logs: RwLock::new(
                failed
                    .into_iter()
                    .map(|failed| (failed.topic_partition.clone(), failed))
                    .collect(),
            ),
            isr_changes: Arc::default(),
            controller,
            fetchers: parking_lot::Mutex::new(HashMap::new()),
            inter_broker_security,
            metrics,
            follower_throttle,
            leader_throttle,
        }
    }

    /// A connection to another broker's inter-broker listener at `endpoint`, bound and
    /// secured as replica fetchers' are (transaction markers and verification, share
    /// state calls); None when its address does not resolve or it cannot be reached.
    pub async fn connect_to_broker(
        &self,
        endpoint: &crate::cluster::image::Endpoint,
        purpose: &str,
    ) -> Option<crate::client::KafkaConnection> {
        use std::net::ToSocketAddrs;
        let address = (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addresses| addresses.next())?;
        let client_id = format!("ferrolog-{purpose}-{}", self.config.node_id);
        crate::client::KafkaConnection::connect(
            address,
            &endpoint.host,
            self.config.listener.map(|listener| listener.ip()),
            client_id,
            self.inter_broker_security(),
        )
        .await
        .map_err(|error| tracing::debug!(%error, purpose, "cannot reach a broker; retrying"))
        .ok()
    }

    /// How this broker's inter-broker connections are secured; None on PLAINTEXT.
    pub fn inter_broker_security(&self) -> Option<&crate::security::ClientSecurity> {
        self.inter_broker_security.as_deref()
    }

    /// The metadata image as this broker has applied it.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    pub fn logs(&self) -> &LogManager {
        &self.logs
    }

    pub fn len(&self) -> usize {
        self.partitions.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn partition(&self, topic_partition: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().get(topic_partition).cloned()
    }

    /// [`ReplicaManager::partition`] by name and index, without allocating a key.
    pub fn partition_of(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .get(&crate::log::TopicPartitionRef { topic, partition })
            .cloned()
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// Why this broker's replica of a partition is offline, if it could not be opened.
    pub fn offline_log(&self, topic_partition: &TopicPartition) -> Option<FailedLog> {
        self.offline_logs.read().get(topic_partition).cloned()
    }

    /// Every replica here that could not be opened.
    pub fn offline_logs(&self) -> Vec<FailedLog> {
        self.offline_logs.read().values().cloned().collect()
    }

    /// This broker's replica of a partition, leader or follower (consumers of v11+ may
    /// read from followers, KIP-392); else the Kafka code to answer.
    pub fn local_replica(&self, topic: &str, index: i32) -> Result<Arc<Partition>, ErrorCode> {
        match self.partition_of(topic, index) {
            Some(partition) => Ok(partition),
            None if self.offline_log(&TopicPartition::new(topic, index)).is_some() => {
                Err(ErrorCode::KAFKA_STORAGE_ERROR)
            }
            None => match self
                .image
                .borrow()
                .topic(topic)
                .and_then(|image| image.partition(index))
            {
                Some(_) => Err(ErrorCode::NOT_LEADER_OR_FOLLOWER),
                None => Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
            },
        }
    }

    /// The partition this broker leads; else the Kafka code to answer.
    pub fn led_partition(&self, topic: &str, index: i32) -> Result<Arc<Partition>, ErrorCode> {
        match self.local_replica(topic, index) {
            Ok(partition) if !partition.is_leader() => Err(ErrorCode::NOT_LEADER_OR_FOLLOWER),
            other => other,
        }
    }

    /// One retention pass over every partition.
    pub fn apply_retention(&self) {
        let now = now_ms();
        for partition in self.all_partitions() {
            if let Err(error) = partition.with_log(|log| log.apply_retention(now)) {
                tracing::error!(topic_partition = %partition.topic_partition, %error, "retention failed");
                partition.with_log(|log| log.take_offline());
            }
        }
    }

    /// Flushes the partitions whose `flush.ms`/`flush.messages` are due.
    pub async fn flush_due(&self) {
        // Checked without a future per partition: most have nothing to flush.
        let now = now_ms();
        let due: Vec<(Arc<Partition>, i64)> = self
            .partitions
            .read()
            .values()
            .filter_map(|partition| Some((partition.clone(), partition.flush_due_to(now)?)))
            .collect();
        for (partition, offset) in due {
            if let Err(error) = partition.flush_to(offset).await {
                tracing::error!(topic_partition = %partition.topic_partition, %error, "flush failed");
            }
        }
    }

    /// Drops the state of producers idle longer than `expiration_ms` (`producer.id.expiration.ms`).
    pub fn expire_producers(&self, expiration_ms: i64) {
        for partition in self.all_partitions() {
            partition.with_log(|log| log.expire_producers(now_ms(), expiration_ms));
        }
    }

    /// Records every log's recovery point and log start offset.
    pub fn write_checkpoints(&self) {
        let points: Vec<_> = self
            .all_partitions()
            .iter()
            .map(|partition| {
                partition.with_log(|log| {
                    (
                        log.dir().to_path_buf(),
                        log.topic_partition.clone(),
                        log.recovery_point(),
                        log.log_start_offset(),
                    )
                })
            })
            .collect();
        if let Err(error) = self.logs.write_checkpoints(&points) {
            tracing::error!(%error, "writing offset checkpoints failed");
        }
    }

    /// Flushes and closes every log, then writes the checkpoints; the first error.
    pub fn close_logs(&self) -> Result<(), LogError> {
        let mut result = Ok(());
        let partitions = self.all_partitions();
        let closed = crate::log::parallel::map(&partitions, crate::log::parallel::THREADS, |partition| {
            partition.with_log(|log| log.close())
        });
        for (partition, closed) in partitions.iter().zip(closed) {
            if let Err(error) = closed {
                tracing::error!(topic_partition = %partition.topic_partition, %error, "closing log failed");
                result = Err(error);
            }
        }
        self.write_checkpoints();
        result
    }
}
