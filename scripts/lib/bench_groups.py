"""`scripts/bench --groups`: consuming one topic as a classic consumer group and as a
KIP-932 share group, side by side on one broker.

One topic of one partition gets N records of 100 bytes. Then, in turn, a classic group
consumer (confluent-kafka `Consumer`, manual `commit()` after each batch of up to 500)
and a share consumer (`ShareConsumer`, explicit mode: every record acknowledged ACCEPT,
`commit_sync()` after each poll) read all N; each row is the time from the first poll
to the last record. Alternating runs (classic, share, classic, share) give the medians.
A share group acknowledges every record to the broker and the broker keeps each
record's state, so it does more work per record than a classic group's one offset per
batch: the ratio says what that costs.

Prints a table and appends it to bench/results.md.
"""

import statistics
import time

from confluent_kafka import AcknowledgeType, Consumer, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, NewTopic

N = 200_000
VALUE = b"v" * 100


def produce(bootstrap, topic, n):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    produce_more(bootstrap, topic, n)


def classic(bootstrap, topic, group, n):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got, start = 0, None
    deadline = time.time() + 300
    while got < n and time.time() < deadline:
        batch = consumer.consume(500, 0.5)
        if batch and start is None:
            start = time.time()
        got += sum(1 for msg in batch if not msg.error())
        if batch:
            consumer.commit(asynchronous=False)
    elapsed = time.time() - start
    consumer.close()
    return got, elapsed


def share(bootstrap, topic, group, n):
    # The share-partition starts at the log end (latest): join first, then rewind is
    # not possible, so the records to read are produced after the member joined.
    consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                              "share.acknowledgement.mode": "explicit", "max.poll.records": 500})
    consumer.subscribe([topic])
    joined = time.time() + 3
    while time.time() < joined:
        for msg in consumer.poll(0.1):
            consumer.acknowledge(msg, AcknowledgeType.ACCEPT)
    produce_more(bootstrap, topic, n)
    got, start = 0, None
    deadline = time.time() + 300
    while got < n and time.time() < deadline:
        batch = consumer.poll(0.5)
        if len(batch) and start is None:
            start = time.time()
        for msg in batch:
            if not msg.error():
                got += 1
                consumer.acknowledge(msg, AcknowledgeType.ACCEPT)
        if len(batch):
            consumer.commit_sync()
    elapsed = time.time() - start
    consumer.close()
    return got, elapsed


def produce_more(bootstrap, topic, n):
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.num.messages": 10000})
    for _ in range(n):
        while True:
            try:
                producer.produce(topic, value=VALUE, partition=0)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0


def run(Broker, binary, work, rounds=2):
    data = work / "groups"
    data.mkdir()
    broker = Broker(binary, data, extra=["offsets.topic.num.partitions=4"])
    results = {"classic": [], "share": []}
    try:
        for round_index in range(rounds):
            topic = f"bench-groups-{round_index}"
            produce(broker.bootstrap, topic, N)
            got, seconds = classic(broker.bootstrap, topic, f"classic-{round_index}", N)
            assert got >= N, f"classic read {got} of {N}"
            results["classic"].append(N / seconds)
            got, seconds = share(broker.bootstrap, topic, f"share-{round_index}", N)
            assert got >= N, f"share read {got} of {N}"
            results["share"].append(N / seconds)
    finally:
        broker.stop()
    return results


def table(results):
    classic_rate = statistics.median(results["classic"])
    share_rate = statistics.median(results["share"])
    lines = ["| consume one partition, 100-byte records, one Python consumer | records/s (median) | runs | vs classic |",
             "| --- | --- | --- | --- |",
             f"| classic group, commit after each batch | {classic_rate:,.0f} | "
             f"{', '.join(f'{r:,.0f}' for r in results['classic'])} | 1.00 |",
             f"| share group, explicit ACCEPT of every record, commit_sync after each poll | {share_rate:,.0f} | "
             f"{', '.join(f'{r:,.0f}' for r in results['share'])} | {share_rate / classic_rate:.2f} |"]
    return "\n".join(lines)
