//! Reading replicas for a fetch: a follower's progress (and the ISR change it may
//! bring), each partition's bounds, epoch check and divergence, the preferred read
//! replica (KIP-392), the aborted transactions a read_committed consumer needs, and the
//! long poll on `max_wait_ms`/`min_bytes`. Records are not read: each partition's data
//! is a file range the server sends with sendfile.

use super::ReplicaManager;
use crate::common::{ErrorCode, now_ms};
use crate::log::segment::FileSlice;
use crate::replication::Partition;
use crate::replication::read_replica::{ReplicaView, preferred_read_replica};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// What a fetch asks of every partition.
#[derive(Debug, Clone)]
pub struct FetchSpec {
    /// The follower fetching (it reads past the high watermark, up to the log end);
    /// None for a consumer.
    pub replica_id: Option<i32>,
    /// A consumer that may read from a follower (v11+, KIP-392).
    pub any_replica: bool,
    /// isolation_level=READ_COMMITTED (v4+): up to the last stable offset, with the
    /// aborted transactions in what is sent.
    pub read_committed: bool,
    /// The consumer's rack (KIP-392), empty if none.
    pub rack_id: String,
    pub max_bytes: u64,
    pub min_bytes: u64,
    pub max_wait: Duration,
}

/// One requested partition.
#[derive(Clone)]
pub struct FetchTarget {
    /// The local replica, or the Kafka code its partition is answered with.
    pub partition: Result<Arc<Partition>, ErrorCode>,
    pub fetch_offset: i64,
    /// A follower's log start offset (v5+), for DeleteRecords' low watermark.
    pub log_start_offset: i64,
    /// A durable follower's fsynced log end: only that much counts as replicated.
    pub durable_end_offset: Option<i64>,
    pub partition_max_bytes: i32,
    pub current_leader_epoch: i32,
    /// The epoch of the follower's last batch (v12+; -1 unknown), for divergence.
    pub last_fetched_epoch: i32,
}

/// What reading one partition found.
#[derive(Debug)]
pub struct PartitionRead {
    pub error_code: ErrorCode,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// KIP-320/KIP-595: where the follower's last epoch ends here (epoch, end offset).
    pub diverging: Option<(i32, i64)>,
    pub preferred_read_replica: Option<i32>,
    /// Aborted transactions overlapping what is sent: (producer id, first offset).
    pub aborted: Option<Vec<(i64, i64)>>,
    /// Records copied into the response (past the first few ranges), and their count.
    pub copied: Option<(Bytes, u64)>,
    /// Records sent from the file.
    pub slice: Option<FileSlice>,
}

impl PartitionRead {
    fn failed(error_code: ErrorCode) -> Self {
        PartitionRead {
            error_code,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            diverging: None,
            preferred_read_replica: None,
            aborted: None,
            copied: None,
            slice: None,
        }
    }

    /// An error, a diverging epoch or a preferred read replica: always answered, and
    /// the end of waiting.
    pub fn must_send(&self) -> bool {
        !self.error_code.is_none() || self.diverging.is_some() || self.preferred_read_replica.is_some()
    }

    pub fn has_records(&self) -> bool {
        self.slice.as_ref().is_some_and(|slice| slice.len > 0)
            || self
                .copied
                .as_ref()
                .is_some_and(|(records, _)| !records.is_empty())
    }
}

/// File ranges one fetch response sends with sendfile; the rest of its ranges are
/// copied into the response.
const MAX_FILE_SLICES: usize = 16;

/// Kafka's leader-epoch check of a request against a replica's epoch.
pub fn check_leader_epoch(current_leader_epoch: i32, leader_epoch: i32) -> Result<(), ErrorCode> {
    if current_leader_epoch < 0 || current_leader_epoch == leader_epoch {
        Ok(())
    } else if current_leader_epoch < leader_epoch {
        Err(ErrorCode::FENCED_LEADER_EPOCH)
    } else {
        Err(ErrorCode::UNKNOWN_LEADER_EPOCH)
    }
}

impl ReplicaManager {
    /// Reads every target, waiting up to `max_wait` for `min_bytes` (woken by appends,
    /// high-watermark, log-start, marker and leadership changes). A follower's fetch
    /// first records its progress, which may move the high watermark and propose it for
    /// the ISR. One read per target, in order.
    pub async fn fetch(&self, spec: &FetchSpec, targets: &[FetchTarget]) -> Vec<PartitionRead> {
        if let Some(replica_id) = spec.replica_id {
            // A follower's fetch offset is its log end.
            let now = crate::common::now_ms();
            for target in targets {
                if let Ok(partition) = &target.partition
                    && partition.record_follower_fetch(
                        replica_id,
                        target.fetch_offset,
                        target.durable_end_offset,
                        target.log_start_offset,
                        now,
                    )
                {
                    self.propose_isr_change(partition);
                }
            }
        }
        let preferred: Vec<Option<i32>> = targets
            .iter()
            .map(|target| match &target.partition {
                Ok(local) if spec.any_replica => {
                    self.preferred_replica(local, &spec.rack_id, target.fetch_offset)
                }
                _ => None,
            })
            .collect();
        let deadline = tokio::time::Instant::now() + spec.max_wait;
        loop {
            // Register for wake-ups before reading, so an append in between is not missed.
            let mut waits: Vec<_> = targets
                .iter()
                .filter_map(|target| target.partition.as_ref().ok())
                .map(|partition| Box::pin(partition.appended()))
                .collect();
            for wait in &mut waits {
                wait.as_mut().enable();
            }
            let mut reads = Vec::with_capacity(targets.len());
            let mut total: u64 = 0;
            let mut any_error = false;
            let mut n_slices = 0;
            let mut n_copied = 0;
            // KIP-73: a follower's fetch of a throttled replica led here gets no records
            // while the leader throttle is over its rate.
            let throttled: Vec<bool> = targets
                .iter()
                .map(|target| self.leader_throttled(spec, target))
                .collect();
            let held_back = throttled.contains(&true) && self.leader_throttle.exceeded(now_ms());
            for ((target, preferred), throttled) in targets.iter().zip(&preferred).zip(&throttled) {
                let remaining = spec.max_bytes - total.min(spec.max_bytes);
                let mut read = if *throttled && held_back {
                    read_partition(spec, target, *preferred, 0, false)
                } else {
                    read_partition(spec, target, *preferred, remaining, total == 0)
                };
                let read_bytes = read.slice.as_ref().map_or(0, |slice| slice.len);
                if *throttled {
                    self.leader_throttle.record(read_bytes, now_ms());
                }
                total += read_bytes;
                if read.slice.is_some() {
                    n_slices += 1;
                }
                if n_slices > MAX_FILE_SLICES
                    && let Some(range) = read.slice.take()
                {
                    // Past the first few, ranges are copied at once: a slice holds its
                    // segment's descriptor until sent, and a fetch over thousands of
                    // partitions must not hold thousands of them past the open-file budget.
                    match range.read_to_vec() {
                        Ok(bytes) => {
                            n_copied += 1;
                            read.copied = Some((Bytes::from(bytes), range.records));
                        }
                        Err(error) => {
                            tracing::error!(%error, "cannot read a fetched range");
                            read.error_code = ErrorCode::KAFKA_STORAGE_ERROR;
                        }
                    };
                }
                any_error |= read.must_send();
                reads.push(read);
            }
            let expired = tokio::time::Instant::now() >= deadline;
            if total >= spec.min_bytes || any_error || expired || waits.is_empty() {
                return reads;
            }
            // Ranges found are not held through the wait (each holds a segment descriptor).
            let kept = (n_slices == 0 && n_copied == 0).then_some(reads);
            let _waiting = self.metrics.waiting(crate::metrics::WaitKind::Fetch);
            let woken = tokio::time::timeout_at(deadline, futures::future::select_all(waits)).await;
            // A wait that timed out with no wake-up saw no change in any partition
            // read (each notifies `appended`): the read before it is the answer.
            if woken.is_err()
                && let Some(reads) = kept
            {
                return reads;
            }
        }
    }

    /// Whether `target` is a replica this broker leads that its topic's
    /// `leader.replication.throttled.replicas` names, fetched by a follower.
    fn leader_throttled(&self, spec: &FetchSpec, target: &FetchTarget) -> bool {
        if spec.replica_id.is_none() || !self.leader_throttle.limited() {
            return false;
        }
        let Ok(partition) = &target.partition else {
            return false;
        };
        let image = self.image();
        let replicas = image
            .topic(&partition.topic_partition.topic)
            .and_then(|topic| topic.configs.get("leader.replication.throttled.replicas"));
        crate::replication::throttle::names(
            replicas.map(String::as_str),
            partition.topic_partition.partition,
            self.config.node_id,
        )
    }

    /// KIP-392: the in-sync replica in the consumer's rack that the leader sends it to,
    /// when the rack-aware selector is configured and such a replica is not the leader.
    fn preferred_replica(&self, partition: &Partition, rack_id: &str, fetch_offset: i64) -> Option<i32> {
        if !self.config.rack_aware_reads || rack_id.is_empty() {
            return None;
        }
        let (leader_log_end_offset, candidates) = partition.read_candidates(fetch_offset)?;
        let image = self.image.borrow().clone();
        let followers: Vec<ReplicaView> = candidates
            .into_iter()
            .filter_map(|candidate| {
                let registered = image
                    .brokers
                    .get(&candidate.broker_id)
                    .filter(|broker| !broker.fenced)?;
                Some(ReplicaView {
                    rack: registered.rack.clone(),
                    ..candidate
                })
            })
            .collect();
        let leader = ReplicaView {
            broker_id: self.config.node_id,
            rack: self.config.broker_rack.clone(),
            log_end_offset: leader_log_end_offset,
            last_caught_up_ms: i64::MAX,
        };
        preferred_read_replica(rack_id, &leader, &followers)
    }
}

fn read_partition(
    spec: &FetchSpec,
    target: &FetchTarget,
    preferred_read_replica: Option<i32>,
    remaining: u64,
    min_one: bool,
) -> PartitionRead {
    let partition = match &target.partition {
        Ok(partition) => partition,
        Err(code) => return PartitionRead::failed(*code),
    };
    if !spec.any_replica && !partition.is_leader() {
        // Leadership moved while the fetch waited.
        return PartitionRead::failed(ErrorCode::NOT_LEADER_OR_FOLLOWER);
    }
    let replica = spec.replica_id.is_some();
    partition.with_log(|log| {
        let high_watermark = log.high_watermark();
        let last_stable_offset = log.last_stable_offset();
        let mut read = PartitionRead {
            high_watermark,
            last_stable_offset,
            log_start_offset: log.log_start_offset(),
            ..PartitionRead::failed(ErrorCode::NONE)
        };
        if let Err(code) = check_leader_epoch(target.current_leader_epoch, log.leader_epoch()) {
            read.error_code = code;
            return read;
        }
        if preferred_read_replica.is_some() {
            read.preferred_read_replica = preferred_read_replica;
            return read;
        }
        if replica && target.last_fetched_epoch >= 0 {
            // KIP-320/KIP-595 divergence: where the follower's last epoch ends here.
            let (epoch, end_offset) = log.end_offset_for_epoch(target.last_fetched_epoch);
            if end_offset >= 0 && (end_offset < target.fetch_offset || epoch < target.last_fetched_epoch) {
                read.diverging = Some((epoch, end_offset));
                return read;
            }
        }
        let max_bytes = (target.partition_max_bytes.max(0) as u64).min(remaining);
        if max_bytes == 0 && !min_one {
            return read;
        }
        // Followers read what the leader has; consumers only what is committed, and
        // read_committed ones only what is stable.
        let max_offset = if replica {
            log.log_end_offset()
        } else if spec.read_committed {
            last_stable_offset
        } else {
            high_watermark
        };
        match log.read(target.fetch_offset, max_offset, max_bytes, min_one) {
            Ok(slice) => {
                if spec.read_committed {
                    // Only the list is computed; the records still go out as file ranges.
                    read.aborted = Some(log.aborted_overlapping(target.fetch_offset, max_offset));
                }
                read.slice = slice;
            }
            Err(error) => read.error_code = ErrorCode::from_code(error.code()),
        }
        read
    })
}
