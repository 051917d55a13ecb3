//! A replica fetcher's side of its incremental fetch session with a leader (KIP-227),
//! as a pure state machine: one session per broker pair, as Kafka's followers keep.
//!
//! The first fetch is full and opens the session (epoch 0). Later fetches name only
//! the partitions whose fetch state (offset, log start, epochs, durable end) changed
//! since the leader's session last heard of them, and forget those no longer followed;
//! the leader still reads every partition of the session and answers only those with
//! news. So a follower idle over thousands of partitions sends and receives almost
//! nothing. Any error, a refused session, or a lost connection falls back to a full
//! fetch that opens a new session.

use kafka_protocol::messages::fetch_request::FetchPartition;
use std::collections::HashMap;

/// A partition as a fetch names it: topic id and partition index.
pub type Key = (uuid::Uuid, i32);

/// What goes into the next request.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRequest {
    pub session_id: i32,
    pub epoch: i32,
    /// The partitions to name, in the order given.
    pub partitions: Vec<(uuid::Uuid, FetchPartition)>,
    /// Partitions the leader's session should drop.
    pub forgotten: Vec<Key>,
}

#[derive(Debug, Default)]
pub struct FollowerSession {
    /// The session id and the epoch of the next incremental fetch, once open.
    open: Option<(i32, i32)>,
    /// What the leader's session holds for each partition.
    sent: HashMap<Key, FetchPartition>,
    /// The request in flight: whether it was full, and what the session will hold if
    /// the leader takes it.
    in_flight: Option<(bool, HashMap<Key, FetchPartition>)>,
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX { 1 } else { epoch + 1 }
}

impl FollowerSession {
    /// The request for fetching `wanted` (every partition followed from this leader now).
    pub fn request(&mut self, wanted: Vec<(uuid::Uuid, FetchPartition)>) -> SessionRequest {
        let state: HashMap<Key, FetchPartition> = wanted
            .iter()
            .map(|(topic_id, partition)| ((*topic_id, partition.partition), partition.clone()))
            .collect();
        let request = match self.open {
            None => SessionRequest {
                session_id: 0,
                epoch: 0,
                partitions: wanted,
                forgotten: Vec::new(),
            },
            Some((session_id, epoch)) => SessionRequest {
                session_id,
                epoch,
                partitions: wanted
                    .into_iter()
                    .filter(|(topic_id, partition)| {
                        self.sent.get(&(*topic_id, partition.partition)) != Some(partition)
                    })
                    .collect(),
                forgotten: self
                    .sent
                    .keys()
                    .filter(|key| !state.contains_key(key))
                    .copied()
                    .collect(),
            },
        };
        self.in_flight = Some((self.open.is_none(), state));
        request
    }

    /// The leader answered the request in flight with this top-level error code and
    /// session id.
    pub fn answered(&mut self, error_code: i16, session_id: i32) {
        let Some((full, state)) = self.in_flight.take() else {
            return;
        };
        if error_code != 0 {
            self.reset();
            return;
        }
        self.open = match (full, self.open) {
            // The leader had no room for a session: the next fetch is full again.
            (true, _) if session_id == 0 => None,
            (true, _) => Some((session_id, 1)),
            (false, Some((id, epoch))) => Some((id, next_epoch(epoch))),
            (false, None) => None,
        };
        self.sent = state;
    }

    /// No answer (a lost connection, a timeout): the next fetch is full.
    pub fn reset(&mut self) {
        self.open = None;
        self.sent.clear();
        self.in_flight = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic() -> uuid::Uuid {
        uuid::Uuid::from_u128(7)
    }

    fn at(partition: i32, offset: i64) -> (uuid::Uuid, FetchPartition) {
        (
            topic(),
            FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset),
        )
    }

    fn named(request: &SessionRequest) -> Vec<(i32, i64)> {
        request
            .partitions
            .iter()
            .map(|(_, partition)| (partition.partition, partition.fetch_offset))
            .collect()
    }

    #[test]
    fn after_a_full_fetch_only_changes_are_sent() {
        let mut session = FollowerSession::default();
        let first = session.request(vec![at(0, 5), at(1, 7)]);
        assert_eq!((first.session_id, first.epoch), (0, 0));
        assert_eq!(named(&first), vec![(0, 5), (1, 7)]);
        session.answered(0, 42);
        // Nothing changed: nothing named, the session's next epoch.
        let idle = session.request(vec![at(0, 5), at(1, 7)]);
        assert_eq!((idle.session_id, idle.epoch), (42, 1));
        assert!(idle.partitions.is_empty() && idle.forgotten.is_empty());
        session.answered(0, 42);
        // Partition 1 moved, partition 0 is no longer followed, 2 is new.
        let changed = session.request(vec![at(1, 9), at(2, 0)]);
        assert_eq!(changed.epoch, 2);
        assert_eq!(named(&changed), vec![(1, 9), (2, 0)]);
        assert_eq!(changed.forgotten, vec![(topic(), 0)]);
        session.answered(0, 42);
        assert!(session.request(vec![at(1, 9), at(2, 0)]).partitions.is_empty());
    }

    #[test]
    fn errors_and_refusals_fall_back_to_a_full_fetch() {
        let mut session = FollowerSession::default();
        session.request(vec![at(0, 5)]);
        session.answered(0, 42);
        session.request(vec![at(0, 6)]);
        // FETCH_SESSION_ID_NOT_FOUND: a full fetch next, opening a new session.
        session.answered(70, 0);
        let full = session.request(vec![at(0, 6)]);
        assert_eq!((full.session_id, full.epoch, named(&full)), (0, 0, vec![(0, 6)]));
        // The leader had no room: full again.
        session.answered(0, 0);
        assert_eq!(session.request(vec![at(0, 6)]).epoch, 0);
        session.answered(0, 9);
        // A lost connection: what the leader holds is unknown, so full.
        session.request(vec![at(0, 6)]);
        session.reset();
        assert_eq!(named(&session.request(vec![at(0, 6)])), vec![(0, 6)]);
    }

    #[test]
    fn a_changed_partition_is_resent_until_the_leader_takes_it() {
        let mut session = FollowerSession::default();
        session.request(vec![at(0, 5)]);
        session.answered(0, 42);
        let moved = session.request(vec![at(0, 8)]);
        assert_eq!(named(&moved), vec![(0, 8)]);
        // The request was refused (INVALID_FETCH_SESSION_EPOCH): the session is gone,
        // and the next fetch names everything again.
        session.answered(71, 0);
        assert_eq!(named(&session.request(vec![at(0, 8)])), vec![(0, 8)]);
    }
}
