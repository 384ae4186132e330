"""The shipped HumanEval errata state facts about the data: check each against the shipped text."""

from pathlib import Path

import pytest

from selfdistill.tasks.errata import apply_errata, load_errata
from selfdistill.tasks.humaneval import load_humaneval

ERRATA = Path(__file__).resolve().parents[2] / "examples" / "humaneval-errata.toml"


@pytest.fixture(scope="module")
def by_id():
    return {p.task_id: p for p in load_humaneval()}


def _canonical(problem):
    namespace: dict = {}
    exec(problem.prompt + problem.canonical_solution, namespace)  # trusted: the dataset's own solution
    return namespace[problem.entry_point]


def test_shipped_errata_apply_to_humaneval(by_id):
    kept, excluded = apply_errata(list(by_id.values()), load_errata(ERRATA))
    assert {e.task_id for e in excluded} == {"HumanEval/47", "HumanEval/116"}
    assert len(kept) == 162 and all(e.reason for e in excluded)


def test_humaneval_47_docstring_contradicts_tests(by_id):
    p = by_id["HumanEval/47"]
    assert ">>> median([-10, 4, 6, 1000, 10, 20])\n    15.0" in p.prompt
    assert "assert candidate([-10, 4, 6, 1000, 10, 20]) == 8.0" in p.tests.code
    assert _canonical(p)([-10, 4, 6, 1000, 10, 20]) == 8.0


def test_humaneval_116_docstring_contradicts_tests(by_id):
    p = by_id["HumanEval/116"]
    assert "sort an array of non-negative integers" in p.prompt
    assert ">>> sort_array([-2, -3, -4, -5, -6]) == [-6, -5, -4, -3, -2]" in p.prompt
    assert ">>> sort_array([1, 5, 2, 3, 4]) == [1, 2, 3, 4, 5]" in p.prompt
    assert "assert candidate([1,5,2,3,4]) == [1, 2, 4, 3, 5]" in p.tests.code
    assert "assert candidate([-2,-3,-4,-5,-6]) == [-4, -2, -6, -5, -3]" in p.tests.code
    sort_array = _canonical(p)
    assert sort_array([1, 5, 2, 3, 4]) == [1, 2, 4, 3, 5]
    assert sort_array([-2, -3, -4, -5, -6]) == [-4, -2, -6, -5, -3]
