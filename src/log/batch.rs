//! A view of a record batch header (magic v2) and the checks the broker makes.
//!
//! Byte layout (big-endian), 61 bytes before the records:
//! ```text
//!  0 base_offset i64            8 batch_length i32 (bytes after this field)
//! 12 partition_leader_epoch i32 16 magic i8 (= 2)
//! 17 crc u32 (CRC-32C of bytes 21..end)
//! 21 attributes i16             23 last_offset_delta i32
//! 27 base_timestamp i64         35 max_timestamp i64
//! 43 producer_id i64            51 producer_epoch i16
//! 53 base_sequence i32          57 records_count i32
//! ```
//! The broker stamps `base_offset` and `partition_leader_epoch`, both outside the CRC, and
//! never looks inside the records: compressed batches stay exactly as the producer sent them.

use bytes::Bytes;

/// Bytes before `batch_length`'s payload: base offset and the length itself.
pub const LOG_OVERHEAD: usize = 12;
/// The whole v2 batch header.
pub const HEADER_LEN: usize = 61;
/// Bytes at the front of a batch that the broker rewrites: base offset, length, epoch, magic.
pub const STAMPED_PREFIX_LEN: usize = 17;
pub const CRC_START: usize = 21;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("record batch is truncated: {available} bytes where {needed} are needed")]
    Truncated { needed: usize, available: usize },
    #[error("record batch has an invalid length {length}")]
    InvalidLength { length: i32 },
    #[error("record batch has magic {magic}; only magic 2 is supported")]
    UnsupportedMagic { magic: i8 },
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
    #[error("record batch claims {records_count} records but last offset delta {last_offset_delta}")]
    InconsistentCount {
        records_count: i32,
        last_offset_delta: i32,
    },
    #[error("record batch records cannot be decoded for the topic's compression.type")]
    Undecodable,
}

impl BatchError {
    /// Its Kafka error code.
    pub fn code(&self) -> i16 {
        use kafka_protocol::ResponseError;
        let error = self;
        match error {
            BatchError::TooLarge { .. } => ResponseError::MessageTooLarge.code(),
            BatchError::UnsupportedMagic { .. } => ResponseError::UnsupportedForMessageFormat.code(),
            BatchError::Truncated { .. }
            | BatchError::InvalidLength { .. }
            | BatchError::CrcMismatch { .. }
            | BatchError::InconsistentCount { .. } => ResponseError::CorruptMessage.code(),
            BatchError::Undecodable => ResponseError::InvalidRecord.code(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}
fn be_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}
fn be_i64(buf: &[u8], at: usize) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(bytes)
}

impl BatchHeader {
    /// Reads the first 12 bytes only: base offset and the size of the whole batch.
    /// Used when scanning a segment, where the rest of the header may not be read yet.
    pub fn peek_size(buf: &[u8]) -> Result<(i64, usize), BatchError> {
        if buf.len() < LOG_OVERHEAD {
            return Err(BatchError::Truncated {
                needed: LOG_OVERHEAD,
                available: buf.len(),
            });
        }
        let length = be_i32(buf, 8);
        if (length as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 {
            return Err(BatchError::InvalidLength { length });
        }
        Ok((be_i64(buf, 0), LOG_OVERHEAD + length as usize))
    }

    /// Parses a header from the start of `buf` (which must hold at least the header).
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        let batch_length = be_i32(buf, 8);
        if (batch_length as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 {
            return Err(BatchError::InvalidLength { length: batch_length });
        }
        let magic = buf[16] as i8;
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic { magic });
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length,
            partition_leader_epoch: be_i32(buf, 12),
            magic,
            crc: u32::from_be_bytes([buf[17], buf[18], buf[19], buf[20]]),
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        })
    }

    /// Size of the whole batch on disk and on the wire.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
}

/// Checks a whole batch (header fields and CRC-32C) held in `buf`, which must be exactly it.
/// Checks a batch as a producer sent it: [`validate_stored`], and one offset per record
/// (`last_offset_delta == records_count - 1`).
pub fn validate(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = validate_stored(buf)?;
    if header.records_count > 0 && header.last_offset_delta != header.records_count - 1 {
        return Err(BatchError::InconsistentCount {
            records_count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok(header)
}

/// Checks a batch as a log may hold it: its length and CRC, and no more records than
/// offsets. A compacted batch keeps its offset range with fewer records in it (or none,
/// when kept only for its producer's sequence).
pub fn validate_stored(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(buf)?;
    if header.size() != buf.len() {
        return Err(BatchError::Truncated {
            needed: header.size(),
            available: buf.len(),
        });
    }
    let computed = crc32c::crc32c(&buf[CRC_START..]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    if header.records_count < 0
        || header.last_offset_delta < 0
        || header.records_count as i64 > header.last_offset_delta as i64 + 1
    {
        return Err(BatchError::InconsistentCount {
            records_count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok(header)
}

/// One batch of a produce request, checked and ready to append.
#[derive(Debug, Clone)]
pub struct IncomingBatch {
    pub header: BatchHeader,
    /// The whole batch as the producer sent it (a slice of the request buffer, no copy).
    pub bytes: Bytes,
}

/// Splits a produce payload into batches and checks each one ([`validate`]).
pub fn split_and_validate(
    records: &Bytes,
    max_message_bytes: usize,
) -> Result<Vec<IncomingBatch>, BatchError> {
    split_with(records, max_message_bytes, validate)
}

/// Splits batches read from a log (a leader's, or this broker's own) and checks each
/// one ([`validate_stored`]): compacted batches are accepted.
pub fn split_stored(records: &Bytes, max_message_bytes: usize) -> Result<Vec<IncomingBatch>, BatchError> {
    split_with(records, max_message_bytes, validate_stored)
}

fn split_with(
    records: &Bytes,
    max_message_bytes: usize,
    check: fn(&[u8]) -> Result<BatchHeader, BatchError>,
) -> Result<Vec<IncomingBatch>, BatchError> {
    let mut batches = Vec::new();
    let mut position = 0;
    while position < records.len() {
        let (_, size) = BatchHeader::peek_size(&records[position..])?;
        if size > max_message_bytes {
            return Err(BatchError::TooLarge {
                size,
                max: max_message_bytes,
            });
        }
        let end = position
            .checked_add(size)
            .filter(|end| *end <= records.len())
            .ok_or(BatchError::Truncated {
                needed: size,
                available: records.len() - position,
            })?;
        let bytes = records.slice(position..end);
        let header = check(&bytes)?;
        batches.push(IncomingBatch { header, bytes });
        position = end;
    }
    Ok(batches)
}

/// The timestamp-type bit of the attributes: set, every record's timestamp is the
/// batch's `max_timestamp`, the broker's append time.
pub const LOG_APPEND_TIME_FLAG: i16 = 0x08;

impl IncomingBatch {
    /// This batch with the broker's append time (`message.timestamp.type=LogAppendTime`,
    /// as Kafka does it): the timestamp-type attribute set, `max_timestamp` the append
    /// time, and the CRC recomputed. The records are not touched.
    pub fn with_log_append_time(&self, now_ms: i64) -> IncomingBatch {
        let mut bytes = self.bytes.to_vec();
        let attributes = self.header.attributes | LOG_APPEND_TIME_FLAG;
        bytes[21..23].copy_from_slice(&attributes.to_be_bytes());
        bytes[35..43].copy_from_slice(&now_ms.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[CRC_START..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        let mut header = self.header;
        header.attributes = attributes;
        header.max_timestamp = now_ms;
        header.crc = crc;
        IncomingBatch {
            header,
            bytes: Bytes::from(bytes),
        }
    }
}

/// The first 17 bytes of a batch with the broker's base offset and leader epoch stamped in.
pub fn stamped_prefix(original: &[u8], base_offset: i64, leader_epoch: i32) -> [u8; STAMPED_PREFIX_LEN] {
    let mut prefix = [0u8; STAMPED_PREFIX_LEN];
    prefix.copy_from_slice(&original[..STAMPED_PREFIX_LEN]);
    prefix[0..8].copy_from_slice(&base_offset.to_be_bytes());
    prefix[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    prefix
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds a valid uncompressed-looking batch with `count` records of opaque payload.
    pub fn make_batch(count: i32, timestamp: i64, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; HEADER_LEN];
        buf.extend_from_slice(payload);
        let length = (buf.len() - LOG_OVERHEAD) as i32;
        buf[8..12].copy_from_slice(&length.to_be_bytes());
        buf[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        buf[16] = 2;
        buf[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        buf[27..35].copy_from_slice(&timestamp.to_be_bytes());
        buf[35..43].copy_from_slice(&timestamp.to_be_bytes());
        buf[43..51].copy_from_slice(&(-1i64).to_be_bytes());
        buf[51..53].copy_from_slice(&(-1i16).to_be_bytes());
        buf[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        buf[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&buf[CRC_START..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        buf
    }

    #[test]
    fn valid_batch_passes_and_bad_crc_fails() {
        let batch = make_batch(3, 1000, b"abc");
        let header = validate(&batch).unwrap();
        assert_eq!(header.records_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        let mut corrupt = batch.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert!(matches!(validate(&corrupt), Err(BatchError::CrcMismatch { .. })));
    }

    #[test]
    fn log_append_time_stamps_the_header_and_keeps_the_crc_valid() {
        let original = Bytes::from(make_batch(3, 1_000, b"payload"));
        let incoming = &split_and_validate(&original, 1 << 20).unwrap()[0];
        let stamped = incoming.with_log_append_time(5_000);
        // The stamped bytes still pass the broker's own checks.
        let checked = &split_and_validate(&stamped.bytes, 1 << 20).unwrap()[0];
        assert_eq!(checked.header, stamped.header);
        assert_eq!(checked.header.max_timestamp, 5_000);
        assert_eq!(
            checked.header.attributes & LOG_APPEND_TIME_FLAG,
            LOG_APPEND_TIME_FLAG
        );
        assert_eq!(checked.header.base_timestamp, incoming.header.base_timestamp);
        assert_eq!(&stamped.bytes[61..], &original[61..], "records untouched");
    }

    #[test]
    fn stamping_keeps_crc_valid() {
        let batch = make_batch(2, 5, b"xy");
        let mut stamped = batch.clone();
        stamped[..STAMPED_PREFIX_LEN].copy_from_slice(&stamped_prefix(&batch, 42, 7));
        let header = validate(&stamped).unwrap();
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.partition_leader_epoch, 7);
    }

    #[test]
    fn split_rejects_oversized_and_truncated() {
        let mut two = make_batch(1, 1, b"a");
        two.extend(make_batch(2, 2, b"bb"));
        let records = Bytes::from(two.clone());
        assert_eq!(split_and_validate(&records, 1 << 20).unwrap().len(), 2);
        assert!(matches!(
            split_and_validate(&records, 10),
            Err(BatchError::TooLarge { .. })
        ));
        let cut = Bytes::from(two[..two.len() - 1].to_vec());
        assert!(matches!(
            split_and_validate(&cut, 1 << 20),
            Err(BatchError::Truncated { .. })
        ));
    }

    proptest! {
        #[test]
        fn header_round_trips(count in 1i32..10_000, timestamp in any::<i64>(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let batch = make_batch(count, timestamp, &payload);
            let header = validate(&batch).unwrap();
            prop_assert_eq!(header.records_count, count);
            prop_assert_eq!(header.max_timestamp, timestamp);
            prop_assert_eq!(header.size(), batch.len());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = split_and_validate(&Bytes::from(bytes), 1 << 20);
        }
    }
}
