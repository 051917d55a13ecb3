//! Heartbeat (key 12): keeps a member's session alive and tells it about rebalances.

use super::RequestContext;
use crate::common::now_ms;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

pub async fn handle(ctx: &RequestContext<'_>, request: HeartbeatRequest) -> HeartbeatResponse {
    if !ctx.allowed(Operation::Read, ResourceType::Group, &request.group_id) {
        return HeartbeatResponse::default()
            .with_error_code(kafka_protocol::ResponseError::GroupAuthorizationFailed.code());
    }
    if let Err(code) = crate::group::host::check_coordinator(ctx.broker.as_ref(), &request.group_id).await {
        return HeartbeatResponse::default().with_error_code(code.code());
    }
    let code = ctx.broker.groups.heartbeat(
        &request.group_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
        now_ms(),
    );
    HeartbeatResponse::default().with_error_code(code.code())
}
