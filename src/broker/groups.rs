//! The broker as the group coordinator's host: its `__consumer_offsets` replicas.

use super::Broker;
use crate::group::GroupCoordinator;
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::group::log_writer::OffsetsLog;
use crate::replication::Partition;
use std::sync::Arc;

impl OffsetsLog for Broker {
    async fn offsets_topic_partitions(&self) -> Result<i32, i16> {
        Broker::offsets_topic_partitions(self).await
    }

    fn known_offsets_partitions(&self) -> i32 {
        self.topic(OFFSETS_TOPIC).map_or(1, |topic| topic.n_partitions())
    }

    fn offsets_partition(&self, index: i32) -> Option<Arc<Partition>> {
        self.replicas.partition_of(OFFSETS_TOPIC, index)
    }

    fn groups(&self) -> &GroupCoordinator {
        &self.groups
    }
}
