//! The wire protocol over real TCP: every API at every advertised version, framing
//! limits, malformed input, and unsupported versions.

mod common;
mod protocol_groups;
mod protocol_txn;

use bytes::Bytes;
use common::{
    TestBroker, create_topic, fetch_request, large_batch, produce_request, record_batch, split_batches,
    topic_name,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn api_versions_lists_the_handler_table_at_every_version() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    for version in 0..=4 {
        let response = client.send(ApiVersionsRequest::default(), version).await.unwrap();
        assert_eq!(response.error_code, 0);
        let produce = response.api_keys.iter().find(|key| key.api_key == 0).unwrap();
        assert_eq!((produce.min_version, produce.max_version), (3, 13));
        assert_eq!(response.api_keys.len(), ferrolog::api::SUPPORTED_APIS.len());
        // v3+: the KIP-848 and KIP-932 feature levels, as Kafka 4.2 finalizes them.
        let finalized: Vec<(String, i16)> = response
            .finalized_features
            .iter()
            .map(|feature| (feature.name.to_string(), feature.max_version_level))
            .collect();
        let expected = if version >= 3 {
            vec![("group.version".to_string(), 1), ("share.version".to_string(), 1)]
        } else {
            vec![]
        };
        assert_eq!(finalized, expected, "v{version}");
        assert_eq!(response.supported_features.len(), expected.len(), "v{version}");
    }
}

#[tokio::test]
async fn unsupported_api_versions_version_gets_v0_error_with_ranges() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    let mut frame = client.encode_request(&ApiVersionsRequest::default(), 3);
    frame[6..8].copy_from_slice(&99i16.to_be_bytes());
    client.stream.write_all(&frame).await.unwrap();
    let mut response = client.read_frame().await.unwrap();
    let _header = <ResponseHeader as kafka_protocol::protocol::Decodable>::decode(&mut response, 0).unwrap();
    let body =
        <ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut response, 0).unwrap();
    assert_eq!(body.error_code, 35);
    assert!(!body.api_keys.is_empty());
}

#[tokio::test]
async fn every_api_answers_every_advertised_version() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "all-versions", 1, &[]).await;
    let topic_id = broker.broker.topic("all-versions").unwrap().topic_id;
    for (api_key, min, max) in ferrolog::api::SUPPORTED_APIS {
        for version in *min..=*max {
            if ferrolog::api::legacy::bridge_version(*api_key, version).is_some() {
                // Versions the codec dropped: tests/protocol_legacy.rs sends them.
                continue;
            }
            let outcome = match api_key {
                ApiKey::ApiVersions => client
                    .send(ApiVersionsRequest::default(), version)
                    .await
                    .map(|_| ()),
                ApiKey::Metadata => client.send(MetadataRequest::default(), version).await.map(|_| ()),
                ApiKey::Produce => {
                    let mut request =
                        produce_request("all-versions", 0, record_batch(2, Compression::None, 1), 1);
                    if version >= 13 {
                        request.topic_data[0].name = TopicName::default();
                        request.topic_data[0].topic_id = topic_id;
                    }
                    client.send(request, version).await.map(|response| {
                        assert_eq!(
                            response.responses[0].partition_responses[0].error_code, 0,
                            "v{version}"
                        );
                    })
                }
                ApiKey::Fetch => {
                    let mut request = fetch_request("all-versions", 0, 0);
                    if version >= 13 {
                        request.topics[0].topic = TopicName::default();
                        request.topics[0].topic_id = topic_id;
                    }
                    client.send(request, version).await.map(|response| {
                        let partition = &response.responses[0].partitions[0];
                        assert_eq!(partition.error_code, 0, "v{version}");
                        assert!(!partition.records.as_ref().unwrap().is_empty(), "v{version}");
                    })
                }
                ApiKey::ListOffsets => client
                    .send(
                        ListOffsetsRequest::default()
                            .with_replica_id(BrokerId(-1))
                            .with_topics(vec![
                                list_offsets_request::ListOffsetsTopic::default()
                                    .with_name(topic_name("all-versions"))
                                    .with_partitions(vec![
                                        list_offsets_request::ListOffsetsPartition::default()
                                            .with_timestamp(-1),
                                    ]),
                            ]),
                        version,
                    )
                    .await
                    .map(|response| assert_eq!(response.topics[0].partitions[0].error_code, 0)),
                ApiKey::CreateTopics => client
                    .send(
                        CreateTopicsRequest::default()
                            .with_validate_only(true)
                            .with_topics(vec![
                                create_topics_request::CreatableTopic::default()
                                    .with_name(topic_name("validate-only"))
                                    .with_num_partitions(1)
                                    .with_replication_factor(1),
                            ]),
                        version,
                    )
                    .await
                    .map(|response| assert_eq!(response.topics[0].error_code, 0)),
                ApiKey::DeleteTopics => client
                    .send(DeleteTopicsRequest::default(), version)
                    .await
                    .map(|_| ()),
                ApiKey::DescribeConfigs => client
                    .send(
                        DescribeConfigsRequest::default().with_resources(vec![
                            describe_configs_request::DescribeConfigsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(StrBytes::from_static_str("all-versions")),
                        ]),
                        version,
                    )
                    .await
                    .map(|response| assert_eq!(response.results[0].error_code, 0)),
                ApiKey::CreatePartitions => client
                    .send(CreatePartitionsRequest::default(), version)
                    .await
                    .map(|_| ()),
                ApiKey::IncrementalAlterConfigs => client
                    .send(IncrementalAlterConfigsRequest::default(), version)
                    .await
                    .map(|_| ()),
                ApiKey::InitProducerId => client
                    .send(
                        InitProducerIdRequest::default()
                            .with_transactional_id(None)
                            .with_producer_id(ProducerId(-1)),
                        version,
                    )
                    .await
                    .map(|response| {
                        assert_eq!(response.error_code, 0);
                        assert!(*response.producer_id >= 0);
                    }),
                ApiKey::FindCoordinator => {
                    let request = if version >= 4 {
                        FindCoordinatorRequest::default()
                            .with_coordinator_keys(vec![StrBytes::from_static_str("g")])
                    } else {
                        FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"))
                    };
                    client.send(request, version).await.map(|response| {
                        let code = if version >= 4 {
                            response.coordinators[0].error_code
                        } else {
                            response.error_code
                        };
                        assert_eq!(code, 0, "v{version}");
                    })
                }
                ApiKey::JoinGroup => client
                    .send(
                        JoinGroupRequest::default()
                            .with_group_id(GroupId(StrBytes::from_string(format!("join-v{version}"))))
                            .with_session_timeout_ms(10_000)
                            .with_rebalance_timeout_ms(if version >= 1 { 10_000 } else { -1 })
                            .with_protocol_type(StrBytes::from_static_str("consumer"))
                            .with_protocols(vec![
                                join_group_request::JoinGroupRequestProtocol::default()
                                    .with_name(StrBytes::from_static_str("range"))
                                    .with_metadata(Bytes::from_static(b"meta")),
                            ]),
                        version,
                    )
                    .await
                    .map(|response| {
                        let expected = if version >= 4 { 79 } else { 0 };
                        assert_eq!(response.error_code, expected, "v{version}");
                    }),
                ApiKey::SyncGroup => client
                    .send(
                        SyncGroupRequest::default().with_group_id(GroupId(StrBytes::from_static_str("nope"))),
                        version,
                    )
                    .await
                    .map(|response| assert_eq!(response.error_code, 25)),
                ApiKey::Heartbeat => client
                    .send(
                        HeartbeatRequest::default().with_group_id(GroupId(StrBytes::from_static_str("nope"))),
                        version,
                    )
                    .await
                    .map(|response| assert_eq!(response.error_code, 25)),
                ApiKey::LeaveGroup => client
                    .send(
                        LeaveGroupRequest::default()
                            .with_group_id(GroupId(StrBytes::from_static_str("nope")))
                            .with_member_id(StrBytes::from_static_str(if version >= 3 { "" } else { "m" }))
                            .with_members(if version >= 3 {
                                vec![
                                    leave_group_request::MemberIdentity::default()
                                        .with_member_id(StrBytes::from_static_str("m")),
                                ]
                            } else {
                                vec![]
                            }),
                        version,
                    )
                    .await
                    .map(|_| ()),
                ApiKey::OffsetCommit => client
                    .send(
                        OffsetCommitRequest::default()
                            .with_group_id(GroupId(StrBytes::from_static_str("standalone")))
                            .with_generation_id_or_member_epoch(-1)
                            .with_topics(vec![
                                offset_commit_request::OffsetCommitRequestTopic::default()
                                    .with_name(topic_name("all-versions"))
                                    .with_partitions(vec![
                                        offset_commit_request::OffsetCommitRequestPartition::default()
                                            .with_partition_index(0)
                                            .with_committed_offset(version as i64),
                                    ]),
                            ]),
                        version,
                    )
                    .await
                    .map(|response| assert_eq!(response.topics[0].partitions[0].error_code, 0, "v{version}")),
                ApiKey::OffsetFetch => {
                    let request = if version >= 8 {
                        OffsetFetchRequest::default().with_groups(vec![
                            offset_fetch_request::OffsetFetchRequestGroup::default()
                                .with_group_id(GroupId(StrBytes::from_static_str("standalone")))
                                .with_topics(None),
                        ])
                    } else {
                        OffsetFetchRequest::default()
                            .with_group_id(GroupId(StrBytes::from_static_str("standalone")))
                            .with_topics(Some(vec![
                                offset_fetch_request::OffsetFetchRequestTopic::default()
                                    .with_name(topic_name("all-versions"))
                                    .with_partition_indexes(vec![0]),
                            ]))
                    };
                    client.send(request, version).await.map(|response| {
                        let offset = if version >= 8 {
                            response.groups[0].topics[0].partitions[0].committed_offset
                        } else {
                            response.topics[0].partitions[0].committed_offset
                        };
                        assert_eq!(offset, 9, "the last OffsetCommit (v9) committed 9");
                    })
                }
                ApiKey::ListGroups => {
                    client
                        .send(ListGroupsRequest::default(), version)
                        .await
                        .map(|response| {
                            assert!(
                                response
                                    .groups
                                    .iter()
                                    .any(|group| group.group_id.as_str() == "standalone")
                            );
                        })
                }
                ApiKey::DescribeGroups => client
                    .send(
                        DescribeGroupsRequest::default()
                            .with_groups(vec![GroupId(StrBytes::from_static_str("standalone"))]),
                        version,
                    )
                    .await
                    .map(|response| assert_eq!(response.groups[0].group_state.as_str(), "Empty")),
                ApiKey::DeleteGroups => client
                    .send(DeleteGroupsRequest::default(), version)
                    .await
                    .map(|_| ()),
                ApiKey::OffsetDelete => client
                    .send(
                        OffsetDeleteRequest::default()
                            .with_group_id(GroupId(StrBytes::from_static_str("standalone"))),
                        version,
                    )
                    .await
                    .map(|response| assert_eq!(response.error_code, 0)),
                ApiKey::OffsetForLeaderEpoch => {
                    use kafka_protocol::messages::offset_for_leader_epoch_request::{
                        OffsetForLeaderPartition, OffsetForLeaderTopic,
                    };
                    let epoch = broker
                        .broker
                        .replicas
                        .partition(&ferrolog::log::TopicPartition::new("all-versions", 0))
                        .unwrap()
                        .with_log(|log| (log.leader_epoch(), log.log_end_offset()));
                    let ask = |leader_epoch: i32, current_leader_epoch: i32| {
                        OffsetForLeaderEpochRequest::default()
                            .with_replica_id(BrokerId(-1))
                            .with_topics(vec![
                                OffsetForLeaderTopic::default()
                                    .with_topic(topic_name("all-versions"))
                                    .with_partitions(vec![
                                        OffsetForLeaderPartition::default()
                                            .with_partition(0)
                                            .with_current_leader_epoch(current_leader_epoch)
                                            .with_leader_epoch(leader_epoch),
                                    ]),
                            ])
                    };
                    let current = client.send(ask(epoch.0, -1), version).await.map(|response| {
                        let answer = &response.topics[0].partitions[0];
                        assert_eq!(answer.error_code, 0);
                        // The current epoch ends at the log end.
                        assert_eq!((answer.leader_epoch, answer.end_offset), epoch);
                    });
                    let stale = client
                        .send(ask(epoch.0, epoch.0 + 1), version)
                        .await
                        .map(|response| {
                            let answer = &response.topics[0].partitions[0];
                            assert_eq!(
                                answer.error_code,
                                kafka_protocol::ResponseError::UnknownLeaderEpoch.code()
                            );
                        });
                    current.and(stale)
                }
                ApiKey::DescribeQuorum => {
                    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
                    let request = DescribeQuorumRequest::default().with_topics(vec![
                        TopicData::default()
                            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
                            .with_partitions(vec![PartitionData::default().with_partition_index(0)]),
                    ]);
                    client.send(request, version).await.map(|response| {
                        let partition = &response.topics[0].partitions[0];
                        assert_eq!(partition.error_code, 0);
                        // A lone node is the whole quorum and its leader.
                        assert_eq!(*partition.leader_id, 0);
                        assert!(partition.leader_epoch >= 1);
                        assert_eq!(partition.current_voters.len(), 1);
                        assert_eq!(
                            partition.current_voters[0].log_end_offset,
                            partition.high_watermark
                        );
                    })
                }
                // On a PLAINTEXT listener there is no SASL state to be in.
                ApiKey::SaslHandshake => client
                    .send(
                        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
                        version,
                    )
                    .await
                    .map(|response| assert_eq!(response.error_code, 34, "ILLEGAL_SASL_STATE")),
                // Answered, then the connection is closed: use one of its own.
                ApiKey::SaslAuthenticate => broker
                    .client()
                    .await
                    .send(SaslAuthenticateRequest::default(), version)
                    .await
                    .map(|response| assert_eq!(response.error_code, 34, "ILLEGAL_SASL_STATE")),
                ApiKey::DescribeUserScramCredentials => client
                    .send(DescribeUserScramCredentialsRequest::default(), version)
                    .await
                    .map(|response| {
                        assert_eq!(response.error_code, 0);
                        assert!(response.results.is_empty());
                    }),
                ApiKey::AlterUserScramCredentials => client
                    .send(AlterUserScramCredentialsRequest::default(), version)
                    .await
                    .map(|response| assert!(response.results.is_empty())),
                ApiKey::AlterClientQuotas => {
                    use alter_client_quotas_request::{EntityData, EntryData, OpData};
                    let entry = |entity_type: &'static str, name: &'static str| {
                        EntryData::default()
                            .with_entity(vec![
                                EntityData::default()
                                    .with_entity_type(StrBytes::from_static_str(entity_type))
                                    .with_entity_name(Some(StrBytes::from_static_str(name))),
                            ])
                            .with_ops(vec![
                                OpData::default()
                                    .with_key(StrBytes::from_static_str("producer_byte_rate"))
                                    .with_value(1e9),
                            ])
                    };
                    client
                        .send(
                            AlterClientQuotasRequest::default()
                                .with_entries(vec![entry("client-id", "proto"), entry("ip", "10.0.0.1")]),
                            version,
                        )
                        .await
                        .map(|response| {
                            let codes: Vec<i16> = response.entries.iter().map(|e| e.error_code).collect();
                            assert_eq!(codes, vec![0, 42], "set, and an unsupported entity type refused");
                        })
                }
                ApiKey::DescribeClientQuotas => {
                    use alter_client_quotas_request::{EntityData, EntryData, OpData};
                    let set = AlterClientQuotasRequest::default().with_entries(vec![
                        EntryData::default()
                            .with_entity(vec![
                                EntityData::default()
                                    .with_entity_type(StrBytes::from_static_str("user"))
                                    .with_entity_name(None),
                            ])
                            .with_ops(vec![
                                OpData::default()
                                    .with_key(StrBytes::from_static_str("consumer_byte_rate"))
                                    .with_value(2048.0),
                            ]),
                    ]);
                    client.send(set.clone(), 0).await.expect("AlterClientQuotas v0");
                    let component = describe_client_quotas_request::ComponentData::default()
                        .with_entity_type(StrBytes::from_static_str("user"))
                        .with_match_type(1);
                    client
                        .send(
                            DescribeClientQuotasRequest::default()
                                .with_components(vec![component])
                                .with_strict(true),
                            version,
                        )
                        .await
                        .map(|response| {
                            assert_eq!(response.error_code, 0);
                            let entries = response.entries.expect("entries");
                            assert_eq!(entries.len(), 1, "the default user only");
                            assert_eq!(entries[0].entity[0].entity_name, None);
                            assert_eq!(entries[0].values[0].value, 2048.0);
                        })
                        .and({
                            // Removed again: the quota would throttle the later fetches.
                            let mut remove = set;
                            remove.entries[0].ops[0].remove = true;
                            client.send(remove, 0).await.map(|_| ())
                        })
                }
                // Without an authorizer, ACL requests get SECURITY_DISABLED.
                ApiKey::DescribeAcls => client
                    .send(
                        DescribeAclsRequest::default().with_resource_type_filter(1),
                        version,
                    )
                    .await
                    .map(|response| assert_eq!(response.error_code, 54)),
                ApiKey::CreateAcls => client
                    .send(
                        CreateAclsRequest::default().with_creations(vec![
                            create_acls_request::AclCreation::default()
                                .with_resource_type(2)
                                .with_resource_name(StrBytes::from_static_str("t"))
                                .with_principal(StrBytes::from_static_str("User:a"))
                                .with_host(StrBytes::from_static_str("*"))
                                .with_operation(3)
                                .with_permission_type(3),
                        ]),
                        version,
                    )
                    .await
                    .map(|response| assert_eq!(response.results[0].error_code, 54)),
                ApiKey::DeleteAcls => client
                    .send(
                        DeleteAclsRequest::default()
                            .with_filters(vec![delete_acls_request::DeleteAclsFilter::default()]),
                        version,
                    )
                    .await
                    .map(|response| assert_eq!(response.filter_results[0].error_code, 54)),
                ApiKey::DescribeLogDirs => client
                    .send(DescribeLogDirsRequest::default().with_topics(None), version)
                    .await
                    .map(|response| {
                        assert_eq!(response.error_code, 0);
                        assert_eq!(response.results.len(), 1, "one log dir");
                        let dir = &response.results[0];
                        let topic = dir
                            .topics
                            .iter()
                            .find(|topic| topic.name.0.as_str() == "all-versions")
                            .expect("the topic's partition is listed");
                        assert_eq!(topic.partitions[0].partition_index, 0);
                        assert!(topic.partitions[0].partition_size > 0, "Produce ran first");
                        assert_eq!(topic.partitions[0].offset_lag, 0);
                        if version >= 4 {
                            assert!(dir.total_bytes > 0 && (0..=dir.total_bytes).contains(&dir.usable_bytes));
                        }
                    }),
                ApiKey::AlterConfigs => {
                    use kafka_protocol::messages::alter_configs_request::{
                        AlterConfigsResource, AlterableConfig,
                    };
                    let request = AlterConfigsRequest::default().with_resources(vec![
                        AlterConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(StrBytes::from_static_str("all-versions"))
                            .with_configs(vec![
                                AlterableConfig::default()
                                    .with_name(StrBytes::from_static_str("retention.ms"))
                                    .with_value(Some(StrBytes::from_static_str("86400000"))),
                            ]),
                        AlterConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(StrBytes::from_static_str("no-such-topic")),
                    ]);
                    client.send(request, version).await.map(|response| {
                        assert_eq!(response.responses[0].error_code, 0);
                        assert_eq!(response.responses[1].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
                    })
                }
                ApiKey::DescribeProducers => {
                    use kafka_protocol::messages::describe_producers_request::TopicRequest;
                    let request = DescribeProducersRequest::default().with_topics(vec![
                        TopicRequest::default()
                            .with_name(TopicName(StrBytes::from_static_str("all-versions")))
                            .with_partition_indexes(vec![0, 7]),
                    ]);
                    client.send(request, version).await.map(|response| {
                        let partitions = &response.topics[0].partitions;
                        assert_eq!(partitions[0].error_code, 0);
                        assert_eq!(partitions[1].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
                    })
                }
                ApiKey::DescribeCluster => client
                    .send(
                        DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
                        version,
                    )
                    .await
                    .map(|response| {
                        assert_eq!(response.error_code, 0);
                        assert!(!response.cluster_id.is_empty());
                        assert_eq!(response.brokers.len(), 1);
                        assert_eq!(*response.brokers[0].broker_id, 0);
                        assert_eq!(*response.controller_id, 0);
                        // No authorizer: every cluster operation is allowed.
                        assert_eq!(response.cluster_authorized_operations, 0b1_1111_1010_0000);
                    }),
                ApiKey::DeleteRecords => {
                    // v0 deletes below 1, v1 below 2, v2 up to the high watermark (-1).
                    let offset = if version < 2 { version as i64 + 1 } else { -1 };
                    let request = DeleteRecordsRequest::default()
                        .with_timeout_ms(5000)
                        .with_topics(vec![
                            delete_records_request::DeleteRecordsTopic::default()
                                .with_name(topic_name("all-versions"))
                                .with_partitions(vec![
                                    delete_records_request::DeleteRecordsPartition::default()
                                        .with_partition_index(0)
                                        .with_offset(offset),
                                ]),
                        ]);
                    let end = broker
                        .broker
                        .replicas
                        .partition(&ferrolog::log::TopicPartition::new("all-versions", 0))
                        .unwrap()
                        .with_log(|log| log.high_watermark());
                    client.send(request, version).await.map(|response| {
                        let partition = &response.topics[0].partitions[0];
                        assert_eq!(partition.error_code, 0, "v{version}");
                        let expected = if offset == -1 { end } else { offset };
                        assert_eq!(partition.low_watermark, expected, "v{version}");
                    })
                }
                ApiKey::DescribeTopicPartitions => {
                    let request = DescribeTopicPartitionsRequest::default()
                        .with_topics(vec![
                            describe_topic_partitions_request::TopicRequest::default()
                                .with_name(topic_name("all-versions")),
                        ])
                        .with_response_partition_limit(2000);
                    client.send(request, version).await.map(|response| {
                        let topic = &response.topics[0];
                        assert_eq!(topic.error_code, 0, "v{version}");
                        assert_eq!(topic.partitions.len(), 1, "v{version}");
                        assert_eq!(*topic.partitions[0].leader_id, 0, "v{version}");
                        assert!(response.next_cursor.is_none(), "v{version}");
                    })
                }
                ApiKey::ElectLeaders => {
                    // The only replica leads: preferred (v0+) and unclean (v1+) are not needed.
                    let request = ElectLeadersRequest::default()
                        .with_election_type(if version >= 1 { 1 } else { 0 })
                        .with_timeout_ms(5000)
                        .with_topic_partitions(Some(vec![
                            elect_leaders_request::TopicPartitions::default()
                                .with_topic(topic_name("all-versions"))
                                .with_partitions(vec![0, 9]),
                        ]));
                    let named = client.send(request, version).await.map(|response| {
                        assert_eq!(response.error_code, 0, "v{version}");
                        let results = &response.replica_election_results[0].partition_result;
                        let codes: Vec<(i32, i16)> =
                            results.iter().map(|r| (r.partition_id, r.error_code)).collect();
                        assert_eq!(codes, vec![(0, 84), (9, 3)], "v{version}");
                    });
                    // Every partition: those that needed nothing are left out.
                    let all = ElectLeadersRequest::default().with_timeout_ms(5000);
                    named.and(client.send(all, version).await.map(|response| {
                        assert!(response.replica_election_results.is_empty(), "v{version}");
                    }))
                }
                ApiKey::AlterReplicaLogDirs => {
                    // Into the log dir it is in (nothing to do), and into one that is not
                    // a log dir.
                    let here = broker.dir.path().display().to_string();
                    let dir = |path: String| {
                        alter_replica_log_dirs_request::AlterReplicaLogDir::default()
                            .with_path(StrBytes::from_string(path))
                            .with_topics(vec![
                                alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default()
                                    .with_name(topic_name("all-versions"))
                                    .with_partitions(vec![0]),
                            ])
                    };
                    let request = AlterReplicaLogDirsRequest::default()
                        .with_dirs(vec![dir(here), dir("/nonexistent-log-dir".to_string())]);
                    client.send(request, version).await.map(|response| {
                        let codes: Vec<i16> = response
                            .results
                            .iter()
                            .map(|topic| topic.partitions[0].error_code)
                            .collect();
                        assert_eq!(codes, vec![0, 57], "v{version}");
                    })
                }
                ApiKey::AlterPartitionReassignments => {
                    // One broker: the same replicas (nothing to do), an unknown broker,
                    // a cancel with nothing under way; from v1, a refused change of the
                    // replication factor.
                    let id = broker.broker.config.node_id;
                    let partition = |replicas: Option<Vec<i32>>| {
                        alter_partition_reassignments_request::ReassignableTopic::default()
                            .with_name(topic_name("all-versions"))
                            .with_partitions(vec![
                                alter_partition_reassignments_request::ReassignablePartition::default()
                                    .with_replicas(
                                        replicas.map(|ids| ids.into_iter().map(BrokerId).collect()),
                                    ),
                            ])
                    };
                    let mut topics = vec![
                        partition(Some(vec![id])),
                        partition(Some(vec![99])),
                        partition(None),
                    ];
                    let mut expected = vec![0, 39, 85];
                    if version >= 1 {
                        topics.push(partition(Some(vec![id, 99])));
                        expected.push(38);
                    }
                    let request = AlterPartitionReassignmentsRequest::default()
                        .with_timeout_ms(5000)
                        .with_allow_replication_factor_change(version == 0)
                        .with_topics(topics);
                    client.send(request, version).await.map(|response| {
                        assert_eq!(response.error_code, 0, "v{version}");
                        let mut codes: Vec<i16> = response
                            .responses
                            .iter()
                            .flat_map(|topic| topic.partitions.iter().map(|p| p.error_code))
                            .collect();
                        codes.sort();
                        expected.sort();
                        assert_eq!(codes, expected, "v{version}");
                    })
                }
                ApiKey::ListPartitionReassignments => {
                    let request = ListPartitionReassignmentsRequest::default().with_timeout_ms(5000);
                    client.send(request, version).await.map(|response| {
                        assert_eq!(response.error_code, 0, "v{version}");
                        assert!(response.topics.is_empty(), "v{version}: nothing under way");
                    })
                }
                ApiKey::AddPartitionsToTxn
                | ApiKey::AddOffsetsToTxn
                | ApiKey::EndTxn
                | ApiKey::WriteTxnMarkers
                | ApiKey::TxnOffsetCommit
                | ApiKey::DescribeTransactions
                | ApiKey::ListTransactions => protocol_txn::check(&mut client, *api_key, version).await,
                ApiKey::ListConfigResources => {
                    let types = if version >= 1 { vec![2, 4] } else { vec![] };
                    let request = ListConfigResourcesRequest::default().with_resource_types(types);
                    client.send(request, version).await.map(|response| {
                        assert_eq!(response.error_code, 0, "v{version}");
                        let names: Vec<(String, i8)> = response
                            .config_resources
                            .iter()
                            .map(|resource| (resource.resource_name.to_string(), resource.resource_type))
                            .collect();
                        if version == 0 {
                            assert!(
                                names.is_empty(),
                                "v0 lists client metrics resources only: {names:?}"
                            );
                        } else {
                            assert!(names.contains(&("all-versions".to_string(), 2)), "{names:?}");
                            assert!(names.contains(&("0".to_string(), 4)), "{names:?}");
                            assert!(names.iter().all(|(_, kind)| [2, 4].contains(kind)), "{names:?}");
                        }
                    })
                }
                ApiKey::ConsumerGroupHeartbeat
                | ApiKey::ConsumerGroupDescribe
                | ApiKey::ShareGroupHeartbeat
                | ApiKey::ShareGroupDescribe
                | ApiKey::ShareFetch
                | ApiKey::ShareAcknowledge => {
                    protocol_groups::check(&mut client, *api_key, version, topic_id).await
                }
                ApiKey::InitializeShareGroupState
                | ApiKey::ReadShareGroupState
                | ApiKey::WriteShareGroupState
                | ApiKey::DeleteShareGroupState
                | ApiKey::ReadShareGroupStateSummary => {
                    protocol_groups::share_state::check(&mut client, *api_key, version, topic_id).await
                }
                ApiKey::DescribeShareGroupOffsets
                | ApiKey::AlterShareGroupOffsets
                | ApiKey::DeleteShareGroupOffsets => {
                    protocol_groups::share_offsets::check(&mut client, *api_key, version, topic_id).await
                }
                other => panic!("no test for {other:?}"),
            };
            outcome.unwrap_or_else(|error| panic!("{api_key:?} v{version}: {error}"));
        }
    }
}

#[tokio::test]
async fn produce_then_fetch_returns_the_same_batches_with_offsets() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "round-trip", 2, &[]).await;
    for (index, compression) in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]
    .into_iter()
    .enumerate()
    {
        let batch = record_batch(10, compression, 1000);
        let response = client
            .send(produce_request("round-trip", 1, batch.clone(), -1), 9)
            .await
            .unwrap();
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, 0);
        assert_eq!(partition.base_offset, index as i64 * 10);
        let fetched = client
            .send(fetch_request("round-trip", 1, index as i64 * 10), 11)
            .await
            .unwrap();
        let records = fetched.responses[0].partitions[0].records.clone().unwrap();
        // Stored as sent: identical except the stamped base offset and leader epoch.
        assert_eq!(records.len(), batch.len());
        let (sent, stored) = (split_batches(&batch), split_batches(&records));
        assert_eq!(sent.len(), stored.len());
        for (sent, stored) in sent.iter().zip(&stored) {
            assert_eq!(&sent[8..12], &stored[8..12]);
            assert_eq!(&sent[16..], &stored[16..]);
        }
        assert_eq!(
            i64::from_be_bytes(records[..8].try_into().unwrap()),
            index as i64 * 10
        );
        let mut buf = records.clone();
        let decoded: Vec<_> = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf)
            .unwrap()
            .into_iter()
            .flat_map(|set| set.records)
            .collect();
        assert_eq!(decoded.len(), 10);
        assert_eq!(decoded[3].value.as_deref(), Some(&b"value-3"[..]));
        assert_eq!(decoded[3].offset, index as i64 * 10 + 3);
    }
    // Past the end: OFFSET_OUT_OF_RANGE.
    let fetched = client
        .send(fetch_request("round-trip", 1, 1000), 11)
        .await
        .unwrap();
    assert_eq!(fetched.responses[0].partitions[0].error_code, 1);
}

#[tokio::test]
async fn corrupt_and_oversized_batches_get_error_codes() {
    let broker = TestBroker::start(&[("message.max.bytes", "2000")]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "checks", 1, &[]).await;
    let mut corrupt = record_batch(3, Compression::None, 1).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let response = client
        .send(produce_request("checks", 0, Bytes::from(corrupt), 1), 9)
        .await
        .unwrap();
    assert_eq!(
        response.responses[0].partition_responses[0].error_code, 2,
        "CORRUPT_MESSAGE"
    );
    let big = large_batch(1, 3000);
    assert!(big.len() > 2000);
    let response = client
        .send(produce_request("checks", 0, big, 1), 9)
        .await
        .unwrap();
    assert_eq!(
        response.responses[0].partition_responses[0].error_code, 10,
        "MESSAGE_TOO_LARGE"
    );
    let response = client
        .send(
            produce_request("nope", 0, record_batch(1, Compression::None, 1), 1),
            9,
        )
        .await;
    // Auto-creation happens through Metadata, not Produce.
    assert_eq!(
        response.unwrap().responses[0].partition_responses[0].error_code,
        3
    );
    let response = client
        .send(
            produce_request("checks", 0, record_batch(1, Compression::None, 1), 5),
            9,
        )
        .await
        .unwrap();
    assert_eq!(
        response.responses[0].partition_responses[0].error_code, 21,
        "INVALID_REQUIRED_ACKS"
    );
}

#[tokio::test]
async fn acks_all_is_refused_below_min_insync_replicas() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    let request = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(topic_name("strict"))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(vec![
                create_topics_request::CreatableTopicConfig::default()
                    .with_name(StrBytes::from_static_str("min.insync.replicas"))
                    .with_value(Some(StrBytes::from_static_str("2"))),
            ]),
    ]);
    assert_eq!(client.send(request, 7).await.unwrap().topics[0].error_code, 0);
    let batch = record_batch(1, Compression::None, 1);
    let response = client
        .send(produce_request("strict", 0, batch.clone(), -1), 9)
        .await
        .unwrap();
    assert_eq!(
        response.responses[0].partition_responses[0].error_code, 19,
        "NOT_ENOUGH_REPLICAS"
    );
    let response = client
        .send(produce_request("strict", 0, batch, 1), 9)
        .await
        .unwrap();
    assert_eq!(
        response.responses[0].partition_responses[0].error_code, 0,
        "acks=1 is fine"
    );
}

#[tokio::test]
async fn bad_frames_close_only_their_connection() {
    let broker = TestBroker::start(&[("socket.request.max.bytes", "1048576")]).await;
    let mut healthy = broker.client().await;
    // An oversized frame: the length prefix alone is enough to refuse it.
    let mut oversized = broker.client().await;
    oversized
        .stream
        .write_all(&(10 * 1024 * 1024i32).to_be_bytes())
        .await
        .unwrap();
    assert!(oversized.read_frame().await.is_err(), "connection must be closed");
    // Random garbage: some closed connection, no panic.
    let mut garbage = broker.client().await;
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = garbage.stream.write_all(&bytes).await;
    let _ = garbage.read_frame().await;
    // A well-sized frame with an unknown API key.
    let mut unknown = broker.client().await;
    unknown
        .stream
        .write_all(&[0, 0, 0, 8, 0x7f, 0x7f, 0, 0, 0, 0, 0, 1])
        .await
        .unwrap();
    let frame = unknown.read_frame().await.unwrap();
    assert_eq!(
        &frame[4..6],
        &35i16.to_be_bytes(),
        "UNSUPPORTED_VERSION before closing"
    );
    assert!(unknown.read_frame().await.is_err());
    // The broker still serves everyone else.
    let response = healthy.send(MetadataRequest::default(), 12).await.unwrap();
    assert_eq!(response.brokers.len(), 1);
    let mut fresh = broker.client().await;
    assert!(fresh.send(ApiVersionsRequest::default(), 3).await.is_ok());
}

#[tokio::test]
async fn fetch_long_polls_until_data_arrives() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "poll", 1, &[]).await;
    let mut waiting = broker.client().await;
    let fetch = tokio::spawn(async move {
        let request = fetch_request("poll", 0, 0)
            .with_max_wait_ms(30_000)
            .with_min_bytes(1);
        waiting.send(request, 12).await.unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!fetch.is_finished(), "fetch must wait for data");
    client
        .send(
            produce_request("poll", 0, record_batch(1, Compression::None, 1), 1),
            9,
        )
        .await
        .unwrap();
    let response = tokio::time::timeout(std::time::Duration::from_secs(10), fetch)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !response.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn data_topics_and_configs_survive_restart() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "durable", 1, &[]).await;
    for _ in 0..5 {
        client
            .send(
                produce_request("durable", 0, record_batch(4, Compression::Lz4, 7), 1),
                9,
            )
            .await
            .unwrap();
    }
    drop(client);
    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, &[]).await;
    let mut client = broker.client().await;
    let fetched = client.send(fetch_request("durable", 0, 8), 11).await.unwrap();
    let partition = &fetched.responses[0].partitions[0];
    assert_eq!(partition.high_watermark, 20);
    let mut buf = partition.records.clone().unwrap();
    let decoded = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf).unwrap();
    assert_eq!(decoded[0].records[0].offset, 8);
}

#[tokio::test]
async fn describe_cluster_answers_for_broker_endpoints_only() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    for version in 1..=2 {
        let response = client
            .send(DescribeClusterRequest::default().with_endpoint_type(2), version)
            .await
            .unwrap();
        assert_eq!(response.error_code, 114, "MISMATCHED_ENDPOINT_TYPE");
        assert!(response.brokers.is_empty());
    }
    // Authorized operations only when asked.
    let response = client.send(DescribeClusterRequest::default(), 0).await.unwrap();
    assert_eq!(response.cluster_authorized_operations, i32::MIN);
}
