"""A share group member for the share group tests, run as its own process.

Polls TOPIC in share group GROUP (explicit acknowledgement mode) and appends JSON
lines to LOG: ["msg", time, partition, offset, delivery_count] for every record. With
ACK=accept it accepts each record (commit_sync after each poll); with ACK=hold it
never acknowledges, so its records stay acquired until it dies and their locks expire.
Usage: share_worker.py BOOTSTRAP GROUP TOPIC LOG ACK
"""

import json
import signal
import sys
import time

from confluent_kafka import AcknowledgeType, ShareConsumer

bootstrap, group, topic, log_path, ack = sys.argv[1:6]
out = open(log_path, "a", buffering=1)
consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                          "share.acknowledgement.mode": "explicit", "max.poll.records": 50})
consumer.subscribe([topic])
running = True


def stop(signum, frame):
    global running
    running = False


signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
held = []
try:
    while running:
        if ack == "hold" and held:
            # Keep what it has acquired, unacknowledged, until it is killed.
            time.sleep(0.1)
            continue
        for msg in consumer.poll(0.2):
            if msg.error():
                continue
            out.write(json.dumps(["msg", time.time(), msg.partition(), msg.offset(), msg.delivery_count()]) + "\n")
            if ack == "accept":
                consumer.acknowledge(msg, AcknowledgeType.ACCEPT)
            else:
                held.append(msg)
        if ack == "accept":
            consumer.commit_sync()
finally:
    consumer.close()
