"""A consume-transform-produce processor for the transaction tests, run as its own
process: reads INPUT in GROUP (read_committed), writes "<value>-processed" to OUTPUT and
commits its input offsets in the same transaction (send_offsets_to_transaction), one
transaction per batch. Every start uses the same transactional id, so a restarted
processor fences the one before it and aborts what that one left open.
Usage: txn_processor.py BOOTSTRAP GROUP INPUT OUTPUT TRANSACTIONAL_ID [WORK_MS_PER_MESSAGE
[PROGRESS_FILE]]. Appends a line to PROGRESS_FILE after every committed transaction.
Runs until killed.
"""

import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

bootstrap, group, input_topic, output_topic, transactional_id = sys.argv[1:6]
# Simulated work per message, inside the transaction, so that a kill can land mid-way.
work_ms = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
progress = open(sys.argv[7], "a", buffering=1) if len(sys.argv) > 7 else None

consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",
    "session.timeout.ms": 6000,
    # Static membership: a restarted processor takes its predecessor's place at once.
    "group.instance.id": f"{transactional_id}-member",
    "heartbeat.interval.ms": 500,
})
producer = Producer({
    "bootstrap.servers": bootstrap,
    "transactional.id": transactional_id,
    "linger.ms": 5,
    "transaction.timeout.ms": 10000,
})
producer.init_transactions(60)
consumer.subscribe([input_topic])


def rewind():
    """After an aborted transaction: back to the committed offsets."""
    assignment = consumer.assignment()
    if assignment:
        for partition in consumer.committed(assignment, timeout=30):
            if partition.offset >= 0:
                consumer.seek(partition)


while True:
    messages = [msg for msg in consumer.consume(num_messages=40, timeout=0.5) if not msg.error()]
    if not messages:
        continue
    producer.begin_transaction()
    try:
        for msg in messages:
            producer.produce(output_topic, value=msg.value() + b"-processed", key=msg.key())
            producer.poll(0)
            time.sleep(work_ms / 1000)
        producer.send_offsets_to_transaction(
            consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        if progress:
            progress.write(f"{len(messages)}\n")
    except KafkaException as error:
        kafka_error = error.args[0]
        if kafka_error.txn_requires_abort():
            producer.abort_transaction(30)
            rewind()
        elif kafka_error.retriable():
            producer.abort_transaction(30)
            rewind()
        else:
            sys.stderr.write(f"fatal: {kafka_error}\n")
            sys.exit(1 if kafka_error.code() != KafkaError._FENCED else 2)
