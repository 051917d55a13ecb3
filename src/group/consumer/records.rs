//! KIP-848 consumer group records in `__consumer_offsets`, in Kafka's schemas.
//!
//! Keys are `version i16` (the record type) then the key fields, strings as i16
//! length + UTF-8:
//! - 3 ConsumerGroupMetadata: `group`
//! - 5 ConsumerGroupMemberMetadata: `group, member_id`
//! - 6 ConsumerGroupTargetAssignmentMetadata: `group`
//! - 7 ConsumerGroupTargetAssignmentMember: `group, member_id`
//! - 8 ConsumerGroupCurrentMemberAssignment: `group, member_id`
//!
//! Values are `version i16` (0) then flexible fields (compact strings and arrays as
//! unsigned varint length + 1, uuids as 16 bytes, a tagged-field section last):
//! - 3: `epoch i32`
//! - 5: `instance_id nullable, rack_id nullable, client_id, client_host,
//!   subscribed_topic_names [string], subscribed_topic_regex nullable,
//!   rebalance_timeout_ms i32, server_assignor nullable`
//! - 6: `assignment_epoch i32`
//! - 7: `topic_partitions [topic_id uuid, partitions [i32]]`
//! - 8: `member_epoch i32, previous_member_epoch i32, state i8, assigned [topic
//!   partitions], pending_revocation [topic partitions]`
//!
//! A null value is a tombstone. Replaying a group's records in order rebuilds it.

use super::assignor::Assignment;
use super::member::{ConsumerMember, MemberState};
use crate::group::offsets::{
    DecodeError, get_i32, get_string, get_uvarint, need, put_string, put_uvarint, skip_tags,
};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

pub const METADATA: i16 = 3;
pub const MEMBER: i16 = 5;
pub const TARGET_METADATA: i16 = 6;
pub const TARGET: i16 = 7;
pub const CURRENT: i16 = 8;

/// A member's durable metadata (record 5).
#[derive(Debug, Clone, PartialEq)]
pub struct MemberMetadata {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
}

impl MemberMetadata {
    pub fn of(member: &ConsumerMember) -> Self {
        MemberMetadata {
            instance_id: member.instance_id.clone(),
            rack_id: member.rack_id.clone(),
            client_id: member.client_id.clone(),
            client_host: member.client_host.clone(),
            subscribed_topic_names: member.subscribed_topic_names.clone(),
            subscribed_topic_regex: member.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: member.rebalance_timeout_ms,
            server_assignor: member.server_assignor.clone(),
        }
    }

    pub fn apply_to(&self, member: &mut ConsumerMember) {
        member.instance_id = self.instance_id.clone();
        member.rack_id = self.rack_id.clone();
        member.client_id = self.client_id.clone();
        member.client_host = self.client_host.clone();
        member.subscribed_topic_names = self.subscribed_topic_names.clone();
        member.subscribed_topic_regex = self.subscribed_topic_regex.clone();
        member.rebalance_timeout_ms = self.rebalance_timeout_ms;
        member.server_assignor = self.server_assignor.clone();
    }
}

/// A member's current assignment (record 8).
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentAssignment {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

impl CurrentAssignment {
    pub fn apply_to(&self, member: &mut ConsumerMember) {
        member.member_epoch = self.member_epoch;
        member.previous_member_epoch = self.previous_member_epoch;
        member.state = self.state;
        member.assigned = self.assigned.clone();
        member.pending_revocation = self.pending_revocation.clone();
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConsumerRecord {
    Metadata {
        group_id: String,
        epoch: Option<i32>,
    },
    Member {
        group_id: String,
        member_id: String,
        value: Option<MemberMetadata>,
    },
    TargetMetadata {
        group_id: String,
        assignment_epoch: Option<i32>,
    },
    Target {
        group_id: String,
        member_id: String,
        value: Option<Assignment>,
    },
    Current {
        group_id: String,
        member_id: String,
        value: Option<CurrentAssignment>,
    },
}

fn put_compact(buf: &mut BytesMut, value: Option<&str>) {
    match value {
        None => put_uvarint(buf, 0),
        Some(value) => {
            put_uvarint(buf, value.len() as u64 + 1);
            buf.put_slice(value.as_bytes());
        }
    }
}

fn put_assignment(buf: &mut BytesMut, assignment: &Assignment) {
    put_uvarint(buf, assignment.len() as u64 + 1);
    for (topic_id, partitions) in assignment {
        buf.put_slice(topic_id.as_bytes());
        put_uvarint(buf, partitions.len() as u64 + 1);
        for partition in partitions {
            buf.put_i32(*partition);
        }
        put_uvarint(buf, 0);
    }
}

/// A compact array's length (None for a null array).
fn get_length(buf: &mut Bytes) -> Result<Option<usize>, DecodeError> {
    let raw = get_uvarint(buf)?;
    if raw == 0 {
        return Ok(None);
    }
    let length = (raw - 1) as usize;
    need(buf, length.min(1))?;
    Ok(Some(length))
}

fn get_compact(buf: &mut Bytes) -> Result<Option<String>, DecodeError> {
    let Some(length) = get_length(buf)? else {
        return Ok(None);
    };
    need(buf, length)?;
    String::from_utf8(buf.split_to(length).to_vec())
        .map(Some)
        .map_err(|_| DecodeError::new("string is not UTF-8"))
}

fn get_assignment(buf: &mut Bytes) -> Result<Assignment, DecodeError> {
    let mut assignment = Assignment::new();
    let n_topics = get_length(buf)?.unwrap_or(0);
    for _ in 0..n_topics {
        need(buf, 16)?;
        let mut id = [0u8; 16];
        buf.copy_to_slice(&mut id);
        let n_partitions = get_length(buf)?.unwrap_or(0);
        need(buf, n_partitions.saturating_mul(4))?;
        let partitions = assignment.entry(Uuid::from_bytes(id)).or_default();
        for _ in 0..n_partitions {
            partitions.insert(buf.get_i32());
        }
        skip_tags(buf)?;
    }
    Ok(assignment)
}

/// A value's version: only 0 is known.
fn value_body(value: Option<Bytes>) -> Result<Option<Bytes>, DecodeError> {
    let Some(mut value) = value else { return Ok(None) };
    need(&value, 2)?;
    if value.get_i16() != 0 {
        return Err(DecodeError::new("unknown consumer group value version"));
    }
    Ok(Some(value))
}

impl ConsumerRecord {
    pub fn group_id(&self) -> &str {
        match self {
            ConsumerRecord::Metadata { group_id, .. }
            | ConsumerRecord::Member { group_id, .. }
            | ConsumerRecord::TargetMetadata { group_id, .. }
            | ConsumerRecord::Target { group_id, .. }
            | ConsumerRecord::Current { group_id, .. } => group_id,
        }
    }

    pub fn current_of(group_id: &str, member: &ConsumerMember) -> Self {
        ConsumerRecord::Current {
            group_id: group_id.to_string(),
            member_id: member.member_id.clone(),
            value: Some(CurrentAssignment {
                member_epoch: member.member_epoch,
                previous_member_epoch: member.previous_member_epoch,
                state: member.state,
                assigned: member.assigned.clone(),
                pending_revocation: member.pending_revocation.clone(),
            }),
        }
    }

    pub fn encode(&self) -> (Bytes, Option<Bytes>) {
        let mut key = BytesMut::new();
        let mut value = BytesMut::new();
        value.put_i16(0);
        let present = match self {
            ConsumerRecord::Metadata { group_id, epoch } => {
                key.put_i16(METADATA);
                put_string(&mut key, group_id);
                epoch.map(|epoch| value.put_i32(epoch)).is_some()
            }
            ConsumerRecord::TargetMetadata {
                group_id,
                assignment_epoch,
            } => {
                key.put_i16(TARGET_METADATA);
                put_string(&mut key, group_id);
                assignment_epoch.map(|epoch| value.put_i32(epoch)).is_some()
            }
            ConsumerRecord::Member {
                group_id,
                member_id,
                value: metadata,
            } => {
                key.put_i16(MEMBER);
                put_string(&mut key, group_id);
                put_string(&mut key, member_id);
                metadata
                    .as_ref()
                    .map(|metadata| {
                        put_compact(&mut value, metadata.instance_id.as_deref());
                        put_compact(&mut value, metadata.rack_id.as_deref());
                        put_compact(&mut value, Some(&metadata.client_id));
                        put_compact(&mut value, Some(&metadata.client_host));
                        put_uvarint(&mut value, metadata.subscribed_topic_names.len() as u64 + 1);
                        for name in &metadata.subscribed_topic_names {
                            put_compact(&mut value, Some(name));
                        }
                        put_compact(&mut value, metadata.subscribed_topic_regex.as_deref());
                        value.put_i32(metadata.rebalance_timeout_ms);
                        put_compact(&mut value, metadata.server_assignor.as_deref());
                    })
                    .is_some()
            }
            ConsumerRecord::Target {
                group_id,
                member_id,
                value: assignment,
            } => {
                key.put_i16(TARGET);
                put_string(&mut key, group_id);
                put_string(&mut key, member_id);
                assignment
                    .as_ref()
                    .map(|assignment| put_assignment(&mut value, assignment))
                    .is_some()
            }
            ConsumerRecord::Current {
                group_id,
                member_id,
                value: current,
            } => {
                key.put_i16(CURRENT);
                put_string(&mut key, group_id);
                put_string(&mut key, member_id);
                current
                    .as_ref()
                    .map(|current| {
                        value.put_i32(current.member_epoch);
                        value.put_i32(current.previous_member_epoch);
                        value.put_i8(current.state.value());
                        put_assignment(&mut value, &current.assigned);
                        put_assignment(&mut value, &current.pending_revocation);
                    })
                    .is_some()
            }
        };
        put_uvarint(&mut value, 0);
        (key.freeze(), present.then(|| value.freeze()))
    }

    /// Decodes a record whose key version (already read) is `record_type`.
    pub fn decode(record_type: i16, mut key: Bytes, value: Option<Bytes>) -> Result<Self, DecodeError> {
        let group_id = get_string(&mut key)?;
        let value = value_body(value)?;
        let record = match record_type {
            METADATA => ConsumerRecord::Metadata {
                group_id,
                epoch: value.map(|mut value| get_i32(&mut value)).transpose()?,
            },
            TARGET_METADATA => ConsumerRecord::TargetMetadata {
                group_id,
                assignment_epoch: value.map(|mut value| get_i32(&mut value)).transpose()?,
            },
            MEMBER => {
                let member_id = get_string(&mut key)?;
                let value = match value {
                    None => None,
                    Some(mut value) => {
                        let instance_id = get_compact(&mut value)?;
                        let rack_id = get_compact(&mut value)?;
                        let client_id = get_compact(&mut value)?.unwrap_or_default();
                        let client_host = get_compact(&mut value)?.unwrap_or_default();
                        let n_names = get_length(&mut value)?.unwrap_or(0);
                        let mut subscribed_topic_names = Vec::with_capacity(n_names.min(1024));
                        for _ in 0..n_names {
                            subscribed_topic_names.push(get_compact(&mut value)?.unwrap_or_default());
                        }
                        let subscribed_topic_regex = get_compact(&mut value)?;
                        let rebalance_timeout_ms = get_i32(&mut value)?;
                        let server_assignor = get_compact(&mut value)?;
                        Some(MemberMetadata {
                            instance_id,
                            rack_id,
                            client_id,
                            client_host,
                            subscribed_topic_names,
                            subscribed_topic_regex,
                            rebalance_timeout_ms,
                            server_assignor,
                        })
                    }
                };
                ConsumerRecord::Member {
                    group_id,
                    member_id,
                    value,
                }
            }
            TARGET => ConsumerRecord::Target {
                group_id,
                member_id: get_string(&mut key)?,
                value: value.map(|mut value| get_assignment(&mut value)).transpose()?,
            },
            CURRENT => {
                let member_id = get_string(&mut key)?;
                let value = match value {
                    None => None,
                    Some(mut value) => {
                        let member_epoch = get_i32(&mut value)?;
                        let previous_member_epoch = get_i32(&mut value)?;
                        need(&value, 1)?;
                        let state = MemberState::from_value(value.get_i8());
                        Some(CurrentAssignment {
                            member_epoch,
                            previous_member_epoch,
                            state,
                            assigned: get_assignment(&mut value)?,
                            pending_revocation: get_assignment(&mut value)?,
                        })
                    }
                };
                ConsumerRecord::Current {
                    group_id,
                    member_id,
                    value,
                }
            }
            _ => return Err(DecodeError::new("not a consumer group record")),
        };
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn round_trip(record: ConsumerRecord) {
        let (mut key, value) = record.encode();
        let record_type = key.get_i16();
        assert_eq!(ConsumerRecord::decode(record_type, key, value).unwrap(), record);
    }

    #[test]
    fn every_record_round_trips() {
        let assignment = Assignment::from([(Uuid::from_u128(5), BTreeSet::from([0, 3, 7]))]);
        round_trip(ConsumerRecord::Metadata {
            group_id: "g".into(),
            epoch: Some(4),
        });
        round_trip(ConsumerRecord::Metadata {
            group_id: "g".into(),
            epoch: None,
        });
        round_trip(ConsumerRecord::TargetMetadata {
            group_id: "g".into(),
            assignment_epoch: Some(4),
        });
        round_trip(ConsumerRecord::Member {
            group_id: "g".into(),
            member_id: "m".into(),
            value: Some(MemberMetadata {
                instance_id: Some("i".into()),
                rack_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                subscribed_topic_names: vec!["a".into(), "b".into()],
                subscribed_topic_regex: Some("t.*".into()),
                rebalance_timeout_ms: 300_000,
                server_assignor: Some("range".into()),
            }),
        });
        round_trip(ConsumerRecord::Target {
            group_id: "g".into(),
            member_id: "m".into(),
            value: Some(assignment.clone()),
        });
        round_trip(ConsumerRecord::Current {
            group_id: "g".into(),
            member_id: "m".into(),
            value: Some(CurrentAssignment {
                member_epoch: 4,
                previous_member_epoch: 3,
                state: MemberState::UnrevokedPartitions,
                assigned: assignment.clone(),
                pending_revocation: Assignment::from([(Uuid::from_u128(6), BTreeSet::from([1]))]),
            }),
        });
        round_trip(ConsumerRecord::Current {
            group_id: "g".into(),
            member_id: "m".into(),
            value: None,
        });
    }

    #[test]
    fn truncated_values_are_errors() {
        let (mut key, value) = ConsumerRecord::Target {
            group_id: "g".into(),
            member_id: "m".into(),
            value: Some(Assignment::from([(Uuid::from_u128(5), BTreeSet::from([0, 1]))])),
        }
        .encode();
        let record_type = key.get_i16();
        let value = value.unwrap();
        for cut in 0..value.len() - 1 {
            assert!(ConsumerRecord::decode(record_type, key.clone(), Some(value.slice(..cut))).is_err());
        }
    }
}
