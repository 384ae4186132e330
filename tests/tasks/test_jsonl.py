import datetime as dt
import gzip
import json

import pytest

from selfdistill.errors import DataError
from selfdistill.tasks.jsonl import load_jsonl
from selfdistill.tasks.problem import AssertTests, Difficulty, IOCase, IOTests

ASSERT_RECORD = {
    "task_id": "t/add",
    "prompt": "def add(a, b):\n",
    "prefix": "def add(a, b):\n",
    "tests": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
    "entry_point": "add",
    "canonical_solution": "    return a + b\n",
    "difficulty": "easy",
    "release_date": "2024-05-31",
    "source": "mine",
}
IO_RECORD = {
    "task_id": "t/sum",
    "prompt": "Print the sum of the integers on one line.",
    "io": [{"input": "1 2\n", "output": "3\n"}, {"input": "5\n", "output": "5\n"}],
}


def test_assert_style_record(write_jsonl):
    (p,) = load_jsonl(write_jsonl([ASSERT_RECORD]))
    assert p.task_id == "t/add" and p.prompt == "def add(a, b):\n"
    assert p.tests == AssertTests(ASSERT_RECORD["tests"]) and p.entry_point == "add"
    assert p.prefix == "def add(a, b):\n" and p.canonical_solution == "    return a + b\n"
    assert p.difficulty is Difficulty.EASY and p.release_date == dt.date(2024, 5, 31)
    assert p.source == "mine"
    assert p.program("    return a + b\n") == "def add(a, b):\n    return a + b\n"


def test_io_record_with_defaults(write_jsonl):
    (p,) = load_jsonl(write_jsonl([IO_RECORD], name="my-set.jsonl"))
    assert p.tests == IOTests((IOCase("1 2\n", "3\n"), IOCase("5\n", "5\n")))
    assert p.source == "my-set" and p.prefix == "" and p.entry_point is None
    assert p.difficulty is None and p.release_date is None and p.canonical_solution is None


def test_blank_lines_null_fields_and_gzip(tmp_path):
    path = tmp_path / "tasks.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(
            "\n" + json.dumps({**IO_RECORD, "difficulty": None}) + "\n\n" + json.dumps(ASSERT_RECORD) + "\n"
        )
    problems = load_jsonl(path)
    assert [p.task_id for p in problems] == ["t/sum", "t/add"] and problems[0].source == "tasks"


def _error(write_jsonl, records) -> str:
    with pytest.raises(DataError) as e:
        load_jsonl(write_jsonl(records))
    return str(e.value)


def test_bad_json_names_file_and_line(write_jsonl):
    msg = _error(write_jsonl, [ASSERT_RECORD, IO_RECORD, '{"task_id": "x", "prompt": '])
    assert "tasks.jsonl:3: not valid JSON" in msg


def test_line_that_is_not_an_object(write_jsonl):
    assert "tasks.jsonl:1: a line must be a JSON object" in _error(write_jsonl, ["[1, 2]"])


def test_missing_required_field(write_jsonl):
    msg = _error(write_jsonl, [{k: v for k, v in IO_RECORD.items() if k != "prompt"}])
    assert "line 1: missing field prompt" in msg and "docs/tasks.md" in msg


def test_both_tests_and_io(write_jsonl):
    msg = _error(write_jsonl, [{**IO_RECORD, "tests": "assert True"}])
    assert "line 1: has both of tests and io; give exactly one" in msg


def test_neither_tests_nor_io(write_jsonl):
    msg = _error(write_jsonl, [{"task_id": "a", "prompt": "p"}])
    assert "line 1: has neither of tests and io" in msg


def test_prompt_pools_may_leave_out_tests_but_nothing_else_relaxes(write_jsonl):
    path = write_jsonl([{"task_id": "a", "prompt": "p", "entry_point": "f"}, {**IO_RECORD, "tests": "assert True"}])
    with pytest.raises(DataError) as e:
        load_jsonl(path, tests_required=False)
    assert "line 2: has both of tests and io" in str(e.value) and "line 1" not in str(e.value)
    (p,) = load_jsonl(write_jsonl([{"task_id": "a", "prompt": "p", "entry_point": "f"}]), tests_required=False)
    assert p.tests is None and p.entry_point == "f"


def test_unknown_key_is_named_with_a_suggestion(write_jsonl):
    record = {**{k: v for k, v in ASSERT_RECORD.items() if k != "tests"}, "test": "assert True"}
    msg = _error(write_jsonl, [record])
    assert 'unknown field "test" (did you mean "tests"?)' in msg


def test_duplicate_task_id_names_both_lines(write_jsonl):
    msg = _error(write_jsonl, [IO_RECORD, ASSERT_RECORD, IO_RECORD])
    assert 'line 3: task_id "t/sum" duplicates line 1' in msg


def test_bad_difficulty(write_jsonl):
    msg = _error(write_jsonl, [{**IO_RECORD, "difficulty": "Hard"}])
    assert 'line 1: field difficulty is "Hard"; use one of easy | medium | hard' in msg


@pytest.mark.parametrize("date", ["2024-13-01", "20240101", "2024/01/01", "2024-1-5", 20240101])
def test_bad_release_date(write_jsonl, date):
    msg = _error(write_jsonl, [{**IO_RECORD, "release_date": date}])
    assert f"line 1: field release_date is {json.dumps(date)}; write a date as YYYY-MM-DD" in msg


@pytest.mark.parametrize(
    "io, expected",
    [
        ([], "field io must be a non-empty list"),
        ("1 2", "field io must be a non-empty list"),
        ([{"input": "1"}], "field io[0] must be"),
        ([{"input": "1", "output": 2}], "field io[0] must be"),
        ([{"input": "1", "output": "1", "extra": 1}], "field io[0] must be"),
    ],
)
def test_bad_io_cases(write_jsonl, io, expected):
    assert expected in _error(write_jsonl, [{**IO_RECORD, "io": io}])


def test_entry_point_only_with_tests(write_jsonl):
    msg = _error(write_jsonl, [{**IO_RECORD, "entry_point": "f"}])
    assert "entry_point applies only to tests" in msg


def test_wrong_types(write_jsonl):
    msg = _error(write_jsonl, [{**ASSERT_RECORD, "task_id": 7, "tests": "", "entry_point": "not a name"}])
    assert "field task_id must be a non-empty string, got 7" in msg
    assert "field tests must be a non-empty string" in msg
    assert 'field entry_point must be a Python function name, got "not a name"' in msg


def test_every_bad_line_is_reported_at_once(write_jsonl):
    msg = _error(
        write_jsonl,
        [{**IO_RECORD, "difficulty": "x"}, ASSERT_RECORD, {**IO_RECORD, "task_id": "b", "release_date": "x"}],
    )
    assert "2 problems" in msg and "line 1: field difficulty" in msg and "line 3: field release_date" in msg


def test_empty_file(write_jsonl):
    assert "holds no problems" in _error(write_jsonl, [""])


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file; expected a JSONL task file"):
        load_jsonl(tmp_path / "nope.jsonl")
