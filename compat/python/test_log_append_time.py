"""message.timestamp.type=LogAppendTime: the broker stamps each batch with its append
time, Produce returns it, and kcat and confluent-kafka read it back instead of the
producer's timestamps; a CreateTime topic keeps the producer's."""

import subprocess
import time

from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

OLD = 1_000_000_000_000  # 2001-09-09, long before the test runs


def produce(broker, topic, n):
    reports = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(n):
        producer.produce(topic, value=f"v{i}".encode(), timestamp=OLD + i,
                         on_delivery=lambda error, message: reports.append((error, message.timestamp())))
    assert producer.flush(30) == 0
    assert all(error is None for error, _ in reports), reports
    return [timestamp for _, timestamp in reports]


def consume(broker, topic, n):
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"ts-{topic}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    stamps = []
    while len(stamps) < n:
        message = consumer.poll(10)
        assert message is not None and message.error() is None
        stamps.append(message.timestamp())
    consumer.close()
    return stamps


def test_log_append_time_topic_returns_broker_timestamps(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topics = [NewTopic("appended", 1, 1, config={"message.timestamp.type": "LogAppendTime"}),
              NewTopic("created", 1, 1)]
    for future in admin.create_topics(topics).values():
        future.result(timeout=30)
    before = int(time.time() * 1000)
    reported = produce(broker, "appended", 20)
    after = int(time.time() * 1000)
    # The produce response carries the append time.
    assert all(kind == TIMESTAMP_LOG_APPEND_TIME and before <= ts <= after for kind, ts in reported), reported
    read = consume(broker, "appended", 20)
    assert all(kind == TIMESTAMP_LOG_APPEND_TIME and before <= ts <= after for kind, ts in read), read
    # kcat (Debian) prints the broker's timestamp too.
    printed = subprocess.run(["kcat", "-C", "-b", broker.bootstrap, "-t", "appended", "-e", "-f", "%T\n"],
                             capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert len(printed) == 20 and all(before <= int(ts) <= after for ts in printed), printed
    # A CreateTime topic keeps what the producer set.
    produce(broker, "created", 5)
    assert consume(broker, "created", 5) == [(TIMESTAMP_CREATE_TIME, OLD + i) for i in range(5)]
    # The topic config reads back.
    from confluent_kafka.admin import ConfigResource
    resource = ConfigResource(ConfigResource.Type.TOPIC, "appended")
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    assert configs["message.timestamp.type"].value == "LogAppendTime"
