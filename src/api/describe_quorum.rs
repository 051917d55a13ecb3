//! DescribeQuorum (key 55): the metadata quorum's health, as KRaft reports it for the
//! `__cluster_metadata` partition: the leader (active controller) and its epoch (the
//! Raft term), the high watermark, and each voter's log end offset, from which admin
//! tools compute lag. The broker forwards the question to the active controller, which
//! alone knows every voter's progress.

use super::RequestContext;
use crate::controller::rpc::{ControllerReply, ControllerRequest, QuorumInfo};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use kafka_protocol::protocol::StrBytes;

const METADATA_TOPIC: &str = "__cluster_metadata";

fn replicas(progress: &[crate::controller::rpc::ReplicaProgress]) -> Vec<ReplicaState> {
    progress
        .iter()
        .map(|replica| {
            ReplicaState::default()
                .with_replica_id(BrokerId(replica.node_id))
                .with_log_end_offset(replica.log_end_offset)
                .with_last_fetch_timestamp(-1)
                .with_last_caught_up_timestamp(-1)
        })
        .collect()
}

fn describe(quorum: &QuorumInfo, partition_index: i32) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition_index)
        .with_leader_id(BrokerId(quorum.leader_id))
        .with_leader_epoch(quorum.leader_epoch)
        .with_high_watermark(quorum.high_watermark)
        .with_current_voters(replicas(&quorum.voters))
        .with_observers(replicas(&quorum.observers))
}

pub async fn handle(ctx: &RequestContext<'_>, request: DescribeQuorumRequest) -> DescribeQuorumResponse {
    if !ctx.allowed_on_cluster(crate::security::acl::Operation::Describe) {
        return DescribeQuorumResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code());
    }
    let answer = ctx
        .broker
        .controller_request(ControllerRequest::DescribeQuorum, super::DEFAULT_ADMIN_TIMEOUT)
        .await;
    let quorum = match answer {
        Ok(ControllerReply::Quorum(quorum)) => Ok(quorum),
        Ok(other) => Err(format!("unexpected controller answer {other:?}")),
        Err(error) => Err(error.to_string()),
    };
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let is_metadata = topic.topic_name.as_str() == METADATA_TOPIC;
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    let index = partition.partition_index;
                    let failed = |code: i16, message: String| {
                        let data = PartitionData::default()
                            .with_partition_index(index)
                            .with_error_code(code)
                            .with_leader_id(BrokerId(-1))
                            .with_leader_epoch(-1)
                            .with_high_watermark(-1);
                        if ctx.version >= 2 {
                            data.with_error_message(Some(StrBytes::from_string(message)))
                        } else {
                            data
                        }
                    };
                    match &quorum {
                        _ if !is_metadata || index != 0 => failed(
                            ResponseError::UnknownTopicOrPartition.code(),
                            format!("only {METADATA_TOPIC}-0 has a quorum"),
                        ),
                        Ok(quorum) => describe(quorum, index),
                        Err(message) => failed(ResponseError::NotLeaderOrFollower.code(), message.clone()),
                    }
                })
                .collect();
            TopicData::default()
                .with_topic_name(topic.topic_name)
                .with_partitions(partitions)
        })
        .collect();
    let nodes = match (&quorum, ctx.version >= 2) {
        (Ok(quorum), true) => quorum
            .voter_endpoints
            .iter()
            .map(|(node_id, host, port)| {
                Node::default()
                    .with_node_id(BrokerId(*node_id))
                    .with_listeners(vec![
                        Listener::default()
                            .with_name(StrBytes::from_static_str("CONTROLLER"))
                            .with_host(StrBytes::from_string(host.clone()))
                            .with_port(*port),
                    ])
            })
            .collect(),
        _ => vec![],
    };
    DescribeQuorumResponse::default()
        .with_topics(topics)
        .with_nodes(nodes)
}
