"""Transactions with real clients: confluent-kafka's transactional producer against a
broker process; read_committed and read_uncommitted consumers; fencing; the last stable
offset held back by an open transaction until it commits or times out; kafka-python's
transactional producer."""

import json
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create(bootstrap, name, partitions=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(timeout=30)


def transactional(bootstrap, transactional_id, **extra):
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                         "linger.ms": 5, **extra})
    producer.init_transactions(30)
    return producer


def read(bootstrap, topic, partitions, isolation, expect=None, timeout=20):
    """Every message value of `topic` from offset 0 by partition, as a consumer with
    `isolation` sees it: until `expect` messages came (or, without it, until the
    consumer is at the end of every partition)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.time_ns()}",
                         "isolation.level": isolation, "enable.auto.commit": False,
                         "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    seen = {p: [] for p in range(partitions)}
    at_end = set()
    deadline = time.time() + timeout
    while time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == -191:  # _PARTITION_EOF
                at_end.add(msg.partition())
                count = sum(len(values) for values in seen.values())
                if (expect is None and len(at_end) == partitions) or (expect is not None and count >= expect):
                    break
                continue
            raise KafkaException(msg.error())
        at_end.discard(msg.partition())
        seen[msg.partition()].append(msg.value().decode())
        if expect is not None and sum(len(values) for values in seen.values()) >= expect:
            break
    consumer.close()
    return seen


def test_read_committed_sees_exactly_the_committed_messages_in_order(broker):
    create(broker.bootstrap, "orders", 3)
    producer = transactional(broker.bootstrap, "orders-writer")
    committed = {p: [] for p in range(3)}
    everything = {p: [] for p in range(3)}
    for txn in range(12):
        producer.begin_transaction()
        values = [(f"t{txn}-m{i}", i % 3) for i in range(9)]
        for value, partition in values:
            producer.produce("orders", value=value.encode(), partition=partition)
            everything[partition].append(value)
        if txn % 3 == 1:
            # Written first, so that the log holds the aborted data (an abort purges
            # what the client has not sent).
            producer.flush(30)
            producer.abort_transaction(30)
        else:
            producer.commit_transaction(30)
            for value, partition in values:
                committed[partition].append(value)
    n_committed = sum(len(values) for values in committed.values())
    assert n_committed == 8 * 9
    seen = read(broker.bootstrap, "orders", 3, "read_committed")
    assert seen == committed, "read_committed sees every committed message once, in order, no aborted one"
    uncommitted = read(broker.bootstrap, "orders", 3, "read_uncommitted")
    assert uncommitted == everything, "read_uncommitted sees every data message and no control record"


def test_a_second_producer_with_the_same_id_fences_the_first_and_aborts_its_transaction(broker):
    create(broker.bootstrap, "fenced")
    first = transactional(broker.bootstrap, "shared-id")
    first.begin_transaction()
    for i in range(5):
        first.produce("fenced", value=f"first-{i}".encode())
    first.flush(10)
    second = transactional(broker.bootstrap, "shared-id")
    try:
        first.commit_transaction(10)
        raise AssertionError("the fenced producer committed")
    except KafkaException as error:
        assert error.args[0].fatal() or error.args[0].txn_requires_abort(), error
    second.begin_transaction()
    second.produce("fenced", value=b"second-0")
    second.commit_transaction(30)
    seen = read(broker.bootstrap, "fenced", 1, "read_committed")
    assert seen == {0: ["second-0"]}, "the first producer's open transaction was aborted"
    everything = read(broker.bootstrap, "fenced", 1, "read_uncommitted")
    assert everything[0] == [f"first-{i}" for i in range(5)] + ["second-0"]


def test_an_open_transaction_holds_read_committed_back_until_it_times_out(broker_factory):
    broker = broker_factory(["transaction.abort.timed.out.transaction.cleanup.interval.ms=300"])
    create(broker.bootstrap, "held")
    stuck = transactional(broker.bootstrap, "stuck", **{"transaction.timeout.ms": 3000})
    stuck.begin_transaction()
    stuck.produce("held", value=b"open")
    stuck.flush(10)
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce("held", value=b"after")
    plain.flush(10)
    assert read(broker.bootstrap, "held", 1, "read_uncommitted", expect=2)[0] == ["open", "after"]
    # Below the last stable offset only: nothing while the transaction is open.
    assert read(broker.bootstrap, "held", 1, "read_committed", timeout=1.5)[0] == []
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "lso",
                         "isolation.level": "read_committed"})
    low, high = consumer.get_watermark_offsets(TopicPartition("held", 0), timeout=10)
    consumer.close()
    assert (low, high) == (0, 0), "read_committed's end offset is the last stable offset"
    # The coordinator aborts it at transaction.timeout.ms; what came after is then readable.
    assert read(broker.bootstrap, "held", 1, "read_committed", expect=1, timeout=20)[0] == ["after"]


def test_an_open_transaction_holds_read_committed_back_until_it_commits(broker):
    create(broker.bootstrap, "held-commit")
    open_txn = transactional(broker.bootstrap, "holder")
    open_txn.begin_transaction()
    open_txn.produce("held-commit", value=b"in-txn")
    open_txn.flush(10)
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce("held-commit", value=b"after")
    plain.flush(10)
    assert read(broker.bootstrap, "held-commit", 1, "read_committed", timeout=1.5)[0] == []
    open_txn.commit_transaction(30)
    assert read(broker.bootstrap, "held-commit", 1, "read_committed", expect=2)[0] == ["in-txn", "after"]


def test_kafka_python_transactional_producer_commits_and_aborts(broker):
    from kafka import KafkaProducer
    create(broker.bootstrap, "kp-txn")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id="kp-writer")
    producer.init_transactions()
    producer.begin_transaction()
    producer.send("kp-txn", b"kept-0")
    producer.send("kp-txn", b"kept-1")
    producer.commit_transaction()
    producer.begin_transaction()
    producer.send("kp-txn", b"dropped")
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send("kp-txn", b"kept-2")
    producer.commit_transaction()
    producer.close()
    assert read(broker.bootstrap, "kp-txn", 1, "read_committed")[0] == ["kept-0", "kept-1", "kept-2"]


def test_consume_transform_produce_survives_sigkills_exactly_once(broker_factory, tmp_path):
    import random
    import signal
    import subprocess
    import sys
    from pathlib import Path
    broker = broker_factory(["group.initial.rebalance.delay.ms=0"])
    create(broker.bootstrap, "ctp-in", 2)
    create(broker.bootstrap, "ctp-out", 2)
    plain = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    n = 3000
    for i in range(n):
        plain.produce("ctp-in", key=str(i).encode(), value=f"in-{i}".encode(), partition=i % 2)
    plain.flush(30)
    script = Path(__file__).resolve().parent / "txn_processor.py"
    progress = tmp_path / "progress"
    args = [sys.executable, str(script), broker.bootstrap, "ctp-group", "ctp-in", "ctp-out", "ctp-tx", "2",
            str(progress)]
    rng = random.Random(7)
    log = open(tmp_path / "processor.log", "ab")

    def committed_transactions():
        return len(progress.read_text().splitlines()) if progress.exists() else 0

    for _ in range(4):
        # Each processor is killed mid-stream: after it committed a few transactions,
        # at a random moment of the next ones.
        before = committed_transactions()
        process = subprocess.Popen(args, stdout=log, stderr=log)
        wait_until = time.time() + 60
        while committed_transactions() < before + 3 and time.time() < wait_until:
            assert process.poll() is None, "a processor exited"
            time.sleep(0.02)
        assert committed_transactions() >= before + 3, "the processor made progress"
        time.sleep(rng.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    process = subprocess.Popen(args, stdout=log, stderr=log)
    try:
        watcher = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "ctp-group"})
        wanted = [TopicPartition("ctp-in", p) for p in range(2)]
        deadline = time.time() + 90
        committed = []
        while time.time() < deadline:
            committed = [tp.offset for tp in watcher.committed(wanted, timeout=10)]
            if committed == [n // 2, n // 2]:
                break
            assert process.poll() is None, "the last processor exited"
            time.sleep(0.5)
        watcher.close()
        assert committed == [n // 2, n // 2], f"the group's committed offsets {committed} reach the input's end"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    output = read(broker.bootstrap, "ctp-out", 2, "read_committed")
    values = [value for partition in output.values() for value in partition]
    assert len(values) == n, f"{len(values)} results for {n} inputs"
    assert sorted(values) == sorted(f"in-{i}-processed" for i in range(n)), "each input's result exactly once"
    # The kills landed inside transactions: their results are in the log, aborted.
    everything = read(broker.bootstrap, "ctp-out", 2, "read_uncommitted")
    written = sum(len(v) for v in everything.values())
    print(json.dumps({"inputs": n, "results_written_incl_aborted": written}))
