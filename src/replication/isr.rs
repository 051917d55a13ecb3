//! Pure decisions of a partition leader: follower progress, the high watermark, and
//! ISR changes to propose. No IO; time is passed in.
//!
//! - A follower is *caught up* at a fetch whose offset reached the leader's log end, or
//!   reached the log end the leader had at the follower's previous fetch (Kafka's
//!   rule): then it is at most one fetch behind.
//! - The high watermark is the smallest log end offset in the ISR (the leader's own
//!   included) and never goes back; it waits while an ISR member has not fetched since
//!   this leadership began.
//! - A follower leaves the ISR when it has not been caught up for
//!   `replica.lag.time.max.ms`; it joins when its log end reaches the high watermark and
//!   the start of the leader's epoch (so it has truncated any diverged tail), it was
//!   caught up within `replica.lag.time.max.ms`, and its broker may join an ISR: not
//!   fenced, not shutting down (KIP-841), so a broker that is down is never proposed.

use std::collections::HashMap;

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    /// The follower's log end offset (its last fetch offset); -1 until it fetches.
    pub log_end_offset: i64,
    pub last_caught_up_ms: i64,
    pub last_fetch_ms: i64,
    /// The follower's log start offset as its last fetch said (-1 until known).
    pub log_start_offset: i64,
    /// The leader's log end offset at the follower's last fetch.
    leader_end_at_last_fetch: i64,
    /// What the follower said it has fsynced, when its flush policy makes it promise
    /// durability (`flush.messages=1`): only that much counts as replicated, so that a
    /// power cut of the follower cannot erase an acknowledged write. None: all it holds.
    pub durable_end_offset: Option<i64>,
}

impl FollowerState {
    /// A follower as a new leadership starts: unknown position, but a full
    /// `replica.lag.time.max.ms` of grace before it counts as lagging.
    pub fn new(now_ms: i64) -> Self {
        FollowerState {
            log_end_offset: -1,
            last_caught_up_ms: now_ms,
            last_fetch_ms: -1,
            log_start_offset: -1,
            leader_end_at_last_fetch: -1,
            durable_end_offset: None,
        }
    }

    /// The end of what counts as replicated on this follower, for the high watermark:
    /// its log end, or the fsynced part of it for a durable follower.
    pub fn replicated_end_offset(&self) -> i64 {
        self.durable_end_offset
            .map_or(self.log_end_offset, |durable| durable.min(self.log_end_offset))
    }

    pub fn on_fetch(&mut self, fetch_offset: i64, leader_log_end_offset: i64, now_ms: i64) {
        if fetch_offset >= leader_log_end_offset {
            self.last_caught_up_ms = now_ms;
        } else if self.leader_end_at_last_fetch >= 0 && fetch_offset >= self.leader_end_at_last_fetch {
            self.last_caught_up_ms = self.last_caught_up_ms.max(self.last_fetch_ms);
        }
        self.log_end_offset = fetch_offset;
        self.leader_end_at_last_fetch = leader_log_end_offset;
        self.last_fetch_ms = now_ms;
    }
}

/// The high watermark after a change: the smallest replicated end offset in the ISR
/// (log end, or its fsynced part for a durable follower), never below `current`.
pub fn high_watermark(
    current: i64,
    leader_id: i32,
    leader_log_end_offset: i64,
    isr: &[i32],
    followers: &HashMap<i32, FollowerState>,
) -> i64 {
    let mut lowest = leader_log_end_offset;
    for replica in isr.iter().filter(|replica| **replica != leader_id) {
        match followers.get(replica) {
            Some(follower) if follower.log_end_offset >= 0 => {
                lowest = lowest.min(follower.replicated_end_offset());
            }
            _ => return current,
        }
    }
    current.max(lowest)
}

/// What the leader sees when it considers the ISR.
pub struct IsrView<'a> {
    pub leader_id: i32,
    pub replicas: &'a [i32],
    pub isr: &'a [i32],
    pub followers: &'a HashMap<i32, FollowerState>,
    pub high_watermark: i64,
    /// Where the leader's current epoch began in its log.
    pub epoch_start_offset: i64,
    pub replica_lag_time_max_ms: i64,
    pub now_ms: i64,
    /// Brokers that may not join an ISR now (fenced or unregistered in the image).
    pub ineligible: &'a [i32],
}

/// The ISR to propose to the controller, if it should change: lagging followers out,
/// caught-up replicas in, in replica order.
pub fn proposed_isr(view: &IsrView<'_>) -> Option<Vec<i32>> {
    let lagging = |replica: i32| {
        view.followers
            .get(&replica)
            .is_some_and(|follower| view.now_ms - follower.last_caught_up_ms > view.replica_lag_time_max_ms)
    };
    let caught_up = |replica: i32| {
        !view.ineligible.contains(&replica)
            && view.followers.get(&replica).is_some_and(|follower| {
                follower.log_end_offset >= view.high_watermark
                    && follower.log_end_offset >= view.epoch_start_offset
                    && view.now_ms - follower.last_caught_up_ms <= view.replica_lag_time_max_ms
            })
    };
    let proposed: Vec<i32> = view
        .replicas
        .iter()
        .copied()
        .filter(|replica| {
            *replica == view.leader_id
                || (view.isr.contains(replica) && !lagging(*replica))
                || (!view.isr.contains(replica) && caught_up(*replica))
        })
        .collect();
    let mut current: Vec<i32> = view.isr.to_vec();
    current.sort_unstable();
    let mut sorted = proposed.clone();
    sorted.sort_unstable();
    (sorted != current).then_some(proposed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follower(log_end_offset: i64, last_caught_up_ms: i64) -> FollowerState {
        FollowerState {
            log_end_offset,
            last_caught_up_ms,
            last_fetch_ms: last_caught_up_ms,
            log_start_offset: 0,
            leader_end_at_last_fetch: log_end_offset,
            durable_end_offset: None,
        }
    }

    #[test]
    fn high_watermark_is_the_lowest_isr_log_end_and_never_falls() {
        let followers = HashMap::from([(2, follower(7, 0)), (3, follower(4, 0))]);
        assert_eq!(high_watermark(0, 1, 10, &[1, 2, 3], &followers), 4);
        assert_eq!(
            high_watermark(0, 1, 10, &[1, 2], &followers),
            7,
            "3 is out of the ISR"
        );
        assert_eq!(high_watermark(0, 1, 10, &[1], &followers), 10, "a lone leader");
        assert_eq!(
            high_watermark(6, 1, 10, &[1, 2, 3], &followers),
            6,
            "never goes back"
        );
        let unknown = HashMap::from([(2, FollowerState::new(0))]);
        assert_eq!(
            high_watermark(3, 1, 10, &[1, 2], &unknown),
            3,
            "waits for the first fetch"
        );
    }

    #[test]
    fn caught_up_follows_kafkas_rule() {
        let mut state = FollowerState::new(0);
        state.on_fetch(5, 10, 100);
        assert_eq!(
            state.last_caught_up_ms, 0,
            "behind, and no earlier fetch to compare"
        );
        state.on_fetch(10, 12, 200);
        assert_eq!(
            state.last_caught_up_ms, 100,
            "reached where the leader was at the last fetch"
        );
        state.on_fetch(12, 12, 300);
        assert_eq!(state.last_caught_up_ms, 300, "at the leader's end");
        state.on_fetch(12, 20, 400);
        assert_eq!(state.last_caught_up_ms, 300);
        state.on_fetch(13, 30, 500);
        assert_eq!(state.last_caught_up_ms, 300, "fell behind what the leader had");
        assert_eq!(state.log_end_offset, 13);
    }

    fn view<'a>(
        isr: &'a [i32],
        followers: &'a HashMap<i32, FollowerState>,
        high_watermark: i64,
        now_ms: i64,
    ) -> IsrView<'a> {
        IsrView {
            leader_id: 1,
            replicas: &[1, 2, 3],
            isr,
            followers,
            high_watermark,
            epoch_start_offset: 5,
            replica_lag_time_max_ms: 1000,
            now_ms,
            ineligible: &[],
        }
    }

    #[test]
    fn lagging_followers_leave_and_caught_up_ones_join() {
        let followers = HashMap::from([(2, follower(10, 5000)), (3, follower(8, 3000))]);
        assert_eq!(proposed_isr(&view(&[1, 2, 3], &followers, 8, 3500)), None);
        assert_eq!(
            proposed_isr(&view(&[1, 2, 3], &followers, 8, 4500)),
            Some(vec![1, 2]),
            "3 last caught up 1.5 s ago"
        );
        // 3 is back at the high watermark: it joins.
        let followers = HashMap::from([(2, follower(10, 5000)), (3, follower(10, 5000))]);
        assert_eq!(
            proposed_isr(&view(&[1, 2], &followers, 10, 5100)),
            Some(vec![1, 2, 3])
        );
        // Not yet at the high watermark, or not past the start of the epoch: stays out.
        let followers = HashMap::from([(2, follower(10, 5000)), (3, follower(9, 5000))]);
        assert_eq!(proposed_isr(&view(&[1, 2], &followers, 10, 5100)), None);
        let followers = HashMap::from([(2, follower(10, 5000)), (3, follower(4, 5000))]);
        assert_eq!(proposed_isr(&view(&[1, 2], &followers, 4, 5100)), None);
        // A new leadership gives every follower a full grace period.
        let fresh = HashMap::from([(2, FollowerState::new(5000)), (3, FollowerState::new(5000))]);
        assert_eq!(proposed_isr(&view(&[1, 2, 3], &fresh, 10, 5900)), None);
        assert_eq!(proposed_isr(&view(&[1, 2, 3], &fresh, 10, 6100)), Some(vec![1]));
    }

    #[test]
    fn fenced_or_long_silent_replicas_are_never_proposed() {
        // 3 stopped fetching at its last caught-up position: it stays out once the lag
        // time has passed, even though its last known log end reaches the HW.
        let followers = HashMap::from([(2, follower(10, 5000)), (3, follower(10, 2000))]);
        assert_eq!(proposed_isr(&view(&[1, 2], &followers, 10, 5100)), None);
        // Caught up just now, but fenced in the image: stays out (KIP-841).
        let followers = HashMap::from([(2, follower(10, 5000)), (3, follower(10, 5000))]);
        let fenced = IsrView {
            ineligible: &[3],
            ..view(&[1, 2], &followers, 10, 5100)
        };
        assert_eq!(proposed_isr(&fenced), None);
        // Fencing does not force anyone out (lag does): 2 stays, and 3 joins.
        let in_isr = IsrView {
            ineligible: &[2],
            ..view(&[1, 2], &followers, 10, 5100)
        };
        assert_eq!(proposed_isr(&in_isr), Some(vec![1, 2, 3]));
    }
}
