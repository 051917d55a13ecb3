//! A share-partition's persisted state, as the share coordinator keeps it in
//! `__share_group_state`: the state epoch, the leader epoch of the last writer, the
//! start offset and the in-flight records as batches (first offset, last offset,
//! delivery state, delivery count). Pure: the merge a WriteShareGroupState applies,
//! and the record layout.
//!
//! Record layout, after Kafka's ShareSnapshot record (key type 0), one record per
//! share-partition, so compaction keeps the latest:
//! - key: `version i16 = 0, group_id string, topic_id uuid, partition i32`
//! - value (flexible): `version i16 = 0, snapshot_epoch i32, state_epoch i32,
//!   leader_epoch i32, start_offset i64, create_timestamp i64, write_timestamp i64,
//!   state_batches [first_offset i64, last_offset i64, delivery_state i8,
//!   delivery_count i16, tagged fields], tagged fields`
//! - a null value (tombstone) deletes the share-partition's state.

use super::manager::ShareKey;
use crate::group::offsets::{
    DecodeError, get_i32, get_string, get_uvarint, need, put_string, put_uvarint, skip_tags,
};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateBatch {
    pub first_offset: i64,
    pub last_offset: i64,
    pub delivery_state: i8,
    pub delivery_count: i16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShareSnapshot {
    /// Counts the snapshots written for this share-partition.
    pub snapshot_epoch: i32,
    /// Moves when the state is reset (AlterShareGroupOffsets, DeleteShareGroupOffsets);
    /// a write for an older state epoch is refused.
    pub state_epoch: i32,
    /// The data partition's leader epoch of the last writer: a deposed leader's
    /// writes are fenced.
    pub leader_epoch: i32,
    pub start_offset: i64,
    /// Sorted, not overlapping, all at or past `start_offset`.
    pub batches: Vec<StateBatch>,
}

/// What one WriteShareGroupState asks for one share-partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateWrite {
    pub state_epoch: i32,
    pub leader_epoch: i32,
    /// -1 keeps the start offset.
    pub start_offset: i64,
    pub batches: Vec<StateBatch>,
}

/// Why a write is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteRefusal {
    /// The writer's leader epoch is older than the last writer's.
    FencedLeaderEpoch,
    /// The writer's state epoch is older than the stored one.
    FencedStateEpoch,
}

impl ShareSnapshot {
    /// The state after `write`: its batches overlay the stored ones, and everything
    /// below the start offset is dropped.
    pub fn merge(&self, write: &StateWrite) -> Result<ShareSnapshot, WriteRefusal> {
        if write.leader_epoch >= 0 && write.leader_epoch < self.leader_epoch {
            return Err(WriteRefusal::FencedLeaderEpoch);
        }
        if write.state_epoch < self.state_epoch {
            return Err(WriteRefusal::FencedStateEpoch);
        }
        let start_offset = if write.start_offset >= 0 {
            write.start_offset
        } else {
            self.start_offset
        };
        let mut batches = self.batches.clone();
        for batch in &write.batches {
            batches = overlay(&batches, batch);
        }
        Ok(ShareSnapshot {
            snapshot_epoch: self.snapshot_epoch + 1,
            state_epoch: write.state_epoch.max(self.state_epoch),
            leader_epoch: write.leader_epoch.max(self.leader_epoch),
            start_offset,
            batches: trim(batches, start_offset),
        })
    }
}

/// `batches` with `batch` laid over them: parts of old batches it covers are cut away.
fn overlay(batches: &[StateBatch], batch: &StateBatch) -> Vec<StateBatch> {
    let mut result = Vec::with_capacity(batches.len() + 2);
    for old in batches {
        if old.last_offset < batch.first_offset || old.first_offset > batch.last_offset {
            result.push(*old);
            continue;
        }
        if old.first_offset < batch.first_offset {
            result.push(StateBatch {
                last_offset: batch.first_offset - 1,
                ..*old
            });
        }
        if old.last_offset > batch.last_offset {
            result.push(StateBatch {
                first_offset: batch.last_offset + 1,
                ..*old
            });
        }
    }
    result.push(*batch);
    result.sort_by_key(|batch| batch.first_offset);
    result
}

/// Drops what lies below `start_offset`.
fn trim(batches: Vec<StateBatch>, start_offset: i64) -> Vec<StateBatch> {
    batches
        .into_iter()
        .filter(|batch| batch.last_offset >= start_offset)
        .map(|batch| StateBatch {
            first_offset: batch.first_offset.max(start_offset),
            ..batch
        })
        .collect()
}

/// One `__share_group_state` record: a share-partition's snapshot, or None to delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareStateRecord {
    pub key: ShareKey,
    pub snapshot: Option<ShareSnapshot>,
}

const SNAPSHOT_KEY_TYPE: i16 = 0;

impl ShareStateRecord {
    /// The group id, topic id (in Kafka's URL-safe base64) and partition joined as
    /// Kafka joins them to place a share-partition on a `__share_group_state` partition
    /// (FindCoordinator key type 2).
    pub fn coordinator_key(key: &ShareKey) -> String {
        use base64::Engine;
        let topic_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.1.as_bytes());
        format!("{}:{}:{}", key.0, topic_id, key.2)
    }

    pub fn encode(&self, now_ms: i64) -> (Bytes, Option<Bytes>) {
        let (group_id, topic_id, partition) = &self.key;
        let mut key = BytesMut::with_capacity(24 + group_id.len());
        key.put_i16(SNAPSHOT_KEY_TYPE);
        put_string(&mut key, group_id);
        key.put_slice(topic_id.as_bytes());
        key.put_i32(*partition);
        let value = self.snapshot.as_ref().map(|snapshot| {
            let mut value = BytesMut::with_capacity(48 + 24 * snapshot.batches.len());
            value.put_i16(0);
            value.put_i32(snapshot.snapshot_epoch);
            value.put_i32(snapshot.state_epoch);
            value.put_i32(snapshot.leader_epoch);
            value.put_i64(snapshot.start_offset);
            value.put_i64(now_ms);
            value.put_i64(now_ms);
            put_uvarint(&mut value, snapshot.batches.len() as u64 + 1);
            for batch in &snapshot.batches {
                value.put_i64(batch.first_offset);
                value.put_i64(batch.last_offset);
                value.put_i8(batch.delivery_state);
                value.put_i16(batch.delivery_count);
                value.put_u8(0);
            }
            value.put_u8(0);
            value.freeze()
        });
        (key.freeze(), value)
    }

    pub fn decode(mut key: Bytes, value: Option<Bytes>) -> Result<Self, DecodeError> {
        need(&key, 2)?;
        if key.get_i16() != SNAPSHOT_KEY_TYPE {
            return Err(DecodeError::new("not a share snapshot record"));
        }
        let group_id = get_string(&mut key)?;
        need(&key, 16)?;
        let mut topic_id = [0u8; 16];
        key.copy_to_slice(&mut topic_id);
        let partition = get_i32(&mut key)?;
        let snapshot = match value {
            None => None,
            Some(mut value) => {
                need(&value, 2 + 12 + 24)?;
                let _version = value.get_i16();
                let snapshot_epoch = value.get_i32();
                let state_epoch = value.get_i32();
                let leader_epoch = value.get_i32();
                let start_offset = value.get_i64();
                let _created = value.get_i64();
                let _written = value.get_i64();
                let n_batches = get_uvarint(&mut value)?.saturating_sub(1);
                let mut batches = Vec::new();
                for _ in 0..n_batches {
                    need(&value, 19)?;
                    batches.push(StateBatch {
                        first_offset: value.get_i64(),
                        last_offset: value.get_i64(),
                        delivery_state: value.get_i8(),
                        delivery_count: value.get_i16(),
                    });
                    skip_tags(&mut value)?;
                }
                Some(ShareSnapshot {
                    snapshot_epoch,
                    state_epoch,
                    leader_epoch,
                    start_offset,
                    batches,
                })
            }
        };
        Ok(ShareStateRecord {
            key: (group_id, Uuid::from_bytes(topic_id), partition),
            snapshot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn batch(first_offset: i64, last_offset: i64, delivery_state: i8, delivery_count: i16) -> StateBatch {
        StateBatch {
            first_offset,
            last_offset,
            delivery_state,
            delivery_count,
        }
    }

    fn write(start_offset: i64, batches: Vec<StateBatch>) -> StateWrite {
        StateWrite {
            state_epoch: 0,
            leader_epoch: 3,
            start_offset,
            batches,
        }
    }

    #[test]
    fn a_write_overlays_and_trims() {
        let stored = ShareSnapshot::default()
            .merge(&write(10, vec![batch(10, 19, 0, 1)]))
            .unwrap();
        let merged = stored
            .merge(&write(12, vec![batch(14, 15, 2, 1), batch(18, 22, 0, 2)]))
            .unwrap();
        assert_eq!(merged.start_offset, 12);
        assert_eq!(merged.snapshot_epoch, 2);
        assert_eq!(
            merged.batches,
            vec![
                batch(12, 13, 0, 1),
                batch(14, 15, 2, 1),
                batch(16, 17, 0, 1),
                batch(18, 22, 0, 2)
            ]
        );
        let kept = merged.merge(&write(-1, vec![])).unwrap();
        assert_eq!(kept.start_offset, 12, "-1 keeps the start offset");
    }

    #[test]
    fn a_deposed_leader_and_an_old_state_epoch_are_fenced() {
        let stored = ShareSnapshot::default().merge(&write(0, vec![])).unwrap();
        let old_leader = StateWrite {
            leader_epoch: 2,
            ..write(5, vec![])
        };
        assert_eq!(stored.merge(&old_leader), Err(WriteRefusal::FencedLeaderEpoch));
        let reset = ShareSnapshot {
            state_epoch: 1,
            ..stored.clone()
        };
        assert_eq!(
            reset.merge(&write(5, vec![])),
            Err(WriteRefusal::FencedStateEpoch)
        );
    }

    #[test]
    fn records_round_trip() {
        let record = ShareStateRecord {
            key: ("g".into(), Uuid::from_u128(7), 3),
            snapshot: Some(ShareSnapshot {
                snapshot_epoch: 4,
                state_epoch: 1,
                leader_epoch: 2,
                start_offset: 100,
                batches: vec![batch(100, 104, 0, 2), batch(105, 105, 4, 5)],
            }),
        };
        let (key, value) = record.encode(1);
        assert_eq!(ShareStateRecord::decode(key.clone(), value).unwrap(), record);
        let tombstone = ShareStateRecord::decode(key, None).unwrap();
        assert_eq!(tombstone.snapshot, None);
        assert!(ShareStateRecord::decode(Bytes::from_static(&[0, 0, 0]), None).is_err());
    }

    proptest! {
        /// Merging writes gives what laying them offset by offset over a map gives.
        #[test]
        fn merge_matches_an_offset_map(
            writes in proptest::collection::vec(
                (0i64..40, proptest::collection::vec((0i64..60, 0i64..6, 0i8..3, 1i16..4), 0..4)),
                1..8,
            )
        ) {
            let mut snapshot = ShareSnapshot::default();
            let mut model: BTreeMap<i64, (i8, i16)> = BTreeMap::new();
            let mut start = 0;
            for (start_offset, batches) in writes {
                let batches: Vec<StateBatch> = batches
                    .into_iter()
                    .map(|(first, length, state, count)| batch(first, first + length, state, count))
                    .collect();
                for batch in &batches {
                    for offset in batch.first_offset..=batch.last_offset {
                        model.insert(offset, (batch.delivery_state, batch.delivery_count));
                    }
                }
                start = start_offset;
                model.retain(|offset, _| *offset >= start);
                snapshot = snapshot.merge(&write(start_offset, batches)).unwrap();
            }
            let mut flat = BTreeMap::new();
            for batch in &snapshot.batches {
                prop_assert!(batch.first_offset >= start);
                for offset in batch.first_offset..=batch.last_offset {
                    prop_assert!(flat.insert(offset, (batch.delivery_state, batch.delivery_count)).is_none());
                }
            }
            prop_assert_eq!(flat, model);
        }
    }
}
