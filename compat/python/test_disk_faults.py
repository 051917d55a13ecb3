"""A full disk (a small tmpfs mounted in the private namespace of scripts/netns): the
partition that hits ENOSPC goes offline with KAFKA_STORAGE_ERROR, nothing it could not
store is acknowledged, a partition on another log dir keeps working, and after a
restart with space every acknowledged message is there."""

import os
import subprocess

import pytest
from confluent_kafka import KafkaError, Producer

from test_cluster import create_topic

pytestmark = pytest.mark.netns


def send(bootstrap, partition, values):
    """Sends without retries: {value: offset} acknowledged, [error codes] refused."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "retries": 0, "linger.ms": 0,
                         "enable.idempotence": False, "message.timeout.ms": 10000})
    acked, refused = {}, []

    def report(error, msg):
        if error is None:
            acked[msg.value()] = msg.offset()
        else:
            refused.append(error.code())
    for value in values:
        producer.produce("full", value=value, partition=partition, on_delivery=report)
        producer.poll(0)
        producer.flush(10)  # one at a time: each outcome is that message's
    return acked, refused


def test_a_full_disk_takes_only_its_log_offline_and_loses_nothing_acknowledged(broker_factory, tmp_path):
    if not os.environ.get("FERROLOG_NETNS"):
        pytest.fail("runs only under scripts/netns (a private mount namespace for the small disk)")
    big, small = tmp_path / "big", tmp_path / "small"
    big.mkdir()
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "ferrolog-full-disk", str(small)], check=True)
    try:
        settings = [f"log.dirs={big},{small}", "log.segment.bytes=262144"]
        broker = broker_factory(settings=settings, name="full-disk")
        create_topic(broker.bootstrap, "full", 2, 1)
        on_small = next(p for p in (0, 1) if (small / f"full-{p}").exists())
        other = 1 - on_small
        values = [f"{i:06d}".encode() + b"x" * 8000 for i in range(400)]  # ~3.2 MB: more than fits
        acked, refused = send(broker.bootstrap, on_small, values)
        assert refused, "the small disk filled up"
        assert set(refused) == {KafkaError.KAFKA_STORAGE_ERROR}, refused
        assert 10 < len(acked) < len(values)
        print(f"acknowledged {len(acked)} of {len(values)} before the disk filled; refused {len(refused)}")
        # The other log dir is unaffected.
        more, failures = send(broker.bootstrap, other, [b"elsewhere-%d" % i for i in range(20)])
        assert len(more) == 20 and not failures
        broker.stop()
        subprocess.run(["mount", "-o", "remount,size=64m", str(small)], check=True)
        broker.start()
        records = read_all_bytes(broker.bootstrap, on_small)
        for value, offset in acked.items():
            assert records.get(offset) == value, f"acknowledged message at {offset} missing after restart"
        # It takes writes again once there is space.
        again, failures = send(broker.bootstrap, on_small, [b"after-restart"])
        assert len(again) == 1 and not failures
        broker.stop()
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def read_all_bytes(bootstrap, partition):
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "full-reader", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition("full", partition, 0)])
    records = {}
    while True:
        msg = consumer.poll(5)
        if msg is None:
            break
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                break
            continue
        records[msg.offset()] = msg.value()
    consumer.close()
    return records
