//! A partition's replication verbs: on the leader, follower progress, the high
//! watermark, ISR proposals and waiting for `acks=all`; on a follower, appending the
//! leader's batches and truncating at a divergence point.
//!
//! The decisions themselves are the pure rules of [`super::isr`]; this file applies them
//! under the partition's locks and wakes whoever waits.

use super::isr::{self, FollowerState, IsrView};
use super::partition::{AppendError, Partition, PartitionState};
use super::read_replica::ReplicaView;
use crate::log::PartitionLog;
use crate::log::batch::IncomingBatch;
use std::collections::HashMap;

/// An ISR change the leader wants the controller to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    pub new_isr: Vec<i32>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

/// Where a follower's log stands, for its next fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPosition {
    pub log_end_offset: i64,
    pub log_start_offset: i64,
    /// The epoch of its last batch (-1: none), for the leader's divergence check.
    pub last_fetched_epoch: i32,
    /// Its fsynced log end, when its flush policy (`flush.messages=1`) promises that
    /// what it reports as replicated is durable.
    pub durable_end_offset: Option<i64>,
}

impl Partition {
    /// Moves the high watermark to the lowest log end offset in the ISR; returns
    /// whether it moved. The caller holds the locks it passes.
    pub(super) fn refresh_high_watermark(
        &self,
        log: &mut PartitionLog,
        state: &PartitionState,
        followers: &HashMap<i32, FollowerState>,
    ) -> bool {
        let current = log.high_watermark();
        // It never passes the log end: at the end there is nothing to move (an idle
        // partition's every follower fetch).
        if current >= log.log_end_offset() {
            return false;
        }
        // KIP-966's strict min ISR: while the committed ISR is below
        // `min.insync.replicas` nothing more counts as committed, so every replica that
        // leaves the ISR meanwhile (into the ELR) holds all that did.
        if self.strict_min_isr.load(std::sync::atomic::Ordering::Relaxed)
            && (state.isr.len() as i64) < log.config().min_insync_replicas as i64
        {
            return false;
        }
        // Kafka's "maximal ISR" (KIP-497): a replica proposed for the ISR counts from the
        // moment it is proposed. Once the controller commits it, it may be elected
        // leader; had the high watermark passed its log meanwhile, writes acknowledged in
        // between would be lost with it (the chaos suite's rolling restarts found that).
        let mut maximal = state.isr.clone();
        if let Some((epoch, proposed)) = self.pending_isr.lock().as_ref()
            && *epoch == state.partition_epoch
        {
            maximal.extend(proposed.iter().filter(|replica| !state.isr.contains(replica)));
        }
        let next = isr::high_watermark(current, self.node_id, log.log_end_offset(), &maximal, followers);
        if next > current {
            log.set_high_watermark(next);
            true
        } else {
            false
        }
    }

    /// How many ISR members can take a write now: the leader, and followers that have
    /// caught up within `replica.lag.time.max.ms`. A follower the leader has already
    /// seen fall behind does not count, even while the controller has not (or cannot,
    /// without a quorum) committed its removal: refusing a write that could not reach
    /// `min.insync.replicas` is always safe.
    pub(super) fn in_sync_count(&self, state: &PartitionState, now_ms: i64) -> usize {
        let followers = self.followers.lock();
        state
            .isr
            .iter()
            .filter(|replica| {
                **replica == self.node_id
                    || followers.get(replica).is_none_or(|follower| {
                        now_ms - follower.last_caught_up_ms <= self.replica_lag_time_max_ms
                    })
            })
            .count()
    }

    /// A follower fetched from `fetch_offset`, having fsynced up to `durable_end_offset`
    /// if it said so: record its progress and move the high watermark. Returns true when the follower is outside the ISR on a partition this
    /// broker leads, so that its joining may be due (leaving is the periodic check's).
    pub fn record_follower_fetch(
        &self,
        replica_id: i32,
        fetch_offset: i64,
        durable_end_offset: Option<i64>,
        log_start_offset: i64,
        now_ms: i64,
    ) -> bool {
        let mut log = self.log.lock();
        let state = self.state.lock();
        if state.leader != self.node_id {
            return false;
        }
        let outside_isr = !state.isr.contains(&replica_id);
        let mut followers = self.followers.lock();
        let log_end_offset = log.log_end_offset();
        let follower = followers
            .entry(replica_id)
            .or_insert_with(|| FollowerState::new(now_ms));
        follower.on_fetch(fetch_offset.min(log_end_offset), log_end_offset, now_ms);
        follower.durable_end_offset = durable_end_offset;
        // A DeleteRecords request waits for followers' log starts to follow.
        let start_moved = log_start_offset > follower.log_start_offset;
        follower.log_start_offset = follower.log_start_offset.max(log_start_offset);
        let moved = self.refresh_high_watermark(&mut log, &state, &followers) || start_moved;
        drop(followers);
        drop(state);
        drop(log);
        if moved {
            self.appended.notify_waiters();
        }
        outside_isr
    }

    /// The ISR change to send to the controller now, if one is due and none is pending
    /// for the current partition epoch.
    pub fn isr_proposal(
        &self,
        replica_lag_time_max_ms: i64,
        now_ms: i64,
        ineligible: &[i32],
    ) -> Option<IsrProposal> {
        let log = self.log.lock();
        let state = self.state.lock();
        if state.leader != self.node_id {
            return None;
        }
        let mut pending = self.pending_isr.lock();
        if pending
            .as_ref()
            .is_some_and(|(epoch, _)| *epoch == state.partition_epoch)
        {
            return None;
        }
        let followers = self.followers.lock();
        let epoch_start_offset = log.epoch_start_offset(state.leader_epoch).unwrap_or(0);
        let new_isr = isr::proposed_isr(&IsrView {
            leader_id: self.node_id,
            replicas: &state.replicas,
            isr: &state.isr,
            followers: &followers,
            high_watermark: log.high_watermark(),
            epoch_start_offset,
            replica_lag_time_max_ms,
            now_ms,
            ineligible,
        })?;
        *pending = Some((state.partition_epoch, new_isr.clone()));
        Some(IsrProposal {
            new_isr,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
        })
    }

    /// The controller refused (or did not answer) an ISR change: allow another.
    pub fn clear_pending_isr(&self) {
        *self.pending_isr.lock() = None;
    }

    /// Waits until every ISR member has the log up to `end_offset` (the high watermark
    /// reached it), for `acks=all`. Fails if leadership moves, if the ISR shrinks below
    /// `min.insync.replicas`, or at `deadline`. Costs no thread: it sleeps on the
    /// partition's notifier, which appends, follower fetches and leadership changes
    /// wake.
    pub async fn wait_replicated(
        &self,
        end_offset: i64,
        deadline: tokio::time::Instant,
    ) -> Result<(), AppendError> {
        loop {
            let changed = self.appended.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let log = self.log.lock();
                let state = self.state.lock();
                if state.leader != self.node_id {
                    return Err(AppendError::NotLeader);
                }
                if log.high_watermark() >= end_offset {
                    return Ok(());
                }
                let required = log.config().min_insync_replicas;
                if (self.in_sync_count(&state, crate::common::now_ms()) as i64) < required as i64 {
                    return Err(AppendError::NotEnoughReplicasAfterAppend { required });
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(AppendError::Timeout);
            }
        }
    }

    /// Where this follower's log stands, for its next fetch.
    pub fn fetch_position(&self) -> FetchPosition {
        let log = self.log.lock();
        FetchPosition {
            log_end_offset: log.log_end_offset(),
            log_start_offset: log.log_start_offset(),
            last_fetched_epoch: log.latest_epoch().unwrap_or(-1),
            durable_end_offset: (log.config().flush_messages <= 1).then(|| log.recovery_point()),
        }
    }

    /// Appends the leader's batches as they are, takes the leader's high watermark and
    /// log start (up to what this log has) and rebuilds idempotent-producer state from the batches, so
    /// that a retry is recognized if this replica becomes leader.
    pub fn append_replicated(
        &self,
        batches: &[IncomingBatch],
        leader_high_watermark: i64,
        leader_log_start_offset: i64,
        now_ms: i64,
    ) -> Result<bool, AppendError> {
        let mut log = self.log.lock();
        if !batches.is_empty() {
            log.append_as_follower(batches, now_ms)?;
        }
        // Records the leader deleted (DeleteRecords) go here too.
        log.advance_log_start(leader_log_start_offset)?;
        let high_watermark = leader_high_watermark.min(log.log_end_offset());
        let moved = high_watermark > log.high_watermark();
        if moved {
            log.set_high_watermark(high_watermark);
        }
        let needs_flush = log.needs_flush(now_ms);
        drop(log);
        if moved {
            // Consumers reading from this follower (KIP-392) wait on its high watermark.
            self.appended.notify_waiters();
        }
        Ok(needs_flush)
    }

    /// Cuts this follower's log where it diverged from the leader's.
    pub fn truncate_to(&self, offset: i64, now_ms: i64) -> Result<(), AppendError> {
        // The log rebuilds its producer state too: a retried batch that was cut must
        // not be answered as a duplicate at offsets that no longer hold it.
        self.log.lock().truncate_to(offset, now_ms)?;
        Ok(())
    }

    /// Empties this follower's log and restarts it at the leader's log start.
    pub fn restart_at(&self, offset: i64, now_ms: i64) -> Result<(), AppendError> {
        self.log.lock().truncate_fully_and_start_at(offset, now_ms)?;
        Ok(())
    }

    /// Where `epoch` ends in this log (for a follower's divergence search).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.log.lock().end_offset_for_epoch(epoch)
    }

    /// The leader's view of the replicas a consumer at `fetch_offset` could read from
    /// instead (KIP-392): its log end offset, and the in-sync followers that hold that offset,
    /// with their racks left for the caller. None if this is not the leader.
    pub fn read_candidates(&self, fetch_offset: i64) -> Option<(i64, Vec<ReplicaView>)> {
        let log = self.log.lock();
        let state = self.state.lock();
        if state.leader != self.node_id {
            return None;
        }
        let followers = self.followers.lock();
        let candidates = followers
            .iter()
            .filter(|(id, follower)| state.isr.contains(id) && follower.log_end_offset >= fetch_offset)
            .map(|(id, follower)| ReplicaView {
                broker_id: *id,
                rack: None,
                log_end_offset: follower.log_end_offset,
                last_caught_up_ms: follower.last_caught_up_ms,
            })
            .collect();
        Some((log.log_end_offset(), candidates))
    }
}
