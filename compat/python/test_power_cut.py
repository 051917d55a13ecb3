"""Power cuts: SIGKILL plus the loss of everything a node did not fsync, on real broker
processes whose data directories are powercut-fs mounts (scripts/cluster with
FERROLOG_CLUSTER_POWERCUT=1), inside the private namespaces of scripts/netns.

- The file system itself: unsynced data, truncations and entries vanish at a cut;
  synced ones stay.
- The chaos workload through single-node power cuts with the default (async) flush:
  the leader's, a random node's (restarted at once and later), and the leader's when it
  is alone in its ISR. Nothing acknowledged is lost (KIP-966: a broker back from an
  unclean shutdown leads nothing and joins no ISR until it caught up; replicas that left
  an ISR below min.insync.replicas stay eligible).
- Three whole-cluster power cuts with log.flush.interval.messages=1: nothing lost.
- A whole-cluster power cut with log.flush.interval.messages=1 while pipelined
  producers write as fast as they can, so that acknowledgements ride on group commits
  of leaders and followers: nothing lost.
- A group's committed offsets and a transaction's outcome survive a power cut of their
  coordinator's node.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from cluster import wait_until
from test_cluster import create_topic
from test_replication import FAST
from test_transactions import read
from test_transactions_cluster import coordinator_of

pytestmark = pytest.mark.netns
REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "compat" / "chaos" / "run.py"
FS_BIN = Path(os.environ.get("FERROLOG_POWERCUT_FS_BIN", REPO / "target" / "release" / "powercut-fs"))


def require_netns():
    if not os.environ.get("FERROLOG_NETNS"):
        pytest.fail("power-cut tests run only under scripts/netns (scripts/test does this)")


def control(socket_path, command):
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "lib" / "powercut_ctl.py"), str(socket_path), command],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(path, data, sync, append=False):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | (os.O_APPEND if append else 0), 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def test_the_file_system_drops_exactly_what_was_not_synced(tmp_path):
    require_netns()
    mount, sock = tmp_path / "mnt", tmp_path / "fs.sock"
    daemon = subprocess.Popen([str(FS_BIN), str(mount), str(sock)])
    try:
        wait_until(lambda: sock.exists() and control(sock, "ping") == "ok", 10, "powercut-fs to start")
        (mount / "kept").mkdir()
        fsync_path(mount)
        write(mount / "kept" / "synced", b"durable", sync=True)
        write(mount / "kept" / "synced", b" + lost", sync=False, append=True)
        write(mount / "kept" / "shrunk", b"0123456789", sync=True)
        os.truncate(mount / "kept" / "shrunk", 3)  # not synced: comes back whole
        write(mount / "kept" / "data-only", b"no entry", sync=True)  # its entry is not synced
        fsync_path(mount / "kept")
        write(mount / "kept" / "after", b"x", sync=True)  # created after the dir fsync
        os.rename(mount / "kept" / "synced", mount / "kept" / "renamed")  # not synced
        (mount / "gone").mkdir()  # the root is not synced again
        before = json.loads(control(sock, "stats"))
        assert before["unsynced"] > 0
        answer = control(sock, "cut")
        assert answer.startswith("ok ")
        stats = json.loads(answer[3:])
        assert stats["power_cuts"] == 1 and stats["dropped_pages"] > 0 and stats["dropped_entries"] > 0
        assert stats["unsynced"] == 0
        assert sorted(os.listdir(mount)) == ["kept"]
        assert sorted(os.listdir(mount / "kept")) == ["data-only", "shrunk", "synced"]
        assert (mount / "kept" / "synced").read_bytes() == b"durable"
        assert (mount / "kept" / "shrunk").read_bytes() == b"0123456789"
        assert (mount / "kept" / "data-only").read_bytes() == b"no entry"
        # After a synced rename and truncation, they stay.
        os.rename(mount / "kept" / "synced", mount / "kept" / "renamed")
        os.truncate(mount / "kept" / "shrunk", 3)
        fsync_path(mount / "kept" / "shrunk")
        fsync_path(mount / "kept")
        control(sock, "cut")
        assert sorted(os.listdir(mount / "kept")) == ["data-only", "renamed", "shrunk"]
        assert (mount / "kept" / "shrunk").read_bytes() == b"012"
    finally:
        if daemon.poll() is None:
            try:
                control(sock, "quit")
            finally:
                daemon.wait(timeout=30)
    assert not os.path.ismount(mount)


def chaos(tmp_path, nemeses):
    completed = subprocess.run([sys.executable, str(RUN), "--schedule", "ci", "--seed", "1", "--nemeses",
                                ",".join(nemeses), "--out", str(tmp_path)],
                               capture_output=True, text=True, timeout=900)
    print(completed.stdout[-4000:])
    result = json.loads((tmp_path / "result.json").read_text())
    print({key: value for key, value in result.items() if key != "anomalies"})
    assert result["events"] == len(nemeses), "every nemesis struck"
    assert result["acknowledged"] > 1000
    assert result["ok"], {name: entry for name, entry in result["anomalies"].items() if entry["count"]}
    assert completed.returncode == 0, completed.stderr[-2000:]
    return result


def test_single_node_power_cuts_with_the_default_flush_lose_nothing(tmp_path):
    require_netns()
    chaos(tmp_path, ["power-cut-leader", "power-cut", "power-cut-late", "power-cut-shrunk-isr"])
    events = [json.loads(line) for line in (tmp_path / "nemeses.jsonl").read_text().splitlines()]
    shrunk = [event for event in events if event["kind"] == "power-cut-shrunk-isr"]
    assert shrunk and shrunk[0]["shrunk"], f"the leader was alone in its ISR when its power was cut: {shrunk}"


def test_three_whole_cluster_power_cuts_with_sync_flush_lose_nothing(tmp_path):
    require_netns()
    chaos(tmp_path, ["power-loss"] * 3)


def flush_counts(cluster):
    """Each node's (flushes, produce requests) from its /metrics (the address is in its log)."""
    import re
    import urllib.request
    counts = {}
    for node in cluster.node_ids:
        found = re.search(r"metrics at http://([0-9.:]+)/metrics", (cluster.dir / f"node-{node}.log").read_text())
        assert found, f"node {node} logs its metrics address"
        text = urllib.request.urlopen(f"http://{found.group(1)}/metrics", timeout=10).read().decode()
        flushes = produces = 0.0
        for line in text.splitlines():
            if line.startswith("ferrolog_log_flushes_total "):
                flushes = float(line.split()[1])
            elif line.startswith('ferrolog_requests_total{api="Produce"'):
                produces += float(line.split()[1])
        counts[node] = (flushes, produces)
    return counts


def test_a_whole_cluster_power_cut_under_pipelined_producers_with_sync_flush_loses_nothing(cluster_factory):
    """Four producers with five requests in flight each write acks=all as fast as they
    can; every node loses power at once in the middle. Leaders and followers answered
    through group commits (followers report only what they fsynced), so every
    acknowledged record must be there after the restart."""
    import threading
    import time
    require_netns()
    cluster = cluster_factory(3, settings=FAST + ["log.flush.interval.messages=1"], distinct_hosts=True,
                              power_cuts=True)
    bootstrap = ",".join(cluster.bootstrap(node) for node in cluster.node_ids)
    topic = "grouped"
    create_topic(cluster.bootstrap(1), topic, 3, 3, config={"min.insync.replicas": "2"})
    acknowledged, stop = [], threading.Event()

    def produce(name):
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                             "max.in.flight.requests.per.connection": 5, "message.timeout.ms": 10000,
                             "retries": 0})
        sent = 0
        while not stop.is_set():
            value = f"{name}-{sent}"
            try:
                producer.produce(topic, value=value.encode(), partition=sent % 3,
                                 on_delivery=lambda error, msg: error is None and acknowledged.append(
                                     msg.value().decode()))
                sent += 1
            except BufferError:
                pass
            producer.poll(0)
        producer.flush(15)

    threads = [threading.Thread(target=produce, args=(f"p{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(acknowledged) > 5000, 60, "5 000 acknowledged writes")
        counts = flush_counts(cluster)
        # Every node fsynced (as leader and as follower), and requests shared fsyncs.
        assert all(flushes > 0 for flushes, _ in counts.values()), counts
        # The whole cluster dies at once: every broker SIGKILLed, then each file system
        # drops what was not synced.
        pids = [int((cluster.dir / f"node-{node}.pid").read_text()) for node in cluster.node_ids]
        for pid in pids:
            os.kill(pid, 9)
        before_cut = len(acknowledged)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    for node in cluster.node_ids:
        cluster.power_cut(node)
    time.sleep(1)
    cluster.up(3)
    kept = list(acknowledged)
    assert len(kept) >= before_cut > 5000
    seen = read(bootstrap, topic, 3, "read_uncommitted", timeout=120)
    stored = {value for values in seen.values() for value in values}
    lost = [value for value in kept if value not in stored]
    print(f"acknowledged {len(kept)}, stored {len(stored)}, lost {len(lost)}; flushes/produce requests by node "
          f"{counts}")
    assert not lost, f"{len(lost)} of {len(kept)} acknowledged writes lost, e.g. {lost[:5]}"


def committed(bootstrap, group, topic):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return {tp.partition: tp.offset for tp in consumer.committed([TopicPartition(topic, p) for p in range(3)],
                                                                      timeout=30)}
    finally:
        consumer.close()


def test_offsets_and_transactions_survive_a_power_cut_of_their_coordinator(cluster_factory):
    require_netns()
    cluster = cluster_factory(3, settings=FAST, distinct_hosts=True, power_cuts=True)
    bootstrap = ",".join(cluster.bootstrap(node) for node in cluster.node_ids)
    topic = "coordinated"
    create_topic(cluster.bootstrap(1), topic, 3, 3, config={"min.insync.replicas": "2"})

    # A group commits offsets; its coordinator's node loses power.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "survivors", "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(topic, p, 10 * (p + 1)) for p in range(3)], asynchronous=False)
    consumer.close()
    group_coordinator = wait_until(lambda: coordinator_of(cluster, "survivors", 0), 30, "a group coordinator")
    cluster.power_cut(group_coordinator)
    cluster.start(group_coordinator)
    assert wait_until(lambda: committed(bootstrap, "survivors", topic) == {0: 10, 1: 20, 2: 30}, 60,
                      "the committed offsets back")

    # One transaction committed, one left open; the coordinator's node loses power.
    done = Producer({"bootstrap.servers": bootstrap, "transactional.id": "done", "linger.ms": 5})
    done.init_transactions(60)
    done.begin_transaction()
    committed_values = [f"committed-{i}" for i in range(60)]
    for i, value in enumerate(committed_values):
        done.produce(topic, value=value.encode(), partition=i % 3)
    done.commit_transaction(60)
    open_txn = Producer({"bootstrap.servers": bootstrap, "transactional.id": "open", "linger.ms": 5,
                         "transaction.timeout.ms": 60000})
    open_txn.init_transactions(60)
    open_txn.begin_transaction()
    for i in range(30):
        open_txn.produce(topic, value=f"open-{i}".encode(), partition=i % 3)
    open_txn.flush(30)
    for transactional_id in ("done", "open"):
        coordinator = wait_until(lambda: coordinator_of(cluster, transactional_id, 1), 30, "a transaction coordinator")
        cluster.power_cut(coordinator)
        cluster.start(coordinator)
    # A new producer with the open transaction's id aborts it.
    successor = Producer({"bootstrap.servers": bootstrap, "transactional.id": "open", "linger.ms": 5})
    successor.init_transactions(90)
    seen = read(bootstrap, topic, 3, "read_committed", timeout=60)
    values = sorted(value for partition in seen.values() for value in partition)
    assert values == sorted(committed_values), "the committed transaction whole, the open one aborted"


def produce_idempotent(bootstrap, topic, values):
    # Small batches, so that 4 KiB segments roll often.
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 0,
                         "batch.size": 512})
    failures = []
    for value in values:
        producer.produce(topic, value=value.encode(), partition=0,
                         on_delivery=lambda error, _msg: error and failures.append(error))
    producer.flush(60)
    assert not failures, failures[:3]


def test_one_node_power_cut_after_each_kind_of_write_keeps_what_was_synced(cluster_factory):
    """One node with sync flush, its power cut after each kind of file the broker writes:
    segments rolled with their indexes and producer snapshots, the metadata log,
    `__consumer_offsets`, `__transaction_state` and transaction markers, and the
    clean-shutdown marker (whose removal at start must be durable too)."""
    require_netns()
    settings = ["log.flush.interval.messages=1", "log.segment.bytes=4096", "log.index.size.max.bytes=4096"]
    cluster = cluster_factory(1, settings=settings, power_cuts=True)
    bootstrap = cluster.bootstrap(1)
    log = cluster.dir / "node-1.log"

    def cut():
        cluster.power_cut(1)
        cluster.start(1)

    # The topic's creation: metadata log, partition directory, first segment.
    create_topic(bootstrap, "steps", 1, 1)
    cut()
    produce_idempotent(bootstrap, "steps", ["first"])

    # Records over many rolled segments (indexes, producer snapshots at each roll).
    values = ["first"] + [f"v-{i:04d}-" + "x" * 200 for i in range(300)]
    produce_idempotent(bootstrap, "steps", values[1:])
    segments = [name for name in os.listdir(cluster.dir / "node-1" / "steps-0") if name.endswith(".log")]
    assert len(segments) > 5, segments
    cut()
    assert read(bootstrap, "steps", 1, "read_uncommitted", timeout=60)[0] == values
    # The idempotent producer's state came back: a new producer appends after it.
    produce_idempotent(bootstrap, "steps", ["after-cut"])
    values.append("after-cut")

    # A group's commit (__consumer_offsets) and a transaction (__transaction_state,
    # markers, the transaction index).
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "steps-group", "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition("steps", 0, 123)], asynchronous=False)
    consumer.close()
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "steps-txn", "linger.ms": 2})
    producer.init_transactions(60)
    producer.begin_transaction()
    for i in range(20):
        producer.produce("steps", value=f"txn-{i}".encode(), partition=0)
    producer.commit_transaction(60)
    values += [f"txn-{i}" for i in range(20)]
    cut()
    assert committed_one(bootstrap, "steps-group", "steps") == 123
    assert read(bootstrap, "steps", 1, "read_committed", timeout=60)[0] == values

    # A clean shutdown, then a power cut right after the next start: that start
    # removed the marker, so the one after must recover as after an unclean stop.
    cluster.stop(1)
    cluster.start(1)
    cut()
    text = log.read_text()
    assert "loading log dir after a clean shutdown" in text
    after_clean_start = text.rsplit("loading log dir after a clean shutdown", 1)[-1]
    assert "recovering log dir after an unclean shutdown" in after_clean_start, \
        "the start after the clean one must not find the marker again"
    assert read(bootstrap, "steps", 1, "read_committed", timeout=60)[0] == values


def committed_one(bootstrap, group, topic):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return consumer.committed([TopicPartition(topic, 0)], timeout=30)[0].offset
    finally:
        consumer.close()
