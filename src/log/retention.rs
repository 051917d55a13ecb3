//! Which segments retention deletes: a pure decision, no IO, `now` passed in.
//!
//! Kafka's rules: a segment is expired by time when its largest timestamp is older than
//! `retention.ms` (-1 disables); by size, the oldest segments go while the log stays
//! larger than `retention.bytes` (-1 disables) after removing them. Only a prefix of the
//! log is ever deleted, and the active (last) segment is never deleted here.

/// What retention needs to know about one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSummary {
    pub base_offset: i64,
    pub size: u64,
    /// The largest record timestamp in the segment, -1 when unknown or empty.
    pub max_timestamp: i64,
    /// File modification time, used when the segment has no record timestamps.
    pub last_modified_ms: i64,
}

/// How many segments, counted from the oldest, retention deletes.
/// `segments` are in offset order and the last one is the active segment.
pub fn segments_to_delete(
    segments: &[SegmentSummary],
    retention_ms: i64,
    retention_bytes: i64,
    now_ms: i64,
) -> usize {
    let deletable = segments.len().saturating_sub(1);
    let by_time = if retention_ms < 0 {
        0
    } else {
        segments[..deletable]
            .iter()
            .take_while(|segment| {
                let newest = if segment.max_timestamp >= 0 {
                    segment.max_timestamp
                } else {
                    segment.last_modified_ms
                };
                now_ms.saturating_sub(newest) > retention_ms
            })
            .count()
    };
    let by_size = if retention_bytes < 0 {
        0
    } else {
        let total: u64 = segments.iter().map(|segment| segment.size).sum();
        let mut excess = total.saturating_sub(retention_bytes as u64);
        segments[..deletable]
            .iter()
            .take_while(|segment| {
                if segment.size <= excess {
                    excess -= segment.size;
                    true
                } else {
                    false
                }
            })
            .count()
    };
    by_time.max(by_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(base_offset: i64, size: u64, max_timestamp: i64) -> SegmentSummary {
        SegmentSummary {
            base_offset,
            size,
            max_timestamp,
            last_modified_ms: 0,
        }
    }

    #[test]
    fn nothing_when_disabled() {
        let segments = [segment(0, 100, 0), segment(10, 100, 0)];
        assert_eq!(segments_to_delete(&segments, -1, -1, 1_000_000), 0);
    }

    #[test]
    fn time_deletes_expired_prefix_but_never_active() {
        let segments = [segment(0, 1, 100), segment(1, 1, 900), segment(2, 1, 50)];
        // Segment 0 expired, segment 1 not: stop at the first unexpired one.
        assert_eq!(segments_to_delete(&segments, 500, -1, 1000), 1);
        // Everything expired: the active segment still stays.
        assert_eq!(segments_to_delete(&segments, 10, -1, 10_000), 2);
    }

    #[test]
    fn size_deletes_oldest_while_over_limit() {
        let segments = [
            segment(0, 100, 0),
            segment(1, 100, 0),
            segment(2, 100, 0),
            segment(3, 50, 0),
        ];
        // 350 bytes, limit 200: deleting one leaves 250; a second would leave 150, under
        // the limit, so (as in Kafka) only one goes.
        assert_eq!(segments_to_delete(&segments, -1, 200, 0), 1);
        assert_eq!(segments_to_delete(&segments, -1, 150, 0), 2);
        assert_eq!(segments_to_delete(&segments, -1, 350, 0), 0);
        assert_eq!(segments_to_delete(&segments, -1, 0, 0), 3);
    }

    #[test]
    fn missing_timestamps_fall_back_to_mtime() {
        let mut old = segment(0, 1, -1);
        old.last_modified_ms = 10;
        let segments = [old, segment(1, 1, 5000)];
        assert_eq!(segments_to_delete(&segments, 100, -1, 1000), 1);
    }
}
