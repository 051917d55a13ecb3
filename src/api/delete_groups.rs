//! DeleteGroups (key 42): removes empty groups and their offsets (NON_EMPTY_GROUP while
//! members remain, GROUP_ID_NOT_FOUND for unknown groups). A share group's
//! share-partition states go from their share coordinators too.

use super::RequestContext;
use crate::common::now_ms;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

pub async fn handle(ctx: &RequestContext<'_>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let code = if ctx.allowed(Operation::Delete, ResourceType::Group, &group_id) {
            let share_topics = ctx.broker.groups.share_group_topics(&group_id).ok();
            let mut code = ctx.broker.groups.delete_group(&group_id, now_ms()).await;
            if let Some((topics, _)) = share_topics.filter(|_| code.is_none()) {
                for (topic_id, n_partitions) in topics {
                    for index in 0..n_partitions {
                        let key = (group_id.to_string(), topic_id, index);
                        let deleted = ctx.broker.delete_share_partition(&key).await;
                        if code.is_none() {
                            code = deleted;
                        }
                    }
                }
            }
            code.code()
        } else {
            kafka_protocol::ResponseError::GroupAuthorizationFailed.code()
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(code),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
