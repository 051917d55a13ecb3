//! DeleteTopics (key 20): by name (v1-5) or by name or id (v6); committed by the
//! controller quorum before the answer, and every replica's log is removed as the
//! brokers follow the metadata.

use super::{RequestContext, controller_timeout, error_code};
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

pub async fn handle(ctx: &RequestContext<'_>, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let broker = ctx.broker;
    let timeout = controller_timeout(request.timeout_ms);
    let wanted: Vec<(Option<TopicName>, uuid::Uuid)> = if ctx.version >= 6 {
        request
            .topics
            .into_iter()
            .map(|topic| (topic.name, topic.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|name| (Some(name), uuid::Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, topic_id) in wanted {
        let result = DeletableTopicResult::default()
            .with_name(name.clone())
            .with_topic_id(topic_id);
        let resolved = match &name {
            Some(name) => broker.topic(name).ok_or(error_code::UNKNOWN_TOPIC_OR_PARTITION),
            None => broker.topic_by_id(topic_id).ok_or(error_code::UNKNOWN_TOPIC_ID),
        };
        let allowed = |topic: &str| ctx.allowed(Operation::Delete, ResourceType::Topic, topic);
        let result = match resolved {
            Err(_) if name.as_ref().is_some_and(|name| !allowed(name)) => {
                result.with_error_code(kafka_protocol::ResponseError::TopicAuthorizationFailed.code())
            }
            Ok(topic) if !allowed(&topic.name) => {
                result.with_error_code(kafka_protocol::ResponseError::TopicAuthorizationFailed.code())
            }
            Err(code) => result.with_error_code(code),
            Ok(topic)
                if ctx
                    .admit_mutations(topic.partitions.len() as i64, ctx.version >= 5)
                    .is_err() =>
            {
                result
                    .with_error_code(kafka_protocol::ResponseError::ThrottlingQuotaExceeded.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "the client is over its controller_mutation_rate quota",
                    )))
            }
            Ok(topic) => match broker.delete_topic(&topic.name, timeout).await {
                Ok(()) => result
                    .with_name(Some(TopicName(StrBytes::from_string(topic.name))))
                    .with_topic_id(topic.topic_id),
                Err(error) => result
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(error.to_string()))),
            },
        };
        responses.push(result);
    }
    DeleteTopicsResponse::default()
        .with_throttle_time_ms(ctx.throttle_time_ms())
        .with_responses(responses)
}
