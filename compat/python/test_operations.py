"""Operating a three-node cluster as Kafka users expect: a dead leader fenced without
waiting out its session, leadership moved back to preferred replicas, broker configs
changed without a restart, and client quotas and replication throttles."""

import struct
import time

from cluster import wait_until
from test_cluster import create_topic, produce

import failover

FAST = ["broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500", "replica.lag.time.max.ms=3000"]


def leaders(cluster, via, topic):
    return {partition: (leader, list(replicas), sorted(isr))
            for partition, leader, replicas, isr in cluster.metadata(via)["topics"].get(topic, [])}


def test_sigkill_of_a_leader_fails_over_without_waiting_for_the_session(cluster_factory):
    """Default settings (broker.session.timeout.ms=9000): the leader's process is gone,
    so the controller fences it at once; an idempotent acks=all producer loses and
    duplicates nothing."""
    cluster = cluster_factory(3, settings=["min.insync.replicas=2"])
    result = failover.measure(cluster, "failover", kill_controller=False, rate=500, before=2.0, after=4.0)
    print(f"\nSIGKILL of a leader (not the active controller), default session 9 s: longest gap between "
          f"acknowledgements {result['gap_s']:.2f} s, {result['acked']} acknowledged, {result['lost']} lost, "
          f"{result['duplicated']} duplicated")
    assert result["lost"] == 0 and result["duplicated"] == 0, result
    assert result["failed"] == 0, result
    assert result["acked"] == 3000, result
    log = (cluster.dir / f"node-{result['controller']}.log").read_text(errors="replace")
    assert "broker fenced at once" in log, "the dead broker was not fenced on evidence"
    # Fenced on evidence, not by its session: the pause is well below 9 s.
    assert result["gap_s"] < 9.0, result


def test_a_restarted_broker_leads_its_preferred_partitions_again(cluster_factory):
    """auto.leader.rebalance.enable (default true) with a 2 s check interval: after its
    restart, a broker that lost its leaderships gets them back once it is in sync."""
    cluster = cluster_factory(3, settings=FAST + ["leader.imbalance.check.interval.seconds=2"])
    create_topic(cluster.bootstrap(1), "balanced", 3, 3)
    wait_until(lambda: all(leader == replicas[0] for leader, replicas, _ in leaders(cluster, 1, "balanced").values())
               and len(leaders(cluster, 1, "balanced")) == 3, 30, "preferred leaders")
    victim = leaders(cluster, 1, "balanced")[0][0]
    witness = next(node for node in cluster.node_ids if node != victim)
    preferred = [p for p, (_, replicas, _) in leaders(cluster, witness, "balanced").items() if replicas[0] == victim]
    cluster.kill(victim)
    wait_until(lambda: all(leader not in (-1, victim) for leader, _, _ in leaders(cluster, witness, "balanced").values()),
               30, "leadership moved away")
    produce(cluster.bootstrap(witness), "balanced", 3, 100)
    cluster.start(victim)
    wait_until(lambda: all(victim in isr for _, _, isr in leaders(cluster, witness, "balanced").values()), 60,
               "the restarted broker back in every ISR")
    in_sync_at = time.time()
    wait_until(lambda: all(leaders(cluster, witness, "balanced")[p][0] == victim for p in preferred), 30,
               "the restarted broker leading its preferred partitions")
    print(f"\nback in sync to preferred leadership again: {time.time() - in_sync_at:.2f} s "
          "(leader.imbalance.check.interval.seconds=2)")
    log = (cluster.dir / f"node-{cluster.active_controller(via=witness)}.log").read_text(errors="replace")
    assert "leadership moved back to preferred replicas" in log


def _alter_broker(bootstrap, name, **configs):
    """IncrementalAlterConfigs on a BROKER resource. Over the wire: librdkafka and
    kafka-python refuse the empty name of the cluster-wide default."""
    import kafka_wire
    error, message = kafka_wire.incremental_alter_configs(bootstrap.split(",")[0], 4, name, configs)
    assert error == 0, (error, message)


def _describe_broker(admin, name, key):
    from confluent_kafka.admin import ConfigResource
    resource = ConfigResource(ConfigResource.Type.BROKER, name)
    return admin.describe_configs([resource])[resource].result(30).get(key)


def _low_watermark(bootstrap, topic):
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[0]
    finally:
        consumer.close()


def test_dynamic_broker_configs_apply_without_a_restart_and_survive_one(cluster_factory):
    """KIP-226: a cluster-wide log.segment.bytes and log.retention.ms set through
    IncrementalAlterConfigs on BROKER "" reach every partition at once, show as
    DYNAMIC_DEFAULT_BROKER_CONFIG, outrank the static value, are outranked by a
    per-broker value, and hold after a restart; static configs are refused."""
    from confluent_kafka.admin import AdminClient, ConfigSource
    cluster = cluster_factory(3, settings=FAST + ["log.retention.check.interval.ms=500"])
    bootstrap = ",".join(cluster.bootstrap(node) for node in cluster.node_ids)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    create_topic(bootstrap, "retained", 1, 3)
    _alter_broker(bootstrap, "", **{"log.segment.bytes": "16384"})
    value = "x" * 1000
    from confluent_kafka import Producer
    # Small batches, so that 16 KiB segments roll.
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0, "batch.size": 1500})
    for i in range(200):
        producer.produce("retained", value=value, partition=0)
    assert producer.flush(30) == 0
    time.sleep(2)
    assert _low_watermark(bootstrap, "retained") == 0, "7 days of retention by default"

    changed_at = time.time()
    _alter_broker(bootstrap, "", **{"log.retention.ms": "1000"})
    wait_until(lambda: _low_watermark(bootstrap, "retained") > 150, 30, "retention to delete old segments")
    print(f"\ndynamic log.retention.ms=1000 to old segments deleted: {time.time() - changed_at:.2f} s")
    for node in cluster.node_ids:
        entry = _describe_broker(admin, str(node), "log.retention.ms")
        assert entry.value == "1000" and entry.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value, entry
        assert not entry.is_read_only
    # Synonyms in Kafka's precedence (confluent-kafka keys them by name, so this asks
    # through kafka-python, which keeps the list).
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
    python_admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    described = python_admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1", {"log.retention.ms": None})],
                                              include_synonyms=True, config_filter="all")
    python_admin.close()
    synonyms = described["broker"]["1"]["log.retention.ms"]["synonyms"]
    print(synonyms)
    sources = [synonym["source"] if isinstance(synonym, dict) else synonym[2] for synonym in synonyms]
    assert sources[0] in ("DYNAMIC_DEFAULT_BROKER_CONFIG", 3) and sources[-1] in ("DEFAULT_CONFIG", 5), synonyms

    # A per-broker value outranks the cluster default, on that broker only.
    _alter_broker(bootstrap, "2", **{"log.retention.ms": "3600000"})
    on_two = _describe_broker(admin, "2", "log.retention.ms")
    assert on_two.value == "3600000" and on_two.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value, on_two
    assert _describe_broker(admin, "1", "log.retention.ms").value == "1000"
    _alter_broker(bootstrap, "2", **{"log.retention.ms": None})

    # Static configs stay static.
    import kafka_wire
    refused = kafka_wire.incremental_alter_configs(cluster.bootstrap(1), 4, "", {"log.dirs": "/tmp/elsewhere"})
    assert refused[0] == 40, refused  # INVALID_CONFIG
    # Per broker, through a client's own call (librdkafka sends it to that broker).
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    resource = ConfigResource(ConfigResource.Type.BROKER, "3", incremental_configs=[
        ConfigEntry("log.roll.ms", "600000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(30)
    assert _describe_broker(admin, "3", "log.roll.ms").source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    listeners = _describe_broker(admin, "1", "listeners")
    assert listeners.is_read_only and listeners.source == ConfigSource.STATIC_BROKER_CONFIG.value

    # Kept in the metadata log: after every node restarted in turn (each replays its
    # own copy of the log), the value holds, and retention applies it to new data.
    for node in cluster.node_ids:
        cluster.stop(node)
        cluster.start(node)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wait_until(lambda: (_describe_broker(admin, "1", "log.retention.ms").value == "1000"), 60,
               "the dynamic value after a restart")
    before = _low_watermark(bootstrap, "retained")
    # Small batches, so that 16 KiB segments roll.
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0, "batch.size": 1500})
    for i in range(100):
        producer.produce("retained", value=value, partition=0)
    assert producer.flush(30) == 0
    wait_until(lambda: _low_watermark(bootstrap, "retained") > before + 50, 30, "retention after the restart")


def test_broker_logger_levels_change_at_run_time(cluster_factory):
    """BROKER_LOGGER: a module's level set on one broker shows in its log and in
    DescribeConfigs; an unknown level is refused."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
    import kafka_wire
    cluster = cluster_factory(1)
    bootstrap = cluster.bootstrap(1)
    logger = "ferrolog::api"
    assert kafka_wire.incremental_alter_configs(bootstrap, 8, "1", {logger: "DEBUG"})[0] == 0
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    described = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER_LOGGER, "1")])
    admin.close()
    try:  # a malformed Metadata request: logged at DEBUG as its connection closes
        kafka_wire._call(bootstrap, 3, 1, b"\x00", flexible_header=False, timeout=5)
    except (OSError, struct.error):
        pass
    assert f"'{logger}'" in str(described) and "DEBUG" in str(described), described
    log = cluster.dir / "node-1.log"
    wait_until(lambda: "DEBUG ferrolog::api: malformed request" in log.read_text(errors="replace"), 20,
               "debug lines")
    refused = kafka_wire.incremental_alter_configs(bootstrap, 8, "1", {logger: "LOUD"})
    assert refused[0] == 40, refused
    assert kafka_wire.incremental_alter_configs(bootstrap, 8, "1", {logger: None})[0] == 0
    assert kafka_wire.incremental_alter_configs(bootstrap, 8, "2", {logger: "INFO"})[0] != 0, "another broker's"


def test_a_producer_byte_rate_quota_holds_a_client_near_its_rate(cluster_factory):
    """producer_byte_rate of 1 MB/s for one client id (AlterClientQuotas, kept in the
    metadata log): that producer is held near 1 MB/s and sees throttle times; another
    client on the same brokers is not throttled. quota.window.num=2 so the first
    second's burst is short (Kafka's default of 11 windows lets 10 s of quota through
    before throttling)."""
    import kafka_wire
    from confluent_kafka import Producer
    cluster = cluster_factory(3, settings=FAST + ["quota.window.num=2"])
    bootstrap = ",".join(cluster.bootstrap(node) for node in cluster.node_ids)
    create_topic(bootstrap, "quoted", 1, 3)
    rate = 1024 * 1024
    assert kafka_wire.alter_client_quotas(cluster.bootstrap(1), {"client-id": "limited"},
                                          {"producer_byte_rate": float(rate)}) == (0, None)
    # Bad keys and values are refused.
    assert kafka_wire.alter_client_quotas(cluster.bootstrap(1), {"client-id": "x"}, {"bytes_a_lot": 1.0})[0] == 42
    assert kafka_wire.alter_client_quotas(cluster.bootstrap(1), {"ip": "1.2.3.4"}, {"producer_byte_rate": 1.0})[0] == 42
    error, entries = kafka_wire.describe_client_quotas(cluster.bootstrap(2), [("client-id", 0, "limited")])
    assert error == 0 and entries == [({"client-id": "limited"}, {"producer_byte_rate": float(rate)})], entries
    for node in cluster.node_ids:  # every broker has it in its image
        wait_until(lambda: kafka_wire.describe_client_quotas(cluster.bootstrap(node), [("client-id", 2, None)])[1],
                   10, f"the quota on node {node}")

    def run(client_id, megabytes):
        throttles = []
        producer = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "acks": "all",
                             "linger.ms": 5, "throttle_cb": lambda event: throttles.append(event.throttle_time)})
        value = b"x" * 10_000
        start = time.time()
        for _ in range(megabytes * 100):
            while True:
                try:
                    producer.produce("quoted", value=value, partition=0)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        assert producer.flush(120) == 0
        elapsed = time.time() - start
        producer.poll(0.5)
        return megabytes * 1_000_000 / elapsed, throttles

    limited, limited_throttles = run("limited", 6)
    free, free_throttles = run("free", 6)
    print(f"\nproducer_byte_rate=1 MiB/s: throttled client {limited / 1e6:.2f} MB/s "
          f"({len(limited_throttles)} throttle events, max {max(limited_throttles, default=0):.0f} ms); "
          f"unthrottled client {free / 1e6:.2f} MB/s ({len(free_throttles)} throttle events)")
    assert limited_throttles and max(limited_throttles) > 0, "the limited client saw no throttle time"
    assert 0.4 * rate < limited < 1.6 * rate, limited
    assert not any(free_throttles), free_throttles
    assert free > 2 * limited, (free, limited)
    # Removing the quota lifts it.
    assert kafka_wire.alter_client_quotas(cluster.bootstrap(1), {"client-id": "limited"},
                                          {"producer_byte_rate": None}) == (0, None)
    assert kafka_wire.describe_client_quotas(cluster.bootstrap(1), [("client-id", 2, None)]) == (0, [])


def test_a_reassignment_under_a_replication_throttle_moves_data_at_about_that_rate(cluster_factory):
    """KIP-73: with follower.replication.throttled.rate=1 MiB/s on the new replica's
    broker and the topic's follower.replication.throttled.replicas naming it, a
    reassignment copies 6 MB at about 1 MiB/s; then the same through the leader's side
    (leader.replication.throttled.rate and leader.replication.throttled.replicas)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient
    cluster = cluster_factory(3, settings=FAST + ["replication.quota.window.num=2"])
    nodes = cluster.node_ids
    bootstrap = ",".join(cluster.bootstrap(node) for node in nodes)
    original, follower_side, leader_side = nodes
    admin = AdminClient({"bootstrap.servers": bootstrap})
    from confluent_kafka.admin import NewTopic
    admin.create_topics([NewTopic("moving", num_partitions=1, replica_assignment=[[original]])])["moving"].result(30)
    wait_until(lambda: leaders(cluster, original, "moving").get(0, (-1,))[0] == original, 20, "a leader")
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for _ in range(600):
        producer.produce("moving", value=b"x" * 10_000, partition=0)
    assert producer.flush(60) == 0
    rate = 1024 * 1024

    def alter(resource_type, name, configs):
        entries = [ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET) for key, value in configs.items()]
        resource = ConfigResource(resource_type, name, incremental_configs=entries)
        admin.incremental_alter_configs([resource])[resource].result(30)

    def reassign(replicas):
        python_admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            started = time.time()
            assert python_admin.alter_partition_reassignments({TopicPartition("moving", 0): replicas}) == \
                {TopicPartition("moving", 0): None}
            wait_until(lambda: python_admin.list_partition_reassignments() == {}, 120, "the reassignment")
            return 6_000_000 / (time.time() - started)
        finally:
            python_admin.close()

    alter(ConfigResource.Type.BROKER, str(follower_side), {"follower.replication.throttled.rate": str(rate)})
    alter(ConfigResource.Type.TOPIC, "moving", {"follower.replication.throttled.replicas": f"0:{follower_side}"})
    follower_rate = reassign([original, follower_side])

    alter(ConfigResource.Type.BROKER, str(original), {"leader.replication.throttled.rate": str(rate)})
    alter(ConfigResource.Type.TOPIC, "moving", {"leader.replication.throttled.replicas": f"0:{original}",
                                               "follower.replication.throttled.replicas": ""})
    leader_rate = reassign([original, follower_side, leader_side])
    print(f"\nreassignment of 6 MB under a 1 MiB/s replication throttle: follower side {follower_rate / 1e6:.2f} MB/s, "
          f"leader side {leader_rate / 1e6:.2f} MB/s")
    assert 0.4 * rate < follower_rate < 1.6 * rate, follower_rate
    assert 0.4 * rate < leader_rate < 1.6 * rate, leader_rate
    assert sorted(leaders(cluster, original, "moving")[0][2]) == sorted(nodes)
