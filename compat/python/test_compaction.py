"""Compacted topics (cleanup.policy=compact): the cleaner keeps each key's latest
record at its offset, tombstones go after delete.retention.ms, records without a key
are refused with INVALID_RECORD, and __consumer_offsets is compacted by the same
cleaner with every committed offset surviving a restart."""

import subprocess
import time
import urllib.request

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from prometheus_client.openmetrics.parser import text_string_to_metric_families

FAST_CLEANER = ["log.cleaner.backoff.ms=100"]
KEYS = 40
ROUNDS = 10
DELETED = range(10)
TOMBSTONE_RETENTION_MS = 10_000


def create_compacted(broker, topic, **extra):
    config = {"cleanup.policy": "compact", "segment.bytes": "2048", "segment.ms": "500",
              "min.cleanable.dirty.ratio": "0.01",
              "delete.retention.ms": str(TOMBSTONE_RETENTION_MS)}
    config.update(extra)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1, config=config)]).values():
        future.result(timeout=30)


def read_all(broker, topic):
    """Every record of partition 0 up to the high watermark: {offset: (key, value)}."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "reader",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.assign([TopicPartition(topic, 0, 0)])
    records = {}
    while high > 0:
        message = consumer.poll(10)
        assert message is not None, "no answer from the broker"
        if message.error():
            assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
            break
        records[message.offset()] = (message.key().decode(), message.value() and message.value().decode())
    consumer.close()
    return records


def metric(broker, name):
    url = f"http://127.0.0.1:{broker.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return None


def test_a_compacted_topic_keeps_each_keys_latest_record_at_its_offset(broker_factory):
    broker = broker_factory(FAST_CLEANER)
    create_compacted(broker, "table")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 2})
    latest = {}

    def delivered(error, message):
        assert error is None, error
        latest[message.key().decode()] = (message.offset(), message.value() and message.value().decode())

    for round_ in range(ROUNDS):
        for key in range(KEYS):
            producer.produce("table", key=f"key-{key}", value=f"v{round_}-{key}-" + "x" * 60,
                             on_delivery=delivered)
        assert producer.flush(30) == 0
    for key in DELETED:
        producer.produce("table", key=f"key-{key}", value=None, on_delivery=delivered)
    assert producer.flush(30) == 0
    produced_at = time.time()
    expected = {offset: (key, value) for key, (offset, value) in latest.items()}
    assert len(expected) == KEYS

    # The cleaner rolls the idle active segment (segment.ms) and compacts everything:
    # one record per key, at the offset it was produced at; tombstones still there.
    deadline = time.time() + 30
    while (records := read_all(broker, "table")) != expected:
        assert time.time() < deadline, f"not compacted: {len(records)} records"
        time.sleep(0.3)
    assert time.time() - produced_at < TOMBSTONE_RETENTION_MS / 1000, "checked before the tombstones expired"
    assert sum(1 for _, value in records.values() if value is None) == len(DELETED)

    # kcat (Debian's) and kafka-python read the compacted log with its offset gaps.
    printed = subprocess.run(["kcat", "-C", "-b", broker.bootstrap, "-t", "table", "-e", "-f", "%o %k\n"],
                             capture_output=True, text=True, timeout=60, check=True).stdout.split("\n")
    assert sorted(line for line in printed if line) == sorted(f"{offset} {key}" for offset, (key, _) in expected.items())
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
    consumer.assign([KafkaTopicPartition("table", 0)])
    consumer.seek_to_beginning()
    seen = {}
    deadline = time.time() + 30
    while len(seen) < KEYS and time.time() < deadline:
        for messages in consumer.poll(timeout_ms=1000).values():
            for message in messages:
                seen[message.offset] = (message.key.decode(), message.value and message.value.decode())
    consumer.close()
    assert seen == expected

    # The batch that ends the log keeps its tombstones (the log must not end in a gap,
    # as Kafka's active segment is never cleaned); one more write lets them go once
    # delete.retention.ms has passed, and nothing else goes.
    producer.produce("table", key="key-39", value="final", on_delivery=delivered)
    assert producer.flush(30) == 0
    survivors = {offset: (key, value) for key, (offset, value) in latest.items() if value is not None}
    deadline = time.time() + 60
    while (records := read_all(broker, "table")) != survivors:
        assert time.time() < deadline, f"tombstones still there: {len(records)} records"
        time.sleep(0.5)
    assert metric(broker, "ferrolog_log_cleaner_passes_total") >= 2
    assert metric(broker, "ferrolog_log_cleaner_read_bytes_total") > metric(broker, "ferrolog_log_cleaner_written_bytes_total") > 0

    # A restart keeps the compacted log and the cleaner's checkpoint.
    broker.stop()
    broker.start()
    assert read_all(broker, "table") == survivors


def test_a_record_without_a_key_is_refused_by_a_compacted_topic(broker):
    create_compacted(broker, "keyed")
    errors = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "retries": 0})
    producer.produce("keyed", value=b"no key", on_delivery=lambda error, message: errors.append(error))
    assert producer.flush(30) == 0
    producer.produce("keyed", key=b"k", value=b"with a key", on_delivery=lambda error, message: errors.append(error))
    assert producer.flush(30) == 0
    assert errors[0] is not None and errors[0].code() == KafkaError.INVALID_RECORD, errors
    assert errors[1] is None
    assert list(read_all(broker, "keyed").values()) == [("k", "with a key")]


def test_consumer_offsets_is_compacted_and_every_group_keeps_its_offsets(broker_factory):
    settings = FAST_CLEANER + ["offsets.topic.segment.bytes=2048", "offsets.topic.num.partitions=1",
                               "offsets.topic.replication.factor=1"]
    broker = broker_factory(settings)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic("source", 2, 1)]).values():
        future.result(timeout=30)
    consumers = {}
    for group in ["alpha", "beta"]:
        consumers[group] = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                                     "enable.auto.commit": False})
    commits = 150
    for i in range(1, commits + 1):
        for group, consumer in consumers.items():
            offset = i if group == "alpha" else 2 * i
            consumer.commit(offsets=[TopicPartition("source", 0, offset), TopicPartition("source", 1, offset + 1)],
                            asynchronous=False)
    # Two groups x two partitions: a handful of live records once compacted, of the
    # 300 commits (600 records) written.
    deadline = time.time() + 30
    while len(records := read_raw(broker, "__consumer_offsets")) > 60:
        assert time.time() < deadline, f"__consumer_offsets not compacted: {len(records)} records"
        time.sleep(0.3)
    for consumer in consumers.values():
        consumer.close()
    broker.stop()
    broker.start()
    for group, base in [("alpha", commits), ("beta", 2 * commits)]:
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
        committed = consumer.committed([TopicPartition("source", 0), TopicPartition("source", 1)], timeout=30)
        assert [tp.offset for tp in committed] == [base, base + 1], (group, committed)
        consumer.close()


def read_raw(broker, topic):
    """The records of partition 0 of `topic` as raw (key, value) pairs."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "raw-reader",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, 0, 0)])
    records = []
    while True:
        message = consumer.poll(10)
        assert message is not None
        if message.error():
            assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
            break
        records.append((message.key(), message.value()))
    consumer.close()
    return records
