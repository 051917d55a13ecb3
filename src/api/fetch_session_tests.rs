use super::*;

fn key(partition: i32) -> PartitionKey {
    PartitionKey {
        topic: "orders".to_string(),
        topic_id: uuid::Uuid::nil(),
        partition,
    }
}

fn params(fetch_offset: i64) -> FetchParams {
    FetchParams {
        fetch_offset,
        log_start_offset: -1,
        partition_max_bytes: 1 << 20,
        current_leader_epoch: 0,
        last_fetched_epoch: -1,
        durable_end_offset: None,
    }
}

fn request(session_id: i32, epoch: i32, partitions: &[(i32, i64)], forgotten: &[i32]) -> Request {
    Request {
        session_id,
        epoch,
        privileged: false,
        uses_topic_ids: false,
        partitions: partitions
            .iter()
            .map(|&(p, offset)| (key(p), params(offset)))
            .collect(),
        forgotten: forgotten.iter().map(|&p| key(p)).collect(),
    }
}

fn answer(high_watermark: i64, has_records: bool) -> Answer {
    Answer {
        high_watermark,
        log_start_offset: 0,
        last_stable_offset: high_watermark,
        has_records,
        must_send: false,
    }
}

/// Opens a session of partitions 0..n at offset 0, all answered with `hw` and no data.
fn open(cache: &FetchSessionCache, n: i32, hw: i64) -> i32 {
    let partitions: Vec<(i32, i64)> = (0..n).map(|p| (p, 0)).collect();
    let full = request(0, INITIAL_EPOCH, &partitions, &[]);
    let plan = cache.begin(&full, 0).unwrap();
    assert_eq!(plan, Plan::Open);
    let answers = vec![answer(hw, false); n as usize];
    let (id, include) = cache.finish(&plan, &full, &answers, Vec::new(), 0);
    assert!(id > 0);
    assert!(
        include.iter().all(|&i| i),
        "a full response names every partition"
    );
    id
}

fn incremental(plan: Plan) -> Vec<(PartitionKey, FetchParams)> {
    match plan {
        Plan::Incremental { partitions, .. } => partitions,
        other => panic!("not incremental: {other:?}"),
    }
}

#[test]
fn an_incremental_fetch_reads_every_session_partition_and_answers_only_the_changed() {
    let cache = FetchSessionCache::new(10);
    let id = open(&cache, 3, 5);
    // The fetcher names only partition 1, whose offset moved.
    let next = request(id, 1, &[(1, 5)], &[]);
    let plan = cache.begin(&next, 1).unwrap();
    let partitions = incremental(plan.clone());
    assert_eq!(partitions.len(), 3);
    assert_eq!(partitions[1].1.fetch_offset, 5);
    assert_eq!(partitions[0].1.fetch_offset, 0);
    // Partition 2 got a record (its high watermark moved); the others did not change.
    let answers = [answer(5, false), answer(5, false), answer(6, true)];
    let (answered_id, include) = cache.finish(&plan, &next, &answers, Vec::new(), 1);
    assert_eq!(answered_id, id);
    assert_eq!(include, vec![false, false, true]);
    // Partition 2 returned data: it moves to the back.
    let plan = cache.begin(&request(id, 2, &[], &[]), 2).unwrap();
    let order: Vec<i32> = incremental(plan).iter().map(|(k, _)| k.partition).collect();
    assert_eq!(order, vec![0, 1, 2]);
    let plan = cache.begin(&request(id, 3, &[(0, 0)], &[]), 3).unwrap();
    let answers = [answer(7, true), answer(5, false), answer(6, false)];
    let (_, include) = cache.finish(&plan, &request(id, 3, &[], &[]), &answers, Vec::new(), 3);
    assert_eq!(include, vec![true, false, false]);
    let plan = cache.begin(&request(id, 4, &[], &[]), 4).unwrap();
    let order: Vec<i32> = incremental(plan).iter().map(|(k, _)| k.partition).collect();
    assert_eq!(order, vec![1, 2, 0]);
}

#[test]
fn errors_are_always_sent_and_the_partition_is_resent_once_they_clear() {
    let cache = FetchSessionCache::new(10);
    let id = open(&cache, 1, 5);
    let plan = cache.begin(&request(id, 1, &[], &[]), 1).unwrap();
    let error = Answer {
        high_watermark: -1,
        log_start_offset: -1,
        last_stable_offset: -1,
        has_records: false,
        must_send: true,
    };
    assert_eq!(
        cache
            .finish(&plan, &request(id, 1, &[], &[]), &[error], Vec::new(), 1)
            .1,
        vec![true]
    );
    let plan = cache.begin(&request(id, 2, &[], &[]), 2).unwrap();
    assert_eq!(
        cache
            .finish(&plan, &request(id, 2, &[], &[]), &[error], Vec::new(), 2)
            .1,
        vec![true]
    );
    let plan = cache.begin(&request(id, 3, &[], &[]), 3).unwrap();
    assert_eq!(
        cache
            .finish(
                &plan,
                &request(id, 3, &[], &[]),
                &[answer(5, false)],
                Vec::new(),
                3
            )
            .1,
        vec![true],
        "the first answer after an error is sent even though nothing else moved"
    );
    let plan = cache.begin(&request(id, 4, &[], &[]), 4).unwrap();
    assert_eq!(
        cache
            .finish(
                &plan,
                &request(id, 4, &[], &[]),
                &[answer(5, false)],
                Vec::new(),
                4
            )
            .1,
        vec![false]
    );
}

#[test]
fn forgotten_partitions_leave_and_new_ones_join() {
    let cache = FetchSessionCache::new(10);
    let id = open(&cache, 2, 5);
    let plan = cache.begin(&request(id, 1, &[(7, 3)], &[0]), 1).unwrap();
    let partitions = incremental(plan);
    let names: Vec<i32> = partitions.iter().map(|(k, _)| k.partition).collect();
    assert_eq!(names, vec![1, 7]);
    assert_eq!(partitions[1].1.fetch_offset, 3);
    assert_eq!(cache.stats().1, 2);
}

#[test]
fn wrong_epochs_unknown_ids_and_topic_id_switches_are_refused() {
    let cache = FetchSessionCache::new(10);
    let id = open(&cache, 1, 5);
    assert_eq!(
        cache.begin(&request(id, 2, &[], &[]), 1),
        Err(SessionError(INVALID_FETCH_SESSION_EPOCH))
    );
    assert_eq!(
        cache.begin(&request(id + 1, 1, &[], &[]), 1),
        Err(SessionError(FETCH_SESSION_ID_NOT_FOUND))
    );
    let mut by_id = request(id, 1, &[], &[]);
    by_id.uses_topic_ids = true;
    assert_eq!(
        cache.begin(&by_id, 1),
        Err(SessionError(FETCH_SESSION_TOPIC_ID_ERROR))
    );
    // A refused request does not move the epoch.
    assert!(cache.begin(&request(id, 1, &[], &[]), 1).is_ok());
    assert_eq!(
        cache.begin(&request(id, 1, &[], &[]), 1),
        Err(SessionError(INVALID_FETCH_SESSION_EPOCH)),
        "an epoch is used once"
    );
}

#[test]
fn the_final_epoch_closes_a_session_and_the_initial_one_replaces_it() {
    let cache = FetchSessionCache::new(10);
    let id = open(&cache, 1, 5);
    assert_eq!(
        cache.begin(&request(id, FINAL_EPOCH, &[], &[]), 1),
        Ok(Plan::Sessionless)
    );
    assert_eq!(cache.stats().0, 0);
    assert_eq!(
        cache.begin(&request(id, 1, &[], &[]), 1),
        Err(SessionError(FETCH_SESSION_ID_NOT_FOUND))
    );
    let id = open(&cache, 1, 5);
    assert_eq!(
        cache.begin(&request(id, INITIAL_EPOCH, &[], &[]), 1),
        Ok(Plan::Open)
    );
    assert_eq!(
        cache.stats().0,
        0,
        "the old session is closed before a new one opens"
    );
    assert_eq!(
        cache.begin(&request(0, 1, &[], &[]), 1),
        Err(SessionError(FETCH_SESSION_ID_NOT_FOUND))
    );
}

#[test]
fn a_full_cache_evicts_stale_then_smaller_sessions_and_otherwise_refuses() {
    let cache = FetchSessionCache::new(2);
    let small = open(&cache, 1, 5);
    let big = open(&cache, 3, 5);
    // Not larger than the smallest: no session (id 0), nothing evicted.
    let full = request(0, INITIAL_EPOCH, &[(0, 0)], &[]);
    let plan = cache.begin(&full, 10).unwrap();
    assert_eq!(
        cache.finish(&plan, &full, &[answer(5, false)], Vec::new(), 10).0,
        0
    );
    assert_eq!(cache.stats(), (2, 4, 0));
    // Larger than the smallest: the smallest goes.
    let id = open(&cache, 2, 5);
    assert_eq!(cache.stats().2, 1);
    assert_eq!(
        cache.begin(&request(small, 1, &[], &[]), 11),
        Err(SessionError(FETCH_SESSION_ID_NOT_FOUND))
    );
    assert!(cache.begin(&request(big, 1, &[], &[]), 11).is_ok());
    // Two minutes later an unused session is stale and makes room for any new one.
    let full = request(0, INITIAL_EPOCH, &[(0, 0)], &[]);
    let plan = cache.begin(&full, 200_000).unwrap();
    let new = cache
        .finish(&plan, &full, &[answer(5, false)], Vec::new(), 200_000)
        .0;
    assert!(new > 0);
    assert_eq!(
        cache.begin(&request(id, 1, &[], &[]), 200_001),
        Err(SessionError(FETCH_SESSION_ID_NOT_FOUND))
    );
}

#[test]
fn no_slots_means_sessionless() {
    let cache = FetchSessionCache::new(0);
    assert_eq!(
        cache.begin(&request(0, INITIAL_EPOCH, &[(0, 0)], &[]), 0),
        Ok(Plan::Sessionless)
    );
}

#[test]
fn a_session_keeps_the_replica_each_partition_was_read_from_until_it_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::config::BrokerConfig::load(None, &[]).unwrap().log;
    let partition = Arc::new(crate::replication::partition::tests::leader(
        dir.path(),
        config,
        &[1],
        &[1],
        1000,
    ));
    let cache = FetchSessionCache::new(10);
    let full = request(0, INITIAL_EPOCH, &[(0, 0), (1, 0)], &[]);
    let plan = cache.begin(&full, 0).unwrap();
    // Partition 0 was read from `partition`; partition 1 could not be resolved.
    let resolved = vec![Resolved::of(&partition), Resolved::default()];
    let (id, _) = cache.finish(&plan, &full, &[answer(0, false), answer(0, false)], resolved, 0);
    let next = request(id, 1, &[], &[]);
    let plan = cache.begin(&next, 1).unwrap();
    let Plan::Incremental { resolved, .. } = &plan else {
        panic!("not incremental: {plan:?}");
    };
    assert!(
        resolved[0]
            .get()
            .is_some_and(|kept| Arc::ptr_eq(&kept, &partition))
    );
    assert!(resolved[1].get().is_none());
    // Once the broker stops hosting the replica, the session's handle finds nothing.
    partition.mark_removed();
    assert!(resolved[0].get().is_none());
    // And a session never keeps a dropped replica (nor its files) alive.
    let kept = Resolved::of(&partition);
    drop(partition);
    assert!(kept.0.as_ref().is_some_and(|weak| weak.upgrade().is_none()));
}
