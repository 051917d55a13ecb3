//! Process-wide counts of log flushes (group commits), the files they fsynced, the log
//! bytes they made durable and the time they took, for the metrics endpoint and the
//! benchmarks (fsyncs per second, bytes per fsync).

use std::sync::atomic::{AtomicU64, Ordering};

static FLUSHES: AtomicU64 = AtomicU64::new(0);
static FILES: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static MICROS: AtomicU64 = AtomicU64::new(0);

/// One completed flush: `files` fsynced, `bytes` of log made durable, in `elapsed`.
pub fn record(files: usize, bytes: u64, elapsed: std::time::Duration) {
    FLUSHES.fetch_add(1, Ordering::Relaxed);
    FILES.fetch_add(files as u64, Ordering::Relaxed);
    BYTES.fetch_add(bytes, Ordering::Relaxed);
    MICROS.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
}

/// (flushes, files fsynced, bytes made durable, seconds spent) since start.
pub fn totals() -> (u64, u64, u64, f64) {
    (
        FLUSHES.load(Ordering::Relaxed),
        FILES.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
        MICROS.load(Ordering::Relaxed) as f64 / 1e6,
    )
}
