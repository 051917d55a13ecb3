//! ShareGroupDescribe (key 77): a share group's state, epochs and members with their
//! subscriptions and assignments.

use super::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::share_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{ShareGroupDescribeRequest, ShareGroupDescribeResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: ShareGroupDescribeRequest,
) -> ShareGroupDescribeResponse {
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
        let Some(group) = ctx.broker.groups.describe_share(&group_id) else {
            groups.push(
                described
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Group {} is not a share group.",
                        &*group_id
                    )))),
            );
            continue;
        };
        let members = group
            .members
            .values()
            .map(|member| {
                let assigned = member
                    .assignment
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
                    .collect();
                Member::default()
                    .with_member_id(StrBytes::from_string(member.member_id.clone()))
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
                    .with_assignment(Assignment::default().with_topic_partitions(assigned))
            })
            .collect();
        groups.push(
            described
                .with_group_state(StrBytes::from_static_str(group.state_name()))
                .with_group_epoch(group.group_epoch)
                .with_assignment_epoch(group.assignment_epoch)
                .with_assignor_name(StrBytes::from_static_str("simple"))
                .with_members(members),
        );
    }
    ShareGroupDescribeResponse::default().with_groups(groups)
}
