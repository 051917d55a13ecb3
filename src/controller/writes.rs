//! The active controller's larger decisions, each run under the write lock against the
//! current image and committed through the quorum: broker registration, heartbeats and
//! controlled shutdown (the broker lifecycle), ISR changes, leader elections and
//! reassignments. The decisions themselves are `cluster`'s (pure); these methods commit
//! them and say what happened.

use super::Controller;
use super::rpc::{ControllerError, ControllerReply, ControllerResponse, IsrChange};
use crate::cluster::image::{MetadataImage, MetadataRecord};
use crate::cluster::lifecycle::{self, HeartbeatDecision, RegistrationDecision};
use crate::cluster::{commands, election, placement, reassignment};
use std::time::Duration;

impl Controller {
    /// FetchMetadata: the image once it is past `after_offset`, waiting up to
    /// `max_wait_ms` (at most 10 s); None if it did not move.
    pub(super) async fn fetch_metadata(&self, after_offset: i64, max_wait_ms: u64) -> ControllerReply {
        let mut image = self.image.clone();
        let newer = tokio::time::timeout(
            Duration::from_millis(max_wait_ms.min(10_000)),
            image.wait_for(|image| image.offset > after_offset),
        )
        .await;
        let reply = match newer {
            Ok(Ok(image)) => Some(Box::new(MetadataImage::clone(&image))),
            _ => None,
        };
        ControllerReply::Metadata(reply)
    }

    /// Commits the records unless the request only validates; the offset they (or the
    /// image) end at.
    pub(super) async fn commit_unless(
        &self,
        validate_only: bool,
        image: &MetadataImage,
        records: Vec<MetadataRecord>,
    ) -> Result<i64, ControllerError> {
        if validate_only {
            Ok(image.offset)
        } else {
            self.commit(records).await
        }
    }

    pub(super) async fn register_broker(
        &self,
        image: &MetadataImage,
        registration: lifecycle::Registration,
        previous_broker_epoch: i64,
    ) -> ControllerResponse {
        let broker_id = registration.broker_id;
        match lifecycle::on_registration(image, registration, previous_broker_epoch, &self.config.policy) {
            RegistrationDecision::AlreadyRegistered { broker_epoch } => {
                Ok(ControllerReply::Registered { broker_epoch })
            }
            RegistrationDecision::Register {
                records,
                unclean_shutdown,
            } => {
                let n_changes = records.len().saturating_sub(1);
                let offset = self.commit(records).await?;
                if unclean_shutdown {
                    tracing::warn!(
                        broker_id,
                        broker_epoch = offset,
                        n_changes,
                        "broker registered after an unclean shutdown: removed from every ISR and ELR and from leadership"
                    );
                } else {
                    tracing::info!(broker_id, broker_epoch = offset, "broker registered");
                }
                Ok(ControllerReply::Registered { broker_epoch: offset })
            }
        }
    }

    pub(super) async fn broker_heartbeat(
        &self,
        image: &MetadataImage,
        broker_id: i32,
        broker_epoch: i64,
        metadata_offset: i64,
    ) -> ControllerResponse {
        match lifecycle::on_heartbeat(image, broker_id, broker_epoch, metadata_offset) {
            HeartbeatDecision::StaleBrokerEpoch => Err(ControllerError::Command(
                commands::CommandError::StaleBrokerEpoch {
                    broker_id,
                    broker_epoch,
                },
            )),
            HeartbeatDecision::Keep { fenced } => Ok(ControllerReply::Heartbeat { fenced }),
            HeartbeatDecision::Unfence => {
                let mut records = vec![MetadataRecord::UnfenceBroker {
                    broker_id,
                    broker_epoch,
                }];
                records.extend(placement::on_broker_unfenced(
                    image,
                    broker_id,
                    &self.config.policy,
                ));
                self.commit(records).await?;
                tracing::info!(broker_id, "broker unfenced");
                Ok(ControllerReply::Heartbeat { fenced: false })
            }
        }
    }

    /// Fences a live broker that is shutting down and moves its leaderships away.
    pub(super) async fn controlled_shutdown(
        &self,
        image: &MetadataImage,
        broker_id: i32,
        broker_epoch: i64,
    ) -> ControllerResponse {
        let live = image
            .brokers
            .get(&broker_id)
            .is_some_and(|broker| broker.broker_epoch == broker_epoch && !broker.fenced);
        if !live {
            return Ok(ControllerReply::Committed { offset: image.offset });
        }
        let mut records = vec![MetadataRecord::FenceBroker {
            broker_id,
            broker_epoch,
        }];
        records.extend(placement::on_broker_fenced(image, broker_id, &self.config.policy));
        let offset = self.commit(records).await?;
        tracing::info!(broker_id, "controlled shutdown: leadership moved away");
        Ok(ControllerReply::Committed { offset })
    }

    /// AlterPartition: each change is checked against the image alone (a leader sends
    /// at most one per partition, so they cannot conflict); the accepted ones commit
    /// together.
    pub(super) async fn alter_partition(
        &self,
        image: &MetadataImage,
        broker_id: i32,
        changes: &[IsrChange],
    ) -> ControllerResponse {
        let mut records = Vec::new();
        let results: Vec<_> = changes
            .iter()
            .map(|change| {
                commands::alter_partition(
                    image,
                    broker_id,
                    change.topic_id,
                    change.partition,
                    change.leader_epoch,
                    change.partition_epoch,
                    &change.new_isr,
                    &self.config.policy,
                )
                .map(|planned| records.extend(planned))
            })
            .collect();
        let n_records = records.len();
        let offset = self.commit_any(image, records).await?;
        let accepted = results.iter().filter(|result| result.is_ok()).count();
        if n_records > 0 {
            tracing::info!(
                broker_id,
                accepted,
                refused = results.len() - accepted,
                first = ?changes.first().map(|change| (change.topic_id, change.partition, &change.new_isr)),
                "ISR changed"
            );
        }
        Ok(ControllerReply::IsrChanges { results, offset })
    }

    /// ElectLeaders for the named partitions, or every partition.
    pub(super) async fn elect_leaders(
        &self,
        image: &MetadataImage,
        election: election::ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> ControllerResponse {
        let partitions = partitions.unwrap_or_else(|| election::all_partitions(image));
        let mut records = Vec::new();
        let outcomes = partitions
            .into_iter()
            .map(|(topic, index)| {
                let (outcome, record) = election::elect(image, &topic, index, election, &self.config.policy);
                records.extend(record);
                (topic, index, outcome)
            })
            .collect();
        let offset = self.commit_any(image, records).await?;
        tracing::info!(?election, "leader election asked for");
        Ok(ControllerReply::Elections { outcomes, offset })
    }

    /// The automatic preferred-leader rebalance, when its check interval has passed
    /// (under the write lock).
    pub(super) async fn rebalance_leaders(&self) {
        let Some(rebalance) = self.config.leader_rebalance else {
            return;
        };
        let now = crate::common::now_ms();
        {
            let mut last = self.last_rebalance_ms.lock();
            if now - *last < rebalance.check_interval_ms {
                return;
            }
            *last = now;
        }
        let image = self.image.borrow().clone();
        let records = election::rebalance(&image, rebalance.imbalance_percentage, &self.config.policy);
        if records.is_empty() {
            return;
        }
        let moved = records.len();
        match self.commit(records).await {
            Ok(_) => tracing::info!(partitions = moved, "leadership moved back to preferred replicas"),
            Err(error) => tracing::warn!(%error, "could not move leadership back to preferred replicas"),
        }
    }

    /// AlterPartitionReassignments: each partition's target replicas (None cancels).
    pub(super) async fn reassign(
        &self,
        image: &MetadataImage,
        changes: Vec<(String, i32, Option<Vec<i32>>)>,
    ) -> ControllerResponse {
        let mut records = Vec::new();
        let outcomes = changes
            .into_iter()
            .map(|(topic, index, target)| {
                let outcome = reassignment::reassign(image, &topic, index, target.as_deref())
                    .map(|planned| records.extend(planned));
                (topic, index, outcome)
            })
            .collect();
        let offset = self.commit_any(image, records).await?;
        Ok(ControllerReply::Reassignments { outcomes, offset })
    }
}
