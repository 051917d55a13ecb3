//! The broker follows the metadata image: local partitions are created, updated and
//! deleted to match what the image gives this broker; and heartbeats keep its session
//! with the active controller.
//!
//! Publishing is level-triggered: each pass compares the whole image with the local
//! partitions, so a missed intermediate image never leaves anything behind.

use super::{Broker, DEFAULT_CONTROLLER_TIMEOUT, Registration, register};
use crate::cluster::image::MetadataImage;
use crate::controller::rpc::{ControllerError, ControllerReply, ControllerRequest};
use crate::log::LogError;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;

impl Broker {
    /// Brings the local partitions in line with `image`, then records its offset as
    /// published.
    pub(super) fn publish(&self, image: &MetadataImage) -> Result<(), LogError> {
        let mut published_topics = self.publishing.lock();
        let deleted: std::collections::HashSet<String> = published_topics
            .iter()
            .filter(|(name, id)| image.topic(name).is_none_or(|topic| topic.topic_id != **id))
            .map(|(name, _)| name.clone())
            .collect();
        *published_topics = image
            .topics
            .values()
            .map(|topic| (topic.name.clone(), topic.topic_id))
            .collect();
        crate::group::host::drop_offsets_of_deleted_topics(&self.groups, &deleted);
        let result = self.replicas.apply_image(image);
        self.published.send_replace(image.offset);
        result
    }
}

/// Publishes every new image until the broker is dropped.
pub(super) async fn follow_image(broker: Weak<Broker>, mut image: watch::Receiver<Arc<MetadataImage>>) {
    loop {
        if image.changed().await.is_err() {
            break;
        }
        let current = image.borrow_and_update().clone();
        let Some(broker) = broker.upgrade() else { break };
        if let Err(error) = broker.publish(&current) {
            tracing::error!(%error, offset = current.offset, "could not apply metadata to local partitions");
        }
        crate::group::host::follow_leadership(broker.as_ref());
        crate::group::share_state::follow_leadership(broker.as_ref());
        broker.transactions.follow_leadership().await;
        // Share-partitions whose partition this broker no longer leads are forgotten:
        // the next leader loads their persisted state.
        broker.groups.shares.retain(|topic_id, index| {
            current.topic_by_id(topic_id).is_some_and(|topic| {
                let tp = crate::log::TopicPartition::new(&topic.name, index);
                broker
                    .replicas
                    .partition(&tp)
                    .is_some_and(|partition| partition.is_leader())
            })
        });
    }
}

/// A broker without a controller of its own: long-polls the active controller for the
/// committed image and publishes each newer one, until the broker is gone.
pub(super) async fn fetch_metadata(
    controller: Arc<crate::controller::client::ControllerClient>,
    sender: watch::Sender<Arc<MetadataImage>>,
) {
    while !sender.is_closed() {
        let after_offset = sender.borrow().offset;
        let request = ControllerRequest::FetchMetadata {
            after_offset,
            max_wait_ms: 1_000,
        };
        match controller.request(request, Duration::from_secs(5)).await {
            Ok(ControllerReply::Metadata(Some(image))) if image.offset > after_offset => {
                sender.send_replace(Arc::new(*image));
            }
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "cannot fetch metadata from the active controller");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Heartbeats to the active controller every `broker.heartbeat.interval.ms`, reporting
/// how far this broker has applied the metadata (which gets it unfenced once caught
/// up), and registers again if the controller no longer knows this registration.
pub(super) async fn heartbeat(broker: Weak<Broker>) {
    let interval = match broker.upgrade() {
        Some(broker) => Duration::from_millis(broker.config.broker_heartbeat_interval_ms),
        None => return,
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(broker) = broker.upgrade() else { break };
        if broker.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        broker
            .send_heartbeat(interval.max(Duration::from_millis(500)))
            .await;
    }
}

impl Broker {
    /// One heartbeat; returns whether the controller considers this broker fenced
    /// (None when it did not answer).
    pub(super) async fn send_heartbeat(&self, timeout: Duration) -> Option<bool> {
        let Registration {
            incarnation_id,
            broker_epoch,
        } = *self.registration.lock();
        let request = ControllerRequest::BrokerHeartbeat {
            broker_id: self.config.node_id,
            broker_epoch,
            metadata_offset: *self.published.borrow(),
        };
        match self.controller.request(request, timeout).await {
            Ok(ControllerReply::Heartbeat { fenced }) => Some(fenced),
            Ok(other) => {
                tracing::error!(?other, "unexpected answer to a heartbeat");
                None
            }
            Err(ControllerError::Command(error)) => {
                tracing::warn!(%error, "registration lost; registering again");
                let epoch = tokio::time::timeout(
                    DEFAULT_CONTROLLER_TIMEOUT,
                    register(&self.controller, &self.config, incarnation_id, -1),
                )
                .await;
                if let Ok(broker_epoch) = epoch {
                    self.registration.lock().broker_epoch = broker_epoch;
                }
                None
            }
            Err(error) => {
                tracing::debug!(%error, "heartbeat not answered");
                None
            }
        }
    }

    /// Heartbeats until the controller has unfenced this broker and the local image
    /// shows it, as a starting Kafka broker does before it serves.
    pub(super) async fn wait_until_unfenced(&self) {
        let node_id = self.config.node_id;
        loop {
            if self.send_heartbeat(Duration::from_secs(5)).await == Some(false) {
                let mut image = self.image.clone();
                let live = tokio::time::timeout(
                    Duration::from_secs(1),
                    image.wait_for(|image| image.is_live(node_id)),
                )
                .await;
                if matches!(live, Ok(Ok(_))) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
