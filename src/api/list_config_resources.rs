//! ListConfigResources (API 74; v0 as ListClientMetricsResources, KIP-714; v1 KIP-1142):
//! the names of the resources configs can be described for, by type. v0 asks for client
//! metrics resources only; v1 names types, none meaning every type the broker knows.
//! Topics are every topic, brokers and broker loggers every registered broker, groups
//! every group with config overrides. This broker keeps no client-metrics configs, so
//! that type lists nothing. The caller needs DESCRIBE_CONFIGS on the cluster, as in
//! Kafka.

use super::RequestContext;
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::protocol::StrBytes;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;
const KNOWN_TYPES: [i8; 5] = [TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP];

pub fn handle(ctx: &RequestContext<'_>, request: ListConfigResourcesRequest) -> ListConfigResourcesResponse {
    let response = ListConfigResourcesResponse::default();
    if !ctx.allowed_on_cluster(Operation::DescribeConfigs) {
        return response.with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let types: Vec<i8> = if ctx.version == 0 {
        vec![CLIENT_METRICS]
    } else if request.resource_types.is_empty() {
        KNOWN_TYPES.to_vec()
    } else {
        request.resource_types.clone()
    };
    if types.iter().any(|kind| !KNOWN_TYPES.contains(kind)) {
        return response.with_error_code(ResponseError::UnsupportedVersion.code());
    }
    let image = ctx.broker.image();
    let mut resources = Vec::new();
    let mut add = |name: String, kind: i8| {
        resources.push(
            ConfigResource::default()
                .with_resource_name(StrBytes::from_string(name))
                .with_resource_type(kind),
        );
    };
    if types.contains(&TOPIC) {
        image.topics.keys().for_each(|name| add(name.clone(), TOPIC));
    }
    for kind in [BROKER, BROKER_LOGGER] {
        if types.contains(&kind) {
            image.brokers.keys().for_each(|id| add(id.to_string(), kind));
        }
    }
    if types.contains(&GROUP) {
        image
            .group_configs
            .keys()
            .for_each(|name| add(name.clone(), GROUP));
    }
    response.with_config_resources(resources)
}
