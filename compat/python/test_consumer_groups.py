"""KIP-848 consumer groups (group.protocol=consumer) with confluent-kafka members in
their own processes: the broker assigns, rebalances are incremental, and offsets,
static membership, regex subscriptions and coordinator failover work as in Kafka."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import ConsumerGroupTopicPartitions, ConsumerGroupType, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import wait_until
import kafka_wire
from test_metrics import scrape, value
from test_groups import ownership_intervals, processed, produce, read_log, stop_workers, wait_for

HERE = Path(__file__).parent
# Short sessions and heartbeats so a dead member is noticed in seconds.
SETTINGS = [
    "offsets.topic.num.partitions=10",
    "group.initial.rebalance.delay.ms=500",
    "group.consumer.session.timeout.ms=6000",
    "group.consumer.heartbeat.interval.ms=500",
]


def start_worker(bootstrap, group, topic, log_path, work_ms=0.0, protocol="consumer"):
    env = dict(os.environ, GROUP_PROTOCOL=protocol)
    return subprocess.Popen([sys.executable, str(HERE / "group_worker.py"), bootstrap, group, topic,
                             str(log_path), "6000", str(work_ms)], env=env)


def no_partition_owned_twice(events):
    end = time.time()
    intervals = [(w, iv) for w, ev in enumerate(events) for iv in ownership_intervals(ev, end)]
    for i, (worker_a, (partition_a, start_a, end_a)) in enumerate(intervals):
        for worker_b, (partition_b, start_b, end_b) in intervals[i + 1:]:
            if worker_a != worker_b and partition_a == partition_b:
                assert end_a <= start_b or end_b <= start_a, f"partition {partition_a} owned twice at once"


def committed(bootstrap, group):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(10)
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}


def test_three_members_read_twelve_partitions_exactly_once(broker_factory, tmp_path):
    n, partitions = 24000, 12
    broker = broker_factory(settings=SETTINGS)
    produce(broker.bootstrap, "work", n, partitions)
    logs = [tmp_path / f"worker{i}.jsonl" for i in range(3)]
    workers = [start_worker(broker.bootstrap, "g848", "work", path) for path in logs]
    try:
        wait_for(lambda: len(processed([read_log(p) for p in logs])) >= n, 90, "all messages processed")
        time.sleep(1.5)
    finally:
        stop_workers(workers)
    events = [read_log(p) for p in logs]
    seen = processed(events)
    assert len(seen) == n
    twice = [key for key, who in seen.items() if len(who) > 1]
    assert not twice, f"{len(twice)} messages processed twice, e.g. {twice[:5]}"
    no_partition_owned_twice(events)
    assert all(any(e[0] == "assign" and e[2] for e in ev) for ev in events), "every member got partitions"
    assert committed(broker.bootstrap, "g848") == {("work", p): n // partitions for p in range(partitions)}
    # The members left: the empty consumer group can be deleted, offsets and all.
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.delete_consumer_groups(["g848"], request_timeout=10)["g848"].result()
    assert committed(broker.bootstrap, "g848") == {}


def longest_silence(events, start, end):
    """The longest time in [start, end] during which no member processed a message."""
    times = sorted(e[1] for ev in events for e in ev if e[0] == "msg" and start <= e[1] <= end)
    points = [start] + times + [end]
    return max(b - a for a, b in zip(points, points[1:]))


def join_a_fourth(broker, tmp_path, protocol, topic, group):
    logs = [tmp_path / f"{protocol}-worker{i}.jsonl" for i in range(4)]
    workers = [start_worker(broker.bootstrap, group, topic, path, work_ms=0.5, protocol=protocol)
               for path in logs[:3]]
    try:
        wait_for(lambda: all(any(e[0] == "msg" for e in read_log(p)) for p in logs[:3]), 60,
                 "three members consuming")
        time.sleep(1.0)
        joined_at = time.time()
        workers.append(start_worker(broker.bootstrap, group, topic, logs[3], work_ms=0.5, protocol=protocol))
        wait_for(lambda: any(e[0] == "msg" for e in read_log(logs[3])), 60, "the fourth member consuming")
        time.sleep(1.0)
        settled_at = time.time()
    finally:
        stop_workers(workers)
    events = [read_log(p) for p in logs]
    return events, joined_at, settled_at


def test_a_fourth_member_joins_while_the_others_keep_receiving(broker_factory, tmp_path):
    # Members process ~2000 messages/s each, so neither run drains the topic.
    n, partitions = 120000, 12
    broker = broker_factory(settings=SETTINGS)
    produce(broker.bootstrap, "busy", n, partitions)
    pauses, member_pauses = {}, {}
    for protocol in ("classic", "consumer"):
        events, joined_at, settled_at = join_a_fourth(broker, tmp_path, protocol, "busy", f"join-{protocol}")
        pauses[protocol] = longest_silence(events, joined_at, settled_at)
        member_pauses[protocol] = max(longest_silence([ev], joined_at, settled_at) for ev in events[:3])
        assert sum(1 for ev in events for e in ev if e[0] == "msg") < n, "the topic was not drained"
        no_partition_owned_twice(events)
        if protocol == "consumer":
            # Incremental: no old member gave up everything it had at the join.
            for ev in events[:3]:
                owned = set()
                for event in ev:
                    if event[0] == "assign":
                        owned |= set(event[2])
                    elif event[0] == "revoke":
                        if joined_at < event[1] < settled_at:
                            assert set(event[2]) < owned, "an old member revoked all its partitions"
                        owned -= set(event[2])
            # And every old member processed messages while the fourth was joining.
            first_of_fourth = min(e[1] for e in events[3] if e[0] == "msg")
            for ev in events[:3]:
                assert any(e[0] == "msg" and joined_at < e[1] < first_of_fourth for e in ev) or \
                    first_of_fourth - joined_at < 0.5, "an old member stopped while the fourth joined"
    print(f"\nlongest pause with no member receiving while a fourth member joined: "
          f"classic {pauses['classic']:.2f} s, consumer (KIP-848) {pauses['consumer']:.2f} s; "
          f"longest pause of one old member: classic {member_pauses['classic']:.2f} s, "
          f"consumer {member_pauses['consumer']:.2f} s")


def test_a_killed_member_has_its_partitions_moved_after_the_session_timeout(broker_factory, tmp_path):
    n, partitions = 60000, 6
    broker = broker_factory(settings=SETTINGS)
    produce(broker.bootstrap, "work", n, partitions)
    logs = [tmp_path / f"worker{i}.jsonl" for i in range(3)]
    workers = [start_worker(broker.bootstrap, "gk848", "work", path, work_ms=0.1) for path in logs]
    try:
        wait_for(lambda: len(processed([read_log(p) for p in logs])) >= n // 10, 60, "a tenth processed")
        wait_for(lambda: any(e[0] == "commit" for e in read_log(logs[0])), 30, "worker 0 committed")
        victim = set()
        for event in read_log(logs[0]):
            if event[0] == "assign":
                victim |= set(event[2])
            elif event[0] == "revoke":
                victim -= set(event[2])
        assert victim, "the victim owns partitions when it is killed"
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        killed_at = time.time()
        wait_for(lambda: len(processed([read_log(p) for p in logs])) >= n, 120, "all messages processed")
        time.sleep(1.5)
    finally:
        stop_workers(workers)
    events = [read_log(p) for p in logs]
    assert len(processed(events)) == n, "nothing left unconsumed"
    takeover = min(e[1] for ev in events[1:] for e in ev
                   if e[0] == "msg" and e[1] > killed_at and e[2] in victim)
    print(f"\nKIP-848 member SIGKILLed: {takeover - killed_at:.2f} s until a survivor consumed its partitions"
          f" (session timeout 6 s)")
    assert 5.0 < takeover - killed_at < 6.0 + 10.0


def test_a_regex_subscription_picks_up_a_topic_created_later(broker_factory, tmp_path):
    broker = broker_factory(settings=SETTINGS)
    produce(broker.bootstrap, "orders-eu", 300, 3)
    produce(broker.bootstrap, "payments", 100, 1)
    log = tmp_path / "regex.jsonl"
    worker = start_worker(broker.bootstrap, "gregex", "^orders-.*", log)
    try:
        wait_for(lambda: sum(1 for e in read_log(log) if e[0] == "msg") >= 300, 60, "orders-eu read")
        produce(broker.bootstrap, "orders-us", 200, 2)
        wait_for(lambda: sum(1 for e in read_log(log) if e[0] == "msg" and e[4] == "orders-us") >= 200, 60,
                 "the later topic read")
    finally:
        stop_workers([worker])
    topics = {e[4] for e in read_log(log) if e[0] == "msg"}
    assert topics == {"orders-eu", "orders-us"}, topics


def test_classic_and_consumer_groups_side_by_side_and_an_empty_group_changes_protocol(broker_factory, tmp_path):
    n, partitions = 3000, 3
    broker = broker_factory(settings=SETTINGS)
    produce(broker.bootstrap, "shared", n, partitions)
    logs = {name: tmp_path / f"{name}.jsonl" for name in ("classic", "consumer")}
    workers = [start_worker(broker.bootstrap, "side-classic", "shared", logs["classic"], protocol="classic"),
               start_worker(broker.bootstrap, "side-consumer", "shared", logs["consumer"], protocol="consumer")]
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    try:
        for path in logs.values():
            wait_for(lambda path=path: len(processed([read_log(path)])) >= n, 60, f"{path.stem} read all")
        time.sleep(1.0)
        listed = admin.list_consumer_groups(request_timeout=10).result()
        types = {g.group_id: g.type for g in listed.valid}
        assert types.get("side-classic") == ConsumerGroupType.CLASSIC, types
        assert types.get("side-consumer") == ConsumerGroupType.CONSUMER, types
        only_new = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}, request_timeout=10).result()
        assert [g.group_id for g in only_new.valid] == ["side-consumer"]
        described = admin.describe_consumer_groups(["side-consumer"], request_timeout=10)["side-consumer"].result()
        assert described.type == ConsumerGroupType.CONSUMER
        assert len(described.members) == 1
        assert sorted(tp.partition for tp in described.members[0].assignment.topic_partitions) == [0, 1, 2]
        samples = scrape(broker)
        assert value(samples, "ferrolog_consumer_group_members", group="side-consumer", type="consumer") == 1
        assert value(samples, "ferrolog_consumer_group_members", group="side-classic", type="classic") == 1
        assert value(samples, "ferrolog_consumer_group_epoch", group="side-consumer", type="consumer") >= 1
        assert value(samples, "ferrolog_consumer_group_lag", group="side-consumer", topic="shared",
                     partition=0) == 0
    finally:
        stop_workers(workers)
    # The consumer group is empty now: a classic member takes it over and resumes
    # from its committed offsets (group.consumer.migration.policy=bidirectional).
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(300):
        producer.produce("shared", value=f"late{i}".encode(), partition=i % partitions)
    assert producer.flush(30) == 0
    after = tmp_path / "downgraded.jsonl"
    worker = start_worker(broker.bootstrap, "side-consumer", "shared", after, protocol="classic")
    try:
        wait_for(lambda: len(processed([read_log(after)])) >= 300, 60, "the classic member read the rest")
        time.sleep(1.0)
    finally:
        stop_workers([worker])
    offsets = sorted(e[3] for e in read_log(after) if e[0] == "msg")
    assert len(offsets) == 300 and min(offsets) >= n // partitions, "resumed from the committed offsets"


def test_the_group_resumes_from_committed_offsets_after_its_coordinator_is_killed(cluster_factory, tmp_path):
    n, partitions = 60000, 6
    cluster = cluster_factory(3, settings=["offsets.topic.replication.factor=3"] + SETTINGS[1:])
    bootstrap = ",".join(cluster.bootstrap(node) for node in cluster.node_ids)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("work", num_partitions=partitions, replication_factor=3)])["work"].result(20)
    produce_rf3 = __import__("test_cluster").produce
    produce_rf3(bootstrap, "work", partitions, n // partitions)
    logs = [tmp_path / f"worker{i}.jsonl" for i in range(2)]
    workers = [start_worker(bootstrap, "gfail", "work", path, work_ms=0.1) for path in logs]
    try:
        wait_for(lambda: len(processed([read_log(p) for p in logs])) >= n // 4, 90, "a quarter processed")
        error, coordinator = kafka_wire.find_coordinator(cluster.bootstrap(cluster.node_ids[0]), "gfail")
        assert error == 0, error
        before = len(processed([read_log(p) for p in logs]))
        cluster.kill(coordinator)
        wait_for(lambda: len(processed([read_log(p) for p in logs])) >= n, 120, "all messages processed")
        time.sleep(1.5)
        survivor = next(node for node in cluster.node_ids if node != coordinator)
        error, new_coordinator = wait_until(
            lambda: (answer := kafka_wire.find_coordinator(cluster.bootstrap(survivor), "gfail"))[0] == 0
            and answer, 30, "a new coordinator")
        assert new_coordinator != coordinator
    finally:
        stop_workers(workers)
    seen = processed([read_log(p) for p in logs])
    assert len(seen) == n, "nothing skipped"
    duplicates = sum(1 for who in seen.values() if len(who) > 1)
    print(f"\nKIP-848 group after its coordinator was SIGKILLed: {duplicates} duplicates of {n}, "
          f"{before} processed before the kill")
    assert duplicates < n // 4
