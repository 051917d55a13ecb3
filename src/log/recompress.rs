//! Topic `compression.type` other than `producer`: a batch in another codec is
//! decompressed and written again in the topic's, as Kafka does. Its records — keys,
//! values, headers, timestamps, offsets deltas — and its producer id, epoch and
//! sequences are kept, so idempotence and ordering are unaffected; only the
//! compression attribute and the CRC change. A batch already in the topic's codec is
//! stored as sent.

use super::batch::{BatchError, IncomingBatch, split_and_validate};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};

/// The codec bits of a batch's attributes.
const CODEC_MASK: i16 = 0x07;
/// A control batch (transaction marker) is never rewritten.
const CONTROL_FLAG: i16 = 0x20;

/// A topic's `compression.type`: None keeps the producer's codec.
pub fn topic_codec(name: &str) -> Option<Compression> {
    match name.trim() {
        "uncompressed" => Some(Compression::None),
        "gzip" => Some(Compression::Gzip),
        "snappy" => Some(Compression::Snappy),
        "lz4" => Some(Compression::Lz4),
        "zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

/// The batch in `codec`: itself when already so (or a control batch), else its
/// records encoded again. Fails if the producer's batch cannot be decoded.
pub fn to_codec(
    batch: &IncomingBatch,
    codec: Compression,
    max_bytes: usize,
) -> Result<IncomingBatch, BatchError> {
    let current = batch.header.attributes & CODEC_MASK;
    if current == codec as i16 || batch.header.attributes & CONTROL_FLAG != 0 {
        return Ok(batch.clone());
    }
    let undecodable = |_| BatchError::Undecodable;
    let mut source = batch.bytes.clone();
    let set = RecordBatchDecoder::decode(&mut source).map_err(undecodable)?;
    let mut out = BytesMut::with_capacity(batch.bytes.len());
    let options = RecordEncodeOptions {
        version: 2,
        compression: codec,
    };
    RecordBatchEncoder::encode(&mut out, set.records.iter(), &options).map_err(undecodable)?;
    let mut rewritten = split_and_validate(&Bytes::from(out), max_bytes)?;
    // The producer's records share one producer, epoch and sequence run: one batch.
    if rewritten.len() != 1 {
        return Err(BatchError::Undecodable);
    }
    Ok(rewritten.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{Record, TimestampType};

    fn producer_batch(compression: Compression, producer_id: i64, count: i32) -> Bytes {
        let records: Vec<Record> = (0..count)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch: if producer_id >= 0 { 3 } else { -1 },
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // As the decoder reports them: a batch without a producer has base
                // sequence -1, and each record that plus its offset delta.
                sequence: if producer_id >= 0 { 40 + i } else { -1 + i },
                timestamp: 1_000 + i as i64,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(vec![b'v'; 300])),
                headers: Default::default(),
            })
            .collect();
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut out,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        out.freeze()
    }

    #[test]
    fn batches_move_to_the_topic_codec_with_records_and_sequences_kept() {
        for (from, to) in [
            (Compression::None, Compression::Lz4),
            (Compression::Gzip, Compression::Zstd),
            (Compression::Snappy, Compression::None),
            (Compression::Zstd, Compression::Gzip),
        ] {
            for producer_id in [-1, 77] {
                let original =
                    &split_and_validate(&producer_batch(from, producer_id, 20), 1 << 20).unwrap()[0];
                let moved = to_codec(original, to, 1 << 20).unwrap();
                assert_eq!(moved.header.attributes & CODEC_MASK, to as i16);
                assert_eq!(moved.header.producer_id, original.header.producer_id);
                assert_eq!(moved.header.producer_epoch, original.header.producer_epoch);
                assert_eq!(moved.header.base_sequence, original.header.base_sequence);
                assert_eq!(moved.header.last_offset_delta, original.header.last_offset_delta);
                assert_eq!(moved.header.records_count, 20);
                assert_eq!(moved.header.max_timestamp, original.header.max_timestamp);
                let before = RecordBatchDecoder::decode(&mut original.bytes.clone())
                    .unwrap()
                    .records;
                let after = RecordBatchDecoder::decode(&mut moved.bytes.clone())
                    .unwrap()
                    .records;
                assert_eq!(before, after, "{from:?} -> {to:?}");
            }
        }
        // Already in the codec: stored as sent, byte for byte.
        let lz4 = &split_and_validate(&producer_batch(Compression::Lz4, 5, 3), 1 << 20).unwrap()[0];
        assert_eq!(to_codec(lz4, Compression::Lz4, 1 << 20).unwrap().bytes, lz4.bytes);
    }

    #[test]
    fn a_batch_that_grows_past_the_limit_is_refused() {
        let original = &split_and_validate(&producer_batch(Compression::Zstd, -1, 50), 1 << 20).unwrap()[0];
        let limit = original.bytes.len() + 100;
        assert!(matches!(
            to_codec(original, Compression::None, limit),
            Err(BatchError::TooLarge { .. })
        ));
    }
}
