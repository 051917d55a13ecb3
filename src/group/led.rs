//! Which partitions of a coordinator's internal topic (`__consumer_offsets`,
//! `__share_group_state`) this broker leads, and whether each is loaded: a coordinator
//! serves a partition's keys only once it has replayed the partition.

use parking_lot::Mutex;
use std::collections::HashMap;

#[derive(Default)]
pub struct LedPartitions(Mutex<HashMap<i32, bool>>);

impl LedPartitions {
    /// Whether led partition `index` is loaded.
    pub fn is_loaded(&self, index: i32) -> bool {
        self.0.lock().get(&index) == Some(&true)
    }

    /// Records which partitions this broker leads now; returns those it stopped leading
    /// and those it came to lead (marked loading).
    pub fn set_led(&self, led: &[i32]) -> (Vec<i32>, Vec<i32>) {
        let mut current = self.0.lock();
        let lost: Vec<i32> = current
            .keys()
            .copied()
            .filter(|index| !led.contains(index))
            .collect();
        for index in &lost {
            current.remove(index);
        }
        let gained: Vec<i32> = led
            .iter()
            .copied()
            .filter(|index| !current.contains_key(index))
            .collect();
        for index in &gained {
            current.insert(*index, false);
        }
        (lost, gained)
    }

    /// Marks a led partition loaded (if it is still led).
    pub fn mark_loaded(&self, index: i32) {
        if let Some(loaded) = self.0.lock().get_mut(&index) {
            *loaded = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gained_partitions_load_and_lost_ones_are_forgotten() {
        let led = LedPartitions::default();
        assert_eq!(led.set_led(&[1, 2]), (vec![], vec![1, 2]));
        assert!(!led.is_loaded(1));
        led.mark_loaded(1);
        assert!(led.is_loaded(1));
        assert_eq!(led.set_led(&[2, 3]), (vec![1], vec![3]));
        assert!(!led.is_loaded(1));
        led.mark_loaded(1);
        assert!(!led.is_loaded(1), "no longer led: stays unloaded");
    }
}
