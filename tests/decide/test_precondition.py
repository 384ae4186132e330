"""Per-slice verdicts from a metrics dict: they diverge where the gap does."""

import json

import numpy as np
import pytest

from selfdistill.decide.precondition import precondition_from_metrics
from selfdistill.decide.verdict import OtherMove, Rules, VerdictKind
from selfdistill.errors import DataError
from selfdistill.metrics.summary import summarize
from tests.decide.records import K, N, problem, synthetic


@pytest.fixture(scope="module")
def metrics():
    recs, labels = synthetic()
    return summarize(recs, [1, K], difficulty=labels, n_resamples=2000)


def test_slice_verdicts_diverge(metrics):
    report = precondition_from_metrics(metrics)
    assert report.k == K and report.slice_source == "labels"
    assert report.slices["hard"].kind is VerdictKind.GO_SSD
    assert (report.slices["medium"].rule_id, report.slices["medium"].other) == ("R5e", OtherMove.SFT_EXTERNAL)
    assert (report.slices["easy"].rule_id, report.slices["easy"].other) == ("R2", OtherMove.DO_NOTHING)
    assert report.overall.kind is VerdictKind.GO_SSD
    assert "The slices disagree: SSD's lift should concentrate on hard" in report.summary


def test_verifier_and_high_cost_switch_every_go_to_verifier_aware(metrics):
    report = precondition_from_metrics(metrics, Rules(verifier_available=True, failure_cost="high"))
    assert report.overall.kind is VerdictKind.GO_VERIFIER_AWARE_SSD
    assert report.slices["hard"].kind is VerdictKind.GO_VERIFIER_AWARE_SSD
    assert report.slices["easy"].kind is VerdictKind.GO_OTHER


def test_report_json_round_trips(metrics):
    d = precondition_from_metrics(metrics).to_json()
    assert json.loads(json.dumps(d)) == d
    assert d["schema"] == "selfdistill.verdict/1" and set(d["slices"]) == {"hard", "medium", "easy"}
    assert d["overall"]["n_problems"] == 90 and d["rules"]["gap_threshold"] == 0.05


def test_from_a_json_file_round_trip(metrics):
    again = json.loads(json.dumps(metrics))
    assert precondition_from_metrics(again).to_json() == precondition_from_metrics(metrics).to_json()


def test_k_choice(metrics):
    with pytest.raises(DataError, match="no pass@8"):
        precondition_from_metrics(metrics, k=8)
    only_one = summarize(synthetic()[0], [1], n_resamples=100)
    with pytest.raises(DataError, match="needs a k >= 2"):
        precondition_from_metrics(only_one)


def test_infra_exclusions_are_explained_in_the_justification():
    recs = problem("a", 4) + problem("b", 20) + problem("c", 10, n=12, infra=20)
    m = summarize(recs, [K], n_resamples=200)
    v = precondition_from_metrics(m).overall
    assert "pass@1 is over the 3 problems with a sample; pass@16 and the gap over the 2" in v.justification


def test_slice_with_nobody_at_k_is_skipped_with_a_reason():
    recs = problem("h1", 3) + problem("h2", 8) + problem("e1", 10, n=10, infra=22)
    m = summarize(recs, [K], difficulty={"h1": "hard", "h2": "hard", "e1": "easy"}, n_resamples=200)
    report = precondition_from_metrics(m)
    assert "easy" not in report.slices and "n >= 16" in report.skipped_slices["easy"]
    assert "No verdict for: easy" in report.summary


def test_inconclusive_slice_reports_problems_needed():
    rng = np.random.default_rng(1)
    recs = []
    for i in range(40):  # about half the problems have a modest gap, half none: CI straddles 5 pp
        c = int(rng.binomial(N, 0.03)) if i % 2 else (N if i % 4 == 0 else 0)
        recs += problem(f"t{i}", c)
    m = summarize(recs, [K], n_resamples=2000)
    v = precondition_from_metrics(m, Rules(gap_threshold=0.15)).overall
    assert v.kind is VerdictKind.INCONCLUSIVE
    assert v.problems_needed > 40 and f"About {v.problems_needed} problems in total" in v.justification
    assert "add problems, not samples" in v.justification  # n = 32 >= 2k


def test_a_cross_fit_slice_counts_the_samples_its_numbers_rest_on():
    from selfdistill.decide.precondition import _median_n
    from selfdistill.metrics.summary import summarize

    recs = [{"task_id": f"t{i}", "sample_idx": j, "status": "passed" if j < i % 16 else "failed"}
            for i in range(40) for j in range(16)]
    metrics = summarize(recs, [1, 4], n_resamples=200)
    assert metrics["slice_source"] == "base-pass-rate-proxy"
    name = next(iter(metrics["slices"]))
    assert _median_n(metrics, None) == 16 and _median_n(metrics, name) == 8
