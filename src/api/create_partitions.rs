//! CreatePartitions (key 37): raise a topic's partition count, placing the new
//! partitions on live brokers or by the request's assignments; committed by the
//! controller quorum before the answer. More than 10 000 new partitions in one request
//! is POLICY_VIOLATION for all of its topics, as in Kafka.

use super::{RequestContext, controller_timeout};
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

pub async fn handle(ctx: &RequestContext<'_>, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let timeout = controller_timeout(request.timeout_ms);
    let image = ctx.broker.image();
    let new_partitions: i64 = request
        .topics
        .iter()
        .map(|topic| {
            let existing = image.topic(&topic.name).map_or(0, |known| known.n_partitions());
            (topic.count as i64 - existing as i64).max(0)
        })
        .sum();
    let too_many = new_partitions > super::MAX_PARTITIONS_PER_REQUEST;
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        if too_many {
            results.push(
                result
                    .with_error_code(kafka_protocol::ResponseError::PolicyViolation.code())
                    .with_error_message(Some(StrBytes::from_static_str(super::EXCESSIVE_PARTITIONS))),
            );
            continue;
        }
        if !ctx.allowed(Operation::Alter, ResourceType::Topic, &topic.name) {
            results
                .push(result.with_error_code(kafka_protocol::ResponseError::TopicAuthorizationFailed.code()));
            continue;
        }
        let added = ctx.broker.topic(&topic.name).map_or(0, |existing| {
            (topic.count as i64 - existing.partitions.len() as i64).max(0)
        });
        if !request.validate_only && ctx.admit_mutations(added, ctx.version >= 3).is_err() {
            results.push(
                result
                    .with_error_code(kafka_protocol::ResponseError::ThrottlingQuotaExceeded.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "the client is over its controller_mutation_rate quota",
                    ))),
            );
            continue;
        }
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
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(error.to_string()))),
        };
        results.push(result);
    }
    CreatePartitionsResponse::default()
        .with_throttle_time_ms(ctx.throttle_time_ms())
        .with_results(results)
}
