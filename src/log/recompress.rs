//! Topic `compression.type` other than `producer`: a batch in another codec is
//! decompressed and written again in the topic's, as Kafka does. Its records — keys,
//! values, headers, timestamps, offsets deltas — and its producer id, epoch and
//! sequences are kept, so idempotence and ordering are unaffected; only the
//! compression attribute and the CRC change. A batch already in the topic's codec is
//! stored as sent.
//!
//! Levels are Kafka's (KIP-390): `compression.gzip.level` (-1 for zlib's default, else
//! 1–9), `compression.lz4.level` (1–17, LZ4 high-compression from 3; the library caps
//! it at 12) and `compression.zstd.level` (-131072–22).

use super::batch::{BatchError, IncomingBatch, split_and_validate};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::Compressor;
use kafka_protocol::records::{Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};
use std::io::Write;

/// The levels a topic recompresses at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionLevels {
    pub gzip: i32,
    pub lz4: i32,
    pub zstd: i32,
}

impl Default for CompressionLevels {
    /// Kafka's defaults.
    fn default() -> Self {
        CompressionLevels {
            gzip: -1,
            lz4: 9,
            zstd: 3,
        }
    }
}

/// Compresses a batch's encoded records into `out` in `codec` at the topic's level.
pub fn compress(
    levels: CompressionLevels,
    records: &[u8],
    out: &mut BytesMut,
    codec: Compression,
) -> anyhow::Result<()> {
    match codec {
        Compression::Gzip => {
            let level = match u32::try_from(levels.gzip) {
                Ok(level) => flate2::Compression::new(level.min(9)),
                Err(_) => flate2::Compression::default(),
            };
            let mut encoder = flate2::write::GzEncoder::new(out.writer(), level);
            encoder.write_all(records)?;
            encoder.finish()?;
        }
        Compression::Lz4 => {
            // Kafka's framing: the LZ4 frame format with independent blocks.
            let mut encoder = lz4::EncoderBuilder::new()
                .level(levels.lz4.clamp(1, 17) as u32)
                .block_mode(lz4::BlockMode::Independent)
                .build(out.writer())?;
            encoder.write_all(records)?;
            let (_, result) = encoder.finish();
            result?;
        }
        Compression::Zstd => zstd::stream::copy_encode(records, out.writer(), levels.zstd)?,
        Compression::Snappy => kafka_protocol::compression::Snappy::compress(out, |buf: &mut BytesMut| {
            buf.put_slice(records);
            Ok(())
        })?,
        Compression::None => out.put_slice(records),
    }
    Ok(())
}

/// The codec bits of a batch's attributes.
pub const CODEC_MASK: i16 = 0x07;

/// The codec a batch's attributes name.
pub fn codec_of(attributes: i16) -> Compression {
    match attributes & CODEC_MASK {
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        _ => Compression::None,
    }
}

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
    levels: CompressionLevels,
    max_bytes: usize,
) -> Result<IncomingBatch, BatchError> {
    let current = batch.header.attributes & CODEC_MASK;
    if current == codec as i16 || batch.header.is_control() {
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
    let compressor = |records: &mut BytesMut, out: &mut BytesMut, codec: Compression| {
        compress(levels, records, out, codec)
    };
    RecordBatchEncoder::encode_with_custom_compression(
        &mut out,
        set.records.iter(),
        &options,
        Some(compressor),
    )
    .map_err(undecodable)?;
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
    use crate::log::test_records::{Spec, encode};

    fn producer_batch(compression: Compression, producer_id: i64, count: i32) -> Bytes {
        let idempotent = producer_id >= 0;
        let spec = Spec {
            producer_id,
            producer_epoch: if idempotent { 3 } else { -1 },
            first_sequence: if idempotent { 40 } else { -1 },
            compression,
            ..Spec::default()
        };
        let records: Vec<_> = (0..count)
            .map(|i| {
                (
                    Some(Bytes::from(format!("key-{i}"))),
                    Some(Bytes::from(vec![b'v'; 300])),
                )
            })
            .collect();
        encode(spec, &records)
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
                let moved = to_codec(original, to, CompressionLevels::default(), 1 << 20).unwrap();
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
        assert_eq!(
            to_codec(lz4, Compression::Lz4, CompressionLevels::default(), 1 << 20)
                .unwrap()
                .bytes,
            lz4.bytes
        );
    }

    #[test]
    fn a_batch_that_grows_past_the_limit_is_refused() {
        let original = &split_and_validate(&producer_batch(Compression::Zstd, -1, 50), 1 << 20).unwrap()[0];
        let limit = original.bytes.len() + 100;
        assert!(matches!(
            to_codec(original, Compression::None, CompressionLevels::default(), limit),
            Err(BatchError::TooLarge { .. })
        ));
    }

    #[test]
    fn levels_change_the_size_and_keep_the_records() {
        // Compressible but not trivially: a higher level must do better.
        let records: Vec<_> = (0..200)
            .map(|i| {
                let value = format!(
                    "{{\"order\":{i},\"items\":[{}],\"note\":\"{}\"}}",
                    i * 7919 % 1000,
                    "abcdefghij".repeat(i % 5 + 1)
                );
                (
                    Some(Bytes::from(format!("customer-{}", i % 17))),
                    Some(Bytes::from(value)),
                )
            })
            .collect();
        let plain = encode(Spec::default(), &records);
        let original = &split_and_validate(&plain, 1 << 20).unwrap()[0];
        for (codec, low, high) in [
            (
                Compression::Gzip,
                CompressionLevels {
                    gzip: 1,
                    ..Default::default()
                },
                CompressionLevels {
                    gzip: 9,
                    ..Default::default()
                },
            ),
            (
                Compression::Zstd,
                CompressionLevels {
                    zstd: -50,
                    ..Default::default()
                },
                CompressionLevels {
                    zstd: 19,
                    ..Default::default()
                },
            ),
            (
                Compression::Lz4,
                CompressionLevels {
                    lz4: 1,
                    ..Default::default()
                },
                CompressionLevels {
                    lz4: 12,
                    ..Default::default()
                },
            ),
        ] {
            let small = to_codec(original, codec, high, 1 << 20).unwrap();
            let large = to_codec(original, codec, low, 1 << 20).unwrap();
            assert!(
                small.bytes.len() < large.bytes.len(),
                "{codec:?}: level {high:?} gave {} bytes, {low:?} gave {}",
                small.bytes.len(),
                large.bytes.len()
            );
            for batch in [small, large] {
                let decoded: Vec<_> = RecordBatchDecoder::decode(&mut batch.bytes.clone())
                    .unwrap()
                    .records
                    .into_iter()
                    .map(|record| (record.key, record.value))
                    .collect();
                assert_eq!(decoded, records, "{codec:?}");
            }
        }
    }
}
