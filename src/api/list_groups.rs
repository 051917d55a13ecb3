//! ListGroups (key 16): every live group, optionally filtered by state (v4+) and type (v5+).

use super::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

pub fn handle(ctx: &RequestContext<'_>, request: ListGroupsRequest) -> ListGroupsResponse {
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|state| state.to_lowercase())
        .collect();
    let types: Vec<String> = request
        .types_filter
        .iter()
        .map(|kind| kind.to_lowercase())
        .collect();
    // Describe on the cluster shows every group; else only those the principal may
    // describe.
    let all_visible = ctx.allowed_on_cluster(Operation::Describe);
    let groups = ctx
        .broker
        .groups
        .list_groups()
        .into_iter()
        .filter(|listed| states.is_empty() || states.contains(&listed.state.to_lowercase()))
        .filter(|listed| types.is_empty() || types.iter().any(|kind| kind == listed.group_type))
        .filter(|listed| {
            all_visible || ctx.allowed(Operation::Describe, ResourceType::Group, &listed.group_id)
        })
        .map(|listed| {
            let entry = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(listed.group_id)))
                .with_protocol_type(StrBytes::from_string(listed.protocol_type));
            let entry = if ctx.version >= 4 {
                entry.with_group_state(StrBytes::from_static_str(listed.state))
            } else {
                entry
            };
            if ctx.version >= 5 {
                entry.with_group_type(StrBytes::from_static_str(listed.group_type))
            } else {
                entry
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
