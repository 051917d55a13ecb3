//! Moving a partition's log to another log dir of the same broker (AlterReplicaLogDirs).
//!
//! The copy goes into `<target log dir>/<topic>-<partition>.<id>-future`, in two passes
//! so that the partition stops only for its tail:
//! 1. without the partition's lock, the files of its sealed segments (they change only
//!    by deletion, or by a truncation, which the log counts);
//! 2. under the lock, after a flush: every file not copied in pass 1 (all of them if the
//!    log was truncated since), and the active segment's; files gone from the source go
//!    from the copy. The copy is fsynced and renamed to `<target>/<topic>-<partition>`,
//!    the log reopened there (start, high watermark and epoch carried over) and the old
//!    directory removed.
//!
//! A crash leaves either a `-future` directory (an unfinished copy, removed at start-up)
//! or, between the rename and the removal, two complete identical copies (start-up keeps
//! the first and removes the other).

use super::PartitionLog;
use crate::log::{LogError, segment};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The suffix of an unfinished move's directory.
pub const FUTURE_SUFFIX: &str = "-future";

/// Copies `from` to `to` and fsyncs the copy.
fn copy_synced(from: &Path, to: &Path) -> Result<(), LogError> {
    std::fs::copy(from, to).map_err(|source| LogError::io(from, "copy for a log dir move", source))?;
    std::fs::File::open(to)
        .and_then(|file| file.sync_all())
        .map_err(|source| LogError::io(to, "sync moved file", source))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    std::fs::File::open(dir)
        .and_then(|file| file.sync_all())
        .map_err(|source| LogError::io(dir, "sync dir", source))
}

/// Pass 1: copies `files` into `future`, created if missing; a file deleted meanwhile
/// (retention) is skipped. Returns each copied file's name and length.
pub fn copy_sealed(files: &[PathBuf], future: &Path) -> Result<HashMap<String, u64>, LogError> {
    std::fs::create_dir_all(future).map_err(|source| LogError::io(future, "create future dir", source))?;
    let mut copied = HashMap::new();
    for file in files {
        let Some(name) = file.file_name().map(|name| name.to_string_lossy().into_owned()) else {
            continue;
        };
        match std::fs::metadata(file) {
            Ok(metadata) => {
                copy_synced(file, &future.join(&name))?;
                copied.insert(name, metadata.len());
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(LogError::io(file, "stat for a log dir move", source)),
        }
    }
    Ok(copied)
}

impl PartitionLog {
    /// The files of every segment but the active one (pass 1 of a move), with the count
    /// of truncations so far.
    pub fn sealed_segment_files(&self) -> (Vec<PathBuf>, u64) {
        let active = self.segments.keys().next_back().copied();
        let files = self
            .segments
            .keys()
            .filter(|base| Some(**base) != active)
            .flat_map(|base| {
                segment::FILE_EXTENSIONS.map(|extension| segment::file_name(&self.dir, *base, extension))
            })
            .collect();
        (files, self.rewrites)
    }

    /// Pass 2 of a move into `future` (see the module doc), then the swap to `target`.
    /// On failure the log is reopened where it was and the copy removed.
    pub fn finish_move(
        &mut self,
        future: &Path,
        target: &Path,
        copied: &HashMap<String, u64>,
        rewrites: u64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        // A truncation since pass 1 may have rewritten a sealed segment in place.
        let none = HashMap::new();
        let copied = if rewrites == self.rewrites { copied } else { &none };
        let (high_watermark, log_start) = (self.high_watermark, self.log_start_offset);
        let old_dir = self.dir.clone();
        self.close()?;
        let (topic_partition, config) = (self.topic_partition.clone(), self.config.clone());
        let (leader_epoch, recovery_point) = (self.leader_epoch, self.recovery_point);
        let reopen = |dir: &Path| {
            PartitionLog::open(
                dir,
                topic_partition.clone(),
                config.clone(),
                leader_epoch,
                recovery_point,
                true,
                now_ms,
            )
        };
        let moved = self
            .copy_rest(future, target, copied)
            .and_then(|()| reopen(target));
        let (mut log, _) = match moved {
            Ok(opened) => opened,
            Err(error) => {
                let _ = std::fs::remove_dir_all(future);
                let (reopened, _) = reopen(&old_dir)?;
                *self = reopened;
                self.advance_log_start(log_start)?;
                self.set_high_watermark(high_watermark);
                return Err(error);
            }
        };
        log.advance_log_start(log_start)?;
        log.set_high_watermark(high_watermark);
        *self = log;
        std::fs::remove_dir_all(&old_dir).map_err(|source| LogError::io(&old_dir, "remove moved log", source))
    }

    /// Copies what pass 1 did not (or what changed since), drops what is gone, and
    /// renames the copy to `target`.
    fn copy_rest(&self, future: &Path, target: &Path, copied: &HashMap<String, u64>) -> Result<(), LogError> {
        let active = self.segments.keys().next_back().copied();
        let active_files: Vec<String> = active
            .into_iter()
            .flat_map(|base| {
                segment::FILE_EXTENSIONS.map(|extension| segment::file_name(&self.dir, base, extension))
            })
            .filter_map(|path| path.file_name().map(|name| name.to_string_lossy().into_owned()))
            .collect();
        let mut present = Vec::new();
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|source| LogError::io(&self.dir, "list for a log dir move", source))?;
        for entry in entries {
            let entry = entry.map_err(|source| LogError::io(&self.dir, "list for a log dir move", source))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let len = entry
                .metadata()
                .map_err(|source| LogError::io(&entry.path(), "stat for a log dir move", source))?
                .len();
            let unchanged = copied.get(&name) == Some(&len) && !active_files.contains(&name);
            if !unchanged {
                copy_synced(&entry.path(), &future.join(&name))?;
            }
            present.push(name);
        }
        let copies =
            std::fs::read_dir(future).map_err(|source| LogError::io(future, "list future dir", source))?;
        for entry in copies {
            let entry = entry.map_err(|source| LogError::io(future, "list future dir", source))?;
            if !present.contains(&entry.file_name().to_string_lossy().into_owned()) {
                std::fs::remove_file(entry.path())
                    .map_err(|source| LogError::io(&entry.path(), "remove stale copy", source))?;
            }
        }
        sync_dir(future)?;
        if target.exists() {
            return Err(LogError::io(
                target,
                "move log",
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the target directory exists"),
            ));
        }
        std::fs::rename(future, target).map_err(|source| LogError::io(future, "rename moved log", source))?;
        if let Some(parent) = target.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }
}
