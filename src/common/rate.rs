//! Kafka's sampled rate (`org.apache.kafka.common.metrics.stats.Rate`), as its quotas
//! measure clients: values recorded into `samples` windows of `window_ms` each; the rate
//! is their sum over the time they cover, counted as at least `samples - 1` whole
//! windows, so that a young sensor does not read as a burst. A quota violated by
//! `rate` is throttled for `(rate - quota) / quota * window` (Kafka's
//! `QuotaUtils.throttleTime`), at most the span of all windows. Pure: time passed in.

use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub struct Rate {
    samples: usize,
    window_ms: i64,
    /// (window start, total recorded in it), oldest first.
    windows: VecDeque<(i64, f64)>,
}

impl Rate {
    pub fn new(samples: usize, window_ms: i64) -> Self {
        Rate {
            samples: samples.max(2),
            window_ms: window_ms.max(1),
            windows: VecDeque::new(),
        }
    }

    fn purge(&mut self, now_ms: i64) {
        let span = self.samples as i64 * self.window_ms;
        while self
            .windows
            .front()
            .is_some_and(|(start, _)| now_ms - start >= span)
        {
            self.windows.pop_front();
        }
    }

    pub fn record(&mut self, value: f64, now_ms: i64) {
        self.purge(now_ms);
        match self.windows.back_mut() {
            Some((start, total)) if now_ms - *start < self.window_ms => *total += value,
            _ => {
                self.windows.push_back((now_ms, value));
                if self.windows.len() > self.samples {
                    self.windows.pop_front();
                }
            }
        }
    }

    /// The time the rate is measured over, in ms.
    fn window_size_ms(&self, now_ms: i64) -> i64 {
        let oldest = self.windows.front().map_or(now_ms, |(start, _)| *start);
        let mut elapsed = now_ms - oldest;
        let full = elapsed / self.window_ms;
        let min_full = self.samples as i64 - 1;
        if full < min_full {
            elapsed += (min_full - full) * self.window_ms;
        }
        elapsed.max(1)
    }

    /// Units a second.
    pub fn per_second(&mut self, now_ms: i64) -> f64 {
        self.purge(now_ms);
        let total: f64 = self.windows.iter().map(|(_, value)| value).sum();
        total * 1000.0 / self.window_size_ms(now_ms) as f64
    }

    /// How long a client measured by this rate is throttled under `quota` (units a
    /// second): 0 when within it.
    pub fn throttle_ms(&mut self, quota: f64, now_ms: i64) -> i64 {
        let rate = self.per_second(now_ms);
        if quota <= 0.0 || rate <= quota {
            return 0;
        }
        let throttle = (rate - quota) / quota * self.window_size_ms(now_ms) as f64;
        (throttle as i64).clamp(0, self.samples as i64 * self.window_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_young_rate_counts_at_least_samples_minus_one_windows() {
        let mut rate = Rate::new(11, 1000);
        rate.record(1000.0, 0);
        // 1000 units over the 10 s minimum (10.01 s here): about 100 a second.
        assert!((rate.per_second(10) - 100.0).abs() < 0.2);
        assert_eq!(rate.throttle_ms(100.0, 10), 0);
    }

    #[test]
    fn throttle_time_is_the_excess_over_the_quota_times_the_window() {
        let mut rate = Rate::new(2, 1000);
        rate.record(3000.0, 0);
        // 3000 units over 1 s (the minimum of one full window) against 1000 a second:
        // (3000 - 1000) / 1000 * 1000 ms.
        assert_eq!(rate.throttle_ms(1000.0, 0), 2000);
        // Waiting that long brings it back within the quota.
        assert_eq!(rate.throttle_ms(1000.0, 2000), 0);
        // Old windows drop out.
        rate.record(10.0, 5000);
        assert!(rate.per_second(5000) < 20.0);
    }

    #[test]
    fn a_steady_client_below_the_quota_is_not_throttled() {
        let mut rate = Rate::new(11, 1000);
        let mut throttled = 0;
        for second in 0..30 {
            rate.record(950.0, second * 1000);
            throttled += rate.throttle_ms(1000.0, second * 1000 + 999);
        }
        assert_eq!(throttled, 0);
        // Twice the quota for long enough is throttled.
        for second in 30..60 {
            rate.record(2000.0, second * 1000);
        }
        assert!(rate.throttle_ms(1000.0, 60_000) > 0);
    }
}
