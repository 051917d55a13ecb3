//! IncrementalAlterConfigs (key 44): SET, DELETE, APPEND and SUBTRACT on topic configs,
//! group configs (KIP-848/KIP-932 per-group overrides) and dynamic broker configs
//! (KIP-226: a broker id, or "" for the cluster-wide default), all kept in the metadata
//! log; and BROKER_LOGGER, this broker's log levels (not kept). [`alter_resource`] is
//! shared with the legacy AlterConfigs.

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_GROUP, RESOURCE_TOPIC};
use super::{RequestContext, error_code};
use crate::config::{ConfigDef, ConfigKind, GROUP_CONFIGS, TOPIC_CONFIGS};
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// The configs a resource type has, by name.
pub(super) type Lookup = fn(&str) -> Option<&'static ConfigDef>;

pub(super) fn defs_for(resource_type: i8) -> Lookup {
    match resource_type {
        RESOURCE_GROUP => |name| GROUP_CONFIGS.iter().find(|config| config.name == name),
        RESOURCE_BROKER => crate::config::broker_config_def,
        _ => |name| TOPIC_CONFIGS.iter().find(|config| config.name == name),
    }
}

/// Applies the operations to a copy of the overrides; the error is a message for the client.
pub(super) fn apply(
    current: &BTreeMap<String, String>,
    operations: &[(String, i8, Option<String>)],
    defs: Lookup,
) -> Result<BTreeMap<String, String>, String> {
    let mut configs = current.clone();
    for (name, operation, value) in operations {
        let Some(config) = defs(name) else {
            return Err(format!("unknown config `{name}`"));
        };
        let is_list = matches!(config.kind, ConfigKind::ChoiceList(_));
        let list_of = |configs: &BTreeMap<String, String>| -> Vec<String> {
            configs
                .get(name)
                .map(|value| {
                    value
                        .split(',')
                        .map(|item| item.trim().to_string())
                        .filter(|item| !item.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        match (*operation, value) {
            (SET, Some(value)) => {
                configs.insert(name.clone(), value.clone());
            }
            (DELETE, _) => {
                configs.remove(name);
            }
            (APPEND, Some(value)) if is_list => {
                let mut items = list_of(&configs);
                for item in value.split(',').map(str::trim) {
                    if !items.iter().any(|existing| existing == item) {
                        items.push(item.to_string());
                    }
                }
                configs.insert(name.clone(), items.join(","));
            }
            (SUBTRACT, Some(value)) if is_list => {
                let removed: Vec<&str> = value.split(',').map(str::trim).collect();
                let items: Vec<String> = list_of(&configs)
                    .into_iter()
                    .filter(|item| !removed.contains(&item.as_str()))
                    .collect();
                configs.insert(name.clone(), items.join(","));
            }
            (APPEND | SUBTRACT, _) => return Err(format!("`{name}` is not a list config")),
            _ => return Err(format!("operation {operation} on `{name}` needs a value")),
        }
    }
    Ok(configs)
}

/// Alters one resource's topic or group configs: `change` turns the current overrides
/// into the new ones (or an INVALID_CONFIG message). Broker configs are static. The
/// error is the code and message for the client.
pub(super) async fn alter_resource(
    ctx: &RequestContext<'_>,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String>,
) -> Result<(), (i16, String)> {
    if resource_type == RESOURCE_GROUP {
        if !ctx.allowed(Operation::AlterConfigs, ResourceType::Group, name) {
            return Err((
                ResponseError::GroupAuthorizationFailed.code(),
                format!("not authorized to alter the configs of group `{name}`"),
            ));
        }
        if name.is_empty() {
            return Err((
                error_code::INVALID_REQUEST,
                "a group config needs a group id".into(),
            ));
        }
        let current = ctx
            .broker
            .image()
            .group_configs
            .get(name)
            .cloned()
            .unwrap_or_default();
        let configs = change(&current).map_err(|message| (ResponseError::InvalidConfig.code(), message))?;
        return ctx
            .broker
            .set_group_configs(name, configs, validate_only, super::DEFAULT_ADMIN_TIMEOUT)
            .await
            .map_err(|error| (error.code(), error.to_string()));
    }
    if resource_type == RESOURCE_BROKER {
        if !ctx.allowed_on_cluster(Operation::AlterConfigs) {
            return Err((
                ResponseError::ClusterAuthorizationFailed.code(),
                "not authorized to alter broker configs".into(),
            ));
        }
        // A broker id, or the empty name for the cluster-wide default.
        if !name.is_empty() && name.parse::<u32>().is_err() {
            return Err((
                ResponseError::InvalidRequest.code(),
                format!("`{name}` is not a broker id (or empty, for the cluster-wide default)"),
            ));
        }
        let current = ctx
            .broker
            .image()
            .broker_configs
            .get(name)
            .cloned()
            .unwrap_or_default();
        let configs = change(&current).map_err(|message| (ResponseError::InvalidConfig.code(), message))?;
        return ctx
            .broker
            .set_broker_configs(name, configs, validate_only, super::DEFAULT_ADMIN_TIMEOUT)
            .await
            .map_err(|error| (error.code(), error.to_string()));
    }
    if resource_type != RESOURCE_TOPIC {
        return Err((
            error_code::INVALID_REQUEST,
            format!("config resource type {resource_type} cannot be altered"),
        ));
    }
    if !ctx.allowed(Operation::AlterConfigs, ResourceType::Topic, name) {
        return Err((
            ResponseError::TopicAuthorizationFailed.code(),
            format!("not authorized to alter the configs of `{name}`"),
        ));
    }
    let Some(topic) = ctx.broker.topic(name) else {
        return Err((
            error_code::UNKNOWN_TOPIC_OR_PARTITION,
            format!("unknown topic `{name}`"),
        ));
    };
    let configs = change(&topic.configs).map_err(|message| (ResponseError::InvalidConfig.code(), message))?;
    ctx.broker
        .set_topic_configs(name, configs, validate_only, super::DEFAULT_ADMIN_TIMEOUT)
        .await
        .map_err(|error| (error.code(), error.to_string()))
}

/// BROKER_LOGGER: this broker's log levels, SET or DELETE (back to the root level);
/// applied at once and not persisted, as in Kafka. The resource names a broker: a
/// request for another one is refused (clients send it to that broker).
fn alter_loggers(
    ctx: &RequestContext<'_>,
    name: &str,
    operations: &[(String, i8, Option<String>)],
    validate_only: bool,
) -> Result<(), (i16, String)> {
    use crate::common::log_levels;
    if !ctx.allowed_on_cluster(Operation::AlterConfigs) {
        return Err((
            ResponseError::ClusterAuthorizationFailed.code(),
            "not authorized to alter log levels".into(),
        ));
    }
    if name != ctx.broker.config.node_id.to_string() {
        return Err((
            ResponseError::InvalidRequest.code(),
            format!(
                "this is broker {}: send BROKER_LOGGER `{name}` to that broker",
                ctx.broker.config.node_id
            ),
        ));
    }
    let mut changes = Vec::with_capacity(operations.len());
    for (logger, operation, value) in operations {
        if !log_levels::valid_logger(logger) {
            return Err((
                ResponseError::InvalidConfig.code(),
                format!("`{logger}` is not a logger name"),
            ));
        }
        match (*operation, value) {
            (SET, Some(level)) if log_levels::valid_level(level) => {
                changes.push((logger.clone(), Some(level.clone())))
            }
            (SET, _) => {
                return Err((
                    ResponseError::InvalidConfig.code(),
                    format!("`{}` is not a log level", value.as_deref().unwrap_or("null")),
                ));
            }
            (DELETE, _) if logger == log_levels::ROOT => {
                return Err((
                    ResponseError::InvalidConfig.code(),
                    "the root logger cannot be removed".into(),
                ));
            }
            (DELETE, _) => changes.push((logger.clone(), None)),
            _ => {
                return Err((
                    ResponseError::InvalidRequest.code(),
                    "BROKER_LOGGER takes only SET and DELETE".into(),
                ));
            }
        }
    }
    if validate_only {
        return Ok(());
    }
    log_levels::apply(&changes).map_err(|message| (ResponseError::InvalidConfig.code(), message))?;
    tracing::info!(?changes, "log levels changed");
    Ok(())
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let operations: Vec<(String, i8, Option<String>)> = resource
            .configs
            .iter()
            .map(|config| {
                (
                    config.name.to_string(),
                    config.config_operation,
                    config.value.as_ref().map(|v| v.to_string()),
                )
            })
            .collect();
        let defs = defs_for(resource.resource_type);
        let outcome = if resource.resource_type == RESOURCE_BROKER_LOGGER {
            alter_loggers(ctx, &resource.resource_name, &operations, request.validate_only)
        } else {
            alter_resource(
                ctx,
                resource.resource_type,
                &resource.resource_name,
                request.validate_only,
                |current| apply(current, &operations, defs),
            )
            .await
        };
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        responses.push(match outcome {
            Ok(()) => response,
            Err((code, message)) => response
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_apply_in_order() {
        let current = BTreeMap::from([("retention.ms".to_string(), "5".to_string())]);
        let result = apply(
            &current,
            &[
                ("segment.bytes".into(), SET, Some("1000".into())),
                ("retention.ms".into(), DELETE, None),
            ],
            defs_for(RESOURCE_TOPIC),
        )
        .unwrap();
        assert_eq!(
            result,
            BTreeMap::from([("segment.bytes".to_string(), "1000".to_string())])
        );
        assert!(
            apply(
                &current,
                &[("retention.ms".into(), APPEND, Some("1".into()))],
                defs_for(RESOURCE_TOPIC)
            )
            .is_err()
        );
        assert!(
            apply(
                &current,
                &[("no.such".into(), SET, Some("1".into()))],
                defs_for(RESOURCE_TOPIC)
            )
            .is_err()
        );
        let group = [(
            "share.auto.offset.reset".to_string(),
            SET,
            Some("earliest".to_string()),
        )];
        assert!(
            apply(&current, &group, defs_for(RESOURCE_TOPIC)).is_err(),
            "not a topic config"
        );
        assert!(apply(&BTreeMap::new(), &group, defs_for(RESOURCE_GROUP)).is_ok());
        let appended = apply(
            &BTreeMap::new(),
            &[("cleanup.policy".into(), APPEND, Some("delete".into()))],
            defs_for(RESOURCE_TOPIC),
        )
        .unwrap();
        assert_eq!(appended.get("cleanup.policy").map(String::as_str), Some("delete"));
    }
}
