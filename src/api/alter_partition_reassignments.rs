//! AlterPartitionReassignments (key 45, v0–1, KIP-455): moves partitions to new replica
//! lists, which changes a topic's replication factor after creation; decided by the
//! active controller (`cluster::reassignment`).
//!
//! Needs Alter on the cluster. Each partition answers NONE once the reassignment is
//! started (or done), UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT (empty,
//! repeated or unregistered brokers), NO_REASSIGNMENT_IN_PROGRESS (a cancel with none
//! going on) or, from v1 when `allow_replication_factor_change` is false,
//! INVALID_REPLICATION_FACTOR (KIP-860). The answer comes once this broker has the
//! committed change; the new replicas then catch up and join the ISR, and the old ones
//! go (ListPartitionReassignments shows what is still under way).

use super::{DEFAULT_ADMIN_TIMEOUT, RequestContext};
use crate::cluster::reassignment::ReassignError;
use crate::controller::rpc::{ControllerReply, ControllerRequest};
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

/// One partition's outcome: its error code and message.
type Outcome = (String, i32, i16, Option<String>);

fn code(error: &ReassignError) -> (i16, Option<String>) {
    match error {
        ReassignError::UnknownPartition => (ResponseError::UnknownTopicOrPartition.code(), None),
        ReassignError::InvalidAssignment(reason) => (
            ResponseError::InvalidReplicaAssignment.code(),
            Some(reason.clone()),
        ),
        ReassignError::NoReassignmentInProgress => (ResponseError::NoReassignmentInProgress.code(), None),
    }
}

/// The answer's topics, grouped in the order given.
fn responses(outcomes: Vec<Outcome>) -> Vec<ReassignableTopicResponse> {
    let mut grouped: Vec<ReassignableTopicResponse> = Vec::new();
    for (topic, partition, error_code, message) in outcomes {
        let result = ReassignablePartitionResponse::default()
            .with_partition_index(partition)
            .with_error_code(error_code)
            .with_error_message(message.map(StrBytes::from_string));
        match grouped.last_mut() {
            Some(last) if last.name.as_str() == topic => last.partitions.push(result),
            _ => grouped.push(
                ReassignableTopicResponse::default()
                    .with_name(TopicName(StrBytes::from_string(topic)))
                    .with_partitions(vec![result]),
            ),
        }
    }
    grouped
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let allow_rf_change = ctx.version == 0 || request.allow_replication_factor_change;
    let answer =
        AlterPartitionReassignmentsResponse::default().with_allow_replication_factor_change(allow_rf_change);
    if !ctx.allowed_on_cluster(Operation::Alter) {
        return answer
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Alter on the cluster is needed to reassign partitions",
            )));
    }
    let mut refused: Vec<Outcome> = Vec::new();
    let mut changes = Vec::new();
    for topic in &request.topics {
        let name = topic.name.as_str().to_string();
        for partition in &topic.partitions {
            let target: Option<Vec<i32>> = partition
                .replicas
                .as_ref()
                .map(|replicas| replicas.iter().map(|id| id.0).collect());
            let current = ctx.broker.topic(&name).and_then(|topic| {
                topic
                    .partition(partition.partition_index)
                    .map(|registration| registration.original_replicas().len())
            });
            if let (false, Some(target), Some(current)) = (allow_rf_change, &target, current)
                && target.len() != current
            {
                refused.push((
                    name.clone(),
                    partition.partition_index,
                    ResponseError::InvalidReplicationFactor.code(),
                    Some(format!(
                        "the replication factor would change from {current} to {}",
                        target.len()
                    )),
                ));
                continue;
            }
            changes.push((name.clone(), partition.partition_index, target));
        }
    }
    let timeout = match u64::try_from(request.timeout_ms) {
        Ok(ms) if ms > 0 => std::time::Duration::from_millis(ms),
        _ => DEFAULT_ADMIN_TIMEOUT,
    };
    let asked: Vec<(String, i32)> = changes
        .iter()
        .map(|(topic, partition, _)| (topic.clone(), *partition))
        .collect();
    let reply = if changes.is_empty() {
        Ok(ControllerReply::Reassignments {
            outcomes: Vec::new(),
            offset: -1,
        })
    } else {
        ctx.broker
            .controller_request(
                ControllerRequest::AlterPartitionReassignments { changes },
                timeout,
            )
            .await
    };
    let mut outcomes: Vec<Outcome> = match reply {
        Ok(ControllerReply::Reassignments { outcomes, offset }) => {
            ctx.broker.wait_for_offset(offset, timeout).await;
            outcomes
                .into_iter()
                .map(|(topic, partition, outcome)| {
                    let (error_code, message) = outcome.as_ref().map_or_else(code, |_| (0, None));
                    (topic, partition, error_code, message)
                })
                .collect()
        }
        Ok(other) => asked
            .into_iter()
            .map(|(topic, partition)| {
                let message = format!("unexpected controller answer {other:?}");
                (
                    topic,
                    partition,
                    ResponseError::UnknownServerError.code(),
                    Some(message),
                )
            })
            .collect(),
        Err(error) => asked
            .into_iter()
            .map(|(topic, partition)| {
                (
                    topic,
                    partition,
                    ResponseError::RequestTimedOut.code(),
                    Some(error.to_string()),
                )
            })
            .collect(),
    };
    outcomes.extend(refused);
    outcomes.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    answer.with_responses(responses(outcomes))
}
