//! ElectLeaders (key 43, v0–2): preferred (v0+) or unclean (v1+) leader elections an
//! operator asks for, decided by the active controller (`cluster::election`).
//!
//! Needs Alter on the cluster. Each named partition answers with its outcome: NONE when
//! elected, ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
//! ELIGIBLE_LEADERS_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION. Without named
//! partitions every partition is tried and, as Kafka does, those that needed no
//! election are left out. The answer comes once this broker has the committed change.

use super::{DEFAULT_ADMIN_TIMEOUT, RequestContext};
use crate::cluster::election::{ElectionOutcome, ElectionType};
use crate::controller::rpc::{ControllerReply, ControllerRequest};
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

fn code(outcome: ElectionOutcome) -> i16 {
    match outcome {
        ElectionOutcome::Elected => 0,
        ElectionOutcome::NotNeeded => ResponseError::ElectionNotNeeded.code(),
        ElectionOutcome::PreferredNotAvailable => ResponseError::PreferredLeaderNotAvailable.code(),
        ElectionOutcome::EligibleNotAvailable => ResponseError::EligibleLeadersNotAvailable.code(),
        ElectionOutcome::UnknownPartition => ResponseError::UnknownTopicOrPartition.code(),
    }
}

/// The answer: results grouped by topic, in the order given.
fn results(outcomes: Vec<(String, i32, i16, Option<String>)>) -> Vec<ReplicaElectionResult> {
    let mut grouped: Vec<ReplicaElectionResult> = Vec::new();
    for (topic, partition, error_code, message) in outcomes {
        let result = PartitionResult::default()
            .with_partition_id(partition)
            .with_error_code(error_code)
            .with_error_message(message.map(StrBytes::from_string));
        match grouped.last_mut() {
            Some(last) if last.topic.as_str() == topic => last.partition_result.push(result),
            _ => grouped.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(topic)))
                    .with_partition_result(vec![result]),
            ),
        }
    }
    grouped
}

pub async fn handle(ctx: &RequestContext<'_>, request: ElectLeadersRequest) -> ElectLeadersResponse {
    let named: Option<Vec<(String, i32)>> = request.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .map(|partition| (topic.topic.as_str().to_string(), *partition))
            })
            .collect()
    });
    let fail_all = |error_code: i16, message: String| {
        let outcomes = named
            .iter()
            .flatten()
            .map(|(topic, partition)| (topic.clone(), *partition, error_code, Some(message.clone())))
            .collect();
        ElectLeadersResponse::default()
            .with_error_code(if ctx.version >= 1 { error_code } else { 0 })
            .with_replica_election_results(results(outcomes))
    };
    if !ctx.allowed_on_cluster(Operation::Alter) {
        return fail_all(
            ResponseError::ClusterAuthorizationFailed.code(),
            "Alter on the cluster is needed to elect leaders".into(),
        );
    }
    let election = match (ctx.version, request.election_type) {
        (0, _) | (_, 0) => ElectionType::Preferred,
        (_, 1) => ElectionType::Unclean,
        (_, other) => {
            return fail_all(
                ResponseError::InvalidRequest.code(),
                format!("unknown election type {other}"),
            );
        }
    };
    let timeout = match u64::try_from(request.timeout_ms) {
        Ok(ms) if ms > 0 => std::time::Duration::from_millis(ms),
        _ => DEFAULT_ADMIN_TIMEOUT,
    };
    let every_partition = named.is_none();
    let reply = ctx
        .broker
        .controller_request(
            ControllerRequest::ElectLeaders {
                election,
                partitions: named.clone(),
            },
            timeout,
        )
        .await;
    match reply {
        Ok(ControllerReply::Elections { outcomes, offset }) => {
            ctx.broker.wait_for_offset(offset, timeout).await;
            let outcomes = outcomes
                .into_iter()
                .filter(|(_, _, outcome)| !(every_partition && *outcome == ElectionOutcome::NotNeeded))
                .map(|(topic, partition, outcome)| (topic, partition, code(outcome), None))
                .collect();
            ElectLeadersResponse::default().with_replica_election_results(results(outcomes))
        }
        Ok(other) => fail_all(
            ResponseError::UnknownServerError.code(),
            format!("unexpected controller answer {other:?}"),
        ),
        Err(error) => fail_all(ResponseError::RequestTimedOut.code(), error.to_string()),
    }
}
