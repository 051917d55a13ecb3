//! The table of every broker and topic config Kafka names, with each one's default and
//! the kind and range of value it takes.

use super::{ConfigError, listeners, security, transactions};

/// What kind of value a config takes, with its allowed range.
#[derive(Debug, Clone, Copy)]
pub enum ConfigKind {
    Int {
        min: i64,
        max: i64,
    },
    Long {
        min: i64,
    },
    Bool,
    /// One of the listed strings.
    Choice(&'static [&'static str]),
    /// A comma-separated list whose items are each one of the listed strings.
    ChoiceList(&'static [&'static str]),
    /// Free text, checked by the code that uses it (listeners, paths).
    Text,
    /// A decimal number in [min, max].
    Double {
        min: f64,
        max: f64,
    },
}

/// One known config: its Kafka name, its default (None: unset) and its kind.
#[derive(Debug)]
pub struct ConfigDef {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub kind: ConfigKind,
    /// For a topic config: the broker config its default comes from.
    pub broker_name: Option<&'static str>,
}

pub(super) const fn def(name: &'static str, default: Option<&'static str>, kind: ConfigKind) -> ConfigDef {
    ConfigDef {
        name,
        default,
        kind,
        broker_name: None,
    }
}

const INT: ConfigKind = ConfigKind::Int {
    min: 0,
    max: i32::MAX as i64,
};
/// KIP-390 levels: gzip -1 (zlib's default) or 1-9, lz4 1-17, zstd -131072-22.
const GZIP_LEVEL: ConfigKind = ConfigKind::Int { min: -1, max: 9 };
const LZ4_LEVEL: ConfigKind = ConfigKind::Int { min: 1, max: 17 };
const ZSTD_LEVEL: ConfigKind = ConfigKind::Int {
    min: -131072,
    max: 22,
};
/// `min.cleanable.dirty.ratio`: a fraction.
const RATIO: ConfigKind = ConfigKind::Double { min: 0.0, max: 1.0 };
const POSITIVE_INT: ConfigKind = ConfigKind::Int {
    min: 1,
    max: i32::MAX as i64,
};
const LONG_ANY: ConfigKind = ConfigKind::Long { min: i64::MIN };
const CLEANUP_POLICIES: &[&str] = &["delete", "compact"];
const PROCESS_ROLES: &[&str] = &["broker", "controller"];
const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];
const SASL_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];
const COMPRESSION_TYPES: &[&str] = &["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"];
/// Kafka's rack-aware selector (KIP-392); the leader-only selector is the default.
pub const RACK_AWARE_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";
const REPLICA_SELECTORS: &[&str] = &[
    RACK_AWARE_SELECTOR,
    "org.apache.kafka.common.replica.LeaderSelector",
];

/// Every broker config the broker understands, with Kafka's defaults.
pub const BROKER_CONFIGS: &[ConfigDef] = &[
    def("node.id", Some("0"), INT),
    def(
        "process.roles",
        Some("broker,controller"),
        ConfigKind::ChoiceList(PROCESS_ROLES),
    ),
    def("controller.quorum.voters", None, ConfigKind::Text),
    def("controller.listener.names", Some("CONTROLLER"), ConfigKind::Text),
    def(
        "controller.quorum.election.timeout.ms",
        Some("1000"),
        ConfigKind::Long { min: 10 },
    ),
    def("broker.session.timeout.ms", Some("9000"), POSITIVE_INT),
    def("broker.heartbeat.interval.ms", Some("2000"), POSITIVE_INT),
    def(
        "replica.lag.time.max.ms",
        Some("30000"),
        ConfigKind::Long { min: 1 },
    ),
    def("replica.fetch.wait.max.ms", Some("500"), INT),
    def("max.incremental.fetch.session.cache.slots", Some("1000"), INT),
    def("max.request.partition.size.limit", Some("2000"), POSITIVE_INT),
    def("replica.fetch.max.bytes", Some("1048576"), POSITIVE_INT),
    def("replica.fetch.response.max.bytes", Some("10485760"), POSITIVE_INT),
    def("broker.rack", None, ConfigKind::Text),
    def("unclean.leader.election.enable", Some("false"), ConfigKind::Bool),
    def("auto.leader.rebalance.enable", Some("true"), ConfigKind::Bool),
    def(
        "quota.window.num",
        Some("11"),
        ConfigKind::Int { min: 1, max: 1000 },
    ),
    def(
        "quota.window.size.seconds",
        Some("1"),
        ConfigKind::Int { min: 1, max: 3600 },
    ),
    def(
        "replication.quota.window.num",
        Some("11"),
        ConfigKind::Int { min: 1, max: 1000 },
    ),
    def(
        "replication.quota.window.size.seconds",
        Some("1"),
        ConfigKind::Int { min: 1, max: 3600 },
    ),
    def(
        "leader.replication.throttled.rate",
        Some("9223372036854775807"),
        ConfigKind::Long { min: 1 },
    ),
    def(
        "follower.replication.throttled.rate",
        Some("9223372036854775807"),
        ConfigKind::Long { min: 1 },
    ),
    def(
        "leader.imbalance.per.broker.percentage",
        Some("10"),
        ConfigKind::Int { min: 0, max: 100 },
    ),
    def(
        "leader.imbalance.check.interval.seconds",
        Some("300"),
        ConfigKind::Long { min: 1 },
    ),
    // KIP-966 eligible leader replicas: 1 (Kafka 4.1's default) tracks the ELR and holds
    // the high watermark while the ISR is below min.insync.replicas; 0 turns that off.
    def(
        "eligible.leader.replicas.version",
        Some("1"),
        ConfigKind::Int { min: 0, max: 1 },
    ),
    def(
        "replica.selector.class",
        None,
        ConfigKind::Choice(REPLICA_SELECTORS),
    ),
    def("listeners", Some("PLAINTEXT://127.0.0.1:9092"), ConfigKind::Text),
    def("advertised.listeners", None, ConfigKind::Text),
    def(
        "listener.security.protocol.map",
        Some(listeners::DEFAULT_PROTOCOL_MAP),
        ConfigKind::Text,
    ),
    def("inter.broker.listener.name", None, ConfigKind::Text),
    def(
        "security.inter.broker.protocol",
        Some("PLAINTEXT"),
        ConfigKind::Choice(SECURITY_PROTOCOLS),
    ),
    def(
        "sasl.mechanism.inter.broker.protocol",
        Some("PLAIN"),
        ConfigKind::Choice(SASL_MECHANISMS),
    ),
    def(
        "sasl.enabled.mechanisms",
        Some("PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"),
        ConfigKind::ChoiceList(SASL_MECHANISMS),
    ),
    def("plain.sasl.jaas.config", None, ConfigKind::Text),
    def("scram-sha-256.sasl.jaas.config", None, ConfigKind::Text),
    def("scram-sha-512.sasl.jaas.config", None, ConfigKind::Text),
    def(
        "connections.max.reauth.ms",
        Some("0"),
        ConfigKind::Long { min: 0 },
    ),
    def("ssl.keystore.type", Some("PEM"), ConfigKind::Text),
    def("ssl.keystore.location", None, ConfigKind::Text),
    def("ssl.keystore.certificate.chain", None, ConfigKind::Text),
    def("ssl.keystore.key", None, ConfigKind::Text),
    def("ssl.key.password", None, ConfigKind::Text),
    def("ssl.truststore.type", Some("PEM"), ConfigKind::Text),
    def("ssl.truststore.location", None, ConfigKind::Text),
    def("ssl.truststore.certificates", None, ConfigKind::Text),
    def(
        "ssl.client.auth",
        Some("none"),
        ConfigKind::Choice(&["none", "requested", "required"]),
    ),
    def(
        "ssl.enabled.protocols",
        Some("TLSv1.2,TLSv1.3"),
        ConfigKind::ChoiceList(&["TLSv1.2", "TLSv1.3"]),
    ),
    def("ssl.principal.mapping.rules", Some("DEFAULT"), ConfigKind::Text),
    def("ssl.kernel.tls.enable", Some("true"), ConfigKind::Bool),
    def(
        "ssl.endpoint.identification.algorithm",
        Some("https"),
        ConfigKind::Text,
    ),
    def("authorizer.class.name", Some(""), ConfigKind::Text),
    def("super.users", None, ConfigKind::Text),
    def("allow.everyone.if.no.acl.found", Some("false"), ConfigKind::Bool),
    def("log.dirs", Some("/tmp/kafka-logs"), ConfigKind::Text),
    def("log.dir", None, ConfigKind::Text),
    def("num.partitions", Some("1"), POSITIVE_INT),
    def("auto.create.topics.enable", Some("true"), ConfigKind::Bool),
    def(
        "default.replication.factor",
        Some("1"),
        ConfigKind::Int {
            min: 1,
            max: i16::MAX as i64,
        },
    ),
    def("min.insync.replicas", Some("1"), POSITIVE_INT),
    def("max.connections", Some("2147483647"), INT),
    def("metrics.listener", Some("127.0.0.1:9644"), ConfigKind::Text),
    def("message.max.bytes", Some("1048588"), INT),
    def("socket.request.max.bytes", Some("104857600"), POSITIVE_INT),
    def("log.retention.ms", None, LONG_ANY),
    def("log.retention.minutes", None, INT),
    def("log.retention.hours", Some("168"), INT),
    def("log.retention.bytes", Some("-1"), LONG_ANY),
    def(
        "log.retention.check.interval.ms",
        Some("300000"),
        ConfigKind::Long { min: 1 },
    ),
    def(
        "log.segment.bytes",
        Some("1073741824"),
        ConfigKind::Int {
            min: 14,
            max: i32::MAX as i64,
        },
    ),
    def("log.roll.ms", None, ConfigKind::Long { min: 1 }),
    def(
        "log.message.timestamp.type",
        Some("CreateTime"),
        ConfigKind::Choice(TIMESTAMP_TYPES),
    ),
    def(
        "log.message.timestamp.before.max.ms",
        Some("9223372036854775807"),
        ConfigKind::Long { min: 0 },
    ),
    def(
        "log.message.timestamp.after.max.ms",
        Some("3600000"),
        ConfigKind::Long { min: 0 },
    ),
    def("log.roll.hours", Some("168"), POSITIVE_INT),
    def("log.index.interval.bytes", Some("4096"), INT),
    def(
        "log.index.size.max.bytes",
        Some("10485760"),
        ConfigKind::Int {
            min: 4,
            max: i32::MAX as i64,
        },
    ),
    def(
        "log.flush.interval.messages",
        Some("9223372036854775807"),
        ConfigKind::Long { min: 1 },
    ),
    def("log.flush.interval.ms", None, ConfigKind::Long { min: 0 }),
    def(
        "log.flush.scheduler.interval.ms",
        Some("1000"),
        ConfigKind::Long { min: 1 },
    ),
    def(
        "log.cleanup.policy",
        Some("delete"),
        ConfigKind::ChoiceList(CLEANUP_POLICIES),
    ),
    def("log.cleaner.enable", Some("true"), ConfigKind::Bool),
    def("log.cleaner.min.cleanable.ratio", Some("0.5"), RATIO),
    def(
        "log.cleaner.min.compaction.lag.ms",
        Some("0"),
        ConfigKind::Long { min: 0 },
    ),
    def(
        "log.cleaner.max.compaction.lag.ms",
        Some("9223372036854775807"),
        ConfigKind::Long { min: 1 },
    ),
    def(
        "log.cleaner.delete.retention.ms",
        Some("86400000"),
        ConfigKind::Long { min: 0 },
    ),
    def(
        "log.cleaner.io.max.bytes.per.second",
        Some("1.7976931348623157E308"),
        ConfigKind::Double {
            min: f64::MIN_POSITIVE,
            max: f64::MAX,
        },
    ),
    def(
        "log.cleaner.dedupe.buffer.size",
        Some("134217728"),
        ConfigKind::Long { min: 1 << 20 },
    ),
    def(
        "log.cleaner.backoff.ms",
        Some("15000"),
        ConfigKind::Long { min: 0 },
    ),
    def(
        "compression.type",
        Some("producer"),
        ConfigKind::Choice(COMPRESSION_TYPES),
    ),
    def("compression.gzip.level", Some("-1"), GZIP_LEVEL),
    def("compression.lz4.level", Some("9"), LZ4_LEVEL),
    def("compression.zstd.level", Some("3"), ZSTD_LEVEL),
    def(
        "offsets.topic.num.partitions",
        Some("50"),
        ConfigKind::Int { min: 1, max: 10_000 },
    ),
    def(
        "offsets.topic.replication.factor",
        Some("3"),
        ConfigKind::Int {
            min: 1,
            max: i16::MAX as i64,
        },
    ),
    def(
        "offsets.topic.segment.bytes",
        Some("104857600"),
        ConfigKind::Int {
            min: 14,
            max: i32::MAX as i64,
        },
    ),
    def("offsets.retention.minutes", Some("10080"), POSITIVE_INT),
    def(
        "offsets.retention.check.interval.ms",
        Some("600000"),
        ConfigKind::Long { min: 1 },
    ),
    def("offset.metadata.max.bytes", Some("4096"), INT),
    def("group.initial.rebalance.delay.ms", Some("3000"), INT),
    def("group.min.session.timeout.ms", Some("6000"), INT),
    def("group.max.session.timeout.ms", Some("1800000"), INT),
    // KIP-848 consumer groups.
    def(
        "group.consumer.heartbeat.interval.ms",
        Some("5000"),
        ConfigKind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
    ),
    def(
        "group.consumer.session.timeout.ms",
        Some("45000"),
        ConfigKind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
    ),
    def(
        "group.consumer.assignors",
        Some("uniform,range"),
        ConfigKind::ChoiceList(&["uniform", "range"]),
    ),
    def(
        "group.consumer.max.size",
        Some("2147483647"),
        ConfigKind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
    ),
    // KIP-932 share groups.
    def(
        "group.share.record.lock.duration.ms",
        Some("30000"),
        ConfigKind::Int {
            min: 1000,
            max: 3_600_000,
        },
    ),
    def(
        "group.share.delivery.count.limit",
        Some("5"),
        ConfigKind::Int { min: 2, max: 10 },
    ),
    def(
        "group.share.partition.max.record.locks",
        Some("2000"),
        ConfigKind::Int {
            min: 100,
            max: 10_000,
        },
    ),
    def(
        "group.share.session.timeout.ms",
        Some("45000"),
        ConfigKind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
    ),
    def(
        "group.share.heartbeat.interval.ms",
        Some("5000"),
        ConfigKind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
    ),
    def(
        "share.coordinator.state.topic.num.partitions",
        Some("50"),
        ConfigKind::Int { min: 1, max: 10_000 },
    ),
    def(
        "share.coordinator.state.topic.replication.factor",
        Some("3"),
        ConfigKind::Int {
            min: 1,
            max: i16::MAX as i64,
        },
    ),
    def("share.coordinator.state.topic.min.isr", Some("2"), POSITIVE_INT),
    def(
        "group.consumer.migration.policy",
        Some("bidirectional"),
        ConfigKind::Choice(&["bidirectional", "upgrade", "downgrade", "disabled"]),
    ),
    // How many partition replicas a broker takes (not Kafka configs; Kafka has no such
    // limit): the memory one replica may need, against half the machine's memory, and
    // the open-file budget's descriptors and mappings one replica needs on average.
    def(
        "topic.memory.per.partition",
        Some("65536"),
        ConfigKind::Long { min: 0 },
    ),
    def(
        "topic.fds.per.partition",
        Some("0.25"),
        ConfigKind::Double { min: 0.0, max: 16.0 },
    ),
];

const fn topic(name: &'static str, broker_name: &'static str, kind: ConfigKind) -> ConfigDef {
    ConfigDef {
        name,
        default: None,
        kind,
        broker_name: Some(broker_name),
    }
}

/// `message.timestamp.type`: the producer's timestamps, or the broker's at append.
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// Every topic config the broker understands; the default is the broker config's value.
/// A topic config with no broker synonym: its own default.
const fn topic_only(name: &'static str, default: &'static str, kind: ConfigKind) -> ConfigDef {
    ConfigDef {
        name,
        default: Some(default),
        kind,
        broker_name: None,
    }
}

pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    topic(
        "cleanup.policy",
        "log.cleanup.policy",
        ConfigKind::ChoiceList(CLEANUP_POLICIES),
    ),
    topic(
        "compression.type",
        "compression.type",
        ConfigKind::Choice(COMPRESSION_TYPES),
    ),
    topic("compression.gzip.level", "compression.gzip.level", GZIP_LEVEL),
    topic("compression.lz4.level", "compression.lz4.level", LZ4_LEVEL),
    topic("compression.zstd.level", "compression.zstd.level", ZSTD_LEVEL),
    topic(
        "flush.messages",
        "log.flush.interval.messages",
        ConfigKind::Long { min: 1 },
    ),
    // Kafka's topic default when the broker sets no `log.flush.interval.ms`: never.
    ConfigDef {
        default: Some("9223372036854775807"),
        ..topic("flush.ms", "log.flush.interval.ms", ConfigKind::Long { min: 0 })
    },
    topic(
        "delete.retention.ms",
        "log.cleaner.delete.retention.ms",
        ConfigKind::Long { min: 0 },
    ),
    topic("index.interval.bytes", "log.index.interval.bytes", INT),
    topic(
        "max.compaction.lag.ms",
        "log.cleaner.max.compaction.lag.ms",
        ConfigKind::Long { min: 1 },
    ),
    topic(
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
        RATIO,
    ),
    topic(
        "min.compaction.lag.ms",
        "log.cleaner.min.compaction.lag.ms",
        ConfigKind::Long { min: 0 },
    ),
    topic("max.message.bytes", "message.max.bytes", INT),
    topic(
        "message.timestamp.type",
        "log.message.timestamp.type",
        ConfigKind::Choice(TIMESTAMP_TYPES),
    ),
    topic(
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
        ConfigKind::Long { min: 0 },
    ),
    topic(
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
        ConfigKind::Long { min: 0 },
    ),
    topic("min.insync.replicas", "min.insync.replicas", POSITIVE_INT),
    // Replication throttles (KIP-73): `partition:broker` replicas, or `*` for all.
    topic_only("leader.replication.throttled.replicas", "", ConfigKind::Text),
    topic_only("follower.replication.throttled.replicas", "", ConfigKind::Text),
    topic("retention.bytes", "log.retention.bytes", LONG_ANY),
    topic("retention.ms", "log.retention.ms", ConfigKind::Long { min: -1 }),
    topic(
        "segment.bytes",
        "log.segment.bytes",
        ConfigKind::Int {
            min: 14,
            max: i32::MAX as i64,
        },
    ),
    topic("segment.ms", "log.roll.ms", ConfigKind::Long { min: 1 }),
    topic(
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        ConfigKind::Bool,
    ),
];

/// The definition of a broker config; a listener-scoped one may also be set as
/// `listener.name.<listener>.<key>`.
pub fn broker_config_def(name: &str) -> Option<&'static ConfigDef> {
    let name = security::split_listener_key(name).map_or(name, |(_, key)| key);
    all_broker_configs().find(|config| config.name == name)
}

/// Every broker config definition: the general ones and the transaction coordinator's.
pub fn all_broker_configs() -> impl Iterator<Item = &'static ConfigDef> {
    BROKER_CONFIGS.iter().chain(transactions::TRANSACTION_CONFIGS)
}

/// Every group config (KIP-848 and KIP-932 per-group overrides, set through a GROUP
/// config resource); the default is the broker config's value.
pub const GROUP_CONFIGS: &[ConfigDef] = &[
    topic(
        "consumer.session.timeout.ms",
        "group.consumer.session.timeout.ms",
        POSITIVE_INT,
    ),
    topic(
        "consumer.heartbeat.interval.ms",
        "group.consumer.heartbeat.interval.ms",
        POSITIVE_INT,
    ),
    topic(
        "share.session.timeout.ms",
        "group.share.session.timeout.ms",
        POSITIVE_INT,
    ),
    topic(
        "share.heartbeat.interval.ms",
        "group.share.heartbeat.interval.ms",
        POSITIVE_INT,
    ),
    topic(
        "share.record.lock.duration.ms",
        "group.share.record.lock.duration.ms",
        ConfigKind::Int {
            min: 1000,
            max: 3_600_000,
        },
    ),
    // Where a share group starts reading a partition it has no state for.
    def(
        "share.auto.offset.reset",
        Some("latest"),
        ConfigKind::Choice(&["latest", "earliest"]),
    ),
    // read_committed: up to the last stable offset, aborted transactions archived.
    def(
        "share.isolation.level",
        Some("read_uncommitted"),
        ConfigKind::Choice(&["read_uncommitted", "read_committed"]),
    ),
];

pub fn group_config_def(name: &str) -> Option<&'static ConfigDef> {
    GROUP_CONFIGS.iter().find(|config| config.name == name)
}

pub fn topic_config_def(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|config| config.name == name)
}

/// Checks one value against its config's kind; the error names the key.
pub fn validate_value(config: &ConfigDef, value: &str) -> Result<(), ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidValue {
        key: config.name.to_string(),
        value: value.to_string(),
        reason,
    };
    match config.kind {
        ConfigKind::Int { min, max } => {
            let parsed: i64 = value
                .trim()
                .parse()
                .map_err(|_| invalid("not an integer".into()))?;
            if parsed < min || parsed > max {
                return Err(invalid(format!("must be in [{min}, {max}]")));
            }
        }
        ConfigKind::Long { min } => {
            let parsed: i64 = value
                .trim()
                .parse()
                .map_err(|_| invalid("not an integer".into()))?;
            if parsed < min {
                return Err(invalid(format!("must be at least {min}")));
            }
        }
        ConfigKind::Bool => {
            if !matches!(value.trim(), "true" | "false") {
                return Err(invalid("must be true or false".into()));
            }
        }
        ConfigKind::Choice(choices) => {
            if !choices.contains(&value.trim()) {
                return Err(invalid(format!("supported values: {}", choices.join(", "))));
            }
        }
        ConfigKind::Double { min, max } => {
            let parsed: f64 = value.trim().parse().map_err(|_| invalid("not a number".into()))?;
            if !(parsed >= min && parsed <= max) {
                return Err(invalid(format!("must be in [{min}, {max}]")));
            }
        }
        ConfigKind::ChoiceList(choices) => {
            for item in value.split(',').map(str::trim) {
                if !choices.contains(&item) {
                    return Err(invalid(format!("supported values: {}", choices.join(", "))));
                }
            }
        }
        ConfigKind::Text => {}
    }
    Ok(())
}
