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
}
