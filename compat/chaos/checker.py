"""The chaos suite's checker: pure functions over recorded histories, no IO.

A history is a list of operation dicts, as the workers write them (one JSON object per
line). Producers write `send` (value, partition, t), then `ack` (value, partition,
offset, t) or `fail` (value, error, t); a send with neither has an unknown outcome.
Producers that keep their pending sends in memory write only the outcome, with the send
time in `t_send`; `unknown` marks a send whose outcome never came.
Readers write `read` (reader, partition, offset, value, t); the group consumer writes
`commit` (partition, offset, t) for every commit the broker accepted. The final full
read is a list of (partition, offset, value) taken after every fault was healed.

Values are `<producer>-<sequence>`: unique per run, and ordered per producer.
"""

from collections import defaultdict

EXAMPLES = 5


def parse_value(value):
    """("p3", 17) from "p3-17"; None for anything not written by a producer here."""
    producer, _, sequence = value.rpartition("-")
    return (producer, int(sequence)) if producer and sequence.isdigit() else None


def check(history, final_read, replica_logs=None, nemeses=()):
    """Every anomaly class with its count and a few examples, plus availability.

    `replica_logs` maps partition -> {node: [batch bytes below the high watermark]}.
    `nemeses` lists {"kind", "start", "end"} windows for per-nemesis availability.
    """
    sends, acks, failures = {}, {}, {}
    reads = []
    commits = defaultdict(list)
    for op in history:
        kind = op.get("op")
        if kind in ("send", "ack", "fail", "unknown"):
            sends.setdefault(op["value"], op)
        if kind == "ack":
            acks[op["value"]] = op
        elif kind == "fail":
            failures[op["value"]] = op
        elif kind == "read":
            reads.append((op["reader"], op["partition"], op["offset"], op["value"]))
        elif kind == "commit":
            commits[op["partition"]].append(op)
    reads += [("final", partition, offset, value) for partition, offset, value in final_read]

    anomalies = {}

    def record(name, items):
        items = list(items)
        anomalies[name] = {"count": len(items), "examples": items[:EXAMPLES]}

    # Inconsistent offsets: one (partition, offset), two values.
    at = {}
    inconsistent = []
    for reader, partition, offset, value in reads:
        seen = at.setdefault((partition, offset), (value, reader))
        if seen[0] != value:
            inconsistent.append({"partition": partition, "offset": offset, "values": [seen[0], value],
                                 "readers": [seen[1], reader]})
    record("inconsistent_offsets", inconsistent)

    # Duplicates: one value stored at two offsets.
    where = defaultdict(set)
    for (partition, offset), (value, _) in at.items():
        where[value].add((partition, offset))
    record("duplicates", ({"value": value, "at": sorted(places)} for value, places in where.items()
                          if len(places) > 1))

    # Reads of values no producer ever sent.
    record("phantom_reads", ({"value": value, "partition": partition, "offset": offset}
                             for (partition, offset), (value, _) in at.items() if value not in sends))

    # Lost: acknowledged but absent from the final read; moved: found elsewhere.
    final_at = {(partition, offset): value for partition, offset, value in final_read}
    final_values = {value: (partition, offset) for partition, offset, value in final_read}
    record("lost", ({"value": value, "partition": ack["partition"], "offset": ack["offset"]}
                    for value, ack in acks.items() if value not in final_values))
    # (A client may report a write as delivered with no offset: librdkafka does for an
    # idempotent batch it infers was written. Only presence can be checked for those.)
    record("moved", ({"value": value, "acked_at": [ack["partition"], ack["offset"]],
                      "found_at": list(final_values[value])}
                     for value, ack in acks.items()
                     if value in final_values and ack.get("offset") is not None
                     and final_at.get((ack["partition"], ack["offset"])) != value))

    # Reordered: a producer's values in one partition must follow its send order.
    by_stream = defaultdict(list)
    for (partition, offset), value in sorted(final_at.items()):
        parsed = parse_value(value)
        if parsed:
            by_stream[(parsed[0], partition)].append((offset, parsed[1]))
    reordered = []
    for (producer, partition), entries in by_stream.items():
        for (offset_a, seq_a), (offset_b, seq_b) in zip(entries, entries[1:]):
            if seq_b < seq_a:  # equal sequences are duplicates, counted above
                reordered.append({"producer": producer, "partition": partition,
                                  "offsets": [offset_a, offset_b], "sequences": [seq_a, seq_b]})
    record("reordered", reordered)

    # Committed offsets of the group never move back.
    regressions = []
    for partition, entries in commits.items():
        entries = sorted(entries, key=lambda op: op["t"])
        for before, after in zip(entries, entries[1:]):
            if after["offset"] < before["offset"]:
                regressions.append({"partition": partition, "from": before["offset"], "to": after["offset"],
                                    "t": after["t"]})
    record("commit_regressions", regressions)

    # Replica divergence: every replica holds the same batches below the high watermark.
    divergent = []
    for partition, copies in (replica_logs or {}).items():
        reference_node, reference = next(iter(copies.items()))
        for node, batches in copies.items():
            if batches != reference:
                first = next((index for index, (a, b) in enumerate(zip(batches, reference)) if a != b),
                             min(len(batches), len(reference)))
                divergent.append({"partition": partition, "nodes": [reference_node, node],
                                  "first_differing_batch": first,
                                  "batches": [len(reference), len(batches)]})
    record("divergence", divergent)

    ack_times = sorted(ack["t"] for ack in acks.values())
    return {
        "sent": len(sends),
        "acknowledged": len(acks),
        "failed": len(failures),
        "unknown": len([value for value in sends if value not in acks and value not in failures]),
        "read": len(at),
        "anomalies": anomalies,
        "ok": all(entry["count"] == 0 for entry in anomalies.values()),
        "longest_unavailability": availability(ack_times, nemeses),
    }


def longest_gap(times, start, end):
    """The longest stretch within [start, end] with no time in `times` (sorted)."""
    points = [start] + [t for t in times if start < t < end] + [end]
    return max((b - a for a, b in zip(points, points[1:])), default=0.0)


def availability(ack_times, nemeses):
    """Per nemesis kind, the longest window with no acknowledged write that overlaps one
    of its windows (from its start to the next acknowledgement after its end)."""
    worst = {}
    for event in nemeses:
        after = next((t for t in ack_times if t >= event["end"]), event["end"])
        before = max((t for t in ack_times if t <= event["start"]), default=event["start"])
        gap = longest_gap(ack_times, before, after)
        worst[event["kind"]] = round(max(worst.get(event["kind"], 0.0), gap), 3)
    return worst
