//! Replication throttles (KIP-73): a broker-wide byte rate for the replicas a topic's
//! `leader.replication.throttled.replicas` / `follower.replication.throttled.replicas`
//! name (`partition:broker` pairs, or `*`), as reassignments set them. A follower over
//! `follower.replication.throttled.rate` leaves its throttled partitions out of its
//! fetches until the rate falls back; a leader over
//! `leader.replication.throttled.rate` answers a follower's fetch of a throttled
//! partition without records. Other partitions are never held back. Rates are Kafka's
//! sampled rate over `replication.quota.window.num` windows.

use crate::common::rate::Rate;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

pub struct ReplicationThrottle {
    /// Bytes a second; i64::MAX is no throttle.
    limit: AtomicI64,
    rate: Mutex<Rate>,
}

impl ReplicationThrottle {
    pub fn new(samples: usize, window_ms: i64) -> Self {
        ReplicationThrottle {
            limit: AtomicI64::new(i64::MAX),
            rate: Mutex::new(Rate::new(samples, window_ms)),
        }
    }

    pub fn set_limit(&self, bytes_per_second: i64) {
        self.limit.store(bytes_per_second, Ordering::Relaxed);
    }

    pub fn limited(&self) -> bool {
        self.limit.load(Ordering::Relaxed) != i64::MAX
    }

    /// Whether throttled replicas are held back now.
    pub fn exceeded(&self, now_ms: i64) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        limit != i64::MAX && self.rate.lock().per_second(now_ms) > limit as f64
    }

    /// Bytes of throttled replicas moved.
    pub fn record(&self, bytes: u64, now_ms: i64) {
        if bytes > 0 {
            self.rate.lock().record(bytes as f64, now_ms);
        }
    }
}

/// Whether a `*.replication.throttled.replicas` value names `partition` on `broker`.
pub fn names(replicas: Option<&str>, partition: i32, broker: i32) -> bool {
    let Some(replicas) = replicas else { return false };
    let replicas = replicas.trim();
    replicas == "*"
        || replicas.split(',').any(|item| {
            item.trim()
                .split_once(':')
                .is_some_and(|(p, b)| p.trim().parse() == Ok(partition) && b.trim().parse() == Ok(broker))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_lists_name_partitions_on_brokers() {
        assert!(names(Some("*"), 3, 1));
        assert!(names(Some("0:1, 0:2,1:3"), 0, 2));
        assert!(!names(Some("0:1,0:2"), 1, 2));
        assert!(!names(Some(""), 0, 1));
        assert!(!names(None, 0, 1));
    }

    #[test]
    fn a_throttle_holds_back_once_over_its_rate() {
        let throttle = ReplicationThrottle::new(2, 1000);
        throttle.record(10_000_000, 0);
        assert!(!throttle.exceeded(0), "no limit set");
        throttle.set_limit(1_000_000);
        assert!(throttle.exceeded(10));
        assert!(!throttle.exceeded(20_000), "the old window dropped out");
    }
}
