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

/// Kafka's `String.hashCode` of a coordinator key, for choosing its partition.
fn java_string_hash(value: &str) -> i32 {
    value
        .encode_utf16()
        .fold(0i32, |hash, unit| hash.wrapping_mul(31).wrapping_add(unit as i32))
}

/// The partition of an internal topic that holds a coordinator key: a group id in
/// `__consumer_offsets`, a transactional id in `__transaction_state` (Kafka's rule).
pub fn partition_for(key: &str, n_partitions: i32) -> i32 {
    let hash = java_string_hash(key);
    // Kafka's Utils.abs: i32::MIN maps to 0 rather than overflowing.
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % n_partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_choice_matches_kafka() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("ab"), 97 * 31 + 98);
        assert!((0..50).contains(&partition_for("any-group", 50)));
        // Utils.abs of i32::MIN is 0: "polygenelubricants" hashes to i32::MIN.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 7), 0);
    }
}
