//! InitProducerId (key 22) for idempotent producers: a fresh producer id with epoch 0,
//! or, when a producer asks to bump its epoch (KIP-360), the same id with the next epoch.
//! Ids come in blocks that the active controller allocates (AllocateProducerIds), so
//! they are unique across the cluster; without a controller the answer is
//! COORDINATOR_NOT_AVAILABLE, which clients retry.
//! Transactions are not supported yet: a transactional id gets COORDINATOR_NOT_AVAILABLE.

use super::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

pub async fn handle(ctx: &RequestContext<'_>, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    match request.transactional_id.as_deref().map(|id| id.as_str()) {
        None => {}
        Some("") => return response.with_error_code(ResponseError::InvalidRequest.code()),
        Some(_) => return response.with_error_code(ResponseError::CoordinatorNotAvailable.code()),
    }
    // IdempotentWrite on the cluster, or Write on some topic, as Kafka checks.
    if !ctx.allowed_on_cluster(Operation::IdempotentWrite)
        && !ctx
            .broker
            .authorize_any(&ctx.principal, ctx.host(), Operation::Write, ResourceType::Topic)
    {
        return response.with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    if *request.producer_id >= 0 && request.producer_epoch >= 0 && request.producer_epoch < i16::MAX - 1 {
        return response
            .with_producer_id(request.producer_id)
            .with_producer_epoch(request.producer_epoch + 1);
    }
    match ctx.broker.new_producer_id().await {
        Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(error) => {
            tracing::warn!(%error, "could not allocate a producer id");
            response.with_error_code(ResponseError::CoordinatorNotAvailable.code())
        }
    }
}
