//! How many partition replicas each broker can host, and placement that respects it.
//!
//! A broker registers its capacity: the partition replicas it can take, from its
//! open-file budget (descriptors and mappings, divided by `topic.fds.per.partition`) and
//! its memory (half of it, divided by `topic.memory.per.partition`), with the resource
//! that bounds it. The controller counts the replicas each broker already hosts in the
//! image and refuses a topic or partition creation that no placement fits, before
//! anything is written, with a message naming the limit (Redpanda refuses the same way;
//! Kafka has no such limit and fails later, in the broker). No IO.

use super::image::MetadataImage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many partition replicas a broker can host, and what bounds the number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub max_replicas: u64,
    /// The bounding resource, for error messages ("its open-file budget of ...").
    pub bound: String,
}

/// What a broker has for partition files and memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resources {
    /// Descriptors and mappings the segment-file budget allows.
    pub segment_fds: u64,
    pub segment_maps: u64,
    /// The machine's (or its cgroup's) memory, when known.
    pub memory_bytes: Option<u64>,
    /// `topic.fds.per.partition` (0: files do not bound it).
    pub fds_per_partition: f64,
    /// `topic.memory.per.partition` (0: memory does not bound it).
    pub memory_per_partition: u64,
}

/// The capacity these resources give, or None when nothing bounds it.
pub fn capacity(resources: &Resources) -> Option<Capacity> {
    let mut bounds = Vec::new();
    if resources.fds_per_partition > 0.0 {
        let files = resources.segment_fds.min(resources.segment_maps);
        let kind = if resources.segment_fds <= resources.segment_maps {
            "descriptors"
        } else {
            "mappings"
        };
        bounds.push(Capacity {
            max_replicas: (files as f64 / resources.fds_per_partition) as u64,
            bound: format!(
                "its open-file budget of {files} {kind} at topic.fds.per.partition={}",
                resources.fds_per_partition
            ),
        });
    }
    if let Some(memory) = resources.memory_bytes
        && resources.memory_per_partition > 0
    {
        let share = memory / 2;
        bounds.push(Capacity {
            max_replicas: share / resources.memory_per_partition,
            bound: format!(
                "half its memory, {} MiB, at topic.memory.per.partition={}",
                share >> 20,
                resources.memory_per_partition
            ),
        });
    }
    bounds.into_iter().min_by_key(|capacity| capacity.max_replicas)
}

/// The partition replicas each broker hosts now (a reassignment's adding replicas
/// included: they hold a log too).
pub fn hosted(image: &MetadataImage) -> BTreeMap<i32, u64> {
    let mut hosted = BTreeMap::new();
    for topic in image.topics.values() {
        for partition in &topic.partitions {
            for broker in partition.replicas.iter().chain(&partition.adding_replicas) {
                *hosted.entry(*broker).or_insert(0) += 1;
            }
        }
    }
    hosted
}

/// Free room per broker: None for a broker that registered no capacity (unbounded).
pub fn room(image: &MetadataImage, brokers: &[i32]) -> BTreeMap<i32, Option<u64>> {
    let hosted = hosted(image);
    brokers
        .iter()
        .map(|broker| {
            let free = image
                .brokers
                .get(broker)
                .and_then(|registration| registration.capacity.as_ref())
                .map(|capacity| {
                    capacity
                        .max_replicas
                        .saturating_sub(hosted.get(broker).copied().unwrap_or(0))
                });
            (*broker, free)
        })
        .collect()
}

/// Why no placement fits: the broker, what it hosts and the limit that bounds it.
pub fn over_capacity_message(image: &MetadataImage, broker: i32) -> String {
    let hosted = hosted(image).get(&broker).copied().unwrap_or(0);
    match image
        .brokers
        .get(&broker)
        .and_then(|registration| registration.capacity.as_ref())
    {
        Some(capacity) => format!(
            "broker {broker} hosts {hosted} partition replicas and can host at most {} ({})",
            capacity.max_replicas, capacity.bound
        ),
        None => format!("broker {broker} hosts {hosted} partition replicas"),
    }
}

/// Checks assignments against each broker's room: the first broker they would put
/// over its capacity, with how many replicas they give it.
pub fn check(room: &BTreeMap<i32, Option<u64>>, assignments: &[Vec<i32>]) -> Result<(), (i32, u64)> {
    let mut added: BTreeMap<i32, u64> = BTreeMap::new();
    for broker in assignments.iter().flatten() {
        *added.entry(*broker).or_insert(0) += 1;
    }
    for (broker, count) in added {
        if let Some(Some(free)) = room.get(&broker)
            && count > *free
        {
            return Err((broker, count));
        }
    }
    Ok(())
}

/// Replica lists for `n_partitions` partitions that fit the room: each partition goes
/// to the `replication_factor` brokers with the most room left (a broker without a
/// limit counts as having the most), ties broken in a rotating order so leaders spread.
/// Taking the roomiest distinct brokers for each partition in turn fits whenever any
/// placement does. Err: a broker that ran out, with how many partitions found no room.
pub fn assign_by_room(
    room: &BTreeMap<i32, Option<u64>>,
    n_partitions: i32,
    replication_factor: usize,
    start_index: usize,
) -> Result<Vec<Vec<i32>>, (i32, u64)> {
    let brokers: Vec<i32> = room.keys().copied().collect();
    let mut left: Vec<u64> = room.values().map(|free| free.unwrap_or(u64::MAX)).collect();
    let n = brokers.len();
    let mut assignments = Vec::with_capacity(n_partitions.max(0) as usize);
    for partition in 0..n_partitions.max(0) as usize {
        let rotation = (partition + start_index) % n.max(1);
        let mut order: Vec<usize> = (0..n).map(|i| (i + rotation) % n).collect();
        // Stable: among equal room, the rotated order decides.
        order.sort_by_key(|index| std::cmp::Reverse(left[*index]));
        let chosen = &order[..replication_factor.min(n)];
        if chosen.len() < replication_factor || chosen.iter().any(|index| left[*index] == 0) {
            let short = chosen
                .iter()
                .find(|index| left[**index] == 0)
                .or(order.first())
                .copied()
                .unwrap_or(0);
            let remaining = (n_partitions.max(0) as usize - partition) as u64;
            return Err((brokers.get(short).copied().unwrap_or(-1), remaining));
        }
        let mut replicas = Vec::with_capacity(replication_factor);
        for index in chosen {
            left[*index] -= 1;
            replicas.push(brokers[*index]);
        }
        assignments.push(replicas);
    }
    Ok(assignments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(fds: u64, maps: u64, memory: Option<u64>) -> Resources {
        Resources {
            segment_fds: fds,
            segment_maps: maps,
            memory_bytes: memory,
            fds_per_partition: 0.25,
            memory_per_partition: 65536,
        }
    }

    #[test]
    fn the_scarcest_resource_bounds_the_capacity() {
        // 1 536 descriptors at 0.25 each: 6 144 replicas; 24 GiB: 196 608.
        let by_files = capacity(&resources(1536, 61_434, Some(24 << 30))).unwrap();
        assert_eq!(by_files.max_replicas, 6144);
        assert!(by_files.bound.contains("1536 descriptors"), "{}", by_files.bound);
        // 1 GiB of memory: 8 192 replicas, below 63 616 by descriptors.
        let by_memory = capacity(&resources(15_904, 61_434, Some(1 << 30))).unwrap();
        assert_eq!(by_memory.max_replicas, 8192);
        assert!(by_memory.bound.contains("topic.memory.per.partition=65536"));
        // Fewer mappings than descriptors: the mappings bound.
        assert!(
            capacity(&resources(4000, 1000, None))
                .unwrap()
                .bound
                .contains("1000 mappings")
        );
        // Nothing bounds it when both ratios are 0.
        let unbounded = Resources {
            fds_per_partition: 0.0,
            memory_per_partition: 0,
            ..resources(1, 1, Some(1))
        };
        assert_eq!(capacity(&unbounded), None);
    }

    #[test]
    fn check_finds_the_broker_put_over_its_room() {
        let room = BTreeMap::from([(1, Some(2)), (2, None), (3, Some(5))]);
        assert_eq!(check(&room, &[vec![1, 2], vec![1, 3]]), Ok(()));
        assert_eq!(check(&room, &[vec![1, 2], vec![1, 3], vec![3, 1]]), Err((1, 3)));
        // An unbounded broker takes anything.
        assert_eq!(check(&room, &vec![vec![2]; 1000]), Ok(()));
    }

    #[test]
    fn placement_by_room_fills_whatever_fits_and_names_who_runs_out() {
        // Room for 3 + 1 + 2 = 6 replicas: three RF=2 partitions fit only one way
        // round (broker 1 in all three).
        let room = BTreeMap::from([(1, Some(3)), (2, Some(1)), (3, Some(2))]);
        let placed = assign_by_room(&room, 3, 2, 0).unwrap();
        assert_eq!(placed.len(), 3);
        for replicas in &placed {
            assert_eq!(replicas.len(), 2);
            assert_ne!(replicas[0], replicas[1]);
        }
        assert_eq!(check(&room, &placed), Ok(()));
        // A fourth partition does not fit.
        let (broker, short) = assign_by_room(&room, 4, 2, 0).unwrap_err();
        assert!(room.contains_key(&broker));
        assert_eq!(short, 1);
        // Not enough brokers with room at all.
        assert!(assign_by_room(&BTreeMap::from([(1, Some(9)), (2, Some(0))]), 1, 2, 0).is_err());
    }

    #[test]
    fn placement_by_room_fits_every_feasible_room_exhaustively() {
        // Every room vector over 4 brokers with up to 3 free each, RF 2: the greedy
        // placement fits exactly when the counting bound says a placement exists
        // (each partition needs 2 distinct brokers: n * 2 <= sum of min(free, n)).
        for code in 0..256u32 {
            let free: Vec<u64> = (0..4).map(|i| ((code >> (2 * i)) & 3) as u64).collect();
            let room: BTreeMap<i32, Option<u64>> = free
                .iter()
                .enumerate()
                .map(|(i, f)| (i as i32, Some(*f)))
                .collect();
            for n in 0..=6i32 {
                let feasible = free.iter().map(|f| (*f).min(n as u64)).sum::<u64>() >= 2 * n as u64;
                let placed = assign_by_room(&room, n, 2, code as usize);
                assert_eq!(placed.is_ok(), feasible, "free {free:?}, {n} partitions");
                if let Ok(placed) = placed {
                    assert_eq!(check(&room, &placed), Ok(()));
                    assert!(placed.iter().all(|r| r.len() == 2 && r[0] != r[1]));
                }
            }
        }
    }
}
