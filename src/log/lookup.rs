//! Finding offsets by timestamp in a partition log (ListOffsets by time and -3).

use super::PartitionLog;
use crate::log::LogError;

impl PartitionLog {
    /// The first offset whose record timestamp is at least `timestamp`, with that
    /// timestamp; None when no record is that new. The batch holding it is decoded
    /// (ListOffsets is not on the produce path) to find the exact record.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        for segment in self.segments.values() {
            if segment.max_timestamp < timestamp {
                continue;
            }
            let Some((position, header)) = segment.find_by_timestamp(timestamp)? else {
                continue;
            };
            let bytes = segment.read_batch(position, &header)?;
            let mut buf = bytes::Bytes::from(bytes);
            if let Ok(records) = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf) {
                let found = records
                    .records
                    .iter()
                    .find(|record| record.timestamp >= timestamp)
                    .map(|record| (record.offset, record.timestamp));
                if found.is_some() {
                    return Ok(found);
                }
            }
            return Ok(Some((header.base_offset, header.max_timestamp)));
        }
        Ok(None)
    }

    /// The offset and timestamp of the batch with the largest timestamp (ListOffsets -3).
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let Some(segment) = self.segments.values().max_by_key(|segment| segment.max_timestamp) else {
            return Ok(None);
        };
        if segment.max_timestamp < 0 {
            return Ok(None);
        }
        Ok(segment
            .find_by_timestamp(segment.max_timestamp)?
            .map(|(_, header)| (header.last_offset(), header.max_timestamp)))
    }
}
