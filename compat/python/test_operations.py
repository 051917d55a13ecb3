"""Operating a three-node cluster as Kafka users expect: a dead leader fenced without
waiting out its session, leadership moved back to preferred replicas, broker configs
changed without a restart, and client quotas and replication throttles."""

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
