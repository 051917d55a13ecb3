"""Clients older than Kafka 4.0's API baseline (KIP-896). Debian's sarama 1.22 commits
with OffsetCommit v1 and reads configs with DescribeConfigs v0: served, as Kafka 3.9
served them. kafka-go 0.2.1's Produce v2 and Fetch v2 (record formats before magic v2)
stay refused: UNSUPPORTED_VERSION, the connection closed, and the broker logs once
which client, API and version it refused."""

import struct

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import kafka_wire


def broker_log(broker):
    return broker.data_dir.with_suffix(".log").read_text(errors="replace")


def _string(text):
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def test_sarama_offset_commit_v1_and_describe_configs_v0(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("sarama-topic", 1, 1)])["sarama-topic"].result(10)
    # OffsetCommit v1: group, generation -1, member "", one topic, one partition
    # (partition, offset, commit timestamp, metadata).
    body = (_string("sarama-group") + struct.pack(">i", -1) + _string("")
            + struct.pack(">i", 1) + _string("sarama-topic")
            + struct.pack(">iiqq", 1, 0, 42, 1_700_000_000_000) + _string(""))
    reply = kafka_wire._call(broker.bootstrap, 8, 1, body, flexible_header=False)
    reply.take(">i")  # correlation id
    assert reply.take(">i") == 1 and reply.string() == "sarama-topic"
    assert reply.take(">i") == 1 and reply.take(">ih") == (0, 0)
    # The commit is there for any client.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "sarama-group"})
    committed = consumer.committed([TopicPartition("sarama-topic", 0)], timeout=10)
    consumer.close()
    assert committed[0].offset == 42
    # DescribeConfigs v0 of the topic: retention.ms is its default.
    body = (struct.pack(">ib", 1, 2) + _string("sarama-topic") + struct.pack(">i", 1) + _string("retention.ms"))
    reply = kafka_wire._call(broker.bootstrap, 32, 0, body, flexible_header=False)
    reply.take(">i")  # correlation id
    reply.take(">i")  # throttle time
    assert reply.take(">i") == 1
    assert reply.take(">h") == 0  # error code
    reply.string()  # error message
    assert reply.take(">b") == 2 and reply.string() == "sarama-topic"
    assert reply.take(">i") == 1
    assert reply.string() == "retention.ms" and reply.string() == "604800000"
    read_only, is_default, sensitive = reply.take(">???")
    assert is_default and not read_only and not sensitive


def test_refused_old_versions_are_logged_once_per_client_api_and_version(broker):
    batch = kafka_wire.record_batch(b"x")
    produce_v2 = (struct.pack(">hi", 1, 5000) + struct.pack(">i", 1) + _string("old-topic")
                  + struct.pack(">ii", 1, 0) + struct.pack(">i", len(batch)) + batch)
    fetch_v2 = (struct.pack(">iii", -1, 100, 1) + struct.pack(">i", 1) + _string("old-topic")
                + struct.pack(">iiqi", 1, 0, 0, 1 << 20))
    for _ in range(3):
        for api_key, body in ((0, produce_v2), (1, fetch_v2)):
            reply = kafka_wire._call(broker.bootstrap, api_key, 2, body, flexible_header=False)
            reply.take(">i")  # correlation id
            assert reply.take(">h") == 35  # UNSUPPORTED_VERSION
    refused = [line for line in broker_log(broker).splitlines() if "refused a request at a version" in line]
    assert len(refused) == 2, refused
    assert any('api="Produce"' in line and "version=2" in line and "ferrolog-test" in line
               and 'supported="3-13"' in line for line in refused), refused
    assert any('api="Fetch"' in line and "version=2" in line for line in refused), refused
