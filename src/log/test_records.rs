//! Record batches for the log module's tests, encoded by kafka-protocol as a client
//! would encode them.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

/// How a test batch is written.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub base_offset: i64,
    /// -1: no producer (sequences then run from -1, as the decoder reports them).
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub first_sequence: i32,
    pub leader_epoch: i32,
    /// The first record's timestamp; each next one `timestamp_step` later.
    pub timestamp: i64,
    pub timestamp_step: i64,
    pub compression: Compression,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            base_offset: 0,
            producer_id: -1,
            producer_epoch: -1,
            first_sequence: -1,
            leader_epoch: -1,
            timestamp: 1_000,
            timestamp_step: 1,
            compression: Compression::None,
        }
    }
}

/// One batch of `(key, value)` records (offsets, sequences and timestamps consecutive,
/// so the encoder writes a single batch).
pub fn encode(spec: Spec, records: &[(Option<Bytes>, Option<Bytes>)]) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: spec.leader_epoch,
            producer_id: spec.producer_id,
            producer_epoch: spec.producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: spec.base_offset + i as i64,
            sequence: spec.first_sequence.wrapping_add(i as i32),
            timestamp: spec.timestamp + spec.timestamp_step * i as i64,
            key: key.clone(),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: spec.compression,
    };
    RecordBatchEncoder::encode(&mut out, records.iter(), &options).expect("a test batch encodes");
    out.freeze()
}

/// A `(key, value)` pair from text; None for a missing key or a tombstone's value.
pub fn text(key: Option<&str>, value: Option<&str>) -> (Option<Bytes>, Option<Bytes>) {
    (
        key.map(|key| Bytes::copy_from_slice(key.as_bytes())),
        value.map(|value| Bytes::copy_from_slice(value.as_bytes())),
    )
}
