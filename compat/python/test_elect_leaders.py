"""ElectLeaders on three real brokers: after the preferred leader of a partition was
stopped and came back (in sync, but no longer leading), a preferred election through
confluent-kafka's AdminClient gives it the leadership back; asking again is
ELECTION_NOT_NEEDED, and kafka-python's elect_leaders sees the same."""

from confluent_kafka import ElectionType, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka.admin import KafkaAdminClient

from cluster import wait_until
from test_cluster import create_topic, produce

FAST = ["broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500", "replica.lag.time.max.ms=3000",
        "auto.leader.rebalance.enable=false"]


def partition_state(cluster, via, topic, index):
    for partition, leader, replicas, isr in cluster.metadata(via)["topics"][topic]:
        if partition == index:
            return leader, list(replicas), sorted(isr)
    raise KeyError(index)


def test_preferred_election_gives_the_leadership_back(cluster_factory):
    cluster = cluster_factory(3, settings=FAST)
    create_topic(cluster.bootstrap(1), "elect", 1, 3)
    wait_until(lambda: partition_state(cluster, 1, "elect", 0)[0] >= 0, 20, "a leader")
    leader, replicas, _ = partition_state(cluster, 1, "elect", 0)
    preferred = replicas[0]
    assert leader == preferred
    other = next(node for node in cluster.node_ids if node != preferred)
    cluster.stop(preferred)
    wait_until(lambda: partition_state(cluster, other, "elect", 0)[0] not in (-1, preferred), 30,
               "leadership moved away")
    produce(cluster.bootstrap(other), "elect", 1, 50)
    cluster.start(preferred)
    wait_until(lambda: preferred in partition_state(cluster, other, "elect", 0)[2], 60,
               "the preferred replica back in sync")
    assert partition_state(cluster, other, "elect", 0)[0] != preferred, "no automatic rebalance"

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap(other)})
    partition = TopicPartition("elect", 0)
    outcome = admin.elect_leaders(ElectionType.PREFERRED, [partition]).result(timeout=30)
    assert outcome == {partition: None}, outcome
    wait_until(lambda: all(partition_state(cluster, node, "elect", 0)[0] == preferred
                           for node in cluster.node_ids), 20, "every node sees the preferred leader")
    again = admin.elect_leaders(ElectionType.PREFERRED, [partition]).result(timeout=30)
    assert again[partition].code() == KafkaError.ELECTION_NOT_NEEDED, again
    # An unclean election of a partition that has a leader is not needed either.
    unclean = admin.elect_leaders(ElectionType.UNCLEAN, [partition]).result(timeout=30)
    assert unclean[partition].code() == KafkaError.ELECTION_NOT_NEEDED, unclean
    unknown = TopicPartition("elect", 7)
    missing = admin.elect_leaders(ElectionType.PREFERRED, [unknown]).result(timeout=30)
    assert missing[unknown].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, missing

    python_admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap(other))
    response = python_admin.elect_leaders(0, {"elect": [0]}, raise_errors=False)
    codes = [p.error_code for result in response.replica_election_results for p in result.partition_result]
    assert codes == [84], codes
    python_admin.close()
    # Data written while the preferred replica was away is all there on its leadership.
    from test_cluster import consume
    assert len(consume(cluster.bootstrap(preferred), "elect", [0], 50)) == 50
