//! The framing of a ShareFetch response around record data that stays in segment
//! files, as `fetch_frame.rs` does for Fetch: every field is encoded in memory, each
//! partition's record bytes are a [`Chunk::File`] range sent from the page cache.
//! Laid end to end, the chunks are byte for byte what the `kafka-protocol` crate
//! encodes with the records inline (checked by the test below).
//!
//! Layout (v1, flexible): `size i32 | correlation_id i32 | tagged 0 |
//!  throttle_time_ms i32 | error_code i16 | error_message compact nullable string |
//!  acquisition_lock_timeout_ms i32 | responses: (topic_id uuid, partitions:
//!  (partition_index .. current_leader, records compact bytes, RECORDS,
//!  acquired_records, tagged) tagged 0) | node_endpoints | tagged 0`

use super::Chunk;
use super::fetch_frame::{patch_size, put_unsigned_varint};
use crate::log::segment::FileSlice;
use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::ShareFetchResponse;
use kafka_protocol::protocol::Encodable;

/// A share fetch response whose file-backed partitions carry `records: None`, with
/// the file range of each by (topic index, partition index).
pub struct ShareFetchReply {
    pub response: ShareFetchResponse,
    pub slices: Vec<((usize, usize), FileSlice)>,
}

/// Frames `reply` as chunks: memory for everything but record data, file ranges for it.
pub fn encode(version: i16, correlation_id: i32, reply: ShareFetchReply) -> anyhow::Result<Vec<Chunk>> {
    let ShareFetchReply { response, slices } = reply;
    anyhow::ensure!(
        response.error_message.is_none()
            && response.node_endpoints.is_empty()
            && response.unknown_tagged_fields.is_empty(),
        "zero-copy share fetch framing writes no error message, endpoints or tagged fields"
    );
    let mut chunks = Vec::new();
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0); // the size, patched below
    buf.put_i32(correlation_id);
    buf.put_u8(0); // response header v1: no tagged fields
    buf.put_i32(response.throttle_time_ms);
    buf.put_i16(response.error_code);
    put_unsigned_varint(&mut buf, 0); // null error message
    buf.put_i32(response.acquisition_lock_timeout_ms);
    put_unsigned_varint(&mut buf, response.responses.len() as u32 + 1);
    for (topic_index, topic) in response.responses.into_iter().enumerate() {
        anyhow::ensure!(topic.unknown_tagged_fields.is_empty(), "no topic tagged fields");
        buf.put_slice(topic.topic_id.as_bytes());
        put_unsigned_varint(&mut buf, topic.partitions.len() as u32 + 1);
        for (partition_index, partition) in topic.partitions.into_iter().enumerate() {
            let slice = slices
                .iter()
                .find(|((t, p), _)| *t == topic_index && *p == partition_index)
                .map(|(_, slice)| slice.clone());
            let Some(slice) = slice else {
                partition.encode(&mut buf, version)?;
                continue;
            };
            anyhow::ensure!(
                partition.records.is_none(),
                "a file-backed partition has inline records"
            );
            // The fields before `records` are those of the same partition with no
            // acquired records and no tagged fields, less its last three bytes (null
            // records, empty array, empty tagged section).
            let mut bare = partition.clone();
            bare.acquired_records.clear();
            bare.unknown_tagged_fields.clear();
            let prefix_len = bare.compute_size(version)? - 3;
            let mut encoded = BytesMut::new();
            partition.encode(&mut encoded, version)?;
            buf.put_slice(&encoded[..prefix_len]);
            put_unsigned_varint(&mut buf, u32::try_from(slice.len)? + 1);
            chunks.push(Chunk::Bytes(buf.split().freeze()));
            chunks.push(Chunk::File(slice));
            buf.put_slice(&encoded[prefix_len + 1..]);
        }
        buf.put_u8(0); // topic tagged fields
    }
    put_unsigned_varint(&mut buf, 1); // no node endpoints
    buf.put_u8(0); // top-level tagged fields
    chunks.push(Chunk::Bytes(buf.split().freeze()));
    patch_size(&mut chunks)?;
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::ResponseHeader;
    use kafka_protocol::messages::share_fetch_response::{
        AcquiredRecords, LeaderIdAndEpoch, PartitionData, ShareFetchableTopicResponse,
    };
    use std::io::Write;
    use std::sync::Arc;

    #[test]
    fn chunks_equal_the_crate_encoding() {
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..2000u32).map(|i| (i * 13) as u8).collect();
        file.write_all(&data).unwrap();
        let file = Arc::new(file);
        let partition = |index: i32, records: Option<Bytes>| {
            PartitionData::default()
                .with_partition_index(index)
                .with_acknowledge_error_code(if index == 1 { 121 } else { 0 })
                .with_current_leader(LeaderIdAndEpoch::default().with_leader_id(3).with_leader_epoch(7))
                .with_records(records)
                .with_acquired_records(vec![
                    AcquiredRecords::default()
                        .with_first_offset(10)
                        .with_last_offset(19)
                        .with_delivery_count(2),
                ])
        };
        let (position, len) = (100u64, 900u64);
        let inline = Bytes::copy_from_slice(&data[position as usize..(position + len) as usize]);
        let response = |records: Option<Bytes>| {
            ShareFetchResponse::default()
                .with_acquisition_lock_timeout_ms(30_000)
                .with_responses(vec![
                    ShareFetchableTopicResponse::default()
                        .with_topic_id(uuid::Uuid::from_u128(42))
                        .with_partitions(vec![partition(0, records), partition(1, None)]),
                ])
        };
        let reply = ShareFetchReply {
            response: response(None),
            slices: vec![(
                (0, 0),
                FileSlice {
                    file: file.clone(),
                    position,
                    len,
                    records: 10,
                    last_offset: 19,
                },
            )],
        };
        let chunks = encode(1, 77, reply).unwrap();
        let mut framed = Vec::new();
        for chunk in &chunks {
            match chunk {
                Chunk::Bytes(bytes) => framed.extend_from_slice(bytes),
                Chunk::File(slice) => framed.extend(slice.read_to_vec().unwrap()),
            }
        }
        let mut expected = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(77)
            .encode(&mut expected, 1)
            .unwrap();
        response(Some(inline)).encode(&mut expected, 1).unwrap();
        let mut sized = (expected.len() as i32).to_be_bytes().to_vec();
        sized.extend_from_slice(&expected);
        assert_eq!(framed, sized);
    }
}
