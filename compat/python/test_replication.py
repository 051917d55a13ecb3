"""Data replication on three real broker processes: acks=all with min.insync.replicas=2
survives the loss of any one broker, followers catch up, the ISR follows them."""

import subprocess
import sys
import time
from collections import defaultdict

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from cluster import wait_until
from jsonl import count_lines, read_jsonl
from test_cluster import create_topic

# Short sessions and lag times so that failures are noticed in seconds.
FAST = ["broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500", "replica.lag.time.max.ms=3000"]

# A producer process: acks=all, idempotent, retrying; logs every acknowledged message.
PRODUCER = r'''
import json, sys
from confluent_kafka import Producer
bootstrap, topic, count, partitions, out_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
out = open(out_path, "w", buffering=1)
failed = open(out_path + ".failed", "w", buffering=1)
p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
              "linger.ms": 2, "message.timeout.ms": 120000, "topic.metadata.refresh.interval.ms": 1000})
def report(err, msg):
    if err is None:
        out.write(json.dumps([msg.partition(), msg.offset(), msg.value().decode()]) + "\n")
    else:
        failed.write(json.dumps([msg.value().decode(), str(err)]) + "\n")
for i in range(count):
    while True:
        try:
            p.produce(topic, key=str(i).encode(), value=str(i).encode(), partition=i % partitions, on_delivery=report)
            break
        except BufferError:
            p.poll(0.05)
    if i % 500 == 0:
        p.poll(0)
        import time; time.sleep(0.002)
p.flush(180)
'''


class BackgroundProducer:
    """The PRODUCER script in its own process, sending COUNT numbered messages to every
    node of `cluster`; acknowledged sends land in a JSONL file."""

    def __init__(self, cluster, topic, count, partitions, path):
        self.path = path
        bootstrap = ",".join(cluster.bootstrap(node) for node in cluster.node_ids)
        self.process = subprocess.Popen([sys.executable, "-c", PRODUCER, bootstrap, topic, str(count),
                                         str(partitions), str(path)])

    def acked_count(self):
        return count_lines(self.path)

    def finish(self, timeout=240):
        """Waits for the last delivery report: (acknowledged, failed)."""
        assert self.process.wait(timeout=timeout) == 0
        return read_jsonl(self.path), read_jsonl(str(self.path) + ".failed")

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def leaders(cluster, via, topic):
    return {index: leader for index, leader, _, _ in cluster.metadata(via)["topics"][topic]}


def isrs(cluster, via, topic):
    return {index: sorted(isr) for index, _, _, isr in cluster.metadata(via)["topics"][topic]}


def read_all(bootstrap, topic, partitions):
    """Every record of `topic` as {partition: [(offset, value)]}, read to the end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    records, done = defaultdict(list), set()
    deadline = time.time() + 60
    while len(done) < partitions and time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                done.add(msg.partition())
            continue
        records[msg.partition()].append((msg.offset(), msg.value().decode()))
    consumer.close()
    assert len(done) == partitions, "read every partition to its end"
    return records


def segment_bytes(cluster, node, topic, partition):
    directory = cluster.dir / f"node-{node}" / f"{topic}-{partition}"
    return b"".join(path.read_bytes() for path in sorted(directory.glob("*.log")))


def test_acknowledged_writes_survive_killing_each_leader_in_turn(cluster_factory, tmp_path):
    cluster = cluster_factory(3, settings=FAST)
    topic, partitions, count = "durable", 3, 100_000
    create_topic(cluster.bootstrap(1), topic, partitions, 3, config={"min.insync.replicas": "2"})
    producer = BackgroundProducer(cluster, topic, count, partitions, tmp_path / "acked.jsonl")
    try:
        for partition in range(partitions):
            wait_until(lambda: producer.acked_count() > (partition + 1) * count // 5, 120, "progress")
            survivor = next(node for node in cluster.node_ids
                            if node != leaders(cluster, 1 if partition else 2, topic)[partition])
            victim = leaders(cluster, survivor, topic)[partition]
            cluster.kill(victim)
            killed_at = time.time()
            wait_until(lambda: leaders(cluster, survivor, topic)[partition] not in (victim, -1), 30,
                       f"a new leader for partition {partition}")
            print(f"\npartition {partition}: leader {victim} killed; new leader after {time.time() - killed_at:.1f} s")
            cluster.start(victim)
            wait_until(lambda: all(len(isr) == 3 for isr in isrs(cluster, survivor, topic).values()), 60,
                       f"broker {victim} back in every ISR")
        acked, failed = producer.finish()
    finally:
        producer.kill()
    print(f"acknowledged {len(acked)}, failed {len(failed)}")
    assert not failed, failed[:5]
    assert len(acked) == count
    stored = read_all(cluster.bootstrap(1), topic, partitions)
    values = [value for records in stored.values() for _, value in records]
    assert len(values) == len(set(values)), "no message is stored twice"
    at = {(partition, offset): value for partition, records in stored.items() for offset, value in records}
    lost = [entry for entry in acked if at.get((entry[0], entry[1])) != entry[2]]
    assert not lost, f"{len(lost)} acknowledged messages missing or moved, e.g. {lost[:3]}"
    for partition, records in stored.items():
        numbers = [int(value) for _, value in records]
        assert numbers == sorted(numbers), f"partition {partition} is out of send order"
    # Every replica holds the same batches, byte for byte.
    cluster.down()
    for partition in range(partitions):
        copies = {node: segment_bytes(cluster, node, topic, partition) for node in cluster.node_ids}
        assert copies[1] == copies[2] == copies[3], f"replicas of partition {partition} differ"


def send(bootstrap, topic, partition, acks, count=5):
    """Sends `count` messages without retries; returns the delivery errors (None: success)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "retries": 0, "enable.idempotence": False,
                         "message.timeout.ms": 10000})
    results = []
    for i in range(count):
        producer.produce(topic, value=f"{acks}-{i}".encode(), partition=partition,
                         on_delivery=lambda err, msg: results.append(err))
    producer.flush(20)
    return results


def test_min_insync_replicas_with_one_and_two_brokers_down(cluster_factory):
    cluster = cluster_factory(3, settings=FAST)
    create_topic(cluster.bootstrap(1), "guarded", 1, 3, config={"min.insync.replicas": "2"})
    assert send(cluster.bootstrap(1), "guarded", 0, "all") == [None] * 5
    first = next(node for node in cluster.node_ids if node != leaders(cluster, 1, "guarded")[0])
    cluster.kill(first)
    rest = [node for node in cluster.node_ids if node != first]
    wait_until(lambda: len(isrs(cluster, rest[0], "guarded")[0]) == 2, 20, "the ISR to drop the killed broker")
    assert send(cluster.bootstrap(rest[0]), "guarded", 0, "all") == [None] * 5, "one down: acks=all continues"
    survivor = leaders(cluster, rest[0], "guarded")[0]
    second = next(node for node in rest if node != survivor)
    cluster.kill(second)
    time.sleep(4)  # past replica.lag.time.max.ms: the leader sees its last follower gone
    before = len(read_all(cluster.bootstrap(survivor), "guarded", 1)[0])
    errors = send(cluster.bootstrap(survivor), "guarded", 0, "all")
    assert all(error is not None and error.code() == KafkaError.NOT_ENOUGH_REPLICAS for error in errors), errors
    assert len(read_all(cluster.bootstrap(survivor), "guarded", 1)[0]) == before, "nothing was written"
    assert send(cluster.bootstrap(survivor), "guarded", 0, "1") == [None] * 5, "acks=1 continues with two down"


def test_paused_follower_leaves_the_isr_and_rejoins(cluster_factory):
    # Sessions outlast the lag time, so the follower leaves the ISR for lagging, not
    # for being fenced.
    cluster = cluster_factory(3, settings=["replica.lag.time.max.ms=2000", "broker.session.timeout.ms=20000"])
    create_topic(cluster.bootstrap(1), "lagging", 1, 3, config={"min.insync.replicas": "2"})
    leader = leaders(cluster, 1, "lagging")[0]
    controller = cluster.active_controller(via=leader)
    follower = next(node for node in cluster.node_ids if node not in (leader, controller))
    cluster.pause(follower)
    paused_at = time.time()
    try:
        wait_until(lambda: follower not in isrs(cluster, leader, "lagging")[0], 15, "the follower to leave the ISR")
        print(f"\nSIGSTOP to out of the ISR: {time.time() - paused_at:.1f} s (replica.lag.time.max.ms=2000)")
        assert send(cluster.bootstrap(leader), "lagging", 0, "all", count=50) == [None] * 50
    finally:
        cluster.resume(follower)
    resumed_at = time.time()
    wait_until(lambda: follower in isrs(cluster, leader, "lagging")[0], 20, "the follower to rejoin the ISR")
    print(f"SIGCONT to back in the ISR: {time.time() - resumed_at:.1f} s")
    assert len(read_all(cluster.bootstrap(leader), "lagging", 1)[0]) == 50


def test_rolling_restart_with_sigterm_fails_no_produce(cluster_factory, tmp_path):
    cluster = cluster_factory(3, settings=FAST)
    topic, partitions, count = "rolling", 3, 30_000
    create_topic(cluster.bootstrap(1), topic, partitions, 3, config={"min.insync.replicas": "2"})
    producer = BackgroundProducer(cluster, topic, count, partitions, tmp_path / "acked.jsonl")
    try:
        for node in cluster.node_ids:
            wait_until(lambda: producer.acked_count() > node * count // 5, 120, "progress")
            stopped_at = time.time()
            cluster.stop(node)
            print(f"\nbroker {node} stopped (SIGTERM) in {time.time() - stopped_at:.1f} s")
            cluster.start(node)
            other = next(n for n in cluster.node_ids if n != node)
            wait_until(lambda: all(len(isr) == 3 for isr in isrs(cluster, other, topic).values()), 60,
                       f"broker {node} back in every ISR")
        acked, failed = producer.finish()
    finally:
        producer.kill()
    assert not failed, failed[:5]
    assert len(acked) == count
    stored = read_all(cluster.bootstrap(1), topic, partitions)
    at = {(partition, offset): value for partition, records in stored.items() for offset, value in records}
    assert all(at.get((p, o)) == v for p, o, v in acked), "every acknowledged message is where it was acknowledged"
    assert sum(len(records) for records in stored.values()) == count, "nothing twice"


def test_group_offsets_survive_killing_the_coordinator(cluster_factory):
    import kafka_wire
    from confluent_kafka import ConsumerGroupTopicPartitions
    from confluent_kafka.admin import AdminClient
    cluster = cluster_factory(3, settings=FAST)
    create_topic(cluster.bootstrap(1), "jobs", 3, 3, config={"min.insync.replicas": "2"})
    producer = Producer({"bootstrap.servers": cluster.bootstrap(1), "acks": "all"})
    for i in range(300):
        producer.produce("jobs", value=str(i).encode(), partition=i % 3)
    assert producer.flush(30) == 0
    settings = {"bootstrap.servers": ",".join(cluster.bootstrap(n) for n in cluster.node_ids),
                "group.id": "workers", "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    consumer = Consumer(settings)
    consumer.subscribe(["jobs"])
    first = []
    while len(first) < 150:
        msg = consumer.poll(1.0)
        if msg is not None and not msg.error():
            first.append((msg.partition(), msg.offset()))
    consumer.commit(asynchronous=False)
    committed = {p: max(o for q, o in first if q == p) + 1 for p in {q for q, _ in first}}
    consumer.close()
    error, coordinator = kafka_wire.find_coordinator(cluster.bootstrap(1), "workers")
    assert error == 0 and coordinator in cluster.node_ids
    cluster.kill(coordinator)
    survivor = next(node for node in cluster.node_ids if node != coordinator)
    wait_until(lambda: kafka_wire.find_coordinator(cluster.bootstrap(survivor), "workers")[1] not in (coordinator, -1),
               30, "a new coordinator")
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap(survivor)})
    offsets = wait_until(
        lambda: admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("workers")])["workers"].result(10),
        30, "the committed offsets from the new coordinator")
    assert {tp.partition: tp.offset for tp in offsets.topic_partitions if tp.offset >= 0} == committed
    settings["bootstrap.servers"] = cluster.bootstrap(survivor)
    consumer = Consumer(settings)
    consumer.subscribe(["jobs"])
    rest = []
    deadline = time.time() + 60
    while len(rest) < 150 and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None and not msg.error():
            rest.append((msg.partition(), msg.offset()))
    consumer.close()
    assert len(rest) == 150, "resumed where the group committed"
    assert not set(rest) & set(first), "nothing committed is delivered again"


def test_kafka_python_rides_through_a_leader_failover(cluster_factory):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KafkaTopicPartition
    cluster = cluster_factory(3, settings=FAST)
    create_topic(cluster.bootstrap(1), "kp-failover", 1, 3, config={"min.insync.replicas": "2"})
    bootstrap = [cluster.bootstrap(node) for node in cluster.node_ids]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=50, retry_backoff_ms=200,
                             max_in_flight_requests_per_connection=1, request_timeout_ms=10000,
                             metadata_max_age_ms=1000)
    acked, victim = [], None
    for i in range(400):
        if i == 200:
            victim = leaders(cluster, 1, "kp-failover")[0]
            cluster.kill(victim)
        metadata = producer.send("kp-failover", value=f"k{i}".encode(), partition=0).get(timeout=60)
        acked.append((metadata.offset, f"k{i}"))
    producer.close()
    live = next(node for node in cluster.node_ids if node != victim)
    consumer = KafkaConsumer(bootstrap_servers=[cluster.bootstrap(live)], enable_auto_commit=False,
                             consumer_timeout_ms=15000)
    consumer.assign([KafkaTopicPartition("kp-failover", 0)])
    consumer.seek_to_beginning()
    seen = {}
    for record in consumer:
        seen[record.offset] = record.value.decode()
        if len(seen) == len(acked):
            break
    consumer.close()
    assert all(seen.get(offset) == value for offset, value in acked), "every acknowledged message is stored"
    assert len(seen) == len(acked)
