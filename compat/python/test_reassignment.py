"""AlterPartitionReassignments and ListPartitionReassignments (KIP-455) on three real
brokers, through kafka-python's admin client: a topic created with
replication.factor=1 grows to 3 (the new replicas catch up and join the ISR, and
survive the loss of the original broker), then shrinks to 1 on another broker (the
dropped replicas' directories go), with no message lost; bad assignments and cancels
get Kafka's errors."""

import time

from kafka import TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import InvalidReplicationAssignmentError, NoReassignmentInProgressError

from cluster import wait_until
from test_cluster import consume, create_topic, produce

FAST = ["broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500", "replica.lag.time.max.ms=3000"]
PARTITION = TopicPartition("moved", 0)


def state(cluster, via):
    """(leader, replicas, sorted ISR) of moved-0 as node `via` sees it."""
    for partition, leader, replicas, isr in cluster.metadata(via)["topics"]["moved"]:
        if partition == 0:
            return leader, list(replicas), sorted(isr)
    raise KeyError(0)


def ongoing(admin):
    return admin.list_partition_reassignments()


def test_reassignment_changes_the_replication_factor_and_moves_replicas(cluster_factory):
    cluster = cluster_factory(3, settings=FAST)
    nodes = cluster.node_ids
    create_topic(cluster.bootstrap(nodes[0]), "moved", 1, 1)
    wait_until(lambda: state(cluster, nodes[0])[0] >= 0, 20, "a leader")
    _, [original], _ = state(cluster, nodes[0])
    others = [node for node in nodes if node != original]
    produce(cluster.bootstrap(original), "moved", 1, 500)
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap(original))

    # replication.factor 1 -> 3: the new replicas fetch the 500 messages and join.
    assert admin.alter_partition_reassignments({PARTITION: [original] + others}) == {PARTITION: None}
    wait_until(lambda: ongoing(admin) == {}, 60, "the reassignment to finish")
    wait_until(lambda: all(state(cluster, node) == (original, [original] + others, sorted(nodes))
                           for node in nodes), 20, "every node sees three in-sync replicas")
    # The grown partition survives the loss of its original broker.
    cluster.kill(original)
    wait_until(lambda: state(cluster, others[0])[0] in others, 30, "a new leader among the new replicas")
    assert len(consume(cluster.bootstrap(others[0]), "moved", [0], 500)) == 500
    cluster.start(original)
    wait_until(lambda: sorted(state(cluster, others[0])[2]) == sorted(nodes), 60, "the original back in sync")

    # replication.factor 3 -> 1 on another broker: done at once (it is in sync).
    admin.close()
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap(others[0]))
    target = others[1]
    assert admin.alter_partition_reassignments({PARTITION: [target]}) == {PARTITION: None}
    wait_until(lambda: all(state(cluster, node) == (target, [target], [target]) for node in nodes), 20,
               "every node sees one replica")
    assert ongoing(admin) == {}
    for node in nodes:
        directory = cluster.dir / f"node-{node}" / "moved-0"
        wait_until(lambda: directory.exists() == (node == target), 20, f"node {node}'s replica dir")
    produce(cluster.bootstrap(target), "moved", 1, 100)
    assert len(consume(cluster.bootstrap(target), "moved", [0], 600)) == 600

    # Errors: an unknown broker, a cancel with nothing under way, an unknown partition.
    assert admin.alter_partition_reassignments({PARTITION: [target, 99]}) == {
        PARTITION: InvalidReplicationAssignmentError}
    assert admin.alter_partition_reassignments({PARTITION: None}) == {PARTITION: NoReassignmentInProgressError}
    unknown = TopicPartition("moved", 3)
    result = admin.alter_partition_reassignments({unknown: [target]})
    assert result[unknown].errno == 3, result
    admin.close()


def test_an_ongoing_reassignment_is_listed_and_can_be_cancelled(cluster_factory):
    cluster = cluster_factory(3, settings=FAST)
    nodes = cluster.node_ids
    create_topic(cluster.bootstrap(nodes[0]), "moved", 1, 2)
    wait_until(lambda: state(cluster, nodes[0])[0] >= 0, 20, "a leader")
    _, replicas, _ = state(cluster, nodes[0])
    spare = next(node for node in nodes if node not in replicas)
    # The spare broker is down: its replica cannot catch up, so the move stays under way.
    cluster.stop(spare)
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap(replicas[0]))
    assert admin.alter_partition_reassignments({PARTITION: replicas + [spare]}) == {PARTITION: None}
    time.sleep(1)
    listed = ongoing(admin)
    assert listed == {PARTITION: {"replicas": replicas + [spare], "adding_replicas": [spare],
                                  "removing_replicas": []}}, listed
    assert admin.list_partition_reassignments([TopicPartition("moved", 0)]) == listed
    assert admin.alter_partition_reassignments({PARTITION: None}) == {PARTITION: None}
    wait_until(lambda: state(cluster, replicas[0])[1] == replicas, 20, "the original replicas back")
    assert ongoing(admin) == {}
    admin.close()
