//! CreateTopics (key 19): partitions, replication factor (more than the live brokers is
//! INVALID_REPLICATION_FACTOR), manual assignments, topic configs and validate_only.
//! The controller places the replicas and commits the topic through the quorum before
//! the answer; with no active controller within the request's timeout the answer is
//! REQUEST_TIMED_OUT.

use super::RequestContext;
use super::error_code;
use crate::broker::TopicError;
use crate::config::{ConfigError, topic_config_def};
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, HashSet};

const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

fn failure(result: CreatableTopicResult, code: i16, message: String) -> CreatableTopicResult {
    result
        .with_error_code(code)
        .with_error_message(Some(StrBytes::from_string(message)))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
}

/// The resolved value and source of every topic config, as CreateTopics v5+ reports them.
pub fn resolved_topic_configs(
    broker: &crate::broker::Broker,
    overrides: &BTreeMap<String, String>,
) -> Vec<(&'static str, Option<String>, i8)> {
    let image = broker.image();
    let own = image.broker_configs.get(&broker.config.node_id.to_string());
    let cluster_default = image.broker_configs.get("");
    crate::config::TOPIC_CONFIGS
        .iter()
        .map(|config| match overrides.get(config.name) {
            Some(value) => (config.name, Some(value.clone()), SOURCE_DYNAMIC_TOPIC),
            None => {
                // A dynamic broker value (KIP-226) comes before the static one.
                let dynamic = config.broker_name.and_then(|name| {
                    own.and_then(|configs| configs.get(name))
                        .map(|value| (value.clone(), crate::config::dynamic::Source::DynamicBroker))
                        .or_else(|| {
                            cluster_default
                                .and_then(|configs| configs.get(name))
                                .map(|value| (value.clone(), crate::config::dynamic::Source::DynamicDefault))
                        })
                });
                if let Some((value, source)) = dynamic {
                    return (config.name, Some(value), source.code());
                }
                let broker_value = config.broker_name.and_then(|name| broker.config.value(name));
                match broker_value {
                    Some((value, true)) => (config.name, Some(value), SOURCE_STATIC_BROKER),
                    Some((value, false)) => (config.name, Some(value), SOURCE_DEFAULT),
                    // A topic default of its own (flush.ms: never), so clients that
                    // read configs back and write them again never meet a null.
                    None => (config.name, config.default.map(str::to_string), SOURCE_DEFAULT),
                }
            }
        })
        .collect()
}

pub async fn handle(ctx: &RequestContext<'_>, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let broker = ctx.broker;
    let timeout = super::controller_timeout(request.timeout_ms);
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = request
        .topics
        .iter()
        .filter(|topic| !seen.insert(topic.name.to_string()))
        .map(|topic| topic.name.to_string())
        .collect();
    let new_partitions: i64 = request
        .topics
        .iter()
        .map(|topic| match (topic.assignments.len(), topic.num_partitions) {
            (0, -1) => broker.config.num_partitions as i64,
            (0, count) => count.max(0) as i64,
            (assigned, _) => assigned as i64,
        })
        .sum();
    let too_many = new_partitions > super::MAX_PARTITIONS_PER_REQUEST;
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.to_string();
        let result = CreatableTopicResult::default().with_name(topic.name.clone());
        if too_many {
            results.push(failure(
                result,
                ResponseError::PolicyViolation.code(),
                super::EXCESSIVE_PARTITIONS.into(),
            ));
            continue;
        }
        if !ctx.allowed_on_cluster(Operation::Create)
            && !ctx.allowed(Operation::Create, ResourceType::Topic, &name)
        {
            results.push(failure(
                result,
                ResponseError::TopicAuthorizationFailed.code(),
                format!("not authorized to create topic `{name}`"),
            ));
            continue;
        }
        if duplicates.contains(&name) {
            results.push(failure(
                result,
                error_code::INVALID_REQUEST,
                format!("topic `{name}` is listed twice"),
            ));
            continue;
        }
        let mutations = match (topic.assignments.len(), topic.num_partitions) {
            (0, -1) => broker.config.num_partitions as i64,
            (0, count) => count.max(0) as i64,
            (assigned, _) => assigned as i64,
        };
        if !request.validate_only && ctx.admit_mutations(mutations, ctx.version >= 6).is_err() {
            results.push(failure(
                result,
                ResponseError::ThrottlingQuotaExceeded.code(),
                "the client is over its controller_mutation_rate quota".into(),
            ));
            continue;
        }
        let mut configs = BTreeMap::new();
        let mut config_error = None;
        for config in &topic.configs {
            match &config.value {
                Some(value) => {
                    configs.insert(config.name.to_string(), value.to_string());
                }
                None => config_error = Some(format!("null value for config `{}`", config.name)),
            }
        }
        if let Some(message) = config_error {
            results.push(failure(result, ResponseError::InvalidConfig.code(), message));
            continue;
        }
        let (partitions, replication_factor) = (topic.num_partitions, topic.replication_factor);
        let mut assignments = None;
        if !topic.assignments.is_empty() {
            if partitions != -1 || replication_factor != -1 {
                results.push(failure(
                    result,
                    error_code::INVALID_REQUEST,
                    "both assignments and partitions/replication factor were given".into(),
                ));
                continue;
            }
            let out_of_order = topic
                .assignments
                .iter()
                .enumerate()
                .any(|(index, assignment)| assignment.partition_index != index as i32);
            if out_of_order {
                results.push(failure(
                    result,
                    ResponseError::InvalidReplicaAssignment.code(),
                    "assignments must name partitions 0.. in order".into(),
                ));
                continue;
            }
            assignments = Some(
                topic
                    .assignments
                    .iter()
                    .map(|assignment| assignment.broker_ids.iter().map(|id| **id).collect())
                    .collect(),
            );
        }
        match broker
            .create_topic(
                &name,
                partitions,
                replication_factor,
                assignments,
                configs,
                request.validate_only,
                timeout,
            )
            .await
        {
            Ok(created) => {
                let configs = resolved_topic_configs(broker, &created.configs)
                    .into_iter()
                    .map(|(name, value, source)| {
                        CreatableTopicConfigs::default()
                            .with_name(StrBytes::from_static_str(name))
                            .with_value(value.map(StrBytes::from_string))
                            .with_config_source(source)
                    })
                    .collect();
                results.push(
                    result
                        .with_topic_id(created.topic_id)
                        .with_num_partitions(created.partitions)
                        .with_replication_factor(created.replication_factor)
                        .with_configs((ctx.version >= 5).then_some(configs)),
                );
            }
            Err(error) => {
                let message = match &error {
                    TopicError::InvalidConfig(ConfigError::UnknownKey { key })
                        if topic_config_def(key).is_none() =>
                    {
                        format!("unknown topic config `{key}`")
                    }
                    other => other.to_string(),
                };
                results.push(failure(result, error.code(), message));
            }
        }
    }
    CreateTopicsResponse::default()
        .with_throttle_time_ms(ctx.throttle_time_ms())
        .with_topics(results)
}
