"""Incremental fetch sessions (KIP-227): kafka-python consuming 200 partitions opens a
session with its first fetch and then sends only what changed, so its requests shrink;
it still reads everything. Request sizes are read on the wire by a relay the broker
advertises."""

import statistics
import time

from confluent_kafka import Producer
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from conftest import free_port
from frame_proxy import FrameProxy

PARTITIONS = 200
PER_PARTITION = 5


def consume_all(bootstrap, topic, sessions):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_wait_ms=100,
                             enable_incremental_fetch_sessions=sessions)
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    got = set()
    deadline = time.time() + 60
    while len(got) < PARTITIONS * PER_PARTITION and time.time() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got.update(record.value for record in records)
    # Caught up: a few more fetches with nothing new.
    idle_until = time.time() + 1.5
    while time.time() < idle_until:
        for records in consumer.poll(timeout_ms=200).values():
            got.update(record.value for record in records)
    consumer.close()
    return got


def test_a_consumer_of_200_partitions_uses_a_fetch_session(broker_factory):
    proxy_port = free_port()
    broker = broker_factory(settings=[f"advertised.listeners=PLAINTEXT://127.0.0.1:{proxy_port}"])
    proxy = FrameProxy(proxy_port, broker.port)
    try:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics([NewTopic("many", num_partitions=PARTITIONS, replication_factor=1)])
        admin.close()
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
        expected = set()
        for p in range(PARTITIONS):
            for i in range(PER_PARTITION):
                value = f"{p}-{i}".encode()
                producer.produce("many", value=value, partition=p)
                expected.add(value)
        assert producer.flush(30) == 0

        sizes = {}
        for sessions in (True, False):
            before = len(proxy.fetches())
            got = consume_all(broker.bootstrap, "many", sessions)
            assert got == expected, f"sessions={sessions}: read {len(got)} of {len(expected)}"
            fetches = proxy.fetches()[before:]
            assert len(fetches) >= 4, fetches
            sizes[sessions] = [size for (_, _, size, _, _) in fetches]
            if sessions:
                first, rest = fetches[0], fetches[1:]
                assert first[3:] == (0, 0), "the first fetch asks for a new session"
                session_ids = {fetch[3] for fetch in rest}
                assert len(session_ids) == 1 and 0 not in session_ids, session_ids
                epochs = [fetch[4] for fetch in rest]
                assert epochs == list(range(1, len(rest) + 1)), epochs
            else:
                assert all(fetch[4] == -1 for fetch in fetches), fetches
        with_session, without = sizes[True], sizes[False]
        print(f"fetch request bytes for {PARTITIONS} partitions: with a session first "
              f"{with_session[0]}, then median {statistics.median(with_session[1:])}, "
              f"max {max(with_session[1:])}; without a session median "
              f"{statistics.median(without)}")
        # Every full fetch names all 200 partitions; after its first, a session's
        # fetches name only those whose offset moved (none once caught up).
        assert min(without) > PARTITIONS * 16
        assert with_session[0] > PARTITIONS * 16
        assert statistics.median(with_session[1:]) < min(without) / 4
        assert min(with_session[1:]) < 200
    finally:
        proxy.close()
