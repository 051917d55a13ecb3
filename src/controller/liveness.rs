//! The runtime of fast fencing (`cluster::fencing`): what the CONTROLLER listener hears
//! and which of its connections end, the probes of a silent node's listeners, and what
//! follows a refused probe: the active controller fences a dead broker at once, and a
//! follower whose active controller died asks for an election without waiting out the
//! election timeout.

use super::Controller;
use crate::cluster::fencing::Probe;
use crate::cluster::image::{MetadataImage, MetadataRecord};
use crate::cluster::placement;
use crate::common::now_ms;
use std::time::Duration;

/// How long a probe's connect may take: on a live host a refusal comes back at once.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// How often a follower that saw the active controller die asks for an election again
/// while none succeeds.
const ELECTION_RETRY: Duration = Duration::from_millis(250);

impl Controller {
    /// A request from `node` arrived on the CONTROLLER listener.
    pub fn heard_from(&self, node: i32) {
        self.evidence.lock().heard(node, now_ms());
    }

    /// A CONTROLLER connection from `node` ended.
    pub fn connection_ended(&self, node: i32) {
        self.evidence.lock().connection_ended(node, now_ms());
    }

    /// On the active controller: the live brokers whose connections ended and whose
    /// listeners now refuse connections, probed outside the write lock.
    pub(super) async fn dead_brokers(&self, image: &MetadataImage) -> Vec<(i32, i64)> {
        let me = self.config.node_id;
        let candidates = image
            .live_brokers()
            .map(|broker| broker.broker_id)
            .filter(|broker| *broker != me);
        let suspects = self.evidence.lock().to_probe(candidates, now_ms());
        let mut dead = Vec::new();
        for broker_id in suspects {
            let Some(broker) = image.brokers.get(&broker_id) else {
                continue;
            };
            let addresses = broker
                .endpoints
                .iter()
                .map(|endpoint| format!("{}:{}", endpoint.host, endpoint.port))
                .collect();
            let probe = probe(addresses).await;
            if self.evidence.lock().verdict(broker_id, probe) {
                dead.push((broker_id, broker.broker_epoch));
            } else {
                tracing::info!(
                    broker_id,
                    ?probe,
                    "a broker's CONTROLLER connection ended, but it is not known dead"
                );
            }
        }
        dead
    }

    /// Fences a broker at once (under the write lock), moving its leaderships.
    pub(super) async fn fence_dead(&self, broker_id: i32, broker_epoch: i64) {
        let image = self.image.borrow().clone();
        if !image
            .brokers
            .get(&broker_id)
            .is_some_and(|broker| !broker.fenced && broker.broker_epoch == broker_epoch)
        {
            return; // re-registered or fenced meanwhile
        }
        let mut records = vec![MetadataRecord::FenceBroker {
            broker_id,
            broker_epoch,
        }];
        records.extend(placement::on_broker_fenced(
            &image,
            broker_id,
            &self.config.policy,
        ));
        match self.commit(records).await {
            Ok(_) => tracing::warn!(
                broker_id,
                "broker fenced at once: its CONTROLLER connection ended and its listeners refuse connections"
            ),
            Err(error) => tracing::warn!(broker_id, %error, "could not fence a dead broker"),
        }
    }

    /// On a follower: when the active controller's connection ended and its CONTROLLER
    /// listener refuses connections, the lowest-numbered other voter starts an election
    /// at once (only one, so that the survivors do not split their votes), and again
    /// every [`ELECTION_RETRY`] while no leader is elected: the other followers refuse
    /// their votes until the dead leader's lease (the election timeout's upper bound)
    /// has run out since its last append.
    pub(super) async fn replace_dead_leader(&self) {
        let now = now_ms();
        let current = self.leader().and_then(|leader| i32::try_from(leader).ok());
        let dead = {
            let mut suspect = self.dead_leader.lock();
            match (current, *suspect) {
                (Some(leader), _) if leader == self.config.node_id => None,
                (Some(leader), Some((dead, _))) if leader != dead => {
                    *suspect = None; // a new leader was elected
                    None
                }
                (Some(leader), None) => Some((leader, None)),
                (_, Some((dead, last_try))) => Some((dead, Some(last_try))),
                (None, None) => None,
            }
        };
        let Some((leader, last_try)) = dead else { return };
        if self.evidence.lock().to_probe([leader], now).is_empty() {
            return;
        }
        if last_try.is_some_and(|last| now - last < ELECTION_RETRY.as_millis() as i64) {
            return;
        }
        let first_survivor = self.config.voters.keys().copied().find(|voter| *voter != leader);
        if first_survivor != Some(self.config.node_id) {
            return;
        }
        if last_try.is_none() {
            let probe = match self.config.voters.get(&leader).cloned() {
                Some(address) => probe(vec![address]).await,
                None => Probe::NoAnswer,
            };
            if !self.evidence.lock().verdict(leader, probe) {
                return;
            }
            tracing::warn!(
                leader,
                "the active controller's process is gone: starting an election"
            );
        }
        *self.dead_leader.lock() = Some((leader, now));
        if let Err(error) = self.raft.trigger().elect().await {
            tracing::warn!(%error, "could not start an election");
        }
    }
}

/// Connects to each address at once: any that accepts means alive; all refusing means
/// nobody listens; anything else (a timeout, an unreachable host) proves nothing.
async fn probe(addresses: Vec<String>) -> Probe {
    if addresses.is_empty() {
        return Probe::NoAnswer;
    }
    let attempts = addresses.into_iter().map(|address| async move {
        match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(address)).await {
            Ok(Ok(_)) => Probe::Answered,
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => Probe::Refused,
            _ => Probe::NoAnswer,
        }
    });
    let outcomes = futures::future::join_all(attempts).await;
    if outcomes.contains(&Probe::Answered) {
        Probe::Answered
    } else if outcomes.iter().all(|outcome| *outcome == Probe::Refused) {
        Probe::Refused
    } else {
        Probe::NoAnswer
    }
}
