"""The chaos suite: a workload on a local three-node cluster (RF=3,
min.insync.replicas=2) while nemeses strike, then a full read, a replica comparison and
the checker. Run it through scripts/chaos (which puts it in a private network namespace).

    run.py [--minutes N] [--seed S] [--nemeses kill,pause,...] [--schedule ci|random] [--out DIR]

`--schedule ci` strikes each chosen nemesis once, in order, with fixed holds (the short
deterministic run the test suite makes); `random` picks nemeses and holds from the seed
for N minutes. Prints the checker's report and exits 1 on any anomaly.
"""

import argparse
import atexit
import json
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))
sys.path.insert(0, str(HERE))

from checker import check  # noqa: E402
from cluster import Cluster  # noqa: E402
from nemesis import DEFAULT_KINDS, KINDS, POWER_KINDS, Nemesis  # noqa: E402

TOPIC, PARTITIONS, GROUP = "chaos", 3, "chaos-group"
FAST = ["broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500", "replica.lag.time.max.ms=3000"]


def read_jsonl(path):
    ops = []
    with open(path) as lines:
        for line in lines:
            if line.endswith("\n"):
                ops.append(json.loads(line))
    return ops


def final_read(bootstrap):
    """Every record of the topic, read to the high watermark: [(partition, offset, value)]
    and the high watermarks."""
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "chaos-final-unused",
                         "enable.auto.commit": False})
    marks = {p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=30)[1] for p in range(PARTITIONS)}
    consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    records, positions = [], {p: 0 for p in range(PARTITIONS)}
    deadline = time.time() + 120
    while any(positions[p] < marks[p] for p in positions) and time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        records.append((msg.partition(), msg.offset(), msg.value().decode()))
        positions[msg.partition()] = msg.offset() + 1
    consumer.close()
    if any(positions[p] < marks[p] for p in positions):
        raise AssertionError(f"final read stopped at {positions}, high watermarks {marks}")
    return records, marks


def committed_offsets(bootstrap):
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    committed = consumer.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=30)
    consumer.close()
    return {entry.partition: entry.offset for entry in committed if entry.offset >= 0}


def replica_batches(directory, high_watermark):
    """The batches of one replica's log below the high watermark, as raw bytes."""
    batches = []
    for segment in sorted(directory.glob("*.log")):
        data = segment.read_bytes()
        position = 0
        while position + 12 <= len(data):
            base_offset = int.from_bytes(data[position:position + 8], "big", signed=True)
            length = int.from_bytes(data[position + 8:position + 12], "big", signed=True)
            if length <= 0 or position + 12 + length > len(data) or base_offset >= high_watermark:
                break
            batches.append(data[position:position + 12 + length])
            position += 12 + length
    return batches


def start_workers(cluster, out, rate):
    bootstrap = ",".join(cluster.bootstrap(node) for node in cluster.node_ids)
    until = str(time.time() + 24 * 3600)  # stopped with SIGTERM
    specs = [("confluent-producer", f"c{i}", bootstrap, TOPIC, str(PARTITIONS), str(rate), until) for i in range(3)]
    specs.append(("kafka-python-producer", "k0", bootstrap, TOPIC, str(PARTITIONS), str(rate / 2), until))
    specs += [("group-consumer", f"g{i}", bootstrap, TOPIC, GROUP, until) for i in range(2)]
    specs.append(("reader", "r0", bootstrap, TOPIC, str(PARTITIONS), until))
    workers = []
    for spec in specs:
        path = out / f"{spec[1]}.jsonl"
        log = open(out / f"{spec[1]}.log", "w")
        workers.append((spec[0], path, subprocess.Popen([sys.executable, str(HERE / "workers.py"), *spec, str(path)],
                                                        stdout=log, stderr=subprocess.STDOUT)))
    return workers


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nemeses", default=",".join(DEFAULT_KINDS))
    parser.add_argument("--schedule", choices=["ci", "random"], default="random")
    parser.add_argument("--out", default="data/chaos")
    parser.add_argument("--rate", type=float, default=100.0, help="messages per second per producer")
    args = parser.parse_args()
    kinds = [kind for kind in args.nemeses.split(",") if kind]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown nemeses {sorted(unknown)}; known: {KINDS}")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    settings = list(FAST)
    if "power-loss" in kinds:
        settings.append("log.flush.interval.messages=1")  # what survives losing power on every node
    events_file = open(out / "nemeses.jsonl", "w", buffering=1)

    def log_event(event):
        events_file.write(json.dumps(event) + "\n")
        print(f"[{time.strftime('%H:%M:%S')}] {event['kind']} node={event['node']} "
              f"held {event['end'] - event['start']:.1f} s", flush=True)

    # Power cuts need every node's data directory on a powercut-fs.
    cluster = Cluster(out / "cluster", settings, distinct_hosts=True, power_cuts=bool(POWER_KINDS & set(kinds)))
    atexit.register(cluster.stop_file_systems)  # they would outlive the run otherwise
    cluster.up(3)
    workers = []
    try:
        from test_cluster import create_topic
        create_topic(cluster.bootstrap(1), TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})
        workers = start_workers(cluster, out, args.rate)
        nemesis = Nemesis(cluster, rng, TOPIC, PARTITIONS, log_event)
        events, unrecovered = [], []
        time.sleep(5)
        if args.schedule == "ci":
            plan = [(kind, 5.0) for kind in kinds]
        else:
            end = time.time() + args.minutes * 60
            plan = iter(lambda: (rng.choice(kinds), rng.uniform(3, 12)) if time.time() < end - 15 else None, None)
        for kind, hold in plan:
            events.append(nemesis.run(kind, hold))
            healthy = nemesis.wait_healthy()
            if healthy is None:
                # Every replica back in its ISR within a minute of healing, or a bug.
                unrecovered.append(events[-1])
                print(f"cluster not healthy 60 s after {kind}", flush=True)
            time.sleep(1 if args.schedule == "ci" else rng.uniform(1, 4))
        time.sleep(5)
        for _, _, process in workers:
            process.terminate()
        for name, _, process in workers:
            if process.wait(timeout=330) != 0:
                raise AssertionError(f"worker {name} exited with {process.returncode}")
        if nemesis.wait_healthy(120) is None:
            raise AssertionError("the cluster did not heal")
        bootstrap = ",".join(cluster.bootstrap(node) for node in cluster.node_ids)
        records, marks = final_read(bootstrap)
        final_commits = committed_offsets(bootstrap)
    finally:
        for _, _, process in workers:
            if process.poll() is None:
                process.kill()
        cluster.down()
        cluster.kill_all()
    history = []
    for _, path, _ in workers:
        history += read_jsonl(path)
    # The committed offsets read back at the end: a lost commit shows as a regression.
    history += [{"op": "commit", "reader": "final", "partition": p, "offset": o, "t": time.time()}
                for p, o in final_commits.items()]
    replicas = {p: {node: replica_batches(cluster.dir / f"node-{node}" / f"{TOPIC}-{p}", marks[p])
                    for node in cluster.node_ids} for p in range(PARTITIONS)}
    cluster.unmount()
    result = check(history, records, replicas, events)
    result["anomalies"]["not_recovered"] = {"count": len(unrecovered), "examples": unrecovered[:5]}
    result["ok"] = result["ok"] and not unrecovered
    result["replica_batches_compared"] = {p: {node: len(batches) for node, batches in copies.items()}
                                          for p, copies in replicas.items()}
    result.update(seed=args.seed, schedule=args.schedule, nemeses=kinds, minutes=round(
        (max((e["end"] for e in events), default=0) - min((e["start"] for e in events), default=0)) / 60, 2),
        events=len(events))
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({key: value for key, value in result.items() if key != "anomalies"}, indent=2))
    for name, entry in result["anomalies"].items():
        print(f"{name}: {entry['count']}" + (f"  e.g. {entry['examples']}" if entry["count"] else ""))
    return 0 if result["ok"] and result["acknowledged"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
