//! One partition as served by this broker: its log behind a lock, the ISR, the high
//! watermark rule, group-commit flushing, and a notifier that wakes long-polling fetches.
//!
//! With a single node the ISR is always just this broker, so the high watermark follows
//! the log end offset on every append. `acks=all` still checks `min.insync.replicas`
//! against the ISR, so a topic asking for more in-sync replicas than exist is refused
//! with NOT_ENOUGH_REPLICAS, as Kafka does.

use crate::log::batch::IncomingBatch;
use crate::log::partition_log::AppendInfo;
use crate::log::{LogError, PartitionLog, TopicPartition};
use parking_lot::Mutex;
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("only {isr} in-sync replicas, min.insync.replicas is {required}")]
    NotEnoughReplicas { isr: usize, required: i32 },
    #[error(transparent)]
    Log(#[from] LogError),
}

pub struct Partition {
    pub topic_partition: TopicPartition,
    pub topic_id: uuid::Uuid,
    pub replicas: Vec<i32>,
    isr: Mutex<Vec<i32>>,
    log: Mutex<PartitionLog>,
    /// Serializes fsyncs so concurrent producers share one (group commit).
    flush_lock: tokio::sync::Mutex<()>,
    /// Woken after every append, for fetches waiting on `min_bytes`.
    appended: Notify,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |duration| duration.as_millis() as i64)
}

impl Partition {
    pub fn new(log: PartitionLog, topic_id: uuid::Uuid, node_id: i32) -> Self {
        Partition {
            topic_partition: log.topic_partition.clone(),
            topic_id,
            replicas: vec![node_id],
            isr: Mutex::new(vec![node_id]),
            log: Mutex::new(log),
            flush_lock: tokio::sync::Mutex::new(()),
            appended: Notify::new(),
        }
    }

    pub fn isr(&self) -> Vec<i32> {
        self.isr.lock().clone()
    }

    /// Runs `f` with the log locked. Keep `f` short: appends wait for it.
    pub fn with_log<R>(&self, f: impl FnOnce(&mut PartitionLog) -> R) -> R {
        f(&mut self.log.lock())
    }

    /// A future that completes at the next append (create it before checking for data).
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appended.notified()
    }

    /// Appends checked batches; for acks=-1 first checks the ISR against
    /// `min.insync.replicas`. Returns once the data is as durable as the flush policy asks.
    pub async fn append(
        &self,
        batches: &[IncomingBatch],
        required_acks: i16,
    ) -> Result<AppendInfo, AppendError> {
        let now = now_ms();
        let (info, needs_flush) = {
            let mut log = self.log.lock();
            if required_acks == -1 {
                let isr = self.isr.lock().len();
                let required = log.config().min_insync_replicas;
                if (isr as i64) < required as i64 {
                    return Err(AppendError::NotEnoughReplicas { isr, required });
                }
            }
            let info = log.append(batches, now)?;
            // The ISR is this broker alone: everything appended is replicated.
            let log_end_offset = log.log_end_offset();
            log.set_high_watermark(log_end_offset);
            (info, log.needs_flush(now))
        };
        self.appended.notify_waiters();
        if needs_flush {
            self.flush_to(info.last_offset + 1).await?;
        }
        Ok(info)
    }

    /// Makes every offset below `offset` durable. Concurrent callers share one fsync:
    /// whoever holds the flush lock syncs everything appended so far, and the others find
    /// their offset already covered.
    pub async fn flush_to(&self, offset: i64) -> Result<(), LogError> {
        let _guard = self.flush_lock.lock().await;
        let (files, covered) = {
            let log = self.log.lock();
            if log.recovery_point() >= offset {
                return Ok(());
            }
            log.unflushed_files()
        };
        let result =
            tokio::task::spawn_blocking(move || files.iter().try_for_each(|file| file.sync_data())).await;
        let mut log = self.log.lock();
        match result {
            Ok(Ok(())) => {
                log.mark_flushed(covered);
                Ok(())
            }
            Ok(Err(source)) => {
                // A failed fsync means the page cache may have dropped our data:
                // never retry, take the log offline.
                log.take_offline();
                Err(LogError::io(log.dir(), "fsync", source))
            }
            Err(join_error) => {
                log.take_offline();
                Err(LogError::io(
                    log.dir(),
                    "fsync",
                    std::io::Error::other(join_error.to_string()),
                ))
            }
        }
    }

    /// Flushes if the policy (`flush.messages`, `flush.ms`) asks for it now.
    pub async fn flush_if_due(&self) -> Result<(), LogError> {
        let target = {
            let log = self.log.lock();
            log.needs_flush(now_ms()).then(|| log.log_end_offset())
        };
        match target {
            Some(offset) => self.flush_to(offset).await,
            None => Ok(()),
        }
    }
}
