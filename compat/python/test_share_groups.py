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


def test_a_killed_share_partition_leader_loses_no_acknowledgement(cluster_factory):
    """3 nodes, RF=3: SIGKILL of the share-partition's leader mid-consumption. Every
    record is acknowledged in the end; no record whose acknowledgement was answered
    comes back; only records not yet acknowledged are delivered again."""
    from test_replication import leaders

    cluster = cluster_factory(3, settings=["share.coordinator.state.topic.num.partitions=5",
                                           "offsets.topic.num.partitions=5",
                                           "broker.session.timeout.ms=4000",
                                           "group.share.record.lock.duration.ms=5000"])
    bootstrap = ",".join(cluster.bootstrap(node) for node in cluster.node_ids)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("jobs", num_partitions=1, replication_factor=3,
                                  config={"min.insync.replicas": "2"})])["jobs"].result(20)
    consumers = [share_consumer(bootstrap, "failover", "jobs", **{"max.poll.records": 25}) for _ in range(2)]
    n = 4000
    delivered = defaultdict(list)  # offset -> [delivery counts]
    acked_at = {}                  # offset -> when its acknowledgement was answered
    late = []                      # (offset, delivery count) delivered after it was acknowledged

    def consume_once():
        for consumer in consumers:
            batch = [msg for msg in consumer.poll(0.1) if not msg.error()]
            for msg in batch:
                if msg.offset() in acked_at:
                    late.append((msg.offset(), msg.delivery_count()))
                delivered[msg.offset()].append(msg.delivery_count())
                consumer.acknowledge(msg, AcknowledgeType.ACCEPT)
            if not batch:
                continue
            try:
                results = consumer.commit_sync(10)
            except Exception:
                continue
            if all(error is None for error in results.values()):
                now = time.time()
                for msg in batch:
                    acked_at.setdefault(msg.offset(), now)

    try:
        # The share-partition starts at the log end when the group first fetches it:
        # probes are produced until one arrives, so the jobs after them are all read.
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
        deadline = time.time() + 60
        while not delivered and time.time() < deadline:
            producer.produce("jobs", value=b"probe", partition=0)
            producer.flush(10)
            for _ in range(5):
                consume_once()
        assert delivered, "the share group never received a record"
        job_offsets = []
        for i in range(n):
            producer.produce("jobs", value=f"j{i}".encode(), partition=0,
                             on_delivery=lambda err, msg: err is None and job_offsets.append(msg.offset()))
        assert producer.flush(30) == 0 and len(job_offsets) == n
        deadline = time.time() + 60
        while len(set(job_offsets) & set(acked_at)) < n // 3 and time.time() < deadline:
            consume_once()
        leader = leaders(cluster, cluster.node_ids[0], "jobs")[0]
        # One consumer holds a batch, unacknowledged, across the kill.
        held = []
        while not held and time.time() < deadline:
            held = [msg for msg in consumers[0].poll(0.2) if not msg.error()]
        for msg in held:
            delivered[msg.offset()].append(msg.delivery_count())
        in_flight = set(delivered) - set(acked_at)
        acked_before = len(acked_at)
        cluster.kill(leader)
        killed_at = time.time()
        for msg in held:
            consumers[0].acknowledge(msg, AcknowledgeType.ACCEPT)
        try:
            consumers[0].commit_sync(10)
        except Exception:
            pass
        deadline = time.time() + 120
        while not set(job_offsets) <= set(acked_at) and time.time() < deadline:
            consume_once()
        new_leader = leaders(cluster, next(node for node in cluster.node_ids if node != leader), "jobs")[0]
    finally:
        for consumer in consumers:
            consumer.close()
    missing = set(job_offsets) - set(acked_at)
    assert not missing, f"{len(missing)} records never acknowledged"
    assert late == [], f"records delivered again after their acknowledgement was answered: {late[:10]}"
    again = {offset for offset, counts in delivered.items() if len(counts) > 1}
    assert {msg.offset() for msg in held} <= again, "the batch held across the kill is delivered again"
    after_kill = max(acked_at.values()) - killed_at
    print(f"\nshare-partition leader {leader} SIGKILLed after {acked_before} of {n} acknowledgements "
          f"({len(in_flight)} delivered, unacknowledged, {len(held)} held by a consumer): leader {new_leader} took over, {len(again)} records "
          f"delivered again, none acknowledged before; all acknowledged {after_kill:.1f} s after the kill")
    assert new_leader != leader



def test_group_configs_override_where_a_share_group_starts_and_its_lock_duration(broker_factory):
    """A GROUP config resource (KIP-848/KIP-932 group configs, set with the AdminClient):
    share.auto.offset.reset=earliest makes a new share group read what was produced
    before it existed; DescribeConfigs reports the override as GROUP_CONFIG and the rest
    from the broker."""
    from confluent_kafka.admin import ConfigEntry, ConfigResource, ConfigSource, ResourceType
    from confluent_kafka.admin import AlterConfigOpType

    broker = broker_factory(settings=SETTINGS)
    create(broker.bootstrap, "backlog")
    produce(broker.bootstrap, "backlog", 30)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resource = ConfigResource(ResourceType.GROUP, "from-start", incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("share.record.lock.duration.ms", "15000", incremental_operation=AlterConfigOpType.SET),
    ])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(10)
    bad = ConfigResource(ResourceType.GROUP, "from-start", incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "sometime", incremental_operation=AlterConfigOpType.SET)])
    try:
        for future in admin.incremental_alter_configs([bad]).values():
            future.result(10)
        raise AssertionError("an invalid value was accepted")
    except Exception as error:
        assert "sometime" in str(error) or "INVALID_CONFIG" in str(error), error
    described = admin.describe_configs([ConfigResource(ResourceType.GROUP, "from-start")])
    entries = next(iter(described.values())).result(10)
    assert entries["share.auto.offset.reset"].value == "earliest"
    assert entries["share.auto.offset.reset"].source == ConfigSource.GROUP_CONFIG.value
    assert entries["share.record.lock.duration.ms"].value == "15000"
    assert entries["consumer.session.timeout.ms"].source in (ConfigSource.DEFAULT_CONFIG.value,
                                                             ConfigSource.STATIC_BROKER_CONFIG.value)

    consumer = share_consumer(broker.bootstrap, "from-start", "backlog")
    seen = set()
    try:
        deadline = time.time() + 30
        while len(seen) < 30 and time.time() < deadline:
            for msg in consumer.poll(0.2):
                if not msg.error():
                    seen.add(msg.offset())
                    consumer.acknowledge(msg, AcknowledgeType.ACCEPT)
            consumer.commit_sync()
    finally:
        consumer.close()
    assert seen == set(range(30)), f"read from the log start: {sorted(seen)[:5]}... ({len(seen)})"


def test_a_read_committed_share_group_never_sees_aborted_records(broker_factory):
    """share.isolation.level=read_committed (a group config): the share group reads
    committed transactions' records and never an aborted one (their offsets are archived
    on the broker); a read_uncommitted group on the same topic gets both."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    broker = broker_factory(settings=SETTINGS + ["transaction.state.log.replication.factor=1",
                                                 "transaction.state.log.min.isr=1"])
    create(broker.bootstrap, "ledger")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "ledger-writer"})
    producer.init_transactions(30)
    for outcome in ["commit", "abort", "commit", "abort", "commit"]:
        producer.begin_transaction()
        for i in range(5):
            producer.produce("ledger", value=f"{outcome}-{i}".encode(), partition=0)
        # Sent before the abort, so the aborted records are in the log.
        assert producer.flush(30) == 0
        if outcome == "commit":
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for group, level in [("committed-only", "read_committed"), ("everything", "read_uncommitted")]:
        resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
            ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("share.isolation.level", level, incremental_operation=AlterConfigOpType.SET)])
        for future in admin.incremental_alter_configs([resource]).values():
            future.result(10)

    def read(group, expected):
        consumer = share_consumer(broker.bootstrap, group, "ledger")
        values = []
        try:
            deadline = time.time() + 20
            while len(values) < expected and time.time() < deadline:
                for msg in consumer.poll(0.2):
                    if not msg.error():
                        values.append(msg.value().decode())
                        consumer.acknowledge(msg, AcknowledgeType.ACCEPT)
                consumer.commit_sync()
            # Anything more would show up now.
            for msg in consumer.poll(1.0):
                if not msg.error():
                    values.append(msg.value().decode())
                    consumer.acknowledge(msg, AcknowledgeType.ACCEPT)
        finally:
            consumer.close()
        return values

    committed = read("committed-only", 15)
    assert sorted(committed) == sorted(f"commit-{i}" for i in range(5) for _ in range(3)), committed
    everything = read("everything", 25)
    assert sum(value.startswith("abort") for value in everything) == 10, (len(everything), everything)
