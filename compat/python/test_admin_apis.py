"""Admin APIs through kafka-python's KafkaAdminClient, which sends them as Kafka's
Java AdminClient does: DescribeCluster (API 60) and DescribeLogDirs (API 35), whose
partition sizes must match the segment files on disk."""

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from kafka.admin import KafkaAdminClient, NewTopic


def test_describe_cluster(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    assert cluster["cluster_id"]
    assert cluster["controller_id"] == 0
    assert [(b["broker_id"], b["host"], b["port"], b["is_fenced"]) for b in cluster["brokers"]] == [
        (0, "127.0.0.1", broker.port, False)]
    # No authorizer: every cluster operation is allowed, and the client names them.
    operations = {str(operation).split(".")[-1] for operation in cluster["authorized_operations"]}
    assert {"DESCRIBE", "ALTER", "CLUSTER_ACTION", "IDEMPOTENT_WRITE"} <= operations, operations


def test_describe_log_dirs_sizes_match_the_files(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic("sized", 2, 1)])
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
        for i in range(3000):
            producer.produce("sized", value=b"s" * (100 + i % 50), partition=i % 2)
        assert producer.flush(30) == 0
        answers = admin.describe_log_dirs()
    finally:
        admin.close()
    assert len(answers) == 1 and answers[0]["broker"] == 0
    dirs = answers[0]["log_dirs"]
    assert [d["log_dir"] for d in dirs] == [str(broker.data_dir)]
    assert dirs[0]["error_code"] == 0
    assert 0 < dirs[0]["usable_bytes"] <= dirs[0]["total_bytes"]
    topic = next(t for t in dirs[0]["topics"] if t["name"] == "sized")
    assert [p["partition_index"] for p in topic["partitions"]] == [0, 1]
    for partition in topic["partitions"]:
        files = (broker.data_dir / f"sized-{partition['partition_index']}").glob("*.log")
        on_disk = sum(f.stat().st_size for f in files)
        assert partition["partition_size"] == on_disk > 1500 * 100
        assert partition["offset_lag"] == 0
    # Only what is asked for.
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        only = admin.describe_log_dirs({"sized": [1]})
    finally:
        admin.close()
    topics = only[0]["log_dirs"][0]["topics"]
    assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in topics] == [("sized", [1])]


def test_describe_producers_after_an_idempotent_producer(broker):
    import time
    from kafka import TopicPartition
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic("produced", 1, 1)])
        before = int(time.time() * 1000)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                             "linger.ms": 0})
        for i in range(25):
            producer.produce("produced", value=f"{i}".encode())
            producer.flush(30)  # one batch per record: sequences 0..24
        states = admin.describe_producers([TopicPartition("produced", 0)])
    finally:
        admin.close()
    state = states[TopicPartition("produced", 0)]
    producers = state.active_producers
    assert len(producers) == 1, producers
    active = producers[0]
    assert active.producer_id >= 0 and active.producer_epoch == 0
    assert active.last_sequence == 24
    assert before <= active.last_timestamp <= int(time.time() * 1000)
    assert active.current_transaction_start_offset == -1 and active.coordinator_epoch == -1


def test_topic_configs_read_back_have_values_and_can_be_written_again(broker):
    """Tools read a topic's configs and write them all back: no value may be null, and
    each must be accepted as it was read."""
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                       ConfigSource)
    from confluent_kafka.admin import NewTopic as ConfluentNewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([ConfluentNewTopic("configured", 1, 1, config={"retention.ms": "3600000"})]).values():
        future.result(timeout=30)
    resource = ConfigResource(ConfigResource.Type.TOPIC, "configured")
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    assert {name for name, entry in configs.items() if entry.value is None} == set()
    assert configs["flush.ms"].value == "9223372036854775807"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    entries = [ConfigEntry(name, entry.value, incremental_operation=AlterConfigOpType.SET)
               for name, entry in configs.items()]
    write_back = ConfigResource(ConfigResource.Type.TOPIC, "configured", incremental_configs=entries)
    admin.incremental_alter_configs([write_back])[write_back].result(timeout=30)
    again = admin.describe_configs([resource])[resource].result(timeout=30)
    assert {name: entry.value for name, entry in again.items()} == {name: entry.value for name, entry in configs.items()}


def test_legacy_alter_configs_replaces_the_overrides(broker):
    from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource
    from confluent_kafka.admin import NewTopic as ConfluentNewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([ConfluentNewTopic("legacy", 1, 1, config={"retention.ms": "3600000"})]).values():
        future.result(timeout=30)
    resource = ConfigResource(ConfigResource.Type.TOPIC, "legacy", set_config={"segment.ms": "60000"})
    admin.alter_configs([resource])[resource].result(timeout=30)
    described = ConfigResource(ConfigResource.Type.TOPIC, "legacy")
    configs = admin.describe_configs([described])[described].result(timeout=30)
    assert (configs["segment.ms"].value, configs["segment.ms"].source) == (
        "60000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    # Not given again: back to the default.
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["retention.ms"].value == "604800000"
    # A bad value is refused with INVALID_CONFIG and changes nothing.
    bad = ConfigResource(ConfigResource.Type.TOPIC, "legacy", set_config={"segment.ms": "soon"})
    with pytest.raises(KafkaException) as refused:
        admin.alter_configs([bad])[bad].result(timeout=30)
    assert refused.value.args[0].code() == KafkaError.INVALID_CONFIG, refused.value
    configs = admin.describe_configs([described])[described].result(timeout=30)
    assert configs["segment.ms"].value == "60000"


def test_delete_records_moves_the_log_start_for_consumers(broker):
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic as AdminTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([AdminTopic("trimmed", num_partitions=2, replication_factor=1)])["trimmed"].result(10)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for i in range(1000):
        producer.produce("trimmed", value=f"r{i}".encode(), partition=i % 2)
    assert producer.flush(30) == 0
    futures = admin.delete_records([TopicPartition("trimmed", 0, 300), TopicPartition("trimmed", 1, -1)],
                                   operation_timeout=10)
    low = {tp.partition: future.result(10).low_watermark for tp, future in futures.items()}
    assert low == {0: 300, 1: 500}
    # Above the high watermark: OFFSET_OUT_OF_RANGE.
    future = admin.delete_records([TopicPartition("trimmed", 0, 501)])[TopicPartition("trimmed", 0, 501)]
    with pytest.raises(KafkaException) as raised:
        future.result(10)
    assert raised.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE
    # A consumer from the beginning starts at the new log start.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "trim-reader",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition("trimmed", 0)])
    offsets = []
    while len(offsets) < 200:
        msg = consumer.poll(10)
        assert msg is not None, f"only {len(offsets)} read"
        assert not msg.error(), msg.error()
        offsets.append(msg.offset())
    assert offsets == list(range(300, 500))
    assert consumer.get_watermark_offsets(TopicPartition("trimmed", 0), timeout=10) == (300, 500)
    consumer.close()
    # One asking for a deleted offset is told it is out of range (no reset policy).
    strict = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "trim-strict",
                       "auto.offset.reset": "error", "enable.auto.commit": False})
    strict.assign([TopicPartition("trimmed", 0, 100)])
    msg = strict.poll(10)
    while msg is not None and not msg.error():
        msg = strict.poll(10)
    strict.close()
    assert msg is not None and msg.error().code() == KafkaError._AUTO_OFFSET_RESET, msg and msg.error()
    assert "out of range" in msg.error().str().lower()


def test_describe_topic_partitions_pages_with_a_cursor(broker):
    """DescribeTopicPartitions (KIP-966) through kafka-python's admin client: topics in
    name order, pages of at most the limit, resumed from the cursor the broker gives."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("dtp-c", 4, 1), NewTopic("dtp-a", 3, 1), NewTopic("dtp-b", 2, 1)])
    names = ["dtp-c", "dtp-a", "dtp-b"]
    pages, cursor = [], None
    while True:
        page = admin.describe_topic_partitions(names, response_partition_limit=4, cursor=cursor)
        pages.append([(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in page["topics"]])
        for topic in page["topics"]:
            assert topic["error_code"] == 0
            for partition in topic["partitions"]:
                assert partition["error_code"] == 0
                assert partition["leader_id"] == 0
                assert partition["replica_nodes"] == [0] and partition["isr_nodes"] == [0]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10
    assert pages == [
        [("dtp-a", [0, 1, 2]), ("dtp-b", [0])],
        [("dtp-b", [1]), ("dtp-c", [0, 1, 2])],
        [("dtp-c", [3])],
    ]
    # Unknown topics are named with an error; all topics when none are named.
    answer = admin.describe_topic_partitions(["dtp-a", "nope"])
    errors = {t["name"]: t["error_code"] for t in answer["topics"]}
    assert errors == {"dtp-a": 0, "nope": 3}
    everything = admin.describe_topic_partitions([])
    described = {t["name"]: len(t["partitions"]) for t in everything["topics"]}
    assert described == {"dtp-a": 3, "dtp-b": 2, "dtp-c": 4}, described
    assert everything["next_cursor"] is None
    admin.close()


def test_alter_replica_log_dirs_moves_a_partition_between_log_dirs(broker_factory, tmp_path):
    """AlterReplicaLogDirs through kafka-python: a partition moves to the other log dir,
    keeps every record, takes new ones there, and is still there after a restart."""
    import time
    from confluent_kafka import Consumer, TopicPartition as Partition
    from kafka.structs import TopicPartitionReplica

    dirs = [tmp_path / "dir-a", tmp_path / "dir-b"]
    for directory in dirs:
        directory.mkdir()
    broker = broker_factory(settings=[f"log.dirs={dirs[0]},{dirs[1]}"])
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("movable", 1, 1)])
    source = next(d for d in dirs if (d / "movable-0").exists())
    target = next(d for d in dirs if d != source)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5,
                         "topic.metadata.refresh.interval.ms": 1000})
    for i in range(3000):
        producer.produce("movable", value=f"before-{i}".encode() * 10)
    assert producer.flush(30) == 0

    result = admin.alter_replica_log_dirs({TopicPartitionReplica("movable", 0, 0): str(target)})
    assert [error.errno for error in result.values()] == [0], result
    assert (target / "movable-0").exists() and not (source / "movable-0").exists()
    assert not list(target.glob("*-future"))
    for i in range(500):
        producer.produce("movable", value=f"after-{i}".encode())
    assert producer.flush(30) == 0
    # Unknown log dir; unknown partition.
    bad = admin.alter_replica_log_dirs({TopicPartitionReplica("movable", 0, 0): str(tmp_path / "nowhere")})
    assert [error.errno for error in bad.values()] == [57], bad
    missing = admin.alter_replica_log_dirs({TopicPartitionReplica("movable", 5, 0): str(target)})
    assert [error.errno for error in missing.values()] == [9], missing
    admin.close()

    def read_all():
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"mv-{time.time()}",
                             "enable.auto.commit": False})
        consumer.assign([Partition("movable", 0, 0)])
        values = []
        while len(values) < 3500:
            message = consumer.poll(10)
            assert message is not None, f"only {len(values)} read"
            assert message.error() is None, message.error()
            values.append(message.value())
        consumer.close()
        return values

    expected = [f"before-{i}".encode() * 10 for i in range(3000)] + [f"after-{i}".encode() for i in range(500)]
    assert read_all() == expected
    broker.stop()
    broker.start()
    assert (target / "movable-0").exists() and not (source / "movable-0").exists()
    assert read_all() == expected
