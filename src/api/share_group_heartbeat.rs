//! ShareGroupHeartbeat (key 76): a KIP-932 share group member joins (epoch 0), keeps
//! its session and hears its assignment; epoch -1 leaves and releases its records.

use super::RequestContext;
use crate::common::now_ms;
use crate::group::consumer_coordinator::topics_view;
use crate::group::overrides::GroupOverrides;
use crate::group::share::group::ShareHeartbeat;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

fn refused(code: i16, message: Option<String>) -> ShareGroupHeartbeatResponse {
    ShareGroupHeartbeatResponse::default()
        .with_error_code(code)
        .with_error_message(message.map(StrBytes::from_string))
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    let group_id = request.group_id.to_string();
    if !ctx.allowed(Operation::Read, ResourceType::Group, &group_id) {
        return refused(ResponseError::GroupAuthorizationFailed.code(), None);
    }
    if group_id.is_empty() {
        return refused(
            ResponseError::InvalidRequest.code(),
            Some("GroupId can't be empty.".into()),
        );
    }
    if let Some(names) = &request.subscribed_topic_names
        && names
            .iter()
            .any(|name| !ctx.allowed(Operation::Describe, ResourceType::Topic, name))
    {
        return refused(ResponseError::TopicAuthorizationFailed.code(), None);
    }
    if let Err(code) = crate::group::host::check_coordinator(ctx.broker.as_ref(), &group_id).await {
        return refused(code.code(), None);
    }
    let heartbeat = ShareHeartbeat {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        rack_id: request.rack_id.map(|id| id.to_string()),
        subscribed_topic_names: request
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|name| name.to_string()).collect()),
        client_id: ctx.header.client_id.as_deref().unwrap_or_default().to_string(),
        client_host: ctx.client_host.clone(),
    };
    let topics = topics_view(&ctx.broker.image());
    let groups = &ctx.broker.groups;
    let overrides = GroupOverrides::parse(ctx.broker.image().group_configs.get(group_id.as_str()));
    let session_timeout_ms = overrides
        .share_session_timeout_ms
        .unwrap_or(groups.config.share_session_timeout_ms);
    let answer = groups.share_heartbeat(&group_id, heartbeat, &topics, session_timeout_ms, now_ms());
    let assignment = answer.assignment.map(|assignment| {
        Assignment::default().with_topic_partitions(
            assignment
                .into_iter()
                .map(|(topic_id, partitions)| {
                    TopicPartitions::default()
                        .with_topic_id(topic_id)
                        .with_partitions(partitions.into_iter().collect())
                })
                .collect(),
        )
    });
    ShareGroupHeartbeatResponse::default()
        .with_error_code(answer.error.code())
        .with_error_message(answer.message.map(StrBytes::from_string))
        .with_member_id(Some(StrBytes::from_string(answer.member_id)))
        .with_member_epoch(answer.member_epoch)
        .with_heartbeat_interval_ms(
            overrides
                .share_heartbeat_interval_ms
                .unwrap_or(groups.config.share_heartbeat_interval_ms),
        )
        .with_assignment(assignment)
}
