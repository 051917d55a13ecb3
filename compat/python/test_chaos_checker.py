"""The chaos checker finds each anomaly it claims to find, and passes a clean history."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chaos"))
from checker import availability, check  # noqa: E402


def history(*ops):
    return [dict(op) for op in ops]


def send(value, partition=0, t=0.0):
    return {"op": "send", "value": value, "partition": partition, "t": t}


def ack(value, offset, partition=0, t=1.0):
    return {"op": "ack", "value": value, "partition": partition, "offset": offset, "t": t}


def read(value, offset, partition=0, reader="r1"):
    return {"op": "read", "reader": reader, "partition": partition, "offset": offset, "value": value, "t": 2.0}


def counts(result):
    return {name: entry["count"] for name, entry in result["anomalies"].items() if entry["count"]}


CLEAN = history(send("p1-0"), send("p1-1"), ack("p1-0", 0), ack("p1-1", 1), read("p1-0", 0), read("p1-1", 1))
FINAL = [(0, 0, "p1-0"), (0, 1, "p1-1")]


def test_a_clean_history_passes():
    result = check(CLEAN, FINAL, {0: {1: [b"a", b"b"], 2: [b"a", b"b"]}})
    assert result["ok"], counts(result)
    assert (result["sent"], result["acknowledged"], result["unknown"]) == (2, 2, 0)


def test_lost_and_moved_writes():
    result = check(CLEAN, [(0, 0, "p1-0")])
    assert counts(result) == {"lost": 1}
    unread = [op for op in CLEAN if op["op"] != "read"]
    result = check(unread, [(0, 0, "p1-0"), (0, 2, "p1-1")])
    assert counts(result) == {"moved": 1}
    # Delivered with no offset (a client's inference): only presence counts.
    unknown_offset = [dict(op, offset=None) if op["op"] == "ack" else op for op in unread]
    assert check(unknown_offset, [(0, 0, "p1-0"), (0, 2, "p1-1")])["ok"]
    assert counts(check(unknown_offset, [(0, 0, "p1-0")])) == {"lost": 1}


def test_duplicates_inconsistency_phantoms_and_reorders():
    result = check(CLEAN, FINAL + [(0, 2, "p1-1")])
    assert counts(result) == {"duplicates": 1}
    result = check(CLEAN + [read("p1-1", 0, reader="r2")], FINAL)
    assert counts(result)["inconsistent_offsets"] == 1
    result = check(CLEAN + [read("p9-0", 5)], FINAL)
    assert counts(result) == {"phantom_reads": 1}
    swapped = history(send("p1-0"), send("p1-1"), ack("p1-1", 0), ack("p1-0", 1))
    result = check(swapped, [(0, 0, "p1-1"), (0, 1, "p1-0")])
    assert counts(result) == {"reordered": 1}


def test_commit_regressions_and_replica_divergence():
    commits = [{"op": "commit", "partition": 0, "offset": offset, "t": t} for t, offset in enumerate([5, 9, 7])]
    result = check(CLEAN + commits, FINAL)
    assert counts(result) == {"commit_regressions": 1}
    result = check(CLEAN, FINAL, {0: {1: [b"a", b"b"], 2: [b"a", b"c"], 3: [b"a"]}})
    assert counts(result) == {"divergence": 2}
    assert result["anomalies"]["divergence"]["examples"][0]["first_differing_batch"] == 1


def test_availability_is_the_longest_ack_gap_around_each_nemesis():
    acks = [0.0, 1.0, 2.0, 9.0, 9.5, 20.0, 21.0]
    windows = [{"kind": "kill", "start": 2.5, "end": 5.0}, {"kind": "pause", "start": 12.0, "end": 14.0}]
    assert availability(acks, windows) == {"kill": 7.0, "pause": 10.5}
