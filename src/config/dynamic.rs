//! Dynamic broker configs (KIP-226): broker configs set through AlterConfigs or
//! IncrementalAlterConfigs on a BROKER resource, per broker (`"1"`) or as the
//! cluster-wide default (`""`), kept in the metadata log and applied without a restart.
//!
//! Kafka's precedence, highest first: the broker's own dynamic value
//! (DYNAMIC_BROKER_CONFIG), the cluster default (DYNAMIC_DEFAULT_BROKER_CONFIG), the
//! config file and `--set` (STATIC_BROKER_CONFIG), the built-in default
//! (DEFAULT_CONFIG). Only the configs this broker applies at run time are dynamic:
//! every other broker config is refused with INVALID_CONFIG.

use super::{BrokerConfig, ConfigError, TOPIC_CONFIGS, broker_config_def, validate_value};
use std::collections::BTreeMap;

/// Dynamic broker configs besides the topic configs' broker synonyms (`log.*`,
/// `message.max.bytes`, `compression.type`, ...), which are dynamic (but for the two
/// the controller reads): each new value reaches every partition's log at the next
/// metadata pass.
pub const OTHER_DYNAMIC_CONFIGS: &[&str] = &[
    "log.retention.minutes",
    "log.retention.hours",
    "log.roll.hours",
    // Replication throttles (KIP-73), per broker: applied to the replicas named in a
    // topic's `*.replication.throttled.replicas`.
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];

/// Topic configs' broker synonyms the controller plans with at start-up: static here.
const CONTROLLER_READ: &[&str] = &["min.insync.replicas", "unclean.leader.election.enable"];

/// Whether `name` may be changed without a restart.
pub fn is_dynamic(name: &str) -> bool {
    OTHER_DYNAMIC_CONFIGS.contains(&name)
        || (!CONTROLLER_READ.contains(&name)
            && TOPIC_CONFIGS
                .iter()
                .any(|config| config.broker_name == Some(name)))
}

/// Where a broker config's value comes from, as DescribeConfigs names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    DynamicBroker,
    DynamicDefault,
    Static,
    Default,
}

impl Source {
    /// Kafka's ConfigSource code.
    pub fn code(self) -> i8 {
        match self {
            Source::DynamicBroker => 2,
            Source::DynamicDefault => 3,
            Source::Static => 4,
            Source::Default => 5,
        }
    }
}

/// The layers a broker's config is resolved from.
pub struct Layers<'a> {
    pub per_broker: Option<&'a BTreeMap<String, String>>,
    pub cluster_default: Option<&'a BTreeMap<String, String>>,
    pub static_explicit: &'a BTreeMap<String, String>,
    pub default: Option<&'a str>,
}

impl Layers<'_> {
    /// Every value `name` has, highest precedence first (Kafka's synonyms).
    pub fn synonyms(&self, name: &str) -> Vec<(String, Source)> {
        let mut found = Vec::new();
        if let Some(value) = self.per_broker.and_then(|configs| configs.get(name)) {
            found.push((value.clone(), Source::DynamicBroker));
        }
        if let Some(value) = self.cluster_default.and_then(|configs| configs.get(name)) {
            found.push((value.clone(), Source::DynamicDefault));
        }
        if let Some(value) = self.static_explicit.get(name) {
            found.push((value.clone(), Source::Static));
        }
        if let Some(value) = self.default {
            found.push((value.to_string(), Source::Default));
        }
        found
    }

    /// The value in effect and where it comes from.
    pub fn resolve(&self, name: &str) -> Option<(String, Source)> {
        self.synonyms(name).into_iter().next()
    }
}

/// Checks a set of dynamic configs for a BROKER resource: each known, dynamic and valid.
pub fn validate(configs: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for (key, value) in configs {
        let config = broker_config_def(key).ok_or_else(|| ConfigError::UnknownKey { key: key.clone() })?;
        if !is_dynamic(key) {
            return Err(ConfigError::InvalidValue {
                key: key.clone(),
                value: value.clone(),
                reason:
                    "cannot be updated dynamically (a read-only broker config: set it in the config file)"
                        .into(),
            });
        }
        validate_value(config, value)?;
    }
    Ok(())
}

impl BrokerConfig {
    /// This config with the dynamic layers over it: the cluster default, then this
    /// broker's own values. Values that no longer validate are skipped (logged), so a
    /// bad record can never stop a broker.
    pub fn with_dynamic(
        &self,
        cluster_default: Option<&BTreeMap<String, String>>,
        per_broker: Option<&BTreeMap<String, String>>,
    ) -> BrokerConfig {
        let mut explicit = self.explicit.clone();
        for layer in [cluster_default, per_broker].into_iter().flatten() {
            for (key, value) in layer {
                let valid = is_dynamic(key)
                    && broker_config_def(key).is_some_and(|config| validate_value(config, value).is_ok());
                if valid {
                    explicit.insert(key.clone(), value.clone());
                } else {
                    tracing::warn!(key, value, "ignoring an invalid dynamic broker config");
                }
            }
        }
        match BrokerConfig::from_explicit(explicit) {
            Ok(mut config) => {
                // `value()` reports the static layer as set: keep the file's own keys.
                config.explicit = self.explicit.clone();
                config
            }
            Err(error) => {
                tracing::warn!(%error, "ignoring dynamic broker configs that do not apply");
                self.clone()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn precedence_is_broker_then_cluster_default_then_static_then_default() {
        let broker = map(&[("log.retention.ms", "1000")]);
        let cluster = map(&[("log.retention.ms", "2000"), ("log.segment.bytes", "4096")]);
        let file = map(&[("log.retention.ms", "3000"), ("log.segment.bytes", "8192")]);
        let layers = Layers {
            per_broker: Some(&broker),
            cluster_default: Some(&cluster),
            static_explicit: &file,
            default: Some("604800000"),
        };
        assert_eq!(
            layers.synonyms("log.retention.ms"),
            vec![
                ("1000".to_string(), Source::DynamicBroker),
                ("2000".to_string(), Source::DynamicDefault),
                ("3000".to_string(), Source::Static),
                ("604800000".to_string(), Source::Default),
            ]
        );
        let no_broker = Layers {
            per_broker: None,
            ..layers
        };
        assert_eq!(
            no_broker.resolve("log.segment.bytes"),
            Some(("4096".to_string(), Source::DynamicDefault))
        );
        let nothing = Layers {
            per_broker: None,
            cluster_default: None,
            static_explicit: &BTreeMap::new(),
            default: None,
        };
        assert_eq!(nothing.resolve("log.segment.bytes"), None);
    }

    #[test]
    fn only_configs_applied_at_run_time_are_dynamic() {
        assert!(is_dynamic("log.retention.ms"));
        assert!(is_dynamic("message.max.bytes"));
        assert!(is_dynamic("follower.replication.throttled.rate"));
        assert!(!is_dynamic("listeners"));
        assert!(!is_dynamic("log.dirs"));
        assert!(!is_dynamic("min.insync.replicas"), "the controller's");
        assert!(validate(&map(&[("log.retention.ms", "60000")])).is_ok());
        assert!(validate(&map(&[("log.retention.ms", "x")])).is_err());
        assert!(validate(&map(&[("node.id", "4")])).is_err(), "static");
        assert!(validate(&map(&[("no.such.config", "1")])).is_err());
    }

    #[test]
    fn the_dynamic_layers_reach_the_log_defaults() {
        let base = BrokerConfig::from_explicit(map(&[("log.retention.ms", "3000")])).unwrap();
        let cluster = map(&[("log.retention.ms", "2000"), ("log.segment.bytes", "4096")]);
        let broker = map(&[("log.retention.ms", "1000")]);
        let both = base.with_dynamic(Some(&cluster), Some(&broker));
        assert_eq!(both.log.retention_ms, 1000);
        assert_eq!(both.log.segment_bytes, 4096);
        let default_only = base.with_dynamic(Some(&cluster), None);
        assert_eq!(default_only.log.retention_ms, 2000);
        // A static config in a dynamic layer (a bad record) is ignored.
        let bad = base.with_dynamic(Some(&map(&[("node.id", "9")])), None);
        assert_eq!(bad.node_id, base.node_id);
    }
}
