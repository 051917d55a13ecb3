"""Faults for the chaos suite, each applied to a local cluster and then healed:

    kill                SIGKILL a random node, restart it
    pause               SIGSTOP a random node (a long GC pause), SIGCONT it
    isolate             cut a random node off from the others (clients still reach it)
    isolate-leader      cut off the leader of a random partition of the topic
    isolate-controller  cut off the active controller (the quorum must move)
    rolling             SIGTERM-restart every node in turn (controlled shutdowns)
    power-loss          SIGKILL every node at once, restart them all (with sync flush)

Partitions need the cluster's distinct node addresses and scripts/netns.
"""

import time

import kafka_wire

KINDS = ["kill", "pause", "isolate", "isolate-leader", "isolate-controller", "rolling", "power-loss"]


class Nemesis:
    def __init__(self, cluster, rng, topic, partitions, log):
        self.cluster, self.rng, self.topic, self.partitions, self.log = cluster, rng, topic, partitions, log

    def metadata(self, avoid=()):
        for node in self.cluster.node_ids:
            if node in avoid:
                continue
            try:
                return kafka_wire.metadata(self.cluster.bootstrap(node))
            except OSError:
                continue
        return None

    def leader_of(self, partition):
        metadata = self.metadata()
        for index, leader, _, _ in (metadata or {}).get("topics", {}).get(self.topic, []):
            if index == partition and leader >= 0:
                return leader
        return self.rng.choice(self.cluster.node_ids)

    def active_controller(self):
        for node in self.cluster.node_ids:
            try:
                quorum = kafka_wire.describe_quorum(self.cluster.bootstrap(node))
                if quorum.get("leader", -1) >= 0:
                    return quorum["leader"]
            except OSError:
                continue
        return self.rng.choice(self.cluster.node_ids)

    def run(self, kind, hold):
        """Applies `kind` for `hold` seconds, heals it, and returns the event record."""
        start = time.time()
        event = {"kind": kind, "start": start}
        node = self.rng.choice(self.cluster.node_ids)
        if kind == "kill":
            self.cluster.kill(node)
            time.sleep(hold)
            self.cluster.start(node)
        elif kind == "pause":
            self.cluster.pause(node)
            time.sleep(hold)
            self.cluster.resume(node)
        elif kind in ("isolate", "isolate-leader", "isolate-controller"):
            if kind == "isolate-leader":
                node = self.leader_of(self.rng.randrange(self.partitions))
            elif kind == "isolate-controller":
                node = self.active_controller()
            self.cluster.isolate(node)
            time.sleep(hold)
            self.cluster.heal()
        elif kind == "rolling":
            node = None
            for each in self.cluster.node_ids:
                self.cluster.stop(each)
                self.cluster.start(each)
        elif kind == "power-loss":
            node = None
            for each in self.cluster.node_ids:
                self.cluster.kill(each)
            time.sleep(min(hold, 2))
            self.cluster.up(len(self.cluster.node_ids))
        else:
            raise ValueError(f"unknown nemesis {kind}")
        event.update(node=node, end=time.time())
        self.log(event)
        return event

    def wait_healthy(self, timeout=60):
        """Until every node serves and every partition has its full ISR again."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            metadata = self.metadata()
            partitions = (metadata or {}).get("topics", {}).get(self.topic, [])
            if (metadata and len(metadata["brokers"]) == len(self.cluster.node_ids) and partitions
                    and all(leader >= 0 and len(isr) == len(replicas) for _, leader, replicas, isr in partitions)):
                return time.time()
            time.sleep(0.5)
        return None
