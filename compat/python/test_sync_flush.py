"""Sync flush: with log.flush.interval.messages=1 every acknowledged message is fsynced
before its ack. SIGKILL the broker while a producer sends with acks=1; after a restart
every acknowledged message must be there."""

import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, TopicPartition

from jsonl import count_lines, read_jsonl

PRODUCER = r'''
import json, sys
from confluent_kafka import Producer
bootstrap, out_path = sys.argv[1], sys.argv[2]
out = open(out_path, "w", buffering=1)
p = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 0,
              "message.timeout.ms": 5000, "retries": 0})
def acked(err, msg):
    if err is None:
        out.write(json.dumps([msg.partition(), msg.offset(), msg.value().decode()]) + "\n")
i = 0
while True:
    try:
        p.produce("sync", value=f"m{i}".encode(), partition=i % 2, on_delivery=acked)
        i += 1
    except BufferError:
        pass
    p.poll(0.001)
'''


def test_acknowledged_messages_survive_sigkill(broker_factory, tmp_path):
    broker = broker_factory(settings=["log.flush.interval.messages=1", "num.partitions=2"])
    acked_path = tmp_path / "acked.jsonl"
    producer = subprocess.Popen([sys.executable, "-c", PRODUCER, broker.bootstrap, str(acked_path)])
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if count_lines(acked_path) > 2000:
                break
            time.sleep(0.1)
        broker.kill()
        time.sleep(1)
    finally:
        producer.kill()
        producer.wait()
    acked = read_jsonl(acked_path)
    assert len(acked) > 2000

    broker.start()
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    consumer.assign([TopicPartition("sync", p, 0) for p in range(2)])
    stored, eof = {}, set()
    deadline = time.time() + 60
    while len(eof) < 2 and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
            eof.add(msg.partition())
            continue
        stored[(msg.partition(), msg.offset())] = msg.value().decode()
    consumer.close()
    missing = [a for a in acked if stored.get((a[0], a[1])) != a[2]]
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {missing[:3]}"
