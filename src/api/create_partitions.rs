//! CreatePartitions (key 37): raise a topic's partition count, placing the new
//! partitions on live brokers or by the request's assignments; committed by the
//! controller quorum before the answer.

use super::{RequestContext, controller_timeout, error_code};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

pub async fn handle(ctx: &RequestContext<'_>, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let timeout = controller_timeout(request.timeout_ms);
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        let assignments = topic.assignments.map(|assignments| {
            assignments
                .into_iter()
                .map(|assignment| assignment.broker_ids.into_iter().map(|id| *id).collect())
                .collect()
        });
        let result = match ctx
            .broker
            .create_partitions(
                &topic.name,
                topic.count,
                assignments,
                request.validate_only,
                timeout,
            )
            .await
        {
            Ok(()) => result,
            Err(error) => result
                .with_error_code(error_code::topic_error(&error))
                .with_error_message(Some(StrBytes::from_string(error.to_string()))),
        };
        results.push(result);
    }
    CreatePartitionsResponse::default().with_results(results)
}
