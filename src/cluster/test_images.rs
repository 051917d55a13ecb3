//! Metadata images for the cluster module's tests.

use super::image::{Endpoint, MetadataImage, MetadataRecord};

/// Brokers `ids` registered (broker epoch = their id), those in `live` unfenced.
pub fn brokers(ids: impl IntoIterator<Item = i32>, live: &[i32]) -> MetadataImage {
    let mut image = MetadataImage::empty();
    for broker_id in ids {
        image.apply_batch(
            broker_id as i64,
            &[MetadataRecord::RegisterBroker {
                broker_id,
                incarnation_id: uuid::Uuid::nil(),
                endpoints: vec![Endpoint {
                    listener: "PLAINTEXT".into(),
                    host: "h".into(),
                    port: 1,
                    security_protocol: "PLAINTEXT".into(),
                }],
                rack: None,
                capacity: None,
            }],
        );
        if live.contains(&broker_id) {
            image.apply_batch(
                100 + broker_id as i64,
                &[MetadataRecord::UnfenceBroker {
                    broker_id,
                    broker_epoch: broker_id as i64,
                }],
            );
        }
    }
    image
}
