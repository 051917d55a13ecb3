use super::*;
use crate::log::batch::split_and_validate;
use crate::log::batch::tests::make_batch;
use proptest::prelude::*;

fn config(segment_bytes: u64) -> LogConfig {
    let mut config = crate::config::BrokerConfig::load(None, &[]).unwrap().log;
    config.segment_bytes = segment_bytes;
    config.index_interval_bytes = 64;
    config.max_index_size = 4096;
    config
}

fn incoming(count: i32, timestamp: i64, payload: &[u8]) -> Vec<IncomingBatch> {
    split_and_validate(
        &bytes::Bytes::from(make_batch(count, timestamp, payload)),
        1 << 20,
    )
    .unwrap()
}

/// Every batch in the log, in order, as (base offset, record count, payload byte).
fn contents(log: &PartitionLog) -> Vec<(i64, i32, u8)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while let Some(slice) = log.read(offset, log.log_end_offset(), 1, true).unwrap() {
        let bytes = slice.read_to_vec().unwrap();
        let header = crate::log::batch::validate(&bytes).unwrap();
        out.push((header.base_offset, header.records_count, bytes[bytes.len() - 1]));
        offset = header.last_offset() + 1;
    }
    out
}

#[test]
fn append_roll_read_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = PartitionLog::create(&path, TopicPartition::new("t", 0), config(300), 3, 0).unwrap();
    for index in 0..20u8 {
        let info = log
            .append(&incoming(2, 1000 + index as i64, &[index; 40]), 0)
            .unwrap();
        assert_eq!(info.base_offset, index as i64 * 2);
    }
    assert!(log.n_segments() > 3, "segments: {}", log.n_segments());
    assert_eq!(log.log_end_offset(), 40);
    let before = contents(&log);
    assert_eq!(before.len(), 20);
    // The stamped epoch is in every batch.
    let slice = log.read(10, 40, 1, true).unwrap().unwrap();
    assert_eq!(
        crate::log::batch::validate(&slice.read_to_vec().unwrap())
            .unwrap()
            .partition_leader_epoch,
        3
    );
    // By timestamp: the first batch with timestamp >= 1005 starts at offset 10.
    assert_eq!(
        log.offset_for_timestamp(1005).unwrap().map(|(offset, _)| offset),
        Some(10)
    );
    assert_eq!(log.offset_for_timestamp(5000).unwrap(), None);
    log.close().unwrap();
    drop(log);
    for clean in [true, false] {
        let (reopened, report) =
            PartitionLog::open(&path, TopicPartition::new("t", 0), config(300), 3, 0, clean, 0).unwrap();
        assert_eq!(report.truncated_bytes, 0);
        assert_eq!(contents(&reopened), before);
        assert_eq!(
            reopened
                .offset_for_timestamp(1005)
                .unwrap()
                .map(|(offset, _)| offset),
            Some(10)
        );
    }
}

#[test]
fn missing_or_corrupt_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = PartitionLog::create(&path, TopicPartition::new("t", 0), config(400), 0, 0).unwrap();
    for index in 0..30u8 {
        log.append(&incoming(1, 1000 + index as i64, &[index; 60]), 0)
            .unwrap();
    }
    let before = contents(&log);
    log.close().unwrap();
    drop(log);
    let mut index_files: Vec<_> = std::fs::read_dir(&path)
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|e| e == "index" || e == "timeindex"))
        .collect();
    index_files.sort();
    assert!(index_files.len() >= 4);
    // One index goes missing, another is overwritten with garbage.
    std::fs::remove_file(&index_files[0]).unwrap();
    std::fs::write(&index_files[2], [0xffu8; 24]).unwrap();
    // Even after a clean shutdown the broken indexes are noticed and rebuilt.
    let (reopened, _) =
        PartitionLog::open(&path, TopicPartition::new("t", 0), config(400), 0, 0, true, 0).unwrap();
    assert_eq!(contents(&reopened), before);
    assert!(index_files[0].exists(), "the missing index was rebuilt");
    assert_eq!(
        reopened
            .offset_for_timestamp(1017)
            .unwrap()
            .map(|(offset, _)| offset),
        Some(17)
    );
}

#[test]
fn out_of_range_reads_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut log =
        PartitionLog::create(dir.path(), TopicPartition::new("t", 0), config(1 << 20), 0, 0).unwrap();
    log.append(&incoming(1, 1, b"a"), 0).unwrap();
    assert!(matches!(
        log.read(5, 1, 100, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(log.read(1, 1, 100, true).unwrap().is_none());
}

#[test]
fn retention_by_size_moves_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(200);
    config.retention_bytes = 250;
    let mut log = PartitionLog::create(dir.path(), TopicPartition::new("t", 0), config, 0, 0).unwrap();
    for index in 0..10u8 {
        log.append(&incoming(1, 1, &[index; 80]), 0).unwrap();
    }
    let deleted = log.apply_retention(0).unwrap();
    assert!(deleted > 0);
    assert!(log.log_start_offset() > 0);
    assert!(log.size_bytes() >= 250 - 200, "{}", log.size_bytes());
    assert!(matches!(
        log.read(0, 10, 100, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn a_raised_log_start_hides_records_and_deletes_whole_segments_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::create(dir.path(), TopicPartition::new("t", 0), config(200), 0, 0).unwrap();
    for index in 0..10u8 {
        log.append(&incoming(2, 1, &[index; 60]), 0).unwrap();
    }
    let segments_before = log.n_segments();
    assert!(segments_before > 3);
    // Inside a segment: the start moves there; segments wholly below go.
    assert!(log.advance_log_start(7).unwrap());
    assert_eq!(log.log_start_offset(), 7);
    assert!(log.n_segments() < segments_before);
    assert!(matches!(
        log.read(6, 20, 1000, true),
        Err(LogError::OffsetOutOfRange {
            log_start_offset: 7,
            ..
        })
    ));
    // Reading at the start gives the batch that holds it.
    let slice = log.read(7, 20, 1000, true).unwrap().unwrap();
    assert!(slice.len > 0);
    // Never backwards, never past the log end.
    assert!(!log.advance_log_start(3).unwrap());
    assert!(log.advance_log_start(1000).unwrap());
    assert_eq!(log.log_start_offset(), log.log_end_offset());
    log.append(&incoming(1, 1, b"after"), 0).unwrap();
    assert_eq!(contents(&log).last().map(|(base, _, _)| *base), Some(20));
}

#[test]
fn retention_leaves_a_compact_only_topic_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(200);
    config.retention_bytes = 1;
    config.delete_policy = false;
    let mut log = PartitionLog::create(dir.path(), TopicPartition::new("t", 0), config, 0, 0).unwrap();
    for index in 0..10u8 {
        log.append(&incoming(1, 1, &[index; 80]), 0).unwrap();
    }
    assert_eq!(log.apply_retention(0).unwrap(), 0);
    assert_eq!(log.log_start_offset(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Cutting the last segment file at any byte (a torn write) and recovering yields
    /// exactly a prefix of what was appended, and the log accepts appends again.
    #[test]
    fn recovery_after_cut_yields_a_prefix(n_batches in 1usize..30, cut_fraction in 0.0f64..1.0, garbage in proptest::collection::vec(any::<u8>(), 0..40)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        let mut log = PartitionLog::create(&path, TopicPartition::new("t", 0), config(400), 0, 0).unwrap();
        for index in 0..n_batches {
            log.append(&incoming(1 + (index % 3) as i32, index as i64, &[index as u8; 50]), 0).unwrap();
        }
        let appended = contents(&log);
        drop(log);
        // Cut the newest segment and append garbage after the cut.
        let mut logs: Vec<_> = std::fs::read_dir(&path).unwrap().filter_map(Result::ok)
            .map(|entry| entry.path()).filter(|p| p.extension().is_some_and(|e| e == "log")).collect();
        logs.sort();
        let last = logs.last().unwrap();
        let length = std::fs::metadata(last).unwrap().len();
        let cut = (length as f64 * cut_fraction) as u64;
        let file = std::fs::OpenOptions::new().write(true).open(last).unwrap();
        file.set_len(cut).unwrap();
        use std::io::{Seek, Write};
        let mut file = file;
        file.seek(std::io::SeekFrom::End(0)).unwrap();
        file.write_all(&garbage).unwrap();
        drop(file);
        let (mut recovered, _) = PartitionLog::open(&path, TopicPartition::new("t", 0), config(400), 0, 0, false, 0).unwrap();
        let got = contents(&recovered);
        prop_assert!(got.len() <= appended.len());
        prop_assert_eq!(&got[..], &appended[..got.len()]);
        prop_assert_eq!(recovered.log_end_offset(), got.last().map_or(0, |(base, count, _)| base + *count as i64));
        let info = recovered.append(&incoming(1, 1, b"z"), 0).unwrap();
        prop_assert_eq!(info.base_offset, recovered.log_end_offset() - 1);
    }
}

/// Every stored batch's bytes, in order.
fn raw_batches(log: &PartitionLog) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while let Some(slice) = log.read(offset, log.log_end_offset(), 1, true).unwrap() {
        let bytes = slice.read_to_vec().unwrap();
        offset = crate::log::batch::validate(&bytes).unwrap().last_offset() + 1;
        out.push(bytes);
    }
    out
}

fn as_incoming(bytes: &[u8]) -> Vec<IncomingBatch> {
    split_and_validate(&bytes::Bytes::from(bytes.to_vec()), 1 << 20).unwrap()
}

#[test]
fn a_follower_copies_the_leader_byte_for_byte_and_tracks_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = PartitionLog::create(
        &dir.path().join("l"),
        TopicPartition::new("t", 0),
        config(300),
        1,
        0,
    )
    .unwrap();
    let mut follower = PartitionLog::create(
        &dir.path().join("f"),
        TopicPartition::new("t", 0),
        config(300),
        0,
        0,
    )
    .unwrap();
    for index in 0..10u8 {
        if index == 5 {
            leader.start_epoch(4).unwrap();
        }
        leader.append(&incoming(3, 1000, &[index; 30]), 0).unwrap();
    }
    for batch in raw_batches(&leader) {
        follower.append_as_follower(&as_incoming(&batch), 0).unwrap();
    }
    assert_eq!(raw_batches(&follower), raw_batches(&leader));
    assert_eq!(follower.log_end_offset(), 30);
    assert_eq!(leader.end_offset_for_epoch(1), (1, 15));
    assert_eq!(follower.end_offset_for_epoch(1), (1, 15));
    assert_eq!(follower.latest_epoch(), Some(4));
    // A batch that does not continue the log is refused and changes nothing.
    let stray = raw_batches(&leader)[2].clone();
    assert!(matches!(
        follower.append_as_follower(&as_incoming(&stray), 0),
        Err(LogError::NonContiguous {
            expected: 30,
            found: 6
        })
    ));
    assert_eq!(follower.log_end_offset(), 30);
    // The epoch cache survives a reopen, and is rebuilt from the batches when missing.
    let path = follower.dir().to_path_buf();
    drop(follower);
    let (reopened, _) =
        PartitionLog::open(&path, TopicPartition::new("t", 0), config(300), 4, 30, false, 0).unwrap();
    assert_eq!(reopened.end_offset_for_epoch(1), (1, 15));
    drop(reopened);
    std::fs::remove_file(path.join(crate::log::leader_epoch::FILE_NAME)).unwrap();
    let (rebuilt, _) =
        PartitionLog::open(&path, TopicPartition::new("t", 0), config(300), 4, 30, false, 0).unwrap();
    assert_eq!(rebuilt.end_offset_for_epoch(1), (1, 15));
    assert_eq!(rebuilt.latest_epoch(), Some(4));
}

#[test]
fn truncation_cuts_whole_batches_across_segments_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = PartitionLog::create(&path, TopicPartition::new("t", 0), config(300), 1, 0).unwrap();
    for index in 0..20u8 {
        if index == 12 {
            log.start_epoch(2).unwrap();
        }
        log.append(&incoming(2, 1000, &[index; 40]), 0).unwrap();
    }
    log.set_high_watermark(40);
    assert!(log.n_segments() > 3);
    let before = contents(&log);
    // Offset 15 is inside the batch 14..=15: that whole batch goes.
    log.truncate_to(15, 0).unwrap();
    assert_eq!(log.log_end_offset(), 14);
    assert_eq!(log.high_watermark(), 14);
    assert_eq!(contents(&log), before[..7].to_vec());
    assert_eq!(log.latest_epoch(), Some(1), "epoch 2 began at 24, past the cut");
    assert_eq!(log.end_offset_for_epoch(1), (1, 14));
    // Appends continue at the new end, and everything reads back after a reopen.
    log.append(&incoming(2, 1000, &[99; 40]), 0).unwrap();
    assert_eq!(log.log_end_offset(), 16);
    let after = contents(&log);
    drop(log);
    let (reopened, report) =
        PartitionLog::open(&path, TopicPartition::new("t", 0), config(300), 1, 0, false, 0).unwrap();
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(contents(&reopened), after);
    // Truncating to the start empties the log.
    let mut log = reopened;
    log.truncate_to(0, 0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert!(contents(&log).is_empty());
    assert_eq!(log.latest_epoch(), None);
}

/// One batch of `count` records from idempotent producer `producer_id`, epoch 0.
fn idempotent(producer_id: i64, base_sequence: i32, count: i32) -> Vec<IncomingBatch> {
    let mut bytes = make_batch(count, 1000, &[7; 30]);
    bytes[43..51].copy_from_slice(&producer_id.to_be_bytes());
    bytes[51..53].copy_from_slice(&0i16.to_be_bytes());
    bytes[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    split_and_validate(&bytes::Bytes::from(bytes), 1 << 20).unwrap()
}

fn decision(log: &PartitionLog, producer_id: i64, base_sequence: i32, count: i32) -> Decision {
    let batch = idempotent(producer_id, base_sequence, count);
    log.producers()
        .check(&BatchIdentity::of(&batch[0].header).unwrap())
}

use crate::log::producer_state::{BatchIdentity, Decision};

#[test]
fn producer_state_survives_clean_and_unclean_restarts_and_follows_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let tp = TopicPartition::new("t", 0);
    // Small segments: the log rolls often and writes a snapshot at each roll.
    let mut log = PartitionLog::create(&path, tp.clone(), config(400), 0, 0).unwrap();
    for sequence in (0..60).step_by(3) {
        log.append(&idempotent(1, sequence, 3), 0).unwrap();
        log.append(&incoming(1, 1000, &[1; 30]), 0).unwrap();
    }
    log.append(&idempotent(2, 0, 2), 0).unwrap();
    assert!(log.n_segments() > 5);
    let retried = Decision::Duplicate {
        base_offset: 76,
        last_offset: 78,
    };
    assert_eq!(decision(&log, 1, 57, 3), retried);
    let snapshots = producer_snapshot::list(&path);
    assert!(snapshots.len() > 4, "a snapshot per roll: {snapshots:?}");
    log.close().unwrap();
    drop(log);
    assert_eq!(
        producer_snapshot::list(&path).last(),
        Some(&82),
        "and one at shutdown"
    );

    for clean in [true, false] {
        let (reopened, _) = PartitionLog::open(&path, tp.clone(), config(400), 0, 0, clean, 0).unwrap();
        assert_eq!(decision(&reopened, 1, 57, 3), retried, "clean: {clean}");
        assert_eq!(decision(&reopened, 1, 60, 1), Decision::Append);
        assert_eq!(decision(&reopened, 1, 61, 1), Decision::OutOfOrderSequence);
        assert_eq!(
            decision(&reopened, 2, 0, 2),
            Decision::Duplicate {
                base_offset: 80,
                last_offset: 81
            }
        );
    }
    // A crash before the shutdown snapshot: the last snapshot plus the active segment.
    std::fs::remove_file(producer_snapshot::path(&path, 82)).unwrap();
    let (mut reopened, _) = PartitionLog::open(&path, tp.clone(), config(400), 0, 0, false, 0).unwrap();
    assert_eq!(decision(&reopened, 1, 57, 3), retried);
    // Every snapshot gone (a log from before snapshots): rebuilt from all batches.
    producer_snapshot::remove_where(&path, |_| true).unwrap();
    let (scanned, _) = PartitionLog::open(&path, tp.clone(), config(400), 0, 0, false, 0).unwrap();
    assert_eq!(decision(&scanned, 1, 57, 3), retried);
    drop(scanned);

    // A truncation below producer 2's batch and producer 1's last: neither is a
    // duplicate any more, and the older batches still are.
    reopened.truncate_to(76, 0).unwrap();
    assert_eq!(decision(&reopened, 2, 0, 2), Decision::Append);
    assert_eq!(decision(&reopened, 1, 57, 3), Decision::Append);
    assert_eq!(
        decision(&reopened, 1, 54, 3),
        Decision::Duplicate {
            base_offset: 72,
            last_offset: 74
        }
    );
    assert!(producer_snapshot::list(&path).iter().all(|offset| *offset <= 76));
}

#[test]
fn a_follower_records_producer_state_from_replicated_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = PartitionLog::create(
        &dir.path().join("l"),
        TopicPartition::new("t", 0),
        config(1 << 20),
        0,
        0,
    )
    .unwrap();
    let mut follower = PartitionLog::create(
        &dir.path().join("f"),
        TopicPartition::new("t", 0),
        config(1 << 20),
        0,
        0,
    )
    .unwrap();
    leader.append(&incoming(4, 1000, &[1; 10]), 0).unwrap();
    leader.append(&idempotent(9, 0, 5), 0).unwrap();
    for bytes in raw_batches(&leader) {
        follower.append_as_follower(&as_incoming(&bytes), 0).unwrap();
    }
    assert_eq!(
        decision(&follower, 9, 0, 5),
        Decision::Duplicate {
            base_offset: 4,
            last_offset: 8
        }
    );
    assert_eq!(follower.producers(), leader.producers());
}

#[test]
fn a_torn_last_batch_is_cut_at_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = PartitionLog::create(&path, TopicPartition::new("t", 0), config(1 << 20), 0, 0).unwrap();
    for index in 0..4u8 {
        log.append(&incoming(2, index as i64, &[index; 40]), 0).unwrap();
    }
    let before_last = log.size_bytes();
    log.append(&incoming(3, 9, &[9; 40]), 0).unwrap();
    let full = log.size_bytes();
    let kept = contents(&log)[..4].to_vec();
    drop(log);
    let segment = segment::file_name(&path, 0, "log");
    let bytes = std::fs::read(&segment).unwrap();
    // A crash may leave any prefix of the last batch: every one is cut on recovery.
    for cut in before_last..full {
        std::fs::write(&segment, &bytes[..cut as usize]).unwrap();
        let (mut recovered, report) = PartitionLog::open(
            &path,
            TopicPartition::new("t", 0),
            config(1 << 20),
            0,
            0,
            false,
            0,
        )
        .unwrap();
        assert_eq!(contents(&recovered), kept, "cut at byte {cut}");
        assert_eq!(report.truncated_bytes, cut - before_last);
        assert_eq!(recovered.log_end_offset(), 8);
        recovered.append(&incoming(1, 1, b"z"), 0).unwrap();
        drop(recovered);
        std::fs::write(&segment, &bytes).unwrap();
    }
}

/// Found by the chaos suite: a replica that had led epoch 6 without appending anything
/// kept claiming epoch 6 after truncating to its log end, so its new leader answered
/// "diverged at the end of epoch 4" forever and it never rejoined the ISR.
#[test]
fn truncating_at_the_log_end_drops_an_epoch_without_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = PartitionLog::create(&path, TopicPartition::new("t", 0), config(1 << 20), 4, 0).unwrap();
    log.start_epoch(4).unwrap();
    log.append(&incoming(3, 1, b"a"), 0).unwrap();
    log.start_epoch(6).unwrap();
    assert_eq!(log.latest_epoch(), Some(6));
    // The leader of epoch 7 knows epoch 4 as ending at 3 and nothing of epoch 6.
    log.truncate_to(3, 0).unwrap();
    assert_eq!(log.latest_epoch(), Some(4));
    assert_eq!(log.log_end_offset(), 3);
    drop(log);
    let (reopened, _) = PartitionLog::open(
        &path,
        TopicPartition::new("t", 0),
        config(1 << 20),
        7,
        0,
        false,
        0,
    )
    .unwrap();
    assert_eq!(reopened.latest_epoch(), Some(4), "the checkpoint was rewritten");
}

#[test]
fn a_log_moves_to_another_dir_with_everything_kept_even_if_it_changed_between_passes() {
    let root = tempfile::tempdir().unwrap();
    let (from, to) = (root.path().join("a"), root.path().join("b"));
    std::fs::create_dir_all(&from).unwrap();
    std::fs::create_dir_all(&to).unwrap();
    let tp = TopicPartition::new("t", 0);
    let mut log = PartitionLog::create(&from.join("t-0"), tp.clone(), config(300), 2, 0).unwrap();
    for index in 0..20u8 {
        log.append(&incoming(2, 1000 + index as i64, &[index; 40]), 0)
            .unwrap();
    }
    log.advance_log_start(5).unwrap();
    log.set_high_watermark(30);
    // Pass 1 copies the sealed segments; then the log changes: a truncation cuts into a
    // sealed segment (which becomes the active one) and new batches follow.
    let future = to.join("t-0.x-future");
    let (sealed, rewrites) = log.sealed_segment_files();
    let copied = move_dir::copy_sealed(&sealed, &future).unwrap();
    assert!(copied.len() >= 6, "{copied:?}");
    log.truncate_to(25, 0).unwrap();
    for index in 50..53u8 {
        log.append(&incoming(2, 2000, &[index; 40]), 0).unwrap();
    }
    let before = contents(&log);
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let high_watermark = log.high_watermark();
    log.finish_move(&future, &to.join("t-0"), &copied, rewrites, 0)
        .unwrap();
    assert_eq!(log.dir(), to.join("t-0"));
    assert!(!from.join("t-0").exists(), "the source is removed");
    assert!(!future.exists());
    assert_eq!(contents(&log), before);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (start, end));
    assert_eq!(log.high_watermark(), high_watermark);
    // It takes appends where it is now, and reopens there.
    log.append(&incoming(1, 3000, &[99; 40]), 0).unwrap();
    log.close().unwrap();
    let (reopened, _) =
        PartitionLog::open(&to.join("t-0"), tp, config(300), 2, log.recovery_point(), true, 0).unwrap();
    assert_eq!(reopened.log_end_offset(), end + 1);
}

#[test]
fn a_move_without_changes_between_passes_reuses_the_first_copy() {
    let root = tempfile::tempdir().unwrap();
    let (from, to) = (root.path().join("a"), root.path().join("b"));
    std::fs::create_dir_all(&from).unwrap();
    std::fs::create_dir_all(&to).unwrap();
    let mut log =
        PartitionLog::create(&from.join("t-0"), TopicPartition::new("t", 0), config(300), 0, 0).unwrap();
    for index in 0..20u8 {
        log.append(&incoming(2, 1000, &[index; 40]), 0).unwrap();
    }
    let before = contents(&log);
    let (sealed, rewrites) = log.sealed_segment_files();
    let future = to.join("t-0.y-future");
    let copied = move_dir::copy_sealed(&sealed, &future).unwrap();
    // Retention removed the oldest segment meanwhile: it goes from the copy too.
    log.advance_log_start(4).unwrap();
    let before_start = log.log_start_offset();
    log.finish_move(&future, &to.join("t-0"), &copied, rewrites, 0)
        .unwrap();
    assert_eq!(log.log_start_offset(), before_start);
    let after = contents(&log);
    assert_eq!(after[..], before[before.len() - after.len()..]);
    assert!(after.len() < before.len());
}

/// A fresh partition's indexes stay empty through its first batch; the first entry
/// (10 MiB preallocated indexes, the default) brings only the index pages it writes
/// into the page cache, not the disk's read-ahead window of zeros; the same after a
/// roll and after an unclean reopen that rebuilds the active segment's indexes.
#[test]
fn a_first_write_brings_in_only_the_index_pages_it_touches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut config = crate::config::BrokerConfig::load(None, &[]).unwrap().log;
    config.index_interval_bytes = 1;
    assert_eq!(config.max_index_size, 10 << 20);
    let mut log = PartitionLog::create(&path, TopicPartition::new("t", 0), config.clone(), 0, 0).unwrap();
    let index_files = |path: &std::path::Path| -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|file| {
                file.extension()
                    .is_some_and(|extension| extension == "index" || extension == "timeindex")
            })
            .collect();
        files.sort();
        files
    };
    let check = |what: &str| {
        for file in index_files(&path) {
            let resident = crate::log::index_file::tests::resident_bytes(&file);
            assert!(
                resident <= 64 * 1024,
                "{what}: {resident} bytes of {} resident",
                file.display()
            );
        }
    };
    // The first batch of a segment takes no index entry; the second does.
    let grown = |what: &str| {
        for file in index_files(&path).iter().rev().take(2) {
            let length = std::fs::metadata(file).unwrap().len();
            // Whole entries of 8 (offset index) or 12 bytes (time index) in 10 MiB.
            assert!(
                length > (10 << 20) - 12,
                "{what}: {} is {length} bytes",
                file.display()
            );
        }
    };
    log.append(&incoming(1, 1_000, b"v"), 1_000).unwrap();
    for file in index_files(&path) {
        let length = std::fs::metadata(&file).unwrap().len();
        assert_eq!(length, 0, "{} after the first batch", file.display());
    }
    log.append(&incoming(1, 1_001, b"v"), 1_001).unwrap();
    grown("first entry");
    check("first entry");
    log.roll(2_000).unwrap();
    log.append(&incoming(1, 2_000, b"w"), 2_000).unwrap();
    log.append(&incoming(1, 2_001, b"w"), 2_001).unwrap();
    assert_eq!(index_files(&path).len(), 4);
    grown("after a roll");
    check("after a roll");
    drop(log);
    let (log, _) =
        PartitionLog::open(&path, TopicPartition::new("t", 0), config, 0, 0, false, 3_000).unwrap();
    assert_eq!(log.log_end_offset(), 4);
    grown("after an unclean reopen");
    check("after an unclean reopen");
}

/// Descriptors this process holds on files under `dir`.
fn open_files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .collect()
}

/// A sealed segment holds one descriptor (its log) and its index mappings, before and
/// after a restart; only the active segment keeps its index files open.
#[test]
fn sealed_segments_hold_only_their_log_file_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = PartitionLog::create(&path, TopicPartition::new("t", 0), config(300), 0, 0).unwrap();
    for index in 0..20u8 {
        log.append(&incoming(2, 1_000, &[index; 40]), 1_000).unwrap();
    }
    let segments = log.n_segments();
    assert!(segments > 5, "{segments} segments");
    assert_eq!(
        open_files_under(&path).len(),
        segments + 2,
        "{:?}",
        open_files_under(&path)
    );
    log.close().unwrap();
    drop(log);
    let (log, _) =
        PartitionLog::open(&path, TopicPartition::new("t", 0), config(300), 0, 0, true, 2_000).unwrap();
    assert_eq!(log.n_segments(), segments);
    assert_eq!(open_files_under(&path).len(), segments + 2);
    assert_eq!(contents(&log).len(), 20);
}

/// Mappings this process holds of files under `dir`.
fn mappings_under(dir: &std::path::Path) -> usize {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|line| line.contains(dir.as_str()))
        .count()
}

/// Many logs under a budget of a few descriptors and mappings: every log takes appends,
/// rolls, serves reads by offset and timestamp and reopens with everything in it, while
/// the files held stay within the budget (closed segments reopen on their next use).
#[test]
fn many_logs_stay_within_the_open_file_budget() {
    let budget: &'static crate::log::open_files::Budget = Box::leak(Box::new(
        crate::log::open_files::Budget::new(crate::log::open_files::Cost { fds: 12, maps: 12 }),
    ));
    super::segment::TEST_BUDGET.with(|cell| cell.set(Some(budget)));
    let dir = tempfile::tempdir().unwrap();
    let n_logs = 30;
    let path = |index: i32| dir.path().join(format!("t-{index}"));
    let mut logs: Vec<PartitionLog> = (0..n_logs)
        .map(|index| {
            PartitionLog::create(&path(index), TopicPartition::new("t", index), config(300), 0, 0).unwrap()
        })
        .collect();
    for round in 0..8u8 {
        for log in logs.iter_mut() {
            log.append(&incoming(2, 1_000 + round as i64, &[round; 40]), 1_000)
                .unwrap();
        }
        assert!(budget.used().fds <= 12, "{:?}", budget.used());
        assert!(open_files_under(dir.path()).len() <= 12);
        assert!(mappings_under(dir.path()) <= 12);
    }
    assert!(budget.evictions() > 0);
    let expected: Vec<(i64, i32, u8)> = (0..8u8).map(|round| (round as i64 * 2, 2, round)).collect();
    for log in logs.iter_mut() {
        assert!(log.n_segments() > 1);
        assert_eq!(contents(log), expected);
        assert_eq!(
            log.offset_for_timestamp(1_005).unwrap().map(|(offset, _)| offset),
            Some(10)
        );
        // A flush reopens what it needs.
        let unflushed = log.unflushed_files().unwrap();
        for file in &unflushed.files {
            file.sync_data().unwrap();
        }
        log.mark_flushed(unflushed.end_offset, unflushed.rewrites);
        assert_eq!(log.recovery_point(), 16);
    }
    assert!(open_files_under(dir.path()).len() <= 12 + 2);
    // Half shut down cleanly, half not: both reopen under the budget with everything.
    for (index, log) in logs.iter_mut().enumerate() {
        if index % 2 == 0 {
            log.close().unwrap();
        }
    }
    drop(logs);
    assert_eq!(budget.used(), crate::log::open_files::Cost::default());
    for index in 0..n_logs {
        let (log, report) = PartitionLog::open(
            &path(index),
            TopicPartition::new("t", index),
            config(300),
            0,
            0,
            index % 2 == 0,
            2_000,
        )
        .unwrap();
        assert_eq!(report.truncated_bytes, 0);
        assert_eq!(contents(&log), expected);
        assert!(open_files_under(dir.path()).len() <= 12 + 2);
    }
    super::segment::TEST_BUDGET.with(|cell| cell.set(None));
}
