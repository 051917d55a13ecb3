"""Network partitions between real broker processes, made with nftables inside the
private network namespace of scripts/netns (scripts/test runs this file there). Each
node has its own loopback address; the test's clients use 127.0.0.1 and reach all."""

import json
import os
import time

import pytest
from confluent_kafka import Producer

import kafka_wire
from cluster import wait_until
from test_cluster import create_topic
from test_replication import FAST, isrs, leaders, read_all, segment_bytes

pytestmark = pytest.mark.netns


@pytest.fixture(autouse=True)
def private_network_namespace():
    if not os.environ.get("FERROLOG_NETNS"):
        pytest.fail("network-partition tests run only under scripts/netns (scripts/test does this)")


class Sender:
    """A confluent-kafka producer bootstrapped from one node, recording every delivery."""

    def __init__(self, bootstrap, acks, **extra):
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 0,
                                  "message.timeout.ms": 8000, "topic.metadata.refresh.interval.ms": 600000,
                                  **extra})
        self.acked, self.failed = [], []

    def send(self, topic, values):
        def report(error, msg):
            if error is None:
                self.acked.append((msg.offset(), msg.value().decode()))
            else:
                self.failed.append((msg.value().decode(), error.code()))
        for value in values:
            self.producer.produce(topic, value=value.encode(), partition=0, on_delivery=report)
        self.producer.flush(30)


def test_a_deposed_leader_truncates_what_it_took_while_cut_off(cluster_factory):
    cluster = cluster_factory(3, settings=FAST, distinct_hosts=True)
    create_topic(cluster.bootstrap(1), "deposed", 1, 3, config={"min.insync.replicas": "2"})
    before = Sender(cluster.bootstrap(1), "all", **{"enable.idempotence": True})
    before.send("deposed", [f"before-{i}" for i in range(100)])
    assert len(before.acked) == 100 and not before.failed
    old = leaders(cluster, 1, "deposed")[0]
    others = [node for node in cluster.node_ids if node != old]

    # Cut the leader off from the other nodes; clients still reach it, and it does not
    # know yet that it is deposed: it keeps taking acks=1 writes.
    cluster.isolate(old)
    cut_off = Sender(cluster.bootstrap(old), "1")
    cut_off.send("deposed", [f"cut-off-{i}" for i in range(50)])
    assert len(cut_off.acked) == 50, f"the cut-off leader took acks=1 writes: {cut_off.failed[:3]}"
    # The majority fences it and elects a new leader from the ISR, which takes acks=all
    # writes at the same offsets.
    new = wait_until(lambda: next((leader for leader in [leaders(cluster, others[0], "deposed")[0]]
                                   if leader in others), None), 30, "a new leader on the majority side")
    after = Sender(cluster.bootstrap(new), "all", **{"enable.idempotence": True})
    after.send("deposed", [f"after-{i}" for i in range(100)])
    assert len(after.acked) == 100, after.failed[:3]
    # acks=all at the deposed leader fails: its followers are gone. Sent on the wire to that
    # broker alone, since a client library may learn the new leader from another node.
    error, offset = kafka_wire.produce(cluster.bootstrap(old), "deposed", 0, b"refused-0", acks=-1,
                                       timeout_ms=3000)
    assert error in (7, 19), f"the deposed leader answered {error} to an acks=all write (offset {offset})"

    cluster.heal()
    wait_until(lambda: len(isrs(cluster, new, "deposed")[0]) == 3, 60, f"broker {old} back in the ISR")
    stored = read_all(cluster.bootstrap(new), "deposed", 1)[0]
    values = [value for _, value in stored]
    at = dict(stored)
    for offset, value in before.acked + after.acked:
        assert at.get(offset) == value, f"acknowledged acks=all write {value} at {offset} is missing"
    assert len(values) == len(set(values)) == 200
    assert not [value for value in values if value.startswith(("cut-off-", "refused-"))], \
        "what the deposed leader took alone is gone"
    assert sorted(offset for offset, _ in after.acked)[0] <= max(offset for offset, _ in cut_off.acked), \
        "the new leader's writes took the offsets of the truncated ones"
    cluster.down()
    copies = {node: segment_bytes(cluster, node, "deposed", 0) for node in cluster.node_ids}
    assert copies[old] == copies[new] == copies[others[0] if others[0] != new else others[1]], \
        "the deposed leader ends identical to the new leader, batch for batch"
    print(json.dumps({"old_leader": old, "new_leader": new, "cut_off_acked": len(cut_off.acked)}))
