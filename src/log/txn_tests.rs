use super::*;
use crate::log::TopicPartition;
use crate::log::batch::split_and_validate;
use crate::log::batch::tests::make_batch;
use crate::log::control::TRANSACTIONAL_FLAG;

fn config() -> crate::config::LogConfig {
    let mut config = crate::config::BrokerConfig::load(None, &[]).unwrap().log;
    config.segment_bytes = 1 << 20;
    config
}

fn now() -> i64 {
    crate::common::now_ms()
}

/// A transactional batch of `count` records from `producer_id`.
fn transactional(producer_id: i64, base_sequence: i32, count: i32) -> Vec<IncomingBatch> {
    let mut bytes = make_batch(count, now(), &[7; 30]);
    bytes[21..23].copy_from_slice(&TRANSACTIONAL_FLAG.to_be_bytes());
    bytes[43..51].copy_from_slice(&producer_id.to_be_bytes());
    bytes[51..53].copy_from_slice(&0i16.to_be_bytes());
    bytes[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    split_and_validate(&bytes::Bytes::from(bytes), 1 << 20).unwrap()
}

fn marker(commit: bool) -> ControlMarker {
    ControlMarker {
        commit,
        coordinator_epoch: 0,
    }
}

fn reopen(dir: &std::path::Path) -> PartitionLog {
    let (mut log, _) =
        PartitionLog::open(dir, TopicPartition::new("t", 0), config(), 0, 0, false, now()).unwrap();
    let end = log.log_end_offset();
    log.set_high_watermark(end);
    log
}

#[test]
fn aborted_transactions_and_the_stable_offset_survive_a_crash_and_follow_truncation() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("t-0");
    let mut log = PartitionLog::create(&dir, TopicPartition::new("t", 0), config(), 0, now()).unwrap();
    // Producer 1: offsets 0..3 then ABORT at 3. Producer 2: 4..6, COMMIT at 6. Producer 3:
    // 7..9, still open. One segment: a crash loses its unsynced transaction index.
    log.append(&transactional(1, 0, 3), now()).unwrap();
    log.append_marker(1, 0, marker(false), now()).unwrap();
    log.append(&transactional(2, 0, 2), now()).unwrap();
    log.append_marker(2, 0, marker(true), now()).unwrap();
    log.append(&transactional(3, 0, 2), now()).unwrap();
    let end = log.log_end_offset();
    assert_eq!(end, 9);
    log.set_high_watermark(end);
    let aborted = log.aborted_transactions();
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (
            aborted[0].producer_id,
            aborted[0].first_offset,
            aborted[0].last_offset
        ),
        (1, 0, 3)
    );
    assert_eq!(
        log.last_stable_offset(),
        7,
        "producer 3's open transaction holds it back"
    );
    assert_eq!(log.aborted_overlapping(0, 7), vec![(1, 0)]);
    assert_eq!(log.aborted_overlapping(4, 7), vec![]);
    // A crash (no close), and the active segment's transaction index lost with it.
    drop(log);
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if entry
            .path()
            .extension()
            .is_some_and(|extension| extension == "txnindex")
        {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    let mut log = reopen(&dir);
    assert_eq!(
        log.aborted_overlapping(0, 9),
        vec![(1, 0)],
        "rebuilt from the log"
    );
    assert_eq!(log.last_stable_offset(), 7, "the open transaction is known again");
    assert!(
        std::fs::read_dir(&dir).unwrap().flatten().any(|entry| entry
            .path()
            .extension()
            .is_some_and(|extension| extension == "txnindex")),
        "and written back"
    );
    // The segment is sealed (its index synced); producer 3 aborts in the next one; a
    // clean restart keeps both entries, each in its segment's file.
    log.roll(now()).unwrap();
    log.append_marker(3, 0, marker(false), now()).unwrap();
    log.close().unwrap();
    let mut log = reopen(&dir);
    assert_eq!(log.aborted_overlapping(0, 10), vec![(1, 0), (3, 7)]);
    assert_eq!(log.last_stable_offset(), 10);
    assert_eq!(log.n_segments(), 2);
    // A truncation below the last marker takes its entry and reopens the transaction.
    log.truncate_to(9, now()).unwrap();
    log.set_high_watermark(9);
    assert_eq!(log.aborted_overlapping(0, 10), vec![(1, 0)]);
    assert_eq!(log.last_stable_offset(), 7);
}
