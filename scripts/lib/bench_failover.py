"""`scripts/bench --failover [--baseline BINARY]`: SIGKILL of a partition's leader under
an idempotent acks=all producer (1 000 msg/s) at default settings
(broker.session.timeout.ms=9000), once with a leader that is not the active controller
and once with one that is; the longest gap between acknowledgements, and the records
lost and duplicated (read back after the run). With --baseline, the same rows for
another build, alternating, in the same run."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "compat" / "python"))

from cluster import Cluster  # noqa: E402
import failover  # noqa: E402


def run(work, builds, rounds=2):
    """builds: [(label, binary or None)]. Returns rows."""
    rows = []
    for round_ in range(rounds):
        for label, binary in builds:
            for kill_controller in (False, True):
                name = f"{label}-{round_}-{int(kill_controller)}"
                cluster = Cluster(work / name, settings=("min.insync.replicas=2",), binary=binary)
                cluster.up(3)
                try:
                    result = failover.measure(cluster, "failover", kill_controller=kill_controller,
                                              before=3.0, after=12.0)
                finally:
                    cluster.down()
                    cluster.kill_all()
                role = "leader + active controller" if kill_controller else "leader"
                rows.append((label, role, result))
    return rows


def table(rows):
    lines = ["| build | SIGKILL of | longest gap between acks | acked | failed | lost | duplicated |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for label, role, result in rows:
        lines.append(f"| {label} | {role} | {result['gap_s']:.2f} s | {result['acked']:,} | {result['failed']} | "
                     f"{result['lost']} | {result['duplicated']} |")
    return "\n".join(lines)
