//! Group commit: the decisions of one log's flusher, without IO.
//!
//! Appends never wait for their own fsync. A writer that needs its data durable (a
//! produce under `flush.messages=1`, a follower reporting what it holds) registers the
//! offset it needs and waits. An fsync covers everything appended before it started, so
//! every writer whose data was written before it shares it. Up to
//! [`MAX_SYNCS_IN_FLIGHT`] run per log at once, so a writer that comes while one runs
//! does not wait for it to return before its own starts; writers that come while the
//! limit is reached share the next one. Fsyncs count in the order they started. A
//! waiter is released only by fsyncs that returned and cover its offset, never before;
//! an fsync error
//! fails every waiter and every later one (the log is offline: the page cache may have
//! dropped data that was written but not synced, so nothing may be acknowledged again).
//!
//! The caller owns the IO: it runs the fsync [`GroupCommit::wait`] or
//! [`GroupCommit::synced`] asks for, and reads `durable` (the log's recovery point) and
//! `log_end_offset` under the log lock, so a truncation is always seen.

/// How many fsyncs of one log may run at once. A writer that arrives while one runs
/// starts the next at once instead of waiting for it to return (its fsync overlaps the
/// first one's tail); more would only split the group into smaller fsyncs.
pub const MAX_SYNCS_IN_FLIGHT: u64 = 2;

/// What a waiter gets back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every offset it needs is fsynced.
    Durable,
    /// Its data is no longer in the log (truncated after a leadership change).
    Truncated,
    /// An fsync failed: the log is offline.
    Failed,
}

/// The answer to a new waiter.
#[derive(Debug, PartialEq, Eq)]
pub enum Wait<W> {
    /// Decided at once; the waiter is handed back with its outcome.
    Done(W, Outcome),
    /// Queued; the caller must start fsync number `seq` now. Fsyncs finish in the order
    /// of their numbers (see [`GroupCommit::synced`]).
    StartSync(u64),
    /// Queued: an fsync already running or one started when a running one returns
    /// covers it.
    Queued,
}

/// What a finished fsync decided.
#[derive(Debug, PartialEq, Eq)]
pub struct Finished<W> {
    pub decided: Vec<(W, Outcome)>,
    /// Waiters remain that no running fsync covers: start fsync number `seq` now.
    pub start_sync: Option<u64>,
}

struct Waiter<W> {
    offset: i64,
    /// Fsyncs numbered from this one on started after the waiter's data was written.
    covered_from: u64,
    waiter: W,
}

impl<W: std::fmt::Debug> std::fmt::Debug for Waiter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}@{}", self.waiter, self.offset)
    }
}

/// One log's waiters and its fsyncs: `started` numbered so far, `finished` returned (in
/// order, so an fsync's cover counts only once every earlier one returned too: an
/// earlier one may hold the directory entry of a segment the later one synced).
#[derive(Debug)]
pub struct GroupCommit<W> {
    waiters: Vec<Waiter<W>>,
    started: u64,
    finished: u64,
    failed: bool,
}

impl<W> Default for GroupCommit<W> {
    fn default() -> Self {
        GroupCommit {
            waiters: Vec::new(),
            started: 0,
            finished: 0,
            failed: false,
        }
    }
}

impl<W> GroupCommit<W> {
    /// A writer needs every offset below `offset` durable. `durable` is the log's
    /// recovery point now, `log_end_offset` its end.
    pub fn wait(&mut self, offset: i64, durable: i64, log_end_offset: i64, waiter: W) -> Wait<W> {
        if self.failed {
            return Wait::Done(waiter, Outcome::Failed);
        }
        if offset <= durable {
            return Wait::Done(waiter, Outcome::Durable);
        }
        if offset > log_end_offset {
            return Wait::Done(waiter, Outcome::Truncated);
        }
        self.waiters.push(Waiter {
            offset,
            covered_from: self.started,
            waiter,
        });
        match self.start_if_needed() {
            Some(seq) => Wait::StartSync(seq),
            None => Wait::Queued,
        }
    }

    /// The oldest running fsync returned successfully; `durable` is the recovery point it
    /// left (what it covered, unless a truncation meanwhile made its cover void) and
    /// `log_end_offset` the log's end now.
    pub fn synced(&mut self, durable: i64, log_end_offset: i64) -> Finished<W> {
        self.finished += 1;
        if self.failed {
            return Finished {
                decided: Vec::new(),
                start_sync: None,
            };
        }
        let mut decided = Vec::new();
        let mut remaining = Vec::new();
        for waiter in self.waiters.drain(..) {
            if waiter.offset <= durable {
                decided.push((waiter.waiter, Outcome::Durable));
            } else if waiter.offset > log_end_offset {
                decided.push((waiter.waiter, Outcome::Truncated));
            } else {
                remaining.push(waiter);
            }
        }
        self.waiters = remaining;
        Finished {
            decided,
            start_sync: self.start_if_needed(),
        }
    }

    /// An fsync failed: every waiter fails, now and later.
    pub fn sync_failed(&mut self) -> Vec<(W, Outcome)> {
        self.finished += 1;
        self.failed = true;
        self.waiters
            .drain(..)
            .map(|waiter| (waiter.waiter, Outcome::Failed))
            .collect()
    }

    /// How many fsyncs run now.
    pub fn in_flight(&self) -> u64 {
        self.started - self.finished
    }

    /// Starts an fsync when a waiter has none that covers it (none started since its
    /// write, or none running at all: a truncation may have voided what ran) and the
    /// limit allows.
    fn start_if_needed(&mut self) -> Option<u64> {
        let uncovered = self
            .waiters
            .iter()
            .any(|waiter| waiter.covered_from >= self.started || self.in_flight() == 0);
        (uncovered && self.in_flight() < MAX_SYNCS_IN_FLIGHT).then(|| {
            self.started += 1;
            self.started - 1
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_waiters_start_fsyncs_up_to_the_limit_and_the_others_queue() {
        let mut commit = GroupCommit::default();
        assert_eq!(commit.wait(10, 0, 10, "a"), Wait::StartSync(0));
        // Written after fsync 0 started: fsync 0 may not hold it, so a second starts.
        assert_eq!(commit.wait(12, 0, 12, "b"), Wait::StartSync(1));
        assert_eq!(commit.wait(13, 0, 13, "c"), Wait::Queued);
        assert_eq!(commit.in_flight(), 2);
    }

    #[test]
    fn an_offset_already_durable_is_answered_at_once_without_an_fsync() {
        let mut commit = GroupCommit::default();
        assert_eq!(commit.wait(5, 5, 9, "a"), Wait::Done("a", Outcome::Durable));
        assert_eq!(commit.in_flight(), 0);
    }

    #[test]
    fn a_finished_fsync_releases_exactly_the_waiters_it_covers() {
        let mut commit = GroupCommit::default();
        assert_eq!(commit.wait(10, 0, 10, "a"), Wait::StartSync(0));
        assert_eq!(commit.wait(12, 0, 12, "b"), Wait::StartSync(1));
        assert_eq!(commit.wait(15, 0, 15, "c"), Wait::Queued);
        // Fsync 0 covered offsets below 10.
        let finished = commit.synced(10, 15);
        assert_eq!(finished.decided, vec![("a", Outcome::Durable)]);
        // c was written after fsync 1 started: it needs another.
        assert_eq!(finished.start_sync, Some(2));
        let finished = commit.synced(12, 15);
        assert_eq!(finished.decided, vec![("b", Outcome::Durable)]);
        assert_eq!(finished.start_sync, None, "fsync 2 covers c");
        let finished = commit.synced(15, 15);
        assert_eq!(finished.decided, vec![("c", Outcome::Durable)]);
        assert_eq!(finished.start_sync, None);
        assert_eq!(commit.in_flight(), 0);
    }

    #[test]
    fn writers_that_come_while_fsyncs_run_share_the_next_one() {
        let mut commit = GroupCommit::default();
        assert_eq!(commit.wait(10, 0, 10, 0), Wait::StartSync(0));
        assert_eq!(commit.wait(11, 0, 11, 1), Wait::StartSync(1));
        for offset in 12..20 {
            assert_eq!(commit.wait(offset, 0, offset, offset), Wait::Queued);
        }
        let finished = commit.synced(10, 19);
        assert_eq!(finished.start_sync, Some(2));
        let finished = commit.synced(11, 19);
        assert_eq!(finished.start_sync, None);
        // One fsync for the eight that came while two ran.
        let finished = commit.synced(19, 19);
        assert_eq!(finished.decided.len(), 8);
        assert_eq!(commit.in_flight(), 0);
    }

    #[test]
    fn nothing_is_released_before_an_fsync_returns() {
        let mut commit = GroupCommit::default();
        assert_eq!(commit.wait(10, 0, 10, 1), Wait::StartSync(0));
        for offset in 11..20 {
            // However many writers come, none is answered while fsyncs run.
            assert!(!matches!(commit.wait(offset, 0, offset, offset), Wait::Done(..)));
        }
        let finished = commit.synced(10, 19);
        assert_eq!(finished.decided, vec![(1, Outcome::Durable)]);
    }

    #[test]
    fn a_failed_fsync_fails_every_waiter_and_every_later_one() {
        let mut commit = GroupCommit::default();
        assert_eq!(commit.wait(10, 0, 10, "a"), Wait::StartSync(0));
        assert_eq!(commit.wait(12, 0, 12, "b"), Wait::StartSync(1));
        assert_eq!(
            commit.sync_failed(),
            vec![("a", Outcome::Failed), ("b", Outcome::Failed)]
        );
        // The other running fsync returns: it acknowledges nothing.
        let finished = commit.synced(12, 12);
        assert!(finished.decided.is_empty());
        assert_eq!(finished.start_sync, None);
        // Even an offset the recovery point covers: the log is offline.
        assert_eq!(commit.wait(1, 5, 12, "c"), Wait::Done("c", Outcome::Failed));
        assert_eq!(commit.in_flight(), 0);
    }

    #[test]
    fn data_truncated_while_waiting_is_never_reported_durable() {
        let mut commit = GroupCommit::default();
        assert_eq!(commit.wait(10, 0, 10, "a"), Wait::StartSync(0));
        assert_eq!(commit.wait(20, 0, 20, "b"), Wait::StartSync(1));
        let finished = commit.synced(10, 20);
        assert_eq!(finished.decided, vec![("a", Outcome::Durable)]);
        // The log was cut to 12 meanwhile; fsync 1's cover was voided by it.
        let finished = commit.synced(10, 12);
        assert_eq!(finished.decided, vec![("b", Outcome::Truncated)]);
        assert_eq!(commit.wait(15, 10, 12, "c"), Wait::Done("c", Outcome::Truncated));
    }

    #[test]
    fn a_waiter_left_by_a_voided_fsync_gets_another() {
        let mut commit = GroupCommit::default();
        assert_eq!(commit.wait(10, 0, 10, "a"), Wait::StartSync(0));
        // A truncation and a new append during the fsync: its cover is void.
        let finished = commit.synced(0, 10);
        assert!(finished.decided.is_empty());
        assert_eq!(finished.start_sync, Some(1));
    }
}
