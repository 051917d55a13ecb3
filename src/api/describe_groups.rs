//! DescribeGroups (key 15): state, protocol and members (with metadata and assignment
//! once Stable). An unknown group is reported Dead (GROUP_ID_NOT_FOUND from v6), and so
//! is a KIP-848 consumer group ("not a classic group").

use super::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

pub fn handle(ctx: &RequestContext<'_>, request: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            let described = DescribedGroup::default()
                .with_group_id(group_id.clone())
                .with_authorized_operations(i32::MIN);
            if !ctx.allowed(Operation::Describe, ResourceType::Group, &group_id) {
                return described.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            if ctx.broker.groups.is_consumer_group(&group_id) {
                // Kafka's answer: the classic API does not describe a KIP-848 group;
                // admin clients ask ConsumerGroupDescribe.
                return described
                    .with_group_state(StrBytes::from_static_str("Dead"))
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Group {} is not a classic group.",
                        &*group_id
                    ))));
            }
            match ctx.broker.groups.describe(&group_id) {
                None => {
                    let described = described.with_group_state(StrBytes::from_static_str("Dead"));
                    if ctx.version >= 6 {
                        described
                            .with_error_code(ResponseError::GroupIdNotFound.code())
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "group {} not found",
                                &*group_id
                            ))))
                    } else {
                        described
                    }
                }
                Some(description) => described
                    .with_group_state(StrBytes::from_static_str(description.state.name()))
                    .with_protocol_type(StrBytes::from_string(description.protocol_type))
                    .with_protocol_data(StrBytes::from_string(description.protocol_name))
                    .with_members(
                        description
                            .members
                            .into_iter()
                            .map(
                                |(member_id, instance, client_id, client_host, metadata, assignment)| {
                                    DescribedGroupMember::default()
                                        .with_member_id(StrBytes::from_string(member_id))
                                        .with_group_instance_id(if ctx.version >= 4 {
                                            instance.map(StrBytes::from_string)
                                        } else {
                                            None
                                        })
                                        .with_client_id(StrBytes::from_string(client_id))
                                        .with_client_host(StrBytes::from_string(client_host))
                                        .with_member_metadata(metadata)
                                        .with_member_assignment(assignment)
                                },
                            )
                            .collect(),
                    ),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
