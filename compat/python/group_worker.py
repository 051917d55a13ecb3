"""A consumer-group member for the group tests, run as its own process.

Consumes TOPIC (a regex if it starts with ^) in GROUP with manual commits, and
appends JSON lines to LOG:
  ["assign", time, [partitions]] / ["revoke", time, [partitions]]
  ["msg", time, partition, offset, topic]      for every processed message
  ["commit", time, [[partition, offset, topic], ...]] after every successful commit
With GROUP_PROTOCOL=consumer in the environment it is a KIP-848 member
(group.protocol=consumer); else a classic one.
Usage: group_worker.py BOOTSTRAP GROUP TOPIC LOG [SESSION_TIMEOUT_MS [WORK_MS_PER_MESSAGE]].
It runs until SIGINT/SIGTERM (then commits and leaves the group cleanly) or SIGKILL.
"""

import json
import os
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

bootstrap, group, topic, log_path = sys.argv[1:5]
session_timeout_ms = int(sys.argv[5]) if len(sys.argv) > 5 else 6000
# Simulated processing time per message, so that a test can act while work remains.
work_ms = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
out = open(log_path, "a", buffering=1)


def log(*fields):
    out.write(json.dumps(list(fields)) + "\n")


settings = {
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
}
if os.environ.get("GROUP_PROTOCOL") == "consumer":
    # KIP-848: the broker assigns, and owns the session and heartbeat settings.
    settings["group.protocol"] = "consumer"
else:
    settings.update({
        "session.timeout.ms": session_timeout_ms,
        "heartbeat.interval.ms": 500,
        "partition.assignment.strategy": "range",
    })
consumer = Consumer(settings)
# (topic, partition) -> last processed offset, not yet committed.
pending = {}


def commit():
    if not pending:
        return
    offsets = [TopicPartition(t, p, o + 1) for (t, p), o in pending.items()]
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
        log("commit", time.time(), [[p, o + 1, t] for (t, p), o in pending.items()])
        pending.clear()
    except KafkaException as error:
        log("commit_failed", time.time(), str(error))
        pending.clear()


def on_assign(c, partitions):
    log("assign", time.time(), sorted(p.partition for p in partitions))


def on_revoke(c, partitions):
    commit()
    log("revoke", time.time(), sorted(p.partition for p in partitions))


consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
processed = 0
last_commit = time.time()
running = True


def stop(signum, frame):
    global running
    running = False


signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
try:
    while running:
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            log("msg", time.time(), msg.partition(), msg.offset(), msg.topic())
            pending[(msg.topic(), msg.partition())] = msg.offset()
            processed += 1
            if work_ms and processed % 100 == 0:
                time.sleep(work_ms * 100 / 1000)
            if processed % 200 == 0:
                commit()
        elif time.time() - last_commit > 0.5:
            commit()
            last_commit = time.time()
finally:
    commit()
    consumer.close()
