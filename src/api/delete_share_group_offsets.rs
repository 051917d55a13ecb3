//! DeleteShareGroupOffsets (key 92, v0): removes the state of every share-partition of
//! the named topics for an empty share group (`kafka-share-groups.sh --delete-offsets`);
//! the group reads those topics afresh (`share.auto.offset.reset`) when it next
//! subscribes. A group with members answers NON_EMPTY_GROUP.

use super::RequestContext;
use crate::common::ErrorCode;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::{DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse};

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DeleteShareGroupOffsetsRequest,
) -> DeleteShareGroupOffsetsResponse {
    let group_id = request.group_id.to_string();
    let refused = |code: ErrorCode| DeleteShareGroupOffsetsResponse::default().with_error_code(code.code());
    if !ctx.allowed(Operation::Delete, ResourceType::Group, &group_id) {
        return refused(ErrorCode::of(ResponseError::GroupAuthorizationFailed));
    }
    if let Err(code) = crate::group::host::check_coordinator(ctx.broker.as_ref(), &group_id).await {
        return refused(code);
    }
    match ctx.broker.groups.share_group_topics(&group_id) {
        Err(code) => return refused(code),
        Ok((_, true)) => return refused(ErrorCode::of(ResponseError::NonEmptyGroup)),
        Ok(_) => {}
    }
    let image = ctx.broker.image();
    let mut responses = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.topic_name.to_string();
        let found = image.topic(&name);
        let code = match found {
            None => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            Some(_) if !ctx.allowed(Operation::Read, ResourceType::Topic, &name) => {
                ErrorCode::of(ResponseError::TopicAuthorizationFailed)
            }
            Some(found) => {
                let mut code = ErrorCode::NONE;
                for index in 0..found.n_partitions() {
                    let key = (group_id.clone(), found.topic_id, index);
                    let deleted = ctx.broker.delete_share_partition(&key).await;
                    if code.is_none() {
                        code = deleted;
                    }
                }
                code
            }
        };
        responses.push(
            DeleteShareGroupOffsetsResponseTopic::default()
                .with_topic_name(topic.topic_name)
                .with_topic_id(found.map(|topic| topic.topic_id).unwrap_or_default())
                .with_error_code(code.code()),
        );
    }
    DeleteShareGroupOffsetsResponse::default().with_responses(responses)
}
