"""Transactions on three real broker processes: the transaction coordinator's broker
and a partition leader are SIGKILLed in the middle of a transaction; the transaction
ends the same way on every partition, and the producer goes on (or is told clearly
that it cannot)."""

import time

from confluent_kafka import KafkaException, Producer

import kafka_wire
from cluster import wait_until
from test_cluster import create_topic
from test_replication import FAST, leaders
from test_transactions import read

TOPIC = "ha-txn"


def coordinator_of(cluster, key, key_type=1):
    """The coordinator of a transactional id (key_type 1) or a group (0), as any live node
    answers FindCoordinator."""
    for node in cluster.node_ids:
        try:
            error, coordinator = kafka_wire.find_coordinator(cluster.bootstrap(node), key, key_type)
        except OSError:
            continue
        if error == 0:
            return coordinator
    return None


def test_killing_the_coordinator_and_a_leader_mid_transaction_commits_or_aborts_everywhere(cluster_factory):
    cluster = cluster_factory(3, settings=FAST)
    bootstrap = ",".join(cluster.bootstrap(node) for node in cluster.node_ids)
    create_topic(cluster.bootstrap(1), TOPIC, 3, 3, config={"min.insync.replicas": "2"})
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "ha", "linger.ms": 5,
                         "transaction.timeout.ms": 60000, "message.timeout.ms": 60000})
    producer.init_transactions(60)
    before = []
    for txn in range(3):
        producer.begin_transaction()
        for i in range(30):
            value = f"before-{txn}-{i}"
            producer.produce(TOPIC, value=value.encode(), partition=i % 3)
            before.append(value)
        producer.commit_transaction(60)

    # The transaction in flight: data on every partition, not yet ended.
    producer.begin_transaction()
    middle = [f"middle-{i}" for i in range(30)]
    for i, value in enumerate(middle):
        producer.produce(TOPIC, value=value.encode(), partition=i % 3)
    producer.flush(30)
    coordinator = wait_until(lambda: coordinator_of(cluster, "ha"), 30, "a transaction coordinator")
    leader = next((node for node in leaders(cluster, coordinator, TOPIC).values() if node != coordinator),
                  next(node for node in cluster.node_ids if node != coordinator))
    cluster.kill(coordinator)
    cluster.kill(leader)
    time.sleep(1)
    cluster.start(coordinator)
    cluster.start(leader)

    try:
        producer.commit_transaction(90)
        committed = True
    except KafkaException as error:
        committed = False
        kafka_error = error.args[0]
        assert kafka_error.txn_requires_abort() or kafka_error.fatal(), f"a clear error: {kafka_error}"
        if kafka_error.txn_requires_abort():
            producer.abort_transaction(90)

    seen = read(bootstrap, TOPIC, 3, "read_committed", timeout=60)
    values = [value for partition in seen.values() for value in partition]
    expected = before + (middle if committed else [])
    assert sorted(values) == sorted(expected), \
        f"committed={committed}: the transaction ended the same way on every partition"

    # The producer goes on; or, if it was fenced, a new one with the same id does.
    after = [f"after-{i}" for i in range(9)]
    try:
        producer.begin_transaction()
        for i, value in enumerate(after):
            producer.produce(TOPIC, value=value.encode(), partition=i % 3)
        producer.commit_transaction(90)
    except KafkaException as error:
        assert error.args[0].fatal(), f"only a fenced producer stops: {error}"
        producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "ha", "linger.ms": 5})
        producer.init_transactions(90)
        producer.begin_transaction()
        for i, value in enumerate(after):
            producer.produce(TOPIC, value=value.encode(), partition=i % 3)
        producer.commit_transaction(90)
    seen = read(bootstrap, TOPIC, 3, "read_committed", timeout=60)
    values = [value for partition in seen.values() for value in partition]
    assert sorted(values) == sorted(expected + after)
    print({"middle_committed": committed, "coordinator": coordinator, "killed_leader": leader})
