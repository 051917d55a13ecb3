//! ISR changes and replica fetchers: the ISR changes this broker's led partitions
//! propose are sent to the controller (AlterPartition), lagging followers are checked
//! for every half `replica.lag.time.max.ms`, and one replica fetcher runs per leader this
//! broker follows (in line with the image, after every publish).

use super::ReplicaManager;
use crate::cluster::image::{MetadataImage, NO_LEADER};
use crate::common::now_ms;
use crate::controller::rpc::{ControllerReply, ControllerRequest, IsrChange};
use crate::log::TopicPartition;
use crate::replication::Partition;
use crate::replication::fetcher::{FetcherConfig, FollowedPartition, ReplicaFetcher};
use crate::replication::replica::IsrProposal;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

impl ReplicaManager {
    fn fetcher_config(&self) -> FetcherConfig {
        FetcherConfig {
            node_id: self.config.node_id,
            local_ip: self.config.listener.map(|address| address.ip()),
            security: self.inter_broker_security.clone(),
            max_wait_ms: self.config.replica_fetch_wait_max_ms,
            partition_max_bytes: self.config.replica_fetch_max_bytes,
            response_max_bytes: self.config.replica_fetch_response_max_bytes,
            throttle: self.follower_throttle.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Points the replica fetchers at the leaders `image` names for the partitions this
    /// broker follows: one fetcher per live leader, none for a fenced or absent leader.
    pub(super) fn update_fetchers(&self, image: &MetadataImage) {
        let mut wanted: HashMap<i32, BTreeMap<TopicPartition, FollowedPartition>> = HashMap::new();
        for partition in self.all_partitions() {
            let state = partition.state();
            if state.leader == self.config.node_id
                || state.leader == NO_LEADER
                || !image.is_live(state.leader)
            {
                continue;
            }
            let throttled = crate::replication::throttle::names(
                image
                    .topic(&partition.topic_partition.topic)
                    .and_then(|topic| topic.configs.get("follower.replication.throttled.replicas"))
                    .map(String::as_str),
                partition.topic_partition.partition,
                self.config.node_id,
            );
            wanted.entry(state.leader).or_default().insert(
                partition.topic_partition.clone(),
                FollowedPartition {
                    partition: partition.clone(),
                    topic_id: partition.topic_id,
                    leader_epoch: state.leader_epoch,
                    throttled,
                },
            );
        }
        let mut fetchers = self.fetchers.lock();
        fetchers.retain(|source, _| wanted.contains_key(source));
        for (source, targets) in wanted {
            let fetcher = fetchers
                .entry(source)
                .or_insert_with(|| ReplicaFetcher::start(self.fetcher_config(), source));
            let endpoint = image
                .brokers
                .get(&source)
                .and_then(|broker| broker.endpoint(&self.config.inter_broker_listener))
                .map(|endpoint| (endpoint.host.clone(), endpoint.port));
            fetcher.endpoint.send_if_modified(|current| {
                let changed = *current != endpoint;
                *current = endpoint.clone();
                changed
            });
            let changed = {
                let current = fetcher.targets.borrow();
                current.len() != targets.len()
                    || current.iter().zip(&targets).any(|((a, x), (b, y))| {
                        a != b
                            || x.leader_epoch != y.leader_epoch
                            || x.throttled != y.throttled
                            || !Arc::ptr_eq(&x.partition, &y.partition)
                    })
            };
            if changed {
                fetcher.targets.send_replace(targets);
            }
        }
    }

    /// Queues the ISR change `partition` proposes, if any, for the controller. The
    /// new ISR takes effect when the committed change reaches this broker's image.
    pub fn propose_isr_change(&self, partition: &Arc<Partition>) {
        // KIP-841: a fenced (or unregistered) broker is never proposed for the ISR.
        let image = self.image.borrow().clone();
        let ineligible: Vec<i32> = partition
            .state()
            .replicas
            .into_iter()
            .filter(|replica| !image.is_live(*replica))
            .collect();
        let Some(proposal) =
            partition.isr_proposal(self.config.replica_lag_time_max_ms, now_ms(), &ineligible)
        else {
            return;
        };
        self.isr_changes
            .pending
            .lock()
            .insert(partition.topic_partition.clone(), (partition.clone(), proposal));
        self.isr_changes.wakeup.notify_one();
    }
}

/// ISR changes waiting for the controller, one per partition, and their sender's
/// wakeup. Whatever queues up while a request is in flight goes in the next one, so a
/// restart that brings thousands of followers back costs a few metadata batches, not
/// one per partition (Kafka's AlterPartition carries many partitions too).
#[derive(Default)]
pub(super) struct IsrChanges {
    pending: parking_lot::Mutex<BTreeMap<TopicPartition, (Arc<Partition>, IsrProposal)>>,
    wakeup: tokio::sync::Notify,
}

/// Changes in one AlterPartition request at most.
const MAX_ISR_CHANGES_PER_REQUEST: usize = 2000;

/// Sends queued ISR changes to the controller, one request at a time.
pub async fn send_isr_changes(replicas: Weak<ReplicaManager>) {
    let Some(queue) = replicas.upgrade().map(|replicas| replicas.isr_changes.clone()) else {
        return;
    };
    loop {
        queue.wakeup.notified().await;
        let Some(replicas) = replicas.upgrade() else { break };
        let batch: Vec<(Arc<Partition>, IsrProposal)> = {
            let mut pending = queue.pending.lock();
            let mut batch = Vec::new();
            while batch.len() < MAX_ISR_CHANGES_PER_REQUEST {
                let Some((_, change)) = pending.pop_first() else {
                    break;
                };
                batch.push(change);
            }
            if !pending.is_empty() {
                queue.wakeup.notify_one();
            }
            batch
        };
        if batch.is_empty() {
            continue;
        }
        let request = ControllerRequest::AlterPartition {
            broker_id: replicas.config.node_id,
            changes: batch
                .iter()
                .map(|(partition, proposal)| IsrChange {
                    topic_id: partition.topic_id,
                    partition: partition.topic_partition.partition,
                    leader_epoch: proposal.leader_epoch,
                    partition_epoch: proposal.partition_epoch,
                    new_isr: proposal.new_isr.clone(),
                })
                .collect(),
        };
        let results = match replicas.controller.request(request, Duration::from_secs(5)).await {
            Ok(ControllerReply::IsrChanges { results, .. }) if results.len() == batch.len() => results,
            Ok(other) => {
                tracing::error!(?other, "unexpected answer to AlterPartition");
                batch
                    .iter()
                    .for_each(|(partition, _)| partition.clear_pending_isr());
                continue;
            }
            Err(error) => {
                // Each leader proposes again at its next ISR check.
                tracing::warn!(partitions = batch.len(), %error, "ISR change refused");
                batch
                    .iter()
                    .for_each(|(partition, _)| partition.clear_pending_isr());
                continue;
            }
        };
        let mut committed = 0;
        for ((partition, proposal), result) in batch.iter().zip(results) {
            match result {
                Ok(()) => {
                    committed += 1;
                    tracing::debug!(
                        topic_partition = %partition.topic_partition,
                        isr = ?proposal.new_isr,
                        "ISR change committed"
                    );
                }
                Err(error) => {
                    tracing::warn!(topic_partition = %partition.topic_partition, %error, "ISR change refused");
                    partition.clear_pending_isr();
                }
            }
        }
        if committed > 0 {
            let (first, proposal) = &batch[0];
            tracing::info!(
                partitions = committed,
                first = %first.topic_partition,
                isr = ?proposal.new_isr,
                "ISR changes committed"
            );
        }
    }
}

/// Every half `replica.lag.time.max.ms`, as Kafka's ISR expiration task, lets each led
/// partition propose dropping lagging followers (and propose again what the controller
/// refused). A follower that catches up proposes itself at its fetch, without waiting.
pub async fn check_isr(replicas: Weak<ReplicaManager>) {
    let period = match replicas.upgrade() {
        Some(replicas) => Duration::from_millis((replicas.config.replica_lag_time_max_ms / 2).max(10) as u64),
        None => return,
    };
    let mut ticker = tokio::time::interval(period);
    loop {
        ticker.tick().await;
        let Some(replicas) = replicas.upgrade() else { break };
        for partition in replicas.all_partitions() {
            if partition.is_leader() {
                replicas.propose_isr_change(&partition);
            }
        }
    }
}
