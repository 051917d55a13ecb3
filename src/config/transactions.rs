//! The transaction coordinator's broker configs, under Kafka's names and defaults.

use super::defs::{ConfigDef, ConfigKind, def};

const POSITIVE_INT: ConfigKind = ConfigKind::Int {
    min: 1,
    max: i32::MAX as i64,
};
const POSITIVE_LONG: ConfigKind = ConfigKind::Long { min: 1 };

pub const TRANSACTION_CONFIGS: &[ConfigDef] = &[
    def(
        "transaction.state.log.num.partitions",
        Some("50"),
        ConfigKind::Int { min: 1, max: 10_000 },
    ),
    def(
        "transaction.state.log.replication.factor",
        Some("3"),
        ConfigKind::Int {
            min: 1,
            max: i16::MAX as i64,
        },
    ),
    def("transaction.state.log.min.isr", Some("2"), POSITIVE_INT),
    def(
        "transaction.state.log.segment.bytes",
        Some("104857600"),
        ConfigKind::Int {
            min: 14,
            max: i32::MAX as i64,
        },
    ),
    def("transaction.max.timeout.ms", Some("900000"), POSITIVE_INT),
    def("transactional.id.expiration.ms", Some("604800000"), POSITIVE_INT),
    def(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Some("10000"),
        POSITIVE_INT,
    ),
    def(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        Some("3600000"),
        POSITIVE_INT,
    ),
    def("producer.id.expiration.ms", Some("86400000"), POSITIVE_INT),
    def(
        "producer.id.expiration.check.interval.ms",
        Some("600000"),
        POSITIVE_LONG,
    ),
];

/// The resolved values.
#[derive(Debug, Clone, Copy)]
pub struct TransactionConfig {
    pub state_log_num_partitions: i32,
    pub state_log_replication_factor: i16,
    pub state_log_min_isr: i32,
    pub state_log_segment_bytes: i64,
    pub max_timeout_ms: i32,
    pub id_expiration_ms: i64,
    pub abort_timed_out_interval_ms: u64,
    pub remove_expired_interval_ms: u64,
    pub producer_id_expiration_ms: i64,
    pub producer_id_expiration_check_interval_ms: u64,
}

impl TransactionConfig {
    /// From the config's integer lookup (defaults applied).
    pub fn from_lookup(int: impl Fn(&str) -> i64) -> Self {
        TransactionConfig {
            state_log_num_partitions: int("transaction.state.log.num.partitions") as i32,
            state_log_replication_factor: int("transaction.state.log.replication.factor") as i16,
            state_log_min_isr: int("transaction.state.log.min.isr") as i32,
            state_log_segment_bytes: int("transaction.state.log.segment.bytes"),
            max_timeout_ms: int("transaction.max.timeout.ms") as i32,
            id_expiration_ms: int("transactional.id.expiration.ms"),
            abort_timed_out_interval_ms: int("transaction.abort.timed.out.transaction.cleanup.interval.ms")
                as u64,
            remove_expired_interval_ms: int("transaction.remove.expired.transaction.cleanup.interval.ms")
                as u64,
            producer_id_expiration_ms: int("producer.id.expiration.ms"),
            producer_id_expiration_check_interval_ms: int("producer.id.expiration.check.interval.ms") as u64,
        }
    }
}
