//! Kafka's offset checkpoint files (`recovery-point-offset-checkpoint` in each log dir).
//!
//! Text format: a version line `0`, a count line, then `topic partition offset` lines.
//! Written to a temporary file, fsynced, then renamed over the old one, so a crash leaves
//! either the old or the new checkpoint. A missing or unreadable checkpoint only means
//! more recovery work (every segment is checked), never lost data.

use std::collections::HashMap;
use std::path::Path;

pub use crate::common::files::{sync_dir, write_atomically};

pub fn read(path: &Path) -> HashMap<(String, i32), i64> {
    let mut out = HashMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    let mut lines = text.lines();
    if lines.next() != Some("0") {
        return out;
    }
    let _count = lines.next();
    for line in lines {
        let mut fields = line.split(' ');
        if let (Some(topic), Some(partition), Some(offset), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
            && let (Ok(partition), Ok(offset)) = (partition.parse(), offset.parse())
        {
            out.insert((topic.to_string(), partition), offset);
        }
    }
    out
}

pub fn write(path: &Path, entries: &[(String, i32, i64)]) -> std::io::Result<()> {
    let mut text = format!("0\n{}\n", entries.len());
    for (topic, partition, offset) in entries {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    write_atomically(path, text.as_bytes())
}

/// Creates `dir` (and missing parents) so that it survives a power cut: it and its
/// parent are fsynced.
pub fn create_dir_durably(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    sync_dir(dir)?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Removes `path` so that the removal survives a power cut (its directory is fsynced).
pub fn remove_durably(path: &Path) -> std::io::Result<()> {
    std::fs::remove_file(path)?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point-offset-checkpoint");
        super::write(&path, &[("a".into(), 0, 5), ("b-c".into(), 3, 99)]).unwrap();
        let read = super::read(&path);
        assert_eq!(read.get(&("a".to_string(), 0)), Some(&5));
        assert_eq!(read.get(&("b-c".to_string(), 3)), Some(&99));
    }
}
