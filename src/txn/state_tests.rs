use super::*;

fn partitions(list: &[(&str, i32)]) -> Vec<(String, i32)> {
    list.iter()
        .map(|(topic, index)| (topic.to_string(), *index))
        .collect()
}

fn initialized() -> TxnMetadata {
    match init_producer_id(None, "tx", 60_000, None, Some(7), 0).unwrap() {
        InitOutcome::Write(metadata) => metadata,
        other => panic!("{other:?}"),
    }
}

fn ongoing() -> TxnMetadata {
    match add_partitions(Some(&initialized()), 7, 0, &partitions(&[("a", 0), ("b", 1)]), 10).unwrap() {
        AddOutcome::Write(metadata) => metadata,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_new_transactional_id_gets_a_new_producer_id_at_epoch_zero() {
    assert_eq!(
        init_producer_id(None, "tx", 60_000, None, None, 0),
        Ok(InitOutcome::NeedProducerId)
    );
    let metadata = initialized();
    assert_eq!((metadata.producer_id, metadata.producer_epoch), (7, 0));
    assert_eq!(metadata.state, TxnState::Empty);
}

#[test]
fn a_second_init_bumps_the_epoch_and_a_retry_of_it_does_not_bump_again() {
    let first = initialized();
    let InitOutcome::Write(second) = init_producer_id(Some(&first), "tx", 60_000, None, None, 5).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (
            second.producer_id,
            second.producer_epoch,
            second.last_producer_epoch
        ),
        (7, 1, 0)
    );
    // KIP-360: the producer that got epoch 1 retries naming epoch 0.
    assert_eq!(
        init_producer_id(Some(&second), "tx", 60_000, Some((7, 0)), None, 6),
        Ok(InitOutcome::Current(second.clone()))
    );
    assert_eq!(
        init_producer_id(Some(&second), "tx", 60_000, Some((8, 1)), None, 6),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn init_during_an_open_transaction_fences_it_and_aborts_at_a_bumped_epoch() {
    let open = ongoing();
    let Ok(InitOutcome::FenceAndAbort(fenced)) = init_producer_id(Some(&open), "tx", 60_000, None, None, 20)
    else {
        panic!()
    };
    assert_eq!((fenced.state, fenced.producer_epoch), (TxnState::PrepareAbort, 1));
    assert_eq!(
        fenced.partitions, open.partitions,
        "the markers go where the data went"
    );
    // The old producer is fenced from now on.
    assert_eq!(
        end_txn(Some(&fenced), 7, 0, true, 21),
        Err(TxnError::ProducerFenced)
    );
    // While the markers are written, another init waits.
    assert_eq!(
        init_producer_id(Some(&fenced), "tx", 60_000, None, None, 22),
        Err(TxnError::ConcurrentTransactions)
    );
    let aborted = complete(&fenced, 23);
    assert_eq!(aborted.state, TxnState::CompleteAbort);
    let Ok(InitOutcome::Write(next)) = init_producer_id(Some(&aborted), "tx", 60_000, None, None, 24) else {
        panic!()
    };
    assert_eq!((next.producer_epoch, next.state), (2, TxnState::Empty));
}

#[test]
fn used_up_epochs_need_a_new_producer_id() {
    let mut worn = initialized();
    worn.producer_epoch = i16::MAX - 1;
    assert_eq!(
        init_producer_id(Some(&worn), "tx", 60_000, None, None, 1),
        Ok(InitOutcome::NeedProducerId)
    );
    let Ok(InitOutcome::Write(fresh)) = init_producer_id(Some(&worn), "tx", 60_000, None, Some(9), 1) else {
        panic!()
    };
    assert_eq!((fresh.producer_id, fresh.producer_epoch), (9, 0));
}

#[test]
fn adding_partitions_starts_the_transaction_once_and_checks_the_producer() {
    let open = ongoing();
    assert_eq!((open.state, open.start_ms), (TxnState::Ongoing, 10));
    assert_eq!(
        add_partitions(Some(&open), 7, 0, &partitions(&[("a", 0)]), 11),
        Ok(AddOutcome::AlreadyIn)
    );
    let Ok(AddOutcome::Write(more)) = add_partitions(Some(&open), 7, 0, &partitions(&[("c", 2)]), 12) else {
        panic!()
    };
    assert_eq!((more.partitions.len(), more.start_ms), (3, 10));
    assert_eq!(
        add_partitions(Some(&open), 7, 1, &partitions(&[("c", 2)]), 12),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        add_partitions(Some(&open), 8, 0, &partitions(&[("c", 2)]), 12),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        add_partitions(None, 7, 0, &partitions(&[("c", 2)]), 12),
        Err(TxnError::InvalidProducerIdMapping)
    );
}

#[test]
fn end_txn_prepares_completes_and_answers_retries() {
    let open = ongoing();
    let Ok(EndOutcome::Prepare(prepared)) = end_txn(Some(&open), 7, 0, true, 30) else {
        panic!()
    };
    assert_eq!(prepared.state, TxnState::PrepareCommit);
    assert_eq!(
        end_txn(Some(&prepared), 7, 0, true, 31),
        Err(TxnError::ConcurrentTransactions)
    );
    assert_eq!(
        add_partitions(Some(&prepared), 7, 0, &partitions(&[("z", 0)]), 31),
        Err(TxnError::ConcurrentTransactions)
    );
    let done = complete(&prepared, 32);
    assert_eq!((done.state, done.partitions.len()), (TxnState::CompleteCommit, 0));
    assert_eq!(end_txn(Some(&done), 7, 0, true, 33), Ok(EndOutcome::AlreadyDone));
    assert_eq!(
        end_txn(Some(&done), 7, 0, false, 33),
        Err(TxnError::InvalidTxnState)
    );
    assert_eq!(
        end_txn(Some(&initialized()), 7, 0, false, 33),
        Err(TxnError::InvalidTxnState)
    );
    // The next transaction starts afresh.
    let Ok(AddOutcome::Write(next)) = add_partitions(Some(&done), 7, 0, &partitions(&[("z", 0)]), 40) else {
        panic!()
    };
    assert_eq!((next.partitions.len(), next.start_ms), (1, 40));
}

#[test]
fn timeouts_abort_at_a_bumped_epoch_and_idle_ids_expire() {
    let open = ongoing();
    assert!(!open.timed_out(10 + 60_000));
    assert!(open.timed_out(10 + 60_001));
    let aborting = abort_timed_out(&open, 60_011);
    assert_eq!(
        (aborting.state, aborting.producer_epoch),
        (TxnState::PrepareAbort, 1)
    );
    let done = complete(&aborting, 60_012);
    assert!(!done.expired(60_012 + 1_000, 1_000));
    assert!(done.expired(60_012 + 1_001, 1_000));
    assert!(
        !open.expired(i64::MAX, 1_000),
        "an open transaction never expires"
    );
}

#[test]
fn states_round_trip_through_their_log_codes() {
    for code in 0..8 {
        assert_eq!(TxnState::from_code(code).map(TxnState::code), Some(code));
    }
    assert_eq!(TxnState::from_code(8), None);
}
