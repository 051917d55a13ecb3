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
//!
//! The session compares fetch states `P` (the fetcher's small copyable one), so the
//! request's protocol structs are built only for the partitions it names.

use std::collections::{HashMap, HashSet};

/// A partition as a fetch names it: topic id and partition index.
pub type Key = (uuid::Uuid, i32);

/// What goes into the next request.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRequest<P> {
    pub session_id: i32,
    pub epoch: i32,
    /// The partitions to name, in the order given.
    pub partitions: Vec<(Key, P)>,
    /// Partitions the leader's session should drop.
    pub forgotten: Vec<Key>,
}

/// The request in flight, as the session will hold it if the leader takes it.
#[derive(Debug)]
enum InFlight<P> {
    /// A full fetch: the whole session.
    Full(HashMap<Key, P>),
    /// An incremental fetch: what changed.
    Incremental {
        changed: Vec<(Key, P)>,
        forgotten: Vec<Key>,
    },
}

#[derive(Debug)]
pub struct FollowerSession<P> {
    /// The session id and the epoch of the next incremental fetch, once open.
    open: Option<(i32, i32)>,
    /// What the leader's session holds for each partition.
    sent: HashMap<Key, P>,
    in_flight: Option<InFlight<P>>,
}

impl<P> Default for FollowerSession<P> {
    fn default() -> Self {
        FollowerSession {
            open: None,
            sent: HashMap::new(),
            in_flight: None,
        }
    }
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX { 1 } else { epoch + 1 }
}

impl<P: Clone + PartialEq> FollowerSession<P> {
    /// The request for fetching `wanted` (every partition followed from this leader
    /// now, each once).
    pub fn request(&mut self, wanted: Vec<(Key, P)>) -> SessionRequest<P> {
        let Some((session_id, epoch)) = self.open else {
            self.in_flight = Some(InFlight::Full(wanted.iter().cloned().collect()));
            return SessionRequest {
                session_id: 0,
                epoch: 0,
                partitions: wanted,
                forgotten: Vec::new(),
            };
        };
        let mut known = 0;
        let mut changed = Vec::new();
        for (key, state) in &wanted {
            match self.sent.get(key) {
                Some(sent) => {
                    known += 1;
                    if sent != state {
                        changed.push((*key, state.clone()));
                    }
                }
                None => changed.push((*key, state.clone())),
            }
        }
        // Every partition of the session is still wanted unless fewer were found.
        let forgotten: Vec<Key> = if known == self.sent.len() {
            Vec::new()
        } else {
            let wanted: HashSet<&Key> = wanted.iter().map(|(key, _)| key).collect();
            self.sent
                .keys()
                .filter(|key| !wanted.contains(key))
                .copied()
                .collect()
        };
        self.in_flight = Some(InFlight::Incremental {
            changed: changed.clone(),
            forgotten: forgotten.clone(),
        });
        SessionRequest {
            session_id,
            epoch,
            partitions: changed,
            forgotten,
        }
    }

    /// The leader answered the request in flight with this top-level error code and
    /// session id.
    pub fn answered(&mut self, error_code: i16, session_id: i32) {
        let Some(in_flight) = self.in_flight.take() else {
            return;
        };
        if error_code != 0 {
            self.reset();
            return;
        }
        match in_flight {
            // The leader had no room for a session: the next fetch is full again.
            InFlight::Full(_) if session_id == 0 => self.reset(),
            InFlight::Full(state) => {
                self.open = Some((session_id, 1));
                self.sent = state;
            }
            InFlight::Incremental { changed, forgotten } => {
                let Some((id, epoch)) = self.open else {
                    self.reset();
                    return;
                };
                self.open = Some((id, next_epoch(epoch)));
                for key in forgotten {
                    self.sent.remove(&key);
                }
                self.sent.extend(changed);
            }
        }
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

    /// A partition and its fetch offset (the fetch state the tests compare).
    fn at(partition: i32, offset: i64) -> (Key, i64) {
        ((topic(), partition), offset)
    }

    fn named(request: &SessionRequest<i64>) -> Vec<(i32, i64)> {
        request
            .partitions
            .iter()
            .map(|((_, partition), offset)| (*partition, *offset))
            .collect()
    }

    #[test]
    fn after_a_full_fetch_only_changes_are_sent() {
        let mut session = FollowerSession::<i64>::default();
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
        let mut session = FollowerSession::<i64>::default();
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
        let mut session = FollowerSession::<i64>::default();
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
