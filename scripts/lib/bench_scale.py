"""`scripts/bench --scale`: what many partitions cost, on one node and on three.

For each size: create the partitions in topics of 100 until Metadata lists each with a
leader (and, with RF=3, a full ISR); write one 100-byte acks=all record to every
partition; then measure the processes at rest (RSS, descriptors, mappings, idle CPU over
10 s), SIGTERM them, start them again until ready, SIGKILL them and start them again
until ready. Page-cache growth is the kernel's `Cached:` before and after the write, with
clean caches dropped first (needs root; "n/a" otherwise).

    scripts/bench --scale               1 000 / 5 000 / 20 000 on one node, 3 000 RF=3 on three
    scripts/bench --scale 50000         one node with 50 000 partitions
    scripts/bench --scale 3x3000        three nodes, 3 000 partitions at RF=3

Prints a table and appends it to bench/results.md.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

CLK_TCK = os.sysconf("SC_CLK_TCK")
TOPIC_SIZE = 100
READY_TIMEOUT = 600


def cached_kib():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Cached:"):
            return int(line.split()[1])
    return 0


def drop_clean_caches():
    """True when the kernel dropped its clean page cache (root only)."""
    subprocess.run(["sync"], check=False)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
        return True
    except OSError:
        return False


def proc_stats(pids):
    """(RSS KiB, descriptors, mappings, CPU seconds) summed over the processes."""
    rss = fds = maps = 0
    cpu = 0.0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
        fds += len(os.listdir(f"/proc/{pid}/fd"))
        maps += len(Path(f"/proc/{pid}/maps").read_text().splitlines())
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return rss, fds, maps, cpu


def wait_ready(bootstrap, n_partitions, replication_factor):
    """Seconds until every partition of the bench topics has a leader and a full ISR."""
    started = time.time()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    while time.time() - started < READY_TIMEOUT:
        try:
            topics = admin.list_topics(timeout=10).topics
            ready = sum(1 for name, topic in topics.items() if name.startswith("scale")
                        for partition in topic.partitions.values()
                        if partition.leader >= 0 and len(partition.isrs) >= replication_factor)
            if ready >= n_partitions:
                return time.time() - started
        except Exception:  # noqa: BLE001 - a node still starting
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{n_partitions} partitions not ready within {READY_TIMEOUT} s")


def create(bootstrap, n_partitions, replication_factor):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [NewTopic(f"scale{i}", TOPIC_SIZE, replication_factor) for i in range(n_partitions // TOPIC_SIZE)]
    # Requests of at most 5 000 partitions each, as an operator's tool would send them.
    per_request = max(1, 5000 // TOPIC_SIZE)
    for first in range(0, len(topics), per_request):
        for future in admin.create_topics(topics[first:first + per_request], request_timeout=300).values():
            future.result()


def write_one_to_each(bootstrap, n_partitions):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    failed = []
    for i in range(n_partitions // TOPIC_SIZE):
        for partition in range(TOPIC_SIZE):
            producer.produce(f"scale{i}", b"x" * 100, partition=partition,
                             on_delivery=lambda error, _m: error and failed.append(error))
            producer.poll(0)
    if producer.flush(300) or failed:
        raise RuntimeError(f"writes failed: {failed[:3]}")


class OneNode:
    def __init__(self, broker_class, binary, work):
        self.broker_class, self.binary, self.data = broker_class, binary, work / "data"
        self.broker = None

    def start(self):
        # Thousands of logs are opened before the listener is.
        self.broker = self.broker_class(self.binary, self.data, metrics=False, start_timeout=READY_TIMEOUT)
        return self.broker.bootstrap

    def pids(self):
        return [self.broker.process.pid]

    def signal(self, sig):
        self.broker.process.send_signal(sig)
        self.broker.process.wait(300)


def exited(pid):
    """Whether the process is gone with every file it held: reaped, or a zombie with no
    thread left (its other threads hold its files, and its locks, until they exit)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z" and len(tasks) <= 1


class ThreeNodes:
    def __init__(self, cluster_class, work):
        self.cluster = cluster_class(work, "scale")
        self.script = Path(__file__).resolve().parents[1] / "cluster"

    def start(self):
        # All at once: a node alone has no quorum to register with.
        starting = [subprocess.Popen([str(self.script), "start", str(node)], env=self.cluster.env)
                    for node in self.cluster.addresses]
        for process in starting:
            process.wait(300)
        self.cluster.pids = [int((self.cluster.directory / f"node-{node}.pid").read_text())
                             for node in self.cluster.addresses]
        return self.cluster.bootstrap

    def pids(self):
        return self.cluster.pids

    def signal(self, sig):
        for pid in self.cluster.pids:
            os.kill(pid, sig)
        for pid in self.cluster.pids:
            while not exited(pid):
                time.sleep(0.02)
        for node in self.cluster.addresses:
            (self.cluster.directory / f"node-{node}.pid").unlink(missing_ok=True)


def measure(nodes, bootstrap, n_partitions, replication_factor):
    row = {}
    started = time.time()
    create(bootstrap, n_partitions, replication_factor)
    wait_ready(bootstrap, n_partitions, replication_factor)
    row["create"] = time.time() - started
    dropped = drop_clean_caches()
    before = cached_kib()
    started = time.time()
    write_one_to_each(bootstrap, n_partitions)
    row["write"] = time.time() - started
    time.sleep(1)
    row["cache"] = (cached_kib() - before) / n_partitions if dropped else None
    rss, fds, maps, cpu = proc_stats(nodes.pids())
    time.sleep(10)
    row["idle_cpu"] = (proc_stats(nodes.pids())[3] - cpu) / 10
    row["rss"], row["fds"], row["maps"] = rss, fds, maps
    row["rss_per_replica"] = rss / (n_partitions * replication_factor)
    started = time.time()
    nodes.signal(signal.SIGTERM)
    row["stop"] = time.time() - started
    started = time.time()
    bootstrap = nodes.start()
    wait_ready(bootstrap, n_partitions, replication_factor)
    row["restart"] = time.time() - started
    nodes.signal(signal.SIGKILL)
    started = time.time()
    bootstrap = nodes.start()
    wait_ready(bootstrap, n_partitions, replication_factor)
    row["after_kill"] = time.time() - started
    nodes.signal(signal.SIGTERM)
    return row


def run(sizes, broker_class, cluster_class, binary, work):
    """Rows of (label, measurements) for sizes such as "1000" or "3x3000"."""
    results = []
    for size in sizes:
        three = size.startswith("3x")
        n_partitions = int(size[2:] if three else size)
        directory = work / f"scale-{size}"
        directory.mkdir()
        if three:
            nodes = ThreeNodes(cluster_class, directory)
            bootstrap = nodes.cluster.bootstrap
        else:
            nodes = OneNode(broker_class, binary, directory)
            bootstrap = nodes.start()
        try:
            row = measure(nodes, bootstrap, n_partitions, 3 if three else 1)
        except Exception:
            for log in sorted(directory.glob("*.log")) + sorted(directory.glob("*/node-*.log")):
                if log.is_file():
                    print(f"--- {log}:", *log.read_text(errors="replace").splitlines()[-15:], sep="\n")
            raise
        finally:
            try:
                nodes.signal(signal.SIGKILL)
            except (OSError, ProcessLookupError, subprocess.TimeoutExpired):
                pass
            if three:
                nodes.cluster.stop()
            subprocess.run(["rm", "-rf", str(directory)], check=False)
        label = f"3 nodes, {n_partitions:,} RF=3" if three else f"1 node, {n_partitions:,}"
        results.append((label, row))
        print(label, row, flush=True)
    return results


def table(results):
    header = ("nodes, partitions", "create", "one acks=all record to each", "page cache per partition",
              "RSS (per replica)", "fds", "mappings", "idle CPU", "SIGTERM stop", "clean restart",
              "restart after SIGKILL")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for label, row in results:
        cache = f"{row['cache']:.1f} KiB" if row["cache"] is not None else "n/a (not root)"
        lines.append("| " + " | ".join((
            label, f"{row['create']:.1f} s", f"{row['write']:.1f} s", cache,
            f"{row['rss'] / 1024:.0f} MiB ({row['rss_per_replica']:.1f} KiB)", f"{row['fds']:,}",
            f"{row['maps']:,}", f"{row['idle_cpu']:.3f} cores", f"{row['stop']:.1f} s",
            f"{row['restart']:.1f} s", f"{row['after_kill']:.1f} s")) + " |")
    return "\n".join(lines)
