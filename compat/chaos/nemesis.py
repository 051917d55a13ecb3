"""Faults for the chaos suite, each applied to a local cluster and then healed:

    kill                SIGKILL a random node, restart it
    pause               SIGSTOP a random node (a long GC pause), SIGCONT it
    isolate             cut a random node off from the others (clients still reach it)
    isolate-leader      cut off the leader of a random partition of the topic
    isolate-controller  cut off the active controller (the quorum must move)
    rolling             SIGTERM-restart every node in turn (controlled shutdowns)
    power-loss          cut the power of every node at once, restart them all (the run
                        then uses sync flush: nothing acknowledged may be lost even so)
    power-cut           cut the power of a random node, restart it at once
    power-cut-late      cut the power of a random node, restart it after the hold
    power-cut-leader    cut the power of the leader of a random partition, restart it at once
    power-cut-shrunk-isr  stop both followers of a partition's leader from fetching until
                        its ISR is the leader alone (acks=all is refused then), cut the
                        leader's power, restart it, let the followers fetch again

A power cut is SIGKILL plus the loss of everything the node did not fsync: its data
directory is a powercut-fs mount. Partitions and power cuts need the cluster's distinct
node addresses and scripts/netns.
"""

import time

import kafka_wire

KINDS = ["kill", "pause", "isolate", "isolate-leader", "isolate-controller", "rolling", "power-loss",
         "power-cut", "power-cut-late", "power-cut-leader", "power-cut-shrunk-isr"]
# What a run strikes when it names no nemeses (the CI schedule: each once).
DEFAULT_KINDS = KINDS[:7]
POWER_KINDS = {"power-loss", "power-cut", "power-cut-late", "power-cut-leader", "power-cut-shrunk-isr"}


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

    def isr_of(self, partition):
        metadata = self.metadata()
        for index, leader, _, isr in (metadata or {}).get("topics", {}).get(self.topic, []):
            if index == partition:
                return leader, sorted(isr)
        return -1, []

    def shrunk_isr_power_cut(self, hold):
        """The leader of a random partition alone in its ISR, then its power cut."""
        partition = self.rng.randrange(self.partitions)
        leader = self.leader_of(partition)
        followers = [node for node in self.cluster.node_ids if node != leader]
        for follower in followers:
            self.cluster.block_fetch(follower, leader)
        deadline = time.time() + 30
        while time.time() < deadline and self.isr_of(partition) != (leader, [leader]):
            time.sleep(0.2)
        shrunk = self.isr_of(partition) == (leader, [leader])
        time.sleep(min(hold, 2))  # producers meet NOT_ENOUGH_REPLICAS meanwhile
        self.cluster.power_cut(leader)
        self.cluster.start(leader)
        self.cluster.heal()
        return leader, {"partition": partition, "shrunk": shrunk}

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
            for each in self.cluster.node_ids:
                self.cluster.power_cut(each)
            time.sleep(min(hold, 2))
            self.cluster.up(len(self.cluster.node_ids))
        elif kind in ("power-cut", "power-cut-late", "power-cut-leader"):
            if kind == "power-cut-leader":
                node = self.leader_of(self.rng.randrange(self.partitions))
            self.cluster.power_cut(node)
            if kind == "power-cut-late":
                time.sleep(hold)
            self.cluster.start(node)
        elif kind == "power-cut-shrunk-isr":
            node, detail = self.shrunk_isr_power_cut(hold)
            event.update(detail)
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
