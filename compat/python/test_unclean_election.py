"""Unclean leader election (`unclean.leader.election.enable`): off by default, a
partition whose in-sync replicas are all gone stays leaderless rather than let a
replica that missed writes lead; a topic that allows it trades those writes for
availability, and the old leader truncates them when it returns."""

import time

from confluent_kafka.admin import AdminClient, NewTopic

from cluster import wait_until
from test_replication import FAST, leaders, read_all, send


def values(bootstrap, topic):
    return [value for _, value in read_all(bootstrap, topic, 1)[0]]


def test_only_a_topic_that_allows_it_elects_a_replica_outside_the_isr(cluster_factory):
    cluster = cluster_factory(3, settings=FAST)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap(3)})
    topics = {"strict": "false", "lenient": "true"}
    futures = admin.create_topics([NewTopic(name, num_partitions=1, replica_assignment=[[1, 2]],
                                            config={"unclean.leader.election.enable": value,
                                                    "min.insync.replicas": "1"})
                                   for name, value in topics.items()])
    for future in futures.values():
        future.result(20)
    for name in topics:
        wait_until(lambda: leaders(cluster, 3, name)[0] == 1, 20, f"broker 1 leading {name}")
        assert send(cluster.bootstrap(1), name, 0, "all") == [None] * 5
    # Broker 2 goes: the ISR shrinks to broker 1, which alone takes the next writes.
    cluster.kill(2)
    wait_until(lambda: all(len(isr) == 1 for name in topics for _, _, _, isr in cluster.metadata(3)["topics"][name]),
               30, "broker 2 out of both ISRs")
    for name in topics:
        assert send(cluster.bootstrap(1), name, 0, "1") == [None] * 5
    # Broker 1 goes too; broker 2 comes back (with node 3 the quorum stands again).
    cluster.kill(1)
    cluster.start(2)
    wait_until(lambda: leaders(cluster, 3, "lenient")[0] == 2, 30, "broker 2 leading the lenient topic")
    time.sleep(2)
    assert leaders(cluster, 3, "strict")[0] == -1, "the strict topic waits for its in-sync replica"
    assert send(cluster.bootstrap(2), "lenient", 0, "all") == [None] * 5
    lenient = values(cluster.bootstrap(2), "lenient")
    assert len(lenient) == 10, "the writes only broker 1 had are gone"
    # Broker 1 returns: it leads the strict topic again with every write, and follows
    # in the lenient one, cutting what the new leader never had.
    cluster.start(1)
    wait_until(lambda: leaders(cluster, 3, "strict")[0] == 1, 30, "broker 1 leading the strict topic again")
    assert len(values(cluster.bootstrap(1), "strict")) == 10
    wait_until(lambda: all(sorted(isr) == [1, 2] for _, _, _, isr in cluster.metadata(3)["topics"]["lenient"]),
               30, "broker 1 back in the lenient ISR")
    assert values(cluster.bootstrap(2), "lenient") == lenient
