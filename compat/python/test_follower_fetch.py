"""Fetching from the closest replica (KIP-392) with confluent-kafka: brokers in racks,
the rack-aware selector on, a consumer with `client.rack` reads from the follower in
its rack, and reads everything, in order, while the producer keeps writing."""

import json
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from cluster import wait_until
from test_cluster import create_topic
from test_replication import FAST, leaders

RACKS = ["broker.rack=rack-{id}", "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector"]


def produce(bootstrap, topic, values):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    failures = []
    for value in values:
        producer.produce(topic, value=value.encode(), partition=0,
                         on_delivery=lambda error, msg: error and failures.append(error))
    assert producer.flush(30) == 0
    assert not failures, failures


def test_a_consumer_reads_from_the_follower_in_its_rack(cluster_factory):
    cluster = cluster_factory(3, settings=FAST + RACKS)
    create_topic(cluster.bootstrap(1), "nearby", 1, 3, config={"min.insync.replicas": "2"})
    first = [f"first-{i}" for i in range(300)]
    produce(cluster.bootstrap(1), "nearby", first)
    leader = leaders(cluster, 1, "nearby")[0]
    near = next(node for node in cluster.node_ids if node != leader)
    fetched_from = []

    def on_stats(text):
        partition = json.loads(text).get("topics", {}).get("nearby", {}).get("partitions", {}).get("0")
        if partition:
            fetched_from.append((partition["leader"], partition["broker"]))

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap(leader), "group.id": "nearby-reader",
                         "client.rack": f"rack-{near}", "enable.auto.commit": False,
                         "statistics.interval.ms": 200, "stats_cb": on_stats})
    consumer.assign([TopicPartition("nearby", 0, 0)])
    values = []
    second = [f"second-{i}" for i in range(300)]

    def read_until(count, timeout):
        deadline = time.time() + timeout
        while len(values) < count and time.time() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                values.append(msg.value().decode())

    try:
        read_until(len(first), 30)
        # More writes while the consumer reads from the follower: it sees them as the
        # follower's high watermark moves.
        produce(cluster.bootstrap(leader), "nearby", second)
        read_until(len(first) + len(second), 30)
        wait_until(lambda: fetched_from and fetched_from[-1] == (leader, near), 10,
                   f"the consumer fetching from broker {near} while {leader} leads")
    finally:
        consumer.close()
    assert values == first + second, "every message once, in order"
    # It went to the leader first and was sent on to its rack's replica.
    assert (leader, near) in fetched_from, fetched_from[-5:]
