"""Deliverable A as Markdown: what must be on the page."""

import json

import pytest

from selfdistill.decide.precondition import precondition_from_metrics
from selfdistill.decide.render import render_precondition
from selfdistill.metrics.summary import summarize
from tests.decide.records import problem, synthetic


@pytest.fixture(scope="module")
def page_inputs():
    recs, labels = synthetic()
    recs += problem("flaky/0", 5, n=10, infra=22)
    labels["flaky/0"] = "hard"
    metrics = summarize(recs, [1, 16], difficulty=labels, n_resamples=1000)
    return metrics, precondition_from_metrics(metrics)


def test_page_has_table_counts_verdicts_and_sources(page_inputs):
    metrics, report = page_inputs
    page = render_precondition(metrics, report, errata={"HumanEval/145": "test expects a wrong | answer"})
    overall = metrics["metrics"]
    p1 = overall["pass@1"]
    cell = f"{100 * p1['value']:.1f} [{100 * p1['ci_low']:.1f}, {100 * p1['ci_high']:.1f}]"
    assert page.startswith("# Precondition verdict: GO-SSD (R3)")
    assert "| group | problems | pass@1 (%) | pass@16 (%) | gap pass@16 − pass@1 (pp) | verdict |" in page
    assert f"| overall | 91 | {cell} |" in page
    for name in ("hard", "medium", "easy"):
        assert f"| {name} | " in page and f"- **{name}**: " in page
    assert "GO-OTHER: do nothing (R2)" in page and "GO-OTHER: SFT on curated external data (R5e)" in page
    assert "| passed | failed | error | timeout | memory | infra |" in page and "| 22 |" in page
    assert "Slice source: **labels**" in page
    assert "| HumanEval/145 | test expects a wrong \\| answer |" in page
    assert "| pass@16 | flaky/0 | 10 | 22 |" in page
    assert report.overall.justification in page and report.summary in page
    assert "gap threshold 5.0 pp" in page


def test_renders_the_same_from_json_files(page_inputs):
    metrics, report = page_inputs
    from_files = render_precondition(json.loads(json.dumps(metrics)), json.loads(json.dumps(report.to_json())))
    assert from_files == render_precondition(metrics, report)


def test_proxy_slices_show_bins_and_warning():
    recs = []
    for i, c in enumerate([0, 2, 5, 8, 16, 16, 1, 3]):
        recs += problem(f"t{i}", c, n=16)
    metrics = summarize(recs, [16], n_resamples=200)
    page = render_precondition(metrics, precondition_from_metrics(metrics))
    assert f"Slice source: **base-pass-rate-proxy** (pass rates from {metrics['slice_proxy_from']})" in page
    assert "hard = base pass rate < 1/3" in page and metrics["slice_note"].rstrip(".") in page
    assert "## Excluded problems\n\nNone." in page
