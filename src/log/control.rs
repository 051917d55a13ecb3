//! Transaction markers: the control batches that end a producer's transaction in a
//! partition (Kafka's `EndTransactionMarker`), and the batch attribute bits that tell
//! transactional and control batches apart.
//!
//! A control batch holds one uncompressed record whose key is `version: i16 (0), type:
//! i16 (0 = ABORT, 1 = COMMIT)` and whose value is `version: i16 (0), coordinator_epoch:
//! i32`. The batch carries the producer id and epoch of the transaction it ends, base
//! sequence -1, and both the transactional and the control attribute bits.

use super::batch::{BatchHeader, CRC_START, HEADER_LEN, LOG_OVERHEAD};

/// Attribute bit: the batch belongs to a transaction.
pub const TRANSACTIONAL_FLAG: i16 = 0x10;
/// Attribute bit: the batch is a control batch (a transaction marker).
pub const CONTROL_FLAG: i16 = 0x20;

const MARKER_ABORT: i16 = 0;
const MARKER_COMMIT: i16 = 1;

impl BatchHeader {
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }
}

/// What a transaction marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlMarker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// Reads a zigzag varint at `at`, moving it past.
fn varint(buf: &[u8], at: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*at)?;
        *at += 1;
        value |= ((byte & 0x7F) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

fn push_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8 & 0x7F) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

/// The marker in a whole control batch (`batch` from its first byte), or None when the
/// batch is not a control batch or its record is not a transaction marker (Kafka has
/// other control record types, which carry no transaction outcome).
pub fn marker(header: &BatchHeader, batch: &[u8]) -> Option<ControlMarker> {
    if !header.is_control() || header.records_count < 1 {
        return None;
    }
    let mut at = HEADER_LEN;
    let _length = varint(batch, &mut at)?;
    at += 1; // record attributes
    let _timestamp_delta = varint(batch, &mut at)?;
    let _offset_delta = varint(batch, &mut at)?;
    let key_length = varint(batch, &mut at)?;
    if key_length < 4 {
        return None;
    }
    let key = batch.get(at..at + key_length as usize)?;
    let kind = i16::from_be_bytes([key[2], key[3]]);
    at += key_length as usize;
    let value_length = varint(batch, &mut at)?;
    let coordinator_epoch = match batch.get(at..at + value_length.max(0) as usize) {
        Some(value) if value.len() >= 6 => i32::from_be_bytes([value[2], value[3], value[4], value[5]]),
        _ => -1,
    };
    match kind {
        MARKER_ABORT | MARKER_COMMIT => Some(ControlMarker {
            commit: kind == MARKER_COMMIT,
            coordinator_epoch,
        }),
        _ => None,
    }
}

/// A control batch ending producer `producer_id`'s transaction (base offset 0; the log
/// stamps the real one).
pub fn marker_batch(producer_id: i64, producer_epoch: i16, marker: ControlMarker, now_ms: i64) -> Vec<u8> {
    let mut record = Vec::with_capacity(24);
    record.push(0); // attributes
    push_varint(&mut record, 0); // timestamp delta
    push_varint(&mut record, 0); // offset delta
    push_varint(&mut record, 4);
    record.extend_from_slice(&0i16.to_be_bytes());
    let kind = if marker.commit {
        MARKER_COMMIT
    } else {
        MARKER_ABORT
    };
    record.extend_from_slice(&kind.to_be_bytes());
    push_varint(&mut record, 6);
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    push_varint(&mut record, 0); // headers
    let mut batch = vec![0u8; HEADER_LEN];
    push_varint(&mut batch, record.len() as i64);
    batch.extend_from_slice(&record);
    let length = (batch.len() - LOG_OVERHEAD) as i32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    batch[12..16].copy_from_slice(&(-1i32).to_be_bytes());
    batch[16] = 2;
    batch[21..23].copy_from_slice(&(TRANSACTIONAL_FLAG | CONTROL_FLAG).to_be_bytes());
    batch[23..27].copy_from_slice(&0i32.to_be_bytes());
    batch[27..35].copy_from_slice(&now_ms.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&producer_epoch.to_be_bytes());
    batch[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    batch[57..61].copy_from_slice(&1i32.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::validate;

    #[test]
    fn a_marker_batch_is_a_valid_control_batch_that_reads_back() {
        for commit in [true, false] {
            let marker_in = ControlMarker {
                commit,
                coordinator_epoch: 7,
            };
            let batch = marker_batch(42, 3, marker_in, 1_000);
            let header = validate(&batch).unwrap();
            assert!(header.is_control() && header.is_transactional());
            assert_eq!((header.producer_id, header.producer_epoch), (42, 3));
            assert_eq!((header.records_count, header.last_offset_delta), (1, 0));
            assert_eq!(marker(&header, &batch), Some(marker_in));
        }
    }

    #[test]
    fn the_client_library_decodes_our_marker_as_a_control_record() {
        let batch = marker_batch(
            9,
            1,
            ControlMarker {
                commit: true,
                coordinator_epoch: 2,
            },
            5,
        );
        let mut bytes = bytes::Bytes::from(batch);
        let decoded = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes).unwrap();
        let record = &decoded.records[0];
        assert!(record.control && record.transactional);
        assert_eq!(record.key.as_deref(), Some(&[0u8, 0, 0, 1][..]));
        assert_eq!(record.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 2][..]));
    }

    #[test]
    fn data_batches_and_garbage_are_no_marker() {
        let data = crate::log::batch::tests::make_batch(1, 0, b"x");
        let header = validate(&data).unwrap();
        assert_eq!(marker(&header, &data), None);
        let mut control = header;
        control.attributes |= CONTROL_FLAG;
        assert_eq!(marker(&control, &data), None, "a payload that is no record");
    }
}
