//! The share group offsets admin APIs (90 to 92) at every advertised version: a share
//! member joins and fetches (its share-partition's state is initialized at the log
//! end), DescribeShareGroupOffsets shows that start offset; with the member there,
//! AlterShareGroupOffsets is refused; once it left, the offset is reset to 0 and then
//! deleted.

use crate::common::Client;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn name(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

async fn heartbeat(
    client: &mut Client,
    group: &str,
    member_id: &str,
    epoch: i32,
) -> anyhow::Result<ShareGroupHeartbeatResponse> {
    let request = ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId(name(group)))
        .with_member_id(name(member_id))
        .with_member_epoch(epoch)
        .with_subscribed_topic_names((epoch == 0).then(|| vec![TopicName(name("all-versions"))]));
    client.send(request, 1).await
}

/// The first partition's (start offset, error) as DescribeShareGroupOffsets reports it.
async fn describe(client: &mut Client, group: &str, version: i16) -> anyhow::Result<(i64, i16)> {
    let request = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
        describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup::default()
            .with_group_id(GroupId(name(group)))
            .with_topics(None),
    ]);
    let response = client.send(request, version).await?;
    let described = &response.groups[0];
    anyhow::ensure!(described.error_code == 0, "{described:?}");
    anyhow::ensure!(described.topics.len() == 1, "the subscribed topic: {described:?}");
    let partition = &described.topics[0].partitions[0];
    Ok((partition.start_offset, partition.error_code))
}

async fn alter(
    client: &mut Client,
    group: &str,
    version: i16,
) -> anyhow::Result<AlterShareGroupOffsetsResponse> {
    use alter_share_group_offsets_request::{
        AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
    };
    let request = AlterShareGroupOffsetsRequest::default()
        .with_group_id(GroupId(name(group)))
        .with_topics(vec![
            AlterShareGroupOffsetsRequestTopic::default()
                .with_topic_name(TopicName(name("all-versions")))
                .with_partitions(vec![
                    AlterShareGroupOffsetsRequestPartition::default()
                        .with_partition_index(0)
                        .with_start_offset(0),
                ]),
        ]);
    client.send(request, version).await
}

pub async fn check(
    client: &mut Client,
    api_key: ApiKey,
    version: i16,
    topic_id: uuid::Uuid,
) -> anyhow::Result<()> {
    use share_fetch_request::{FetchPartition, FetchTopic};
    let group = format!("share-offsets-{api_key:?}-v{version}");
    let member_id = uuid::Uuid::new_v4().to_string();
    let joined = heartbeat(client, &group, &member_id, 0).await?;
    anyhow::ensure!(joined.error_code == 0, "{joined:?}");
    let fetch = ShareFetchRequest::default()
        .with_group_id(Some(GroupId(name(&group))))
        .with_member_id(Some(name(&member_id)))
        .with_share_session_epoch(0)
        .with_max_wait_ms(10)
        .with_max_bytes(1 << 20)
        .with_max_records(1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![FetchPartition::default().with_partition_index(0)]),
        ]);
    let fetched = client.send(fetch, 1).await?;
    anyhow::ensure!(fetched.error_code == 0, "{fetched:?}");
    let (start, code) = describe(
        client,
        &group,
        if api_key == ApiKey::DescribeShareGroupOffsets {
            version
        } else {
            0
        },
    )
    .await?;
    anyhow::ensure!(
        code == 0 && start >= 0,
        "initialized at the log end: {start} {code}"
    );
    match api_key {
        ApiKey::DescribeShareGroupOffsets => {
            let unknown = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
                describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup::default()
                    .with_group_id(GroupId(name("no-such-share-group"))),
            ]);
            let response = client.send(unknown, version).await?;
            anyhow::ensure!(
                response.groups[0].error_code == ResponseError::GroupIdNotFound.code(),
                "{response:?}"
            );
        }
        ApiKey::AlterShareGroupOffsets => {
            let busy = alter(client, &group, version).await?;
            anyhow::ensure!(busy.error_code == ResponseError::NonEmptyGroup.code(), "{busy:?}");
            heartbeat(client, &group, &member_id, -1).await?;
            let altered = alter(client, &group, version).await?;
            anyhow::ensure!(
                altered.error_code == 0 && altered.responses[0].partitions[0].error_code == 0,
                "{altered:?}"
            );
            anyhow::ensure!(describe(client, &group, 0).await? == (0, 0), "reset to 0");
        }
        ApiKey::DeleteShareGroupOffsets => {
            heartbeat(client, &group, &member_id, -1).await?;
            let request = DeleteShareGroupOffsetsRequest::default()
                .with_group_id(GroupId(name(&group)))
                .with_topics(vec![
                    delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic::default()
                        .with_topic_name(TopicName(name("all-versions"))),
                ]);
            let response = client.send(request, version).await?;
            anyhow::ensure!(
                response.error_code == 0 && response.responses[0].error_code == 0,
                "{response:?}"
            );
            anyhow::ensure!(describe(client, &group, 0).await? == (-1, 0), "no state left");
        }
        other => anyhow::bail!("not a share offsets API: {other:?}"),
    }
    Ok(())
}
