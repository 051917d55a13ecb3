//! Metadata (key 3): brokers, cluster id, controller and topic partitions, creating
//! requested topics when `auto.create.topics.enable` and the client allow it.

use super::{RequestContext, error_code};
use crate::cluster::metadata::TopicRecord;
use crate::log::TopicPartition;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

fn describe_topic(ctx: &RequestContext<'_>, topic: &TopicRecord) -> MetadataResponseTopic {
    let node_id = ctx.broker.config.node_id;
    let partitions = (0..topic.partitions)
        .map(|index| {
            let partition = ctx
                .broker
                .partition(&TopicPartition::new(topic.name.clone(), index));
            let (error, leader_epoch, isr) = match &partition {
                Some(partition) => (
                    error_code::NONE,
                    partition.with_log(|log| log.leader_epoch()),
                    partition.isr(),
                ),
                None => (error_code::UNKNOWN_TOPIC_OR_PARTITION, -1, vec![]),
            };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(index)
                .with_leader_id(BrokerId(node_id))
                .with_leader_epoch(leader_epoch)
                .with_replica_nodes(vec![BrokerId(node_id)])
                .with_isr_nodes(isr.into_iter().map(BrokerId).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.topic_id)
        .with_is_internal(ctx.version >= 1 && crate::broker::Broker::is_internal_topic(&topic.name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(i32::MIN)
}

fn unknown_topic(name: Option<TopicName>, topic_id: uuid::Uuid, error: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name)
        .with_topic_id(topic_id)
        .with_error_code(error)
        .with_topic_authorized_operations(i32::MIN)
}

pub async fn handle(ctx: &RequestContext<'_>, request: MetadataRequest) -> MetadataResponse {
    let broker = ctx.broker;
    let config = &broker.config;
    // v0 has no null: an empty list asks for every topic.
    let requested = match request.topics {
        Some(topics) if !(ctx.version == 0 && topics.is_empty()) => Some(topics),
        _ => None,
    };
    let allow_auto_create =
        (ctx.version < 4 || request.allow_auto_topic_creation) && config.auto_create_topics_enable;
    let topics = match requested {
        None => broker
            .topics()
            .iter()
            .map(|topic| describe_topic(ctx, topic))
            .collect(),
        Some(requested) => {
            let mut out = Vec::with_capacity(requested.len());
            for wanted in requested {
                let response = match wanted.name {
                    Some(name) => match broker.topic(&name) {
                        Some(topic) => describe_topic(ctx, &topic),
                        None if allow_auto_create => {
                            match broker.create_topic(&name, -1, -1, BTreeMap::new(), false).await {
                                Ok(topic) => describe_topic(ctx, &topic),
                                Err(crate::broker::TopicError::AlreadyExists(_)) => match broker.topic(&name)
                                {
                                    Some(topic) => describe_topic(ctx, &topic),
                                    None => unknown_topic(
                                        Some(name),
                                        uuid::Uuid::nil(),
                                        error_code::UNKNOWN_TOPIC_OR_PARTITION,
                                    ),
                                },
                                Err(error) => unknown_topic(
                                    Some(name),
                                    uuid::Uuid::nil(),
                                    error_code::topic_error(&error),
                                ),
                            }
                        }
                        None => unknown_topic(
                            Some(name),
                            uuid::Uuid::nil(),
                            error_code::UNKNOWN_TOPIC_OR_PARTITION,
                        ),
                    },
                    None => match broker.topic_by_id(wanted.topic_id) {
                        Some(topic) => describe_topic(ctx, &topic),
                        None => unknown_topic(None, wanted.topic_id, error_code::UNKNOWN_TOPIC_ID),
                    },
                };
                out.push(response);
            }
            out
        }
    };
    MetadataResponse::default()
        .with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(config.node_id))
                .with_host(StrBytes::from_string(config.advertised_host.clone()))
                .with_port(config.advertised_port as i32),
        ])
        .with_cluster_id(Some(StrBytes::from_string(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(config.node_id))
        .with_topics(topics)
        .with_cluster_authorized_operations(i32::MIN)
}
