//! Broker and topic configuration under Kafka's own names.
//!
//! A configuration is built in layers: the embedded `config/broker.yaml`, then an
//! optional `--config FILE`, then each `--set KEY=VALUE`. Every key must be one of
//! [`BROKER_CONFIGS`]; every value is checked against the key's kind and range, and
//! an error names the key. Topic configs ([`TOPIC_CONFIGS`]) take their default from
//! a broker config, as Kafka's do (`retention.ms` from `log.retention.ms`, ...).

mod defs;
pub mod dynamic;
pub mod listeners;
pub mod security;
pub mod transactions;

pub use defs::{
    BROKER_CONFIGS, ConfigDef, ConfigKind, GROUP_CONFIGS, RACK_AWARE_SELECTOR, TOPIC_CONFIGS,
    all_broker_configs, broker_config_def, group_config_def, topic_config_def, validate_value,
};
pub use listeners::{ListenerConfig, SecurityProtocol};
pub use security::{AuthorizerSettings, ClientAuth, ListenerSecurity, PemSource, SaslMechanism, TlsSettings};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The embedded default: one node on 127.0.0.1:9092 with data in `./data`.
pub const EMBEDDED_BROKER_YAML: &str = include_str!("../../config/broker.yaml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown config key `{key}`")]
    UnknownKey { key: String },
    #[error("invalid value `{value}` for config `{key}`: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not a YAML mapping of config names to values: {reason}")]
    Syntax { path: PathBuf, reason: String },
}

pub use crate::log::LogConfig;

/// Whether a `cleanup.policy` list includes `compact`.
fn has_compact_policy(value: &str) -> bool {
    value.split(',').any(|policy| policy.trim() == "compact")
}

/// Whether a `cleanup.policy` list includes `delete`.
fn has_delete_policy(value: &str) -> bool {
    value.split(',').any(|policy| policy.trim() == "delete")
}

/// The log cleaner's broker settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`.
    pub enable: bool,
    /// `log.cleaner.io.max.bytes.per.second`: reads plus writes, per log dir.
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.dedupe.buffer.size`: memory for one pass's key map.
    pub dedupe_buffer_size: usize,
    /// `log.cleaner.backoff.ms`: the pause when no log is due.
    pub backoff_ms: u64,
}

/// Which parts of a node run (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    pub broker: bool,
    pub controller: bool,
}

/// The broker's whole configuration: every known key with its value, and typed views.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Every key that was set explicitly (from the YAML layers or --set).
    pub explicit: BTreeMap<String, String>,
    pub node_id: i32,
    /// `process.roles`: broker, controller, or both (combined mode).
    pub process_roles: ProcessRoles,
    /// The client listeners (named, each with its security protocol); a
    /// controller-only node has none.
    pub listeners: Vec<ListenerConfig>,
    /// The inter-broker listener's name (`inter.broker.listener.name`): replica
    /// fetchers reach leaders through it.
    pub inter_broker_listener: String,
    /// The inter-broker listener's address: outgoing connections to other nodes leave
    /// from its IP.
    pub listener: Option<SocketAddr>,
    /// `sasl.mechanism.inter.broker.protocol`.
    pub inter_broker_sasl_mechanism: SaslMechanism,
    /// `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`.
    pub authorizer: AuthorizerSettings,
    /// The CONTROLLER listener, where Raft and broker-to-controller traffic arrives.
    pub controller_listener: Option<SocketAddr>,
    /// The CONTROLLER listener's TLS when its protocol (the first of
    /// `controller.listener.names` in `listener.security.protocol.map`) is SSL, for
    /// serving it and for connecting to other nodes' (brokers without a controller
    /// included); None for PLAINTEXT.
    pub controller_tls: Option<TlsSettings>,
    /// `controller.quorum.voters` as id -> `host:port`; a lone node with none set is a
    /// one-voter quorum of itself.
    pub quorum_voters: BTreeMap<i32, String>,
    /// `controller.quorum.election.timeout.ms`.
    pub election_timeout_ms: u64,
    /// `broker.session.timeout.ms`: a broker without heartbeats this long is fenced.
    pub broker_session_timeout_ms: i64,
    /// `broker.heartbeat.interval.ms`.
    pub broker_heartbeat_interval_ms: u64,
    /// `replica.lag.time.max.ms`: a follower not caught up this long leaves the ISR.
    pub replica_lag_time_max_ms: i64,
    /// `eligible.leader.replicas.version` (0 or 1, default 1): KIP-966's ELR and the
    /// high watermark held while the ISR is below `min.insync.replicas`.
    pub eligible_leader_replicas_version: i32,
    /// `replica.fetch.wait.max.ms`: how long a follower's fetch waits for new data.
    pub replica_fetch_wait_max_ms: i32,
    /// `max.request.partition.size.limit`: partitions in one DescribeTopicPartitions page.
    pub max_request_partition_size_limit: i32,
    /// `max.incremental.fetch.session.cache.slots`: fetch sessions kept (KIP-227).
    pub fetch_session_cache_slots: usize,
    /// `replica.fetch.max.bytes`: per partition in a follower's fetch.
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`: a follower's whole fetch response.
    pub replica_fetch_response_max_bytes: i32,
    /// `broker.rack`: where this broker stands, for rack-aware reads.
    pub broker_rack: Option<String>,
    /// `replica.selector.class` is the rack-aware selector: a leader sends a consumer
    /// with a `client.rack` to an in-sync replica in its rack (KIP-392).
    pub rack_aware_reads: bool,
    pub log_dirs: Vec<PathBuf>,
    pub num_partitions: i32,
    pub auto_create_topics_enable: bool,
    pub default_replication_factor: i16,
    pub max_connections: usize,
    /// `metrics.listener`: where `GET /metrics` is served (HOST:PORT); None when set
    /// empty.
    pub metrics_listener: Option<SocketAddr>,
    pub socket_request_max_bytes: usize,
    pub retention_check_interval_ms: u64,
    pub flush_scheduler_interval_ms: u64,
    /// The log cleaner's settings (`log.cleaner.*`).
    pub cleaner: CleanerConfig,
    pub transactions: transactions::TransactionConfig,
    pub log: LogConfig,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_replication_factor: i16,
    pub offsets_topic_segment_bytes: i64,
    pub offsets_retention_ms: i64,
    pub offsets_retention_check_interval_ms: u64,
    pub offset_metadata_max_bytes: usize,
    pub group_initial_rebalance_delay_ms: i64,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (default 5000, at least 1).
    pub group_consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.session.timeout.ms` (default 45000, at least 1).
    pub group_consumer_session_timeout_ms: i32,
    /// `group.consumer.assignors` (default `uniform,range`): the first is the default.
    pub group_consumer_assignors: Vec<String>,
    /// `group.consumer.max.size` (default 2147483647).
    pub group_consumer_max_size: i32,
    /// `group.consumer.migration.policy`: bidirectional (default), upgrade,
    /// downgrade or disabled.
    pub group_consumer_migration_policy: String,
    /// `group.share.record.lock.duration.ms` (default 30000, 1000-3600000).
    pub group_share_record_lock_duration_ms: i64,
    /// `group.share.delivery.count.limit` (default 5, 2-10).
    pub group_share_delivery_count_limit: i16,
    /// `group.share.partition.max.record.locks` (default 2000, 100-10000).
    pub group_share_partition_max_record_locks: usize,
    /// `group.share.session.timeout.ms` (default 45000).
    pub group_share_session_timeout_ms: i32,
    /// `group.share.heartbeat.interval.ms` (default 5000).
    pub group_share_heartbeat_interval_ms: i32,
    /// `share.coordinator.state.topic.num.partitions` (default 50).
    pub share_state_topic_num_partitions: i32,
    /// `share.coordinator.state.topic.replication.factor` (default 3).
    pub share_state_topic_replication_factor: i16,
    /// `share.coordinator.state.topic.min.isr` (default 2).
    pub share_state_topic_min_isr: i32,
    /// `topic.memory.per.partition` and `topic.fds.per.partition`: what one partition
    /// replica is counted to need when the broker tells the controller how many it can
    /// host (0: that resource does not bound it).
    /// Replication throttles (KIP-73), bytes a second (i64::MAX: none): what this broker
    /// sends to followers of throttled replicas it leads, and fetches for throttled
    /// replicas it follows. Dynamic per broker.
    pub leader_replication_throttled_rate: i64,
    pub follower_replication_throttled_rate: i64,
    pub topic_memory_per_partition: u64,
    pub topic_fds_per_partition: f64,
}

impl BrokerConfig {
    /// The embedded default, then the file, then each `KEY=VALUE` override.
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<Self, ConfigError> {
        let mut explicit = parse_yaml(Path::new("<embedded config/broker.yaml>"), EMBEDDED_BROKER_YAML)?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            explicit.extend(parse_yaml(path, &text)?);
        }
        for pair in overrides {
            let (key, value) = pair.split_once('=').ok_or_else(|| ConfigError::InvalidValue {
                key: pair.clone(),
                value: String::new(),
                reason: "expected KEY=VALUE".into(),
            })?;
            explicit.insert(key.trim().to_string(), value.trim().to_string());
        }
        Self::from_explicit(explicit)
    }

    /// Kafka's defaults with these keys set over them (used by tests and `load`).
    pub fn from_explicit(explicit: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        for (key, value) in &explicit {
            let config =
                broker_config_def(key).ok_or_else(|| ConfigError::UnknownKey { key: key.clone() })?;
            validate_value(config, value)?;
        }
        // A listener-scoped key (`listener.name.<l>.<key>`) has no default of its own:
        // unset, the plain key's value applies.
        let get = |key: &str| -> Option<String> {
            explicit.get(key).cloned().or_else(|| {
                all_broker_configs()
                    .find(|config| config.name == key)
                    .and_then(|config| config.default.map(str::to_string))
            })
        };
        let int = |key: &str| -> i64 { get(key).and_then(|value| value.trim().parse().ok()).unwrap_or(0) };

        let listeners = get("listeners").unwrap_or_default();
        let controller_names: Vec<String> = get("controller.listener.names")
            .unwrap_or_default()
            .split(',')
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .collect();
        let protocol_map =
            listeners::parse_protocol_map(&get("listener.security.protocol.map").unwrap_or_default())?;
        let parsed = listeners::parse_listeners(&listeners, &controller_names, &protocol_map)?;
        let controller_listener = parsed.controller;
        let controller_tls = match controller_names.first() {
            Some(name) => listeners::controller_protocol(name, &protocol_map)?
                .uses_tls()
                .then(|| security::listener_security(name, SecurityProtocol::Ssl, &get))
                .transpose()?
                .and_then(|security| security.tls),
            None => None,
        };
        let roles = get("process.roles").unwrap_or_default();
        let process_roles = ProcessRoles {
            broker: roles.split(',').any(|role| role.trim() == "broker"),
            controller: roles.split(',').any(|role| role.trim() == "controller"),
        };
        let node_id = int("node.id") as i32;
        let quorum_voters = parse_voters(get("controller.quorum.voters").as_deref().unwrap_or(""))?;
        let inter_broker_protocol = get("security.inter.broker.protocol")
            .and_then(|name| SecurityProtocol::parse(&name))
            .unwrap_or(SecurityProtocol::Plaintext);
        let inter_broker_listener = listeners::inter_broker_listener(
            get("inter.broker.listener.name").as_deref(),
            inter_broker_protocol,
            &parsed.client,
        )?
        .unwrap_or_default();
        let advertised = listeners::advertised(get("advertised.listeners").as_deref(), &parsed.client)?;
        let mut client_listeners = Vec::new();
        for ((name, address, protocol), (advertised_host, advertised_port)) in
            parsed.client.iter().zip(advertised)
        {
            client_listeners.push(ListenerConfig {
                name: name.clone(),
                address: *address,
                protocol: *protocol,
                advertised_host,
                advertised_port,
                security: security::listener_security(name, *protocol, &get)?,
            });
        }
        let listener = client_listeners
            .iter()
            .find(|client| client.name == inter_broker_listener)
            .map(|client| client.address);
        check_roles(
            process_roles,
            node_id,
            &quorum_voters,
            listener,
            controller_listener,
        )?;
        let metrics_listener = match get("metrics.listener").map(|value| value.trim().to_string()) {
            Some(value) if !value.is_empty() => Some(listeners::parse_listener("metrics.listener", &value)?),
            _ => None,
        };
        let inter_broker_sasl_mechanism = get("sasl.mechanism.inter.broker.protocol")
            .and_then(|name| SaslMechanism::parse(&name))
            .unwrap_or(SaslMechanism::Plain);
        let authorizer = security::authorizer_settings(&get)?;
        let log_dirs = log_dirs(&explicit, &get)?;
        let log = log_defaults(&get, &int);
        Ok(BrokerConfig {
            node_id,
            process_roles,
            listeners: client_listeners,
            inter_broker_listener,
            listener,
            inter_broker_sasl_mechanism,
            authorizer,
            controller_listener,
            controller_tls,
            quorum_voters,
            election_timeout_ms: int("controller.quorum.election.timeout.ms") as u64,
            broker_session_timeout_ms: int("broker.session.timeout.ms"),
            broker_heartbeat_interval_ms: int("broker.heartbeat.interval.ms") as u64,
            replica_lag_time_max_ms: int("replica.lag.time.max.ms"),
            eligible_leader_replicas_version: int("eligible.leader.replicas.version") as i32,
            replica_fetch_wait_max_ms: int("replica.fetch.wait.max.ms") as i32,
            replica_fetch_max_bytes: int("replica.fetch.max.bytes") as i32,
            max_request_partition_size_limit: int("max.request.partition.size.limit") as i32,
            fetch_session_cache_slots: int("max.incremental.fetch.session.cache.slots").max(0) as usize,
            replica_fetch_response_max_bytes: int("replica.fetch.response.max.bytes") as i32,
            broker_rack: get("broker.rack")
                .map(|rack| rack.trim().to_string())
                .filter(|rack| !rack.is_empty()),
            rack_aware_reads: get("replica.selector.class").as_deref().map(str::trim)
                == Some(RACK_AWARE_SELECTOR),
            log_dirs,
            num_partitions: int("num.partitions") as i32,
            auto_create_topics_enable: get("auto.create.topics.enable").as_deref() == Some("true"),
            default_replication_factor: int("default.replication.factor") as i16,
            max_connections: int("max.connections") as usize,
            metrics_listener,
            socket_request_max_bytes: int("socket.request.max.bytes") as usize,
            retention_check_interval_ms: int("log.retention.check.interval.ms") as u64,
            flush_scheduler_interval_ms: int("log.flush.scheduler.interval.ms") as u64,
            cleaner: CleanerConfig {
                enable: get("log.cleaner.enable").as_deref().map(str::trim) != Some("false"),
                io_max_bytes_per_second: get("log.cleaner.io.max.bytes.per.second")
                    .and_then(|value| value.trim().parse().ok())
                    .unwrap_or(f64::MAX),
                dedupe_buffer_size: int("log.cleaner.dedupe.buffer.size") as usize,
                backoff_ms: int("log.cleaner.backoff.ms") as u64,
            },
            log,
            offsets_topic_num_partitions: int("offsets.topic.num.partitions") as i32,
            offsets_topic_replication_factor: int("offsets.topic.replication.factor") as i16,
            offsets_topic_segment_bytes: int("offsets.topic.segment.bytes"),
            offsets_retention_ms: int("offsets.retention.minutes") * 60_000,
            offsets_retention_check_interval_ms: int("offsets.retention.check.interval.ms") as u64,
            offset_metadata_max_bytes: int("offset.metadata.max.bytes") as usize,
            group_initial_rebalance_delay_ms: int("group.initial.rebalance.delay.ms"),
            group_min_session_timeout_ms: int("group.min.session.timeout.ms") as i32,
            group_max_session_timeout_ms: int("group.max.session.timeout.ms") as i32,
            group_consumer_heartbeat_interval_ms: int("group.consumer.heartbeat.interval.ms") as i32,
            group_consumer_session_timeout_ms: int("group.consumer.session.timeout.ms") as i32,
            group_consumer_assignors: get("group.consumer.assignors")
                .unwrap_or_default()
                .split(',')
                .map(|name| name.trim().to_string())
                .filter(|name| !name.is_empty())
                .collect(),
            group_consumer_max_size: int("group.consumer.max.size") as i32,
            group_consumer_migration_policy: get("group.consumer.migration.policy").unwrap_or_default(),
            group_share_record_lock_duration_ms: int("group.share.record.lock.duration.ms"),
            group_share_delivery_count_limit: int("group.share.delivery.count.limit") as i16,
            group_share_partition_max_record_locks: int("group.share.partition.max.record.locks") as usize,
            group_share_session_timeout_ms: int("group.share.session.timeout.ms") as i32,
            group_share_heartbeat_interval_ms: int("group.share.heartbeat.interval.ms") as i32,
            share_state_topic_num_partitions: int("share.coordinator.state.topic.num.partitions") as i32,
            share_state_topic_replication_factor: int("share.coordinator.state.topic.replication.factor")
                as i16,
            share_state_topic_min_isr: int("share.coordinator.state.topic.min.isr") as i32,
            leader_replication_throttled_rate: int("leader.replication.throttled.rate"),
            follower_replication_throttled_rate: int("follower.replication.throttled.rate"),
            topic_memory_per_partition: int("topic.memory.per.partition").max(0) as u64,
            topic_fds_per_partition: get("topic.fds.per.partition")
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0.25),
            transactions: transactions::TransactionConfig::from_lookup(int),
            explicit,
        })
    }

    /// The value of a broker config as Kafka would describe it, with whether it was set.
    pub fn value(&self, name: &str) -> Option<(String, bool)> {
        if let Some(value) = self.explicit.get(name) {
            return Some((value.clone(), true));
        }
        let derived = match name {
            "log.retention.ms" => Some(self.log.retention_ms.to_string()),
            "log.roll.ms" => Some(self.log.segment_ms.to_string()),
            "log.flush.interval.ms" => self.log.flush_ms.map(|ms| ms.to_string()),
            _ => None,
        };
        derived
            .or_else(|| broker_config_def(name).and_then(|config| config.default.map(str::to_string)))
            .map(|value| (value, false))
    }

    /// The log config of a topic with these overrides (already validated).
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        let mut log = self.log.clone();
        for (key, value) in overrides {
            let value = value.trim();
            let long = value.parse::<i64>().ok();
            match (key.as_str(), long) {
                ("retention.ms", Some(v)) => log.retention_ms = v,
                ("retention.bytes", Some(v)) => log.retention_bytes = v,
                ("segment.bytes", Some(v)) => log.segment_bytes = v as u64,
                ("segment.ms", Some(v)) => log.segment_ms = v,
                ("flush.messages", Some(v)) => log.flush_messages = v,
                ("flush.ms", Some(v)) => log.flush_ms = Some(v),
                ("index.interval.bytes", Some(v)) => log.index_interval_bytes = v as u64,
                ("max.message.bytes", Some(v)) => log.max_message_bytes = v as i32,
                ("min.insync.replicas", Some(v)) => log.min_insync_replicas = v as i32,
                ("message.timestamp.type", _) => log.log_append_time = value == "LogAppendTime",
                ("message.timestamp.before.max.ms", Some(v)) => log.timestamp_before_max_ms = v,
                ("message.timestamp.after.max.ms", Some(v)) => log.timestamp_after_max_ms = v,
                ("compression.type", _) => log.compression = crate::log::recompress::topic_codec(value),
                ("cleanup.policy", _) => {
                    log.delete_policy = has_delete_policy(value);
                    log.compact_policy = has_compact_policy(value);
                }
                ("min.cleanable.dirty.ratio", _) => {
                    log.min_cleanable_ratio = value.parse().unwrap_or(log.min_cleanable_ratio)
                }
                ("min.compaction.lag.ms", Some(v)) => log.min_compaction_lag_ms = v,
                ("max.compaction.lag.ms", Some(v)) => log.max_compaction_lag_ms = v,
                ("delete.retention.ms", Some(v)) => log.delete_retention_ms = v,
                ("compression.gzip.level", Some(v)) => log.compression_levels.gzip = v as i32,
                ("compression.lz4.level", Some(v)) => log.compression_levels.lz4 = v as i32,
                ("compression.zstd.level", Some(v)) => log.compression_levels.zstd = v as i32,
                _ => {}
            }
        }
        log
    }
}

/// `log.dirs`, or `log.dir` when only it is set: at least one directory.
fn log_dirs(
    explicit: &BTreeMap<String, String>,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<PathBuf>, ConfigError> {
    let dirs = get("log.dirs")
        .filter(|_| explicit.contains_key("log.dirs") || !explicit.contains_key("log.dir"))
        .or_else(|| get("log.dir"))
        .unwrap_or_default();
    let log_dirs: Vec<PathBuf> = dirs
        .split(',')
        .map(str::trim)
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .collect();
    if log_dirs.is_empty() {
        return Err(ConfigError::InvalidValue {
            key: "log.dirs".into(),
            value: dirs,
            reason: "needs at least one directory".into(),
        });
    }
    Ok(log_dirs)
}

/// The broker-wide log defaults (`log.*` and the topic configs' broker synonyms).
fn log_defaults(get: &impl Fn(&str) -> Option<String>, int: &impl Fn(&str) -> i64) -> LogConfig {
    let retention_ms = match (get("log.retention.ms"), get("log.retention.minutes")) {
        (Some(ms), _) => ms.trim().parse().unwrap_or(-1),
        (None, Some(minutes)) => minutes.trim().parse::<i64>().unwrap_or(0) * 60_000,
        (None, None) => int("log.retention.hours") * 3_600_000,
    };
    let segment_ms = match get("log.roll.ms") {
        Some(ms) => ms.trim().parse().unwrap_or(i64::MAX),
        None => int("log.roll.hours") * 3_600_000,
    };
    LogConfig {
        retention_ms,
        retention_bytes: int("log.retention.bytes"),
        segment_bytes: int("log.segment.bytes") as u64,
        segment_ms,
        flush_messages: int("log.flush.interval.messages"),
        flush_ms: get("log.flush.interval.ms").and_then(|value| value.trim().parse().ok()),
        index_interval_bytes: int("log.index.interval.bytes") as u64,
        max_index_size: int("log.index.size.max.bytes") as u64,
        max_message_bytes: int("message.max.bytes") as i32,
        min_insync_replicas: int("min.insync.replicas") as i32,
        log_append_time: get("log.message.timestamp.type").as_deref().map(str::trim) == Some("LogAppendTime"),
        timestamp_before_max_ms: int("log.message.timestamp.before.max.ms"),
        timestamp_after_max_ms: int("log.message.timestamp.after.max.ms"),
        compression: get("compression.type")
            .as_deref()
            .and_then(crate::log::recompress::topic_codec),
        delete_policy: get("log.cleanup.policy").as_deref().is_none_or(has_delete_policy),
        compact_policy: get("log.cleanup.policy")
            .as_deref()
            .is_some_and(has_compact_policy),
        min_cleanable_ratio: get("log.cleaner.min.cleanable.ratio")
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.5),
        min_compaction_lag_ms: int("log.cleaner.min.compaction.lag.ms"),
        max_compaction_lag_ms: int("log.cleaner.max.compaction.lag.ms"),
        delete_retention_ms: int("log.cleaner.delete.retention.ms"),
        compression_levels: crate::log::recompress::CompressionLevels {
            gzip: int("compression.gzip.level") as i32,
            lz4: int("compression.lz4.level") as i32,
            zstd: int("compression.zstd.level") as i32,
        },
    }
}

fn parse_yaml(path: &Path, text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let syntax = |reason: String| ConfigError::Syntax {
        path: path.to_path_buf(),
        reason,
    };
    let value: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|error| syntax(error.to_string()))?;
    let mut out = BTreeMap::new();
    let mapping = match value {
        serde_yaml_ng::Value::Null => return Ok(out),
        serde_yaml_ng::Value::Mapping(mapping) => mapping,
        _ => return Err(syntax("top level is not a mapping".into())),
    };
    for (key, value) in mapping {
        let key = match key {
            serde_yaml_ng::Value::String(key) => key,
            other => return Err(syntax(format!("key {other:?} is not a string"))),
        };
        let value = match value {
            serde_yaml_ng::Value::String(text) => text,
            serde_yaml_ng::Value::Number(number) => number.to_string(),
            serde_yaml_ng::Value::Bool(flag) => flag.to_string(),
            serde_yaml_ng::Value::Sequence(items) => items
                .iter()
                .map(|item| match item {
                    serde_yaml_ng::Value::String(text) => Ok(text.clone()),
                    other => Err(syntax(format!(
                        "`{key}` has a list item {other:?} that is not a string"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            other => {
                return Err(syntax(format!(
                    "`{key}` has a value {other:?} that is not a scalar"
                )));
            }
        };
        out.insert(key, value);
    }
    Ok(out)
}

/// Parses `controller.quorum.voters`: `id@host:port,...`.
fn parse_voters(value: &str) -> Result<BTreeMap<i32, String>, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidValue {
        key: "controller.quorum.voters".into(),
        value: value.to_string(),
        reason,
    };
    let mut voters = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (id, address) = item
            .split_once('@')
            .ok_or_else(|| invalid(format!("`{item}` is not ID@HOST:PORT")))?;
        let id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| invalid(format!("`{id}` is not a node id")))?;
        let (_, port) = address
            .rsplit_once(':')
            .ok_or_else(|| invalid(format!("`{address}` has no port")))?;
        port.parse::<u16>()
            .map_err(|_| invalid(format!("`{address}` has a bad port")))?;
        if voters.insert(id, address.trim().to_string()).is_some() {
            return Err(invalid(format!("voter {id} is listed twice")));
        }
    }
    Ok(voters)
}

fn check_roles(
    roles: ProcessRoles,
    node_id: i32,
    voters: &BTreeMap<i32, String>,
    listener: Option<SocketAddr>,
    controller_listener: Option<SocketAddr>,
) -> Result<(), ConfigError> {
    let invalid = |key: &str, reason: &str| {
        Err(ConfigError::InvalidValue {
            key: key.into(),
            value: String::new(),
            reason: reason.into(),
        })
    };
    let is_voter = voters.contains_key(&node_id);
    if roles.broker && listener.is_none() {
        return invalid("listeners", "a broker needs a listener for clients");
    }
    if roles.controller {
        if voters.is_empty() && !roles.broker {
            return invalid(
                "controller.quorum.voters",
                "a controller-only node needs the voters (with itself among them)",
            );
        }
        if !voters.is_empty() && !is_voter {
            return invalid(
                "controller.quorum.voters",
                &format!("a controller's node.id ({node_id}) must be one of the voters"),
            );
        }
        if (voters.len() > 1 || !roles.broker) && controller_listener.is_none() {
            return invalid(
                "listeners",
                "a controller that others reach needs a CONTROLLER listener",
            );
        }
    } else {
        if voters.is_empty() {
            return invalid(
                "controller.quorum.voters",
                "a broker-only node needs the voters to reach the controllers",
            );
        }
        if is_voter {
            return invalid(
                "controller.quorum.voters",
                &format!("node.id {node_id} is a voter, so process.roles must include controller"),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
