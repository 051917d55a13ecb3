//! The broker as the group coordinator's host: `__consumer_offsets` (created on first
//! use) and its replicas here.

use super::Broker;
use crate::cluster::image::MetadataImage;
use crate::common::ErrorCode;
use crate::group::GroupCoordinator;
use crate::group::OffsetsLog;
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::replication::Partition;
use std::collections::BTreeMap;
use std::sync::Arc;

impl OffsetsLog for Broker {
    async fn offsets_topic_partitions(&self) -> Result<i32, ErrorCode> {
        if let Some(topic) = self.topic(OFFSETS_TOPIC) {
            return Ok(topic.n_partitions());
        }
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("retention.ms".to_string(), "-1".to_string()),
            ("retention.bytes".to_string(), "-1".to_string()),
            (
                "segment.bytes".to_string(),
                self.config.offsets_topic_segment_bytes.to_string(),
            ),
            // Committed offsets are acknowledged only once fsynced.
            ("flush.messages".to_string(), "1".to_string()),
        ]);
        self.internal_topic_partitions(
            OFFSETS_TOPIC,
            self.config.offsets_topic_num_partitions,
            self.config.offsets_topic_replication_factor,
            configs,
        )
        .await
    }

    fn known_offsets_partitions(&self) -> Option<i32> {
        self.topic(OFFSETS_TOPIC).map(|topic| topic.n_partitions())
    }

    fn offsets_partition(&self, index: i32) -> Option<Arc<Partition>> {
        self.replicas.partition_of(OFFSETS_TOPIC, index)
    }

    fn groups(&self) -> &GroupCoordinator {
        &self.groups
    }

    fn image(&self) -> Arc<MetadataImage> {
        Broker::image(self)
    }

    fn node_id(&self) -> i32 {
        self.config.node_id
    }

    fn inter_broker_listener(&self) -> &str {
        &self.config.inter_broker_listener
    }
}
