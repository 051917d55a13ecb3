//! Consumer groups over real TCP: garbage from one client leaves the group working for
//! the others; offsets and groups survive restarts; compaction and offset expiry.

mod common;

use bytes::Bytes;
use common::{Client, TestBroker};
use ferrolog::log::TopicPartition;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

fn group(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_string()))
}

fn join_request(group_id: &str, member_id: &str, protocol_type: &str, protocol: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group(group_id))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(StrBytes::from_string(member_id.to_string()))
        .with_protocol_type(StrBytes::from_string(protocol_type.to_string()))
        .with_protocols(vec![
            join_group_request::JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_string(protocol.to_string()))
                .with_metadata(Bytes::from_static(b"\x00\x01")),
        ])
}

/// Joins (handling MEMBER_ID_REQUIRED) and returns the response once the group answers.
async fn join(client: &mut Client, group_id: &str) -> JoinGroupResponse {
    let first = client
        .send(join_request(group_id, "", "consumer", "range"), 9)
        .await
        .unwrap();
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED first");
    client
        .send(join_request(group_id, &first.member_id, "consumer", "range"), 9)
        .await
        .unwrap()
}

async fn commit(client: &mut Client, group_id: &str, member: &str, generation: i32, offset: i64) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("events")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset),
                ]),
        ]);
    client.send(request, 8).await.unwrap().topics[0].partitions[0].error_code
}

async fn committed(client: &mut Client, group_id: &str) -> i64 {
    let request = OffsetFetchRequest::default()
        .with_group_id(group(group_id))
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("events")))
                .with_partition_indexes(vec![0]),
        ]));
    client.send(request, 7).await.unwrap().topics[0].partitions[0].committed_offset
}

async fn setup(broker: &TestBroker) -> Client {
    let mut client = broker.client().await;
    common::create_topic(&mut client, "events", 1, &[]).await;
    client
}

#[tokio::test]
async fn garbage_from_one_client_gets_error_codes_and_the_group_keeps_working() {
    let broker = TestBroker::start(&[]).await;
    let _admin = setup(&broker).await;
    let mut leader = broker.client().await;
    let joined = join(&mut leader, "g").await;
    assert_eq!(joined.error_code, 0);
    let (member, generation) = (joined.member_id.to_string(), joined.generation_id);
    let sync = SyncGroupRequest::default()
        .with_group_id(group("g"))
        .with_generation_id(generation)
        .with_member_id(joined.member_id.clone())
        .with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(joined.member_id.clone())
                .with_assignment(Bytes::from_static(b"assignment")),
        ]);
    let synced = leader.send(sync, 5).await.unwrap();
    assert_eq!(synced.error_code, 0);
    assert_eq!(&synced.assignment[..], b"assignment");

    let mut rogue = broker.client().await;
    let bad_type = rogue
        .send(join_request("g", "", "not-consumer", "range"), 9)
        .await
        .unwrap();
    assert_eq!(bad_type.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");
    let empty_type = rogue.send(join_request("g", "", "", "range"), 9).await.unwrap();
    assert_eq!(empty_type.error_code, 23);
    let unknown = rogue
        .send(join_request("g", "made-up-member", "consumer", "range"), 9)
        .await
        .unwrap();
    assert_eq!(unknown.error_code, 25, "UNKNOWN_MEMBER_ID");
    let bad_timeout = rogue
        .send(
            join_request("g", "", "consumer", "range").with_session_timeout_ms(1),
            9,
        )
        .await
        .unwrap();
    assert_eq!(bad_timeout.error_code, 26, "INVALID_SESSION_TIMEOUT");
    let bad_sync = SyncGroupRequest::default()
        .with_group_id(group("g"))
        .with_generation_id(generation + 7)
        .with_member_id(StrBytes::from_string(member.clone()));
    assert_eq!(
        rogue.send(bad_sync, 5).await.unwrap().error_code,
        22,
        "ILLEGAL_GENERATION"
    );
    let stranger_sync = SyncGroupRequest::default()
        .with_group_id(group("g"))
        .with_generation_id(generation)
        .with_member_id(StrBytes::from_static_str("nobody"));
    assert_eq!(rogue.send(stranger_sync, 5).await.unwrap().error_code, 25);
    assert_eq!(
        rogue
            .send(JoinGroupRequest::default(), 9)
            .await
            .unwrap()
            .error_code,
        24,
        "INVALID_GROUP_ID"
    );
    // A JoinGroup frame cut short: that connection is closed, nothing else changes.
    let mut frame = rogue.encode_request(&join_request("g", "", "consumer", "range"), 9);
    let cut = frame.len() - 5;
    frame.truncate(cut);
    let length = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    rogue.stream.write_all(&frame).await.unwrap();
    assert!(rogue.read_frame().await.is_err(), "connection closed");

    // The real member is still in a stable group and can commit.
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(group("g"))
        .with_generation_id(generation)
        .with_member_id(StrBytes::from_string(member.clone()));
    assert_eq!(leader.send(heartbeat, 4).await.unwrap().error_code, 0);
    assert_eq!(commit(&mut leader, "g", &member, generation, 42).await, 0);
    assert_eq!(committed(&mut leader, "g").await, 42);
    // Stale generations and strangers cannot commit.
    assert_eq!(commit(&mut leader, "g", &member, generation - 1, 1).await, 22);
    assert_eq!(commit(&mut leader, "g", "nobody", generation, 1).await, 25);
}

#[tokio::test]
async fn groups_and_offsets_survive_restart() {
    let broker = TestBroker::start(&[]).await;
    let mut client = setup(&broker).await;
    let joined = join(&mut client, "durable").await;
    let member = joined.member_id.to_string();
    let sync = SyncGroupRequest::default()
        .with_group_id(group("durable"))
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone())
        .with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(joined.member_id.clone())
                .with_assignment(Bytes::from_static(b"mine")),
        ]);
    assert_eq!(client.send(sync, 5).await.unwrap().error_code, 0);
    assert_eq!(
        commit(&mut client, "durable", &member, joined.generation_id, 1234).await,
        0
    );
    assert_eq!(commit(&mut client, "standalone", "", -1, 77).await, 0);
    drop(client);
    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, &[]).await;
    let mut client = broker.client().await;
    assert_eq!(committed(&mut client, "durable").await, 1234);
    assert_eq!(committed(&mut client, "standalone").await, 77);
    // The member's session was restored: it can heartbeat in its old generation.
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(group("durable"))
        .with_generation_id(joined.generation_id)
        .with_member_id(StrBytes::from_string(member));
    assert_eq!(client.send(heartbeat, 4).await.unwrap().error_code, 0);
    let described = client
        .send(
            DescribeGroupsRequest::default().with_groups(vec![group("durable")]),
            5,
        )
        .await
        .unwrap();
    assert_eq!(described.groups[0].group_state.as_str(), "Stable");
    assert_eq!(&described.groups[0].members[0].member_assignment[..], b"mine");
}

/// The records in the group's `__consumer_offsets` partition, and its log end offset.
async fn offsets_log_records(broker: &TestBroker, group_id: &str) -> (usize, i64) {
    let index = ferrolog::group::offsets::partition_for(group_id, 5);
    broker
        .broker
        .replicas
        .partition(&TopicPartition::new("__consumer_offsets", index))
        .unwrap()
        .with_log(|log| {
            let mut records = 0;
            let mut offset = log.log_start_offset();
            while let Some(slice) = log.read(offset, log.log_end_offset(), 1 << 20, true).unwrap() {
                let bytes = bytes::Bytes::from(slice.read_to_vec().unwrap());
                let batches = ferrolog::log::batch::split_stored(&bytes, usize::MAX).unwrap();
                records += batches
                    .iter()
                    .map(|batch| batch.header.records_count as usize)
                    .sum::<usize>();
                offset = batches.last().unwrap().header.last_offset() + 1;
            }
            (records, log.log_end_offset())
        })
}

#[tokio::test]
async fn the_cleaner_keeps_only_live_offsets_and_loses_nothing() {
    let broker = TestBroker::start(&[
        ("offsets.topic.segment.bytes", "20000"),
        ("log.cleaner.backoff.ms", "50"),
    ])
    .await;
    let mut client = setup(&broker).await;
    for offset in 0..3000 {
        assert_eq!(commit(&mut client, "busy", "", -1, offset).await, 0);
    }
    let (_, written) = offsets_log_records(&broker, "busy").await;
    assert_eq!(written, 3000, "one record per commit");
    // The cleaner (already at work during the commits) compacts every sealed segment
    // to the one live offset; the active segment (at most 20000 bytes) stays as it is.
    let mut left = (3000, written);
    for _ in 0..200 {
        left = offsets_log_records(&broker, "busy").await;
        if left.0 < 250 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(left.0 < 250, "compacted: {left:?} of {written} records");
    assert_eq!(committed(&mut client, "busy").await, 2999);
    drop(client);
    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, &[]).await;
    let mut client = broker.client().await;
    assert_eq!(
        committed(&mut client, "busy").await,
        2999,
        "the compacted log restores the offset"
    );
}

#[tokio::test]
async fn offsets_of_empty_groups_expire_after_retention() {
    let broker = TestBroker::start(&[("offsets.retention.minutes", "1")]).await;
    let mut client = setup(&broker).await;
    assert_eq!(commit(&mut client, "old", "", -1, 5).await, 0);
    let now = ferrolog::common::now_ms();
    ferrolog::group::host::maintain(broker.broker.as_ref(), now);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(committed(&mut client, "old").await, 5, "not yet expired");
    ferrolog::group::host::maintain(broker.broker.as_ref(), now + 61_000);
    let mut offset = 5;
    for _ in 0..50 {
        offset = committed(&mut client, "old").await;
        if offset == -1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(offset, -1, "expired");
}
