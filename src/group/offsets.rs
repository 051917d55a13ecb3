//! The records of `__consumer_offsets`, in Kafka's own schemas.
//!
//! Keys (big-endian, strings as i16 length + UTF-8):
//! - offset commit, version 1: `version i16, group string, topic string, partition i32`
//! - group metadata, version 2: `version i16, group string`
//!
//! Values (a null value is a tombstone: the key is deleted):
//! - offset commit, version 3: `version i16, offset i64, leader_epoch i32,
//!   metadata string, commit_timestamp i64`
//! - group metadata, version 3: `version i16, protocol_type string, generation i32,
//!   protocol nullable string, leader nullable string, current_state_timestamp i64,
//!   members [member_id string, group_instance_id nullable string, client_id string,
//!   client_host string, rebalance_timeout i32, session_timeout i32, subscription bytes,
//!   assignment bytes]`
//!
//! Replaying a partition's records in order rebuilds every group's metadata and offsets.

use super::consumer::records::ConsumerRecord;
use bytes::{Buf, BufMut, Bytes, BytesMut};

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberRecord {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    pub protocol_type: String,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    pub state_timestamp_ms: i64,
    pub members: Vec<MemberRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OffsetsRecord {
    Offset {
        group_id: String,
        topic: String,
        partition: i32,
        value: Option<CommittedOffset>,
    },
    Group {
        group_id: String,
        value: Option<GroupRecord>,
    },
    /// A KIP-848 consumer group's record (types 3 and 5 to 8).
    Consumer(ConsumerRecord),
}

#[derive(Debug, thiserror::Error)]
#[error("malformed __consumer_offsets record: {0}")]
pub struct DecodeError(&'static str);

impl DecodeError {
    pub fn new(what: &'static str) -> Self {
        DecodeError(what)
    }
}

pub(super) fn put_string(buf: &mut BytesMut, value: &str) {
    buf.put_i16(value.len() as i16);
    buf.put_slice(value.as_bytes());
}

fn put_nullable_string(buf: &mut BytesMut, value: Option<&str>) {
    match value {
        Some(value) => put_string(buf, value),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, value: &[u8]) {
    buf.put_i32(value.len() as i32);
    buf.put_slice(value);
}

pub(super) fn need(buf: &Bytes, n: usize) -> Result<(), DecodeError> {
    if buf.remaining() < n {
        Err(DecodeError("truncated"))
    } else {
        Ok(())
    }
}

fn get_i16(buf: &mut Bytes) -> Result<i16, DecodeError> {
    need(buf, 2)?;
    Ok(buf.get_i16())
}

pub(super) fn get_i32(buf: &mut Bytes) -> Result<i32, DecodeError> {
    need(buf, 4)?;
    Ok(buf.get_i32())
}

fn get_i64(buf: &mut Bytes) -> Result<i64, DecodeError> {
    need(buf, 8)?;
    Ok(buf.get_i64())
}

fn get_nullable_string(buf: &mut Bytes) -> Result<Option<String>, DecodeError> {
    let length = get_i16(buf)?;
    if length < 0 {
        return Ok(None);
    }
    need(buf, length as usize)?;
    let bytes = buf.split_to(length as usize);
    String::from_utf8(bytes.to_vec())
        .map(Some)
        .map_err(|_| DecodeError("string is not UTF-8"))
}

pub(super) fn get_string(buf: &mut Bytes) -> Result<String, DecodeError> {
    get_nullable_string(buf)?.ok_or(DecodeError("null string"))
}

fn get_bytes(buf: &mut Bytes) -> Result<Bytes, DecodeError> {
    let length = get_i32(buf)?;
    if length < 0 {
        return Ok(Bytes::new());
    }
    need(buf, length as usize)?;
    Ok(buf.split_to(length as usize))
}

/// Kafka's unsigned varint (compact lengths, tag counts in flexible record values).
pub(super) fn put_uvarint(buf: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

pub(super) fn get_uvarint(buf: &mut Bytes) -> Result<u64, DecodeError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        need(buf, 1)?;
        let byte = buf.get_u8();
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::new("varint too long"))
}

/// Skips a tagged-field section (fields this version does not know).
pub(super) fn skip_tags(buf: &mut Bytes) -> Result<(), DecodeError> {
    let n_tags = get_uvarint(buf)?;
    for _ in 0..n_tags {
        get_uvarint(buf)?;
        let size = get_uvarint(buf)? as usize;
        need(buf, size)?;
        buf.advance(size);
    }
    Ok(())
}

impl OffsetsRecord {
    /// The group this record belongs to (it decides the partition).
    pub fn group_id(&self) -> &str {
        match self {
            OffsetsRecord::Offset { group_id, .. } | OffsetsRecord::Group { group_id, .. } => group_id,
            OffsetsRecord::Consumer(record) => record.group_id(),
        }
    }

    /// The record as (key, value); a None value is a tombstone.
    pub fn encode(&self) -> (Bytes, Option<Bytes>) {
        let mut key = BytesMut::new();
        match self {
            OffsetsRecord::Consumer(record) => record.encode(),
            OffsetsRecord::Offset {
                group_id,
                topic,
                partition,
                value,
            } => {
                key.put_i16(OFFSET_KEY_VERSION);
                put_string(&mut key, group_id);
                put_string(&mut key, topic);
                key.put_i32(*partition);
                let value = value.as_ref().map(|committed| {
                    let mut buf = BytesMut::new();
                    buf.put_i16(OFFSET_VALUE_VERSION);
                    buf.put_i64(committed.offset);
                    buf.put_i32(committed.leader_epoch);
                    put_string(&mut buf, &committed.metadata);
                    buf.put_i64(committed.commit_timestamp_ms);
                    buf.freeze()
                });
                (key.freeze(), value)
            }
            OffsetsRecord::Group { group_id, value } => {
                key.put_i16(GROUP_KEY_VERSION);
                put_string(&mut key, group_id);
                let value = value.as_ref().map(|group| {
                    let mut buf = BytesMut::new();
                    buf.put_i16(GROUP_VALUE_VERSION);
                    put_string(&mut buf, &group.protocol_type);
                    buf.put_i32(group.generation_id);
                    put_nullable_string(&mut buf, group.protocol_name.as_deref());
                    put_nullable_string(&mut buf, group.leader_id.as_deref());
                    buf.put_i64(group.state_timestamp_ms);
                    buf.put_i32(group.members.len() as i32);
                    for member in &group.members {
                        put_string(&mut buf, &member.member_id);
                        put_nullable_string(&mut buf, member.group_instance_id.as_deref());
                        put_string(&mut buf, &member.client_id);
                        put_string(&mut buf, &member.client_host);
                        buf.put_i32(member.rebalance_timeout_ms);
                        buf.put_i32(member.session_timeout_ms);
                        put_bytes(&mut buf, &member.subscription);
                        put_bytes(&mut buf, &member.assignment);
                    }
                    buf.freeze()
                });
                (key.freeze(), value)
            }
        }
    }

    pub fn decode(key: Bytes, value: Option<Bytes>) -> Result<Self, DecodeError> {
        let mut key = key;
        match get_i16(&mut key)? {
            0 | 1 => {
                let group_id = get_string(&mut key)?;
                let topic = get_string(&mut key)?;
                let partition = get_i32(&mut key)?;
                let value = match value {
                    None => None,
                    Some(mut value) => {
                        let version = get_i16(&mut value)?;
                        let offset = get_i64(&mut value)?;
                        let leader_epoch = if version >= 3 { get_i32(&mut value)? } else { -1 };
                        let metadata = get_string(&mut value)?;
                        let commit_timestamp_ms = get_i64(&mut value)?;
                        Some(CommittedOffset {
                            offset,
                            leader_epoch,
                            metadata,
                            commit_timestamp_ms,
                        })
                    }
                };
                Ok(OffsetsRecord::Offset {
                    group_id,
                    topic,
                    partition,
                    value,
                })
            }
            2 => {
                let group_id = get_string(&mut key)?;
                let value = match value {
                    None => None,
                    Some(mut value) => {
                        let version = get_i16(&mut value)?;
                        if !(0..=GROUP_VALUE_VERSION).contains(&version) {
                            return Err(DecodeError("unknown group metadata version"));
                        }
                        let protocol_type = get_string(&mut value)?;
                        let generation_id = get_i32(&mut value)?;
                        let protocol_name = get_nullable_string(&mut value)?;
                        let leader_id = get_nullable_string(&mut value)?;
                        let state_timestamp_ms = if version >= 2 { get_i64(&mut value)? } else { -1 };
                        let count = get_i32(&mut value)?.max(0);
                        let mut members = Vec::with_capacity(count.min(10_000) as usize);
                        for _ in 0..count {
                            let member_id = get_string(&mut value)?;
                            let group_instance_id = if version >= 3 {
                                get_nullable_string(&mut value)?
                            } else {
                                None
                            };
                            let client_id = get_string(&mut value)?;
                            let client_host = get_string(&mut value)?;
                            let rebalance_timeout_ms = if version >= 1 { get_i32(&mut value)? } else { -1 };
                            let session_timeout_ms = get_i32(&mut value)?;
                            let subscription = get_bytes(&mut value)?;
                            let assignment = get_bytes(&mut value)?;
                            members.push(MemberRecord {
                                member_id,
                                group_instance_id,
                                client_id,
                                client_host,
                                rebalance_timeout_ms: if rebalance_timeout_ms < 0 {
                                    session_timeout_ms
                                } else {
                                    rebalance_timeout_ms
                                },
                                session_timeout_ms,
                                subscription,
                                assignment,
                            });
                        }
                        Some(GroupRecord {
                            protocol_type,
                            generation_id,
                            protocol_name,
                            leader_id,
                            state_timestamp_ms,
                            members,
                        })
                    }
                };
                Ok(OffsetsRecord::Group { group_id, value })
            }
            record_type @ 3..=8 => {
                ConsumerRecord::decode(record_type, key, value).map(OffsetsRecord::Consumer)
            }
            _ => Err(DecodeError("unknown key version")),
        }
    }
}

/// The `__consumer_offsets` partition that holds a group (Kafka's rule).
pub use crate::common::topics::partition_for;

/// Encodes records into one uncompressed record batch (offsets assigned on append);
/// `transaction`: the (producer id, epoch) of a transactional offset commit.
pub fn encode_batch(records: &[OffsetsRecord], now_ms: i64, transaction: Option<(i64, i16)>) -> Bytes {
    let pairs: Vec<(Bytes, Option<Bytes>)> = records.iter().map(OffsetsRecord::encode).collect();
    crate::log::internal_batch::encode(&pairs, now_ms, transaction)
}

/// Decodes every record in `batches` (as read from the log), skipping undecodable ones.
pub fn decode_batches(batches: Bytes) -> Vec<OffsetsRecord> {
    let mut buf = batches;
    let Ok(sets) = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf) else {
        tracing::error!("undecodable batch in __consumer_offsets");
        return Vec::new();
    };
    sets.into_iter()
        .flat_map(|set| set.records)
        .filter_map(|record| {
            let key = record.key?;
            match OffsetsRecord::decode(key, record.value) {
                Ok(decoded) => Some(decoded),
                Err(error) => {
                    tracing::warn!(%error, "skipping a __consumer_offsets record");
                    None
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_a_batch() {
        let records = vec![
            OffsetsRecord::Offset {
                group_id: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: Some(CommittedOffset {
                    offset: 42,
                    leader_epoch: 0,
                    metadata: "meta".into(),
                    commit_timestamp_ms: 1000,
                }),
            },
            OffsetsRecord::Offset {
                group_id: "g".into(),
                topic: "t".into(),
                partition: 4,
                value: None,
            },
            OffsetsRecord::Group {
                group_id: "g".into(),
                value: Some(GroupRecord {
                    protocol_type: "consumer".into(),
                    generation_id: 5,
                    protocol_name: Some("range".into()),
                    leader_id: Some("m1".into()),
                    state_timestamp_ms: 99,
                    members: vec![MemberRecord {
                        member_id: "m1".into(),
                        group_instance_id: Some("i1".into()),
                        client_id: "c".into(),
                        client_host: "/127.0.0.1".into(),
                        rebalance_timeout_ms: 30_000,
                        session_timeout_ms: 10_000,
                        subscription: Bytes::from_static(b"sub"),
                        assignment: Bytes::from_static(b"asg"),
                    }],
                }),
            },
            OffsetsRecord::Group {
                group_id: "gone".into(),
                value: None,
            },
        ];
        let batch = encode_batch(&records, 7, None);
        let batches = crate::log::batch::split_and_validate(&batch, usize::MAX).unwrap();
        assert_eq!(batches.len(), 1, "one batch for all records");
        assert_eq!(decode_batches(batch), records);
    }

    #[test]
    fn garbage_records_are_errors_not_panics() {
        assert!(OffsetsRecord::decode(Bytes::from_static(b"\x00\x01\x00\x05ab"), None).is_err());
        assert!(OffsetsRecord::decode(Bytes::from_static(b"\x00\x09"), None).is_err());
        assert!(OffsetsRecord::decode(Bytes::new(), None).is_err());
    }
}
