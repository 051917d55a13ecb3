//! The one mapping from the broker's errors to Kafka error codes.
//!
//! Anything unexpected becomes UNKNOWN_SERVER_ERROR and is logged at error level.

use crate::broker::TopicError;
use crate::log::LogError;
use crate::log::batch::BatchError;
use crate::replication::partition::AppendError;
use kafka_protocol::ResponseError;

pub const NONE: i16 = 0;
pub const UNSUPPORTED_VERSION: i16 = ResponseError::UnsupportedVersion.code();
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = ResponseError::UnknownTopicOrPartition.code();
pub const UNKNOWN_TOPIC_ID: i16 = ResponseError::UnknownTopicId.code();
pub const INVALID_REQUEST: i16 = ResponseError::InvalidRequest.code();
pub const NOT_LEADER_OR_FOLLOWER: i16 = ResponseError::NotLeaderOrFollower.code();
pub const KAFKA_STORAGE_ERROR: i16 = ResponseError::KafkaStorageError.code();

pub fn log_error(error: &LogError) -> i16 {
    match error {
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        LogError::NonContiguous { .. } => {
            tracing::error!(%error, "replication error");
            ResponseError::UnknownServerError.code()
        }
        LogError::Offline { .. } => ResponseError::KafkaStorageError.code(),
        LogError::Io { .. } | LogError::Corrupt { .. } => {
            tracing::error!(%error, "storage error");
            ResponseError::KafkaStorageError.code()
        }
    }
}

pub fn batch_error(error: &BatchError) -> i16 {
    match error {
        BatchError::TooLarge { .. } => ResponseError::MessageTooLarge.code(),
        BatchError::UnsupportedMagic { .. } => ResponseError::UnsupportedForMessageFormat.code(),
        BatchError::Truncated { .. }
        | BatchError::InvalidLength { .. }
        | BatchError::CrcMismatch { .. }
        | BatchError::InconsistentCount { .. } => ResponseError::CorruptMessage.code(),
        BatchError::Undecodable => ResponseError::InvalidRecord.code(),
    }
}

pub fn append_error(error: &AppendError) -> i16 {
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
        AppendError::Log(error) => log_error(error),
    }
}

pub fn topic_error(error: &TopicError) -> i16 {
    match error {
        TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists.code(),
        TopicError::Unknown(_) => UNKNOWN_TOPIC_OR_PARTITION,
        TopicError::InvalidName(_) => ResponseError::InvalidTopicException.code(),
        TopicError::InvalidPartitions(_) => ResponseError::InvalidPartitions.code(),
        TopicError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor.code(),
        TopicError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment.code(),
        TopicError::PolicyViolation(_) => ResponseError::PolicyViolation.code(),
        TopicError::InvalidConfig(_) => ResponseError::InvalidConfig.code(),
        TopicError::Timeout(_) => ResponseError::RequestTimedOut.code(),
        TopicError::Log(error) => log_error(error),
    }
}
