//! Metadata (key 3): live brokers, cluster id, controller and topic partitions from
//! this broker's metadata image, creating requested topics when
//! `auto.create.topics.enable` and the client allow it.
//!
//! Live (registered, unfenced) brokers are listed, and always this broker itself: it is
//! alive, as it answers. During a controlled shutdown it is fenced while it still serves;
//! leaving it out would hand a single-node cluster's clients an empty broker list, and
//! librdkafka drops brokers missing from metadata, so it would be left with none to ask
//! until its re-bootstrap minutes later. The controller id is this
//! broker's own (it forwards admin requests to the active controller); a partition whose leader is not
//! live answers LEADER_NOT_AVAILABLE with leader -1, so clients wait and ask again.

use super::{RequestContext, error_code};
use crate::cluster::image::{MetadataImage, NO_LEADER, PartitionRegistration, TopicImage};
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

fn broker_ids(ids: &[i32]) -> Vec<BrokerId> {
    ids.iter().copied().map(BrokerId).collect()
}

/// A partition's leader as clients are told it: itself when live, else -1 with
/// LEADER_NOT_AVAILABLE, so clients wait and ask again.
pub(super) fn live_leader(image: &MetadataImage, registration: &PartitionRegistration) -> (i16, i32) {
    if registration.leader != NO_LEADER && image.is_live(registration.leader) {
        (error_code::NONE, registration.leader)
    } else {
        (ResponseError::LeaderNotAvailable.code(), NO_LEADER)
    }
}

/// The replicas on brokers that are not live.
pub(super) fn offline_replicas(image: &MetadataImage, registration: &PartitionRegistration) -> Vec<i32> {
    registration
        .replicas
        .iter()
        .copied()
        .filter(|replica| !image.is_live(*replica))
        .collect()
}

fn describe_topic(
    ctx: &RequestContext<'_>,
    image: &MetadataImage,
    topic: &TopicImage,
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(index, registration)| {
            let (mut error, leader) = live_leader(image, registration);
            let mut offline = offline_replicas(image, registration);
            // A replica here whose log could not be opened is offline (Kafka lists
            // replicas on failed log dirs so); led here, the partition cannot serve.
            let node_id = ctx.broker.config.node_id;
            if registration.replicas.contains(&node_id)
                && ctx
                    .broker
                    .replicas
                    .offline_log(&crate::log::TopicPartition::new(topic.name.clone(), index as i32))
                    .is_some()
            {
                if !offline.contains(&node_id) {
                    offline.push(node_id);
                }
                if leader == node_id {
                    error = super::error_code::KAFKA_STORAGE_ERROR;
                }
            }
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(index as i32)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(registration.leader_epoch)
                .with_replica_nodes(broker_ids(&registration.replicas))
                .with_isr_nodes(broker_ids(&registration.isr))
                .with_offline_replicas(if ctx.version >= 5 {
                    broker_ids(&offline)
                } else {
                    vec![]
                })
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
    let mut image = broker.image();
    let topics = match requested {
        // Topics the principal may not describe are left out.
        None => image
            .topics
            .values()
            .filter(|topic| ctx.allowed(Operation::Describe, ResourceType::Topic, &topic.name))
            .map(|topic| describe_topic(ctx, &image, topic))
            .collect(),
        Some(requested) => {
            let mut out = Vec::with_capacity(requested.len());
            for wanted in requested {
                let response = match wanted.name {
                    Some(name) if !ctx.allowed(Operation::Describe, ResourceType::Topic, &name) => {
                        unknown_topic(
                            Some(name),
                            uuid::Uuid::nil(),
                            ResponseError::TopicAuthorizationFailed.code(),
                        )
                    }
                    Some(name) => match image.topic(&name) {
                        Some(topic) => describe_topic(ctx, &image, topic),
                        None if allow_auto_create
                            && (ctx.allowed_on_cluster(Operation::Create)
                                || ctx.allowed(Operation::Create, ResourceType::Topic, &name)) =>
                        {
                            match broker
                                .create_topic(
                                    &name,
                                    -1,
                                    -1,
                                    None,
                                    BTreeMap::new(),
                                    false,
                                    crate::broker::AUTO_CREATE_TIMEOUT,
                                )
                                .await
                            {
                                Ok(_) | Err(crate::broker::TopicError::AlreadyExists(_)) => {
                                    image = broker.image();
                                    match image.topic(&name) {
                                        Some(topic) => describe_topic(ctx, &image, topic),
                                        None => unknown_topic(
                                            Some(name),
                                            uuid::Uuid::nil(),
                                            ResponseError::LeaderNotAvailable.code(),
                                        ),
                                    }
                                }
                                // No quorum in time: retriable, as Kafka answers while
                                // an auto-created topic is not ready yet.
                                Err(crate::broker::TopicError::Timeout(_)) => unknown_topic(
                                    Some(name),
                                    uuid::Uuid::nil(),
                                    ResponseError::LeaderNotAvailable.code(),
                                ),
                                Err(error) => unknown_topic(Some(name), uuid::Uuid::nil(), error.code()),
                            }
                        }
                        None => unknown_topic(
                            Some(name),
                            uuid::Uuid::nil(),
                            error_code::UNKNOWN_TOPIC_OR_PARTITION,
                        ),
                    },
                    None => match image.topic_by_id(wanted.topic_id) {
                        Some(topic)
                            if !ctx.allowed(Operation::Describe, ResourceType::Topic, &topic.name) =>
                        {
                            unknown_topic(
                                None,
                                wanted.topic_id,
                                ResponseError::TopicAuthorizationFailed.code(),
                            )
                        }
                        Some(topic) => describe_topic(ctx, &image, topic),
                        None => unknown_topic(None, wanted.topic_id, error_code::UNKNOWN_TOPIC_ID),
                    },
                };
                out.push(response);
            }
            out
        }
    };
    let brokers = image
        .listed_brokers(config.node_id)
        .filter_map(|registered| {
            let endpoint = registered.endpoint(ctx.listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(registered.broker_id))
                    .with_host(StrBytes::from_string(endpoint.host.clone()))
                    .with_port(endpoint.port as i32)
                    .with_rack(registered.rack.clone().map(StrBytes::from_string)),
            )
        })
        .collect();
    // Clients cannot reach controllers: admin requests sent to any broker are forwarded
    // to the active controller. As Kafka does, name a live broker as the "controller":
    // this one, which is alive as it answers (admin clients send CreateTopics there).
    let controller_id = config.node_id;
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(controller_id))
        .with_topics(topics)
        .with_cluster_authorized_operations(i32::MIN)
}
