//! ListOffsets (key 2): earliest (-2), latest (-1), max timestamp (-3), earliest local
//! (-4), latest tiered (-5, none here) and by timestamp through the time index. Latest
//! is the high watermark, or under isolation_level=READ_COMMITTED (v2+) the last
//! stable offset.

use super::{RequestContext, check_leader_epoch, error_code};
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub fn handle(ctx: &RequestContext<'_>, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let read_committed = ctx.version >= 2 && request.isolation_level == 1;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let authorized = ctx.allowed(Operation::Describe, ResourceType::Topic, &topic.name);
            let partitions = topic
                .partitions
                .iter()
                .map(|wanted| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(wanted.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    if !authorized {
                        return response.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let partition = match ctx
                        .broker
                        .replicas
                        .led_partition(&topic.name, wanted.partition_index)
                    {
                        Ok(partition) => partition,
                        Err(code) => return response.with_error_code(code.code()),
                    };
                    partition.with_log(|log| {
                        let epoch = log.leader_epoch();
                        if let Err(code) = check_leader_epoch(wanted.current_leader_epoch, epoch) {
                            return response.with_error_code(code.code());
                        }
                        // The leader epoch field exists from v4 on.
                        let response = if ctx.version >= 4 {
                            response.with_leader_epoch(epoch)
                        } else {
                            response
                        };
                        let found = match wanted.timestamp {
                            LATEST if read_committed => Ok(Some((log.last_stable_offset(), -1))),
                            LATEST => Ok(Some((log.high_watermark(), -1))),
                            EARLIEST | EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1))),
                            LATEST_TIERED => Ok(None),
                            MAX_TIMESTAMP => log.max_timestamp_offset(),
                            timestamp if timestamp >= 0 => log.offset_for_timestamp(timestamp),
                            _ => return response.with_error_code(error_code::INVALID_REQUEST),
                        };
                        match found {
                            Ok(Some((offset, timestamp))) => {
                                response.with_offset(offset).with_timestamp(timestamp)
                            }
                            Ok(None) => response,
                            Err(error) => response.with_error_code(error.code()),
                        }
                    })
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
