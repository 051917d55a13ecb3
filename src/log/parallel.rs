//! Work over many partitions on a few threads (closing logs at shutdown, opening them at
//! start): each log's work is a handful of fsyncs and small reads, bound by the disk's
//! latency rather than its bandwidth, so several in flight finish far sooner than one at
//! a time (Kafka's `num.recovery.threads.per.data.dir`, for the same reason).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Threads for work over many logs.
pub const THREADS: usize = 16;

/// `work` applied to every item on up to `threads` threads; the results in item order.
pub fn map<T: Sync, R: Send>(items: &[T], threads: usize, work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(index) else {
                            break done;
                        };
                        done.push((index, work(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| match worker.join() {
                Ok(done) => done,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    results.sort_unstable_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_in_order() {
        let items: Vec<u32> = (0..1000).collect();
        let calls = AtomicUsize::new(0);
        let doubled = map(&items, 7, |item| {
            calls.fetch_add(1, Ordering::Relaxed);
            item * 2
        });
        assert_eq!(doubled, items.iter().map(|item| item * 2).collect::<Vec<_>>());
        assert_eq!(calls.load(Ordering::Relaxed), 1000);
        assert!(map(&[] as &[u32], 4, |item| *item).is_empty());
    }
}
