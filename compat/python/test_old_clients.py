"""Clients older than the broker's oldest API versions (sarama 1.22's OffsetCommit v1
and DescribeConfigs v0): the request is refused with UNSUPPORTED_VERSION and the
connection closed, and the broker logs once which client, API and version it refused."""

import struct

import kafka_wire


def broker_log(broker):
    return broker.data_dir.with_suffix(".log").read_text(errors="replace")


def test_refused_old_versions_are_logged_once_per_client_api_and_version(broker):
    group, topic = b"old-group", b"old-topic"
    # OffsetCommit v1: group, generation, member, one topic with one partition
    # (partition, offset, timestamp, metadata).
    offset_commit_v1 = (struct.pack(">h", len(group)) + group + struct.pack(">ih", -1, 0)
                        + struct.pack(">ih", 1, len(topic)) + topic
                        + struct.pack(">iiqqh", 1, 0, 10, -1, -1))
    describe_configs_v0 = struct.pack(">ibh", 1, 2, len(topic)) + topic + struct.pack(">i", -1)
    for _ in range(3):
        for api_key, body in ((8, offset_commit_v1), (32, describe_configs_v0)):
            reply = kafka_wire._call(broker.bootstrap, api_key, 0 if api_key == 32 else 1, body,
                                     flexible_header=False)
            reply.take(">i")  # correlation id
            assert reply.take(">h") == 35  # UNSUPPORTED_VERSION
    log = broker_log(broker)
    refused = [line for line in log.splitlines() if "refused a request at a version" in line]
    assert len(refused) == 2, refused
    assert any("api=\"OffsetCommit\"" in line and "version=1" in line and "ferrolog-test" in line
               and "supported=\"2-9\"" in line for line in refused), refused
    assert any("api=\"DescribeConfigs\"" in line and "version=0" in line for line in refused), refused
