"""Reading JSON-lines files that another process may still be appending to."""

import json


def read_jsonl(path):
    """Every complete line of PATH, parsed; [] if the file does not exist yet.

    The file is read in one go and split on newlines, and the part after the last newline
    is dropped: it is a line the writer has not finished. (Iterating a file line by line
    is not enough: the iterator returns a partial last line, and a later read continues
    from the middle of that line, handing out its tail as if it were a line of its own.)
    """
    try:
        data = open(path, "rb").read()
    except FileNotFoundError:
        return []
    complete = data[: data.rfind(b"\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


def count_lines(path):
    """How many complete lines PATH holds (0 if it does not exist yet)."""
    try:
        return open(path, "rb").read().count(b"\n")
    except FileNotFoundError:
        return 0
