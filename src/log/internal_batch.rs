//! Record batches the broker writes itself (`__consumer_offsets`, `__transaction_state`):
//! keyed records in one uncompressed batch, offsets assigned on append. A batch written
//! for a transaction (a transactional offset commit) carries the producer's id and epoch,
//! the transactional bit, and no sequence (base sequence -1), as Kafka's coordinators
//! write them.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

/// Encodes `records` (key, value) into one batch; `transaction`: (producer id, epoch).
pub fn encode(records: &[(Bytes, Option<Bytes>)], now_ms: i64, transaction: Option<(i64, i16)>) -> Bytes {
    let (producer_id, producer_epoch) = transaction.unwrap_or((-1, -1));
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(index, (key, value))| Record {
            transactional: transaction.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            // Equal offset-sequence distance keeps every record in one batch.
            sequence: index as i32,
            timestamp: now_ms,
            key: Some(key.clone()),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    // Encoding plain records into memory cannot fail for version 2.
    if RecordBatchEncoder::encode(&mut buf, &records, &options).is_err()
        || buf.len() < super::batch::HEADER_LEN
    {
        return Bytes::new();
    }
    // No sequence: the batch is the coordinator's, not an idempotent producer's.
    buf[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    let crc = crc32c::crc32c(&buf[super::batch::CRC_START..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_valid_batch_with_or_without_a_transaction() {
        let records = vec![
            (Bytes::from_static(b"k1"), Some(Bytes::from_static(b"v1"))),
            (Bytes::from_static(b"k2"), None),
        ];
        let plain = encode(&records, 5, None);
        let batches = crate::log::batch::split_and_validate(&plain, usize::MAX).unwrap();
        assert_eq!(batches.len(), 1);
        let header = batches[0].header;
        assert_eq!(
            (header.records_count, header.producer_id, header.base_sequence),
            (2, -1, -1)
        );
        assert!(!header.is_transactional());
        let transactional = encode(&records, 5, Some((42, 3)));
        let header = crate::log::batch::split_and_validate(&transactional, usize::MAX).unwrap()[0].header;
        assert!(header.is_transactional() && !header.is_control());
        assert_eq!(
            (header.producer_id, header.producer_epoch, header.base_sequence),
            (42, 3, -1)
        );
    }
}
