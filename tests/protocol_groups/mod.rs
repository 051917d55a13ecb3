//! The KIP-848 consumer group and KIP-932 share group APIs at every advertised version
//! (called from protocol.rs's every-version test): a member joins with epoch 0 and gets
//! the whole one-partition topic, ConsumerGroupDescribe shows it, and it leaves with
//! epoch -1; a share member joins, share sessions check their epochs.

pub mod share_offsets;
pub mod share_state;

use crate::common::Client;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// The group is not loaded until the coordinator has its `__consumer_offsets` partition.
async fn join(client: &mut Client, group: &str, version: i16) -> ConsumerGroupHeartbeatResponse {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    // v0 lets the coordinator name the member; from v1 the member names itself.
    let member_id = if version == 0 {
        String::new()
    } else {
        uuid::Uuid::new_v4().to_string()
    };
    loop {
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_member_id(StrBytes::from_string(member_id.clone()))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str("all-versions"))]))
            .with_topic_partitions(Some(Vec::new()));
        let response = client.send(request, version).await.unwrap();
        let retry = [
            ResponseError::CoordinatorLoadInProgress.code(),
            ResponseError::CoordinatorNotAvailable.code(),
        ];
        if !retry.contains(&response.error_code) || tokio::time::Instant::now() > deadline {
            return response;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

pub async fn check(
    client: &mut Client,
    api_key: ApiKey,
    version: i16,
    topic_id: uuid::Uuid,
) -> anyhow::Result<()> {
    let group = format!("kip848-{api_key:?}-v{version}");
    let joined = join(client, &group, 1).await;
    anyhow::ensure!(joined.error_code == 0, "join: {joined:?}");
    let member_id = joined.member_id.clone().unwrap_or_default();
    match api_key {
        ApiKey::ConsumerGroupHeartbeat => {
            let fresh = join(client, &format!("{group}-fresh"), version).await;
            anyhow::ensure!(fresh.error_code == 0, "v{version}: {fresh:?}");
            anyhow::ensure!(fresh.member_epoch >= 1, "v{version}: {fresh:?}");
            anyhow::ensure!(!fresh.member_id.clone().unwrap_or_default().is_empty());
            let assignment = fresh.assignment.clone().unwrap_or_default();
            anyhow::ensure!(
                assignment.topic_partitions.len() == 1
                    && assignment.topic_partitions[0].topic_id == topic_id
                    && assignment.topic_partitions[0].partitions == vec![0],
                "v{version}: the whole topic: {fresh:?}"
            );
            // A heartbeat with a wrong epoch is fenced; leaving with -1 ends it.
            let fenced = ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(format!("{group}-fresh"))))
                .with_member_id(fresh.member_id.clone().unwrap_or_default())
                .with_member_epoch(fresh.member_epoch + 5);
            let response = client.send(fenced, version).await?;
            anyhow::ensure!(
                response.error_code == ResponseError::FencedMemberEpoch.code(),
                "{response:?}"
            );
            let leave = ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(format!("{group}-fresh"))))
                .with_member_id(fresh.member_id.unwrap_or_default())
                .with_member_epoch(-1);
            let response = client.send(leave, version).await?;
            anyhow::ensure!(
                response.error_code == 0 && response.member_epoch == -1,
                "{response:?}"
            );
        }
        ApiKey::ConsumerGroupDescribe => {
            let request = ConsumerGroupDescribeRequest::default().with_group_ids(vec![
                GroupId(StrBytes::from_string(group.clone())),
                GroupId(StrBytes::from_static_str("no-such-group")),
            ]);
            let response = client.send(request, version).await?;
            let described = &response.groups[0];
            anyhow::ensure!(described.error_code == 0, "v{version}: {described:?}");
            anyhow::ensure!(&*described.group_state == "Stable", "v{version}: {described:?}");
            anyhow::ensure!(described.members.len() == 1 && described.members[0].member_id == member_id);
            let assigned = &described.members[0].assignment.topic_partitions;
            anyhow::ensure!(assigned.len() == 1 && &*assigned[0].topic_name == "all-versions");
            anyhow::ensure!(response.groups[1].error_code == ResponseError::GroupIdNotFound.code());
        }
        ApiKey::ShareGroupHeartbeat => {
            let share_group = GroupId(StrBytes::from_string(format!("{group}-share")));
            let request = ShareGroupHeartbeatRequest::default()
                .with_group_id(share_group)
                .with_member_id(StrBytes::from_string(uuid::Uuid::new_v4().to_string()))
                .with_member_epoch(0)
                .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str(
                    "all-versions",
                ))]));
            let response = client.send(request, version).await?;
            anyhow::ensure!(
                response.error_code == 0 && response.member_epoch >= 1,
                "{response:?}"
            );
            let assignment = response.assignment.unwrap_or_default();
            anyhow::ensure!(assignment.topic_partitions.len() == 1, "{assignment:?}");
            // The classic-or-consumer group of the same id is not a share group.
            let clash = ShareGroupHeartbeatRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                .with_member_id(StrBytes::from_static_str("m"))
                .with_member_epoch(0)
                .with_subscribed_topic_names(Some(vec![]));
            let response = client.send(clash, version).await?;
            anyhow::ensure!(
                response.error_code == ResponseError::GroupIdNotFound.code(),
                "{response:?}"
            );
        }
        ApiKey::ShareGroupDescribe => {
            let request = ShareGroupDescribeRequest::default()
                .with_group_ids(vec![GroupId(StrBytes::from_string(group.clone()))]);
            let response = client.send(request, version).await?;
            anyhow::ensure!(
                response.groups[0].error_code == ResponseError::GroupIdNotFound.code(),
                "a consumer group is not a share group: {response:?}"
            );
        }
        ApiKey::ShareFetch => {
            use kafka_protocol::messages::share_fetch_request::{FetchPartition, FetchTopic};
            let fetch = |epoch: i32| {
                ShareFetchRequest::default()
                    .with_group_id(Some(GroupId(StrBytes::from_string(format!("{group}-sf")))))
                    .with_member_id(Some(StrBytes::from_static_str("member")))
                    .with_share_session_epoch(epoch)
                    .with_max_wait_ms(10)
                    .with_max_bytes(1 << 20)
                    .with_max_records(100)
                    .with_topics(vec![
                        FetchTopic::default()
                            .with_topic_id(topic_id)
                            .with_partitions(vec![FetchPartition::default().with_partition_index(0)]),
                    ])
            };
            let response = client.send(fetch(0), version).await?;
            anyhow::ensure!(response.error_code == 0, "{response:?}");
            let wrong = client.send(fetch(7), version).await?;
            anyhow::ensure!(
                wrong.error_code == ResponseError::InvalidShareSessionEpoch.code(),
                "{wrong:?}"
            );
            let close = client.send(fetch(-1), version).await?;
            anyhow::ensure!(close.error_code == 0, "{close:?}");
        }
        ApiKey::ShareAcknowledge => {
            let request = ShareAcknowledgeRequest::default()
                .with_group_id(Some(GroupId(StrBytes::from_string(format!("{group}-sa")))))
                .with_member_id(Some(StrBytes::from_static_str("member")))
                .with_share_session_epoch(3);
            let response = client.send(request, version).await?;
            anyhow::ensure!(
                response.error_code == ResponseError::ShareSessionNotFound.code(),
                "{response:?}"
            );
        }
        other => anyhow::bail!("not a consumer or share group API: {other:?}"),
    }
    Ok(())
}
