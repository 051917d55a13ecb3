//! Progress of loading one log dir at start-up, for the log: partitions and bytes
//! checked of the total, the rate, and the time left. Pure: the caller passes the time
//! and writes the lines; a line is due at most once per interval, and at the end.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RecoveryProgress {
    total_partitions: usize,
    total_bytes: u64,
    done_partitions: usize,
    done_bytes: u64,
    started: Instant,
    last_report: Instant,
    interval: Duration,
}

/// One progress line's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    pub done_partitions: usize,
    pub total_partitions: usize,
    pub done_bytes: u64,
    pub total_bytes: u64,
    pub bytes_per_second: f64,
    /// None until a rate is known.
    pub seconds_left: Option<f64>,
    pub elapsed: Duration,
}

impl RecoveryProgress {
    pub fn new(total_partitions: usize, total_bytes: u64, now: Instant, interval: Duration) -> Self {
        RecoveryProgress {
            total_partitions,
            total_bytes,
            done_partitions: 0,
            done_bytes: 0,
            started: now,
            last_report: now,
            interval,
        }
    }

    /// One more partition loaded, of `bytes`; a report when one is due.
    pub fn advance(&mut self, bytes: u64, now: Instant) -> Option<Report> {
        self.done_partitions += 1;
        self.done_bytes += bytes;
        if now.duration_since(self.last_report) < self.interval {
            return None;
        }
        self.last_report = now;
        Some(self.report(now))
    }

    pub fn report(&self, now: Instant) -> Report {
        let elapsed = now.duration_since(self.started);
        let seconds = elapsed.as_secs_f64();
        let bytes_per_second = if seconds > 0.0 {
            self.done_bytes as f64 / seconds
        } else {
            0.0
        };
        let left = self.total_bytes.saturating_sub(self.done_bytes) as f64;
        let seconds_left = if left == 0.0 {
            Some(0.0)
        } else if bytes_per_second > 0.0 {
            Some(left / bytes_per_second)
        } else {
            None
        };
        Report {
            done_partitions: self.done_partitions,
            total_partitions: self.total_partitions,
            done_bytes: self.done_bytes,
            total_bytes: self.total_bytes,
            bytes_per_second,
            seconds_left,
            elapsed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_come_once_per_interval_with_rate_and_time_left() {
        let start = Instant::now();
        let mut progress = RecoveryProgress::new(4, 4000, start, Duration::from_secs(1));
        assert_eq!(progress.advance(1000, start + Duration::from_millis(500)), None);
        let report = progress.advance(1000, start + Duration::from_secs(2)).unwrap();
        assert_eq!((report.done_partitions, report.total_partitions), (2, 4));
        assert_eq!((report.done_bytes, report.total_bytes), (2000, 4000));
        assert_eq!(report.bytes_per_second, 1000.0);
        assert_eq!(report.seconds_left, Some(2.0));
        assert_eq!(progress.advance(1000, start + Duration::from_millis(2500)), None);
        let end = progress.advance(1000, start + Duration::from_secs(4)).unwrap();
        assert_eq!(end.seconds_left, Some(0.0));
        assert_eq!(end.done_partitions, 4);
    }

    #[test]
    fn no_rate_no_estimate() {
        let start = Instant::now();
        let progress = RecoveryProgress::new(1, 10, start, Duration::from_secs(1));
        assert_eq!(progress.report(start).seconds_left, None);
    }
}
