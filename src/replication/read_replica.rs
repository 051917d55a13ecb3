//! Fetching from the closest replica (KIP-392): the leader's choice of a preferred read
//! replica for a consumer that names its rack (`client.rack`), as Kafka's
//! `RackAwareReplicaSelector` makes it. Pure: the caller passes what it knows.
//!
//! Only the leader and in-sync followers that hold the fetch offset are candidates
//! (a lagging follower would hold the consumer back). A consumer with no rack, or with
//! no candidate in its rack, or whose rack holds the leader, reads from the leader.
//! Among same-rack followers the one furthest ahead wins, then the one caught up most
//! recently, then the lowest id (so the answer is stable).

/// A replica the leader could send a consumer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView {
    pub broker_id: i32,
    pub rack: Option<String>,
    pub log_end_offset: i64,
    pub last_caught_up_ms: i64,
}

/// The replica to read from, if it is not the leader itself (None: read here).
pub fn preferred_read_replica(
    client_rack: &str,
    leader: &ReplicaView,
    followers: &[ReplicaView],
) -> Option<i32> {
    if client_rack.is_empty() || leader.rack.as_deref() == Some(client_rack) {
        return None;
    }
    followers
        .iter()
        .filter(|follower| follower.rack.as_deref() == Some(client_rack))
        .max_by(|a, b| {
            a.log_end_offset
                .cmp(&b.log_end_offset)
                .then(a.last_caught_up_ms.cmp(&b.last_caught_up_ms))
                .then(b.broker_id.cmp(&a.broker_id))
        })
        .map(|follower| follower.broker_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(broker_id: i32, rack: Option<&str>, log_end_offset: i64, caught_up: i64) -> ReplicaView {
        ReplicaView {
            broker_id,
            rack: rack.map(str::to_string),
            log_end_offset,
            last_caught_up_ms: caught_up,
        }
    }

    #[test]
    fn a_consumer_without_a_rack_or_with_the_leaders_rack_reads_from_the_leader() {
        let leader = replica(1, Some("a"), 100, 0);
        let followers = [replica(2, Some("b"), 100, 0)];
        assert_eq!(preferred_read_replica("", &leader, &followers), None);
        assert_eq!(preferred_read_replica("a", &leader, &followers), None);
        assert_eq!(preferred_read_replica("c", &leader, &followers), None);
        assert_eq!(preferred_read_replica("b", &leader, &followers), Some(2));
    }

    #[test]
    fn the_most_advanced_same_rack_follower_wins_ties_by_recency_then_id() {
        let leader = replica(1, None, 100, 0);
        let followers = [
            replica(4, Some("b"), 90, 50),
            replica(3, Some("b"), 95, 10),
            replica(2, Some("c"), 100, 60),
        ];
        assert_eq!(preferred_read_replica("b", &leader, &followers), Some(3));
        let tied = [replica(4, Some("b"), 95, 20), replica(3, Some("b"), 95, 10)];
        assert_eq!(preferred_read_replica("b", &leader, &tied), Some(4));
        let same = [replica(4, Some("b"), 95, 20), replica(3, Some("b"), 95, 20)];
        assert_eq!(preferred_read_replica("b", &leader, &same), Some(3));
    }
}
