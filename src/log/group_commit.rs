//! Group commit: the decisions of one log's flusher, without IO.
//!
//! Appends never wait for their own fsync. A writer that needs its data durable (a
//! produce under `flush.messages=1`, a follower reporting what it holds) registers the
//! offset it needs and waits. At most one fsync runs per log at a time; it covers
//! everything appended before it started, so every writer that appended meanwhile shares
//! it, and those that appended after it started share the next one. A waiter is released
//! only by an fsync that returned and covers its offset, never before; an fsync error
//! fails every waiter and every later one (the log is offline: the page cache may have
//! dropped data that was written but not synced, so nothing may be acknowledged again).
//!
//! The caller owns the IO: it runs the fsync [`GroupCommit::wait`] or
//! [`GroupCommit::synced`] asks for, and reads `durable` (the log's recovery point) and
//! `log_end_offset` under the log lock, so a truncation is always seen.

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
    /// Queued; the caller must start an fsync now (none is running).
    StartSync,
    /// Queued behind the running fsync or the one that follows it.
    Queued,
}

/// What a finished fsync decided.
#[derive(Debug, PartialEq, Eq)]
pub struct Finished<W> {
    pub decided: Vec<(W, Outcome)>,
    /// Waiters remain that this fsync did not cover: start another one now.
    pub sync_again: bool,
}

/// One log's waiters and whether an fsync is running.
#[derive(Debug)]
pub struct GroupCommit<W> {
    waiters: Vec<(i64, W)>,
    syncing: bool,
    failed: bool,
}

impl<W> Default for GroupCommit<W> {
    fn default() -> Self {
        GroupCommit {
            waiters: Vec::new(),
            syncing: false,
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
        self.waiters.push((offset, waiter));
        if self.syncing {
            Wait::Queued
        } else {
            self.syncing = true;
            Wait::StartSync
        }
    }

    /// The running fsync returned successfully; `durable` is the recovery point it left
    /// (what it covered, unless a truncation meanwhile made its cover void) and
    /// `log_end_offset` the log's end now.
    pub fn synced(&mut self, durable: i64, log_end_offset: i64) -> Finished<W> {
        let mut decided = Vec::new();
        let mut remaining = Vec::new();
        for (offset, waiter) in self.waiters.drain(..) {
            if offset <= durable {
                decided.push((waiter, Outcome::Durable));
            } else if offset > log_end_offset {
                decided.push((waiter, Outcome::Truncated));
            } else {
                remaining.push((offset, waiter));
            }
        }
        self.waiters = remaining;
        self.syncing = !self.waiters.is_empty();
        Finished {
            decided,
            sync_again: self.syncing,
        }
    }

    /// The running fsync failed: every waiter fails, now and later.
    pub fn sync_failed(&mut self) -> Vec<(W, Outcome)> {
        self.failed = true;
        self.syncing = false;
        self.waiters
            .drain(..)
            .map(|(_, waiter)| (waiter, Outcome::Failed))
            .collect()
    }

    pub fn is_syncing(&self) -> bool {
        self.syncing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_waiter_starts_an_fsync_and_the_others_queue_behind_it() {
        let mut commit = GroupCommit::default();
        assert_eq!(commit.wait(10, 0, 10, "a"), Wait::StartSync);
        assert_eq!(commit.wait(12, 0, 12, "b"), Wait::Queued);
        assert!(commit.is_syncing());
    }

    #[test]
    fn an_offset_already_durable_is_answered_at_once_without_an_fsync() {
        let mut commit = GroupCommit::default();
        assert_eq!(commit.wait(5, 5, 9, "a"), Wait::Done("a", Outcome::Durable));
        assert!(!commit.is_syncing());
    }

    #[test]
    fn a_finished_fsync_releases_exactly_the_waiters_it_covers() {
        let mut commit = GroupCommit::default();
        assert_eq!(commit.wait(10, 0, 10, "a"), Wait::StartSync);
        // Appended while the fsync (which covers offsets below 10) runs.
        assert_eq!(commit.wait(8, 0, 15, "b"), Wait::Queued);
        assert_eq!(commit.wait(15, 0, 15, "c"), Wait::Queued);
        let finished = commit.synced(10, 15);
        assert_eq!(
            finished.decided,
            vec![("a", Outcome::Durable), ("b", Outcome::Durable)]
        );
        assert!(finished.sync_again, "c needs the next fsync");
        let finished = commit.synced(15, 15);
        assert_eq!(finished.decided, vec![("c", Outcome::Durable)]);
        assert!(!finished.sync_again);
        assert!(!commit.is_syncing());
    }

    #[test]
    fn nothing_is_released_before_an_fsync_returns() {
        let mut commit = GroupCommit::default();
        assert_eq!(commit.wait(10, 0, 10, 1), Wait::StartSync);
        for offset in 11..20 {
            // However many writers come, none is answered while the fsync runs.
            assert_eq!(commit.wait(offset, 0, offset, offset), Wait::Queued);
        }
        assert!(commit.is_syncing());
        let finished = commit.synced(10, 19);
        assert_eq!(finished.decided, vec![(1, Outcome::Durable)]);
        assert!(finished.sync_again);
    }

    #[test]
    fn a_failed_fsync_fails_every_waiter_and_every_later_one() {
        let mut commit = GroupCommit::default();
        assert_eq!(commit.wait(10, 0, 10, "a"), Wait::StartSync);
        assert_eq!(commit.wait(12, 0, 12, "b"), Wait::Queued);
        assert_eq!(
            commit.sync_failed(),
            vec![("a", Outcome::Failed), ("b", Outcome::Failed)]
        );
        // Even an offset the recovery point covers: the log is offline.
        assert_eq!(commit.wait(1, 5, 12, "c"), Wait::Done("c", Outcome::Failed));
        assert!(!commit.is_syncing());
    }

    #[test]
    fn data_truncated_while_waiting_is_never_reported_durable() {
        let mut commit = GroupCommit::default();
        assert_eq!(commit.wait(10, 0, 10, "a"), Wait::StartSync);
        assert_eq!(commit.wait(20, 0, 20, "b"), Wait::Queued);
        // The log was cut to 12 during the fsync, which then covered nothing past 10.
        let finished = commit.synced(10, 12);
        assert_eq!(
            finished.decided,
            vec![("a", Outcome::Durable), ("b", Outcome::Truncated)]
        );
        assert!(!finished.sync_again);
        assert_eq!(commit.wait(15, 10, 12, "c"), Wait::Done("c", Outcome::Truncated));
    }
}
