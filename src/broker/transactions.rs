//! The broker as the transaction coordinator's host: creating `__transaction_state`,
//! and telling the group coordinator of markers on `__consumer_offsets`.

use super::Broker;
use crate::common::ErrorCode;
use crate::txn::TxnHost;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

impl TxnHost for Broker {
    fn internal_topic_partitions<'a>(
        &'a self,
        name: &'a str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> Pin<Box<dyn Future<Output = Result<i32, ErrorCode>> + Send + 'a>> {
        Box::pin(Broker::internal_topic_partitions(
            self,
            name,
            partitions,
            replication_factor,
            configs,
        ))
    }

    fn offsets_marker_written(&self, index: i32, producer_id: i64, commit: bool) {
        let Some(topic) = self.topic(crate::common::topics::OFFSETS_TOPIC) else {
            return;
        };
        let n_partitions = topic.n_partitions();
        self.groups.complete_txn(producer_id, commit, |group| {
            crate::group::offsets::partition_for(group, n_partitions) == index
        });
    }
}
