"""confluent-kafka (librdkafka 2.16) against the broker: produce with acks=all and
consume assigned partitions back, for every codec."""

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, NewPartitions, ConfigResource


def consume_all(bootstrap, topic, partitions, expected_count, timeout=60):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "unused-assign-only",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    messages, eof = [], set()
    import time
    deadline = time.time() + timeout
    while (len(messages) < expected_count or len(eof) < partitions) and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                eof.add(msg.partition())
                continue
            raise AssertionError(msg.error())
        eof.discard(msg.partition())
        messages.append(msg)
    consumer.close()
    return messages


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_round_trip_acks_all(broker, codec):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = f"ck-{codec}"
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(10)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all",
                         "compression.type": codec, "linger.ms": 5})
    delivered = []

    def on_delivery(error, msg):
        assert error is None, error
        delivered.append((msg.partition(), msg.offset(), msg.key()))

    n = 5000
    for i in range(n):
        producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode() * 3,
                         headers=[("h", str(i).encode())], on_delivery=on_delivery)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    assert len(delivered) == n

    messages = consume_all(broker.bootstrap, topic, 3, n)
    assert len(messages) == n
    got = {(m.partition(), m.offset()): (m.key(), m.value(), m.headers()) for m in messages}
    for partition, offset, key in delivered:
        k, v, h = got[(partition, offset)]
        i = int(key[1:])
        assert k == key and v == f"v{i}".encode() * 3 and h == [("h", str(i).encode())]


def test_admin_create_partitions_and_configs(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = "admin-topic"
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1,
                                  config={"retention.ms": "3600000"})])[topic].result(10)
    with pytest.raises(Exception) as too_many_replicas:
        admin.create_topics([NewTopic("rf3", num_partitions=1, replication_factor=3)])["rf3"].result(10)
    assert "INVALID_REPLICATION_FACTOR" in str(too_many_replicas.value)
    admin.create_partitions([NewPartitions(topic, 5)])[topic].result(10)
    metadata = admin.list_topics(topic, timeout=10)
    assert len(metadata.topics[topic].partitions) == 5
    resource = ConfigResource("topic", topic)
    configs = admin.describe_configs([resource])[resource].result(10)
    assert configs["retention.ms"].value == "3600000"
    assert configs["segment.bytes"].value == "1073741824"
    admin.delete_topics([topic])[topic].result(10)
    assert topic not in admin.list_topics(timeout=10).topics


def _produce_one_batch(bootstrap, topic, records):
    """Sends `records` (key, timestamp_ms) in one batch; returns each delivery's error code."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 500, "batch.num.messages": 10000,
                         "retries": 0, "enable.idempotence": False, "acks": "all"})
    results = {}
    for i, (key, timestamp) in enumerate(records):
        kwargs = {"timestamp": timestamp} if timestamp is not None else {}
        producer.produce(topic, key=key, value=f"v{i}".encode(), partition=0,
                         on_delivery=lambda error, msg, i=i: results.__setitem__(i, error.code() if error else 0),
                         **kwargs)
    assert producer.flush(30) == 0
    return [results[i] for i in range(len(records))]


def test_only_the_refused_records_of_a_batch_fail(broker):
    """KIP-467: a compacted topic refuses the keyless records of a batch, each named in
    record_errors; librdkafka fails those with INVALID_RECORD and the others with its
    "different record" error so the application may resend them. The same for
    timestamps outside message.timestamp.after.max.ms (KIP-937, INVALID_TIMESTAMP)."""
    import time
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("compacted-batch", 1, 1, config={"cleanup.policy": "compact"}),
                         NewTopic("future-batch", 1, 1)])["future-batch"].result(10)
    records = [(None if i % 10 == 0 else f"k{i}".encode(), None) for i in range(100)]
    codes = _produce_one_batch(broker.bootstrap, "compacted-batch", records)
    refused = [i for i, code in enumerate(codes) if code == KafkaError.INVALID_RECORD]
    assert refused == list(range(0, 100, 10)), codes
    assert all(code == KafkaError._INVALID_DIFFERENT_RECORD for i, code in enumerate(codes) if i % 10), codes
    # The others, sent again on their own, are stored.
    keyed = [record for i, record in enumerate(records) if i % 10]
    assert _produce_one_batch(broker.bootstrap, "compacted-batch", keyed) == [0] * 90
    now = int(time.time() * 1000)
    stamped = [(b"k", now + 2 * 3_600_000 if i in (3, 7) else now) for i in range(20)]
    codes = _produce_one_batch(broker.bootstrap, "future-batch", stamped)
    # librdkafka reports every record named in record_errors as INVALID_RECORD.
    assert [i for i, code in enumerate(codes) if code == KafkaError.INVALID_RECORD] == [3, 7], codes
    assert all(code == KafkaError._INVALID_DIFFERENT_RECORD for i, code in enumerate(codes) if i not in (3, 7))
    # The partition's own error is INVALID_TIMESTAMP, as a raw Produce shows.
    import kafka_wire
    assert kafka_wire.produce_error(broker.bootstrap, "future-batch", 0, timestamp=now + 2 * 3_600_000) == 32
