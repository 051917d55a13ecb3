//! IncrementalAlterConfigs (key 44): SET, DELETE, APPEND and SUBTRACT on topic configs
//! and group configs (KIP-848/KIP-932 per-group overrides, kept in the metadata log).
//! Broker configs are static (set at start-up) and cannot be altered. [`alter_resource`]
//! is shared with the legacy AlterConfigs.

use super::describe_configs::{RESOURCE_GROUP, RESOURCE_TOPIC};
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

/// The configs a resource type has.
pub(super) fn defs_for(resource_type: i8) -> &'static [ConfigDef] {
    if resource_type == RESOURCE_GROUP {
        GROUP_CONFIGS
    } else {
        TOPIC_CONFIGS
    }
}

/// Applies the operations to a copy of the overrides; the error is a message for the client.
pub(super) fn apply(
    current: &BTreeMap<String, String>,
    operations: &[(String, i8, Option<String>)],
    defs: &[ConfigDef],
) -> Result<BTreeMap<String, String>, String> {
    let mut configs = current.clone();
    for (name, operation, value) in operations {
        let Some(config) = defs.iter().find(|config| config.name == name) else {
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
    if resource_type != RESOURCE_TOPIC {
        return Err((
            error_code::INVALID_REQUEST,
            "only topic and group configs can be altered; broker configs are static".into(),
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
        let outcome = alter_resource(
            ctx,
            resource.resource_type,
            &resource.resource_name,
            request.validate_only,
            |current| apply(current, &operations, defs),
        )
        .await;
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
            TOPIC_CONFIGS,
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
                TOPIC_CONFIGS
            )
            .is_err()
        );
        assert!(
            apply(
                &current,
                &[("no.such".into(), SET, Some("1".into()))],
                TOPIC_CONFIGS
            )
            .is_err()
        );
        let group = [(
            "share.auto.offset.reset".to_string(),
            SET,
            Some("earliest".to_string()),
        )];
        assert!(
            apply(&current, &group, TOPIC_CONFIGS).is_err(),
            "not a topic config"
        );
        assert!(apply(&BTreeMap::new(), &group, GROUP_CONFIGS).is_ok());
        let appended = apply(
            &BTreeMap::new(),
            &[("cleanup.policy".into(), APPEND, Some("delete".into()))],
            TOPIC_CONFIGS,
        )
        .unwrap();
        assert_eq!(appended.get("cleanup.policy").map(String::as_str), Some("delete"));
    }
}
