//! The broker: owns the config, the cluster metadata, the log manager and every partition,
//! the group coordinator, and runs the background work (retention, time-based flushing,
//! checkpoints, group timers).

use crate::cluster::metadata::{MetadataError, MetadataStore, TopicRecord, validate_topic_name};
use crate::config::{BrokerConfig, ConfigError, topic_config_def, validate_value};
use crate::group::coordinator::{CoordinatorConfig, OFFSETS_TOPIC, WriteJob};
use crate::group::state::GroupConfig;
use crate::group::{GroupCoordinator, log_writer};
use crate::log::manager::LogManager;
use crate::log::{LogError, TopicPartition};
use crate::replication::Partition;
use crate::replication::partition::now_ms;
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Why a topic operation was refused; `api::error_code` maps each to a Kafka code.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("topic `{0}` already exists")]
    AlreadyExists(String),
    #[error("unknown topic `{0}`")]
    Unknown(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Log(#[from] LogError),
}

pub struct Broker {
    pub config: BrokerConfig,
    pub cluster_id: String,
    pub groups: GroupCoordinator,
    /// The coordinator's write queue, handed to the writer task at start.
    group_writes: parking_lot::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<WriteJob>>>,
    metadata: RwLock<MetadataStore>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    logs: LogManager,
    /// Serializes topic creation, deletion and changes.
    admin: tokio::sync::Mutex<()>,
    /// The unused part of the current block of producer ids: [next, end).
    producer_ids: parking_lot::Mutex<(i64, i64)>,
}

/// How many producer ids are reserved in the metadata at a time.
const PRODUCER_ID_BLOCK: i64 = 1000;

impl Broker {
    /// Opens the metadata and every partition log, recovering after an unclean shutdown.
    pub fn open(config: BrokerConfig) -> anyhow::Result<Arc<Self>> {
        let logs = LogManager::open(&config.log_dirs)?;
        let metadata_dir = config
            .log_dirs
            .first()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("log.dirs is empty"))?;
        let metadata = MetadataStore::open(&metadata_dir, config.node_id)?;
        let loaded = logs.load_all(
            |topic_partition| {
                metadata
                    .topic(&topic_partition.topic)
                    .filter(|topic| topic_partition.partition < topic.partitions)
                    .map(|topic| (config.log_config(&topic.configs), topic.leader_epoch))
            },
            now_ms(),
        )?;
        let mut partitions = HashMap::new();
        for loaded_log in loaded {
            let topic_partition = loaded_log.log.topic_partition.clone();
            let topic_id = metadata
                .topic(&topic_partition.topic)
                .map(|topic| topic.topic_id)
                .unwrap_or_default();
            let partition = Partition::new(loaded_log.log, topic_id, config.node_id);
            partitions.insert(topic_partition, Arc::new(partition));
        }
        // Partitions known to the metadata but missing on disk (a lost or new log dir) are
        // created empty, so every topic is whole.
        let now = now_ms();
        for topic in metadata.topics() {
            for index in 0..topic.partitions {
                let topic_partition = TopicPartition::new(topic.name.clone(), index);
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    partitions.entry(topic_partition.clone())
                {
                    tracing::warn!(%topic_partition, "partition missing on disk; creating it empty");
                    let log = logs.create_log(
                        topic_partition,
                        config.log_config(&topic.configs),
                        topic.leader_epoch,
                        now,
                    )?;
                    slot.insert(Arc::new(Partition::new(log, topic.topic_id, config.node_id)));
                }
            }
        }
        tracing::info!(
            cluster_id = %metadata.cluster_id,
            n_partitions = partitions.len(),
            "broker storage loaded"
        );
        let (groups, group_writes) = GroupCoordinator::new(CoordinatorConfig {
            group: GroupConfig {
                min_session_timeout_ms: config.group_min_session_timeout_ms,
                max_session_timeout_ms: config.group_max_session_timeout_ms,
                initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            },
            offsets_retention_ms: config.offsets_retention_ms,
            offset_metadata_max_bytes: config.offset_metadata_max_bytes,
        });
        let broker = Arc::new(Broker {
            groups,
            group_writes: parking_lot::Mutex::new(Some(group_writes)),
            cluster_id: metadata.cluster_id.clone(),
            config,
            metadata: RwLock::new(metadata),
            partitions: RwLock::new(partitions),
            logs,
            admin: tokio::sync::Mutex::new(()),
            producer_ids: parking_lot::Mutex::new((0, 0)),
        });
        let n_records = log_writer::load(&broker)?;
        if n_records > 0 {
            tracing::info!(n_records, "loaded consumer groups and offsets");
        }
        Ok(broker)
    }

    /// The partition count of `__consumer_offsets`, creating the topic on first use.
    /// The error is the Kafka code to answer (COORDINATOR_NOT_AVAILABLE).
    pub async fn offsets_topic_partitions(&self) -> Result<i32, i16> {
        if let Some(topic) = self.topic(OFFSETS_TOPIC) {
            return Ok(topic.partitions);
        }
        let configs = BTreeMap::from([
            ("retention.ms".to_string(), "-1".to_string()),
            ("retention.bytes".to_string(), "-1".to_string()),
            (
                "segment.bytes".to_string(),
                self.config.offsets_topic_segment_bytes.to_string(),
            ),
            // Committed offsets are acknowledged only once fsynced.
            ("flush.messages".to_string(), "1".to_string()),
        ]);
        match self
            .create_topic(
                OFFSETS_TOPIC,
                self.config.offsets_topic_num_partitions,
                self.config.offsets_topic_replication_factor,
                configs,
                false,
            )
            .await
        {
            Ok(topic) => Ok(topic.partitions),
            Err(TopicError::AlreadyExists(_)) => self
                .topic(OFFSETS_TOPIC)
                .map(|topic| topic.partitions)
                .ok_or(kafka_protocol::ResponseError::CoordinatorNotAvailable.code()),
            Err(error) => {
                tracing::error!(%error, "cannot create {OFFSETS_TOPIC}");
                Err(kafka_protocol::ResponseError::CoordinatorNotAvailable.code())
            }
        }
    }

    /// Whether a topic is one of the broker's own (clients may not write or delete it).
    pub fn is_internal_topic(name: &str) -> bool {
        name == OFFSETS_TOPIC
    }

    /// One pass of group maintenance: expire old offsets and compact `__consumer_offsets`
    /// partitions whose history is much longer than their live state.
    pub fn maintain_groups(&self, now_ms: i64) {
        let tombstones = self.groups.expire(now_ms);
        self.groups.write_tombstones(tombstones);
        let Some(topic) = self.topic(OFFSETS_TOPIC) else {
            return;
        };
        for index in 0..topic.partitions {
            let Some(partition) = self.partition(&TopicPartition::new(OFFSETS_TOPIC, index)) else {
                continue;
            };
            let (history, n_segments) =
                partition.with_log(|log| (log.log_end_offset() - log.log_start_offset(), log.n_segments()));
            let live = self.groups.live_records(index, topic.partitions).len() as i64;
            if history > 2 * live + 1000 || n_segments > 2 {
                self.groups.request_snapshot(index);
            }
        }
    }

    pub fn partition(&self, topic_partition: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().get(topic_partition).cloned()
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    pub fn topic(&self, name: &str) -> Option<TopicRecord> {
        self.metadata.read().topic(name).cloned()
    }

    pub fn topic_by_id(&self, topic_id: uuid::Uuid) -> Option<TopicRecord> {
        self.metadata.read().topic_by_id(topic_id).cloned()
    }

    pub fn topics(&self) -> Vec<TopicRecord> {
        self.metadata.read().topics().cloned().collect()
    }

    /// A producer id never handed out before.
    pub fn new_producer_id(&self) -> Result<i64, MetadataError> {
        let mut ids = self.producer_ids.lock();
        if ids.0 >= ids.1 {
            let start = self.metadata.write().allocate_producer_ids(PRODUCER_ID_BLOCK)?;
            *ids = (start, start + PRODUCER_ID_BLOCK);
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    /// Live brokers, for replication-factor checks.
    pub fn n_live_brokers(&self) -> usize {
        1
    }

    /// Checks topic config overrides; the error names the bad key.
    pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        for (key, value) in configs {
            let config = topic_config_def(key).ok_or_else(|| ConfigError::UnknownKey { key: key.clone() })?;
            validate_value(config, value)?;
        }
        Ok(())
    }

    /// Creates a topic (or only checks it when `validate_only`). `replication_factor`
    /// and `partitions` of -1 take the broker defaults.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicRecord, TopicError> {
        let _admin = self.admin.lock().await;
        validate_topic_name(name).map_err(TopicError::InvalidName)?;
        if self.metadata.read().topic(name).is_some() {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let partitions = if partitions == -1 {
            self.config.num_partitions
        } else {
            partitions
        };
        if partitions < 1 {
            return Err(TopicError::InvalidPartitions(format!(
                "number of partitions must be at least 1, got {partitions}"
            )));
        }
        let replication_factor = if replication_factor == -1 {
            self.config.default_replication_factor
        } else {
            replication_factor
        };
        if replication_factor < 1 || replication_factor as usize > self.n_live_brokers() {
            return Err(TopicError::InvalidReplicationFactor(format!(
                "replication factor {replication_factor} is not between 1 and the {} live broker(s)",
                self.n_live_brokers()
            )));
        }
        Self::validate_topic_configs(&configs)?;
        let topic = TopicRecord {
            name: name.to_string(),
            topic_id: uuid::Uuid::new_v4(),
            partitions,
            replication_factor,
            configs,
            leader_epoch: 0,
        };
        if validate_only {
            return Ok(topic);
        }
        self.add_partitions(&topic, 0)?;
        self.metadata.write().put_topic(topic.clone())?;
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    fn add_partitions(&self, topic: &TopicRecord, from: i32) -> Result<(), TopicError> {
        let config = self.config.log_config(&topic.configs);
        let now = now_ms();
        for index in from..topic.partitions {
            let topic_partition = TopicPartition::new(topic.name.clone(), index);
            let log =
                self.logs
                    .create_log(topic_partition.clone(), config.clone(), topic.leader_epoch, now)?;
            let partition = Partition::new(log, topic.topic_id, self.config.node_id);
            self.partitions
                .write()
                .insert(topic_partition, Arc::new(partition));
        }
        Ok(())
    }

    pub async fn delete_topic(&self, name: &str) -> Result<TopicRecord, TopicError> {
        if Self::is_internal_topic(name) {
            return Err(TopicError::InvalidName(format!(
                "internal topic {name} cannot be deleted"
            )));
        }
        let _admin = self.admin.lock().await;
        let topic = self
            .metadata
            .write()
            .remove_topic(name)?
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let removed: Vec<Arc<Partition>> = {
            let mut partitions = self.partitions.write();
            (0..topic.partitions)
                .filter_map(|index| partitions.remove(&TopicPartition::new(name, index)))
                .collect()
        };
        for partition in removed {
            let dir = partition.with_log(|log| {
                log.take_offline();
                log.dir().to_path_buf()
            });
            // Readers still holding segment files keep reading; the files go when they let go.
            if let Err(error) = std::fs::remove_dir_all(&dir) {
                tracing::error!(path = %dir.display(), %error, "could not remove deleted partition");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }

    /// Raises a topic's partition count (never lowers it).
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _admin = self.admin.lock().await;
        let mut topic = self
            .topic(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        if count <= topic.partitions {
            return Err(TopicError::InvalidPartitions(format!(
                "topic currently has {} partitions, {count} would not be an increase",
                topic.partitions
            )));
        }
        if validate_only {
            return Ok(());
        }
        let from = topic.partitions;
        topic.partitions = count;
        self.add_partitions(&topic, from)?;
        self.metadata.write().put_topic(topic)?;
        Ok(())
    }

    /// Replaces a topic's config overrides and applies them to its live logs.
    pub async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _admin = self.admin.lock().await;
        let mut topic = self
            .topic(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        Self::validate_topic_configs(&configs)?;
        if validate_only {
            return Ok(());
        }
        topic.configs = configs;
        let log_config = self.config.log_config(&topic.configs);
        self.metadata.write().put_topic(topic.clone())?;
        for index in 0..topic.partitions {
            if let Some(partition) = self.partition(&TopicPartition::new(name, index)) {
                partition.with_log(|log| log.set_config(log_config.clone()));
            }
        }
        Ok(())
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

    /// Flushes the partitions whose `flush.ms`/`flush.messages` are due, and records
    /// recovery points.
    pub async fn flush_due(&self) {
        for partition in self.all_partitions() {
            if let Err(error) = partition.flush_if_due().await {
                tracing::error!(topic_partition = %partition.topic_partition, %error, "flush failed");
            }
        }
    }

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
                    )
                })
            })
            .collect();
        if let Err(error) = self.logs.write_recovery_points(&points) {
            tracing::error!(%error, "writing recovery-point checkpoints failed");
        }
    }

    /// Starts retention and flush scheduling, the group timers and the group log writer;
    /// they stop when the broker is dropped.
    pub fn spawn_background(self: &Arc<Self>) {
        if let Some(jobs) = self.group_writes.lock().take() {
            tokio::spawn(log_writer::run(Arc::downgrade(self), jobs));
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(100));
            loop {
                ticker.tick().await;
                let Some(broker) = weak.upgrade() else { break };
                broker.groups.tick(now_ms());
            }
        });
        let weak = Arc::downgrade(self);
        let maintain_every = Duration::from_millis(self.config.offsets_retention_check_interval_ms);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(maintain_every);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(broker) = weak.upgrade() else { break };
                broker.maintain_groups(now_ms());
            }
        });
        let weak = Arc::downgrade(self);
        let retention_every = Duration::from_millis(self.config.retention_check_interval_ms);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(retention_every);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(broker) = weak.upgrade() else { break };
                let _ = tokio::task::spawn_blocking(move || broker.apply_retention()).await;
            }
        });
        let weak = Arc::downgrade(self);
        let flush_every = Duration::from_millis(self.config.flush_scheduler_interval_ms);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(flush_every);
            let mut ticks: u64 = 0;
            loop {
                ticker.tick().await;
                let Some(broker) = weak.upgrade() else { break };
                broker.flush_due().await;
                ticks += 1;
                if ticks.is_multiple_of(60) {
                    let _ = tokio::task::spawn_blocking(move || broker.write_checkpoints()).await;
                }
            }
        });
    }

    /// Clean shutdown: flush and close every log, write checkpoints, then the marker.
    pub fn shutdown(&self) -> Result<(), LogError> {
        let mut result = Ok(());
        for partition in self.all_partitions() {
            if let Err(error) = partition.with_log(|log| log.close()) {
                tracing::error!(topic_partition = %partition.topic_partition, %error, "closing log failed");
                result = Err(error);
            }
        }
        self.write_checkpoints();
        if result.is_ok() {
            self.logs.mark_clean_shutdown()?;
        }
        tracing::info!("broker shut down cleanly");
        result
    }
}
