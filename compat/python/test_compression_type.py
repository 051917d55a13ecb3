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


def test_codec_levels_are_topic_configs(broker):
    """KIP-390: the same uncompressed data recompressed at a low and a high level; the
    high level's segment is smaller and both read back whole. The levels are read back
    as topic configs."""
    from confluent_kafka.admin import ConfigResource

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topics = []
    for codec, low, high in (("gzip", "1", "9"), ("zstd", "-5", "19"), ("lz4", "1", "12")):
        for name, level in (("low", low), ("high", high)):
            topics.append(NewTopic(f"{codec}-{name}", 1, 1, config={
                "compression.type": codec, f"compression.{codec}.level": level}))
    for future in admin.create_topics(topics).values():
        future.result(timeout=30)
    sizes = {}
    for topic in topics:
        values = round_trip(broker, topic.topic, "none", 400)
        codec = topic.topic.split("-")[0]
        assert values == [f"none-{i}-".encode() * 20 for i in range(400)]
        assert set(stored_codecs(broker, topic.topic)) == {codec}
        sizes[topic.topic] = sum(p.stat().st_size for p in (broker.data_dir / f"{topic.topic}-0").glob("*.log"))
    for codec in ("gzip", "zstd", "lz4"):
        assert sizes[f"{codec}-high"] < sizes[f"{codec}-low"], sizes
    resource = ConfigResource("TOPIC", "zstd-high")
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    assert configs["compression.zstd.level"].value == "19"
    assert configs["compression.gzip.level"].value == "-1"
    assert configs["compression.lz4.level"].value == "9"
    # Out of Kafka's range: refused.
    bad = NewTopic("bad-level", 1, 1, config={"compression.gzip.level": "10"})
    error = admin.create_topics([bad])["bad-level"].exception(timeout=30)
    assert error is not None and "INVALID_CONFIG" in str(error.args[0].name()), error
