//! DescribeTopicPartitions (key 75, v0; KIP-966): topics' partitions, leaders, replicas
//! and ISRs, a page at a time, for admin clients describing clusters with many
//! partitions.
//!
//! Topics are answered in name order: the named ones, or every topic the client may
//! describe when none are named. A page holds at most `response_partition_limit`
//! partitions (capped by `max.request.partition.size.limit`); when more are left, the
//! answer's `next_cursor` names the first topic and partition of the next page, which
//! the client sends back as its `cursor`. A cursor must name a requested topic
//! (INVALID_REQUEST otherwise). Unknown named topics answer UNKNOWN_TOPIC_OR_PARTITION
//! and take no room; named topics the client may not describe answer
//! TOPIC_AUTHORIZATION_FAILED without saying whether they exist. Eligible leader
//! replicas (KIP-966's ELR) are not kept, so those lists are empty.

use super::RequestContext;
use crate::cluster::image::{MetadataImage, TopicImage};
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

/// Operations a topic's `topic_authorized_operations` reports, as Kafka does.
const TOPIC_OPERATIONS: &[Operation] = &[
    Operation::Read,
    Operation::Write,
    Operation::Create,
    Operation::Delete,
    Operation::Alter,
    Operation::Describe,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
];

/// One topic of a page: its index in the input and the partitions it shows.
#[derive(Debug, PartialEq, Eq)]
pub struct PageTopic {
    pub index: usize,
    pub partitions: std::ops::Range<i32>,
}

/// Cuts a page from `topics` (name order, with their partition counts; None: unknown,
/// shown with an error and taking no room). The cursor topic starts at
/// `cursor_partition`, every other at 0. Returns the page and the next cursor.
pub fn page(
    topics: &[(&str, Option<i32>)],
    cursor: Option<(&str, i32)>,
    limit: i32,
) -> (Vec<PageTopic>, Option<(String, i32)>) {
    let mut remaining = limit;
    let mut shown = Vec::new();
    for (index, (name, count)) in topics.iter().enumerate() {
        if remaining == 0 {
            return (shown, Some((name.to_string(), 0)));
        }
        if remaining < 0 {
            break;
        }
        let Some(count) = count else {
            shown.push(PageTopic {
                index,
                partitions: 0..0,
            });
            continue;
        };
        let start = match cursor {
            Some((cursor_topic, partition)) if cursor_topic == *name => partition.min(*count),
            _ => 0,
        };
        let end = start.saturating_add(remaining).min(*count);
        shown.push(PageTopic {
            index,
            partitions: start..end,
        });
        if end < *count {
            return (shown, Some((name.to_string(), end)));
        }
        remaining -= end - start;
    }
    (shown, None)
}

fn broker_ids(ids: impl IntoIterator<Item = i32>) -> Vec<BrokerId> {
    ids.into_iter().map(BrokerId).collect()
}

fn describe(
    ctx: &RequestContext<'_>,
    image: &MetadataImage,
    topic: &TopicImage,
    partitions: std::ops::Range<i32>,
) -> DescribeTopicPartitionsResponseTopic {
    let partitions = partitions
        .filter_map(|index| Some((index, topic.partitions.get(usize::try_from(index).ok()?)?)))
        .map(|(index, registration)| {
            let (error, leader) = super::metadata::live_leader(image, registration);
            let offline = super::metadata::offline_replicas(image, registration);
            DescribeTopicPartitionsResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(index)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(registration.leader_epoch)
                .with_replica_nodes(broker_ids(registration.replicas.iter().copied()))
                .with_isr_nodes(broker_ids(registration.isr.iter().copied()))
                .with_eligible_leader_replicas(Some(broker_ids(registration.elr.iter().copied())))
                .with_last_known_elr(Some(broker_ids(registration.last_known_elr.iter().copied())))
                .with_offline_replicas(broker_ids(offline))
        })
        .collect();
    let operations = TOPIC_OPERATIONS
        .iter()
        .filter(|operation| ctx.allowed(**operation, ResourceType::Topic, &topic.name))
        .fold(0i32, |bits, operation| bits | (1 << operation.code()));
    DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.topic_id)
        .with_is_internal(crate::broker::Broker::is_internal_topic(&topic.name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(operations)
}

fn error_topic(name: &str, error: i16) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
        .with_error_code(error)
        .with_topic_authorized_operations(i32::MIN)
}

pub fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = ctx.broker.image();
    let all_topics = request.topics.is_empty();
    let cursor = request
        .cursor
        .as_ref()
        .map(|cursor| (cursor.topic_name.as_str().to_string(), cursor.partition_index));
    let cursor_topic = cursor.as_ref().map_or("", |(name, _)| name.as_str());
    let mut names: Vec<String> = if all_topics {
        image.topics.keys().cloned().collect()
    } else {
        request
            .topics
            .iter()
            .map(|topic| topic.name.as_str().to_string())
            .collect()
    };
    names.retain(|name| name.as_str() >= cursor_topic);
    names.sort();
    names.dedup();
    let invalid_cursor = cursor
        .as_ref()
        .is_some_and(|(name, partition)| *partition < 0 || (!all_topics && !names.contains(name)));
    if invalid_cursor {
        return DescribeTopicPartitionsResponse::default().with_topics(
            names
                .iter()
                .map(|name| error_topic(name, ResponseError::InvalidRequest.code()))
                .collect(),
        );
    }
    let mut refused = Vec::new();
    let authorized: Vec<&String> = names
        .iter()
        .filter(|name| {
            let allowed = ctx.allowed(Operation::Describe, ResourceType::Topic, name);
            if !allowed && !all_topics {
                refused.push(error_topic(name, ResponseError::TopicAuthorizationFailed.code()));
            }
            allowed
        })
        .collect();
    let counts: Vec<(&str, Option<i32>)> = authorized
        .iter()
        .map(|name| {
            let count = image.topic(name).map(|topic| topic.partitions.len() as i32);
            (name.as_str(), count)
        })
        .collect();
    let limit = request
        .response_partition_limit
        .min(ctx.broker.config.max_request_partition_size_limit);
    let cursor_arg = cursor
        .as_ref()
        .map(|(name, partition)| (name.as_str(), *partition));
    let (shown, next) = page(&counts, cursor_arg, limit);
    let mut topics: Vec<DescribeTopicPartitionsResponseTopic> = shown
        .into_iter()
        .map(
            |PageTopic { index, partitions }| match image.topic(counts[index].0) {
                Some(topic) => describe(ctx, &image, topic, partitions),
                None => error_topic(counts[index].0, ResponseError::UnknownTopicOrPartition.code()),
            },
        )
        .collect();
    topics.extend(refused);
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next.map(|(name, partition)| {
            Cursor::default()
                .with_topic_name(TopicName(StrBytes::from_string(name)))
                .with_partition_index(partition)
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(page: &[PageTopic]) -> Vec<(usize, std::ops::Range<i32>)> {
        page.iter().map(|t| (t.index, t.partitions.clone())).collect()
    }

    #[test]
    fn pages_cut_topics_and_resume_at_the_cursor() {
        let topics = [("a", Some(3)), ("b", Some(2)), ("c", Some(4))];
        let (first, next) = page(&topics, None, 4);
        assert_eq!(shown(&first), vec![(0, 0..3), (1, 0..1)]);
        assert_eq!(next, Some(("b".to_string(), 1)));
        let (second, next) = page(&topics[1..], Some(("b", 1)), 4);
        assert_eq!(shown(&second), vec![(0, 1..2), (1, 0..3)]);
        assert_eq!(next, Some(("c".to_string(), 3)));
        let (third, next) = page(&topics[2..], Some(("c", 3)), 4);
        assert_eq!(shown(&third), vec![(0, 3..4)]);
        assert_eq!(next, None);
    }

    #[test]
    fn a_page_that_ends_with_a_topic_points_at_the_next_one() {
        let topics = [("a", Some(2)), ("b", Some(2))];
        let (first, next) = page(&topics, None, 2);
        assert_eq!(shown(&first), vec![(0, 0..2)]);
        assert_eq!(next, Some(("b".to_string(), 0)));
        let (all, next) = page(&topics, None, 4);
        assert_eq!(shown(&all), vec![(0, 0..2), (1, 0..2)]);
        assert_eq!(next, None);
    }

    #[test]
    fn unknown_topics_take_no_room() {
        let topics = [("a", None), ("b", Some(2))];
        let (first, next) = page(&topics, None, 2);
        assert_eq!(shown(&first), vec![(0, 0..0), (1, 0..2)]);
        assert_eq!(next, None);
        let (none, next) = page(&topics, None, -1);
        assert!(none.is_empty() && next.is_none());
    }
}
