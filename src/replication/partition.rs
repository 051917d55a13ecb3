//! One partition as served by this broker: its log behind a lock, the ISR, the high
//! watermark rule, group-commit flushing, and a notifier that wakes long-polling fetches.
//!
//! Leadership, replicas and ISR come from the metadata image ([`PartitionState`]); only
//! the leader accepts appends. The leader tracks its followers' fetches and moves the
//! high watermark to the lowest log end offset in the ISR (`replica.rs`); `acks=all`
//! checks `min.insync.replicas` against the ISR before writing (NOT_ENOUGH_REPLICAS) and
//! then waits until the high watermark covers the batch. A follower appends the
//! leader's batches as they are and takes its high watermark.

use super::isr::FollowerState;
use crate::cluster::image::PartitionRegistration;
use crate::log::batch::IncomingBatch;
use crate::log::group_commit::GroupCommit;
use crate::log::partition_log::AppendInfo;
use crate::log::producer_state::{BatchIdentity, Decision};
use crate::log::{LogError, PartitionLog, TopicPartition};
use parking_lot::Mutex;
use std::collections::HashMap;
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("this broker is not the leader of the partition")]
    NotLeader,
    #[error("the ISR shrank below min.insync.replicas ({required}) while waiting for replication")]
    NotEnoughReplicasAfterAppend { required: i32 },
    #[error("not replicated to every in-sync replica within the request timeout")]
    Timeout,
    #[error("only {isr} in-sync replicas, min.insync.replicas is {required}")]
    NotEnoughReplicas { isr: usize, required: i32 },
    #[error("out of order sequence number from producer {producer_id}")]
    OutOfOrderSequence { producer_id: i64 },
    #[error("producer {producer_id} used an old epoch")]
    InvalidProducerEpoch { producer_id: i64 },
    #[error("an idempotent produce must carry exactly one record batch per partition")]
    InvalidRecord,
    #[error("a client may not produce control batches")]
    ControlBatch,
    #[error("a transactional batch must come from a producer with an id")]
    TransactionalWithoutProducer,
    #[error("a newer transaction coordinator has written markers for this producer")]
    CoordinatorFenced,
    #[error(transparent)]
    Log(#[from] LogError),
}

impl AppendError {
    /// Its Kafka error code.
    pub fn code(&self) -> i16 {
        use kafka_protocol::ResponseError;
        let error = self;
        match error {
            AppendError::NotLeader => ResponseError::NotLeaderOrFollower.code(),
            AppendError::NotEnoughReplicasAfterAppend { .. } => {
                ResponseError::NotEnoughReplicasAfterAppend.code()
            }
            AppendError::Timeout => ResponseError::RequestTimedOut.code(),
            AppendError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas.code(),
            AppendError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber.code(),
            AppendError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch.code(),
            AppendError::InvalidRecord | AppendError::ControlBatch => ResponseError::InvalidRecord.code(),
            AppendError::TransactionalWithoutProducer => ResponseError::InvalidRequest.code(),
            AppendError::CoordinatorFenced => ResponseError::TransactionCoordinatorFenced.code(),
            AppendError::Log(error) => error.code(),
        }
    }
}

fn identity(batch: &IncomingBatch) -> Option<BatchIdentity> {
    BatchIdentity::of(&batch.header)
}

/// A partition's registration as the metadata image last gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

impl From<&PartitionRegistration> for PartitionState {
    fn from(registration: &PartitionRegistration) -> Self {
        PartitionState {
            replicas: registration.replicas.clone(),
            isr: registration.isr.clone(),
            leader: registration.leader,
            leader_epoch: registration.leader_epoch,
            partition_epoch: registration.partition_epoch,
        }
    }
}

/// Lock order: `log`, then `state`, then `pending_isr` and `followers` (each only ever
/// taken with `log` held, so their relative order cannot deadlock).
pub struct Partition {
    pub topic_partition: TopicPartition,
    pub topic_id: uuid::Uuid,
    /// This broker's id.
    pub(super) node_id: i32,
    /// `replica.lag.time.max.ms`: past this without catching up, a follower no longer
    /// counts toward `min.insync.replicas`, even before the controller drops it.
    pub(super) replica_lag_time_max_ms: i64,
    /// `eligible.leader.replicas.version` >= 1: the high watermark stays put while the
    /// committed ISR is below `min.insync.replicas` (KIP-966).
    pub(super) strict_min_isr: std::sync::atomic::AtomicBool,
    pub(super) state: Mutex<PartitionState>,
    pub(super) log: Mutex<PartitionLog>,
    /// What the leader knows of each follower; reset at every new leadership.
    pub(super) followers: Mutex<HashMap<i32, FollowerState>>,
    /// An ISR change proposed to the controller and not yet answered: the partition
    /// epoch it was proposed from, and the ISR it asks for.
    pub(super) pending_isr: Mutex<Option<(i32, Vec<i32>)>>,
    /// Writers waiting for an fsync, and whether one runs (`flush.rs`).
    pub(super) group_commit: Mutex<GroupCommit<super::flush::FlushWaiter>>,
    /// How many fsyncs have counted (they count in the order they started).
    pub(super) syncs_finished: tokio::sync::watch::Sender<u64>,
    /// The log's written-bytes count at the last flush, for the flush statistics.
    pub(super) flushed_bytes: std::sync::atomic::AtomicU64,
    /// How the flusher fsyncs (a seam for fault-injection tests).
    pub(super) sync_fn: super::flush::SyncFn,
    /// Woken after every append, high-watermark move and leadership change: for fetches
    /// waiting on `min_bytes` and produces waiting on replication.
    pub(super) appended: Notify,
    /// Set when the broker stops hosting this replica (its topic deleted, or it was
    /// reassigned away): whoever kept a handle to it looks it up again.
    removed: std::sync::atomic::AtomicBool,
}

use crate::common::now_ms;

impl Partition {
    pub fn new(
        log: PartitionLog,
        topic_id: uuid::Uuid,
        node_id: i32,
        state: PartitionState,
        replica_lag_time_max_ms: i64,
    ) -> Self {
        let partition = Partition {
            topic_partition: log.topic_partition.clone(),
            topic_id,
            node_id,
            replica_lag_time_max_ms,
            strict_min_isr: std::sync::atomic::AtomicBool::new(true),
            // A placeholder: `update` below takes the real state, with its transitions.
            state: Mutex::new(PartitionState {
                replicas: vec![],
                isr: vec![],
                leader: crate::cluster::image::NO_LEADER,
                leader_epoch: -1,
                partition_epoch: -1,
            }),
            log: Mutex::new(log),
            followers: Mutex::new(HashMap::new()),
            pending_isr: Mutex::new(None),
            group_commit: Mutex::new(GroupCommit::default()),
            syncs_finished: tokio::sync::watch::Sender::new(0),
            flushed_bytes: std::sync::atomic::AtomicU64::new(0),
            sync_fn: super::flush::sync_files,
            appended: Notify::new(),
            removed: Default::default(),
        };
        partition.update(state, now_ms());
        partition
    }

    /// Turns KIP-966's strict min ISR off (`eligible.leader.replicas.version=0`) or on.
    pub fn set_strict_min_isr(&self, strict: bool) {
        self.strict_min_isr
            .store(strict, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn isr(&self) -> Vec<i32> {
        self.state.lock().isr.clone()
    }

    pub fn state(&self) -> PartitionState {
        self.state.lock().clone()
    }

    /// The broker no longer hosts this replica (see `removed`).
    pub fn mark_removed(&self) {
        self.removed.store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn is_removed(&self) -> bool {
        self.removed.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn is_leader(&self) -> bool {
        self.state.lock().leader == self.node_id
    }

    /// Takes a new registration from the metadata image. Becoming leader (or leading
    /// in a new epoch) records the epoch's start in the epoch cache and starts every
    /// follower afresh; the log stamps the new leader epoch on what it appends.
    pub fn update(&self, new: PartitionState, now_ms: i64) {
        let mut log = self.log.lock();
        let mut state = self.state.lock();
        let leads = new.leader == self.node_id;
        let new_leadership =
            leads && (state.leader != self.node_id || state.leader_epoch != new.leader_epoch);
        if new_leadership {
            if let Err(error) = log.start_epoch(new.leader_epoch) {
                tracing::error!(topic_partition = %self.topic_partition, %error, "cannot record the new leader epoch");
            }
            let mut followers = self.followers.lock();
            followers.clear();
            for replica in new.replicas.iter().filter(|replica| **replica != self.node_id) {
                followers.insert(*replica, FollowerState::new(now_ms));
            }
            tracing::info!(topic_partition = %self.topic_partition, epoch = new.leader_epoch, "leading");
        }
        log.set_leader_epoch(new.leader_epoch);
        if new.partition_epoch != state.partition_epoch {
            *self.pending_isr.lock() = None;
        }
        *state = new;
        if leads {
            let followers = self.followers.lock();
            self.refresh_high_watermark(&mut log, &state, &followers);
        }
        drop(state);
        drop(log);
        // Wake long polls and replication waits, so a deposed leader answers at once.
        self.appended.notify_waiters();
    }

    /// Runs `f` with the log locked. Keep `f` short: appends wait for it.
    pub fn with_log<R>(&self, f: impl FnOnce(&mut PartitionLog) -> R) -> R {
        f(&mut self.log.lock())
    }

    /// Reads the whole log, from its start to its end, in chunks of whole batches (up to
    /// 1 MiB each); `each` gets a chunk's bytes and its batches. The lock is taken per
    /// chunk. For the coordinators' replay of an internal topic's partition.
    pub fn replay(&self, mut each: impl FnMut(bytes::Bytes, Vec<IncomingBatch>)) -> Result<(), LogError> {
        let mut offset = self.with_log(|log| log.log_start_offset());
        loop {
            let slice = self.with_log(|log| log.read(offset, log.log_end_offset(), 1 << 20, true))?;
            let Some(slice) = slice else { break };
            let bytes = bytes::Bytes::from(slice.read_to_vec().map_err(|source| {
                let dir = self.with_log(|log| log.dir().to_path_buf());
                LogError::io(&dir, "replay", source)
            })?);
            let batches = crate::log::batch::split_stored(&bytes, usize::MAX).unwrap_or_default();
            let Some(last) = batches.last() else { break };
            offset = last.header.last_offset() + 1;
            each(bytes, batches);
        }
        Ok(())
    }

    /// One cleaning pass over a compacted log (the lock is taken only briefly).
    pub fn clean(
        &self,
        settings: crate::log::partition_log::clean::PassSettings,
        throttle: &mut crate::log::compaction::Throttle,
    ) -> Result<Option<crate::log::partition_log::clean::PassResult>, LogError> {
        crate::log::partition_log::clean::clean_pass(&self.log, settings, throttle)
    }

    /// A client's records checked against this partition's config (the log validator);
    /// the lock is held only to read the config.
    pub fn validate(
        &self,
        records: &bytes::Bytes,
    ) -> Result<Vec<IncomingBatch>, crate::log::validate::Invalid> {
        let config = self.log.lock().config().clone();
        let name = self.topic_partition.to_string();
        crate::log::validate::validate(records, &config, &name, now_ms())
    }

    /// A future that completes at the next append (create it before checking for data).
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appended.notified()
    }

    /// Appends checked batches; for acks=-1 first checks the ISR against
    /// `min.insync.replicas`. Returns once the data is as durable as the flush policy asks.
    pub async fn append(
        self: &std::sync::Arc<Self>,
        batches: &[IncomingBatch],
        required_acks: i16,
    ) -> Result<AppendInfo, AppendError> {
        let (info, needs_flush) = self.append_locked(batches, required_acks)?;
        self.appended.notify_waiters();
        if needs_flush {
            self.flush_to(info.last_offset + 1).await?;
        }
        Ok(info)
    }

    /// Appends checked batches without waiting for the flush the policy may ask: returns
    /// where they are and whether `flush_to` must complete before they are acknowledged.
    /// Produce uses it so a connection's next request appends (and shares the fsync)
    /// while this one's fsync runs.
    pub fn append_unflushed(
        &self,
        batches: &[IncomingBatch],
        required_acks: i16,
    ) -> Result<(AppendInfo, bool), AppendError> {
        let appended = self.append_locked(batches, required_acks)?;
        self.appended.notify_waiters();
        Ok(appended)
    }

    /// The synchronous part of an append, under the log lock: ISR check, idempotence
    /// check, write, high watermark. Returns where the batches are and whether the flush
    /// policy wants an fsync before the ack.
    fn append_locked(
        &self,
        batches: &[IncomingBatch],
        required_acks: i16,
    ) -> Result<(AppendInfo, bool), AppendError> {
        let now = now_ms();
        let mut log = self.log.lock();
        let isr = {
            let state = self.state.lock();
            if state.leader != self.node_id {
                return Err(AppendError::NotLeader);
            }
            self.in_sync_count(&state, now)
        };
        if batches.iter().any(|batch| batch.header.is_control()) {
            return Err(AppendError::ControlBatch);
        }
        if batches
            .iter()
            .any(|batch| batch.header.is_transactional() && batch.header.producer_id < 0)
        {
            return Err(AppendError::TransactionalWithoutProducer);
        }
        // A batch without a sequence (a coordinator's transactional offset commit) is
        // still fenced by its producer's epoch.
        if let Some(stale) = batches.iter().find(|batch| {
            batch.header.producer_id >= 0
                && BatchIdentity::of(&batch.header).is_none()
                && log
                    .producers()
                    .epoch_of(batch.header.producer_id)
                    .is_some_and(|epoch| batch.header.producer_epoch < epoch)
        }) {
            return Err(AppendError::InvalidProducerEpoch {
                producer_id: stale.header.producer_id,
            });
        }
        let identity = match batches {
            [single] => identity(single),
            _ if batches.iter().any(|batch| identity(batch).is_some()) => {
                return Err(AppendError::InvalidRecord);
            }
            _ => None,
        };
        // A retry of a batch this log already holds is answered with its offsets before
        // anything else: refusing it (NOT_ENOUGH_REPLICAS says "not written") would tell
        // an idempotent producer to send it again under a new epoch, as a duplicate. An
        // acks=all retry then waits for replication like the first attempt.
        let decision = identity.as_ref().map(|identity| log.producers().check(identity));
        if let Some(Decision::Duplicate {
            base_offset,
            last_offset,
        }) = decision
        {
            let needs_flush = log.config().flush_messages <= 1 && log.recovery_point() <= last_offset;
            return Ok((
                AppendInfo {
                    base_offset,
                    last_offset,
                    log_start_offset: log.log_start_offset(),
                    log_append_time_ms: -1,
                },
                needs_flush,
            ));
        }
        if required_acks == -1 {
            let required = log.config().min_insync_replicas;
            if (isr as i64) < required as i64 {
                return Err(AppendError::NotEnoughReplicas { isr, required });
            }
        }
        if let (Some(identity), Some(decision)) = (&identity, decision) {
            let producer_id = identity.producer_id;
            match decision {
                Decision::Append | Decision::Duplicate { .. } => {}
                Decision::OutOfOrderSequence => return Err(AppendError::OutOfOrderSequence { producer_id }),
                Decision::InvalidProducerEpoch => {
                    return Err(AppendError::InvalidProducerEpoch { producer_id });
                }
            }
        }
        // The log records the batch in its producer state.
        let info = log.append(batches, now)?;
        // A lone in-sync leader commits at once; otherwise followers move it.
        let state = self.state.lock();
        let followers = self.followers.lock();
        self.refresh_high_watermark(&mut log, &state, &followers);
        Ok((info, log.needs_flush(now)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A partition led by broker 1 in a fresh log under `dir`, with `isr` of
    /// `replicas` and `replica.lag.time.max.ms` = `lag_ms`.
    pub(crate) fn leader(
        dir: &std::path::Path,
        config: crate::config::LogConfig,
        replicas: &[i32],
        isr: &[i32],
        lag_ms: i64,
    ) -> Partition {
        let log = PartitionLog::create(&dir.join("t-0"), TopicPartition::new("t", 0), config, 0, 0).unwrap();
        let state = PartitionState {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
        };
        Partition::new(log, uuid::Uuid::nil(), 1, state, lag_ms)
    }
    use crate::log::batch::split_and_validate;
    use crate::log::batch::tests::make_batch;

    fn idempotent_batch(sequence: i32) -> Vec<IncomingBatch> {
        let mut bytes = make_batch(1, now_ms(), b"v");
        bytes[43..51].copy_from_slice(&7i64.to_be_bytes());
        bytes[51..53].copy_from_slice(&0i16.to_be_bytes());
        bytes[53..57].copy_from_slice(&sequence.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        split_and_validate(&bytes::Bytes::from(bytes), 1 << 20).unwrap()
    }

    /// Found by the chaos suite (pause nemesis): while a follower lagged, the retry of an
    /// appended batch got NOT_ENOUGH_REPLICAS ("not written"); the producer bumped its
    /// epoch and sent the messages again, and they were stored twice.
    #[tokio::test]
    async fn a_retry_of_an_appended_batch_is_never_refused_for_lack_of_replicas() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::config::BrokerConfig::load(None, &[]).unwrap().log;
        config.min_insync_replicas = 2;
        // replica.lag.time.max.ms of 1: follower 2 soon counts as lagging.
        let partition = std::sync::Arc::new(leader(dir.path(), config, &[1, 2], &[1, 2], 1));
        let first = partition.append(&idempotent_batch(0), 1).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert!(matches!(
            partition.append(&idempotent_batch(1), -1).await,
            Err(AppendError::NotEnoughReplicas { isr: 1, required: 2 })
        ));
        let retried = partition.append(&idempotent_batch(0), -1).await.unwrap();
        assert_eq!(
            (retried.base_offset, retried.last_offset),
            (first.base_offset, first.last_offset)
        );
        assert_eq!(partition.with_log(|log| log.log_end_offset()), 1);
    }

    /// Found by the chaos suite (rolling restarts): a follower proposed for the ISR was
    /// elected leader right after the controller committed it, without writes the old
    /// leader had acknowledged meanwhile. A proposed member holds the high watermark back.
    #[tokio::test]
    async fn a_replica_proposed_for_the_isr_holds_the_high_watermark_back() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::BrokerConfig::load(None, &[]).unwrap().log;
        let partition = std::sync::Arc::new(leader(dir.path(), config, &[1, 2, 3], &[1, 2], 30_000));
        let batch =
            || split_and_validate(&bytes::Bytes::from(make_batch(5, now_ms(), b"v")), 1 << 20).unwrap();
        partition.append(&batch(), 1).await.unwrap();
        let now = now_ms();
        partition.record_follower_fetch(2, 5, None, 0, now);
        assert_eq!(partition.with_log(|log| log.high_watermark()), 5);
        // Replica 3 reaches the high watermark: the leader proposes it.
        partition.record_follower_fetch(3, 5, None, 0, now);
        let proposal = partition
            .isr_proposal(30_000, now, &[])
            .expect("an ISR expansion");
        assert_eq!(proposal.new_isr, vec![1, 2, 3]);
        partition.append(&batch(), 1).await.unwrap();
        partition.record_follower_fetch(2, 10, None, 0, now);
        assert_eq!(
            partition.with_log(|log| log.high_watermark()),
            5,
            "replica 3 is not known to hold offsets 5..10"
        );
        partition.record_follower_fetch(3, 10, None, 0, now);
        assert_eq!(partition.with_log(|log| log.high_watermark()), 10);
    }

    /// KIP-966's high-watermark rule: with the committed ISR below min.insync.replicas
    /// nothing more is committed (acks=1 writes wait), so replicas that leave meanwhile
    /// stay eligible leaders; with `eligible.leader.replicas.version=0` it moves on.
    #[tokio::test]
    async fn the_high_watermark_holds_while_the_isr_is_below_min_insync_replicas() {
        for strict in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let mut config = crate::config::BrokerConfig::load(None, &[]).unwrap().log;
            config.min_insync_replicas = 2;
            let log =
                PartitionLog::create(&dir.path().join("t-0"), TopicPartition::new("t", 0), config, 0, 0)
                    .unwrap();
            let state = PartitionState {
                replicas: vec![1, 2, 3],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
            };
            let partition =
                std::sync::Arc::new(Partition::new(log, uuid::Uuid::nil(), 1, state.clone(), 30_000));
            partition.set_strict_min_isr(strict);
            let batch =
                || split_and_validate(&bytes::Bytes::from(make_batch(5, now_ms(), b"v")), 1 << 20).unwrap();
            partition.append(&batch(), 1).await.unwrap();
            partition.record_follower_fetch(2, 5, None, 0, now_ms());
            let expected = if strict { 0 } else { 5 };
            assert_eq!(
                partition.with_log(|log| log.high_watermark()),
                expected,
                "strict={strict}"
            );
            // Once the controller committed the ISR [1, 2], it moves.
            partition.update(
                PartitionState {
                    isr: vec![1, 2],
                    partition_epoch: 1,
                    ..state
                },
                now_ms(),
            );
            partition.record_follower_fetch(2, 5, None, 0, now_ms());
            assert_eq!(partition.with_log(|log| log.high_watermark()), 5);
        }
    }

    /// Under `flush.messages=1` a follower reports how far it has fsynced: what it holds
    /// only in its page cache does not count as replicated, so no acknowledgement rests
    /// on data a power cut of the follower would erase.
    #[tokio::test]
    async fn a_durable_follower_counts_only_what_it_has_fsynced() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::BrokerConfig::load(None, &[]).unwrap().log;
        let partition = std::sync::Arc::new(leader(dir.path(), config, &[1, 2], &[1, 2], 30_000));
        let batch =
            || split_and_validate(&bytes::Bytes::from(make_batch(5, now_ms(), b"v")), 1 << 20).unwrap();
        partition.append(&batch(), 1).await.unwrap();
        partition.append(&batch(), 1).await.unwrap();
        // The follower holds all 10 records, 4 of them fsynced.
        partition.record_follower_fetch(2, 10, Some(4), 0, now_ms());
        assert_eq!(partition.with_log(|log| log.high_watermark()), 4);
        partition.record_follower_fetch(2, 10, Some(10), 0, now_ms());
        assert_eq!(partition.with_log(|log| log.high_watermark()), 10);
    }
}
