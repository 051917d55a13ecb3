"""A local ferrolog cluster for tests, driven through scripts/cluster on ephemeral ports
(the same code path an operator uses), with every node started and killed by PID.
With `distinct_hosts`, node ID listens on 127.0.0.(10+ID) and links between nodes can
be cut (isolate, cut, heal) when the tests run under scripts/netns."""

import os
import subprocess
import time
from pathlib import Path

import kafka_wire

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "cluster"
BINARY = Path(os.environ.get("FERROLOG_BIN", REPO / "target" / "release" / "ferrolog"))


class Cluster:
    def __init__(self, directory, settings=(), distinct_hosts=False, config=None, power_cuts=False, binary=None):
        """`power_cuts`: every node's data directory on its own powercut-fs (only under
        scripts/netns), so that `power_cut` can drop what a node did not fsync.
        `binary`: another broker build than target/release/ferrolog (a benchmark's
        baseline)."""
        self.dir = Path(directory)
        self.power_cuts = power_cuts
        self.env = dict(os.environ, FERROLOG_CLUSTER_DIR=str(self.dir), FERROLOG_CLUSTER_PORTS="ephemeral",
                        FERROLOG_CLUSTER_SETTINGS=" ".join(settings), FERROLOG_BIN=str(binary or BINARY),
                        FERROLOG_CLUSTER_HOSTS="distinct" if distinct_hosts else "shared",
                        FERROLOG_CLUSTER_POWERCUT="1" if power_cuts else "0")
        if config:
            # More YAML for every node's config (values with spaces, such as JAAS lines).
            extra = self.dir.with_suffix(".extra.yaml")
            extra.parent.mkdir(parents=True, exist_ok=True)
            extra.write_text(config)
            self.env["FERROLOG_CLUSTER_CONFIG"] = str(extra)

    def run(self, *args):
        done = subprocess.run([str(SCRIPT), *map(str, args)], env=self.env, timeout=180,
                              capture_output=True, text=True)
        if done.returncode != 0:
            # The script prints why (for a node that exited: the tail of its log).
            raise RuntimeError(f"scripts/cluster {' '.join(map(str, args))} exited {done.returncode}:\n"
                               f"{done.stdout}{done.stderr}")
        return done.stdout

    def up(self, n=3):
        self.run("up", n)
        return self

    def down(self):
        if (self.dir / "nodes").exists():
            self.run("down")

    def kill(self, node_id):
        self.run("kill", node_id)

    def stop(self, node_id):
        self.run("stop", node_id)

    def start(self, node_id):
        self.run("start", node_id)

    def power_cut(self, node_id):
        """SIGKILL, then the node's file system loses everything not fsynced."""
        self.run("powercut", node_id)

    def unmount(self):
        """Stops the power-cut file systems (after `down`)."""
        if self.power_cuts and (self.dir / "nodes").exists():
            self.run("unmount")

    def pause(self, node_id):
        self.run("pause", node_id)

    def resume(self, node_id):
        self.run("resume", node_id)

    def isolate(self, node_id):
        """Drops all traffic between `node_id` and the other nodes; clients still reach it."""
        self.run("isolate", node_id)

    def cut(self, a, b):
        self.run("cut", a, b)

    def block_fetch(self, node_id, leader_id):
        """Drops `node_id`'s connections to `leader_id`'s client listener only: its replica
        fetches stop, the quorum's traffic does not."""
        self.run("block-fetch", node_id, leader_id)

    def heal(self):
        self.run("heal")

    @property
    def node_ids(self):
        return [int(line.split()[0]) for line in open(self.dir / "nodes")]

    def bootstrap(self, node_id):
        for line in open(self.dir / "nodes"):
            fields = line.split()
            if int(fields[0]) == node_id:
                host = fields[3] if len(fields) > 3 else "127.0.0.1"
                return f"{host}:{fields[1]}"
        raise KeyError(node_id)

    def metadata(self, node_id):
        return kafka_wire.metadata(self.bootstrap(node_id))

    def quorum(self, node_id):
        return kafka_wire.describe_quorum(self.bootstrap(node_id))

    def active_controller(self, via, timeout=30):
        """The quorum's leader, as node `via` learns it from the active controller."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            quorum = self.quorum(via)
            if quorum.get("partition_error") == 0 and quorum["leader"] >= 0:
                return quorum["leader"]
            time.sleep(0.2)
        raise AssertionError("no active controller")

    def dump(self, node_id):
        """The committed metadata image of a stopped node, in canonical form."""
        return subprocess.run([str(BINARY), "--config", str(self.dir / f"node-{node_id}.yaml"),
                               "--set", f"log.dirs={self.dir / f'node-{node_id}'}", "dump-metadata"],
                              check=True, capture_output=True, text=True, timeout=60).stdout

    def kill_all(self):
        """Last resort at teardown: SIGKILL whatever is still running, by PID."""
        for pid_file in self.dir.glob("node-*.pid"):
            if pid_file.name.endswith(".fs.pid"):
                continue
            try:
                os.kill(int(pid_file.read_text()), 9)
            except (ValueError, ProcessLookupError):
                pass

    def stop_file_systems(self):
        """Last resort at teardown for the power-cut file systems: SIGTERM by PID (each
        unmounts itself)."""
        for pid_file in self.dir.glob("node-*.fs.pid"):
            try:
                os.kill(int(pid_file.read_text()), 15)
            except (ValueError, ProcessLookupError):
                pass


def wait_until(condition, timeout, what, interval=0.1):
    deadline = time.time() + timeout
    last_error = None
    while time.time() < deadline:
        try:
            result = condition()
            if result:
                return result
        except Exception as error:  # a node may refuse connections while it moves
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error})")
