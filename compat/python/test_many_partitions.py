"""Many partitions on one broker: more partitions than the process has descriptors are
all hosted (segment files are held under a budget and reopened on use), survive a
SIGKILL, and a partition whose files cannot be opened goes offline alone."""

import os
import re
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka.admin import KafkaAdminClient

import kafka_wire
from conftest import BrokerProcess

KAFKA_STORAGE_ERROR = 56
POLICY_VIOLATION = 44


def broker_log(broker):
    return broker.data_dir.with_suffix(".log").read_text(errors="replace")


def read_all(bootstrap, topics, n_partitions, expected_per_partition):
    """Every record of every partition, by (topic, partition)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{os.getpid()}-{id(topics)}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for topic in topics for p in range(n_partitions)])
    seen = {}
    wanted = len(topics) * n_partitions * expected_per_partition
    total = 0
    idle = 0
    while total < wanted and idle < 30:
        messages = consumer.consume(1000, 1)
        if not messages:
            idle += 1
            continue
        idle = 0
        for message in messages:
            assert message.error() is None, message.error()
            seen.setdefault((message.topic(), message.partition()), []).append(message.value())
            total += 1
    consumer.close()
    return seen


def broker_with_open_files(tmp_path, limit):
    """A started broker whose process may hold `limit` descriptors (soft and hard)."""
    data = tmp_path / "data"
    data.mkdir()
    broker = BrokerProcess(data)
    broker.max_open_files = limit
    broker.start()
    return broker


def produce_one_to_each(bootstrap, topics, n_partitions, value):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    failures = []
    for topic in topics:
        for partition in range(n_partitions):
            producer.produce(topic, value=value, partition=partition,
                             on_delivery=lambda error, _m: error and failures.append(error))
    assert producer.flush(60) == 0
    assert failures == []


def test_more_partitions_than_descriptors_are_hosted_and_survive_sigkill(tmp_path):
    # 400 partitions need 1 200 descriptors with every segment file open; the broker
    # gets 320 in all.
    broker = broker_with_open_files(tmp_path, 320)
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        topics = [f"many{i}" for i in range(4)]
        for future in admin.create_topics([NewTopic(topic, 100, 1) for topic in topics]).values():
            future.result(timeout=60)
        produce_one_to_each(broker.bootstrap, topics, 100, b"first")
        fds = len(os.listdir(f"/proc/{broker.process.pid}/fd"))
        assert fds <= 320
        seen = read_all(broker.bootstrap, topics, 100, 1)
        assert len(seen) == 400 and all(values == [b"first"] for values in seen.values())

        broker.kill()
        before = len(broker_log(broker))
        broker.start()
        produce_one_to_each(broker.bootstrap, topics, 100, b"second")
        seen = read_all(broker.bootstrap, topics, 100, 2)
        assert len(seen) == 400
        assert all(values == [b"first", b"second"] for values in seen.values()), \
            [key for key, values in seen.items() if values != [b"first", b"second"]][:5]
        log = broker_log(broker)
        assert "open segment file budget" in log[before:]
        assert "Too many open files" not in log, re.findall(r".*Too many open files.*", log)[:3]
    finally:
        broker.kill()


def test_a_partition_that_cannot_be_opened_goes_offline_alone(broker_factory):
    broker = broker_factory()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic("healthy", 2, 1), NewTopic("broken", 2, 1)]).values():
        future.result(timeout=30)
    produce_one_to_each(broker.bootstrap, ["healthy", "broken"], 2, b"before")
    broker.stop()
    # broken-1's first segment cannot be opened any more (a directory in its place).
    segment = Path(broker.data_dir) / "broken-1" / f"{0:020}.log"
    kept = segment.with_suffix(".kept")
    segment.rename(kept)
    segment.mkdir()
    before = len(broker_log(broker))
    broker.start()
    log = broker_log(broker)[before:]
    assert len(re.findall(r"cannot open a partition log.*broken-1", log)) == 1, log[-3000:]
    # Every other partition serves.
    produce_one_to_each(broker.bootstrap, ["healthy"], 2, b"after")
    assert kafka_wire.produce(broker.bootstrap, "broken", 0, b"after", 1, 5000)[0] == 0
    seen = read_all(broker.bootstrap, ["healthy"], 2, 2)
    assert all(values == [b"before", b"after"] for values in seen.values())
    # The broken one answers KAFKA_STORAGE_ERROR, and its files are kept as they were.
    assert kafka_wire.produce(broker.bootstrap, "broken", 1, b"after", 1, 5000)[0] == KAFKA_STORAGE_ERROR
    metadata = admin.list_topics("broken", timeout=10).topics["broken"].partitions
    assert metadata[1].error is not None and metadata[1].error.code() == KAFKA_STORAGE_ERROR
    assert metadata[0].error is None
    assert kept.exists() and segment.is_dir()
    # DescribeLogDirs lists it where its files are, with the bytes they hold.
    kadmin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        dirs = kadmin.describe_log_dirs({"broken": [1]})[0]["log_dirs"]
    finally:
        kadmin.close()
    listed = [(t["name"], p["partition_index"], p["partition_size"])
              for d in dirs for t in d["topics"] for p in t["partitions"]]
    held = sum(f.stat().st_size for f in kept.parent.iterdir() if f.is_file())
    assert held >= kept.stat().st_size > 0
    assert listed == [("broken", 1, held)], listed


def test_creations_beyond_capacity_are_refused_with_the_limit_named(tmp_path):
    # 256 descriptors leave a segment-file budget of 192, which hosts 768 replicas at
    # the default topic.fds.per.partition of 0.25.
    broker = broker_with_open_files(tmp_path, 256)
    data = broker.data_dir
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        refused = admin.create_topics([NewTopic("huge", 1000, 1)])["huge"].exception(timeout=30)
        assert refused is not None
        error = refused.args[0]
        assert error.code() == POLICY_VIOLATION, error
        assert "can host at most 768" in error.str() and "topic.fds.per.partition" in error.str(), error.str()
        # Nothing of it was created.
        assert "huge" not in admin.list_topics(timeout=10).topics
        assert not list(data.glob("huge-*"))

        admin.create_topics([NewTopic("fits", 600, 1)])["fits"].result(timeout=60)
        grown = admin.create_partitions([NewPartitions("fits", 800)])["fits"].exception(timeout=30)
        assert grown is not None and grown.args[0].code() == POLICY_VIOLATION, grown
        assert len(admin.list_topics("fits", timeout=10).topics["fits"].partitions) == 600
        # Every accepted partition is hosted and takes writes.
        produce_one_to_each(broker.bootstrap, ["fits"], 600, b"x")
    finally:
        broker.kill()
