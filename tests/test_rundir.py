"""Streams survive kills: a torn last line is cut, complete records are kept, mid-file damage refused."""

import json

import pytest

from selfdistill.errors import DataError
from selfdistill.rundir import JsonlStream, read_jsonl, write_json_atomic


def test_append_and_reopen_keeps_records(tmp_path):
    path = tmp_path / "s.jsonl"
    with JsonlStream(path) as s:
        s.append({"a": 1})
        s.append({"a": 2})
    with JsonlStream(path) as s:
        assert s.records == [{"a": 1}, {"a": 2}]
        s.append({"a": 3})
    assert [json.loads(x) for x in path.read_text().splitlines()] == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_torn_last_line_is_cut_then_appends_cleanly(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": ')
    with JsonlStream(path) as s:
        assert s.records == [{"a": 1}, {"a": 2}]
        s.append({"a": 3})
    assert path.read_text() == '{"a": 1}\n{"a": 2}\n{"a": 3}\n'


def test_complete_json_without_newline_is_treated_as_torn(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}')
    with JsonlStream(path) as s:
        assert s.records == [{"a": 1}]


def test_corrupt_middle_line_is_refused_and_file_untouched(tmp_path):
    path = tmp_path / "s.jsonl"
    text = '{"a": 1}\nGARBAGE\n{"a": 3}\n'
    path.write_text(text)
    with pytest.raises(DataError, match=r"s.jsonl:2 is corrupt"):
        JsonlStream(path)
    assert path.read_text() == text


def test_atomic_json_leaves_no_temp_file(tmp_path):
    write_json_atomic(tmp_path / "m.json", {"x": 1})
    assert json.loads((tmp_path / "m.json").read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_read_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1}\n\n[1, 2]\n')
    with pytest.raises(DataError, match=r"in.jsonl:3: a line must be a JSON object"):
        list(read_jsonl(path, "samples file"))
