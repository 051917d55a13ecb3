//! FindCoordinator (key 10): this broker coordinates every group (it leads every
//! `__consumer_offsets` partition); transaction coordinators do not exist yet and get
//! COORDINATOR_NOT_AVAILABLE. v4+ batches keys.

use super::RequestContext;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

const KEY_TYPE_GROUP: i8 = 0;

pub async fn handle(ctx: &RequestContext<'_>, request: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let config = &ctx.broker.config;
    let error = if request.key_type != KEY_TYPE_GROUP {
        Some((
            ResponseError::CoordinatorNotAvailable.code(),
            "transactions are not supported",
        ))
    } else {
        match ctx.broker.offsets_topic_partitions().await {
            Ok(_) => None,
            Err(code) => Some((code, "the offsets topic cannot be created")),
        }
    };
    let (code, message, node_id, host, port) = match error {
        None => (
            0,
            None,
            config.node_id,
            config.advertised_host.clone(),
            config.advertised_port as i32,
        ),
        Some((code, message)) => (
            code,
            Some(StrBytes::from_static_str(message)),
            -1,
            String::new(),
            -1,
        ),
    };
    if ctx.version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(node_id))
                    .with_host(StrBytes::from_string(host.clone()))
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message.clone())
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_error_message(message)
        .with_node_id(BrokerId(node_id))
        .with_host(StrBytes::from_string(host))
        .with_port(port)
}
