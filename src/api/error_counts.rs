//! The error codes a response carries, wherever its schema puts them (top level, per
//! topic, per partition, per member), for the errors-by-code metric. Kafka counts the
//! same way (`errorCounts()` of each response); NONE is not counted here.

use kafka_protocol::messages::*;

/// Every error code in a response.
pub trait ErrorCodes {
    fn error_codes(&self, emit: &mut dyn FnMut(i16));
}

macro_rules! error_codes {
    ($($ty:ty => |$r:ident, $emit:ident| $body:expr;)*) => {
        $(impl ErrorCodes for $ty {
            fn error_codes(&self, $emit: &mut dyn FnMut(i16)) {
                let $r = self;
                $body
            }
        })*
    };
}

error_codes! {
    ApiVersionsResponse => |r, emit| emit(r.error_code);
    MetadataResponse => |r, emit| {
        emit(r.error_code);
        for topic in &r.topics {
            emit(topic.error_code);
            topic.partitions.iter().for_each(|p| emit(p.error_code));
        }
    };
    ProduceResponse => |r, emit| for topic in &r.responses {
        topic.partition_responses.iter().for_each(|p| emit(p.error_code));
    };
    ListOffsetsResponse => |r, emit| for topic in &r.topics {
        topic.partitions.iter().for_each(|p| emit(p.error_code));
    };
    CreateTopicsResponse => |r, emit| r.topics.iter().for_each(|t| emit(t.error_code));
    DeleteTopicsResponse => |r, emit| r.responses.iter().for_each(|t| emit(t.error_code));
    CreatePartitionsResponse => |r, emit| r.results.iter().for_each(|t| emit(t.error_code));
    DescribeConfigsResponse => |r, emit| r.results.iter().for_each(|t| emit(t.error_code));
    AlterConfigsResponse => |r, emit| r.responses.iter().for_each(|t| emit(t.error_code));
    IncrementalAlterConfigsResponse => |r, emit| r.responses.iter().for_each(|t| emit(t.error_code));
    InitProducerIdResponse => |r, emit| emit(r.error_code);
    OffsetCommitResponse => |r, emit| for topic in &r.topics {
        topic.partitions.iter().for_each(|p| emit(p.error_code));
    };
    OffsetFetchResponse => |r, emit| {
        emit(r.error_code);
        for topic in &r.topics {
            topic.partitions.iter().for_each(|p| emit(p.error_code));
        }
        for group in &r.groups {
            emit(group.error_code);
            for topic in &group.topics {
                topic.partitions.iter().for_each(|p| emit(p.error_code));
            }
        }
    };
    FindCoordinatorResponse => |r, emit| {
        emit(r.error_code);
        r.coordinators.iter().for_each(|c| emit(c.error_code));
    };
    JoinGroupResponse => |r, emit| emit(r.error_code);
    SyncGroupResponse => |r, emit| emit(r.error_code);
    HeartbeatResponse => |r, emit| emit(r.error_code);
    LeaveGroupResponse => |r, emit| {
        emit(r.error_code);
        r.members.iter().for_each(|m| emit(m.error_code));
    };
    ListGroupsResponse => |r, emit| emit(r.error_code);
    DescribeGroupsResponse => |r, emit| r.groups.iter().for_each(|g| emit(g.error_code));
    ConsumerGroupHeartbeatResponse => |r, emit| emit(r.error_code);
    ConsumerGroupDescribeResponse => |r, emit| r.groups.iter().for_each(|g| emit(g.error_code));
    ShareGroupHeartbeatResponse => |r, emit| emit(r.error_code);
    ShareGroupDescribeResponse => |r, emit| r.groups.iter().for_each(|g| emit(g.error_code));
    ShareFetchResponse => |r, emit| {
        emit(r.error_code);
        for topic in &r.responses {
            topic.partitions.iter().for_each(|p| emit(p.error_code));
        }
    };
    ShareAcknowledgeResponse => |r, emit| {
        emit(r.error_code);
        for topic in &r.responses {
            topic.partitions.iter().for_each(|p| emit(p.error_code));
        }
    };
    InitializeShareGroupStateResponse => |r, emit| for topic in &r.results {
        topic.partitions.iter().for_each(|p| emit(p.error_code));
    };
    ReadShareGroupStateResponse => |r, emit| for topic in &r.results {
        topic.partitions.iter().for_each(|p| emit(p.error_code));
    };
    WriteShareGroupStateResponse => |r, emit| for topic in &r.results {
        topic.partitions.iter().for_each(|p| emit(p.error_code));
    };
    DeleteShareGroupStateResponse => |r, emit| for topic in &r.results {
        topic.partitions.iter().for_each(|p| emit(p.error_code));
    };
    ReadShareGroupStateSummaryResponse => |r, emit| for topic in &r.results {
        topic.partitions.iter().for_each(|p| emit(p.error_code));
    };
    DescribeShareGroupOffsetsResponse => |r, emit| for group in &r.groups {
        emit(group.error_code);
        for topic in &group.topics {
            topic.partitions.iter().for_each(|p| emit(p.error_code));
        }
    };
    AlterShareGroupOffsetsResponse => |r, emit| {
        emit(r.error_code);
        for topic in &r.responses {
            topic.partitions.iter().for_each(|p| emit(p.error_code));
        }
    };
    DeleteShareGroupOffsetsResponse => |r, emit| {
        emit(r.error_code);
        r.responses.iter().for_each(|t| emit(t.error_code));
    };
    DeleteGroupsResponse => |r, emit| r.results.iter().for_each(|g| emit(g.error_code));
    OffsetDeleteResponse => |r, emit| {
        emit(r.error_code);
        for topic in &r.topics {
            topic.partitions.iter().for_each(|p| emit(p.error_code));
        }
    };
    OffsetForLeaderEpochResponse => |r, emit| for topic in &r.topics {
        topic.partitions.iter().for_each(|p| emit(p.error_code));
    };
    DescribeQuorumResponse => |r, emit| {
        emit(r.error_code);
        for topic in &r.topics {
            topic.partitions.iter().for_each(|p| emit(p.error_code));
        }
    };
    DescribeUserScramCredentialsResponse => |r, emit| {
        emit(r.error_code);
        r.results.iter().for_each(|u| emit(u.error_code));
    };
    AlterUserScramCredentialsResponse => |r, emit| r.results.iter().for_each(|u| emit(u.error_code));
    DescribeClientQuotasResponse => |r, emit| emit(r.error_code);
    AlterClientQuotasResponse => |r, emit| r.entries.iter().for_each(|e| emit(e.error_code));
    DescribeAclsResponse => |r, emit| emit(r.error_code);
    CreateAclsResponse => |r, emit| r.results.iter().for_each(|a| emit(a.error_code));
    DeleteAclsResponse => |r, emit| for filter in &r.filter_results {
        emit(filter.error_code);
        filter.matching_acls.iter().for_each(|a| emit(a.error_code));
    };
    DescribeLogDirsResponse => |r, emit| {
        emit(r.error_code);
        r.results.iter().for_each(|d| emit(d.error_code));
    };
    DescribeClusterResponse => |r, emit| emit(r.error_code);
    DescribeProducersResponse => |r, emit| for topic in &r.topics {
        topic.partitions.iter().for_each(|p| emit(p.error_code));
    };
    DeleteRecordsResponse => |r, emit| for topic in &r.topics {
        topic.partitions.iter().for_each(|p| emit(p.error_code));
    };
    DescribeTopicPartitionsResponse => |r, emit| for topic in &r.topics {
        emit(topic.error_code);
        topic.partitions.iter().for_each(|p| emit(p.error_code));
    };
    ElectLeadersResponse => |r, emit| {
        emit(r.error_code);
        for topic in &r.replica_election_results {
            topic.partition_result.iter().for_each(|p| emit(p.error_code));
        }
    };
    AlterPartitionReassignmentsResponse => |r, emit| {
        emit(r.error_code);
        for topic in &r.responses {
            topic.partitions.iter().for_each(|p| emit(p.error_code));
        }
    };
    ListPartitionReassignmentsResponse => |r, emit| emit(r.error_code);
    AlterReplicaLogDirsResponse => |r, emit| for topic in &r.results {
        topic.partitions.iter().for_each(|p| emit(p.error_code));
    };
    FetchResponse => |r, emit| {
        emit(r.error_code);
        for topic in &r.responses {
            topic.partitions.iter().for_each(|p| emit(p.error_code));
        }
    };
    AddPartitionsToTxnResponse => |r, emit| {
        emit(r.error_code);
        for topic in &r.results_by_topic_v3_and_below {
            topic.results_by_partition.iter().for_each(|p| emit(p.partition_error_code));
        }
        for transaction in &r.results_by_transaction {
            for topic in &transaction.topic_results {
                topic.results_by_partition.iter().for_each(|p| emit(p.partition_error_code));
            }
        }
    };
    AddOffsetsToTxnResponse => |r, emit| emit(r.error_code);
    EndTxnResponse => |r, emit| emit(r.error_code);
    WriteTxnMarkersResponse => |r, emit| for marker in &r.markers {
        for topic in &marker.topics {
            topic.partitions.iter().for_each(|p| emit(p.error_code));
        }
    };
    TxnOffsetCommitResponse => |r, emit| for topic in &r.topics {
        topic.partitions.iter().for_each(|p| emit(p.error_code));
    };
    DescribeTransactionsResponse => |r, emit| r.transaction_states.iter().for_each(|t| emit(t.error_code));
    ListTransactionsResponse => |r, emit| emit(r.error_code);
    ListConfigResourcesResponse => |r, emit| emit(r.error_code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_codes_are_all_found() {
        use kafka_protocol::messages::metadata_response::{MetadataResponsePartition, MetadataResponseTopic};
        let response = MetadataResponse::default().with_topics(vec![
            MetadataResponseTopic::default()
                .with_error_code(3)
                .with_partitions(vec![MetadataResponsePartition::default().with_error_code(5)]),
        ]);
        let mut codes = Vec::new();
        response.error_codes(&mut |code| codes.push(code));
        assert_eq!(codes, vec![0, 3, 5]);
    }
}
