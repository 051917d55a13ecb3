"""Start-up after a crash: each log dir's recovery is logged (partitions and bytes to
check, progress, the end), and every acknowledged record is there afterwards."""

import re

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def broker_log(broker):
    return broker.data_dir.with_suffix(".log").read_text(errors="replace")


def test_recovery_after_sigkill_is_logged_per_log_dir(broker_factory, tmp_path):
    second = tmp_path / "second-dir"
    second.mkdir()
    broker = broker_factory(settings=[f"log.dirs={tmp_path / 'data'},{second}"])
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("crashed", 4, 1)])["crashed"].result(timeout=30)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(4000):
        producer.produce("crashed", value=b"x" * 200, partition=i % 4)
    assert producer.flush(30) == 0
    broker.kill()
    before = len(broker_log(broker))
    broker.start()
    log = broker_log(broker)[before:]
    unclean = re.findall(r"recovering log dir after an unclean shutdown.*", log)
    loaded = re.findall(r"log dir loaded.*", log)
    assert len(unclean) == 2 and len(loaded) == 2, log[-3000:]
    # Two partitions in each dir (new partitions go to the dir with fewer), and their bytes.
    for line in loaded:
        assert "partitions=2" in line, line
        total = int(re.search(r"total_bytes=(\d+)", line).group(1))
        assert total > 2 * 1000 * 200, line
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "after-crash"})
    consumer.assign([TopicPartition("crashed", p, 0) for p in range(4)])
    count = 0
    while count < 4000:
        message = consumer.poll(10)
        assert message is not None, f"only {count} read"
        assert message.error() is None, message.error()
        count += 1
    consumer.close()
    # A clean stop says so at the next start.
    broker.stop()
    before = len(broker_log(broker))
    broker.start()
    log = broker_log(broker)[before:]
    assert len(re.findall(r"loading log dir after a clean shutdown", log)) == 2, log[-3000:]


def test_first_start_and_clean_stop_log_only_what_an_operator_needs(broker_factory):
    """A first start on an empty directory is not called a recovery, openraft's internals
    stay out of the default log, and a clean stop logs no warning or error."""
    broker = broker_factory()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("quiet", 2, 1)])["quiet"].result(timeout=30)
    broker.stop()
    log = broker_log(broker)
    lines = log.splitlines()
    assert "first start of this node" in log, log
    assert "unclean" not in log and "not clean" not in log, log
    assert not [line for line in lines if "openraft" in line], log
    assert not [line for line in lines if " WARN " in line or " ERROR " in line], log
    assert "listening" in log and "broker shut down cleanly" in log, log
    assert len(lines) < 40, log
    # A restart after the clean stop is not a first start and not a recovery either.
    before = len(log)
    broker.start()
    broker.stop()
    again = broker_log(broker)[before:]
    assert "first start" not in again and "unclean" not in again and "not clean" not in again, again
    assert "loading log dir after a clean shutdown" in again, again
