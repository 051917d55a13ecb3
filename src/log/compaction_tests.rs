use super::*;
use crate::log::batch::{split_and_validate, split_stored};
use crate::log::test_records::{Spec, encode, text};

const MINUTE: i64 = 60_000;

fn segment(base: i64, end: i64, size: u64, max_timestamp: i64) -> SegmentInfo {
    SegmentInfo {
        base_offset: base,
        end_offset: end,
        size,
        max_timestamp,
        first_timestamp: Some(max_timestamp),
    }
}

fn policy() -> CleanPolicy {
    CleanPolicy {
        min_cleanable_ratio: 0.5,
        min_lag_ms: 0,
        max_lag_ms: i64::MAX,
    }
}

#[test]
fn a_log_is_due_when_its_dirty_part_reaches_the_ratio() {
    let sealed = [
        segment(0, 10, 100, 1),
        segment(10, 20, 100, 2),
        segment(20, 30, 100, 3),
    ];
    // Never cleaned: all dirty.
    let due = cleanable(&sealed, 100, None, 10, policy(), false).unwrap();
    assert_eq!(
        (due.first_dirty, due.end, due.dirty_bytes, due.clean_bytes),
        (0, 30, 300, 0)
    );
    // Cleaned up to 20: 100 dirty of 300 is below 0.5.
    assert_eq!(cleanable(&sealed, 100, Some(20), 10, policy(), false), None);
    let lower = CleanPolicy {
        min_cleanable_ratio: 0.3,
        ..policy()
    };
    let due = cleanable(&sealed, 100, Some(20), 10, lower, false).unwrap();
    assert!((due.dirty_ratio() - 1.0 / 3.0).abs() < 1e-9);
    // Nothing dirty at all: due only when a kept tombstone has expired.
    assert_eq!(cleanable(&sealed, 100, Some(30), 10, lower, false), None);
    assert_eq!(
        cleanable(&sealed, 100, Some(30), 10, lower, true).unwrap().end,
        30
    );
    // A checkpoint outside the log (retention moved the start) starts over.
    assert_eq!(
        cleanable(&sealed, 100, Some(-5), 10, policy(), false)
            .unwrap()
            .first_dirty,
        0
    );
}

#[test]
fn nothing_above_the_high_watermark_or_younger_than_the_min_lag_is_cleanable() {
    let sealed = [
        segment(0, 10, 100, 1_000),
        segment(10, 20, 100, 2_000),
        segment(20, 30, 100, 9_000),
    ];
    assert_eq!(
        cleanable(&sealed, 15, None, 10_000, policy(), false).unwrap().end,
        10
    );
    let lagged = CleanPolicy {
        min_lag_ms: 5_000,
        ..policy()
    };
    // The third segment's newest record is 1 s old: it and everything after wait.
    assert_eq!(
        cleanable(&sealed, 100, None, 10_000, lagged, false).unwrap().end,
        20
    );
    assert_eq!(cleanable(&[], 100, None, 10_000, policy(), false), None);
}

#[test]
fn a_dirty_record_past_the_max_lag_makes_the_log_due_whatever_the_ratio() {
    let sealed = [segment(0, 10, 1000, MINUTE), segment(10, 20, 10, 2 * MINUTE)];
    let strict = CleanPolicy {
        min_cleanable_ratio: 0.9,
        max_lag_ms: 10 * MINUTE,
        ..policy()
    };
    assert_eq!(cleanable(&sealed, 100, Some(10), 5 * MINUTE, strict, false), None);
    let due = cleanable(&sealed, 100, Some(10), 13 * MINUTE, strict, false).unwrap();
    assert!(due.overdue);
    assert_eq!((due.first_dirty, due.end), (10, 20));
}

#[test]
fn the_offset_map_keeps_the_latest_offset_and_stays_in_its_budget() {
    let mut map = OffsetMap::new(3 * (ENTRY_OVERHEAD + 3));
    assert!(map.put(b"k-1", 5));
    assert!(map.put(b"k-1", 3));
    assert!(map.put(b"k-2", 7));
    assert!(map.put(b"k-3", 9));
    assert_eq!(map.latest(b"k-1"), Some(5));
    assert!(!map.put(b"k-4", 10), "over the budget");
    assert_eq!(map.latest(b"k-4"), None);
    assert!(map.put(b"k-2", 11), "a known key always fits");
    assert_eq!(map.latest(b"k-2"), Some(11));
    assert_eq!(map.len(), 3);
}

/// A batch of `(key, value)` records at offsets `base..`, from producer `producer_id`.
fn batch(base: i64, records: &[(&str, Option<&str>)], producer_id: i64, compression: Compression) -> Bytes {
    let idempotent = producer_id >= 0;
    let spec = Spec {
        base_offset: base,
        producer_id,
        producer_epoch: if idempotent { 2 } else { -1 },
        first_sequence: if idempotent { 100 } else { -1 },
        leader_epoch: 7,
        timestamp: 5_000,
        compression,
        ..Spec::default()
    };
    let records: Vec<_> = records
        .iter()
        .map(|(key, value)| text(Some(key), *value))
        .collect();
    encode(spec, &records)
}

fn rules(map: &OffsetMap) -> BatchRules<'_> {
    BatchRules {
        map,
        drop_tombstones: false,
        keep_empty: false,
        codec: None,
        levels: CompressionLevels::default(),
    }
}

fn decoded(bytes: &Bytes) -> Vec<(i64, String, Option<String>)> {
    RecordBatchDecoder::decode(&mut bytes.clone())
        .unwrap()
        .records
        .into_iter()
        .map(|record| {
            (
                record.offset,
                String::from_utf8(record.key.unwrap().to_vec()).unwrap(),
                record
                    .value
                    .map(|value| String::from_utf8(value.to_vec()).unwrap()),
            )
        })
        .collect()
}

#[test]
fn superseded_records_go_and_the_rest_keep_offsets_producer_and_last_offset() {
    for compression in [
        Compression::None,
        Compression::Lz4,
        Compression::Zstd,
        Compression::Gzip,
        Compression::Snappy,
    ] {
        let bytes = batch(
            10,
            &[
                ("a", Some("1")),
                ("b", Some("1")),
                ("a", Some("2")),
                ("c", Some("1")),
            ],
            42,
            compression,
        );
        let header = split_and_validate(&bytes, 1 << 20).unwrap()[0].header;
        let mut map = OffsetMap::new(1 << 20);
        for (key, offset) in [("a", 12), ("b", 11), ("c", 20)] {
            map.put(key.as_bytes(), offset);
        }
        let Filtered::Rewrite(cleaned) = filter_batch(&bytes, &header, &rules(&map)).0 else {
            panic!("expected a rewrite");
        };
        let stored = &split_stored(&cleaned, 1 << 20).unwrap()[0];
        assert_eq!(
            decoded(&cleaned),
            vec![
                (11, "b".into(), Some("1".into())),
                (12, "a".into(), Some("2".into()))
            ]
        );
        assert_eq!(stored.header.base_offset, 11);
        assert_eq!(
            stored.header.last_offset(),
            header.last_offset(),
            "the last offset stays"
        );
        assert_eq!(stored.header.records_count, 2);
        assert_eq!(stored.header.producer_id, 42);
        assert_eq!(stored.header.producer_epoch, 2);
        assert_eq!(stored.header.base_sequence, 101, "the sequence of offset 11");
        assert_eq!(stored.header.partition_leader_epoch, 7);
        assert_eq!(stored.header.attributes & CODEC_MASK, compression as i16);
        // A compacted batch is not a producer's batch.
        assert!(split_and_validate(&cleaned, 1 << 20).is_err());
    }
}

#[test]
fn a_batch_with_nothing_superseded_is_kept_byte_for_byte_and_one_with_nothing_left_goes() {
    let bytes = batch(0, &[("a", Some("1")), ("b", Some("1"))], -1, Compression::None);
    let header = split_and_validate(&bytes, 1 << 20).unwrap()[0].header;
    let mut map = OffsetMap::new(1 << 20);
    map.put(b"a", 0);
    map.put(b"b", 1);
    assert_eq!(filter_batch(&bytes, &header, &rules(&map)).0, Filtered::Keep);
    map.put(b"a", 5);
    map.put(b"b", 6);
    assert_eq!(filter_batch(&bytes, &header, &rules(&map)).0, Filtered::Drop);
}

#[test]
fn a_producers_last_batch_stays_empty_to_keep_its_sequence() {
    let bytes = batch(30, &[("a", Some("1")), ("b", Some("1"))], 9, Compression::Zstd);
    let header = split_and_validate(&bytes, 1 << 20).unwrap()[0].header;
    let mut map = OffsetMap::new(1 << 20);
    map.put(b"a", 50);
    map.put(b"b", 51);
    let keep = BatchRules {
        keep_empty: true,
        ..rules(&map)
    };
    let Filtered::Rewrite(empty) = filter_batch(&bytes, &header, &keep).0 else {
        panic!("expected an empty batch");
    };
    let stored = split_stored(&empty, 1 << 20).unwrap()[0].header;
    assert_eq!(
        (stored.base_offset, stored.last_offset(), stored.records_count),
        (30, 31, 0)
    );
    assert_eq!((stored.producer_id, stored.base_sequence), (9, 100));
    assert_eq!(stored.attributes & CODEC_MASK, 0);
    assert!(decoded(&empty).is_empty());
}

#[test]
fn tombstones_stay_until_their_retention_has_passed() {
    let bytes = batch(0, &[("a", None), ("b", Some("1"))], -1, Compression::None);
    let header = split_and_validate(&bytes, 1 << 20).unwrap()[0].header;
    let mut map = OffsetMap::new(1 << 20);
    map.put(b"a", 0);
    map.put(b"b", 1);
    assert_eq!(
        filter_batch(&bytes, &header, &rules(&map)),
        (Filtered::Keep, true)
    );
    let expired = BatchRules {
        drop_tombstones: true,
        ..rules(&map)
    };
    let Filtered::Rewrite(cleaned) = filter_batch(&bytes, &header, &expired).0 else {
        panic!("expected a rewrite");
    };
    assert_eq!(decoded(&cleaned), vec![(1, "b".into(), Some("1".into()))]);
}

#[test]
fn a_log_append_time_batch_keeps_the_brokers_time() {
    let bytes = batch(0, &[("a", Some("1")), ("a", Some("2"))], -1, Compression::None);
    let stamped = split_and_validate(&bytes, 1 << 20).unwrap()[0].with_log_append_time(777_000);
    let mut map = OffsetMap::new(1 << 20);
    map.put(b"a", 1);
    let Filtered::Rewrite(cleaned) = filter_batch(&stamped.bytes, &stamped.header, &rules(&map)).0 else {
        panic!("expected a rewrite");
    };
    let header = split_stored(&cleaned, 1 << 20).unwrap()[0].header;
    assert_eq!(header.max_timestamp, 777_000);
    assert_ne!(header.attributes & LOG_APPEND_TIME_FLAG, 0);
}

#[test]
fn the_throttle_paces_io_to_the_rate() {
    let start = std::time::Instant::now();
    let mut throttle = Throttle {
        bytes_per_second: 1000.0,
        started: start,
        bytes: 0.0,
    };
    assert_eq!(
        throttle.account(500, start + std::time::Duration::from_millis(500)),
        std::time::Duration::ZERO
    );
    let wait = throttle.account(1500, start + std::time::Duration::from_millis(500));
    assert_eq!(wait.as_millis(), 1500);
    let mut unlimited = Throttle::new(f64::MAX);
    assert!(
        unlimited
            .account(u64::MAX / 2, std::time::Instant::now())
            .is_zero()
    );
}
