"""kafka-python 3.x against the broker: produce with acks=all, consume assigned partitions."""

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic


def test_round_trip_acks_all(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("kp", num_partitions=2, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
    n = 3000
    futures = [producer.send("kp", key=f"k{i}".encode(), value=f"v{i}".encode(),
                             headers=[("h", str(i).encode())]) for i in range(n)]
    producer.flush(30)
    acked = [future.get(timeout=30) for future in futures]
    producer.close()
    assert len({(md.partition, md.offset) for md in acked}) == n

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    consumer.assign([TopicPartition("kp", 0), TopicPartition("kp", 1)])
    consumer.seek_to_beginning()
    got = {}
    deadline = time.time() + 60
    while len(got) < n and time.time() < deadline:
        for tp, records in consumer.poll(timeout_ms=1000).items():
            for record in records:
                got[record.key] = (record.value, record.headers)
    consumer.close()
    assert len(got) == n
    for i in range(n):
        assert got[f"k{i}".encode()] == (f"v{i}".encode(), [("h", str(i).encode())])


def test_gzip_and_lz4(broker):
    for codec in ["gzip", "lz4"]:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks=1, compression_type=codec)
        for i in range(500):
            producer.send(f"kp-{codec}", value=f"{codec}-{i}".encode())
        producer.flush(30)
        producer.close()
        consumer = KafkaConsumer(f"kp-{codec}", bootstrap_servers=broker.bootstrap,
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 group_id=None, consumer_timeout_ms=5000)
        values = [record.value for record in consumer]
        consumer.close()
        assert values == [f"{codec}-{i}".encode() for i in range(500)]


def test_list_config_resources(broker):
    """ListConfigResources (API 74, KIP-1142) through kafka-python's admin client."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("listed", num_partitions=1, replication_factor=1)])
    try:
        everything = admin.list_config_resources()
        assert "listed" in everything["topic"], everything
        assert everything["broker"] == ["0"], everything
        only_topics = admin.list_config_resources(["TOPIC"])
        assert set(only_topics) == {"topic"} and "listed" in only_topics["topic"], only_topics
    finally:
        admin.close()


def test_offsets_for_times_of_a_missing_partition_times_out(broker):
    """offsets_for_times for a partition the topic does not have raises the client's
    timeout error after request_timeout_ms, and a missing partition beside an existing
    one answers None for it."""
    from kafka.errors import KafkaTimeoutError
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("four", num_partitions=4, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for partition in range(4):
        producer.send("four", b"x", partition=partition)
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, request_timeout_ms=500, fetch_max_wait_ms=100)
    try:
        started = time.time()
        try:
            consumer.offsets_for_times({TopicPartition("four", 100): 0})
            raise AssertionError("offsets_for_times of partition 100 returned")
        except KafkaTimeoutError:
            pass
        assert time.time() - started < 5
        found = consumer.offsets_for_times({TopicPartition("four", 0): 0, TopicPartition("four", 100): 0})
        assert found[TopicPartition("four", 0)].offset == 0
        assert found[TopicPartition("four", 100)] is None
    finally:
        consumer.close()


def test_four_members_settle_on_one_generation(broker_factory):
    """Four kafka-python members (one thread each) of one group over four partitions,
    3 s sessions: within 15 s each is Stable with one partition, all on one generation."""
    import threading
    broker = broker_factory(settings=["group.min.session.timeout.ms=1000"])
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("settle", num_partitions=4, replication_factor=1)])
    admin.close()
    views, stop = {}, threading.Event()

    def member(i):
        consumer = KafkaConsumer("settle", bootstrap_servers=broker.bootstrap, group_id="settlers",
                                 session_timeout_ms=3000, heartbeat_interval_ms=1000, request_timeout_ms=4000,
                                 fetch_max_wait_ms=100)
        while not stop.is_set():
            consumer.poll(timeout_ms=200)
            generation = consumer._coordinator._generation
            views[i] = (generation.generation_id if generation else None,
                        sorted(tp.partition for tp in consumer.assignment()), str(consumer._coordinator.state))
        consumer.close()

    threads = [threading.Thread(target=member, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    started, settled = time.time(), None
    try:
        while time.time() - started < 15 and settled is None:
            time.sleep(0.1)
            seen = dict(views)
            if (len(seen) == 4 and len({view[0] for view in seen.values()}) == 1
                    and sorted(p for view in seen.values() for p in view[1]) == [0, 1, 2, 3]
                    and all(len(view[1]) == 1 and view[2] == "<stable>" for view in seen.values())):
                settled = time.time() - started
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert settled is not None, views
    print(f"\nfour kafka-python members settled in {settled:.1f} s")
