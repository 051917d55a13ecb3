//! Kafka error codes as every floor speaks them, and their names. A function that fails
//! with a Kafka code returns [`ErrorCode`], never a bare `i16`; the wire value is taken
//! with [`ErrorCode::code`] when a response is encoded. Each typed error knows its own
//! code (`LogError::code`, `AppendError::code`, `TopicError::code`, ...).

use kafka_protocol::ResponseError;

/// A Kafka error code (the protocol's `error_code`), printed by its Kafka name.
/// The default is NONE.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ErrorCode(i16);

impl ErrorCode {
    pub const NONE: ErrorCode = ErrorCode(NONE);
    pub const UNKNOWN_SERVER_ERROR: ErrorCode = ErrorCode::of(ResponseError::UnknownServerError);
    pub const UNKNOWN_TOPIC_OR_PARTITION: ErrorCode = ErrorCode(UNKNOWN_TOPIC_OR_PARTITION);
    pub const UNKNOWN_TOPIC_ID: ErrorCode = ErrorCode(UNKNOWN_TOPIC_ID);
    pub const INVALID_RECORD: ErrorCode = ErrorCode(INVALID_RECORD);
    pub const NOT_LEADER_OR_FOLLOWER: ErrorCode = ErrorCode(NOT_LEADER_OR_FOLLOWER);
    pub const KAFKA_STORAGE_ERROR: ErrorCode = ErrorCode(KAFKA_STORAGE_ERROR);
    pub const FENCED_LEADER_EPOCH: ErrorCode = ErrorCode(FENCED_LEADER_EPOCH);
    pub const UNKNOWN_LEADER_EPOCH: ErrorCode = ErrorCode(UNKNOWN_LEADER_EPOCH);
    pub const REQUEST_TIMED_OUT: ErrorCode = ErrorCode::of(ResponseError::RequestTimedOut);
    pub const NOT_ENOUGH_REPLICAS: ErrorCode = ErrorCode::of(ResponseError::NotEnoughReplicas);
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: ErrorCode =
        ErrorCode::of(ResponseError::NotEnoughReplicasAfterAppend);
    pub const COORDINATOR_LOAD_IN_PROGRESS: ErrorCode =
        ErrorCode::of(ResponseError::CoordinatorLoadInProgress);
    pub const COORDINATOR_NOT_AVAILABLE: ErrorCode = ErrorCode::of(ResponseError::CoordinatorNotAvailable);
    pub const NOT_COORDINATOR: ErrorCode = ErrorCode::of(ResponseError::NotCoordinator);
    pub const INVALID_PRODUCER_EPOCH: ErrorCode = ErrorCode::of(ResponseError::InvalidProducerEpoch);
    pub const INVALID_TXN_STATE: ErrorCode = ErrorCode::of(ResponseError::InvalidTxnState);
    pub const INVALID_PRODUCER_ID_MAPPING: ErrorCode = ErrorCode::of(ResponseError::InvalidProducerIdMapping);

    /// The code of a protocol error.
    pub const fn of(error: ResponseError) -> ErrorCode {
        ErrorCode(error.code())
    }

    /// The code as a peer sent it.
    pub const fn from_code(code: i16) -> ErrorCode {
        ErrorCode(code)
    }

    /// The wire value.
    pub const fn code(self) -> i16 {
        self.0
    }

    pub const fn is_none(self) -> bool {
        self.0 == NONE
    }

    /// Kafka's name of the code (`NOT_LEADER_OR_FOLLOWER`).
    pub fn name(self) -> &'static str {
        error_name(self.0)
    }
}

impl From<ResponseError> for ErrorCode {
    fn from(error: ResponseError) -> Self {
        ErrorCode::of(error)
    }
}

impl std::fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for ErrorCode {}

pub const NONE: i16 = 0;
pub const UNSUPPORTED_VERSION: i16 = ResponseError::UnsupportedVersion.code();
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = ResponseError::UnknownTopicOrPartition.code();
pub const UNKNOWN_TOPIC_ID: i16 = ResponseError::UnknownTopicId.code();
pub const INVALID_REQUEST: i16 = ResponseError::InvalidRequest.code();
pub const NOT_LEADER_OR_FOLLOWER: i16 = ResponseError::NotLeaderOrFollower.code();
pub const KAFKA_STORAGE_ERROR: i16 = ResponseError::KafkaStorageError.code();
pub const FENCED_LEADER_EPOCH: i16 = ResponseError::FencedLeaderEpoch.code();
pub const UNKNOWN_LEADER_EPOCH: i16 = ResponseError::UnknownLeaderEpoch.code();
pub const INVALID_RECORD: i16 = ResponseError::InvalidRecord.code();

/// Kafka's name of an error code (`NOT_LEADER_OR_FOLLOWER`), or `UNKNOWN_<code>`.
pub fn error_name(code: i16) -> &'static str {
    static NAMES: std::sync::OnceLock<parking_lot::Mutex<std::collections::HashMap<i16, &'static str>>> =
        std::sync::OnceLock::new();
    let names = NAMES.get_or_init(Default::default);
    let mut names = names.lock();
    names.entry(code).or_insert_with(|| {
        let name = match kafka_protocol::ResponseError::try_from_code(code) {
            Some(kafka_protocol::ResponseError::Unknown(_)) | None => format!("UNKNOWN_{code}"),
            Some(error) => screaming_snake(&format!("{error:?}")),
        };
        // At most one name per i16 code, so the leak is bounded.
        Box::leak(name.into_boxed_str())
    })
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    let chars: Vec<char> = camel.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev_lower = chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev_lower || (next_lower && chars[i - 1].is_uppercase()) {
                out.push('_');
            }
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kafkas() {
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(19), "NOT_ENOUGH_REPLICAS");
        assert_eq!(error_name(1), "OFFSET_OUT_OF_RANGE");
        assert_eq!(error_name(29), "TOPIC_AUTHORIZATION_FAILED");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(i16::MAX), "UNKNOWN_32767");
    }

    #[test]
    fn an_error_code_prints_its_name_and_keeps_its_wire_value() {
        let code = ErrorCode::from(ResponseError::NotCoordinator);
        assert_eq!(code, ErrorCode::NOT_COORDINATOR);
        assert_eq!(code.code(), 16);
        assert_eq!(code.to_string(), "NOT_COORDINATOR");
        assert_eq!(format!("{code:?}"), "NOT_COORDINATOR(16)");
        assert!(ErrorCode::NONE.is_none() && !code.is_none());
        assert_eq!(ErrorCode::from_code(-1), ErrorCode::UNKNOWN_SERVER_ERROR);
    }
}
