"""INCONCLUSIVE refuses the round exactly like GO-OTHER; --force goes past either and is stamped alike."""

import json
from pathlib import Path

import numpy as np
import pytest

from selfdistill.decide.refuse import a, forced_past, refusal, refuses
from selfdistill.decide.verdict import Rules
from selfdistill.decision import decide
from selfdistill.metrics.summary import summarize
from selfdistill.report import render_report
from selfdistill.spec import load_spec
from selfdistill.ssd import round as ssd_round
from selfdistill.ssd.gate import GateInputs, evaluate_gate
from tests.report.fixtures import write_precondition_only, write_run

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.toml"


@pytest.mark.parametrize(("kind", "refused"), [("GO-SSD", False), ("GO-VERIFIER-AWARE-SSD", False),
                                               ("GO-OTHER", True), ("INCONCLUSIVE", True), (None, True)])
def test_only_a_go_verdict_starts_the_round(kind, refused):
    assert refuses(kind) is refused
    assert forced_past(kind, force=True) == ((kind or "unknown") if refused else None)
    assert forced_past(kind, force=False) is None


def _inconclusive_metrics() -> dict:
    """40 problems: half with a modest gap, half none, so the gap CI straddles a 15 pp threshold."""
    rng, recs = np.random.default_rng(1), []
    for i in range(40):
        c = int(rng.binomial(32, 0.03)) if i % 2 else (32 if i % 4 == 0 else 0)
        recs += [{"task_id": f"t{i}", "status": "passed" if j < c else "failed"} for j in range(32)]
    return summarize(recs, [1, 4, 8, 16], n_resamples=1000)


@pytest.fixture
def inconclusive_run(tmp_path, monkeypatch):
    """A round whose base evaluation is replaced by prepared metrics (INCONCLUSIVE at a 15 pp threshold)."""
    spec = load_spec(QUICKSTART)
    spec = spec.model_copy(update={"diagnostics": spec.diagnostics.model_copy(update={"gap_threshold_pp": 15.0})})
    metrics = _inconclusive_metrics()

    def fake_evaluate(r, name, t, model, options, progress_factory):
        (r.run_dir / name).mkdir(parents=True, exist_ok=True)
        (r.run_dir / name / "metrics.json").write_text(json.dumps(metrics))
        return metrics

    monkeypatch.setattr(ssd_round, "evaluate_arm", fake_evaluate)
    return lambda force: ssd_round.Round(spec, None, tmp_path, None, force, "model.gguf")


def test_inconclusive_refuses_the_round_and_says_how_many_problems_settle_it(inconclusive_run):
    with pytest.raises(ssd_round.RoundRefused) as refused:
        ssd_round.precondition(inconclusive_run(False), None)
    verdict = json.loads((inconclusive_run(False).run_dir / "base" / "verdict.json").read_text())
    assert verdict["overall"]["kind"] == "INCONCLUSIVE"
    text = str(refused.value)
    needed = verdict["overall"]["problems_needed"]
    assert text.startswith("error: the precondition verdict is INCONCLUSIVE (rule R6)")
    assert f"About {needed} held-out problems in total ({needed - 40} more than the 40 measured)" in text
    assert "SSD is not started" in text and "pass --force" in text and "forced past INCONCLUSIVE" in text


def test_force_goes_past_inconclusive(inconclusive_run):
    pre = ssd_round.precondition(inconclusive_run(True), None)
    assert pre["kind"] == "INCONCLUSIVE" and forced_past(pre["kind"], True) == "INCONCLUSIVE"


def test_go_other_message_names_the_move():
    verdict = {"overall": {"kind": "GO-OTHER", "other": "DPO on preference data", "rule_id": "R5d"},
               "summary": "Overall: GO-OTHER."}
    text = refusal(verdict, "run/base/verdict.md")
    assert text.startswith("error: the precondition verdict is GO-OTHER (DPO on preference data; rule R5d)")
    assert "See run/base/verdict.md" in text


def test_unsettleable_inconclusive_says_so():
    verdict = {"overall": {"kind": "INCONCLUSIVE", "rule_id": "R6", "problems_needed": None, "n_problems": 164,
                           "k": 16}}
    assert "No practical number of problems" in refusal(verdict, "v.md")


def _set_kind(run: Path, kind: str, rule: str, **extra) -> None:
    path = run / "base" / "verdict.json"
    verdict = json.loads(path.read_text())
    verdict["overall"] |= {"kind": kind, "other": None, "rule_id": rule, **extra}
    path.write_text(json.dumps(verdict))
    (run / "base" / "verdict.md").unlink(missing_ok=True)


def test_report_without_a_round_says_inconclusive_refused_it(tmp_path):
    run = write_precondition_only(tmp_path / "run")
    _set_kind(run, "INCONCLUSIVE", "R6", problems_needed=300)
    md = render_report(run)[0].read_text()
    assert "the precondition verdict is INCONCLUSIVE (R6): the gap's CI straddles the threshold" in md
    assert "only with `--force`" in md


def test_report_gate_and_promotion_treat_forced_past_inconclusive_like_go_other(tmp_path):
    run = write_run(tmp_path / "run", forced=True)
    _set_kind(run, "INCONCLUSIVE", "R6")
    top = render_report(run)[0].read_text().split("## A.")[0]
    assert "**Warning: forced past an INCONCLUSIVE precondition verdict.**" in top
    base = {"arm": "ssd", "min_lift_pp": 3.0, "delta": None, "battery": None, "comparable": True, "forced": True,
            "round1_pool_hashes": set(), "round2_pool_hashes": None, "round1_heldout_hashes": set(),
            "round2_heldout_hashes": None}
    for past in ("GO-OTHER", "INCONCLUSIVE"):
        gate = evaluate_gate(GateInputs(**base, forced_past=past))
        whole = next(c for c in gate["checks"] if c["name"] == "whole-set")
        assert not whole["passed"] and f"forced past {a(past)} verdict" in whole["detail"]


def test_promotion_is_blocked_by_a_forced_past_inconclusive_round(tmp_path):
    from selfdistill.ssd.promotion import promotion_for_run

    run = write_run(tmp_path / "run", forced=True)
    summary_path = run / "round1" / "round.json"
    summary = json.loads(summary_path.read_text())
    summary["forced_past"] = "INCONCLUSIVE"
    summary_path.write_text(json.dumps(summary))
    spec = load_spec(QUICKSTART)
    plan = promotion_for_run(spec, run)
    assert plan["blocked"] and any("forced past an INCONCLUSIVE precondition verdict" in r
                                   for r in plan["blocked_reasons"])


def test_decide_writes_the_minimum_and_the_gap_table(tmp_path):
    spec = load_spec(QUICKSTART)
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(_inconclusive_metrics()))
    decide(spec, path, tmp_path)
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert (verdict["n_problems"], verdict["min_problems"], verdict["meets_min_problems"]) == (40, 200, False)
    assert [r["k"] for r in verdict["overall"]["gaps_by_k"]] == [4, 8, 16] and verdict["ks"] == [4, 8, 16]
    md = (tmp_path / "verdict.md").read_text()
    assert md.splitlines()[2].startswith("> **Below the 200-problem minimum**: 40 held-out problems")
    assert "gap pass@4 − pass@1 (pp) | gap pass@8 − pass@1 (pp) | gap pass@16 − pass@1 (pp) | verdict | rests on" in md
    assert Rules().gap_threshold == 0.05  # the default rule is untouched by the spec's 15 pp elsewhere


def test_run_stops_after_deliverable_a_on_inconclusive_and_says_how_many_problems_settle_it(tmp_path, monkeypatch):
    from selfdistill.checks import CheckReport
    from selfdistill.pipeline import run_all

    run = write_precondition_only(tmp_path / "run")
    _set_kind(run, "INCONCLUSIVE", "R6", problems_needed=450, n_problems=36, k=8)
    verdict = json.loads((run / "base" / "verdict.json").read_text())

    def refused(*args, **kwargs):
        raise ssd_round.RoundRefused(refusal(verdict, str(run / "base" / "verdict.md")))

    monkeypatch.setattr(ssd_round, "run_round", refused)
    result = run_all(CheckReport(load_spec(QUICKSTART), None), run, limit=None, force=False,
                     progress_factory=None, say=lambda *_: None)
    assert result.stopped_after_verdict and result.verdict == "INCONCLUSIVE"
    assert "About 450 held-out problems in total (414 more than the 36 measured)" in result.why
    assert result.report_md.exists() and "Not run." in result.report_md.read_text()
