//! DescribeClientQuotas (key 48, KIP-546): the quota entities a filter selects, with
//! their values. A component matches an entity type exactly (match type 0, by name),
//! its default (1) or any name (2); with `strict`, entities with other types are left
//! out.

use super::RequestContext;
use crate::cluster::quotas::{CLIENT_ID, Match, USER};
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;

pub fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let refuse = |code: i16, message: String| {
        DescribeClientQuotasResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)))
            .with_entries(None)
    };
    if !ctx.allowed_on_cluster(Operation::DescribeConfigs) {
        return refuse(
            ResponseError::ClusterAuthorizationFailed.code(),
            "not authorized to describe quotas".into(),
        );
    }
    let mut components = Vec::with_capacity(request.components.len());
    for component in &request.components {
        let entity_type = component.entity_type.as_str();
        if entity_type != USER && entity_type != CLIENT_ID {
            return refuse(
                ResponseError::InvalidRequest.code(),
                format!("entity type `{entity_type}` is not supported (user, client-id)"),
            );
        }
        let wanted = match (component.match_type, &component._match) {
            (0, Some(name)) => Match::Exact(name.to_string()),
            (0, None) | (1, _) => Match::Default,
            (2, _) => Match::Any,
            (other, _) => {
                return refuse(
                    ResponseError::InvalidRequest.code(),
                    format!("match type {other} is not 0 (exact), 1 (default) or 2 (any)"),
                );
            }
        };
        components.push((entity_type.to_string(), wanted));
    }
    let image = ctx.broker.image();
    let entries = image
        .client_quotas
        .matching(&components, request.strict)
        .into_iter()
        .map(|(entity, values)| {
            EntryData::default()
                .with_entity(
                    entity
                        .iter()
                        .map(|(entity_type, name)| {
                            EntityData::default()
                                .with_entity_type(StrBytes::from_string(entity_type.clone()))
                                .with_entity_name(name.clone().map(StrBytes::from_string))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .iter()
                        .map(|(key, value)| {
                            ValueData::default()
                                .with_key(StrBytes::from_string(key.clone()))
                                .with_value(value.0)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}
