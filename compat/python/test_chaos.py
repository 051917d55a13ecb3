"""The chaos suite's short deterministic schedule (scripts/chaos --schedule ci): every
nemesis once, in order, under the full workload; any anomaly fails."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns
RUN = Path(__file__).resolve().parents[1] / "chaos" / "run.py"


def test_short_chaos_schedule_finds_no_anomaly(tmp_path):
    if not os.environ.get("FERROLOG_NETNS"):
        pytest.fail("the chaos schedule runs only under scripts/netns (scripts/test does this)")
    completed = subprocess.run([sys.executable, str(RUN), "--schedule", "ci", "--seed", "1", "--out", str(tmp_path)],
                               capture_output=True, text=True, timeout=600)
    print(completed.stdout[-4000:])
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["events"] == 7, "every nemesis struck"
    assert result["acknowledged"] > 1000
    compared = result["replica_batches_compared"]
    assert all(count > 0 for copies in compared.values() for count in copies.values()), compared
    assert result["ok"], {name: entry for name, entry in result["anomalies"].items() if entry["count"]}
    assert completed.returncode == 0, completed.stderr[-2000:]
