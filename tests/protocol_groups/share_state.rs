//! The share coordinator's state APIs (83 to 87) at every advertised version, as a
//! share-partition leader uses them: initialize a share-partition's state, write
//! acknowledged and released records, read them back merged, read the summary, delete.

use crate::common::Client;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn group(name: &str) -> StrBytes {
    StrBytes::from_string(name.to_string())
}

async fn read(
    client: &mut Client,
    name: &str,
    topic_id: uuid::Uuid,
) -> anyhow::Result<read_share_group_state_response::PartitionResult> {
    use read_share_group_state_request::{PartitionData, ReadStateData};
    let request = ReadShareGroupStateRequest::default()
        .with_group_id(group(name))
        .with_topics(vec![
            ReadStateData::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![
                    PartitionData::default().with_partition(0).with_leader_epoch(-1),
                ]),
        ]);
    let response = client.send(request, 0).await?;
    Ok(response.results[0].partitions[0].clone())
}

/// The state topic is created on first use: its coordinator may still be loading.
async fn initialize(
    client: &mut Client,
    name: &str,
    topic_id: uuid::Uuid,
    version: i16,
) -> anyhow::Result<i16> {
    use initialize_share_group_state_request::{InitializeStateData, PartitionData};
    let request = InitializeShareGroupStateRequest::default()
        .with_group_id(group(name))
        .with_topics(vec![
            InitializeStateData::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![
                    PartitionData::default()
                        .with_partition(0)
                        .with_state_epoch(1)
                        .with_start_offset(10),
                ]),
        ]);
    for _ in 0..100 {
        let response = client.send(request.clone(), version).await?;
        let code = response.results[0].partitions[0].error_code;
        if code != ResponseError::CoordinatorLoadInProgress.code()
            && code != ResponseError::NotCoordinator.code()
        {
            return Ok(code);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("the share coordinator never loaded")
}

async fn write(
    client: &mut Client,
    name: &str,
    topic_id: uuid::Uuid,
    leader_epoch: i32,
    version: i16,
) -> anyhow::Result<i16> {
    use write_share_group_state_request::{PartitionData, StateBatch, WriteStateData};
    let batch = |first: i64, last: i64, state: i8, count: i16| {
        StateBatch::default()
            .with_first_offset(first)
            .with_last_offset(last)
            .with_delivery_state(state)
            .with_delivery_count(count)
    };
    let request = WriteShareGroupStateRequest::default()
        .with_group_id(group(name))
        .with_topics(vec![
            WriteStateData::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![
                    PartitionData::default()
                        .with_partition(0)
                        .with_state_epoch(1)
                        .with_leader_epoch(leader_epoch)
                        .with_start_offset(12)
                        .with_state_batches(vec![batch(12, 14, 2, 1), batch(15, 19, 0, 2)]),
                ]),
        ]);
    let response = client.send(request, version).await?;
    Ok(response.results[0].partitions[0].error_code)
}

pub async fn check(
    client: &mut Client,
    api_key: ApiKey,
    version: i16,
    topic_id: uuid::Uuid,
) -> anyhow::Result<()> {
    let name = format!("share-state-{api_key:?}-v{version}");
    let code = initialize(
        client,
        &name,
        topic_id,
        if api_key == ApiKey::InitializeShareGroupState {
            version
        } else {
            0
        },
    )
    .await?;
    anyhow::ensure!(code == 0, "initialize: {code}");
    match api_key {
        ApiKey::InitializeShareGroupState => {
            let again = initialize(client, &name, topic_id, version).await?;
            anyhow::ensure!(
                again == ResponseError::FencedStateEpoch.code(),
                "the same state epoch twice: {again}"
            );
            let state = read(client, &name, topic_id).await?;
            anyhow::ensure!(
                state.error_code == 0 && state.start_offset == 10 && state.state_epoch == 1,
                "{state:?}"
            );
        }
        ApiKey::WriteShareGroupState | ApiKey::ReadShareGroupState => {
            anyhow::ensure!(write(client, &name, topic_id, 5, version.min(0)).await? == 0);
            let stale = write(client, &name, topic_id, 4, 0).await?;
            anyhow::ensure!(
                stale == ResponseError::FencedLeaderEpoch.code(),
                "a deposed leader: {stale}"
            );
            let state = read(client, &name, topic_id).await?;
            anyhow::ensure!(state.error_code == 0 && state.start_offset == 12, "{state:?}");
            let batches: Vec<(i64, i64, i8, i16)> = state
                .state_batches
                .iter()
                .map(|batch| {
                    (
                        batch.first_offset,
                        batch.last_offset,
                        batch.delivery_state,
                        batch.delivery_count,
                    )
                })
                .collect();
            anyhow::ensure!(batches == vec![(12, 14, 2, 1), (15, 19, 0, 2)], "{batches:?}");
        }
        ApiKey::ReadShareGroupStateSummary => {
            anyhow::ensure!(write(client, &name, topic_id, 5, 0).await? == 0);
            use read_share_group_state_summary_request::{PartitionData, ReadStateSummaryData};
            let request = ReadShareGroupStateSummaryRequest::default()
                .with_group_id(group(&name))
                .with_topics(vec![
                    ReadStateSummaryData::default()
                        .with_topic_id(topic_id)
                        .with_partitions(vec![PartitionData::default().with_partition(0)]),
                ]);
            let response = client.send(request, version).await?;
            let summary = &response.results[0].partitions[0];
            anyhow::ensure!(
                summary.error_code == 0 && summary.start_offset == 12 && summary.leader_epoch == 5,
                "{summary:?}"
            );
        }
        ApiKey::DeleteShareGroupState => {
            use delete_share_group_state_request::{DeleteStateData, PartitionData};
            let request = DeleteShareGroupStateRequest::default()
                .with_group_id(group(&name))
                .with_topics(vec![
                    DeleteStateData::default()
                        .with_topic_id(topic_id)
                        .with_partitions(vec![PartitionData::default().with_partition(0)]),
                ]);
            let response = client.send(request, version).await?;
            anyhow::ensure!(response.results[0].partitions[0].error_code == 0, "{response:?}");
            let state = read(client, &name, topic_id).await?;
            anyhow::ensure!(
                state.error_code == ResponseError::UnknownTopicOrPartition.code(),
                "deleted: {state:?}"
            );
        }
        other => anyhow::bail!("not a share state API: {other:?}"),
    }
    Ok(())
}
