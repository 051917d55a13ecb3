//! LeaveGroup (key 13): one member (v0-2) or a batch of members by id or instance id (v3+).

use super::RequestContext;
use crate::common::now_ms;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

pub async fn handle(ctx: &RequestContext<'_>, request: LeaveGroupRequest) -> LeaveGroupResponse {
    if !ctx.allowed(Operation::Read, ResourceType::Group, &request.group_id) {
        return LeaveGroupResponse::default()
            .with_error_code(kafka_protocol::ResponseError::GroupAuthorizationFailed.code());
    }
    if let Err(code) = crate::group::host::check_coordinator(ctx.broker.as_ref(), &request.group_id).await {
        return LeaveGroupResponse::default().with_error_code(code.code());
    }
    let members: Vec<(String, Option<String>)> = if ctx.version >= 3 {
        request
            .members
            .iter()
            .map(|member| {
                (
                    member.member_id.to_string(),
                    member.group_instance_id.as_ref().map(|id| id.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let codes = ctx.broker.groups.leave(&request.group_id, &members, now_ms());
    if ctx.version < 3 {
        return LeaveGroupResponse::default()
            .with_error_code(codes.first().copied().unwrap_or_default().code());
    }
    let responses = request
        .members
        .into_iter()
        .zip(codes)
        .map(|(member, code)| {
            MemberResponse::default()
                .with_member_id(member.member_id)
                .with_group_instance_id(member.group_instance_id)
                .with_error_code(code.code())
        })
        .collect();
    LeaveGroupResponse::default().with_members(responses)
}
