"""Fixtures: a real broker process on an ephemeral port with its own data dir."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "lib"))
from free_port import free_port  # noqa: E402  (re-exported to the tests)

BINARY = Path(os.environ.get("FERROLOG_BIN", REPO / "target" / "release" / "ferrolog"))




class BrokerProcess:
    """The broker binary, started and stopped by PID."""

    def __init__(self, data_dir, settings=(), listeners=()):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.settings = list(settings)
        # More listeners beside PLAINTEXT, by name (SSL, SASL_PLAINTEXT, ...): their ports.
        self.ports = {name: free_port() for name in listeners}
        self.metrics_port = free_port()
        self.process = None
        # RLIMIT_NOFILE (soft and hard) for the broker process, or None to inherit.
        self.max_open_files = None
        self.log = open(self.data_dir.with_suffix(".log"), "ab")

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        listeners = [f"PLAINTEXT://127.0.0.1:{self.port}"]
        listeners += [f"{name}://127.0.0.1:{port}" for name, port in self.ports.items()]
        args = [str(BINARY), "--set", f"log.dirs={self.data_dir}",
                "--set", f"listeners={','.join(listeners)}",
                "--set", f"metrics.listener=127.0.0.1:{self.metrics_port}"]
        for setting in self.settings:
            args += ["--set", setting]
        limit = self.max_open_files
        preexec = None
        if limit is not None:
            def preexec():
                import resource
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
        self.process = subprocess.Popen(args, stdout=self.log, stderr=self.log, preexec_fn=preexec)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"broker exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("broker did not start")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)


@pytest.fixture
def broker_factory(tmp_path):
    started = []

    def make(settings=(), name="data", listeners=()):
        broker = BrokerProcess(tmp_path / name, settings, listeners)
        broker.data_dir.mkdir(exist_ok=True)
        started.append(broker)
        return broker.start()

    yield make
    for broker in started:
        broker.kill()


@pytest.fixture
def broker(broker_factory):
    return broker_factory()


@pytest.fixture
def cluster_factory(tmp_path):
    """Starts local clusters through scripts/cluster; stops (then kills) them afterwards."""
    from cluster import Cluster
    started = []

    def make(n=3, settings=(), name="cluster", distinct_hosts=False, config=None, power_cuts=False):
        cluster = Cluster(tmp_path / name, settings, distinct_hosts, config, power_cuts=power_cuts)
        started.append(cluster)
        return cluster.up(n)

    yield make
    for cluster in started:
        try:
            cluster.down()
        finally:
            cluster.kill_all()
            if cluster.power_cuts:
                try:
                    cluster.unmount()
                finally:
                    cluster.stop_file_systems()
