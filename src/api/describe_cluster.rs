//! DescribeCluster (API 60, KIP-700): the cluster id, the brokers (on the listener the
//! client came through) and, when asked, the operations the principal may perform on
//! the cluster. Brokers answer for endpoint type 1 (brokers) only, as Kafka's brokers
//! do (KIP-919): controllers are not reachable by clients here. Fenced brokers are
//! listed only when asked (v2). The "controller" is this broker, as in Metadata:
//! clients send admin requests there and it forwards them to the active controller.

use super::RequestContext;
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

/// KIP-919's endpoint type for brokers.
const BROKER_ENDPOINTS: i8 = 1;

/// The cluster operations Kafka reports in authorized-operations bitfields.
const CLUSTER_OPERATIONS: [Operation; 7] = [
    Operation::Create,
    Operation::Alter,
    Operation::Describe,
    Operation::ClusterAction,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
    Operation::IdempotentWrite,
];

pub fn handle(ctx: &RequestContext<'_>, request: DescribeClusterRequest) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default()
        .with_endpoint_type(BROKER_ENDPOINTS)
        .with_cluster_id(StrBytes::from_string(ctx.broker.cluster_id.clone()))
        .with_controller_id(BrokerId(-1))
        .with_cluster_authorized_operations(i32::MIN);
    if request.endpoint_type != BROKER_ENDPOINTS {
        return response
            .with_error_code(ResponseError::MismatchedEndpointType.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "brokers describe broker endpoints (type 1) only",
            )));
    }
    if !ctx.allowed_on_cluster(Operation::Describe) {
        return response
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "not authorized to describe the cluster",
            )));
    }
    let image = ctx.broker.image();
    let brokers = image
        .brokers
        .values()
        .filter(|registered| request.include_fenced_brokers || !registered.fenced)
        .filter_map(|registered| {
            let endpoint = registered.endpoint(ctx.listener)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(registered.broker_id))
                    .with_host(StrBytes::from_string(endpoint.host.clone()))
                    .with_port(endpoint.port as i32)
                    .with_rack(registered.rack.clone().map(StrBytes::from_string))
                    .with_is_fenced(registered.fenced),
            )
        })
        .collect();
    let authorized_operations = if request.include_cluster_authorized_operations {
        CLUSTER_OPERATIONS
            .iter()
            .filter(|operation| ctx.allowed_on_cluster(**operation))
            .fold(0i32, |bits, operation| bits | (1 << operation.code()))
    } else {
        i32::MIN
    };
    response
        .with_controller_id(BrokerId(ctx.broker.config.node_id))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(authorized_operations)
}
