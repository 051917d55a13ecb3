//! Fencing a broker whose process is gone without waiting out its session (pure).
//!
//! A broker's session normally ends `broker.session.timeout.ms` after its last
//! heartbeat. When the process itself died (SIGKILL, a crash), the kernel of its host
//! closes its sockets at once: the controller sees a CONTROLLER connection from it end,
//! and a connect to its listeners is refused (the host answers, nobody listens). Both
//! together are definitive; then it is fenced at once. Anything else still waits for
//! the session: a paused process keeps its connections and its listeners accept; a
//! network partition or a power cut closes nothing and answers no connect.
//!
//! The runtime (`controller::Controller`) records what it hears and which connections
//! end, asks [`DeathEvidence::to_probe`] whom to probe, probes their listeners, and
//! passes the result to [`DeathEvidence::verdict`]. A node that is heard from again
//! (a heartbeat, a registration, a Raft append) has its evidence cleared.

use super::image::MetadataImage;
use std::collections::HashMap;

/// How long after a connection ends the listeners are probed: the kernel closes a dead
/// process's descriptors one by one, so its listener may outlive a connection briefly.
pub const SETTLE_MS: i64 = 50;

/// What a connect to a node's listeners found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Every listener refused the connect: the host is up, no process listens.
    Refused,
    /// Some listener accepted: the process (or at least its socket) is alive.
    Answered,
    /// No answer in time (a partition, a powered-off host): proves nothing.
    NoAnswer,
}

/// Per node: when it was last heard from, and when a connection of its ended after that.
#[derive(Debug, Default)]
pub struct DeathEvidence {
    heard_ms: HashMap<i32, i64>,
    closed_ms: HashMap<i32, i64>,
}

impl DeathEvidence {
    /// A request from `node` arrived: it is alive, whatever ended before.
    pub fn heard(&mut self, node: i32, now_ms: i64) {
        self.heard_ms.insert(node, now_ms);
        self.closed_ms.remove(&node);
    }

    /// A CONTROLLER connection from `node` ended (end of stream or a reset).
    pub fn connection_ended(&mut self, node: i32, now_ms: i64) {
        self.closed_ms.entry(node).or_insert(now_ms);
    }

    /// The nodes among `candidates` to probe now: a connection of theirs ended at least
    /// [`SETTLE_MS`] ago and nothing was heard from them since.
    pub fn to_probe(&self, candidates: impl IntoIterator<Item = i32>, now_ms: i64) -> Vec<i32> {
        candidates
            .into_iter()
            .filter(|node| {
                self.closed_ms.get(node).is_some_and(|closed| {
                    now_ms - closed >= SETTLE_MS
                        && self.heard_ms.get(node).is_none_or(|heard| heard <= closed)
                })
            })
            .collect()
    }

    /// The probe's outcome for `node`: true when it is to be fenced at once. A node that
    /// answered, or could not be reached, is left to its session (its evidence is used
    /// up); a dead one stays suspect until it is heard from again, so that a failed
    /// fence is tried again, and a follower that saw the active controller die still
    /// holds the evidence when it becomes the active controller itself.
    pub fn verdict(&mut self, node: i32, probe: Probe) -> bool {
        if probe != Probe::Refused {
            self.closed_ms.remove(&node);
        }
        probe == Probe::Refused
    }
}

/// How long Metadata still names a broker after it was fenced.
pub const LISTED_AFTER_FENCE_MS: i64 = 2_000;

/// Brokers Metadata keeps naming for a while after they were fenced while leading
/// partitions (a crash, not a controlled shutdown, which moves leadership away first).
/// A client that sees such a broker vanish from Metadata drops its handle, and
/// librdkafka then parks that broker's partitions, new leaders and all, until its next
/// once-a-second leader scan; a broker that disappears a little later costs it nothing.
/// A broker that led nothing is never kept: clients have nothing to move from it, and
/// some (kafka-python's admin client) pick any listed broker to connect to.
#[derive(Debug, Default)]
pub struct RecentlyFenced {
    fenced_at_ms: HashMap<i32, i64>,
}

impl RecentlyFenced {
    /// A new image replaces `before`: brokers it fences that led a partition in
    /// `before` are listed from `now_ms` on; brokers no longer fenced are forgotten.
    pub fn observe(&mut self, before: &MetadataImage, after: &MetadataImage, now_ms: i64) {
        let newly_fenced: Vec<i32> = after
            .brokers
            .values()
            .filter(|broker| broker.fenced && before.is_live(broker.broker_id))
            .map(|broker| broker.broker_id)
            .collect();
        if !newly_fenced.is_empty() {
            let leaders: std::collections::HashSet<i32> = before
                .topics
                .values()
                .flat_map(|topic| topic.partitions.iter().map(|partition| partition.leader))
                .collect();
            for broker in newly_fenced.into_iter().filter(|broker| leaders.contains(broker)) {
                self.fenced_at_ms.insert(broker, now_ms);
            }
        }
        self.fenced_at_ms.retain(|broker, _| {
            after
                .brokers
                .get(broker)
                .is_some_and(|registered| registered.fenced)
        });
    }

    /// The fenced brokers to name in Metadata at `now_ms`.
    pub fn listed(&self, now_ms: i64) -> Vec<i32> {
        self.fenced_at_ms
            .iter()
            .filter(|(_, at)| now_ms - **at < LISTED_AFTER_FENCE_MS)
            .map(|(broker, _)| *broker)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_process_is_fenced_once_its_connection_ends_and_its_listener_refuses() {
        let mut evidence = DeathEvidence::default();
        evidence.heard(2, 1_000);
        assert!(evidence.to_probe([1, 2, 3], 5_000).is_empty(), "nothing ended");
        evidence.connection_ended(2, 1_500);
        assert!(
            evidence.to_probe([2], 1_520).is_empty(),
            "the listener may close a moment later"
        );
        assert_eq!(evidence.to_probe([1, 2, 3], 1_550), vec![2]);
        assert!(evidence.verdict(2, Probe::Refused));
        assert_eq!(evidence.to_probe([2], 2_000), vec![2], "dead until heard from");
        // A new incarnation registers: heard from again.
        evidence.heard(2, 3_000);
        assert!(evidence.to_probe([2], 4_000).is_empty());
    }

    #[test]
    fn a_paused_process_or_a_partition_or_a_power_cut_waits_for_the_session() {
        let mut evidence = DeathEvidence::default();
        // Paused: its connections stay open, nothing ended.
        evidence.heard(1, 1_000);
        assert!(evidence.to_probe([1], 60_000).is_empty());
        // A connection dropped by a live broker (a timed-out call): its listener answers.
        evidence.connection_ended(1, 2_000);
        assert_eq!(evidence.to_probe([1], 2_100), vec![1]);
        assert!(!evidence.verdict(1, Probe::Answered));
        assert!(evidence.to_probe([1], 3_000).is_empty());
        // A partition or a power cut: no reset reaches us, and a probe gets no answer.
        evidence.connection_ended(1, 4_000);
        assert!(!evidence.verdict(1, Probe::NoAnswer));
        assert!(evidence.to_probe([1], 9_000).is_empty());
    }

    #[test]
    fn a_node_heard_after_its_connection_ended_is_alive() {
        let mut evidence = DeathEvidence::default();
        evidence.connection_ended(3, 1_000);
        evidence.heard(3, 1_010);
        assert!(evidence.to_probe([3], 2_000).is_empty());
        // Not heard since this controller took over: a connection end counts.
        let mut fresh = DeathEvidence::default();
        fresh.connection_ended(3, 1_000);
        assert_eq!(fresh.to_probe([3], 1_100), vec![3]);
        // Only candidates (live, unfenced brokers) are probed.
        assert!(fresh.to_probe([1, 2], 1_100).is_empty());
    }

    #[test]
    fn a_broker_fenced_while_leading_is_listed_for_a_while_and_one_that_led_nothing_is_not() {
        use crate::cluster::image::MetadataRecord;
        let topic_id = uuid::Uuid::from_u128(5);
        let mut before = crate::cluster::test_images::brokers(1..=3, &[1, 2, 3]);
        before.apply_batch(
            10,
            &[
                MetadataRecord::Topic {
                    name: "t".into(),
                    topic_id,
                },
                MetadataRecord::Partition {
                    topic_id,
                    partition: 0,
                    replicas: vec![1, 2, 3],
                    isr: vec![1, 2, 3],
                    leader: 1,
                    leader_epoch: 0,
                },
            ],
        );
        let fence = |image: &MetadataImage, broker_id: i32| {
            let mut after = image.clone();
            after.apply_batch(
                20,
                &[MetadataRecord::FenceBroker {
                    broker_id,
                    broker_epoch: broker_id as i64,
                }],
            );
            after
        };
        let mut recent = RecentlyFenced::default();
        // Broker 1 led t-0 when it was fenced (a crash): listed for a while.
        let after = fence(&before, 1);
        recent.observe(&before, &after, 10_000);
        assert_eq!(recent.listed(11_999), vec![1]);
        assert!(recent.listed(12_000).is_empty());
        // Broker 3 led nothing (a controlled shutdown moved its leadership): not listed.
        let later = fence(&after, 3);
        recent.observe(&after, &later, 13_000);
        assert!(recent.listed(13_001).is_empty());
        // Unfenced: forgotten.
        recent.observe(&later, &before, 13_500);
        assert!(recent.listed(13_501).is_empty());
    }
}
