//! Request versions Apache Kafka 4.0 dropped (KIP-896) that older clients still send and
//! that need no record-format conversion: OffsetCommit v0–1, OffsetFetch v0,
//! DescribeConfigs v0, CreateTopics v0–1, DeleteTopics v0 and ListOffsets v0 (Debian's
//! sarama 1.22 and kafka-go 0.2.1 use them). The current codec no longer knows them, so
//! they are bridged through the 0.15 release of the same crate, which still does: the
//! request is decoded at its own version and encoded again at the oldest version the
//! handler serves; the handler's answer is decoded at that version and encoded at the
//! client's, with the few fields the versions disagree on carried across. Produce and
//! Fetch below magic v2 stay refused.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol_legacy::messages as old;
use kafka_protocol_legacy::protocol::{Decodable, Encodable};

/// Each bridged API: the oldest version served through the bridge and the version the
/// handler answers it at.
pub const LEGACY_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::ListOffsets, 0, 1),
    (ApiKey::CreateTopics, 0, 2),
    (ApiKey::DeleteTopics, 0, 1),
    (ApiKey::DescribeConfigs, 0, 1),
    (ApiKey::OffsetCommit, 0, 2),
    (ApiKey::OffsetFetch, 0, 1),
];

/// The version the handler serves a bridged request at, if (`api_key`, `version`) is one.
pub fn bridge_version(api_key: ApiKey, version: i16) -> Option<i16> {
    LEGACY_APIS
        .iter()
        .find(|(key, min, bridge)| *key == api_key && (*min..*bridge).contains(&version))
        .map(|(_, _, bridge)| *bridge)
}

/// The oldest version of `api_key` served, counting the bridge.
pub fn oldest_version(api_key: ApiKey) -> Option<i16> {
    LEGACY_APIS
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .map(|(_, min, _)| *min)
}

fn recode<T: Decodable + Encodable>(
    mut body: Bytes,
    from: i16,
    to: i16,
    fix: impl FnOnce(&mut T),
) -> anyhow::Result<Bytes> {
    let mut message = T::decode(&mut body, from)?;
    fix(&mut message);
    let mut out = BytesMut::new();
    message.encode(&mut out, to)?;
    Ok(out.freeze())
}

/// A request body at `version`, re-encoded at `bridge` (the request header is the
/// caller's: every bridged version and its bridge use header v1).
pub fn request_up(api_key: ApiKey, version: i16, bridge: i16, body: Bytes) -> anyhow::Result<Bytes> {
    match api_key {
        ApiKey::ListOffsets => recode(body, version, bridge, |request: &mut old::ListOffsetsRequest| {
            // v0's max_num_offsets is gone from v1: one offset is what v0 answers here.
            for topic in &mut request.topics {
                for partition in &mut topic.partitions {
                    partition.max_num_offsets = 1;
                }
            }
        }),
        ApiKey::CreateTopics => recode(body, version, bridge, |_: &mut old::CreateTopicsRequest| {}),
        ApiKey::DeleteTopics => recode(body, version, bridge, |_: &mut old::DeleteTopicsRequest| {}),
        ApiKey::DescribeConfigs => recode(body, version, bridge, |_: &mut old::DescribeConfigsRequest| {}),
        ApiKey::OffsetCommit => recode(body, version, bridge, |request: &mut old::OffsetCommitRequest| {
            // v1's per-partition commit timestamp has no place in v2; the broker stamps
            // its own commit time, as Kafka does.
            for topic in &mut request.topics {
                for partition in &mut topic.partitions {
                    partition.commit_timestamp = -1;
                }
            }
        }),
        ApiKey::OffsetFetch => recode(body, version, bridge, |_: &mut old::OffsetFetchRequest| {}),
        other => anyhow::bail!("{other:?} is not bridged"),
    }
}

/// A response frame the handler encoded at `bridge` (length prefix, header v0, body),
/// re-encoded at the client's `version`.
pub fn response_down(api_key: ApiKey, version: i16, bridge: i16, frame: Bytes) -> anyhow::Result<Bytes> {
    let mut frame = frame;
    if frame.len() < 8 {
        anyhow::bail!("a response frame of {} bytes", frame.len());
    }
    frame.advance(4);
    let correlation_id = frame.get_i32();
    let body = match api_key {
        ApiKey::ListOffsets => recode(
            frame,
            bridge,
            version,
            |response: &mut old::ListOffsetsResponse| {
                for topic in &mut response.topics {
                    for partition in &mut topic.partitions {
                        if partition.offset >= 0 {
                            partition.old_style_offsets = vec![partition.offset];
                        }
                        partition.offset = -1;
                        partition.timestamp = -1;
                    }
                }
            },
        ),
        ApiKey::CreateTopics => recode(
            frame,
            bridge,
            version,
            |response: &mut old::CreateTopicsResponse| {
                response.throttle_time_ms = 0;
                if version == 0 {
                    for topic in &mut response.topics {
                        topic.error_message = None;
                    }
                }
            },
        ),
        ApiKey::DeleteTopics => recode(
            frame,
            bridge,
            version,
            |response: &mut old::DeleteTopicsResponse| {
                response.throttle_time_ms = 0;
            },
        ),
        ApiKey::DescribeConfigs => {
            recode(
                frame,
                bridge,
                version,
                |response: &mut old::DescribeConfigsResponse| {
                    for result in &mut response.results {
                        for config in &mut result.configs {
                            // v0 says only whether the value is the default (source 5).
                            config.is_default = config.config_source == 5;
                            config.config_source = -1;
                            config.synonyms.clear();
                        }
                    }
                },
            )
        }
        ApiKey::OffsetCommit => recode(frame, bridge, version, |_: &mut old::OffsetCommitResponse| {}),
        ApiKey::OffsetFetch => recode(frame, bridge, version, |_: &mut old::OffsetFetchResponse| {}),
        other => anyhow::bail!("{other:?} is not bridged"),
    }?;
    let mut out = BytesMut::with_capacity(body.len() + 8);
    out.put_i32((body.len() + 4) as i32);
    out.put_i32(correlation_id);
    out.put_slice(&body);
    Ok(out.freeze())
}
