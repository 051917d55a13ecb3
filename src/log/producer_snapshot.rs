//! Producer-state snapshot files: `<offset>.snapshot` in the partition directory (the
//! offset zero-padded to 20 digits, as Kafka names them) holds the idempotent-producer
//! table as it stood with every batch below `offset` recorded.
//!
//! A snapshot is written when a segment rolls (at the new segment's base) and at a clean
//! shutdown (at the log end), each atomically (temporary file, fsync, rename). Start-up
//! loads the newest readable snapshot at or below the log end and records the batches
//! after it, so it reads batch headers of at most the active segment, and none after a
//! clean shutdown. A missing, unreadable or too-new snapshot only means a longer scan:
//! the table is always rebuilt from the log itself. The replay also yields the aborted
//! transactions whose markers it passed, so their index entries are rebuilt with it.

use super::LogError;
use super::checkpoint::write_atomically;
use super::producer_state::ProducerStateTable;
use super::segment::LogSegment;
use super::txn_index::AbortedTxn;
use std::path::{Path, PathBuf};

const EXTENSION: &str = "snapshot";

pub fn path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}.{EXTENSION}"))
}

/// Offsets of the snapshot files in `dir`, ascending.
pub fn list(dir: &Path) -> Vec<i64> {
    let mut offsets: Vec<i64> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            name.to_str()?.strip_suffix(".snapshot")?.parse::<i64>().ok()
        })
        .collect();
    offsets.sort_unstable();
    offsets
}

pub fn write(dir: &Path, offset: i64, table: &ProducerStateTable) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(table).map_err(std::io::Error::other)?;
    write_atomically(&path(dir, offset), &bytes)
}

/// The table stored at `offset`, or None if the file is missing or unreadable.
pub fn read(dir: &Path, offset: i64) -> Option<ProducerStateTable> {
    let bytes = std::fs::read(path(dir, offset)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Removes the snapshots for which `doomed(offset)` holds, durably: a snapshot of a
/// truncated history that came back after a power cut would give the producer table
/// batches the log no longer has.
pub fn remove_where(dir: &Path, doomed: impl Fn(i64) -> bool) -> std::io::Result<()> {
    let mut removed = false;
    for offset in list(dir).into_iter().filter(|offset| doomed(*offset)) {
        match std::fs::remove_file(path(dir, offset)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => removed = true,
        }
    }
    if removed {
        super::checkpoint::sync_dir(dir)?;
    }
    Ok(())
}

/// The newest readable snapshot at or below `log_end_offset`: its offset and table.
pub fn latest_at_or_below(dir: &Path, log_end_offset: i64) -> Option<(i64, ProducerStateTable)> {
    list(dir)
        .into_iter()
        .rev()
        .filter(|offset| *offset <= log_end_offset)
        .find_map(|offset| read(dir, offset).map(|table| (offset, table)))
}

/// What replaying a log's batches after its newest snapshot gave.
pub struct Rebuilt {
    pub table: ProducerStateTable,
    /// Where the replay started (the snapshot's offset; i64::MIN without one).
    pub from: i64,
    /// The transactions aborted by markers at or after `from`.
    pub aborted: Vec<AbortedTxn>,
}

/// The producer table of a log: the newest snapshot at or below the log end, then every
/// batch after it. Snapshots past the log end describe cut batches and go.
pub fn rebuild<'a>(
    dir: &Path,
    segments: impl Iterator<Item = &'a LogSegment>,
    log_end_offset: i64,
) -> Result<Rebuilt, LogError> {
    remove_where(dir, |offset| offset > log_end_offset)
        .map_err(|source| LogError::io(dir, "remove producer snapshots", source))?;
    let (from, mut table) =
        latest_at_or_below(dir, log_end_offset).unwrap_or((i64::MIN, ProducerStateTable::default()));
    let mut aborted = Vec::new();
    for segment in segments.filter(|segment| segment.next_offset() > from) {
        for (header, marker) in segment
            .headers_with_markers()?
            .iter()
            .filter(|(header, _)| header.base_offset >= from)
        {
            if let Some(completed) = table.record_header(header, *marker)
                && completed.aborted
            {
                aborted.push(AbortedTxn {
                    producer_id: completed.producer_id,
                    first_offset: completed.first_offset,
                    last_offset: completed.last_offset,
                    last_stable_offset: table.first_unstable_offset().unwrap_or(completed.last_offset + 1),
                });
            }
        }
    }
    Ok(Rebuilt { table, from, aborted })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::producer_state::BatchIdentity;

    fn table_with(producer_id: i64) -> ProducerStateTable {
        let mut table = ProducerStateTable::default();
        table.record(
            &BatchIdentity {
                producer_id,
                producer_epoch: 0,
                first_sequence: 0,
                last_sequence: 4,
            },
            10,
            14,
        );
        table
    }

    #[test]
    fn newest_readable_snapshot_at_or_below_the_end_wins() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 15, &table_with(1)).unwrap();
        write(dir.path(), 40, &table_with(2)).unwrap();
        write(dir.path(), 90, &table_with(3)).unwrap();
        std::fs::write(path(dir.path(), 60), b"{not json").unwrap();
        assert_eq!(list(dir.path()), vec![15, 40, 60, 90]);
        // 90 is past the end; 60 is unreadable; 40 it is.
        assert_eq!(latest_at_or_below(dir.path(), 70), Some((40, table_with(2))));
        assert_eq!(latest_at_or_below(dir.path(), 10), None);
        remove_where(dir.path(), |offset| offset > 20).unwrap();
        assert_eq!(list(dir.path()), vec![15]);
        assert_eq!(
            path(dir.path(), 15).file_name().unwrap(),
            "00000000000000000015.snapshot"
        );
    }
}
