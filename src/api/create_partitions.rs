//! CreatePartitions (key 37): raise a topic's partition count.

use super::{RequestContext, error_code};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

pub async fn handle(ctx: &RequestContext<'_>, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let node_id = ctx.broker.config.node_id;
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        let bad_assignment = topic.assignments.as_ref().is_some_and(|assignments| {
            assignments.iter().any(|assignment| {
                assignment.broker_ids.is_empty() || assignment.broker_ids.iter().any(|id| **id != node_id)
            })
        });
        let result = if bad_assignment {
            result
                .with_error_code(ResponseError::InvalidReplicaAssignment.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "new partitions can only be placed on broker {node_id}"
                ))))
        } else {
            match ctx
                .broker
                .create_partitions(&topic.name, topic.count, request.validate_only)
                .await
            {
                Ok(()) => result,
                Err(error) => result
                    .with_error_code(error_code::topic_error(&error))
                    .with_error_message(Some(StrBytes::from_string(error.to_string()))),
            }
        };
        results.push(result);
    }
    CreatePartitionsResponse::default().with_results(results)
}
