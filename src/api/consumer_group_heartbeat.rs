//! ConsumerGroupHeartbeat (key 68): KIP-848's one request of a consumer group member:
//! it joins (epoch 0), keeps its session, reports what it owns, and hears its member
//! epoch and its assignment; epoch -1 leaves, -2 leaves for now (a static member).

use super::RequestContext;
use crate::common::now_ms;
use crate::group::consumer::Heartbeat;
use crate::group::consumer::assignor::Assignment;
use crate::group::consumer_coordinator::topics_view;
use crate::group::overrides::GroupOverrides;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as WireAssignment, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

fn refused(code: i16, message: Option<String>) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code)
        .with_error_message(message.map(StrBytes::from_string))
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
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
    if let Some(names) = &request.subscribed_topic_names {
        let denied = names
            .iter()
            .any(|name| !ctx.allowed(Operation::Describe, ResourceType::Topic, name));
        if denied {
            return refused(ResponseError::TopicAuthorizationFailed.code(), None);
        }
    }
    if let Err(code) = crate::group::host::check_coordinator(ctx.broker.as_ref(), &group_id).await {
        return refused(code.code(), None);
    }
    let owned = request.topic_partitions.map(|topics| {
        let mut owned = Assignment::new();
        for topic in topics {
            owned.entry(topic.topic_id).or_default().extend(topic.partitions);
        }
        owned
    });
    let heartbeat = Heartbeat {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.map(|id| id.to_string()),
        rack_id: request.rack_id.map(|id| id.to_string()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|name| name.to_string()).collect()),
        subscribed_topic_regex: request.subscribed_topic_regex.map(|regex| regex.to_string()),
        server_assignor: request.server_assignor.map(|name| name.to_string()),
        owned,
        client_id: ctx.header.client_id.as_deref().unwrap_or_default().to_string(),
        client_host: ctx.client_host.clone(),
    };
    if let Some(name) = &heartbeat.server_assignor {
        let known = crate::group::consumer::assignor::AssignorKind::from_name(name)
            .is_some_and(|kind| ctx.broker.groups.config.consumer.assignors.contains(&kind));
        if !known {
            return refused(
                ResponseError::UnsupportedAssignor.code(),
                Some(format!("ServerAssignor {name} is not supported.")),
            );
        }
    }
    let topics = topics_view(&ctx.broker.image());
    let overrides = GroupOverrides::parse(ctx.broker.image().group_configs.get(group_id.as_str()));
    let answer = ctx
        .broker
        .groups
        .consumer_heartbeat(&group_id, heartbeat, &topics, &overrides, now_ms())
        .await;
    let assignment = answer.assignment.map(|assignment| {
        WireAssignment::default().with_topic_partitions(
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
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(answer.error.code())
        .with_error_message(answer.message.map(StrBytes::from_string))
        .with_member_id(Some(StrBytes::from_string(answer.member_id)))
        .with_member_epoch(answer.member_epoch)
        .with_heartbeat_interval_ms(answer.heartbeat_interval_ms)
        .with_assignment(assignment)
}
