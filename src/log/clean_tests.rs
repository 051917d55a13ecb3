use super::*;
use crate::config::LogConfig;
use crate::log::TopicPartition;
use crate::log::batch::{split_and_validate, split_stored};
use crate::log::test_records::{Spec, encode, text};
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use parking_lot::Mutex;
use std::collections::BTreeMap;

const NOW: i64 = 1_000_000_000;

fn config() -> LogConfig {
    let mut config = crate::config::BrokerConfig::load(None, &["log.cleanup.policy=compact".into()])
        .unwrap()
        .log;
    config.segment_bytes = 700;
    config.index_interval_bytes = 64;
    config.max_index_size = 4096;
    config
}

/// One batch of records `(key, value)`, all timestamped `timestamp`, compressed.
fn batch(records: &[(String, Option<String>)], timestamp: i64, compression: Compression) -> Bytes {
    let spec = Spec {
        timestamp,
        timestamp_step: 0,
        compression,
        ..Spec::default()
    };
    let records: Vec<_> = records
        .iter()
        .map(|(key, value)| text(Some(key), value.as_deref()))
        .collect();
    encode(spec, &records)
}

/// Every record in the log as offset -> (key, value).
fn records(log: &PartitionLog) -> BTreeMap<i64, (String, Option<String>)> {
    let mut out = BTreeMap::new();
    let mut offset = log.log_start_offset();
    while let Some(slice) = log.read(offset, log.log_end_offset(), 1 << 20, true).unwrap() {
        let bytes = Bytes::from(slice.read_to_vec().unwrap());
        let batches = split_stored(&bytes, 1 << 20).unwrap();
        for stored in &batches {
            let set = RecordBatchDecoder::decode(&mut stored.bytes.clone()).unwrap();
            for record in set.records {
                let key = String::from_utf8(record.key.unwrap().to_vec()).unwrap();
                let value = record
                    .value
                    .map(|value| String::from_utf8(value.to_vec()).unwrap());
                out.insert(record.offset, (key, value));
            }
        }
        offset = batches.last().unwrap().header.last_offset() + 1;
    }
    out
}

/// Each key's latest value (None for a tombstone).
fn latest(records: &BTreeMap<i64, (String, Option<String>)>) -> BTreeMap<String, Option<String>> {
    records
        .values()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// A keyed log: 12 keys updated over 6 rounds in batches of 3 records, tombstones for
/// keys 0-2 in the last round, all sealed and below the high watermark. Timestamps
/// are `timestamp`.
fn keyed_log(path: &Path, timestamp: i64, compression: Compression) -> PartitionLog {
    let mut log = PartitionLog::create(path, TopicPartition::new("t", 0), config(), 0, 0).unwrap();
    for round in 0..6 {
        for first in (0..12).step_by(3) {
            let records: Vec<(String, Option<String>)> = (first..first + 3)
                .map(|key| {
                    let value = (round < 5 || key > 2).then(|| format!("v{round}-{key}"));
                    (format!("key-{key}"), value)
                })
                .collect();
            let batches = split_and_validate(&batch(&records, timestamp, compression), 1 << 20).unwrap();
            log.append(&batches, timestamp).unwrap();
        }
    }
    log.roll(NOW).unwrap();
    log.set_high_watermark(log.log_end_offset());
    log
}

fn settings(checkpoint: Option<i64>, now_ms: i64) -> PassSettings {
    PassSettings {
        checkpoint,
        force: false,
        dedupe_buffer_size: 1 << 20,
        now_ms,
        stop_after: None,
    }
}

#[test]
fn a_pass_keeps_each_keys_latest_record_at_its_offset() {
    for compression in [
        Compression::None,
        Compression::Zstd,
        Compression::Lz4,
        Compression::Snappy,
        Compression::Gzip,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = keyed_log(&dir.path().join("t-0"), NOW - 1000, compression);
        let before = records(&log);
        let (segments_before, size_before) = (log.n_segments(), log.size_bytes());
        let end = log.log_end_offset();
        let log = Mutex::new(log);
        let result = clean_pass(&log, settings(None, NOW), &mut Throttle::new(f64::MAX))
            .unwrap()
            .unwrap();
        let log = log.into_inner();
        let after = records(&log);
        assert_eq!(result.cleaned_to, end, "the whole sealed log is clean");
        assert_eq!(after.len(), 12, "one record per key: {after:?}");
        assert_eq!(latest(&after), latest(&before));
        for (offset, record) in &after {
            assert_eq!(
                before.get(offset),
                Some(record),
                "offset {offset} kept its record"
            );
        }
        // Tombstones stay within delete.retention.ms (a day by default).
        assert_eq!(after.values().filter(|(_, value)| value.is_none()).count(), 3);
        assert!(result.stats.tombstones_expire_at.is_some());
        assert!(
            log.size_bytes() < size_before / 3,
            "{} of {size_before} bytes",
            log.size_bytes()
        );
        assert!(log.n_segments() <= segments_before);
        assert_eq!(log.log_start_offset(), 0);
        assert_eq!(log.log_end_offset(), end);
        assert!(result.stats.bytes_written < result.stats.bytes_read);
        // Nothing dirty: not due again.
        let log = Mutex::new(log);
        assert!(
            clean_pass(
                &log,
                settings(Some(result.cleaned_to), NOW),
                &mut Throttle::new(f64::MAX)
            )
            .unwrap()
            .is_none()
        );
        // A forced pass merges the now small segments.
        let merged = PassSettings {
            force: true,
            ..settings(Some(result.cleaned_to), NOW)
        };
        clean_pass(&log, merged, &mut Throttle::new(f64::MAX))
            .unwrap()
            .unwrap();
        assert!(log.lock().n_segments() < segments_before);
        assert_eq!(records(&log.lock()), after);
        // Reopened, the compacted log reads the same.
        let log = log.into_inner();
        let path = log.dir().to_path_buf();
        drop(log);
        let (reopened, _) =
            PartitionLog::open(&path, TopicPartition::new("t", 0), config(), 0, 0, false, NOW).unwrap();
        assert_eq!(records(&reopened), after);
        assert_eq!(reopened.log_end_offset(), end);
    }
}

#[test]
fn tombstones_go_once_their_retention_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let log = Mutex::new(keyed_log(&dir.path().join("t-0"), NOW - 1000, Compression::None));
    log.lock().set_config(LogConfig {
        delete_retention_ms: 60_000,
        ..config()
    });
    let first = clean_pass(&log, settings(None, NOW), &mut Throttle::new(f64::MAX))
        .unwrap()
        .unwrap();
    assert_eq!(records(&log.lock()).len(), 12);
    let expire_at = first.stats.tombstones_expire_at.unwrap();
    assert_eq!(expire_at, NOW - 1000 + 60_000);
    // Past the retention, a forced pass (nothing dirty) removes them.
    let forced = PassSettings {
        force: true,
        ..settings(Some(first.cleaned_to), expire_at + 1)
    };
    let second = clean_pass(&log, forced, &mut Throttle::new(f64::MAX))
        .unwrap()
        .unwrap();
    assert_eq!(second.stats.tombstones_expire_at, None);
    let after = records(&log.lock());
    assert_eq!(after.len(), 9);
    assert!(after.values().all(|(_, value)| value.is_some()));
    assert!(
        !after
            .values()
            .any(|(key, _)| ["key-0", "key-1", "key-2"].contains(&key.as_str()))
    );
}

#[test]
fn only_segments_below_the_high_watermark_are_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = keyed_log(&dir.path().join("t-0"), NOW - 1000, Compression::None);
    log.set_high_watermark(30);
    let before = records(&log);
    let log = Mutex::new(log);
    let result = clean_pass(&log, settings(None, NOW), &mut Throttle::new(f64::MAX))
        .unwrap()
        .unwrap();
    assert!(result.cleaned_to <= 30);
    let after = records(&log.lock());
    for (offset, record) in before.range(result.cleaned_to..) {
        assert_eq!(
            after.get(offset),
            Some(record),
            "above the clean part, nothing changes"
        );
    }
}

#[test]
fn a_truncation_during_a_pass_abandons_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = Mutex::new(keyed_log(&dir.path().join("t-0"), NOW - 1000, Compression::None));
    let mut source = log.lock().clean_source(None, NOW, false).unwrap();
    let mut stats = CleanStats::default();
    let mut throttle = Throttle::new(f64::MAX);
    let (map, covered) = build_offset_map(&source, 1 << 20, &mut throttle, &mut stats).unwrap();
    let group = groups(&source, covered).remove(0);
    let cleaned = write_cleaned(&source, &group, &map, NOW, &mut throttle, &mut stats).unwrap();
    log.lock().truncate_to(60, NOW).unwrap();
    let before = records(&log.lock());
    assert!(
        !log.lock()
            .swap_cleaned(&mut source, &group, &cleaned, None)
            .unwrap()
    );
    assert!(!cleaned.exists());
    assert_eq!(records(&log.lock()), before);
}

#[test]
fn a_crash_at_any_swap_step_recovers_the_old_or_the_new_segments() {
    for step in [
        SwapStep::Written,
        SwapStep::Committed,
        SwapStep::OldRetired,
        SwapStep::Renamed,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        let log = keyed_log(&path, NOW - 1000, Compression::Lz4);
        let before = records(&log);
        let end = log.log_end_offset();
        let log = Mutex::new(log);
        let crashed = PassSettings {
            stop_after: Some(step),
            ..settings(None, NOW)
        };
        clean_pass(&log, crashed, &mut Throttle::new(f64::MAX))
            .unwrap()
            .unwrap();
        // The process dies here: nothing is closed.
        drop(log);
        let (reopened, _) =
            PartitionLog::open(&path, TopicPartition::new("t", 0), config(), 0, 0, false, NOW).unwrap();
        let recovered = records(&reopened);
        assert_eq!(latest(&recovered), latest(&before), "{step:?}: no key lost");
        for (offset, record) in &recovered {
            assert_eq!(before.get(offset), Some(record), "{step:?}: offset {offset}");
        }
        assert_eq!(reopened.log_end_offset(), end, "{step:?}");
        let leftovers: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| {
                name.ends_with(".cleaned") || name.ends_with(".swap") || name.ends_with(".deleted")
            })
            .collect();
        assert!(leftovers.is_empty(), "{step:?}: {leftovers:?}");
        // A later pass finishes the job.
        let log = Mutex::new(reopened);
        clean_pass(&log, settings(None, NOW), &mut Throttle::new(f64::MAX)).unwrap();
        let after = records(&log.lock());
        assert_eq!(after.len(), 12, "{step:?}");
        assert_eq!(latest(&after), latest(&before), "{step:?}");
    }
}

#[test]
fn the_batch_that_ends_the_log_keeps_its_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = keyed_log(&dir.path().join("t-0"), NOW - 1000, Compression::None);
    let tombstones: Vec<(String, Option<String>)> = (3..6).map(|key| (format!("key-{key}"), None)).collect();
    let batches = split_and_validate(&batch(&tombstones, NOW - 1000, Compression::None), 1 << 20).unwrap();
    log.append(&batches, NOW).unwrap();
    log.roll(NOW).unwrap();
    log.set_high_watermark(log.log_end_offset());
    log.set_config(LogConfig {
        delete_retention_ms: 10,
        ..config()
    });
    let end = log.log_end_offset();
    let log = Mutex::new(log);
    let result = clean_pass(&log, settings(None, NOW), &mut Throttle::new(f64::MAX))
        .unwrap()
        .unwrap();
    let after = records(&log.lock());
    // Expired tombstones went, except in the batch that ends the log, so a consumer
    // still reads up to the log end; it does not make the log due again by itself.
    let kept: Vec<i64> = after
        .iter()
        .filter(|(_, (_, value))| value.is_none())
        .map(|(offset, _)| *offset)
        .collect();
    assert_eq!(kept, vec![end - 3, end - 2, end - 1], "{after:?}");
    assert_eq!(result.stats.tombstones_expire_at, None);
}
