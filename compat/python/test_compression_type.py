"""Topic compression.type: batches in another codec are stored in the topic's (read
from the segment files), batches already in it and `producer` topics are stored as
sent, and consumers read every value back."""

import struct

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def stored_codecs(broker, topic):
    """The codec of every batch in the partition's segment files."""
    codecs = []
    for path in sorted((broker.data_dir / f"{topic}-0").glob("*.log")):
        data = path.read_bytes()
        position = 0
        while position + 61 <= len(data):
            length = struct.unpack_from(">i", data, position + 8)[0]
            attributes = struct.unpack_from(">h", data, position + 21)[0]
            codecs.append(CODECS[attributes & 7])
            position += 12 + length
    return codecs


def round_trip(broker, topic, producer_codec, total, n=400):
    """Produces n values in `producer_codec`, then reads the partition from the start
    until `total` values came (and briefly after, to see no more come)."""
    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": producer_codec,
                         "linger.ms": 20, "enable.idempotence": True})
    for i in range(n):
        producer.produce(topic, key=f"k{i}".encode(), value=f"{producer_codec}-{i}-".encode() * 20)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"c-{topic}-{producer_codec}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = []
    while len(values) < total:
        message = consumer.poll(10)
        assert message is not None, f"{len(values)} of {total}"
        assert message.error() is None, message.error()
        values.append(message.value())
    assert consumer.poll(0.5) is None
    consumer.close()
    return values


def test_topic_codec_is_applied_on_append(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topics = [NewTopic("lz4-topic", 1, 1, config={"compression.type": "lz4"}),
              NewTopic("as-sent", 1, 1)]
    for future in admin.create_topics(topics).values():
        future.result(timeout=30)
    expected = []
    for codec in ("none", "gzip", "lz4", "zstd"):
        expected += [f"{codec}-{i}-".encode() * 20 for i in range(400)]
        values = round_trip(broker, "lz4-topic", codec, len(expected))
        assert values == expected, f"after {codec}: {len(values)} of {len(expected)}"
    codecs = stored_codecs(broker, "lz4-topic")
    assert codecs and set(codecs) == {"lz4"}, codecs
    # compression.type=producer keeps what producers sent.
    round_trip(broker, "as-sent", "gzip", 400)
    round_trip(broker, "as-sent", "snappy", 800)
    assert set(stored_codecs(broker, "as-sent")) == {"gzip", "snappy"}
