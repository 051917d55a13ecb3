"""Chaos workload processes. Each runs until a wall-clock deadline and writes its history
as JSON lines (see checker.py), one process per client so a stuck client cannot stall
the others:

    workers.py confluent-producer   NAME BOOTSTRAP TOPIC PARTITIONS RATE UNTIL OUT
    workers.py kafka-python-producer NAME BOOTSTRAP TOPIC PARTITIONS RATE UNTIL OUT
    workers.py group-consumer       NAME BOOTSTRAP TOPIC GROUP UNTIL OUT
    workers.py reader               NAME BOOTSTRAP TOPIC PARTITIONS UNTIL OUT

Producers send `<NAME>-<sequence>` round-robin over the partitions, idempotent with
acks=all and retries, and record each outcome with its send and completion times.
"""

import json
import signal
import sys
import threading
import time

# SIGTERM ends the workload early: producers stop sending and flush, readers stop.
STOP = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: STOP.set())


def running(until):
    return time.time() < until and not STOP.is_set()


class History:
    def __init__(self, path):
        self.out = open(path, "w", buffering=1)
        self.lock = threading.Lock()

    def write(self, **op):
        line = json.dumps(op, separators=(",", ":"))
        with self.lock:
            self.out.write(line + "\n")


def paced(rate, until):
    """Yields sequence numbers at `rate` per second until the deadline."""
    start, sequence = time.time(), 0
    while running(until):
        due = start + sequence / rate
        delay = due - time.time()
        if delay > 0:
            time.sleep(min(delay, 0.05))
            continue
        yield sequence
        sequence += 1


def confluent_producer(name, bootstrap, topic, partitions, rate, until, out):
    from confluent_kafka import Producer
    history = History(out)
    pending = {}
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5, "message.timeout.ms": 300000, "topic.metadata.refresh.interval.ms": 2000,
                         # Idempotence events (epoch bumps, sequence errors) in the worker's log.
                         "debug": "eos"})

    def report(error, msg):
        value = msg.value().decode()
        sent = pending.pop(value, None)
        if error is None:
            history.write(op="ack", value=value, partition=msg.partition(), offset=msg.offset(), t_send=sent,
                          t=time.time())
        else:
            history.write(op="fail", value=value, partition=msg.partition(), error=str(error), t_send=sent,
                          t=time.time())

    for sequence in paced(rate, until):
        value = f"{name}-{sequence}"
        pending[value] = time.time()
        while True:
            try:
                producer.produce(topic, key=name.encode(), value=value.encode(), partition=sequence % partitions,
                                 on_delivery=report)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(300)
    for value, sent in pending.items():
        history.write(op="unknown", value=value, t_send=sent, t=time.time())


def kafka_python_producer(name, bootstrap, topic, partitions, rate, until, out):
    from kafka import KafkaProducer
    history = History(out)
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", enable_idempotence=True,
                             linger_ms=5, delivery_timeout_ms=300000, request_timeout_ms=10000,
                             metadata_max_age_ms=2000)
    futures = []
    for sequence in paced(rate, until):
        value = f"{name}-{sequence}"
        sent = time.time()
        future = producer.send(topic, key=name.encode(), value=value.encode(), partition=sequence % partitions)
        future.add_callback(lambda metadata, value=value, sent=sent: history.write(
            op="ack", value=value, partition=metadata.partition, offset=metadata.offset, t_send=sent, t=time.time()))
        future.add_errback(lambda error, value=value, sent=sent, partition=sequence % partitions: history.write(
            op="fail", value=value, partition=partition, error=repr(error), t_send=sent, t=time.time()))
        futures.append((value, sent, future))
    producer.flush(300)
    for value, sent, future in futures:
        if not future.is_done:
            history.write(op="unknown", value=value, t_send=sent, t=time.time())
    producer.close(10)


def group_consumer(name, bootstrap, topic, group, until, out):
    from confluent_kafka import Consumer, KafkaException
    history = History(out)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                         "heartbeat.interval.ms": 1000, "topic.metadata.refresh.interval.ms": 2000})
    consumer.subscribe([topic])
    last_commit = time.time()
    while running(until):
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            history.write(op="read", reader=name, partition=msg.partition(), offset=msg.offset(),
                          value=msg.value().decode(), t=time.time())
        if time.time() - last_commit >= 1.0:
            last_commit = time.time()
            try:
                committed = consumer.commit(asynchronous=False)
            except KafkaException as error:
                history.write(op="commit_fail", reader=name, error=str(error), t=time.time())
                continue
            for entry in committed or []:
                if entry.error is None and entry.offset >= 0:
                    history.write(op="commit", reader=name, partition=entry.partition, offset=entry.offset,
                                  t=time.time())
    consumer.close()


def reader(name, bootstrap, topic, partitions, until, out):
    from confluent_kafka import Consumer, TopicPartition
    history = History(out)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{name}-unused",
                         "enable.auto.commit": False, "topic.metadata.refresh.interval.ms": 2000})
    consumer.assign([TopicPartition(topic, partition, 0) for partition in range(partitions)])
    while running(until):
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            history.write(op="read", reader=name, partition=msg.partition(), offset=msg.offset(),
                          value=msg.value().decode(), t=time.time())
    consumer.close()


def main(argv):
    command, args = argv[0], argv[1:]
    if command in ("confluent-producer", "kafka-python-producer"):
        name, bootstrap, topic, partitions, rate, until, out = args
        run = confluent_producer if command == "confluent-producer" else kafka_python_producer
        run(name, bootstrap, topic, int(partitions), float(rate), float(until), out)
    elif command == "group-consumer":
        name, bootstrap, topic, group, until, out = args
        group_consumer(name, bootstrap, topic, group, float(until), out)
    elif command == "reader":
        name, bootstrap, topic, partitions, until, out = args
        reader(name, bootstrap, topic, int(partitions), float(until), out)
    else:
        raise SystemExit(f"unknown worker {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
