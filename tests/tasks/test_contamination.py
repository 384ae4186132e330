import datetime as dt
import json
import re
import tomllib

import pytest

from selfdistill.errors import DataError
from selfdistill.tasks.contamination import check_contamination, normalize, refuse_if_contaminated
from selfdistill.tasks.problem import AssertTests, Problem

LONG = (
    "Given a list of integers, return the length of the longest strictly increasing subsequence "
    "whose elements are all prime numbers, or zero when the list contains no prime at all."
)


def problem(task_id: str, prompt: str, release_date: dt.date | None = None) -> Problem:
    return Problem(task_id, prompt, AssertTests("assert True"), "t", release_date=release_date)


def unrelated(i: int) -> str:
    return f"Write function number {i} that " + " ".join(f"w{i}x{j}" for j in range(30)) + "."


def test_normalization_ignores_case_whitespace_and_punctuation():
    assert normalize("def  f(x):\n    '''Return X!'''") == normalize("DEF f x return x") == "def f x return x"


def test_exact_match_after_normalization():
    pool = [problem("p/0", unrelated(0)), problem("p/1", LONG.upper().replace(" ", "\n   "))]
    held = [problem("h/0", LONG), problem("h/1", unrelated(1))]
    report = check_contamination(pool, held)
    assert [(m.heldout_id, m.pool_id) for m in report.exact] == [("h/0", "p/1")]
    assert report.contaminated_ids == ("h/0",) and not report.is_clean


def test_heldout_prompt_pasted_inside_pool_prompt_is_flagged():
    pasted = "Solve this first. " + LONG + " Then explain your answer in detail please."
    pool = [problem("p/0", unrelated(0)), problem("p/1", pasted), problem("p/2", unrelated(2))]
    held = [problem("h/0", LONG), problem("h/1", unrelated(7))]
    report = check_contamination(pool, held)
    assert report.exact == ()
    (hit,) = report.ngram
    n_grams = len(normalize(LONG).split()) - 13 + 1
    assert (hit.heldout_id, hit.pool_id, hit.shared, hit.heldout_ngrams) == ("h/0", "p/1", n_grams, n_grams)
    assert report.contaminated_ids == ("h/0",) and report.pairs == (("h/0", "p/1"),)


def test_unrelated_prompts_are_clean():
    pool = [problem(f"p/{i}", unrelated(i)) for i in range(20)]
    held = [problem(f"h/{i}", unrelated(100 + i)) for i in range(20)]
    report = check_contamination(pool, held)
    assert report.is_clean and report.contaminated_ids == () and report.pairs == ()
    refuse_if_contaminated(report)  # does not raise


def test_n_and_min_shared_are_configurable():
    shared = "the quick brown fox jumps over the lazy dog"  # 9 words: below 13, above 5
    pool = [problem("p/0", f"alpha beta {shared} gamma delta epsilon zeta eta theta iota kappa")]
    held = [problem("h/0", f"one two three {shared} four five six seven eight nine ten")]
    assert check_contamination(pool, held).is_clean
    (hit,) = check_contamination(pool, held, n=5).ngram
    assert hit.shared == 9 - 5 + 1
    assert check_contamination(pool, held, n=5, min_shared=6).is_clean


def test_short_heldout_prompt_contained_in_pool_prompt():
    pool = [problem("p/0", "Please reverse a string s, then " + unrelated(0))]
    held = [problem("h/0", "Reverse a string."), problem("h/1", "Reverse a list.")]
    report = check_contamination(pool, held)
    assert [(o.heldout_id, o.pool_id, o.shared) for o in report.ngram] == [("h/0", "p/0", 1)]


def test_date_window_flags_outside_and_lists_undated():
    d = dt.date
    held = [
        problem("old", unrelated(1), d(2023, 12, 31)),
        problem("start", unrelated(2), d(2024, 1, 1)),
        problem("end", unrelated(3), d(2024, 6, 30)),
        problem("new", unrelated(4), d(2024, 7, 1)),
        problem("undated", unrelated(5)),
    ]
    report = check_contamination([], held, window_start=d(2024, 1, 1), window_end=d(2024, 6, 30))
    assert [f.task_id for f in report.outside_window] == ["old", "new"]
    assert report.undated == ("undated",) and report.contaminated_ids == ("old", "new")
    only_start = check_contamination([], held, window_start=d(2024, 1, 1))
    assert only_start.contaminated_ids == ("old",)
    no_window = check_contamination([], held)
    assert no_window.is_clean and no_window.undated == ()


def test_reversed_window_is_an_error():
    with pytest.raises(DataError, match="swap them"):
        check_contamination([], [], window_start=dt.date(2025, 1, 1), window_end=dt.date(2024, 1, 1))


def _flagged_report():
    pool = [problem("p/0", LONG), problem("p/1", "Intro. " + LONG)]
    held = [
        problem("h/copied", LONG),
        problem("h/fine", unrelated(3), dt.date(2024, 5, 1)),
        problem("h/old", unrelated(4), dt.date(2020, 1, 1)),
    ]
    return check_contamination(pool, held, window_start=dt.date(2024, 1, 1))


def test_refusal_lists_ids_and_how_to_exclude():
    report = _flagged_report()
    with pytest.raises(DataError) as e:
        refuse_if_contaminated(report)
    msg = str(e.value)
    assert msg.startswith("2 held-out problems may be contaminated")
    assert "h/copied: same prompt as pool p/0; shares 13-grams with pool p/0" in msg
    assert "h/old: released 2020-01-01, outside the window [2024-01-01, ...]" in msg
    assert "h/fine" not in msg and "errata file" in msg and "exclude list" in msg
    block = "\n".join(line[2:] for line in msg.splitlines()[msg.splitlines().index("  [[exclude]]") :])
    entries = tomllib.loads(block)["exclude"]
    assert [x["task_id"] for x in entries] == ["h/copied", "h/old"] and all(x["reason"] for x in entries)


def test_refusal_respects_excluded_ids():
    report = _flagged_report()
    with pytest.raises(DataError) as e:
        refuse_if_contaminated(report, excluded_ids=["h/copied"])
    assert re.search(r"^1 held-out problem may be", str(e.value)) and "h/copied" not in str(e.value)
    refuse_if_contaminated(report, excluded_ids={"h/copied", "h/old"})


def test_report_is_json_serializable():
    data = _flagged_report().to_json()
    assert json.loads(json.dumps(data))["contaminated_ids"] == ["h/copied", "h/old"]
    assert data["is_clean"] is False and data["window_start"] == "2024-01-01"
