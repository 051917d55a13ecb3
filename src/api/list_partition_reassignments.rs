//! ListPartitionReassignments (key 46, v0, KIP-455): the reassignments under way, from
//! this broker's metadata image: each partition's replicas, and those being added and
//! removed. Needs Describe on the cluster. Named partitions without a reassignment (or
//! unknown) are left out, as Kafka does.

use super::RequestContext;
use crate::cluster::reassignment;
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

fn ids(ids: &[i32]) -> Vec<BrokerId> {
    ids.iter().map(|id| BrokerId(*id)).collect()
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    if !ctx.allowed_on_cluster(Operation::Describe) {
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Describe on the cluster is needed to list reassignments",
            )));
    }
    let named: Option<Vec<(String, i32)>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|topic| {
                topic
                    .partition_indexes
                    .iter()
                    .map(|index| (topic.name.as_str().to_string(), *index))
            })
            .collect()
    });
    let ongoing = reassignment::ongoing(&ctx.broker.image(), named.as_deref());
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    for found in ongoing {
        let partition = OngoingPartitionReassignment::default()
            .with_partition_index(found.partition)
            .with_replicas(ids(&found.replicas))
            .with_adding_replicas(ids(&found.adding))
            .with_removing_replicas(ids(&found.removing));
        match topics.last_mut() {
            Some(last) if last.name.as_str() == found.topic => last.partitions.push(partition),
            _ => topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(StrBytes::from_string(found.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}
