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
        .filter(|(_, _, state)| states.is_empty() || states.contains(&state.name().to_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|kind| kind == "classic"))
        .filter(|(group_id, _, _)| {
            all_visible || ctx.allowed(Operation::Describe, ResourceType::Group, group_id)
        })
        .map(|(group_id, protocol_type, state)| {
            let listed = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(group_id)))
                .with_protocol_type(StrBytes::from_string(protocol_type));
            let listed = if ctx.version >= 4 {
                listed.with_group_state(StrBytes::from_static_str(state.name()))
            } else {
                listed
            };
            if ctx.version >= 5 {
                listed.with_group_type(StrBytes::from_static_str("classic"))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
