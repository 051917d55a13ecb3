//! Incremental fetch sessions (KIP-227): the broker remembers the partitions a fetcher
//! reads, so later requests name only what changed and responses carry only partitions
//! with news.
//!
//! A request's `(session_id, epoch)` says what it is:
//! - epoch -1 (FINAL): a full, sessionless fetch; a nonzero id closes that session;
//! - epoch 0 (INITIAL): a full fetch that opens a session (closing a named one first);
//!   the response carries the new id, or 0 when the cache has no room;
//! - epoch > 0: an incremental fetch of session `id`, whose partitions are updated with
//!   the request's and lose the forgotten ones; the epoch must be the session's next
//!   (else INVALID_FETCH_SESSION_EPOCH; an unknown id is FETCH_SESSION_ID_NOT_FOUND).
//!
//! An incremental response names a partition only when it has records, an error, a
//! diverging epoch or a preferred replica, or when its high watermark, log start or last
//! stable offset moved since the session last told the fetcher. Partitions that returned
//! records move to the back of the session, so a response size limit is shared fairly.
//!
//! The cache holds `max.incremental.fetch.session.cache.slots` sessions. A new one may
//! evict a session unused for two minutes; failing that, a follower's session evicts the
//! smallest consumer session, and a consumer's one a smaller consumer session.

use crate::replication::Partition;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

pub const INITIAL_EPOCH: i32 = 0;
pub const FINAL_EPOCH: i32 = -1;
/// A session unused this long may be evicted for a new one.
const EVICTABLE_AFTER_MS: u64 = 120_000;

/// A partition as a fetch names it: by topic name (v12 and older) or by topic id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    pub topic: String,
    pub topic_id: uuid::Uuid,
    pub partition: i32,
}

/// What a fetcher asks of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchParams {
    pub fetch_offset: i64,
    pub log_start_offset: i64,
    pub partition_max_bytes: i32,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
    /// A follower's fsynced log end, from our tagged field (see the replica fetcher).
    pub durable_end_offset: Option<i64>,
}

/// What a response said of one partition, as far as sessions care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Answer {
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub last_stable_offset: i64,
    pub has_records: bool,
    /// An error, a diverging epoch or a preferred read replica: always sent.
    pub must_send: bool,
}

/// The local replica a session's partition was last read from, so that the next
/// fetch need not look it up again. Weak: a session never keeps a removed replica's
/// files open.
#[derive(Clone, Default)]
pub struct Resolved(pub Option<Weak<Partition>>);

impl Resolved {
    pub fn of(partition: &Arc<Partition>) -> Self {
        Resolved(Some(Arc::downgrade(partition)))
    }

    /// The replica, while the broker still hosts it.
    pub fn get(&self) -> Option<Arc<Partition>> {
        self.0
            .as_ref()
            .and_then(Weak::upgrade)
            .filter(|partition| !partition.is_removed())
    }
}

impl PartialEq for Resolved {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Weak::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for Resolved {}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.get() {
            Some(partition) => write!(f, "Resolved({})", partition.topic_partition),
            None => f.write_str("Resolved(None)"),
        }
    }
}

#[derive(Debug, Clone)]
struct CachedPartition {
    key: PartitionKey,
    params: FetchParams,
    /// What the fetcher was last told.
    told: Answer,
    partition: Resolved,
}

impl CachedPartition {
    /// Whether a response names this partition; records what it tells.
    fn update(&mut self, answer: &Answer) -> bool {
        let moved = answer.high_watermark != self.told.high_watermark
            || answer.log_start_offset != self.told.log_start_offset
            || answer.last_stable_offset != self.told.last_stable_offset;
        self.told = *answer;
        if answer.must_send {
            // Resend the partition once the error clears.
            self.told.high_watermark = -1;
        }
        moved || answer.has_records || answer.must_send
    }
}

#[derive(Debug)]
struct Session {
    /// The epoch the next request must carry.
    next_epoch: i32,
    privileged: bool,
    uses_topic_ids: bool,
    partitions: Vec<CachedPartition>,
    last_used_ms: u64,
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX { 1 } else { epoch + 1 }
}

/// How a request is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Read the request's partitions; no session (epoch -1, or no room).
    Sessionless,
    /// Read the request's partitions, then open a session of them.
    Open,
    /// Read session `id`'s partitions, in this order (with the replica each was last
    /// read from).
    Incremental {
        id: i32,
        partitions: Vec<(PartitionKey, FetchParams)>,
        resolved: Vec<Resolved>,
    },
}

/// A fetch that cannot be served as asked: the top-level error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionError(pub i16);

pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
pub const FETCH_SESSION_TOPIC_ID_ERROR: i16 = 106;

/// The broker's sessions.
#[derive(Debug)]
pub struct FetchSessionCache {
    max_slots: usize,
    sessions: Mutex<HashMap<i32, Session>>,
    evictions: std::sync::atomic::AtomicU64,
}

/// One request as the cache sees it.
pub struct Request {
    pub session_id: i32,
    pub epoch: i32,
    /// A follower's fetch.
    pub privileged: bool,
    pub uses_topic_ids: bool,
    pub partitions: Vec<(PartitionKey, FetchParams)>,
    pub forgotten: Vec<PartitionKey>,
}

impl FetchSessionCache {
    pub fn new(max_slots: usize) -> Self {
        FetchSessionCache {
            max_slots,
            sessions: Mutex::new(HashMap::new()),
            evictions: Default::default(),
        }
    }

    /// Classifies a request. For an incremental one, applies its updates and forgotten
    /// partitions to the session and moves the session's epoch on.
    pub fn begin(&self, request: &Request, now_ms: u64) -> Result<Plan, SessionError> {
        let mut sessions = self.sessions.lock();
        if request.epoch == FINAL_EPOCH || request.epoch == INITIAL_EPOCH {
            if request.session_id != 0 {
                sessions.remove(&request.session_id);
            }
            return Ok(if request.epoch == FINAL_EPOCH || self.max_slots == 0 {
                Plan::Sessionless
            } else {
                Plan::Open
            });
        }
        let session = sessions
            .get_mut(&request.session_id)
            .ok_or(SessionError(FETCH_SESSION_ID_NOT_FOUND))?;
        if session.next_epoch != request.epoch {
            return Err(SessionError(INVALID_FETCH_SESSION_EPOCH));
        }
        if session.uses_topic_ids != request.uses_topic_ids {
            return Err(SessionError(FETCH_SESSION_TOPIC_ID_ERROR));
        }
        session.next_epoch = next_epoch(request.epoch);
        session.last_used_ms = now_ms;
        if !request.partitions.is_empty() {
            let mut index: HashMap<PartitionKey, usize> = session
                .partitions
                .iter()
                .enumerate()
                .map(|(i, cached)| (cached.key.clone(), i))
                .collect();
            for (key, params) in &request.partitions {
                match index.get(key) {
                    Some(&i) => session.partitions[i].params = *params,
                    None => {
                        index.insert(key.clone(), session.partitions.len());
                        session.partitions.push(CachedPartition {
                            key: key.clone(),
                            params: *params,
                            partition: Resolved::default(),
                            // Never told anything: the first answer is sent.
                            told: Answer {
                                high_watermark: -1,
                                log_start_offset: -1,
                                last_stable_offset: -1,
                                ..Answer::default()
                            },
                        });
                    }
                }
            }
        }
        if !request.forgotten.is_empty() {
            session
                .partitions
                .retain(|cached| !request.forgotten.contains(&cached.key));
        }
        Ok(Plan::Incremental {
            id: request.session_id,
            partitions: session
                .partitions
                .iter()
                .map(|cached| (cached.key.clone(), cached.params))
                .collect(),
            resolved: session
                .partitions
                .iter()
                .map(|cached| cached.partition.clone())
                .collect(),
        })
    }

    /// After reading: which of the read partitions (`answers`, in the order read) the
    /// response names, and the session id it carries. Opens the session of an `Open`
    /// plan, updates an incremental one. `resolved` are the replicas read (in the same
    /// order; missing ones count as none), kept for the session's next fetch.
    pub fn finish(
        &self,
        plan: &Plan,
        request: &Request,
        answers: &[Answer],
        resolved: Vec<Resolved>,
        now_ms: u64,
    ) -> (i32, Vec<bool>) {
        let mut resolved = resolved.into_iter();
        match plan {
            Plan::Sessionless => (0, vec![true; answers.len()]),
            Plan::Open => {
                let partitions = request
                    .partitions
                    .iter()
                    .zip(answers)
                    .map(|((key, params), answer)| {
                        let mut cached = CachedPartition {
                            key: key.clone(),
                            params: *params,
                            told: Answer::default(),
                            partition: resolved.next().unwrap_or_default(),
                        };
                        cached.update(answer);
                        cached
                    })
                    .collect();
                let session = Session {
                    next_epoch: next_epoch(INITIAL_EPOCH),
                    privileged: request.privileged,
                    uses_topic_ids: request.uses_topic_ids,
                    partitions,
                    last_used_ms: now_ms,
                };
                (self.insert(session, now_ms), vec![true; answers.len()])
            }
            Plan::Incremental { id, partitions, .. } => {
                let mut sessions = self.sessions.lock();
                let Some(session) = sessions.get_mut(id) else {
                    // Closed or evicted meanwhile: the fetcher starts over next time.
                    return (0, vec![true; answers.len()]);
                };
                let mut include = Vec::with_capacity(answers.len());
                let mut with_records = vec![false; session.partitions.len()];
                for (read, ((key, _), answer)) in partitions.iter().zip(answers).enumerate() {
                    // The plan lists the session's partitions in its order; a search is
                    // needed only if the session changed in between.
                    let i = if session
                        .partitions
                        .get(read)
                        .is_some_and(|cached| &cached.key == key)
                    {
                        Some(read)
                    } else {
                        session.partitions.iter().position(|cached| &cached.key == key)
                    };
                    let partition = resolved.next().unwrap_or_default();
                    let Some(i) = i else {
                        include.push(true);
                        continue;
                    };
                    session.partitions[i].partition = partition;
                    include.push(session.partitions[i].update(answer));
                    with_records[i] |= answer.has_records;
                }
                if with_records.contains(&true) {
                    let (back, front): (Vec<_>, Vec<_>) = std::mem::take(&mut session.partitions)
                        .into_iter()
                        .zip(with_records)
                        .partition(|(_, records)| *records);
                    session.partitions = front.into_iter().chain(back).map(|(cached, _)| cached).collect();
                }
                (*id, include)
            }
        }
    }

    /// Adds a session, evicting one if full; its id, or 0 when there is no room.
    fn insert(&self, session: Session, now_ms: u64) -> i32 {
        let mut sessions = self.sessions.lock();
        if sessions.len() >= self.max_slots {
            let stale = sessions
                .iter()
                .filter(|(_, old)| old.last_used_ms + EVICTABLE_AFTER_MS < now_ms)
                .min_by_key(|(_, old)| old.last_used_ms)
                .map(|(id, _)| *id);
            let smaller = || {
                sessions
                    .iter()
                    .filter(|(_, old)| !old.privileged)
                    .filter(|(_, old)| session.privileged || old.partitions.len() < session.partitions.len())
                    .min_by_key(|(_, old)| (old.partitions.len(), old.last_used_ms))
                    .map(|(id, _)| *id)
            };
            match stale.or_else(smaller) {
                Some(id) => {
                    sessions.remove(&id);
                    self.evictions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                None => return 0,
            }
        }
        let id = loop {
            let id = (uuid::Uuid::new_v4().as_u128() as u32 & 0x7fff_ffff) as i32;
            if id != 0 && !sessions.contains_key(&id) {
                break id;
            }
        };
        sessions.insert(id, session);
        id
    }

    /// Sessions, partitions they hold, and sessions evicted so far (for metrics).
    pub fn stats(&self) -> (u64, u64, u64) {
        let sessions = self.sessions.lock();
        let partitions = sessions
            .values()
            .map(|session| session.partitions.len() as u64)
            .sum();
        (
            sessions.len() as u64,
            partitions,
            self.evictions.load(std::sync::atomic::Ordering::Relaxed),
        )
    }
}

/// The sessions' gauges, read at each scrape.
pub struct SessionCollector(pub Weak<FetchSessionCache>);

impl std::fmt::Debug for SessionCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCollector").finish_non_exhaustive()
    }
}

impl prometheus_client::collector::Collector for SessionCollector {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>) -> std::fmt::Result {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::MetricType;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let Some(cache) = self.0.upgrade() else {
            return Ok(());
        };
        let (sessions, session_partitions, evictions) = cache.stats();
        for (name, help, value) in [
            (
                "fetch_sessions",
                "Incremental fetch sessions (KIP-227) kept",
                sessions,
            ),
            (
                "fetch_session_partitions",
                "Partitions in the kept fetch sessions",
                session_partitions,
            ),
        ] {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value as i64).encode(metric)?;
        }
        let metric = encoder.encode_descriptor(
            "fetch_session_evictions",
            "Fetch sessions evicted to make room for new ones",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(evictions).encode(metric)
    }
}

#[cfg(test)]
#[path = "fetch_session_tests.rs"]
mod tests;
