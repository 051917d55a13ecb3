//! The group coordinator on the broker that hosts it: which broker coordinates a group
//! (the leader of the group's `__consumer_offsets` partition), loading and forgetting
//! the groups of the partitions this broker comes to lead or stops leading, and the
//! offsets the timers and deleted topics remove. The coordinator reaches the broker
//! through [`OffsetsLog`], which the broker implements; this floor does not know it.

use super::GroupCoordinator;
use super::coordinator::OFFSETS_TOPIC;
use crate::cluster::image::{Endpoint, MetadataImage};
use crate::common::ErrorCode;
use crate::replication::Partition;
use std::collections::HashSet;
use std::sync::Arc;

/// How old an offset of a topic missing from the image must be before maintenance
/// removes it.
const ORPHANED_OFFSET_GRACE_MS: i64 = 60_000;

/// What the group coordinator needs of the broker that hosts it.
pub trait OffsetsLog: Send + Sync + 'static {
    /// `__consumer_offsets`' partition count, creating the topic on first use.
    fn offsets_topic_partitions(&self) -> impl std::future::Future<Output = Result<i32, ErrorCode>> + Send;
    /// Its partition count as the metadata knows it now; None before it exists.
    fn known_offsets_partitions(&self) -> Option<i32>;
    /// This broker's replica of one of its partitions.
    fn offsets_partition(&self, index: i32) -> Option<Arc<Partition>>;
    fn groups(&self) -> &GroupCoordinator;
    /// The metadata image as this broker has applied it.
    fn image(&self) -> Arc<MetadataImage>;
    fn node_id(&self) -> i32;
    /// The listener brokers reach each other on.
    fn inter_broker_listener(&self) -> &str;
}

/// The group's coordinator: the leader of its `__consumer_offsets` partition, with
/// its endpoint on `listener`, or None while that partition has no live leader.
/// Creates the topic on first use.
pub async fn coordinator_of(
    host: &impl OffsetsLog,
    group_id: &str,
    listener: &str,
) -> Result<Option<(i32, Endpoint)>, ErrorCode> {
    let n_partitions = host.offsets_topic_partitions().await?;
    let index = super::offsets::partition_for(group_id, n_partitions);
    Ok(host.image().live_leader(OFFSETS_TOPIC, index, listener))
}

/// Ok when this broker coordinates `group_id`; else the Kafka code to answer:
/// COORDINATOR_LOAD_IN_PROGRESS while its partition is loading or is about to lead
/// here, NOT_COORDINATOR when another broker leads it, COORDINATOR_NOT_AVAILABLE
/// while nobody can.
pub async fn check_coordinator(host: &impl OffsetsLog, group_id: &str) -> Result<(), ErrorCode> {
    let n_partitions = host.offsets_topic_partitions().await?;
    let index = super::offsets::partition_for(group_id, n_partitions);
    match host.offsets_partition(index) {
        Some(partition) if partition.is_leader() => {
            if host.groups().led.is_loaded(index) {
                Ok(())
            } else {
                Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)
            }
        }
        _ => match coordinator_of(host, group_id, host.inter_broker_listener()).await? {
            None => Err(ErrorCode::COORDINATOR_NOT_AVAILABLE),
            // The image names this broker but its partition is not leading here yet
            // (a just-created or just-moved offsets partition): it is on its way.
            Some((leader, _)) if leader == host.node_id() => Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS),
            Some(_) => Err(ErrorCode::NOT_COORDINATOR),
        },
    }
}

/// Loads the groups of every `__consumer_offsets` partition this broker has come to
/// lead, and forgets those of partitions it no longer leads. A group is served only
/// once its partition is loaded (COORDINATOR_LOAD_IN_PROGRESS until then).
pub fn follow_leadership(host: &impl OffsetsLog) {
    let Some(n_partitions) = host.known_offsets_partitions() else {
        return;
    };
    let led: Vec<i32> = (0..n_partitions)
        .filter(|index| {
            host.offsets_partition(*index)
                .is_some_and(|partition| partition.is_leader())
        })
        .collect();
    let groups = host.groups();
    let (lost, gained) = groups.led.set_led(&led);
    for index in lost {
        let n_groups = groups.unload_partition(index, n_partitions);
        tracing::info!(
            partition = index,
            n_groups,
            "no longer coordinating groups of this offsets partition"
        );
    }
    for index in gained {
        groups.unload_partition(index, n_partitions);
        match super::log_writer::load_partition(host, index) {
            Ok(n_records) => tracing::info!(partition = index, n_records, "loaded groups and offsets"),
            Err(error) => tracing::error!(partition = index, %error, "cannot load groups"),
        }
        groups.after_load_consumers(&super::consumer_coordinator::topics_view(&host.image()));
        groups.led.mark_loaded(index);
    }
}

/// Offsets of deleted topics go from every group this broker coordinates (Kafka's
/// `onPartitionsDeleted`): a topic created again under the name starts unread.
pub fn drop_offsets_of_deleted_topics(groups: &GroupCoordinator, deleted: &HashSet<String>) {
    if deleted.is_empty() {
        return;
    }
    let tombstones = groups.offsets_of_deleted_topics(|topic, _| deleted.contains(topic));
    if !tombstones.is_empty() {
        tracing::info!(topics = ?deleted, groups = tombstones.len(), "deleting committed offsets of deleted topics");
    }
    groups.write_tombstones(tombstones);
}

/// One pass of group maintenance: expire old offsets (their tombstones are written
/// to `__consumer_offsets`, which the log cleaner compacts).
/// Also drops offsets of topics that are gone from the image (deleted while this
/// broker was not coordinating the group), once their commit is a minute old so a
/// commit racing the topic's creation is not lost.
pub fn maintain(host: &impl OffsetsLog, now_ms: i64) {
    let groups = host.groups();
    let tombstones = groups.expire(now_ms);
    groups.write_tombstones(tombstones);
    let image = host.image();
    let orphaned = groups.offsets_of_deleted_topics(|topic, committed_ms| {
        image.topic(topic).is_none() && now_ms - committed_ms > ORPHANED_OFFSET_GRACE_MS
    });
    groups.write_tombstones(orphaned);
}
