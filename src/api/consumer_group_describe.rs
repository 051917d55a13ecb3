//! ConsumerGroupDescribe (key 69): a KIP-848 consumer group's state, epochs, assignor
//! and members, each with its subscription, its current and its target assignment.
//! A classic group answers GROUP_ID_NOT_FOUND ("not a consumer group"), as Kafka's does.

use super::RequestContext;
use crate::cluster::image::MetadataImage;
use crate::group::consumer::assignor::Assignment;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as WireAssignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

/// The assignment with topic names (a topic deleted meanwhile is left out).
fn wire(assignment: &Assignment, image: &MetadataImage) -> WireAssignment {
    WireAssignment::default().with_topic_partitions(
        assignment
            .iter()
            .filter_map(|(topic_id, partitions)| {
                let topic = image.topic_by_id(*topic_id)?;
                Some(
                    TopicPartitions::default()
                        .with_topic_id(*topic_id)
                        .with_topic_name(TopicName(StrBytes::from_string(topic.name.clone())))
                        .with_partitions(partitions.iter().copied().collect()),
                )
            })
            .collect(),
    )
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let image = ctx.broker.image();
    let mut groups = Vec::with_capacity(request.group_ids.len());
    for group_id in request.group_ids {
        let described = DescribedGroup::default()
            .with_group_id(group_id.clone())
            .with_authorized_operations(i32::MIN);
        if !ctx.allowed(Operation::Describe, ResourceType::Group, &group_id) {
            groups.push(described.with_error_code(ResponseError::GroupAuthorizationFailed.code()));
            continue;
        }
        if let Err(code) = crate::group::host::check_coordinator(ctx.broker.as_ref(), &group_id).await {
            groups.push(described.with_error_code(code.code()));
            continue;
        }
        let Some(description) = ctx.broker.groups.describe_consumer(&group_id) else {
            let message = if ctx.broker.groups.group_exists(&group_id) {
                format!("Group {} is not a consumer group.", &*group_id)
            } else {
                format!("Group {} not found.", &*group_id)
            };
            groups.push(
                described
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            );
            continue;
        };
        let group = &description.group;
        let members = group
            .members
            .values()
            .map(|member| {
                let target = group.target.get(&member.member_id).cloned().unwrap_or_default();
                Member::default()
                    .with_member_id(StrBytes::from_string(member.member_id.clone()))
                    .with_instance_id(member.instance_id.clone().map(StrBytes::from_string))
                    .with_rack_id(member.rack_id.clone().map(StrBytes::from_string))
                    .with_member_epoch(member.member_epoch)
                    .with_client_id(StrBytes::from_string(member.client_id.clone()))
                    .with_client_host(StrBytes::from_string(member.client_host.clone()))
                    .with_subscribed_topic_names(
                        member
                            .subscribed_topic_names
                            .iter()
                            .map(|name| TopicName(StrBytes::from_string(name.clone())))
                            .collect(),
                    )
                    .with_subscribed_topic_regex(
                        member.subscribed_topic_regex.clone().map(StrBytes::from_string),
                    )
                    .with_assignment(wire(&member.assigned, &image))
                    .with_target_assignment(wire(&target, &image))
                    .with_member_type(if ctx.version >= 1 { 1 } else { -1 })
            })
            .collect();
        groups.push(
            described
                .with_group_state(StrBytes::from_static_str(group.state().name()))
                .with_group_epoch(group.group_epoch)
                .with_assignment_epoch(group.assignment_epoch)
                .with_assignor_name(StrBytes::from_static_str(description.assignor))
                .with_members(members),
        );
    }
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
