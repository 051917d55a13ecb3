//! A transactional id's state and its transitions, as Kafka's transaction coordinator
//! has them: pure, no IO, no clock (the caller passes `now_ms`).
//!
//! ```text
//! Empty ──AddPartitions──> Ongoing ──EndTxn(commit)──> PrepareCommit ──markers──> CompleteCommit
//!   ▲                         │ ──EndTxn(abort)/timeout/fence──> PrepareAbort ──markers──> CompleteAbort
//!   └──InitProducerId (epoch + 1) from Empty, CompleteCommit, CompleteAbort
//! ```
//! Every transition is written to `__transaction_state` before it takes effect; the
//! coordinator answers CONCURRENT_TRANSACTIONS while one is being written or while
//! markers are in flight. An epoch older than the current one is a fenced producer.

use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    /// The status byte of Kafka's `TransactionLogValue`.
    pub fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_code(code: i8) -> Option<TxnState> {
        Some(match code {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Markers are being written: the transaction is decided but not finished.
    pub fn is_preparing(self) -> bool {
        matches!(
            self,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        )
    }
}

/// What the coordinator keeps (and logs) per transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump (-1 none): a retried InitProducerId that already
    /// got its bump names it.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub start_ms: i64,
    pub last_update_ms: i64,
}

/// Why a request is refused; the handler turns it into the error code its version knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnError {
    ConcurrentTransactions,
    ProducerFenced,
    InvalidProducerIdMapping,
    InvalidTxnState,
    InvalidTransactionTimeout,
}

/// The highest epoch a producer id is bumped to; past it a new id is needed.
const LAST_EPOCH: i16 = i16::MAX - 1;

impl TxnMetadata {
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
        }
    }

    fn check_producer(&self, producer_id: i64, producer_epoch: i16) -> Result<(), TxnError> {
        if self.producer_id != producer_id || self.state == TxnState::Dead {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if producer_epoch != self.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(())
    }

    /// The same id at the next epoch with `state`; None when the epochs are used up.
    fn bumped(&self, state: TxnState, now_ms: i64) -> Option<TxnMetadata> {
        (self.producer_epoch < LAST_EPOCH).then(|| TxnMetadata {
            producer_epoch: self.producer_epoch + 1,
            last_producer_epoch: self.producer_epoch,
            state,
            last_update_ms: now_ms,
            ..self.clone()
        })
    }

    /// The transaction ran past its timeout without being ended.
    pub fn timed_out(&self, now_ms: i64) -> bool {
        self.state == TxnState::Ongoing && now_ms > self.start_ms.saturating_add(self.timeout_ms as i64)
    }

    /// Idle past `transactional.id.expiration.ms`, with no transaction open.
    pub fn expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        matches!(
            self.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        ) && now_ms.saturating_sub(self.last_update_ms) > expiration_ms
    }
}

/// What InitProducerId leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitOutcome {
    /// Write this (a new id, or the next epoch), then answer with its id and epoch.
    Write(TxnMetadata),
    /// The id already got its bump (a retry): answer with it, write nothing.
    Current(TxnMetadata),
    /// An open transaction goes first: write this (PrepareAbort at a fenced epoch),
    /// abort it, and answer CONCURRENT_TRANSACTIONS so that the producer retries.
    FenceAndAbort(TxnMetadata),
    /// A producer id is needed (a new transactional id, or epochs used up): call again
    /// with one.
    NeedProducerId,
}

/// InitProducerId for a transactional id (`expected`: the id and epoch a producer
/// recovering from an error names, KIP-360).
pub fn init_producer_id(
    current: Option<&TxnMetadata>,
    transactional_id: &str,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    new_producer_id: Option<i64>,
    now_ms: i64,
) -> Result<InitOutcome, TxnError> {
    let Some(current) = current.filter(|current| current.state != TxnState::Dead) else {
        return Ok(match new_producer_id {
            Some(id) => InitOutcome::Write(TxnMetadata::new(transactional_id, id, timeout_ms, now_ms)),
            None => InitOutcome::NeedProducerId,
        });
    };
    if let Some((producer_id, epoch)) = expected.filter(|(producer_id, _)| *producer_id >= 0) {
        if producer_id != current.producer_id
            || (epoch != current.producer_epoch && epoch != current.last_producer_epoch)
        {
            return Err(TxnError::ProducerFenced);
        }
        if epoch == current.last_producer_epoch && current.state == TxnState::Empty {
            return Ok(InitOutcome::Current(current.clone()));
        }
    }
    match current.state {
        TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
            Err(TxnError::ConcurrentTransactions)
        }
        TxnState::Ongoing => {
            let fenced = current
                .bumped(TxnState::PrepareAbort, now_ms)
                .unwrap_or_else(|| TxnMetadata {
                    state: TxnState::PrepareAbort,
                    last_update_ms: now_ms,
                    ..current.clone()
                });
            Ok(InitOutcome::FenceAndAbort(fenced))
        }
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort | TxnState::Dead => {
            let next = match current.bumped(TxnState::Empty, now_ms) {
                Some(next) => next,
                None => match new_producer_id {
                    Some(id) => TxnMetadata {
                        last_producer_epoch: -1,
                        ..TxnMetadata::new(transactional_id, id, timeout_ms, now_ms)
                    },
                    None => return Ok(InitOutcome::NeedProducerId),
                },
            };
            Ok(InitOutcome::Write(TxnMetadata {
                timeout_ms,
                partitions: BTreeSet::new(),
                start_ms: -1,
                ..next
            }))
        }
    }
}

/// What AddPartitionsToTxn (and AddOffsetsToTxn) lead to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// Every partition is in the transaction already.
    AlreadyIn,
    /// Write this (Ongoing with the partitions added).
    Write(TxnMetadata),
}

pub fn add_partitions(
    current: Option<&TxnMetadata>,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(String, i32)],
    now_ms: i64,
) -> Result<AddOutcome, TxnError> {
    let current = current.ok_or(TxnError::InvalidProducerIdMapping)?;
    current.check_producer(producer_id, producer_epoch)?;
    if current.state.is_preparing() {
        return Err(TxnError::ConcurrentTransactions);
    }
    if current.state == TxnState::Ongoing
        && partitions
            .iter()
            .all(|partition| current.partitions.contains(partition))
    {
        return Ok(AddOutcome::AlreadyIn);
    }
    let mut next = current.clone();
    if current.state != TxnState::Ongoing {
        next.start_ms = now_ms;
        next.partitions.clear();
    }
    next.state = TxnState::Ongoing;
    next.partitions.extend(partitions.iter().cloned());
    next.last_update_ms = now_ms;
    Ok(AddOutcome::Write(next))
}

/// What EndTxn leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndOutcome {
    /// Write this (PrepareCommit or PrepareAbort), answer, then write the markers.
    Prepare(TxnMetadata),
    /// The transaction already ended this way (a retry).
    AlreadyDone,
}

pub fn end_txn(
    current: Option<&TxnMetadata>,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    now_ms: i64,
) -> Result<EndOutcome, TxnError> {
    let current = current.ok_or(TxnError::InvalidProducerIdMapping)?;
    current.check_producer(producer_id, producer_epoch)?;
    match (current.state, commit) {
        (TxnState::Ongoing, _) => Ok(EndOutcome::Prepare(TxnMetadata {
            state: if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            },
            last_update_ms: now_ms,
            ..current.clone()
        })),
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(EndOutcome::AlreadyDone),
        (TxnState::PrepareCommit, true)
        | (TxnState::PrepareAbort, false)
        | (TxnState::PrepareEpochFence, _) => Err(TxnError::ConcurrentTransactions),
        _ => Err(TxnError::InvalidTxnState),
    }
}

/// The state once every marker is written: CompleteCommit or CompleteAbort.
pub fn complete(current: &TxnMetadata, now_ms: i64) -> TxnMetadata {
    TxnMetadata {
        state: if current.state == TxnState::PrepareCommit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        },
        partitions: BTreeSet::new(),
        last_update_ms: now_ms,
        ..current.clone()
    }
}

/// An open transaction past `transaction.timeout.ms` is aborted at a bumped epoch, so
/// its producer is fenced.
pub fn abort_timed_out(current: &TxnMetadata, now_ms: i64) -> TxnMetadata {
    current
        .bumped(TxnState::PrepareAbort, now_ms)
        .unwrap_or_else(|| TxnMetadata {
            state: TxnState::PrepareAbort,
            last_update_ms: now_ms,
            ..current.clone()
        })
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
