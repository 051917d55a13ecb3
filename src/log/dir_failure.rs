//! Log dirs taken offline by a fatal disk error (a failed fsync above all: the kernel
//! may have dropped dirty pages it could not write, so what the page cache shows is no
//! longer what the disk holds). Every log in such a dir refuses appends and flushes from
//! then on, as Kafka's LogDirFailureChannel does; the dir comes back only with a restart.
//!
//! Process-wide, as the disk is: a failed fsync on one partition's file must stop the
//! other partitions of that dir without a path through the broker.

use parking_lot::RwLock;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

static ANY_FAILED: AtomicBool = AtomicBool::new(false);
static FAILED: RwLock<Vec<PathBuf>> = RwLock::new(Vec::new());

/// Takes `log_dir` offline.
pub fn mark_failed(log_dir: &Path) {
    let mut failed = FAILED.write();
    if !failed.iter().any(|dir| dir == log_dir) {
        tracing::error!(log_dir = %log_dir.display(), "log dir taken offline after a fatal disk error");
        failed.push(log_dir.to_path_buf());
    }
    ANY_FAILED.store(true, Ordering::Release);
}

/// Whether `log_dir` is offline. Costs one atomic load while every dir is healthy.
pub fn is_failed(log_dir: &Path) -> bool {
    ANY_FAILED.load(Ordering::Acquire) && FAILED.read().iter().any(|dir| dir == log_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_dir_is_offline_and_its_neighbours_are_not() {
        let root = tempfile::tempdir().unwrap();
        let (failed, healthy) = (root.path().join("a"), root.path().join("b"));
        assert!(!is_failed(&failed));
        mark_failed(&failed);
        mark_failed(&failed);
        assert!(is_failed(&failed));
        assert!(!is_failed(&healthy));
        assert_eq!(FAILED.read().iter().filter(|dir| **dir == failed).count(), 1);
    }
}
