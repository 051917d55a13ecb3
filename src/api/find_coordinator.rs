//! FindCoordinator (key 10): a group's coordinator is the broker that leads the group's
//! `__consumer_offsets` partition (created on first use); while that partition has no
//! live leader the answer is COORDINATOR_NOT_AVAILABLE, which clients retry.
//! A transactional id's coordinator (key type 1) is the leader of the id's
//! `__transaction_state` partition, likewise. A share-partition's share coordinator
//! (key type 2, key `group:topic_id:partition`, ClusterAction) is the leader of its
//! `__share_group_state` partition. v4+ batches keys.

use super::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
const KEY_TYPE_SHARE: i8 = 2;

/// (error code, message, node id, host, port) for one key.
async fn locate(
    ctx: &RequestContext<'_>,
    key_type: i8,
    key: &str,
) -> (i16, Option<StrBytes>, i32, String, i32) {
    let unavailable = |message: &'static str| {
        (
            ResponseError::CoordinatorNotAvailable.code(),
            Some(StrBytes::from_static_str(message)),
            -1,
            String::new(),
            -1,
        )
    };
    if key_type == KEY_TYPE_TRANSACTION {
        if !ctx.allowed(Operation::Describe, ResourceType::TransactionalId, key) {
            return (
                ResponseError::TransactionalIdAuthorizationFailed.code(),
                Some(StrBytes::from_static_str(
                    "not authorized to describe the transactional id",
                )),
                -1,
                String::new(),
                -1,
            );
        }
        return match ctx.broker.transactions.coordinator_of(key, ctx.listener).await {
            Ok(Some((node_id, endpoint))) => (0, None, node_id, endpoint.host, endpoint.port as i32),
            Ok(None) => unavailable("the transactional id's state partition has no live leader"),
            Err(code) => (
                code.code(),
                Some(StrBytes::from_static_str(
                    "the transaction state topic cannot be created",
                )),
                -1,
                String::new(),
                -1,
            ),
        };
    }
    if key_type == KEY_TYPE_SHARE {
        if !ctx.allowed_on_cluster(Operation::ClusterAction) {
            return (
                ResponseError::ClusterAuthorizationFailed.code(),
                Some(StrBytes::from_static_str("share coordinators are for brokers")),
                -1,
                String::new(),
                -1,
            );
        }
        let broker = ctx.broker.as_ref();
        let n_partitions =
            match crate::group::share_state::ShareStateLog::share_state_partitions(broker).await {
                Ok(n_partitions) => n_partitions,
                Err(code) => {
                    return (
                        code.code(),
                        Some(StrBytes::from_static_str(
                            "the share state topic cannot be created",
                        )),
                        -1,
                        String::new(),
                        -1,
                    );
                }
            };
        let index = crate::group::offsets::partition_for(key, n_partitions);
        return match broker.image().live_leader(
            crate::group::share_state::SHARE_STATE_TOPIC,
            index,
            ctx.listener,
        ) {
            Some((node_id, endpoint)) => (0, None, node_id, endpoint.host, endpoint.port as i32),
            None => unavailable("the share-partition's state partition has no live leader"),
        };
    }
    if key_type != KEY_TYPE_GROUP {
        return (
            ResponseError::InvalidRequest.code(),
            Some(StrBytes::from_static_str("unknown coordinator key type")),
            -1,
            String::new(),
            -1,
        );
    }
    if !ctx.allowed(Operation::Describe, ResourceType::Group, key) {
        return (
            ResponseError::GroupAuthorizationFailed.code(),
            Some(StrBytes::from_static_str("not authorized to describe the group")),
            -1,
            String::new(),
            -1,
        );
    }
    match crate::group::host::coordinator_of(ctx.broker.as_ref(), key, ctx.listener).await {
        Ok(Some((node_id, endpoint))) => (0, None, node_id, endpoint.host, endpoint.port as i32),
        Ok(None) => unavailable("the group's offsets partition has no live leader"),
        Err(code) => (
            code.code(),
            Some(StrBytes::from_static_str("the offsets topic cannot be created")),
            -1,
            String::new(),
            -1,
        ),
    }
}

pub async fn handle(ctx: &RequestContext<'_>, request: FindCoordinatorRequest) -> FindCoordinatorResponse {
    if ctx.version >= 4 {
        let mut coordinators = Vec::with_capacity(request.coordinator_keys.len());
        for key in request.coordinator_keys {
            let (code, message, node_id, host, port) = locate(ctx, request.key_type, &key).await;
            coordinators.push(
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(node_id))
                    .with_host(StrBytes::from_string(host))
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message),
            );
        }
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let (code, message, node_id, host, port) = locate(ctx, request.key_type, &request.key).await;
    FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_error_message(message)
        .with_node_id(BrokerId(node_id))
        .with_host(StrBytes::from_string(host))
        .with_port(port)
}
