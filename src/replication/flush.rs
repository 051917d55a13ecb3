//! A partition's flusher: group commit ([`crate::log::group_commit`]) with the IO.
//!
//! A writer that needs its data durable registers the offset and waits on a channel.
//! When the group commit asks for an fsync, a sync task takes the log's unflushed files
//! under the lock, fsyncs them on the blocking pool without the lock (appends go on
//! meanwhile), waits until the fsyncs started before it have counted, records the new
//! recovery point and answers every waiter it covered. The task is not the waiter's
//! future, so a produce request that is dropped (its client went away) never strands
//! the others.
//!
//! A failed fsync takes the log's whole log dir offline and fails every waiter with
//! KAFKA_STORAGE_ERROR: nothing it covered is ever acknowledged.

use super::partition::{AppendError, Partition};
use crate::common::now_ms;
use crate::log::LogError;
use crate::log::group_commit::{Outcome, Wait};
use std::sync::Arc;
use tokio::sync::oneshot;

/// A waiter of the group commit: answered once with the fsync's outcome.
pub(super) type FlushWaiter = oneshot::Sender<Outcome>;

/// An fsync of a log's files, run on the blocking pool. A seam for tests that make
/// fsyncs slow or fail; production uses [`sync_files`].
pub(super) type SyncFn = fn(&crate::log::partition_log::UnflushedFiles) -> std::io::Result<()>;

/// fdatasync every file holding unflushed data (indexes need none: recovery rebuilds
/// them), then fsync the directories whose new entries must survive.
pub(super) fn sync_files(unflushed: &crate::log::partition_log::UnflushedFiles) -> std::io::Result<()> {
    unflushed.files.iter().try_for_each(|file| file.sync_data())?;
    unflushed
        .dirs
        .iter()
        .try_for_each(|dir| crate::log::checkpoint::sync_dir(dir))
}

impl Partition {
    /// Makes every offset below `offset` durable. Concurrent callers share fsyncs: each
    /// covers everything appended before it started, and up to two run at once.
    pub async fn flush_to(self: &Arc<Self>, offset: i64) -> Result<(), AppendError> {
        let (sender, receiver) = oneshot::channel();
        let wait = {
            let log = self.log.lock();
            if log.is_offline() {
                Wait::Done(sender, Outcome::Failed)
            } else {
                let recovery_point = log.recovery_point();
                let log_end_offset = log.log_end_offset();
                self.group_commit
                    .lock()
                    .wait(offset, recovery_point, log_end_offset, sender)
            }
        };
        let outcome = match wait {
            Wait::Done(_, outcome) => outcome,
            Wait::StartSync(seq) => {
                tokio::spawn(Arc::clone(self).run_sync(seq));
                receiver.await.unwrap_or(Outcome::Failed)
            }
            Wait::Queued => receiver.await.unwrap_or(Outcome::Failed),
        };
        match outcome {
            Outcome::Durable => Ok(()),
            Outcome::Truncated => Err(AppendError::NotLeader),
            Outcome::Failed => Err(AppendError::Log(LogError::Offline {
                topic_partition: self.topic_partition.clone(),
            })),
        }
    }

    /// The offset to flush to if the policy (`flush.messages`, `flush.ms`) asks for a
    /// flush at `now_ms`.
    pub fn flush_due_to(&self, now_ms: i64) -> Option<i64> {
        let log = self.log.lock();
        log.needs_flush(now_ms).then(|| log.log_end_offset())
    }

    /// Flushes if the policy (`flush.messages`, `flush.ms`) asks for it now.
    pub async fn flush_if_due(self: &Arc<Self>) -> Result<(), AppendError> {
        match self.flush_due_to(now_ms()) {
            Some(offset) => self.flush_to(offset).await,
            None => Ok(()),
        }
    }

    /// Fsync number `seq`: takes the unflushed files, fsyncs them off the lock, waits
    /// for the fsyncs numbered before it to count, then records what it covered and
    /// answers the waiters it released; starts the next fsync if waiters remain that
    /// none covers.
    async fn run_sync(self: Arc<Self>, mut seq: u64) {
        loop {
            let Some(next) = self.sync_once(seq).await else {
                return;
            };
            seq = next;
        }
    }

    /// One fsync; returns the number of the next one to run, if one is due.
    async fn sync_once(self: &Arc<Self>, seq: u64) -> Option<u64> {
        let (unflushed, written) = {
            let mut log = self.log.lock();
            (log.unflushed_files(), log.written_bytes())
        };
        let unflushed = match unflushed {
            Ok(unflushed) => unflushed,
            Err(error) => {
                // A closed segment that cannot be opened again cannot be made durable.
                let error = std::io::Error::other(error.to_string());
                let mut finished_syncs = self.syncs_finished.subscribe();
                let _ = finished_syncs.wait_for(|finished| *finished >= seq).await;
                self.fail_syncs(error);
                self.syncs_finished.send_replace(seq + 1);
                return None;
            }
        };
        let started = std::time::Instant::now();
        let n_files = unflushed.files.len() + unflushed.dirs.len();
        let sync = self.sync_fn;
        let result = match tokio::task::spawn_blocking(move || {
            let result = sync(&unflushed);
            (unflushed, result)
        })
        .await
        {
            Ok((unflushed, Ok(()))) => Ok(unflushed),
            Ok((_, Err(error))) => Err(error),
            Err(join_error) => Err(std::io::Error::other(join_error.to_string())),
        };
        // Count in order: an earlier fsync may hold a directory entry this one relies on.
        let mut finished_syncs = self.syncs_finished.subscribe();
        let _ = finished_syncs.wait_for(|finished| *finished >= seq).await;
        let unflushed = match result {
            Ok(unflushed) => unflushed,
            Err(error) => {
                self.fail_syncs(error);
                self.syncs_finished.send_replace(seq + 1);
                return None;
            }
        };
        let finished = {
            let mut log = self.log.lock();
            // After an earlier fsync failed, a later one's success proves nothing: the
            // kernel may have dropped the pages the failed one could not write.
            if !log.is_offline() {
                log.mark_flushed(unflushed.end_offset, unflushed.rewrites);
            }
            let finished = self
                .group_commit
                .lock()
                .synced(log.recovery_point(), log.log_end_offset());
            let previous = self
                .flushed_bytes
                .fetch_max(written, std::sync::atomic::Ordering::Relaxed);
            crate::log::flush_stats::record(n_files, written.saturating_sub(previous), started.elapsed());
            finished
        };
        self.syncs_finished.send_replace(seq + 1);
        for (waiter, outcome) in finished.decided {
            let _ = waiter.send(outcome);
        }
        finished.start_sync
    }

    /// A failed fsync: the page cache may have dropped what it could not write, so the
    /// log dir goes offline and no waiter is ever acknowledged.
    fn fail_syncs(&self, error: std::io::Error) {
        let failed = {
            let mut log = self.log.lock();
            tracing::error!(topic_partition = %self.topic_partition, path = %log.dir().display(), %error, "fsync failed");
            log.fail_dir();
            self.group_commit.lock().sync_failed()
        };
        for (waiter, outcome) in failed {
            let _ = waiter.send(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::split_and_validate;
    use crate::log::batch::tests::make_batch;

    fn durable_partition(dir: &std::path::Path, sync_fn: SyncFn) -> Arc<Partition> {
        let mut config = crate::config::BrokerConfig::load(None, &[]).unwrap().log;
        config.flush_messages = 1;
        let mut partition = crate::replication::partition::tests::leader(dir, config, &[1], &[1], 30_000);
        partition.sync_fn = sync_fn;
        Arc::new(partition)
    }

    fn batch() -> Vec<crate::log::batch::IncomingBatch> {
        split_and_validate(&bytes::Bytes::from(make_batch(1, now_ms(), b"v")), 1 << 20).unwrap()
    }

    fn failing_sync(_: &crate::log::partition_log::UnflushedFiles) -> std::io::Result<()> {
        Err(std::io::Error::other("injected EIO"))
    }

    /// An fsync error is never acknowledged: the append fails with an offline log
    /// (KAFKA_STORAGE_ERROR), and so does every later write to any log of that dir.
    #[tokio::test]
    async fn a_failed_fsync_fails_the_write_and_takes_the_log_dir_offline() {
        let root = tempfile::tempdir().unwrap();
        let partition = durable_partition(root.path(), failing_sync);
        let error = partition.append(&batch(), 1).await.unwrap_err();
        assert!(
            matches!(error, AppendError::Log(LogError::Offline { .. })),
            "{error:?}"
        );
        assert_eq!(
            error.code(),
            kafka_protocol::ResponseError::KafkaStorageError.code()
        );
        assert_eq!(partition.with_log(|log| log.recovery_point()), 0);
        assert!(crate::log::dir_failure::is_failed(root.path()));
        // Another partition of the same log dir refuses appends too.
        let neighbour = durable_partition(root.path(), sync_files);
        assert!(matches!(
            neighbour.append(&batch(), 1).await,
            Err(AppendError::Log(LogError::Offline { .. }))
        ));
    }

    /// Writers that arrive while an fsync runs share the next one: ten concurrent
    /// appends cost far fewer than ten fsyncs, and each is answered only after one that
    /// covers it returned.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_share_fsyncs_and_each_is_covered_when_answered() {
        static SYNCS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        fn slow_sync(unflushed: &crate::log::partition_log::UnflushedFiles) -> std::io::Result<()> {
            std::thread::sleep(std::time::Duration::from_millis(100));
            SYNCS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            sync_files(unflushed)
        }
        let root = tempfile::tempdir().unwrap();
        let partition = durable_partition(root.path(), slow_sync);
        let writers = (0..10).map(|_| {
            let partition = Arc::clone(&partition);
            tokio::spawn(async move {
                let info = partition.append(&batch(), 1).await.unwrap();
                // Answered: the recovery point covers the write.
                assert!(partition.with_log(|log| log.recovery_point()) > info.last_offset);
            })
        });
        for writer in futures::future::join_all(writers).await {
            writer.unwrap();
        }
        let syncs = SYNCS.load(std::sync::atomic::Ordering::SeqCst);
        assert!((1..10).contains(&syncs), "{syncs} fsyncs for 10 writers");
    }

    /// Two fsyncs overlap; the first fails, the second returns first and succeeds. The
    /// second must not move the recovery point or answer anyone: after a failed fsync
    /// the kernel may have dropped the pages it could not write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_fsync_that_succeeds_after_an_earlier_one_failed_makes_nothing_durable() {
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        fn first_fails_late(unflushed: &crate::log::partition_log::UnflushedFiles) -> std::io::Result<()> {
            if CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                std::thread::sleep(std::time::Duration::from_millis(200));
                return Err(std::io::Error::other("injected EIO"));
            }
            sync_files(unflushed)
        }
        let root = tempfile::tempdir().unwrap();
        let partition = durable_partition(root.path(), first_fails_late);
        let first = tokio::spawn({
            let partition = Arc::clone(&partition);
            async move { partition.append(&batch(), 1).await }
        });
        // The first fsync is under way; this append starts a second one.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let second = partition.append(&batch(), 1).await;
        assert!(second.is_err(), "{second:?}");
        assert!(first.await.unwrap().is_err());
        assert_eq!(
            CALLS.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "two fsyncs overlapped"
        );
        assert_eq!(partition.with_log(|log| log.recovery_point()), 0);
    }
}
