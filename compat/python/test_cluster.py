"""Cluster mode: three real broker processes in combined mode (broker + controller)
sharing cluster metadata through the Raft quorum, driven by scripts/cluster."""

import difflib
import statistics
import subprocess
import time
from collections import Counter

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import wait_until
import kafka_wire

# Short sessions so fencing tests take seconds.
FAST_SESSIONS = ["broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500"]


def create_topic(bootstrap, name, partitions, replication_factor, config=None, timeout=10):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(name, num_partitions=partitions, replication_factor=replication_factor, config=config or {})
    admin.create_topics([topic], operation_timeout=timeout, request_timeout=timeout + 5)[name].result(timeout + 10)


def produce(bootstrap, topic, partitions, per_partition, acks="all"):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5})
    failures = []
    for partition in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, value=f"{partition}-{i}".encode(), partition=partition,
                             on_delivery=lambda error, msg: error and failures.append(error))
    assert producer.flush(30) == 0
    assert not failures, failures


def consume(bootstrap, topic, partitions, expected):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    values = []
    deadline = time.time() + 30
    while len(values) < expected and time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            values.append((msg.partition(), msg.value().decode()))
    consumer.close()
    return values


def test_topic_created_through_one_node_is_seen_by_all_with_leaders_spread(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster.bootstrap(2), "spread", 6, 3)
    for node_id in cluster.node_ids:
        # Committed metadata reaches each node at its own pace (within a Raft heartbeat).
        metadata = wait_until(lambda: "spread" in (m := cluster.metadata(node_id))["topics"] and m, 10,
                              f"the topic on node {node_id}")
        assert sorted(metadata["brokers"]) == [1, 2, 3], metadata
        partitions = metadata["topics"]["spread"]
        assert len(partitions) == 6
        for _, leader, replicas, isr in partitions:
            assert sorted(replicas) == [1, 2, 3] and sorted(isr) == [1, 2, 3]
            assert leader == replicas[0]
        assert Counter(leader for _, leader, _, _ in partitions) == {1: 2, 2: 2, 3: 2}, partitions
        # Debian's kcat lists the same three brokers from any node.
        listing = subprocess.run(["kcat", "-b", cluster.bootstrap(node_id), "-L", "-m", "10"],
                                 check=True, capture_output=True, text=True, timeout=30).stdout
        assert " 3 brokers:" in listing, listing
        for broker_id in (1, 2, 3):
            assert f"broker {broker_id} at {cluster.bootstrap(broker_id)}" in listing, listing
    # Clients find each partition's leader and read back what they wrote.
    produce(cluster.bootstrap(1), "spread", 6, 100)
    values = consume(cluster.bootstrap(3), "spread", range(6), 600)
    assert sorted(values) == sorted((p, f"{p}-{i}") for p in range(6) for i in range(100))
    # The quorum: three voters, all caught up with the leader.
    quorum = wait_until(lambda: (q := cluster.quorum(1))["voters"] and
                        all(end == q["high_watermark"] for end in q["voters"].values()) and q,
                        10, "voters caught up")
    assert sorted(quorum["voters"]) == [1, 2, 3]
    assert quorum["leader"] in (1, 2, 3) and quorum["epoch"] >= 1


def test_create_topics_commit_latency(cluster_factory):
    """CreateTopics is answered once committed by the quorum; measured through the active
    controller and through another node."""
    cluster = cluster_factory(3)
    leader = cluster.active_controller(via=1)
    follower = next(node for node in cluster.node_ids if node != leader)
    for label, node in (("active controller", leader), ("another node", follower)):
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap(node)})
        admin.list_topics(timeout=10)
        latencies = []
        for i in range(30):
            name = f"latency-{node}-{i}"
            started = time.perf_counter()
            admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=3)])[name].result(10)
            latencies.append((time.perf_counter() - started) * 1000)
            # The admin client may send to any broker it learned of (each names itself as
            # controller), so the node asked here may learn of the topic a moment later.
            wait_until(lambda: name in cluster.metadata(node)["topics"], 10, f"{name} on node {node}")
        latencies.sort()
        print(f"\nCreateTopics through {label}: median {statistics.median(latencies):.1f} ms, "
              f"p90 {latencies[int(len(latencies) * 0.9)]:.1f} ms, max {latencies[-1]:.1f} ms")


def test_killed_controller_is_replaced_and_writes_resume(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster.bootstrap(1), "before", 3, 3)
    old_leader = cluster.active_controller(via=1)
    old_epoch = cluster.quorum(1)["epoch"]
    survivor = next(node for node in cluster.node_ids if node != old_leader)
    cluster.kill(old_leader)
    killed_at = time.time()
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap(survivor)})
    attempts = 0
    while True:
        attempts += 1
        try:
            admin.create_topics([NewTopic("after", num_partitions=3, replication_factor=2)],
                                operation_timeout=2, request_timeout=5)["after"].result(10)
            break
        except KafkaException as error:
            assert time.time() - killed_at < 30, f"no CreateTopics succeeded 30 s after the kill: {error}"
            time.sleep(0.05)
    failover = time.time() - killed_at
    print(f"\ncontroller failover: {failover:.2f} s from SIGKILL to the first successful CreateTopics "
          f"({attempts} attempts)")
    new_leader = cluster.active_controller(via=survivor)
    assert new_leader != old_leader
    assert cluster.quorum(survivor)["epoch"] > old_epoch
    for node in cluster.node_ids:
        if node != old_leader:
            wait_until(lambda: "after" in cluster.metadata(node)["topics"], 10, f"the topic on node {node}")
    # The killed node comes back and catches up with what it missed.
    cluster.start(old_leader)
    wait_until(lambda: "after" in cluster.metadata(old_leader)["topics"], 20, "the restarted node to catch up")


def test_two_nodes_down_refuses_writes_and_still_serves_reads(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster.bootstrap(1), "kept", 3, 3)
    produce(cluster.bootstrap(1), "kept", 3, 20, acks="all")  # committed on every replica
    survivor = 3
    for node in (1, 2):
        cluster.kill(node)
    metadata = cluster.metadata(survivor)
    assert "kept" in metadata["topics"], "the survivor still answers Metadata"
    led = [index for index, leader, _, _ in metadata["topics"]["kept"] if leader == survivor]
    assert led, metadata
    values = consume(cluster.bootstrap(survivor), "kept", led, 20 * len(led))
    assert sorted(values) == sorted((p, f"{p}-{i}") for p in led for i in range(20))
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap(survivor)})
    started = time.time()
    future = admin.create_topics([NewTopic("refused", num_partitions=1, replication_factor=1)],
                                 operation_timeout=4, request_timeout=15)["refused"]
    try:
        future.result(30)
        raise AssertionError("a metadata write succeeded without a quorum")
    except KafkaException as error:
        elapsed = time.time() - started
        print(f"\nCreateTopics without a quorum: {error.args[0].name()} after {elapsed:.1f} s: {error.args[0].str()}")
        assert error.args[0].code() == KafkaError.REQUEST_TIMED_OUT, error
        assert elapsed < 15, "answered within the request timeout"


def test_full_restart_keeps_the_metadata_image(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster.bootstrap(1), "a", 3, 3)
    create_topic(cluster.bootstrap(2), "b", 2, 2, config={"retention.ms": "12345"})
    producer = Producer({"bootstrap.servers": cluster.bootstrap(3), "enable.idempotence": True})
    producer.produce("a", value=b"x", partition=0)
    assert producer.flush(30) == 0
    # A consumer's FindCoordinator creates __consumer_offsets; let that happen before
    # the images are compared, so the restart is the only thing between them.
    assert consume(cluster.bootstrap(1), "a", [0], 1) == [(0, "x")]
    cluster.down()
    before = {node: cluster.dump(node) for node in cluster.node_ids}
    assert before[1] == before[2] == before[3], before
    assert "topic a " in before[1] and "config retention.ms=12345" in before[1]
    assert "next.producer.id 1000" in before[1], "a producer-id block was committed"
    cluster.up(3)
    for node in cluster.node_ids:
        topics = cluster.metadata(node)["topics"]
        assert {"a", "b"} <= set(topics), topics
    assert consume(cluster.bootstrap(1), "a", [0], 1) == [(0, "x")]
    cluster.down()
    after = {node: cluster.dump(node) for node in cluster.node_ids}
    for node in cluster.node_ids:
        diff = "\n".join(difflib.unified_diff(before[node].splitlines(), after[node].splitlines(), lineterm=""))
        assert not diff, f"node {node}'s image changed across the restart:\n{diff}"


def test_paused_broker_is_fenced_and_comes_back(cluster_factory):
    cluster = cluster_factory(3, settings=FAST_SESSIONS)
    create_topic(cluster.bootstrap(1), "moves", 3, 3)
    leader = cluster.active_controller(via=1)
    victim = next(node for node in cluster.node_ids if node != leader)
    witness = next(node for node in cluster.node_ids if node not in (victim,))
    led_before = [p for p, lead, _, _ in cluster.metadata(witness)["topics"]["moves"] if lead == victim]
    assert led_before
    cluster.pause(victim)
    paused_at = time.time()
    # Fenced: it leads nothing and is in no ISR. (Metadata still names a broker for
    # 2 s after its fence, so that clients keep their handle while they move.)
    wait_until(lambda: all(lead != victim and victim not in isr
                           for _, lead, _, isr in cluster.metadata(witness)["topics"]["moves"]),
               15, "the paused broker to be fenced")
    fenced_after = time.time() - paused_at
    print(f"\nSIGSTOP to fenced (no leadership, out of every ISR): {fenced_after:.2f} s "
          "(broker.session.timeout.ms=3000)")
    assert fenced_after < 3.0 + 3.0
    # A paused process keeps its connections and its listeners accept: no evidence that
    # it is gone, so it waits for its session (heartbeats every 0.5 s).
    assert fenced_after > 3.0 - 0.5 - 0.1, "a paused broker was fenced before its session ran out"
    wait_until(lambda: victim not in cluster.metadata(witness)["brokers"], 15, "the fenced broker gone from Metadata")
    cluster.resume(victim)
    resumed_at = time.time()
    wait_until(lambda: victim in cluster.metadata(witness)["brokers"], 15, "the resumed broker to return")
    print(f"SIGCONT to back in Metadata: {time.time() - resumed_at:.2f} s")
    wait_until(lambda: all(victim in isr for _, _, _, isr in cluster.metadata(witness)["topics"]["moves"]),
               10, "the returned broker back in every ISR")


def test_leaders_never_propose_a_fenced_broker_and_logs_stay_quiet(cluster_factory):
    """KIP-841: while a broker is down, the leaders never ask the controller to put it
    back into an ISR; the survivors' logs say once that a voter is unreachable, with no
    openraft internals."""
    cluster = cluster_factory(3, settings=FAST_SESSIONS)
    create_topic(cluster.bootstrap(1), "fenced-isr", 6, 3)
    produce(cluster.bootstrap(1), "fenced-isr", 6, 50)
    victim = 3
    logs = {node: cluster.dir / f"node-{node}.log" for node in cluster.node_ids}
    before = {node: len(path.read_text(errors="replace")) for node, path in logs.items()}
    cluster.kill(victim)
    wait_until(lambda: victim not in cluster.metadata(1)["brokers"], 15, "the killed broker to be fenced")
    wait_until(lambda: all(victim not in isr for _, _, _, isr in cluster.metadata(1)["topics"]["fenced-isr"]),
               10, "the fenced broker out of every ISR")
    time.sleep(5)  # leaders used to propose it again about twice a second
    survivors = {node: logs[node].read_text(errors="replace")[before[node]:] for node in (1, 2)}
    for node, text in survivors.items():
        refused = [line for line in text.splitlines() if "ISR change refused" in line]
        assert not refused, f"node {node}: {len(refused)} refused ISR changes, e.g. {refused[:2]}"
        assert "openraft" not in text, f"node {node} logged openraft internals"
    # The active controller (the one survivor that sends it Raft RPCs) says so at most
    # once (not at all if it never reached the voter: then after 10 s), never per RPC.
    unreachable = sum(text.count("controller quorum voter unreachable") for text in survivors.values())
    assert unreachable <= 2, f"the survivors said {unreachable} times that the voter is unreachable"
    cluster.start(victim)
    wait_until(lambda: all(victim in isr for _, _, _, isr in cluster.metadata(1)["topics"]["fenced-isr"]),
               20, "the returned broker back in every ISR")


def test_dedicated_controller_and_brokers(tmp_path):
    """process.roles=controller on one node, process.roles=broker on two others: the
    brokers follow the controller's metadata and are fenced by it."""
    import signal
    import socket

    from cluster import BINARY
    from conftest import free_port

    controller_port = free_port()
    voters = f"controller.quorum.voters=1@127.0.0.1:{controller_port}"
    client_ports = {2: free_port(), 3: free_port()}
    processes = {}

    def start(node_id, *settings):
        args = [str(BINARY), "--set", f"node.id={node_id}", "--set", f"log.dirs={tmp_path / f'n{node_id}'}",
                "--set", voters, "--set", "metrics.listener=127.0.0.1:0"]
        for setting in settings:
            args += ["--set", setting]
        log = open(tmp_path / f"n{node_id}.log", "ab")
        processes[node_id] = subprocess.Popen(args, stdout=log, stderr=log)

    try:
        start(1, "process.roles=controller", f"listeners=CONTROLLER://127.0.0.1:{controller_port}")
        for node_id, port in client_ports.items():
            start(node_id, "process.roles=broker", f"listeners=PLAINTEXT://127.0.0.1:{port}", *FAST_SESSIONS)
        for port in client_ports.values():
            wait_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=0.2).close() or True,
                       30, f"a broker on {port}")
        two, three = (f"127.0.0.1:{client_ports[n]}" for n in (2, 3))
        create_topic(two, "dedicated", 4, 2)
        import kafka_wire
        metadata = wait_until(lambda: "dedicated" in (m := kafka_wire.metadata(three))["topics"] and m, 10,
                              "the topic on broker 3")
        assert sorted(metadata["brokers"]) == [2, 3], "the controller is not a broker"
        assert all(sorted(replicas) == [2, 3] for _, _, replicas, _ in metadata["topics"]["dedicated"])
        produce(two, "dedicated", 4, 25)
        assert len(consume(three, "dedicated", range(4), 100)) == 100
        quorum = kafka_wire.describe_quorum(two)
        assert quorum["leader"] == 1 and sorted(quorum["voters"]) == [1], quorum
        processes[3].send_signal(signal.SIGKILL)
        processes[3].wait()
        wait_until(lambda: sorted(kafka_wire.metadata(two)["brokers"]) == [2], 10, "broker 3 to be fenced")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()


def _port_free(port):
    import socket
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_cluster_ports_can_be_pinned_to_a_base_port(tmp_path):
    """FERROLOG_CLUSTER_PORTS=B puts node ID's client listener on B-1+ID and its
    controller on B+9999+ID; the nodes serve there."""
    import random
    from cluster import Cluster
    for _ in range(100):
        base = random.randrange(12000, 20000)
        ports = [base, base + 1, base + 10000, base + 10001]
        if all(_port_free(port) for port in ports):
            break
    else:
        raise AssertionError("no free base port")
    cluster = Cluster(tmp_path / "pinned")
    cluster.env["FERROLOG_CLUSTER_PORTS"] = str(base)
    try:
        cluster.up(2)
        nodes = sorted(tuple(line.split()[:3]) for line in open(cluster.dir / "nodes"))
        assert nodes == [("1", str(base), str(base + 10000)), ("2", str(base + 1), str(base + 10001))]
        brokers = kafka_wire.metadata(f"127.0.0.1:{base + 1}")["brokers"]
        assert brokers == {1: f"127.0.0.1:{base}", 2: f"127.0.0.1:{base + 1}"}
    finally:
        try:
            cluster.down()
        finally:
            cluster.kill_all()


def test_cluster_ports_refuse_a_bad_value(tmp_path):
    from cluster import Cluster
    cluster = Cluster(tmp_path / "bad")
    cluster.env["FERROLOG_CLUSTER_PORTS"] = "ninety"
    done = subprocess.run([str(cluster_script()), "up", "1"], env=cluster.env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode != 0
    assert "base port" in done.stderr
    assert not (cluster.dir / "nodes").exists()


def cluster_script():
    from cluster import SCRIPT
    return SCRIPT
