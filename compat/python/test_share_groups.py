"""KIP-932 share groups with confluent-kafka's ShareConsumer: members share one
partition, each record is acquired by one member at a time, and acknowledgements
(accept, release, reject), lock expiry and the delivery count limit work as in Kafka."""

import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from confluent_kafka import AcknowledgeType, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, NewTopic

from test_groups import read_log, wait_for
from test_metrics import scrape, value

HERE = Path(__file__).parent
SETTINGS = ["offsets.topic.num.partitions=4", "group.share.record.lock.duration.ms=3000",
            "group.share.delivery.count.limit=3"]


def create(bootstrap, topic, partitions=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(10)


def produce(bootstrap, topic, n, prefix="r"):
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(n):
        producer.produce(topic, value=f"{prefix}{i}".encode(), partition=0)
    assert producer.flush(30) == 0


def share_consumer(bootstrap, group, topic, **settings):
    consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                              "share.acknowledgement.mode": "explicit", **settings})
    consumer.subscribe([topic])
    return consumer


def share_partition_started(broker, group, topic):
    samples = scrape(broker)
    return value(samples, "ferrolog_share_partition_start_offset", group=group, topic=topic, partition=0) is not None


def until_joined(consumers, broker, group, topic, seconds=1.0):
    """Polls every consumer until the share-partition exists (it starts at the log end,
    share.auto.offset.reset=latest, so what is produced next is read) and for a moment
    more, so every member has joined and opened its share session."""
    started = None
    deadline = time.time() + 30
    while time.time() < deadline:
        for consumer in consumers:
            for msg in consumer.poll(0.1):
                consumer.acknowledge(msg, AcknowledgeType.ACCEPT)
        if started is None and share_partition_started(broker, group, topic):
            started = time.time()
        if started is not None and time.time() - started >= seconds:
            return
    raise AssertionError("the share-partition was never created")


def test_three_share_consumers_on_one_partition_get_distinct_records_and_all_of_them(broker_factory):
    broker = broker_factory(settings=SETTINGS)
    create(broker.bootstrap, "queue")
    consumers = [share_consumer(broker.bootstrap, "workers", "queue", **{"max.poll.records": 20})
                 for _ in range(3)]
    try:
        until_joined(consumers, broker, "workers", "queue")
        n = 3000
        produce(broker.bootstrap, "queue", n)
        seen = defaultdict(list)
        deadline = time.time() + 60
        while len(seen) < n and time.time() < deadline:
            for index, consumer in enumerate(consumers):
                for msg in consumer.poll(0.05):
                    if msg.error():
                        continue
                    seen[msg.offset()].append(index)
                    consumer.acknowledge(msg, AcknowledgeType.ACCEPT)
                consumer.commit_sync()
    finally:
        for consumer in consumers:
            consumer.close()
    assert len(seen) == n, f"{len(seen)} of {n} records"
    assert all(len(who) == 1 for who in seen.values()), "a record went to two consumers"
    per_consumer = [sum(1 for who in seen.values() if who[0] == index) for index in range(3)]
    print(f"\nrecords per share consumer: {per_consumer}")
    assert all(count > 0 for count in per_consumer), per_consumer


def test_release_redelivers_with_a_higher_count_and_reject_archives(broker_factory):
    broker = broker_factory(settings=SETTINGS)
    create(broker.bootstrap, "acks")
    consumer = share_consumer(broker.bootstrap, "acks-group", "acks")
    try:
        until_joined([consumer], broker, "acks-group", "acks")
        produce(broker.bootstrap, "acks", 2)
        deliveries = []
        deadline = time.time() + 30
        while time.time() < deadline and len(deliveries) < 6:
            for msg in consumer.poll(0.2):
                if msg.error():
                    continue
                deliveries.append((msg.offset(), msg.delivery_count()))
                # Offset 0: released each time until the limit (3) archives it.
                # Offset 1: rejected at once.
                kind = AcknowledgeType.RELEASE if msg.value() == b"r0" else AcknowledgeType.REJECT
                consumer.acknowledge(msg, kind)
            consumer.commit_sync()
        # Nothing more comes: offset 0 was archived at its third delivery.
        end = time.time() + 4
        while time.time() < end:
            for msg in consumer.poll(0.2):
                deliveries.append((msg.offset(), msg.delivery_count()))
                consumer.acknowledge(msg, AcknowledgeType.ACCEPT)
    finally:
        consumer.close()
    assert sorted(deliveries) == [(0, 1), (0, 2), (0, 3), (1, 1)], deliveries


def test_a_killed_consumers_records_go_to_another_after_the_lock_duration(broker_factory, tmp_path):
    broker = broker_factory(settings=SETTINGS)
    create(broker.bootstrap, "locked")
    log = tmp_path / "holder.jsonl"
    holder = subprocess.Popen([sys.executable, str(HERE / "share_worker.py"), broker.bootstrap, "lock-group",
                               "locked", str(log), "hold"])
    other = None
    try:
        # The holder alone first: it takes the records; the other member joins only
        # then, so it has not fetched (and buffered) any of them itself.
        wait_for(lambda: share_partition_started(broker, "lock-group", "locked"), 30, "the holder fetching")
        produce(broker.bootstrap, "locked", 20)
        wait_for(lambda: sum(1 for e in read_log(log) if e[0] == "msg") == 20, 30, "the holder acquired all")
        held = {e[3] for e in read_log(log) if e[0] == "msg"}
        # The broker acquired them before the holder logged any.
        acquired_by = min(e[1] for e in read_log(log) if e[0] == "msg")
        other = share_consumer(broker.bootstrap, "lock-group", "locked")
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        killed_at = time.time()
        redelivered = {}
        deadline = time.time() + 30
        while not held <= set(redelivered) and time.time() < deadline:
            for msg in other.poll(0.2):
                if msg.error():
                    continue
                redelivered.setdefault(msg.offset(), (msg.delivery_count(), time.time()))
                other.acknowledge(msg, AcknowledgeType.ACCEPT)
            other.commit_sync()
    finally:
        if other is not None:
            other.close()
        if holder.poll() is None:
            holder.kill()
    assert held <= set(redelivered), f"not redelivered: {held - set(redelivered)}"
    assert all(redelivered[offset][0] == 2 for offset in held), redelivered
    first = min(redelivered[offset][1] for offset in held)
    print(f"\n{len(held)} records of a SIGKILLed share consumer redelivered {first - killed_at:.1f} s after "
          f"the kill, {first - acquired_by:.1f} s after the holder got them (lock duration 3 s)")
    # The lock runs from the broker's acquisition, a little before the holder logged.
    assert first - acquired_by > 2.0, "redelivered before the holder's locks could have expired"


def test_share_groups_and_their_records_are_in_the_metrics(broker_factory):
    broker = broker_factory(settings=SETTINGS)
    create(broker.bootstrap, "listed")
    consumers = [share_consumer(broker.bootstrap, "listed-group", "listed") for _ in range(2)]
    try:
        until_joined(consumers, broker, "listed-group", "listed")
        produce(broker.bootstrap, "listed", 10)
        # Reject two, accept the rest: the start moves past them all.
        n_polled = 0
        deadline = time.time() + 30
        while n_polled < 10 and time.time() < deadline:
            for consumer in consumers:
                for msg in consumer.poll(0.1):
                    if msg.error():
                        continue
                    consumer.acknowledge(msg, AcknowledgeType.REJECT if n_polled < 2 else AcknowledgeType.ACCEPT)
                    n_polled += 1
                consumer.commit_sync()
        assert n_polled == 10
        labels = {"group": "listed-group", "topic": "listed", "partition": 0}
        wait_for(lambda: value(scrape(broker), "ferrolog_share_partition_start_offset", **labels) == 10, 10,
                 "the start offset past every acknowledged record")
        samples = scrape(broker)
        assert value(samples, "ferrolog_consumer_group_members", group="listed-group", type="share") == 2
        for state in ("available", "acquired", "archived"):
            assert value(samples, "ferrolog_share_partition_records", state=state, **labels) == 0, state
    finally:
        for consumer in consumers:
            consumer.close()
