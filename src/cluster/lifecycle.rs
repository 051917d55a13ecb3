//! Broker lifecycle on the active controller, as pure decisions: registration,
//! heartbeats, and fencing when heartbeats stop for `broker.session.timeout.ms`.
//!
//! A registration from a new incarnation of a broker (a restarted process) fences the
//! old registration at once, in the same batch, without waiting for its session to run
//! out (KIP-966). The broker says how its last process stopped: the broker epoch it
//! recorded at a clean shutdown, or -1. Anything but the epoch of the registration it
//! replaces is an unclean shutdown, after which its log may have lost acknowledged
//! writes: it leaves every ISR and ELR and leads nothing before it can be unfenced
//! (`placement::on_broker_unclean_restart`).
//!
//! Heartbeat times live only in the active controller's memory, as in Kafka: a newly
//! active controller gives every broker a full session from the moment it took over.
//! The clock is passed in.

use super::capacity::Capacity;
use super::image::{Endpoint, MetadataImage, MetadataRecord};
use super::partition_change::ClusterPolicy;
use super::placement;
use std::collections::HashMap;

/// What the controller does with a broker's registration request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationDecision {
    /// The same incarnation is already registered: answer with its epoch.
    AlreadyRegistered { broker_epoch: i64 },
    /// Write these records in one batch (the old registration fenced and, after an
    /// unclean shutdown, the broker out of every ISR and ELR, then the registration);
    /// the broker's epoch is the batch's offset.
    Register {
        records: Vec<MetadataRecord>,
        /// The previous incarnation stopped uncleanly.
        unclean_shutdown: bool,
    },
}

/// What a broker says about itself when it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub broker_id: i32,
    /// Random per process start.
    pub incarnation_id: uuid::Uuid,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    /// The partition replicas it can host (`cluster::capacity`).
    pub capacity: Option<Capacity>,
}

impl Registration {
    fn record(self) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            broker_id: self.broker_id,
            incarnation_id: self.incarnation_id,
            endpoints: self.endpoints,
            rack: self.rack,
            capacity: self.capacity,
        }
    }
}

/// A registration. `previous_broker_epoch` is the epoch the broker recorded at its last
/// clean shutdown, or -1 (unclean, or never registered).
pub fn on_registration(
    image: &MetadataImage,
    registration: Registration,
    previous_broker_epoch: i64,
    policy: &ClusterPolicy,
) -> RegistrationDecision {
    let broker_id = registration.broker_id;
    let registered = image.brokers.get(&broker_id);
    if let Some(registered) = registered
        && registered.incarnation_id == registration.incarnation_id
    {
        if registered.endpoints == registration.endpoints {
            return RegistrationDecision::AlreadyRegistered {
                broker_epoch: registered.broker_epoch,
            };
        }
        // The same process with other endpoints: its log is what it was.
        return RegistrationDecision::Register {
            records: vec![registration.record()],
            unclean_shutdown: false,
        };
    }
    let mut records = Vec::new();
    let mut unclean_shutdown = false;
    if let Some(registered) = registered {
        let clean = previous_broker_epoch >= 0 && previous_broker_epoch == registered.broker_epoch;
        unclean_shutdown = !clean;
        if !registered.fenced {
            records.push(MetadataRecord::FenceBroker {
                broker_id,
                broker_epoch: registered.broker_epoch,
            });
        }
        if unclean_shutdown {
            records.extend(placement::on_broker_unclean_restart(image, broker_id, policy));
        } else if !registered.fenced {
            records.extend(placement::on_broker_fenced(image, broker_id, policy));
        }
    }
    records.push(registration.record());
    RegistrationDecision::Register {
        records,
        unclean_shutdown,
    }
}

/// What the controller does with a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeartbeatDecision {
    /// Unknown broker, or an epoch from an older registration: the broker must register.
    StaleBrokerEpoch,
    /// The broker stays as it is (`fenced` tells which).
    Keep { fenced: bool },
    /// The broker caught up with the metadata up to its own registration: unfence it.
    Unfence,
}

pub fn on_heartbeat(
    image: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
    metadata_offset: i64,
) -> HeartbeatDecision {
    match image.brokers.get(&broker_id) {
        Some(registered) if registered.broker_epoch == broker_epoch => {
            if registered.fenced && metadata_offset >= broker_epoch {
                HeartbeatDecision::Unfence
            } else {
                HeartbeatDecision::Keep {
                    fenced: registered.fenced,
                }
            }
        }
        _ => HeartbeatDecision::StaleBrokerEpoch,
    }
}

/// The active controller's view of broker sessions.
#[derive(Debug, Default)]
pub struct BrokerSessions {
    /// Last heartbeat (or the time this controller became active) per broker id.
    last_contact_ms: HashMap<i32, i64>,
}

impl BrokerSessions {
    /// Starts every registered broker's session afresh (a controller just became active).
    pub fn reset(&mut self, image: &MetadataImage, now_ms: i64) {
        self.last_contact_ms = image
            .brokers
            .keys()
            .map(|broker_id| (*broker_id, now_ms))
            .collect();
    }

    pub fn touch(&mut self, broker_id: i32, now_ms: i64) {
        self.last_contact_ms.insert(broker_id, now_ms);
    }

    /// Live brokers whose session ran out: one FenceBroker record each.
    pub fn expired(
        &self,
        image: &MetadataImage,
        session_timeout_ms: i64,
        now_ms: i64,
    ) -> Vec<MetadataRecord> {
        image
            .live_brokers()
            .filter(|broker| {
                let last = self
                    .last_contact_ms
                    .get(&broker.broker_id)
                    .copied()
                    .unwrap_or(now_ms);
                now_ms - last > session_timeout_ms
            })
            .map(|broker| MetadataRecord::FenceBroker {
                broker_id: broker.broker_id,
                broker_epoch: broker.broker_epoch,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(port: u16) -> Vec<Endpoint> {
        vec![Endpoint {
            listener: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port,
            security_protocol: "PLAINTEXT".into(),
        }]
    }

    fn registered(broker_id: i32, incarnation: u128, offset: i64) -> MetadataImage {
        let mut image = MetadataImage::empty();
        image.apply_batch(
            offset,
            &[MetadataRecord::RegisterBroker {
                broker_id,
                incarnation_id: uuid::Uuid::from_u128(incarnation),
                endpoints: endpoints(1),
                rack: None,
                capacity: None,
            }],
        );
        image
    }

    fn register(
        image: &MetadataImage,
        broker_id: i32,
        incarnation: u128,
        port: u16,
        previous: i64,
    ) -> RegistrationDecision {
        on_registration(
            image,
            Registration {
                broker_id,
                incarnation_id: uuid::Uuid::from_u128(incarnation),
                endpoints: endpoints(port),
                rack: None,
                capacity: None,
            },
            previous,
            &ClusterPolicy::default(),
        )
    }

    #[test]
    fn registration_is_idempotent_per_incarnation() {
        let image = registered(1, 10, 4);
        assert_eq!(
            register(&image, 1, 10, 1, -1),
            RegistrationDecision::AlreadyRegistered { broker_epoch: 4 }
        );
        assert!(matches!(
            register(&image, 1, 11, 1, 4),
            RegistrationDecision::Register { .. }
        ));
        assert!(matches!(
            register(&image, 1, 10, 2, -1),
            RegistrationDecision::Register {
                unclean_shutdown: false,
                ..
            }
        ));
        assert!(matches!(
            register(&image, 2, 10, 1, -1),
            RegistrationDecision::Register {
                unclean_shutdown: false,
                ..
            }
        ));
    }

    #[test]
    fn heartbeat_unfences_a_caught_up_broker_only() {
        let mut image = registered(1, 10, 4);
        assert_eq!(on_heartbeat(&image, 1, 3, 9), HeartbeatDecision::StaleBrokerEpoch);
        assert_eq!(on_heartbeat(&image, 2, 4, 9), HeartbeatDecision::StaleBrokerEpoch);
        assert_eq!(
            on_heartbeat(&image, 1, 4, 3),
            HeartbeatDecision::Keep { fenced: true }
        );
        assert_eq!(on_heartbeat(&image, 1, 4, 4), HeartbeatDecision::Unfence);
        image.apply_batch(
            5,
            &[MetadataRecord::UnfenceBroker {
                broker_id: 1,
                broker_epoch: 4,
            }],
        );
        assert_eq!(
            on_heartbeat(&image, 1, 4, 5),
            HeartbeatDecision::Keep { fenced: false }
        );
    }

    #[test]
    fn sessions_expire_after_the_timeout_and_reset_on_takeover() {
        let mut image = registered(1, 10, 4);
        image.apply_batch(
            5,
            &[MetadataRecord::UnfenceBroker {
                broker_id: 1,
                broker_epoch: 4,
            }],
        );
        let mut sessions = BrokerSessions::default();
        sessions.reset(&image, 1_000);
        assert!(sessions.expired(&image, 9_000, 10_000).is_empty());
        assert_eq!(
            sessions.expired(&image, 9_000, 10_001),
            vec![MetadataRecord::FenceBroker {
                broker_id: 1,
                broker_epoch: 4
            }]
        );
        sessions.touch(1, 10_000);
        assert!(sessions.expired(&image, 9_000, 15_000).is_empty());
        // A fenced broker is not fenced again.
        image.apply_batch(
            6,
            &[MetadataRecord::FenceBroker {
                broker_id: 1,
                broker_epoch: 4,
            }],
        );
        assert!(sessions.expired(&image, 9_000, 100_000).is_empty());
        // A new controller gives everyone a fresh session.
        sessions.reset(&image, 100_000);
        image.apply_batch(
            7,
            &[MetadataRecord::UnfenceBroker {
                broker_id: 1,
                broker_epoch: 4,
            }],
        );
        assert!(sessions.expired(&image, 9_000, 100_500).is_empty());
    }
}
