"""The JSON-lines reader ignores a line that is still being written."""

from jsonl import count_lines, read_jsonl


def test_partial_last_line_is_ignored_until_complete(tmp_path):
    path = tmp_path / "log.jsonl"
    assert read_jsonl(path) == [] and count_lines(path) == 0
    with open(path, "w") as out:
        out.write('["msg", 1.5, 3, 41]\n["msg", 1.6, 3, 4')
        out.flush()
        assert read_jsonl(path) == [["msg", 1.5, 3, 41]]
        assert count_lines(path) == 1
        out.write('2]\n')
        out.flush()
        assert read_jsonl(path) == [["msg", 1.5, 3, 41], ["msg", 1.6, 3, 42]]
