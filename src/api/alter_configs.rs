//! AlterConfigs (key 33, the legacy form): the configs given become the topic's (or group's) whole
//! set of overrides; any override not given goes back to its default, as in Kafka.
//! Validation, authorization and the metadata write are IncrementalAlterConfigs'.

use super::RequestContext;
use super::incremental_alter_configs::{alter_resource, apply, defs_for};
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

/// IncrementalAlterConfigs' SET.
const SET: i8 = 0;

pub async fn handle(ctx: &RequestContext<'_>, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let mut operations = Vec::with_capacity(resource.configs.len());
        let mut null = None;
        for config in &resource.configs {
            match &config.value {
                Some(value) => operations.push((config.name.to_string(), SET, Some(value.to_string()))),
                None => null = Some(config.name.to_string()),
            }
        }
        let defs = defs_for(resource.resource_type);
        let outcome = alter_resource(
            ctx,
            resource.resource_type,
            &resource.resource_name,
            request.validate_only,
            |_| match &null {
                Some(name) => Err(format!("`{name}` has a null value")),
                // Replaces, rather than edits, the overrides.
                None => apply(&BTreeMap::new(), &operations, defs),
            },
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
    AlterConfigsResponse::default().with_responses(responses)
}
