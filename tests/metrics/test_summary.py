"""Outcome records -> metrics.json dict: counts, infra, exclusions, slices, JSON shape."""

import json

import numpy as np
import pytest

from selfdistill.errors import DataError
from selfdistill.execute.outcome import Status
from selfdistill.metrics.slices import proxy_slice
from selfdistill.metrics.summary import count_outcomes, summarize
from selfdistill.tasks.problem import Difficulty

FAST = {"n_resamples": 300}


def records(spec: dict[str, list[str]]) -> list[dict]:
    """{task_id: [status, ...]} -> per-sample records."""
    return [{"task_id": t, "status": s, "sample": i} for t, ss in spec.items() for i, s in enumerate(ss)]


def uniform(n_tasks: int, n: int, rates, prefix="t") -> list[dict]:
    out = []
    for i in range(n_tasks):
        c = round(rates[i % len(rates)] * n)
        out += records({f"{prefix}{i:03d}": ["passed"] * c + ["failed"] * (n - c)})
    return out


def walk_plain(x):
    assert type(x) in (dict, list, str, int, float, bool, type(None)), (type(x), x)
    for v in x.values() if isinstance(x, dict) else x if isinstance(x, list) else []:
        walk_plain(v)


def test_counts_exclude_infra_and_show_all_six_statuses():
    recs = records({"a": ["passed", "infra", "failed"], "b": ["timeout", "memory", "error", "passed", Status.PASSED]})
    counts = count_outcomes(recs)
    assert counts.task_ids == ("a", "b")
    assert counts.n.tolist() == [2, 5] and counts.c.tolist() == [1, 2] and counts.infra.tolist() == [1, 0]
    assert counts.status_counts == {"passed": 3, "failed": 1, "error": 1, "timeout": 1, "memory": 1, "infra": 1}


def test_metrics_values_match_direct_computation():
    recs = records({"a": ["passed"] * 3 + ["failed"] * 5, "b": ["failed"] * 8, "c": ["passed"] * 8})
    m = summarize(recs, [4], **FAST)
    assert m["ks"] == [1, 4]  # pass@1 always reported
    assert m["metrics"]["pass@1"]["value"] == pytest.approx((3 / 8 + 0 + 1) / 3)
    passk_a = 1 - (5 * 4 * 3 * 2) / (8 * 7 * 6 * 5)
    assert m["metrics"]["pass@4"]["value"] == pytest.approx((passk_a + 0 + 1) / 3)
    gap = m["gaps"]["pass@4-pass@1"]
    assert gap["value"] == pytest.approx(m["metrics"]["pass@4"]["value"] - m["metrics"]["pass@1"]["value"])
    assert gap["ci_low"] <= gap["value"] <= gap["ci_high"] and gap["n_problems"] == 3


def test_problems_short_after_infra_are_listed_not_dropped():
    recs = records({"ok": ["passed"] * 4, "short": ["passed", "failed", "infra", "infra"], "dead": ["infra"] * 4})
    m = summarize(recs, [4], **FAST)
    assert [e["task_id"] for e in m["excluded"]["pass@4"]] == ["dead", "short"]
    assert m["excluded"]["pass@4"][1] == {"task_id": "short", "n": 2, "infra": 2}
    assert m["excluded"]["pass@1"] == [{"task_id": "dead", "n": 0, "infra": 4}]
    assert m["metrics"]["pass@4"]["n_problems"] == 1 and m["metrics"]["pass@1"]["n_problems"] == 2
    assert m["n_problems"] == 3 and m["status_counts"]["infra"] == 6


def test_k_above_every_problem_n_is_a_user_error():
    with pytest.raises(DataError, match=r"pass@16 needs n >= 16.*no problem has more than 8.*drop"):
        summarize(uniform(3, 8, [0.5]), [1, 16], **FAST)


@pytest.mark.parametrize(
    "recs,match",
    [
        ([{"task_id": "a", "status": "crashed"}], "status 'crashed'"),
        ([{"status": "passed"}], "task_id"),
        (["passed"], "must be a dict"),
        ([], "no outcome records"),
    ],
)
def test_malformed_records_are_data_errors(recs, match):
    with pytest.raises(DataError, match=match):
        summarize(recs, [1], **FAST)


@pytest.mark.parametrize("ks", [[0], [True], ["16"], [2.5]])
def test_bad_k_is_a_data_error(ks):
    with pytest.raises(DataError, match="k values"):
        summarize(uniform(2, 4, [0.5]), ks, **FAST)


@pytest.mark.parametrize(
    "rate,want", [(0.0, "hard"), (0.33, "hard"), (1 / 3, "medium"), (0.5, "medium"), (2 / 3, "easy"), (1.0, "easy")]
)
def test_proxy_bins(rate, want):
    assert proxy_slice(rate) is Difficulty(want)


def test_proxy_is_cross_fit_and_says_so():
    m = summarize(uniform(9, 6, [0.0, 2 / 6, 4 / 6]), [2], **FAST)  # rates 0, 1/3, 2/3: one of each bin
    assert m["slice_source"] == "base-pass-rate-proxy" and m["slice_proxy_from"] == "cross-fit"
    assert "cross-fit" in m["slice_note"] and set(m["slice_bins"]) == {"hard", "medium", "easy"}
    assert m["slice_estimate"].startswith("estimate half")
    assert list(m["slices"]) == ["hard", "medium", "easy"]
    assert [m["slices"][s]["n_problems"] for s in m["slices"]] == [3, 3, 3]
    assert m["per_problem"]["t000"] == {"n": 6, "c": 0, "infra": 0, "slice": "hard",
                                        "halves": {"assign": {"n": 3, "c": 0}, "estimate": {"n": 3, "c": 0}}}


def test_cross_fit_slice_is_assigned_by_even_samples_and_measured_on_odd_ones():
    alt = ["passed", "failed"] * 4  # even sample_idx all pass, odd all fail
    recs = [{"task_id": "a", "status": s, "sample_idx": i} for i, s in enumerate(alt)]
    recs += [{"task_id": "b", "status": s, "sample_idx": 7 - i} for i, s in enumerate(alt)]  # odd pass here
    m = summarize(recs, [2, 8], **FAST)
    assert m["per_problem"]["a"]["slice"] == "easy" and m["per_problem"]["b"]["slice"] == "hard"
    assert m["slices"]["easy"]["metrics"]["pass@1"]["value"] == 0.0  # the odd half of "a"
    assert m["slices"]["hard"]["metrics"]["pass@1"]["value"] == 1.0  # the odd half of "b"
    assert m["metrics"]["pass@1"]["value"] == pytest.approx(0.5)  # overall: every sample
    assert m["slices"]["easy"]["metrics"]["pass@8"]["value"] is None  # 4 estimate samples < k = 8
    assert m["slices"]["easy"]["excluded"]["pass@8"] == [{"task_id": "a", "n": 4, "infra": 0}]


def test_labels_are_used_when_every_problem_has_one():
    recs = uniform(4, 4, [0.0, 1.0])
    labels = {"t000": Difficulty.HARD, "t001": "hard", "t002": "easy", "t003": Difficulty.EASY}
    m = summarize(recs, [2], difficulty=labels, **FAST)
    assert m["slice_source"] == "labels" and m["slice_bins"] is None and m["slice_proxy_from"] is None
    assert list(m["slices"]) == ["hard", "easy"]  # empty slices are omitted


def test_partial_labels_fall_back_to_the_proxy_and_say_why():
    m = summarize(uniform(4, 4, [0.0, 1.0]), [2], difficulty={"t000": "hard"}, **FAST)
    assert m["slice_source"] == "base-pass-rate-proxy" and "3 of 4 problems lack a difficulty label" in m["slice_note"]


def test_bad_label_is_a_data_error():
    with pytest.raises(DataError, match="'trivial' for t000"):
        summarize(uniform(1, 4, [0.5]), [2], difficulty={"t000": "trivial"}, **FAST)


def test_external_pass_rates_fix_slices_and_unknown_problems_are_unsliced():
    recs = uniform(3, 4, [1.0])  # every sample passes here: a proxy from these samples would say "easy"
    m = summarize(recs, [2], base_pass_rate={"t000": 0.1, "t001": 0.5}, **FAST)
    assert m["slice_proxy_from"] == "external" and m["unsliced"] == ["t002"]
    assert {s: g["n_problems"] for s, g in m["slices"].items()} == {"hard": 1, "medium": 1}
    assert "no base pass rate" in m["slice_note"]


@pytest.mark.parametrize("rate", [1.5, -0.1, float("nan")])
def test_bad_external_rate_is_a_data_error(rate):
    with pytest.raises(DataError, match="base pass rate"):
        summarize(uniform(1, 4, [0.5]), [2], base_pass_rate={"t000": rate}, **FAST)


def test_json_round_trip_with_plain_types():
    recs = uniform(30, 8, [0.0, 0.25, 0.5, 1.0]) + records({"flaky": ["infra"] * 5 + ["passed"] * 3})
    m = summarize(recs, [1, 4, 8], **FAST)
    walk_plain(m)
    assert json.loads(json.dumps(m)) == m


def test_deterministic_and_stable_across_added_ks():
    recs = uniform(20, 8, [0.1, 0.6, 0.9])
    a, b = summarize(recs, [8], seed=5, **FAST), summarize(recs, [8], seed=5, **FAST)
    assert a == b
    c = summarize(recs, [2, 8], seed=5, **FAST)
    assert c["metrics"]["pass@8"] == a["metrics"]["pass@8"]  # adding a k does not shift other CIs
    assert summarize(recs, [8], seed=6, **FAST)["metrics"]["pass@1"] != a["metrics"]["pass@1"]
    assert c["metrics"]["pass@1"] == a["metrics"]["pass@1"]


def test_slice_with_no_problem_at_k_has_null_metric():
    recs = uniform(4, 8, [0.0]) + records({"e": ["passed"] * 2 + ["infra"] * 6})
    m = summarize(recs, [8], difficulty={**{f"t{i:03d}": "hard" for i in range(4)}, "e": "easy"}, **FAST)
    easy = m["slices"]["easy"]
    assert easy["metrics"]["pass@8"] == {"value": None, "ci_low": None, "ci_high": None, "n_problems": 0}
    assert easy["gaps"]["pass@8-pass@1"]["value"] is None and easy["metrics"]["pass@1"]["value"] == 1.0
    assert np.isclose(m["slices"]["hard"]["metrics"]["pass@8"]["value"], 0.0)
