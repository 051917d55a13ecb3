//! SyncGroup (key 14): the leader hands in every member's assignment; each member waits
//! for its own. Protocol type and name are checked (v5) and echoed.

use super::RequestContext;
use crate::common::now_ms;
use crate::group::coordinator::{SyncRequest, Wait};
use crate::group::state::SyncResult;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

fn response(result: SyncResult, version: i16) -> SyncGroupResponse {
    let (protocol_type, protocol_name) = if version >= 5 {
        (
            result.protocol_type.map(StrBytes::from_string),
            result.protocol_name.map(StrBytes::from_string),
        )
    } else {
        (None, None)
    };
    SyncGroupResponse::default()
        .with_error_code(result.error.code())
        .with_protocol_type(protocol_type)
        .with_protocol_name(protocol_name)
        .with_assignment(result.assignment)
}

pub async fn handle(ctx: &RequestContext<'_>, request: SyncGroupRequest) -> SyncGroupResponse {
    if !ctx.allowed(Operation::Read, ResourceType::Group, &request.group_id) {
        return SyncGroupResponse::default()
            .with_error_code(kafka_protocol::ResponseError::GroupAuthorizationFailed.code());
    }
    if let Err(code) = crate::group::host::check_coordinator(ctx.broker.as_ref(), &request.group_id).await {
        return SyncGroupResponse::default().with_error_code(code.code());
    }
    let sync = SyncRequest {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|id| id.to_string()),
        generation_id: request.generation_id,
        protocol_type: request.protocol_type.as_ref().map(|name| name.to_string()),
        protocol_name: request.protocol_name.as_ref().map(|name| name.to_string()),
        assignments: request
            .assignments
            .iter()
            .map(|assignment| (assignment.member_id.to_string(), assignment.assignment.clone()))
            .collect(),
    };
    let wait = ctx.broker.groups.sync(&request.group_id, sync, now_ms());
    let result = match wait {
        Wait::Now(result) => result,
        Wait::Later(receiver) => receiver.await.unwrap_or(SyncResult {
            error: ResponseError::RebalanceInProgress.into(),
            ..Default::default()
        }),
    };
    response(result, ctx.version)
}
