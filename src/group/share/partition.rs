//! One share-partition of a KIP-932 share group, as a pure state machine: which
//! records are available, acquired (by whom, until when, how many times delivered),
//! acknowledged or archived, between the share-partition start offset (SPSO) and end
//! offset (SPEO).
//!
//! Records below the start offset are done; at or above the end offset they were
//! never acquired. In between, each in-flight record has a state. A ShareFetch
//! acquires available records (and new ones past the end offset) for one member for
//! `group.share.record.lock.duration.ms`; ShareAcknowledge accepts (done), releases
//! (available again) or rejects (archived) them. A lock that expires, or a member that
//! leaves, releases its records. A record delivered `group.share.delivery.count.limit`
//! times is archived instead of being made available again. The start offset moves
//! past every leading record that is acknowledged or archived.

use super::snapshot::{ShareSnapshot, StateBatch};
use crate::common::ErrorCode;
use std::collections::BTreeMap;

/// A record's state (the numbers are Kafka's `RecordState` values as persisted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Available,
    Acquired,
    Acknowledged,
    Archived,
}

impl RecordState {
    pub fn value(self) -> i8 {
        match self {
            RecordState::Available => 0,
            RecordState::Acquired => 1,
            RecordState::Acknowledged => 2,
            RecordState::Archived => 4,
        }
    }

    pub fn from_value(value: i8) -> Option<Self> {
        match value {
            0 => Some(RecordState::Available),
            1 => Some(RecordState::Acquired),
            2 => Some(RecordState::Acknowledged),
            4 => Some(RecordState::Archived),
            _ => None,
        }
    }
}

/// ShareAcknowledge's acknowledge types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcknowledgeType {
    /// 0: a gap in the log (no record): treated as accepted.
    Gap,
    Accept,
    Release,
    Reject,
}

impl AcknowledgeType {
    pub fn from_wire(value: i8) -> Option<Self> {
        match value {
            0 => Some(AcknowledgeType::Gap),
            1 => Some(AcknowledgeType::Accept),
            2 => Some(AcknowledgeType::Release),
            3 => Some(AcknowledgeType::Reject),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct InFlight {
    pub state: RecordState,
    pub delivery_count: i16,
    /// The member holding it while Acquired.
    pub member_id: Option<String>,
    pub lock_deadline_ms: i64,
}

/// An acquired range as ShareFetch reports it: offsets and their delivery count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquiredRange {
    pub first_offset: i64,
    pub last_offset: i64,
    pub delivery_count: i16,
}

#[derive(Debug, Clone, Copy)]
pub struct ShareConfig {
    /// `group.share.record.lock.duration.ms` (default 30000).
    pub lock_duration_ms: i64,
    /// `group.share.delivery.count.limit` (default 5).
    pub delivery_count_limit: i16,
    /// `group.share.partition.max.record.locks` (default 2000).
    pub max_record_locks: usize,
}

impl Default for ShareConfig {
    fn default() -> Self {
        ShareConfig {
            lock_duration_ms: 30_000,
            delivery_count_limit: 5,
            max_record_locks: 2000,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SharePartition {
    pub start_offset: i64,
    /// The first offset never acquired.
    pub end_offset: i64,
    pub records: BTreeMap<i64, InFlight>,
    /// Bumped whenever the persisted state is rewritten from scratch.
    pub state_epoch: i32,
}

impl SharePartition {
    /// A share-partition starting at `start_offset` (from `share.auto.offset.reset`).
    pub fn new(start_offset: i64) -> Self {
        SharePartition {
            start_offset,
            end_offset: start_offset,
            records: BTreeMap::new(),
            state_epoch: 0,
        }
    }

    fn n_locked(&self) -> usize {
        self.records
            .values()
            .filter(|record| record.state == RecordState::Acquired)
            .count()
    }

    /// Acquires for `member_id` up to `max_records` records among offsets
    /// `[first, log_end)` that a fetch returned: available in-flight records first, then
    /// new ones past the end offset. Returns the acquired ranges.
    pub fn acquire(
        &mut self,
        member_id: &str,
        first: i64,
        log_end: i64,
        max_records: usize,
        config: &ShareConfig,
        now_ms: i64,
    ) -> Vec<AcquiredRange> {
        self.acquire_skipping(member_id, first..log_end, &[], max_records, config, now_ms)
    }

    /// [`Self::acquire`], with new records in the `archived` ranges (first, last) made
    /// archived instead (aborted transactions, for `share.isolation.level=read_committed`).
    pub fn acquire_skipping(
        &mut self,
        member_id: &str,
        offsets: std::ops::Range<i64>,
        archived: &[(i64, i64)],
        max_records: usize,
        config: &ShareConfig,
        now_ms: i64,
    ) -> Vec<AcquiredRange> {
        let (first, log_end) = (offsets.start, offsets.end);
        let budget = config
            .max_record_locks
            .saturating_sub(self.n_locked())
            .min(max_records);
        let mut acquired: Vec<(i64, i16)> = Vec::new();
        let from = first.max(self.start_offset);
        for (offset, record) in self.records.range_mut(from..log_end) {
            if acquired.len() >= budget {
                break;
            }
            if record.state == RecordState::Available {
                record.state = RecordState::Acquired;
                record.delivery_count += 1;
                record.member_id = Some(member_id.to_string());
                record.lock_deadline_ms = now_ms + config.lock_duration_ms;
                acquired.push((*offset, record.delivery_count));
            }
        }
        let mut offset = self.end_offset.max(from);
        while acquired.len() < budget && offset < log_end {
            if archived
                .iter()
                .any(|(first, last)| (*first..=*last).contains(&offset))
            {
                self.records.insert(
                    offset,
                    InFlight {
                        state: RecordState::Archived,
                        delivery_count: 0,
                        member_id: None,
                        lock_deadline_ms: 0,
                    },
                );
                offset += 1;
                continue;
            }
            self.records.insert(
                offset,
                InFlight {
                    state: RecordState::Acquired,
                    delivery_count: 1,
                    member_id: Some(member_id.to_string()),
                    lock_deadline_ms: now_ms + config.lock_duration_ms,
                },
            );
            acquired.push((offset, 1));
            offset += 1;
        }
        self.end_offset = self.end_offset.max(offset);
        self.advance_start();
        acquired.sort();
        ranges(&acquired)
    }

    /// The first offset a fetch for this partition should read from: the first
    /// available in-flight record, else the end offset.
    pub fn next_fetch_offset(&self) -> i64 {
        self.records
            .iter()
            .find(|(_, record)| record.state == RecordState::Available)
            .map_or(self.end_offset, |(offset, _)| *offset)
    }

    /// ShareAcknowledge (or the acknowledgements piggybacked on ShareFetch) for
    /// `[first, last]`: every record must be acquired by this member, else
    /// INVALID_RECORD_STATE and nothing changes.
    pub fn acknowledge(
        &mut self,
        member_id: &str,
        first: i64,
        last: i64,
        kind: AcknowledgeType,
        config: &ShareConfig,
    ) -> ErrorCode {
        if last < first {
            return ErrorCode::of(kafka_protocol::ResponseError::InvalidRequest);
        }
        let held = (first..=last).all(|offset| {
            self.records.get(&offset).is_some_and(|record| {
                record.state == RecordState::Acquired && record.member_id.as_deref() == Some(member_id)
            })
        });
        if !held {
            return ErrorCode::of(kafka_protocol::ResponseError::InvalidRecordState);
        }
        for offset in first..=last {
            if let Some(record) = self.records.get_mut(&offset) {
                record.member_id = None;
                record.state = match kind {
                    AcknowledgeType::Gap | AcknowledgeType::Accept => RecordState::Acknowledged,
                    AcknowledgeType::Reject => RecordState::Archived,
                    AcknowledgeType::Release if record.delivery_count >= config.delivery_count_limit => {
                        RecordState::Archived
                    }
                    AcknowledgeType::Release => RecordState::Available,
                };
            }
        }
        self.advance_start();
        ErrorCode::NONE
    }

    /// Releases `member_id`'s acquired records (it left or its session ended).
    pub fn release_member(&mut self, member_id: &str, config: &ShareConfig) -> usize {
        let mut released = 0;
        for record in self.records.values_mut() {
            if record.state == RecordState::Acquired && record.member_id.as_deref() == Some(member_id) {
                release(record, config);
                released += 1;
            }
        }
        self.advance_start();
        released
    }

    /// Expired locks: their records are available again (or archived at the limit).
    pub fn expire_locks(&mut self, config: &ShareConfig, now_ms: i64) -> usize {
        let mut expired = 0;
        for record in self.records.values_mut() {
            if record.state == RecordState::Acquired && record.lock_deadline_ms <= now_ms {
                release(record, config);
                expired += 1;
            }
        }
        self.advance_start();
        expired
    }

    /// Moves the start offset past leading records that are done.
    fn advance_start(&mut self) {
        while let Some(record) = self.records.get(&self.start_offset) {
            if !matches!(record.state, RecordState::Acknowledged | RecordState::Archived) {
                break;
            }
            self.records.remove(&self.start_offset);
            self.start_offset += 1;
        }
        if self.records.is_empty() {
            self.start_offset = self.start_offset.max(self.end_offset);
        }
    }

    /// Counts by state, for metrics: (available, acquired, acknowledged, archived).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut counts = (0, 0, 0, 0);
        for record in self.records.values() {
            match record.state {
                RecordState::Available => counts.0 += 1,
                RecordState::Acquired => counts.1 += 1,
                RecordState::Acknowledged => counts.2 += 1,
                RecordState::Archived => counts.3 += 1,
            }
        }
        counts
    }

    /// The state to persist: runs of records with the same state and delivery count.
    /// Acquired records are persisted as available: after a failover their locks are
    /// gone.
    pub fn state_batches(&self) -> Vec<StateBatch> {
        let mut batches: Vec<StateBatch> = Vec::new();
        for (offset, record) in &self.records {
            let state = match record.state {
                RecordState::Acquired => RecordState::Available,
                other => other,
            }
            .value();
            match batches.last_mut() {
                Some(last)
                    if last.last_offset + 1 == *offset
                        && last.delivery_state == state
                        && last.delivery_count == record.delivery_count =>
                {
                    last.last_offset = *offset;
                }
                _ => batches.push(StateBatch {
                    first_offset: *offset,
                    last_offset: *offset,
                    delivery_state: state,
                    delivery_count: record.delivery_count,
                }),
            }
        }
        batches
    }

    /// Rebuilds a share-partition from persisted state (a new leader takes over);
    /// batches of an unknown delivery state are skipped.
    pub fn restore(snapshot: &ShareSnapshot) -> Self {
        let mut partition = SharePartition::new(snapshot.start_offset);
        partition.state_epoch = snapshot.state_epoch;
        for batch in &snapshot.batches {
            let state = match RecordState::from_value(batch.delivery_state) {
                Some(RecordState::Acquired) => RecordState::Available,
                Some(state) => state,
                None => continue,
            };
            for offset in batch.first_offset.max(snapshot.start_offset)..=batch.last_offset {
                partition.records.insert(
                    offset,
                    InFlight {
                        state,
                        delivery_count: batch.delivery_count,
                        member_id: None,
                        lock_deadline_ms: 0,
                    },
                );
                partition.end_offset = partition.end_offset.max(offset + 1);
            }
        }
        partition.advance_start();
        partition
    }

    /// Drops what retention deleted: records below `log_start` are gone for the share
    /// group too. Locks on the rest stay.
    pub fn trim_to(&mut self, log_start: i64) {
        if log_start <= self.start_offset {
            return;
        }
        self.records = self.records.split_off(&log_start);
        self.start_offset = log_start;
        self.end_offset = self.end_offset.max(log_start);
        self.advance_start();
    }
}

fn release(record: &mut InFlight, config: &ShareConfig) {
    record.member_id = None;
    record.state = if record.delivery_count >= config.delivery_count_limit {
        RecordState::Archived
    } else {
        RecordState::Available
    };
}

/// Consecutive offsets with the same delivery count, as ranges.
fn ranges(acquired: &[(i64, i16)]) -> Vec<AcquiredRange> {
    let mut out: Vec<AcquiredRange> = Vec::new();
    for (offset, delivery_count) in acquired {
        match out.last_mut() {
            Some(last) if last.last_offset + 1 == *offset && last.delivery_count == *delivery_count => {
                last.last_offset = *offset;
            }
            _ => out.push(AcquiredRange {
                first_offset: *offset,
                last_offset: *offset,
                delivery_count: *delivery_count,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CONFIG: ShareConfig = ShareConfig {
        lock_duration_ms: 1000,
        delivery_count_limit: 3,
        max_record_locks: 100,
    };

    fn range(first: i64, last: i64, delivery_count: i16) -> AcquiredRange {
        AcquiredRange {
            first_offset: first,
            last_offset: last,
            delivery_count,
        }
    }

    #[test]
    fn two_members_acquire_distinct_records_and_accepting_moves_the_start() {
        let mut partition = SharePartition::new(0);
        assert_eq!(partition.acquire("a", 0, 10, 4, &CONFIG, 0), vec![range(0, 3, 1)]);
        assert_eq!(partition.acquire("b", 0, 10, 4, &CONFIG, 0), vec![range(4, 7, 1)]);
        assert_eq!(
            partition.acknowledge("b", 4, 7, AcknowledgeType::Accept, &CONFIG),
            ErrorCode::NONE
        );
        assert_eq!(partition.start_offset, 0, "0-3 are still acquired");
        assert_eq!(
            partition.acknowledge("a", 0, 3, AcknowledgeType::Accept, &CONFIG),
            ErrorCode::NONE
        );
        assert_eq!(partition.start_offset, 8);
        assert!(partition.records.is_empty());
    }

    #[test]
    fn aborted_offsets_are_archived_not_acquired_and_do_not_take_the_budget() {
        let mut partition = SharePartition::new(0);
        let acquired = partition.acquire_skipping("a", 0..10, &[(0, 1), (4, 5)], 4, &CONFIG, 0);
        assert_eq!(acquired, vec![range(2, 3, 1), range(6, 7, 1)]);
        assert_eq!(partition.start_offset, 2, "the leading aborted records are done");
        assert_eq!(partition.counts(), (0, 4, 0, 2));
        assert_eq!(partition.next_fetch_offset(), 8);
    }

    #[test]
    fn a_released_record_is_delivered_again_with_a_higher_count_and_archived_at_the_limit() {
        let mut partition = SharePartition::new(0);
        partition.acquire("a", 0, 1, 10, &CONFIG, 0);
        partition.acknowledge("a", 0, 0, AcknowledgeType::Release, &CONFIG);
        assert_eq!(partition.acquire("b", 0, 1, 10, &CONFIG, 0), vec![range(0, 0, 2)]);
        partition.acknowledge("b", 0, 0, AcknowledgeType::Release, &CONFIG);
        assert_eq!(partition.acquire("a", 0, 1, 10, &CONFIG, 0), vec![range(0, 0, 3)]);
        partition.acknowledge("a", 0, 0, AcknowledgeType::Release, &CONFIG);
        assert!(
            partition.acquire("a", 0, 1, 10, &CONFIG, 0).is_empty(),
            "archived at the limit"
        );
        assert_eq!(partition.start_offset, 1);
    }

    #[test]
    fn a_rejected_record_is_archived_and_an_expired_lock_redelivers() {
        let mut partition = SharePartition::new(0);
        partition.acquire("a", 0, 2, 10, &CONFIG, 0);
        partition.acknowledge("a", 0, 0, AcknowledgeType::Reject, &CONFIG);
        assert_eq!(partition.expire_locks(&CONFIG, 999), 0);
        assert_eq!(partition.expire_locks(&CONFIG, 1000), 1);
        assert_eq!(
            partition.acquire("b", 0, 2, 10, &CONFIG, 1000),
            vec![range(1, 1, 2)]
        );
        assert_eq!(
            partition.acknowledge("a", 1, 1, AcknowledgeType::Accept, &CONFIG),
            ErrorCode::of(kafka_protocol::ResponseError::InvalidRecordState),
            "a's lock is gone"
        );
    }

    #[test]
    fn the_lock_budget_bounds_what_is_acquired() {
        let config = ShareConfig {
            max_record_locks: 5,
            ..CONFIG
        };
        let mut partition = SharePartition::new(0);
        assert_eq!(
            partition.acquire("a", 0, 100, 100, &config, 0),
            vec![range(0, 4, 1)]
        );
        assert!(partition.acquire("b", 0, 100, 100, &config, 0).is_empty());
    }

    #[test]
    fn retention_drops_records_below_the_log_start_and_keeps_the_other_locks() {
        let mut partition = SharePartition::new(0);
        partition.acquire("a", 0, 10, 10, &CONFIG, 0);
        partition.trim_to(4);
        assert_eq!((partition.start_offset, partition.end_offset), (4, 10));
        assert_eq!(partition.counts(), (0, 6, 0, 0), "4-9 still acquired by a");
        assert_eq!(
            partition.acknowledge("a", 4, 9, AcknowledgeType::Accept, &CONFIG),
            ErrorCode::NONE
        );
        partition.trim_to(20);
        assert_eq!((partition.start_offset, partition.end_offset), (20, 20));
        assert!(partition.records.is_empty());
    }

    #[test]
    fn persisted_state_restores_without_locks() {
        let mut partition = SharePartition::new(10);
        partition.acquire("a", 10, 20, 10, &CONFIG, 0);
        partition.acknowledge("a", 12, 13, AcknowledgeType::Accept, &CONFIG);
        partition.acknowledge("a", 14, 14, AcknowledgeType::Reject, &CONFIG);
        let restored = SharePartition::restore(&ShareSnapshot {
            state_epoch: 1,
            start_offset: partition.start_offset,
            batches: partition.state_batches(),
            ..ShareSnapshot::default()
        });
        assert_eq!(restored.start_offset, 10);
        assert_eq!(restored.end_offset, 20);
        let (available, acquired, acknowledged, archived) = restored.counts();
        assert_eq!((available, acquired, acknowledged, archived), (7, 0, 2, 1));
        let mut restored = restored;
        // Only the unacknowledged records come back, counted as delivered once.
        let again = restored.acquire("b", 10, 20, 100, &CONFIG, 0);
        assert_eq!(again, vec![range(10, 11, 2), range(15, 19, 2)]);
    }

    #[derive(Debug, Clone)]
    enum Step {
        Fetch(u8, u8),
        Ack(u8, u8, u8),
        Leave(u8),
        Tick,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..3, 1u8..8).prop_map(|(m, n)| Step::Fetch(m, n)),
            (0u8..3, 0u8..4, 0u8..3).prop_map(|(m, k, pick)| Step::Ack(m, k, pick)),
            (0u8..3).prop_map(Step::Leave),
            Just(Step::Tick),
        ]
    }

    proptest! {
        /// An accepted record is never delivered again; no record is delivered more
        /// than the limit; every delivered record's count matches the deliveries seen.
        #[test]
        fn accepted_records_never_return_and_deliveries_stay_under_the_limit(
            steps in proptest::collection::vec(step(), 1..80),
        ) {
            let mut partition = SharePartition::new(0);
            let mut held: BTreeMap<u8, Vec<i64>> = BTreeMap::new();
            let mut accepted = std::collections::BTreeSet::new();
            let mut deliveries: BTreeMap<i64, i16> = BTreeMap::new();
            let mut now = 0;
            for step in steps {
                now += 300;
                match step {
                    Step::Fetch(member, n) => {
                        for acquired in partition.acquire(&format!("m{member}"), 0, 30, n as usize, &CONFIG, now) {
                            for offset in acquired.first_offset..=acquired.last_offset {
                                prop_assert!(!accepted.contains(&offset), "accepted {offset} came back");
                                let count = deliveries.entry(offset).or_default();
                                *count += 1;
                                prop_assert_eq!(*count, acquired.delivery_count);
                                prop_assert!(*count <= CONFIG.delivery_count_limit);
                                held.entry(member).or_default().push(offset);
                            }
                        }
                    }
                    Step::Ack(member, kind, pick) => {
                        let offsets = held.entry(member).or_default();
                        if let Some(offset) = offsets.get(pick as usize).copied() {
                            let kind = AcknowledgeType::from_wire(kind as i8).unwrap();
                            let code = partition.acknowledge(&format!("m{member}"), offset, offset, kind, &CONFIG);
                            if code == ErrorCode::NONE && matches!(kind, AcknowledgeType::Accept | AcknowledgeType::Gap) {
                                accepted.insert(offset);
                            }
                            offsets.retain(|held| *held != offset);
                        }
                    }
                    Step::Leave(member) => {
                        partition.release_member(&format!("m{member}"), &CONFIG);
                        held.remove(&member);
                    }
                    Step::Tick => {
                        partition.expire_locks(&CONFIG, now);
                    }
                }
                prop_assert!(partition.records.keys().all(|offset| *offset >= partition.start_offset));
            }
        }
    }
}
