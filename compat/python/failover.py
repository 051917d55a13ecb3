"""SIGKILL of a partition's leader under an idempotent acks=all producer: the longest gap
between acknowledgements, and whether every acknowledged record is in the log exactly
once. Shared by tests/test_operations.py and `scripts/bench --failover`."""

import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import wait_until


def leader_of(cluster, via, topic):
    for partition, leader, _, _ in cluster.metadata(via)["topics"].get(topic, []):
        if partition == 0:
            return leader
    return -1


def measure(cluster, topic, kill_controller=False, rate=1000, before=3.0, after=6.0, producer_config=None):
    """Creates `topic` (one partition, RF=3) led by a node that is (or is not) the active
    controller, produces `rate` numbered records a second, SIGKILLs the leader after
    `before` seconds and goes on for `after` more, then reads the partition back. Returns
    the longest gap between acknowledgements (s), when it started relative to the kill,
    and the counts of acknowledged, failed, lost and duplicated records."""
    nodes = cluster.node_ids
    controller = cluster.active_controller(via=nodes[0])
    victim = controller if kill_controller else next(node for node in nodes if node != controller)
    replicas = [victim] + [node for node in nodes if node != victim]
    bootstrap = ",".join(cluster.bootstrap(node) for node in nodes)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[replicas])])[topic].result(30)
    survivor = replicas[1]
    wait_until(lambda: leader_of(cluster, survivor, topic) == victim, 30, "the chosen leader")

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 0, "message.timeout.ms": 60000, **(producer_config or {})})
    acked, ack_times, failed = [], [], []

    def delivered(error, message):
        if error is None:
            acked.append(int(message.value()))
            ack_times.append(time.time())
        else:
            failed.append(error)

    killed_at = []

    def kill_later():
        time.sleep(before)
        killed_at.append(time.time())
        cluster.kill(victim)

    killer = threading.Thread(target=kill_later)
    start = time.time()
    killer.start()
    total = int(rate * (before + after))
    for i in range(total):
        due = start + i / rate
        while (wait := due - time.time()) > 0:
            producer.poll(min(wait, 0.01))
        producer.produce(topic, value=str(i).encode(), partition=0, on_delivery=delivered)
        producer.poll(0)
    killer.join()
    remaining = producer.flush(60)

    gap, gap_start = 0.0, 0.0
    for earlier, later in zip(ack_times, ack_times[1:]):
        if later - earlier > gap:
            gap, gap_start = later - earlier, earlier
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-check", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    read = []
    deadline = time.time() + 60
    while len(read) < len(acked) and time.time() < deadline:
        for message in consumer.consume(1000, 1.0):
            if message.error() is None:
                read.append(int(message.value()))
    consumer.close()
    return {
        "victim": victim,
        "controller": controller,
        "gap_s": gap,
        "gap_from_kill_s": gap_start - killed_at[0],
        "acked": len(acked),
        "failed": len(failed) + remaining,
        "lost": len(set(acked) - set(read)),
        "duplicated": len(read) - len(set(read)),
    }
