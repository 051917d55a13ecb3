"""Consumer groups with real clients: confluent-kafka members in separate processes,
kafka-python, and the AdminClient view of groups and offsets."""

import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import Producer, TopicPartition, ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient, NewTopic

from jsonl import read_jsonl

HERE = Path(__file__).parent
GROUP_SETTINGS = ["group.initial.rebalance.delay.ms=500", "offsets.topic.num.partitions=10"]


def produce(bootstrap, topic, n, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(10)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(n):
        producer.produce(topic, value=f"m{i}".encode(), partition=i % partitions)
        if i % 10000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0


def start_worker(bootstrap, group, topic, log_path, work_ms=0.0):
    return subprocess.Popen([sys.executable, str(HERE / "group_worker.py"), bootstrap, group, topic,
                             str(log_path), "6000", str(work_ms)])


read_log = read_jsonl


def processed(logs):
    """{(partition, offset): [worker index, ...]} over every worker's log."""
    seen = defaultdict(list)
    for index, events in enumerate(logs):
        for event in events:
            if event[0] == "msg":
                seen[(event[2], event[3])].append(index)
    return seen


def wait_for(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def ownership_intervals(events, end_time):
    """[(partition, start, end)] from one worker's assign/revoke events."""
    owned, intervals = {}, []
    for event in events:
        if event[0] == "assign":
            for partition in event[2]:
                owned[partition] = event[1]
        elif event[0] == "revoke":
            for partition in event[2]:
                if partition in owned:
                    intervals.append((partition, owned.pop(partition), event[1]))
    intervals.extend((partition, start, end_time) for partition, start in owned.items())
    return intervals


def stop_workers(workers):
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGINT)
    for worker in workers:
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


N, PARTITIONS = 60000, 6


def test_three_members_split_partitions_and_process_everything(broker_factory, tmp_path):
    broker = broker_factory(settings=GROUP_SETTINGS)
    produce(broker.bootstrap, "work", N, PARTITIONS)
    logs = [tmp_path / f"worker{i}.jsonl" for i in range(3)]
    workers = [start_worker(broker.bootstrap, "g3", "work", path) for path in logs]
    try:
        wait_for(lambda: len(processed([read_log(p) for p in logs])) >= N, 120, "all messages processed")
        # Let the final commits land, then stop cleanly.
        time.sleep(1.5)
    finally:
        stop_workers(workers)
    events = [read_log(p) for p in logs]
    seen = processed(events)
    assert len(seen) == N
    end = time.time()
    intervals = [(w, iv) for w, ev in enumerate(events) for iv in ownership_intervals(ev, end)]
    for i, (worker_a, (partition_a, start_a, end_a)) in enumerate(intervals):
        for worker_b, (partition_b, start_b, end_b) in intervals[i + 1:]:
            if worker_a != worker_b and partition_a == partition_b:
                assert end_a <= start_b or end_b <= start_a, f"partition {partition_a} owned twice at once"
    assert all(any(event[0] == "assign" and event[2] for event in ev) for ev in events), "every member got partitions"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("g3")])["g3"].result(10)
    committed = {tp.partition: tp.offset for tp in result.topic_partitions}
    assert committed == {p: N // PARTITIONS for p in range(PARTITIONS)}


def test_killed_member_is_replaced_within_the_session_timeout(broker_factory, tmp_path):
    broker = broker_factory(settings=GROUP_SETTINGS)
    produce(broker.bootstrap, "work", N, PARTITIONS)
    logs = [tmp_path / f"worker{i}.jsonl" for i in range(3)]
    workers = [start_worker(broker.bootstrap, "gk", "work", path, work_ms=0.1) for path in logs]
    try:
        wait_for(lambda: len(processed([read_log(p) for p in logs])) >= N // 10, 60, "a tenth processed")
        wait_for(lambda: any(e[0] == "commit" for e in read_log(logs[0])), 30, "worker 0 committed")
        victim_partitions = next(e[2] for e in reversed(read_log(logs[0])) if e[0] == "assign")
        assert victim_partitions, "the victim owns partitions when it is killed"
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        killed_at = time.time()
        wait_for(lambda: len(processed([read_log(p) for p in logs])) >= N, 120, "all messages processed")
        time.sleep(1.5)
    finally:
        stop_workers(workers)
    events = [read_log(p) for p in logs]
    seen = processed(events)
    assert len(seen) == N, "nothing left unconsumed"
    last_commit = {}
    for event in events[0]:
        if event[0] == "commit":
            for partition, offset, *_ in event[2]:
                last_commit[partition] = offset
    for (partition, offset), workers_seen in seen.items():
        if len(workers_seen) > 1:
            assert offset >= last_commit.get(partition, 0), (
                f"duplicate {partition}/{offset} is before the killed member's last commit"
            )
    takeover = min(
        event[1] for ev in events[1:] for event in ev
        if event[0] == "msg" and event[1] > killed_at and event[2] in victim_partitions
    )
    print(f"\nrebalance after SIGKILL: {takeover - killed_at:.2f} s until a survivor consumed a victim partition")
    assert takeover - killed_at < 6.0 + 10.0


def test_clean_leave_rebalances_quickly(broker_factory, tmp_path):
    broker = broker_factory(settings=GROUP_SETTINGS)
    produce(broker.bootstrap, "work", N, PARTITIONS)
    logs = [tmp_path / f"worker{i}.jsonl" for i in range(2)]
    workers = [start_worker(broker.bootstrap, "gl", "work", path, work_ms=0.1) for path in logs]
    try:
        wait_for(lambda: len(processed([read_log(p) for p in logs])) >= N // 10, 60, "a tenth processed")
        leaver_partitions = next(e[2] for e in reversed(read_log(logs[0])) if e[0] == "assign")
        assert leaver_partitions, "the leaver owns partitions when it leaves"
        workers[0].send_signal(signal.SIGINT)
        workers[0].wait(timeout=30)
        left_at = time.time()
        wait_for(lambda: len(processed([read_log(p) for p in logs])) >= N, 120, "all messages processed")
    finally:
        stop_workers(workers)
    events = [read_log(p) for p in logs]
    assert len(processed(events)) == N
    takeover = min(e[1] for e in events[1] if e[0] == "assign" and e[1] > left_at - 1 and set(leaver_partitions) <= set(e[2]))
    print(f"\nrebalance after a clean leave: {max(0.0, takeover - left_at):.2f} s until the survivor was assigned")
    assert takeover - left_at < 6.0


def test_group_resumes_from_committed_offsets_after_broker_restart(broker_factory, tmp_path):
    broker = broker_factory(settings=GROUP_SETTINGS)
    produce(broker.bootstrap, "work", N, PARTITIONS)
    logs = [tmp_path / f"worker{i}.jsonl" for i in range(2)]
    workers = [start_worker(broker.bootstrap, "gr", "work", path, work_ms=0.1) for path in logs]
    try:
        wait_for(lambda: len(processed([read_log(p) for p in logs])) >= N // 4, 60, "a quarter processed")
        broker.stop()
        broker.start()
        wait_for(lambda: len(processed([read_log(p) for p in logs])) >= N, 120, "all messages processed")
        time.sleep(1.5)
    finally:
        stop_workers(workers)
    seen = processed([read_log(p) for p in logs])
    assert len(seen) == N, "nothing skipped"
    duplicates = sum(1 for w in seen.values() if len(w) > 1)
    print(f"\nduplicates after a broker restart: {duplicates}")
    assert duplicates < N // 4


def test_admin_client_lists_and_describes_groups(broker_factory, tmp_path):
    broker = broker_factory(settings=GROUP_SETTINGS)
    produce(broker.bootstrap, "work", 600, PARTITIONS)
    logs = [tmp_path / f"worker{i}.jsonl" for i in range(2)]
    workers = [start_worker(broker.bootstrap, "gd", "work", path) for path in logs]
    try:
        wait_for(lambda: len(processed([read_log(p) for p in logs])) >= 600, 60, "all processed")
        time.sleep(1.5)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        listed = admin.list_consumer_groups().result(10)
        assert "gd" in [g.group_id for g in listed.valid]
        described = admin.describe_consumer_groups(["gd"])["gd"].result(10)
        assert str(described.state).endswith("STABLE")
        assert len(described.members) == 2
        assigned = sorted(tp.partition for m in described.members for tp in m.assignment.topic_partitions)
        assert assigned == list(range(PARTITIONS))
        offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("gd")])["gd"].result(10)
        assert {tp.partition: tp.offset for tp in offsets.topic_partitions} == {p: 100 for p in range(PARTITIONS)}
    finally:
        stop_workers(workers)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.delete_consumer_groups(["gd"])["gd"].result(10)
    assert "gd" not in [g.group_id for g in admin.list_consumer_groups().result(10).valid]


def test_kafka_python_group_consumer_reads_everything(broker_factory):
    from kafka import KafkaConsumer
    broker = broker_factory(settings=GROUP_SETTINGS)
    produce(broker.bootstrap, "kp-group", 3000, 3)
    consumer = KafkaConsumer("kp-group", bootstrap_servers=broker.bootstrap, group_id="kpg",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=10000)
    values = set()
    for record in consumer:
        values.add(record.value)
        if len(values) == 3000:
            break
    consumer.commit()
    consumer.close()
    assert len(values) == 3000
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("kpg")])["kpg"].result(10)
    assert sum(tp.offset for tp in offsets.topic_partitions) == 3000


def test_deleting_a_topic_deletes_its_committed_offsets(broker_factory):
    """Kafka removes a deleted topic's offsets from every group: the group's offsets no
    longer list it, and a topic created again under the name is read from its start."""
    from confluent_kafka import Consumer
    broker = broker_factory(settings=GROUP_SETTINGS)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    produce(broker.bootstrap, "reborn", 20, 1)
    produce(broker.bootstrap, "kept", 20, 1)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "gdel", "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition("reborn", 0, 10), TopicPartition("kept", 0, 7)], asynchronous=False)
    consumer.close()
    admin.delete_topics(["reborn"])["reborn"].result(10)

    def committed():
        result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("gdel")])["gdel"].result(10)
        return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}
    deadline = time.time() + 10
    while ("reborn", 0) in committed() and time.time() < deadline:
        time.sleep(0.1)
    assert committed() == {("kept", 0): 7}
    # The same name again: the group starts from the beginning of the new topic.
    time.sleep(0.5)
    produce(broker.bootstrap, "reborn", 30, 1)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "gdel", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["reborn"])
    values = []
    deadline = time.time() + 30
    while len(values) < 30 and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            values.append(message.value())
    consumer.close()
    assert len(values) == 30 and values[0] == b"m0", values[:3]
    # A restart replays __consumer_offsets: the tombstones hold.
    broker.stop()
    broker.start()
    assert committed() == {("kept", 0): 7}
