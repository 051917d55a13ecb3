//! AlterClientQuotas (key 49, KIP-546): set or remove quota values of users, client ids
//! and their defaults (a null name), kept in the metadata log through the active
//! controller. Each entry is checked on its own: a known entity type (`user`,
//! `client-id`), each at most once; a known quota key with a positive value.

use super::RequestContext;
use crate::cluster::quotas::{CLIENT_ID, QUOTA_KEYS, QuotaEntity, USER};
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

type Change = (QuotaEntity, BTreeMap<String, Option<f64>>);

/// An entry's entity and changes, or why it is refused.
fn check(
    entry: &kafka_protocol::messages::alter_client_quotas_request::EntryData,
) -> Result<Change, (i16, String)> {
    let invalid = |message: String| (ResponseError::InvalidRequest.code(), message);
    let mut entity: QuotaEntity = Vec::new();
    for part in &entry.entity {
        let entity_type = part.entity_type.as_str();
        if entity_type != USER && entity_type != CLIENT_ID {
            return Err(invalid(format!(
                "entity type `{entity_type}` is not supported (user, client-id)"
            )));
        }
        if entity.iter().any(|(existing, _)| existing == entity_type) {
            return Err(invalid(format!("entity type `{entity_type}` given twice")));
        }
        entity.push((
            entity_type.to_string(),
            part.entity_name.as_ref().map(|name| name.to_string()),
        ));
    }
    if entity.is_empty() {
        return Err(invalid("an entity needs a user or a client id".into()));
    }
    let mut changes = BTreeMap::new();
    for op in &entry.ops {
        let key = op.key.as_str();
        if !QUOTA_KEYS.contains(&key) {
            return Err(invalid(format!("`{key}` is not a quota of users and client ids")));
        }
        if op.remove {
            changes.insert(key.to_string(), None);
        } else if op.value.is_finite() && op.value > 0.0 {
            changes.insert(key.to_string(), Some(op.value));
        } else {
            return Err(invalid(format!(
                "quota `{key}` must be positive, got {}",
                op.value
            )));
        }
    }
    Ok((entity, changes))
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let allowed = ctx.allowed_on_cluster(Operation::AlterConfigs);
    let mut outcomes: Vec<Result<Change, (i16, String)>> = request
        .entries
        .iter()
        .map(|entry| {
            if allowed {
                check(entry)
            } else {
                Err((
                    ResponseError::ClusterAuthorizationFailed.code(),
                    "not authorized to alter quotas".into(),
                ))
            }
        })
        .collect();
    let changes: Vec<Change> = outcomes
        .iter()
        .filter_map(|outcome| outcome.clone().ok())
        .collect();
    if !changes.is_empty()
        && let Err(error) = ctx
            .broker
            .alter_client_quotas(changes, request.validate_only, super::DEFAULT_ADMIN_TIMEOUT)
            .await
    {
        for outcome in &mut outcomes {
            if outcome.is_ok() {
                *outcome = Err((error.code(), error.to_string()));
            }
        }
    }
    let entries = request
        .entries
        .into_iter()
        .zip(outcomes)
        .map(|(entry, outcome)| {
            let entity = entry
                .entity
                .into_iter()
                .map(|part| {
                    EntityData::default()
                        .with_entity_type(part.entity_type)
                        .with_entity_name(part.entity_name)
                })
                .collect();
            let (code, message) = match outcome {
                Ok(_) => (0, None),
                Err((code, message)) => (code, Some(StrBytes::from_string(message))),
            };
            EntryData::default()
                .with_entity(entity)
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}
