//! Appending a client's records to a led partition (Kafka's `appendRecords`): the log
//! validator's checks, KIP-890 verification of a producer's first transactional batch
//! (through the caller, which reaches the transaction coordinator), the leader append,
//! and the wait an acknowledgement needs: the fsync the flush policy asks and, for
//! acks=all, replication to every in-sync replica (the produce purgatory).

use super::ReplicaManager;
use crate::common::ErrorCode;
use crate::log::partition_log::AppendInfo;
use crate::log::record_check::RecordError;
use crate::log::validate::Invalid;
use crate::replication::Partition;
use crate::replication::partition::AppendError;
use bytes::Bytes;
use std::sync::Arc;

/// Why a partition's records were not appended: its Kafka code, a message, and the
/// records refused one by one (KIP-467), if any.
#[derive(Debug, Clone)]
pub struct Refused {
    pub code: ErrorCode,
    pub message: String,
    pub record_errors: Vec<RecordError>,
}

impl Refused {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refused {
            code,
            message: message.into(),
            record_errors: Vec::new(),
        }
    }
}

impl From<&AppendError> for Refused {
    fn from(error: &AppendError) -> Self {
        Refused::new(ErrorCode::from_code(error.code()), error.to_string())
    }
}

/// The producer of a partition's first transactional batch, to verify with its
/// transaction coordinator (KIP-890).
#[derive(Debug, Clone, Copy)]
pub struct TxnProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// This partition already has the producer's transaction open: the coordinator
    /// need not be asked again.
    pub in_transaction: bool,
}

/// Records appended to a partition's log, not yet acknowledged.
pub struct Appended {
    partition: Arc<Partition>,
    pub info: AppendInfo,
    /// The flush policy wants an fsync before the acknowledgement.
    flush: bool,
    /// acks=all: every in-sync replica must have the records.
    replicate: bool,
}

/// What an append to a partition came to.
pub type AppendOutcome = Result<Appended, Refused>;

impl Appended {
    /// Whether the acknowledgement must wait (for an fsync or for replication).
    pub fn must_wait(&self) -> bool {
        self.flush || self.replicate
    }

    /// Waits until the records may be acknowledged: the flush (a group commit shared
    /// with whatever else was appended meanwhile) and replication run at once, and both
    /// must finish by `deadline`.
    pub async fn complete(self, deadline: tokio::time::Instant) -> Result<AppendInfo, Refused> {
        let end = self.info.last_offset + 1;
        let partition = &self.partition;
        let flushed = async {
            if self.flush {
                partition.flush_to(end).await
            } else {
                Ok(())
            }
        };
        let replicated = async {
            if self.replicate {
                partition.wait_replicated(end, deadline).await
            } else {
                Ok(())
            }
        };
        match tokio::join!(flushed, replicated) {
            (Ok(()), Ok(())) => Ok(self.info),
            (Err(error), _) | (_, Err(error)) => Err(refused(partition, &error)),
        }
    }

    /// acks=0: nobody waits for the answer, but the flush policy still applies.
    pub fn flush_in_background(self) {
        if !self.flush {
            return;
        }
        tokio::spawn(async move {
            if let Err(error) = self.partition.flush_to(self.info.last_offset + 1).await {
                tracing::error!(topic_partition = %self.partition.topic_partition, %error, "flush failed");
            }
        });
    }
}

/// An append error as answered, logged when it took the log offline.
fn refused(partition: &Partition, error: &AppendError) -> Refused {
    if let AppendError::Log(log_error) = error
        && log_error.is_fatal()
    {
        tracing::error!(%error, topic_partition = %partition.topic_partition, "append failed; log taken offline");
    }
    Refused::from(error)
}

impl ReplicaManager {
    /// Appends a client's `records` to `topic`-`index`, which this broker must lead:
    /// validated (nothing is written if anything is refused), its first transactional
    /// batch's producer checked by `verify` (KIP-890), then written. The caller awaits [`Appended::complete`] before acknowledging.
    pub async fn append_records<F, Fut>(
        &self,
        topic: &str,
        index: i32,
        records: Option<Bytes>,
        acks: i16,
        verify: F,
    ) -> AppendOutcome
    where
        F: FnOnce(TxnProducer) -> Fut,
        Fut: std::future::Future<Output = Result<(), Refused>>,
    {
        let partition = match self.led_partition(topic, index) {
            Ok(partition) => partition,
            Err(code @ ErrorCode::NOT_LEADER_OR_FOLLOWER) => {
                return Err(Refused::new(
                    code,
                    format!("this broker does not lead {topic}-{index}"),
                ));
            }
            Err(code) => return Err(Refused::new(code, format!("unknown partition {topic}-{index}"))),
        };
        let Some(records) = records else {
            return Err(Refused::new(ErrorCode::INVALID_RECORD, "null records"));
        };
        let batches = partition.validate(&records).map_err(|invalid| {
            if !matches!(
                invalid,
                Invalid::Batch(crate::log::batch::BatchError::TooLarge { .. })
            ) {
                tracing::debug!(%invalid, topic, index, "rejected produce");
            }
            Refused {
                code: ErrorCode::from_code(invalid.code()),
                message: invalid.to_string(),
                record_errors: invalid.record_errors().to_vec(),
            }
        })?;
        if let Some(first) = batches.iter().find(|batch| batch.header.is_transactional()) {
            verify(TxnProducer {
                producer_id: first.header.producer_id,
                producer_epoch: first.header.producer_epoch,
                in_transaction: partition.in_transaction(first.header.producer_id),
            })
            .await?;
        }
        let appended_bytes: usize = batches.iter().map(|batch| batch.bytes.len()).sum();
        let appended_records: i64 = batches
            .iter()
            .map(|batch| i64::from(batch.header.records_count.max(0)))
            .sum();
        let (info, flush) = partition
            .append_unflushed(&batches, acks)
            .map_err(|error| refused(&partition, &error))?;
        self.metrics
            .produced(topic, appended_bytes as u64, appended_records as u64);
        Ok(Appended {
            partition,
            info,
            flush,
            replicate: acks == -1,
        })
    }
}
