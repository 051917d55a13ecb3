//! JoinGroup (key 11): hands the request to the group state machine and waits, if it
//! must, until the rebalance completes. MEMBER_ID_REQUIRED from v4.

use super::RequestContext;
use crate::common::{ErrorCode, now_ms};
use crate::group::coordinator::Wait;
use crate::group::state::{JoinRequest, JoinResult};
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

fn response(result: JoinResult, version: i16) -> JoinGroupResponse {
    let members = result
        .members
        .into_iter()
        .map(|(member_id, group_instance_id, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(member_id))
                .with_group_instance_id(if version >= 5 {
                    group_instance_id.map(StrBytes::from_string)
                } else {
                    None
                })
                .with_metadata(metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(result.error.code())
        .with_generation_id(result.generation_id)
        .with_protocol_type(if version >= 7 {
            result.protocol_type.map(StrBytes::from_string)
        } else {
            None
        })
        .with_protocol_name(result.protocol_name.map(StrBytes::from_string))
        .with_leader(StrBytes::from_string(result.leader_id))
        .with_skip_assignment(version >= 9 && result.skip_assignment)
        .with_member_id(StrBytes::from_string(result.member_id))
        .with_members(members)
}

pub async fn handle(ctx: &RequestContext<'_>, request: JoinGroupRequest) -> JoinGroupResponse {
    let version = ctx.version;
    let error = |code: ErrorCode| {
        response(
            JoinResult {
                error: code,
                member_id: request.member_id.to_string(),
                generation_id: -1,
                ..Default::default()
            },
            version,
        )
    };
    if !ctx.allowed(Operation::Read, ResourceType::Group, &request.group_id) {
        return error(ResponseError::GroupAuthorizationFailed.into());
    }
    if request.group_id.is_empty() {
        return error(ResponseError::InvalidGroupId.into());
    }
    if let Err(code) = crate::group::host::check_coordinator(ctx.broker.as_ref(), &request.group_id).await {
        return error(code);
    }
    let rebalance_timeout_ms = if version >= 1 {
        request.rebalance_timeout_ms
    } else {
        request.session_timeout_ms
    };
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|id| id.to_string()),
        client_id: ctx.header.client_id.as_deref().unwrap_or_default().to_string(),
        client_host: ctx.client_host.clone(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms,
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|protocol| (protocol.name.to_string(), protocol.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    match ctx.broker.groups.join(&request.group_id, join, now_ms()) {
        Wait::Now(result) => response(result, version),
        Wait::Later(receiver) => match receiver.await {
            Ok(result) => response(result, version),
            // The wait was replaced by a newer JoinGroup of the same member.
            Err(_) => error(ResponseError::RebalanceInProgress.into()),
        },
    }
}
