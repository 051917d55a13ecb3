//! ApiVersions (key 18): the supported ranges, generated from `SUPPORTED_APIS`.
//!
//! From v3 the response carries, in its tagged fields, the feature levels of what is
//! built here: `group.version` 1 (KIP-848) and `share.version` 1 (KIP-932), supported
//! and finalized, as Kafka 4.2 advertises them. Debian's kcat (librdkafka 2.0.2) reads
//! them (compat/kcat runs against it); the other tagged fields keep their defaults and
//! are not written.

use super::{RequestContext, SUPPORTED_APIS, error_code};
use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|(key, min, max)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect()
}

/// The feature levels Kafka 4.2 advertises for what is built here: KIP-848 consumer
/// groups (`group.version` 1) and KIP-932 share groups (`share.version` 1).
const FEATURES: &[(&str, i16, i16)] = &[("group.version", 0, 1), ("share.version", 0, 1)];

pub fn handle(ctx: &RequestContext<'_>, _request: ApiVersionsRequest) -> ApiVersionsResponse {
    let response = ApiVersionsResponse::default().with_api_keys(api_keys());
    if ctx.version < 3 {
        return response;
    }
    response
        .with_supported_features(
            FEATURES
                .iter()
                .map(|(name, min, max)| {
                    SupportedFeatureKey::default()
                        .with_name(StrBytes::from_static_str(name))
                        .with_min_version(*min)
                        .with_max_version(*max)
                })
                .collect(),
        )
        .with_finalized_features_epoch(ctx.broker.image().offset.max(0))
        .with_finalized_features(
            FEATURES
                .iter()
                .map(|(name, _, max)| {
                    FinalizedFeatureKey::default()
                        .with_name(StrBytes::from_static_str(name))
                        .with_min_version_level(*max)
                        .with_max_version_level(*max)
                })
                .collect(),
        )
}

/// The v0 answer to an ApiVersions request of a version the broker does not know.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(error_code::UNSUPPORTED_VERSION)
        .with_api_keys(api_keys())
}
