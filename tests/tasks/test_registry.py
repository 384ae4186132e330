import json
import logging
import subprocess
import sys

import pytest

from selfdistill.errors import DataError
from selfdistill.tasks.problem import AssertTests, CallTests, IOTests, Problem
from selfdistill.tasks.registry import detect_format, load_task, warn_if_small
from tests.tasks.lcb_records import functional_record


def test_humaneval_by_name():
    problems = load_task("humaneval")
    assert len(problems) == 164 and problems[0].source == "humaneval"


def test_missing_path_says_what_was_expected(tmp_path):
    with pytest.raises(DataError) as e:
        load_task(str(tmp_path / "held-out.jsonl"))
    msg = str(e.value)
    assert str(tmp_path / "held-out.jsonl") in msg and "no such file" in msg and "humaneval" in msg


def test_detects_each_format(write_jsonl):
    generic = write_jsonl([{"task_id": "a", "prompt": "p", "tests": "assert True"}], name="g.jsonl")
    lcb = write_jsonl([functional_record()], name="lcb.jsonl")
    he = write_jsonl(
        [
            {
                "task_id": "a",
                "prompt": "def f():\n",
                "canonical_solution": "  pass\n",
                "test": "def check(c): pass",
                "entry_point": "f",
            }
        ],
        name="he.jsonl",
    )
    assert [detect_format(p) for p in (generic, lcb, he)] == ["jsonl", "livecodebench", "humaneval"]
    assert isinstance(load_task(str(generic))[0].tests, AssertTests)
    assert isinstance(load_task(str(lcb))[0].tests, CallTests)
    assert load_task(he)[0].prefix == "def f():\n"


def test_generic_typo_is_not_mistaken_for_humaneval(write_jsonl):
    path = write_jsonl([{"task_id": "a", "prompt": "p", "test": "assert True"}])
    with pytest.raises(DataError, match='unknown field "test"'):
        load_task(str(path))


def test_empty_file(write_jsonl):
    with pytest.raises(DataError, match="holds no records"):
        load_task(str(write_jsonl([""])))


def _problems(k: int) -> list[Problem]:
    return [Problem(f"t/{i}", "p", IOTests(()), "t") for i in range(k)]


def test_small_heldout_warns_and_returns_text(caplog):
    with caplog.at_level(logging.WARNING, logger="selfdistill.tasks.registry"):
        text = warn_if_small(_problems(164), name="humaneval")
    assert text and text.startswith("humaneval has 164 problems (fewer than 200)")
    assert caplog.records[0].getMessage() == text
    assert warn_if_small(_problems(200)) is None


def test_core_does_not_import_heavy_backends():
    heavy = "('torch', 'transformers', 'vllm')"
    code = f"import sys, selfdistill.tasks; print(json.dumps([m for m in {heavy} if m in sys.modules]))"
    out = subprocess.run(
        [sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []
