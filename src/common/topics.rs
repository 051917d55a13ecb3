//! The broker's own topics: clients may not write or delete them, and their logs are
//! always compacted.

/// Committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The transaction coordinator's log.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Whether a topic is one of the broker's own.
pub fn is_internal_topic(name: &str) -> bool {
    name == OFFSETS_TOPIC || name == TRANSACTION_STATE_TOPIC
}
