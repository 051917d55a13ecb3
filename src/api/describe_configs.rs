//! DescribeConfigs (key 32): topic configs (override, broker-set or default, with
//! synonyms on request), group configs (GROUP_CONFIG overrides over the broker's group
//! settings), this broker's configs (dynamic per broker, dynamic cluster default,
//! static, default: KIP-226) and its loggers.

use super::create_topics::resolved_topic_configs;
use super::{RequestContext, error_code};
use crate::config::{ConfigKind, GROUP_CONFIGS, TOPIC_CONFIGS};
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
pub const RESOURCE_GROUP: i8 = 32;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_GROUP: i8 = 8;
const SOURCE_BROKER_LOGGER: i8 = 6;

/// Kafka's ConfigType codes.
fn config_type(kind: ConfigKind) -> i8 {
    match kind {
        ConfigKind::Bool => 1,
        ConfigKind::Text | ConfigKind::Choice(_) => 2,
        ConfigKind::Int { .. } => 3,
        ConfigKind::Long { .. } => 5,
        ConfigKind::Double { .. } => 6,
        ConfigKind::ChoiceList(_) => 7,
    }
}

fn wanted(keys: &Option<Vec<StrBytes>>, name: &str) -> bool {
    keys.as_ref()
        .is_none_or(|keys| keys.iter().any(|key| key.as_str() == name))
}

fn entry(
    name: &str,
    value: Option<String>,
    source: i8,
    kind: ConfigKind,
    read_only: bool,
) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value(value.map(StrBytes::from_string))
        .with_config_source(source)
        .with_read_only(read_only)
        .with_config_type(config_type(kind))
}

/// A BROKER resource: this broker's configs (`name` its id) with their sources in
/// Kafka's precedence (dynamic per broker, dynamic cluster default, static, default),
/// or the cluster-wide dynamic defaults alone (`name` empty). Read-only unless dynamic.
fn broker_configs(
    ctx: &RequestContext<'_>,
    name: &str,
    keys: &Option<Vec<StrBytes>>,
    include_synonyms: bool,
) -> Vec<DescribeConfigsResourceResult> {
    use crate::config::dynamic::{self, Layers, Source};
    let broker = ctx.broker;
    let image = broker.image();
    let cluster_default = image.broker_configs.get("");
    if name.is_empty() {
        return cluster_default
            .into_iter()
            .flatten()
            .filter(|(key, _)| wanted(keys, key))
            .filter_map(|(key, value)| {
                let config = crate::config::broker_config_def(key)?;
                Some(entry(
                    key,
                    Some(value.clone()),
                    Source::DynamicDefault.code(),
                    config.kind,
                    false,
                ))
            })
            .collect();
    }
    let per_broker = image.broker_configs.get(name);
    crate::config::all_broker_configs()
        .filter(|config| wanted(keys, config.name))
        .map(|config| {
            let default = broker
                .config
                .value(config.name)
                .and_then(|(value, explicit)| (!explicit).then_some(value));
            let layers = Layers {
                per_broker,
                cluster_default,
                static_explicit: &broker.config.explicit,
                default: default.as_deref(),
            };
            let synonyms = layers.synonyms(config.name);
            let (value, source) = synonyms
                .first()
                .map_or((None, Source::Default), |(value, source)| {
                    (Some(value.clone()), *source)
                });
            let mut item = entry(
                config.name,
                value,
                source.code(),
                config.kind,
                !dynamic::is_dynamic(config.name),
            );
            if include_synonyms {
                item = item.with_synonyms(
                    synonyms
                        .into_iter()
                        .map(|(value, source)| {
                            DescribeConfigsSynonym::default()
                                .with_name(StrBytes::from_string(config.name.to_string()))
                                .with_value(Some(StrBytes::from_string(value)))
                                .with_source(source.code())
                        })
                        .collect(),
                );
            }
            item
        })
        .collect()
}

/// BROKER_LOGGER: `root` and the loggers whose level was set at run time.
fn logger_configs(keys: &Option<Vec<StrBytes>>) -> Vec<DescribeConfigsResourceResult> {
    crate::common::log_levels::levels()
        .into_iter()
        .filter(|(logger, _)| wanted(keys, logger))
        .map(|(logger, level)| {
            entry(
                &logger,
                Some(level),
                SOURCE_BROKER_LOGGER,
                ConfigKind::Text,
                false,
            )
        })
        .collect()
}

pub fn handle(ctx: &RequestContext<'_>, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let broker = ctx.broker;
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let denied = match resource.resource_type {
                RESOURCE_TOPIC => !ctx.allowed(
                    Operation::DescribeConfigs,
                    ResourceType::Topic,
                    &resource.resource_name,
                ),
                RESOURCE_GROUP => !ctx.allowed(
                    Operation::DescribeConfigs,
                    ResourceType::Group,
                    &resource.resource_name,
                ),
                _ => !ctx.allowed_on_cluster(Operation::DescribeConfigs),
            };
            if denied {
                let code = if resource.resource_type == RESOURCE_TOPIC {
                    kafka_protocol::ResponseError::TopicAuthorizationFailed.code()
                } else if resource.resource_type == RESOURCE_GROUP {
                    kafka_protocol::ResponseError::GroupAuthorizationFailed.code()
                } else {
                    kafka_protocol::ResponseError::ClusterAuthorizationFailed.code()
                };
                return result.with_error_code(code);
            }
            match resource.resource_type {
                RESOURCE_TOPIC => {
                    let Some(topic) = broker.topic(&resource.resource_name) else {
                        return result
                            .with_error_code(error_code::UNKNOWN_TOPIC_OR_PARTITION)
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "unknown topic `{}`",
                                resource.resource_name
                            ))));
                    };
                    let configs = resolved_topic_configs(broker, &topic.configs)
                        .into_iter()
                        .zip(TOPIC_CONFIGS)
                        .filter(|((name, _, _), _)| wanted(&resource.configuration_keys, name))
                        .map(|((name, value, source), config)| {
                            let mut item = entry(name, value.clone(), source, config.kind, false);
                            if request.include_synonyms {
                                let mut synonyms = Vec::new();
                                if let Some(value) = topic.configs.get(name) {
                                    synonyms.push((name.to_string(), Some(value.clone()), 1));
                                }
                                if let Some(broker_name) = config.broker_name
                                    && let Some((value, explicit)) = broker.config.value(broker_name)
                                {
                                    let source = if explicit {
                                        SOURCE_STATIC_BROKER
                                    } else {
                                        SOURCE_DEFAULT
                                    };
                                    synonyms.push((broker_name.to_string(), Some(value), source));
                                }
                                item = item.with_synonyms(
                                    synonyms
                                        .into_iter()
                                        .map(|(name, value, source)| {
                                            DescribeConfigsSynonym::default()
                                                .with_name(StrBytes::from_string(name))
                                                .with_value(value.map(StrBytes::from_string))
                                                .with_source(source)
                                        })
                                        .collect(),
                                );
                            }
                            item
                        })
                        .collect();
                    result.with_configs(configs)
                }
                RESOURCE_GROUP => {
                    let overrides = broker
                        .image()
                        .group_configs
                        .get(resource.resource_name.as_str())
                        .cloned()
                        .unwrap_or_default();
                    let configs = GROUP_CONFIGS
                        .iter()
                        .filter(|config| wanted(&resource.configuration_keys, config.name))
                        .map(|config| {
                            let (value, source) = match (overrides.get(config.name), config.broker_name) {
                                (Some(value), _) => (Some(value.clone()), SOURCE_GROUP),
                                (None, Some(broker_name)) => match broker.config.value(broker_name) {
                                    Some((value, true)) => (Some(value), SOURCE_STATIC_BROKER),
                                    Some((value, false)) => (Some(value), SOURCE_DEFAULT),
                                    None => (None, SOURCE_DEFAULT),
                                },
                                (None, None) => (config.default.map(str::to_string), SOURCE_DEFAULT),
                            };
                            entry(config.name, value, source, config.kind, false)
                        })
                        .collect();
                    result.with_configs(configs)
                }
                RESOURCE_BROKER | RESOURCE_BROKER_LOGGER
                    if resource.resource_name.is_empty()
                        || resource.resource_name.as_str() == broker.config.node_id.to_string() =>
                {
                    let configs = if resource.resource_type == RESOURCE_BROKER_LOGGER {
                        logger_configs(&resource.configuration_keys)
                    } else {
                        broker_configs(ctx, &resource.resource_name, &resource.configuration_keys, request.include_synonyms)
                    };
                    result.with_configs(configs)
                }
                _ => result
                    .with_error_code(error_code::INVALID_REQUEST)
                    .with_error_message(Some(StrBytes::from_static_str(
                        "only topic and group configs, and this broker's configs and loggers, can be described",
                    ))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
