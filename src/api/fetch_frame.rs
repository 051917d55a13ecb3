//! The framing of a Fetch response around record data that stays in segment files.
//!
//! The response header, the top-level fields and each partition's fields are encoded in
//! memory; each partition's record bytes are a [`Chunk::File`] range that the server
//! sends straight from the page cache (sendfile) or, on the copying path, reads first.
//! Laid end to end, the chunks are byte for byte what the `kafka-protocol` crate encodes
//! for the same response with the records inline (checked by the tests below).
//!
//! Layout, v4-18 (`flexible` = v12+, which uses compact lengths and tagged fields):
//! `size i32 | correlation_id i32 | [tagged 0] | throttle_time_ms i32 |
//!  [v7+: error_code i16, session_id i32] | topics array:
//!  (name string (v4-12) | topic_id uuid (v13+)) partitions array: (partition fields..
//!  records length, RECORDS, [partition tagged fields]) [topic tagged 0] | [tagged 0]`

use super::Chunk;
use crate::log::segment::FileSlice;
use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::FetchResponse;
use kafka_protocol::protocol::Encodable;

/// A fetch response whose file-backed partitions carry `records: None`, with the file
/// range for each of them by (topic index, partition index).
pub struct FetchReply {
    pub response: FetchResponse,
    pub slices: Vec<((usize, usize), FileSlice)>,
}

pub(super) fn put_unsigned_varint(buf: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

fn put_array_len(buf: &mut BytesMut, len: usize, flexible: bool) {
    if flexible {
        put_unsigned_varint(buf, len as u32 + 1);
    } else {
        buf.put_i32(len as i32);
    }
}

fn put_string(buf: &mut BytesMut, value: &str, flexible: bool) {
    if flexible {
        put_unsigned_varint(buf, value.len() as u32 + 1);
    } else {
        buf.put_i16(value.len() as i16);
    }
    buf.put_slice(value.as_bytes());
}

/// Frames `reply` as chunks: memory for everything but record data, file ranges for it.
pub fn encode(version: i16, correlation_id: i32, reply: FetchReply) -> anyhow::Result<Vec<Chunk>> {
    let flexible = version >= 12;
    let FetchReply { response, slices } = reply;
    let slice_of = |topic: usize, partition: usize| {
        slices
            .iter()
            .find(|((t, p), _)| *t == topic && *p == partition)
            .map(|(_, slice)| slice.clone())
    };
    anyhow::ensure!(
        response.unknown_tagged_fields.is_empty(),
        "zero-copy fetch framing writes no unknown top-level tagged fields"
    );
    // The top-level tagged fields (KIP-951 node endpoints, v16+) as the crate encodes
    // them: after an empty response's fixed fields (throttle, error code, session id,
    // an empty topic array).
    let top_level_tags = if flexible && !response.node_endpoints.is_empty() {
        let mut tail = BytesMut::new();
        FetchResponse::default()
            .with_node_endpoints(response.node_endpoints.clone())
            .encode(&mut tail, version)?;
        tail.split_off(4 + 2 + 4 + 1)
    } else {
        BytesMut::from(&[0u8][..])
    };
    let mut chunks = Vec::new();
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0); // the size, patched below
    buf.put_i32(correlation_id);
    if flexible {
        buf.put_u8(0); // response header v1: no tagged fields
    }
    buf.put_i32(response.throttle_time_ms);
    if version >= 7 {
        buf.put_i16(response.error_code);
        buf.put_i32(response.session_id);
    }
    put_array_len(&mut buf, response.responses.len(), flexible);
    for (topic_index, topic) in response.responses.into_iter().enumerate() {
        if version >= 13 {
            buf.put_slice(topic.topic_id.as_bytes());
        } else {
            put_string(&mut buf, &topic.topic, flexible);
        }
        put_array_len(&mut buf, topic.partitions.len(), flexible);
        for (partition_index, partition) in topic.partitions.into_iter().enumerate() {
            let Some(slice) = slice_of(topic_index, partition_index) else {
                partition.encode(&mut buf, version)?;
                continue;
            };
            anyhow::ensure!(
                partition.records.is_none(),
                "a file-backed partition has inline records"
            );
            // Encode with null records, then put the real length where the null marker
            // was, and the file range between it and the partition's tagged fields.
            let mut encoded = BytesMut::new();
            partition.encode(&mut encoded, version)?;
            let (prefix_len, marker_len) = if flexible {
                (encoded.len() - 1 - tagged_fields_len(&partition, version)?, 1)
            } else {
                (encoded.len() - 4, 4)
            };
            buf.put_slice(&encoded[..prefix_len]);
            if flexible {
                put_unsigned_varint(&mut buf, slice.len as u32 + 1);
            } else {
                buf.put_i32(slice.len as i32);
            }
            chunks.push(Chunk::Bytes(buf.split().freeze()));
            chunks.push(Chunk::File(slice));
            buf.put_slice(&encoded[prefix_len + marker_len..]);
        }
        if flexible {
            buf.put_u8(0); // topic tagged fields
        }
    }
    if flexible {
        buf.put_slice(&top_level_tags);
    }
    chunks.push(Chunk::Bytes(buf.split().freeze()));
    patch_size(&mut chunks)?;
    Ok(chunks)
}

/// Writes the frame's size (everything after its first four bytes, which hold it)
/// into the first chunk.
pub(super) fn patch_size(chunks: &mut [Chunk]) -> anyhow::Result<()> {
    let total: u64 = chunks.iter().map(Chunk::len).sum();
    let size = i32::try_from(total - 4)?;
    if let Some(Chunk::Bytes(first)) = chunks.first_mut() {
        let mut patched = BytesMut::from(&first[..]);
        patched[..4].copy_from_slice(&size.to_be_bytes());
        *first = patched.freeze();
    }
    Ok(())
}

/// Bytes a flexible partition writes after its records field (its tagged fields): the
/// difference to the same partition without tagged fields, whose section is one byte.
fn tagged_fields_len(
    partition: &kafka_protocol::messages::fetch_response::PartitionData,
    version: i16,
) -> anyhow::Result<usize> {
    let mut stripped = partition.clone();
    stripped.diverging_epoch = Default::default();
    stripped.current_leader = Default::default();
    stripped.snapshot_id = Default::default();
    stripped.unknown_tagged_fields.clear();
    Ok(partition.compute_size(version)? - stripped.compute_size(version)? + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::{
        FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
    };
    use kafka_protocol::messages::{ResponseHeader, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use std::io::Write;
    use std::sync::Arc;

    fn materialize(chunks: &[Chunk]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in chunks {
            match chunk {
                Chunk::Bytes(bytes) => out.extend_from_slice(bytes),
                Chunk::File(slice) => out.extend(slice.read_to_vec().unwrap()),
            }
        }
        out
    }

    #[test]
    fn chunks_equal_the_crate_encoding_at_every_version() {
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        file.write_all(&data).unwrap();
        let file = Arc::new(file);
        for version in 4..=18 {
            let partition = |index: i32| {
                PartitionData::default()
                    .with_partition_index(index)
                    .with_high_watermark(100)
                    .with_last_stable_offset(100)
                    .with_log_start_offset(if version >= 5 { 3 } else { -1 })
            };
            let topic_id = uuid::Uuid::from_u128(0x1234_5678_9abc);
            let topic = |name: &str| {
                let topic = FetchableTopicResponse::default();
                if version >= 13 {
                    topic.with_topic_id(topic_id)
                } else {
                    topic.with_topic(TopicName(StrBytes::from_string(name.to_string())))
                }
            };
            let with_leader = |data: PartitionData| {
                if version >= 12 {
                    data.with_current_leader(
                        LeaderIdAndEpoch::default()
                            .with_leader_id(1.into())
                            .with_leader_epoch(4),
                    )
                } else {
                    data
                }
            };
            let slices = [(100u64, 900u64), (0, 17), (1500, 1500)];
            let inline: Vec<Bytes> = slices
                .iter()
                .map(|(position, len)| {
                    Bytes::from(data[*position as usize..(*position + *len) as usize].to_vec())
                })
                .collect();
            // KIP-951 endpoints, a top-level tagged field from v16 on.
            let node_endpoints = if version >= 16 {
                vec![
                    NodeEndpoint::default()
                        .with_node_id(1.into())
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(9093),
                ]
            } else {
                vec![]
            };
            let build = |records: [Option<Bytes>; 3]| {
                let [first, second, third] = records;
                FetchResponse::default()
                    .with_responses(vec![
                        topic("a").with_partitions(vec![
                            partition(0).with_records(first),
                            partition(1).with_error_code(1).with_records(Some(Bytes::new())),
                            with_leader(partition(2)).with_records(second),
                        ]),
                        topic("bb").with_partitions(vec![partition(7).with_records(third)]),
                    ])
                    .with_node_endpoints(node_endpoints.clone())
            };
            let reply = FetchReply {
                response: build([None, None, None]),
                slices: vec![((0, 0), 0), ((0, 2), 1), ((1, 0), 2)]
                    .into_iter()
                    .map(|(key, index)| {
                        let (position, len) = slices[index];
                        (
                            key,
                            FileSlice {
                                file: file.clone(),
                                position,
                                len,
                                records: 0,
                                last_offset: 0,
                            },
                        )
                    })
                    .collect(),
            };
            let chunks = encode(version, 99, reply).unwrap();
            let expected = {
                let response = build([
                    Some(inline[0].clone()),
                    Some(inline[1].clone()),
                    Some(inline[2].clone()),
                ]);
                let mut buf = BytesMut::new();
                buf.put_i32(0);
                let header_version = kafka_protocol::messages::ApiKey::Fetch.response_header_version(version);
                ResponseHeader::default()
                    .with_correlation_id(99)
                    .encode(&mut buf, header_version)
                    .unwrap();
                response.encode(&mut buf, version).unwrap();
                let size = (buf.len() - 4) as i32;
                buf[..4].copy_from_slice(&size.to_be_bytes());
                buf.to_vec()
            };
            assert_eq!(materialize(&chunks), expected, "v{version}");
        }
    }
}
