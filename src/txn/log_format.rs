//! The records of `__transaction_state`, in Kafka's schemas: key `version: i16 (0),
//! transactional_id: string`; value (version 0) `version: i16, producer_id: i64,
//! producer_epoch: i16, transaction_timeout_ms: i32, transaction_status: i8,
//! transaction_partitions: nullable [topic: string, partition_ids: [i32]],
//! last_update_timestamp_ms: i64, start_timestamp_ms: i64`. A null value (tombstone)
//! removes an expired transactional id; the log cleaner compacts the topic.

use super::state::{TxnMetadata, TxnState};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::BTreeSet;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed __transaction_state record: {0}")]
pub struct FormatError(&'static str);

fn put_string(buf: &mut BytesMut, value: &str) {
    buf.put_i16(value.len() as i16);
    buf.put_slice(value.as_bytes());
}

fn take_string(buf: &mut Bytes) -> Result<String, FormatError> {
    if buf.remaining() < 2 {
        return Err(FormatError("truncated string length"));
    }
    let length = buf.get_i16();
    if length < 0 || buf.remaining() < length as usize {
        return Err(FormatError("bad string length"));
    }
    String::from_utf8(buf.split_to(length as usize).to_vec()).map_err(|_| FormatError("string is not UTF-8"))
}

fn need(buf: &Bytes, bytes: usize) -> Result<(), FormatError> {
    if buf.remaining() < bytes {
        return Err(FormatError("truncated"));
    }
    Ok(())
}

pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + transactional_id.len());
    buf.put_i16(0);
    put_string(&mut buf, transactional_id);
    buf.freeze()
}

pub fn encode_value(metadata: &TxnMetadata) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(0);
    buf.put_i64(metadata.producer_id);
    buf.put_i16(metadata.producer_epoch);
    buf.put_i32(metadata.timeout_ms);
    buf.put_i8(metadata.state.code());
    let mut by_topic: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in &metadata.partitions {
        match by_topic.last_mut() {
            Some((last, partitions)) if *last == topic.as_str() => partitions.push(*partition),
            _ => by_topic.push((topic.as_str(), vec![*partition])),
        }
    }
    buf.put_i32(by_topic.len() as i32);
    for (topic, partitions) in by_topic {
        put_string(&mut buf, topic);
        buf.put_i32(partitions.len() as i32);
        for partition in partitions {
            buf.put_i32(partition);
        }
    }
    buf.put_i64(metadata.last_update_ms);
    buf.put_i64(metadata.start_ms);
    buf.freeze()
}

/// The transactional id a key names.
pub fn decode_key(mut key: Bytes) -> Result<String, FormatError> {
    need(&key, 2)?;
    if key.get_i16() != 0 {
        return Err(FormatError("unknown key version"));
    }
    take_string(&mut key)
}

pub fn decode_value(transactional_id: &str, mut value: Bytes) -> Result<TxnMetadata, FormatError> {
    need(&value, 2 + 8 + 2 + 4 + 1 + 4)?;
    let version = value.get_i16();
    if version != 0 {
        return Err(FormatError("unknown value version"));
    }
    let producer_id = value.get_i64();
    let producer_epoch = value.get_i16();
    let timeout_ms = value.get_i32();
    let state = TxnState::from_code(value.get_i8()).ok_or(FormatError("unknown status"))?;
    let mut partitions = BTreeSet::new();
    let topics = value.get_i32();
    for _ in 0..topics.max(0) {
        let topic = take_string(&mut value)?;
        need(&value, 4)?;
        let count = value.get_i32();
        for _ in 0..count.max(0) {
            need(&value, 4)?;
            partitions.insert((topic.clone(), value.get_i32()));
        }
    }
    need(&value, 16)?;
    let last_update_ms = value.get_i64();
    let start_ms = value.get_i64();
    Ok(TxnMetadata {
        transactional_id: transactional_id.to_string(),
        producer_id,
        producer_epoch,
        last_producer_epoch: -1,
        timeout_ms,
        state,
        partitions,
        start_ms,
        last_update_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_in_kafkas_layout() {
        let metadata = TxnMetadata {
            transactional_id: "orders".into(),
            producer_id: 4000,
            producer_epoch: 3,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [("a".to_string(), 0), ("a".to_string(), 2), ("b".to_string(), 1)]
                .into_iter()
                .collect(),
            start_ms: 100,
            last_update_ms: 200,
        };
        let key = encode_key("orders");
        assert_eq!(&key[..], &[0, 0, 0, 6, b'o', b'r', b'd', b'e', b'r', b's']);
        assert_eq!(decode_key(key).unwrap(), "orders");
        let value = encode_value(&metadata);
        // version, producer id, epoch, timeout, status: then two topics.
        assert_eq!(&value[..2], &[0, 0]);
        assert_eq!(value[16], 1, "Ongoing");
        assert_eq!(&value[17..21], &2i32.to_be_bytes());
        assert_eq!(decode_value("orders", value).unwrap(), metadata);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_key(Bytes::from_static(&[0])).is_err());
        assert!(decode_value("x", Bytes::from_static(&[0, 0, 1])).is_err());
        let mut bad = BytesMut::from(&encode_value(&TxnMetadata::new("x", 1, 1, 1))[..]);
        bad[16] = 42;
        assert!(decode_value("x", bad.freeze()).is_err());
    }
}
