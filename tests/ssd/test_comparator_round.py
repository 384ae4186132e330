"""A GO-OTHER verdict whose move is measured (comparator.measure names its arm): `selfdistill run` runs a
comparator-only round through the fake engine and training job (tests/fakes.py): the base and the comparator
arm, no SSD arm and no T_train sampling, evaluated at the same T_eval sweep, deltas vs base with CIs, ledger
costs, a promotion plan that keeps SSD refused, the report; run again, it re-runs nothing."""

import json

import pytest

from selfdistill import cli, views
from selfdistill.checks import check_spec
from selfdistill.decide.refuse import measure_advice, measures_refused_move, refusal
from selfdistill.decide.verdict import MEASURE_WITH, OtherMove
from selfdistill.pipeline import run_all
from selfdistill.spec import MEASURABLE, ComparatorKind
from selfdistill.ssd import arms
from tests.ssd.round_fixtures import make_spec

RS = "rejection-sampling-sft"
# the gap can never reach 99 pp and pass@1 is far from the ceiling, the pool has tests, the budget is below
# RL's 8 GPU-hours: the base's verdict is GO-OTHER, R5c, verifier-based rejection sampling
GO_OTHER_R5C = "gap_threshold_pp = 99\nfloor_pp = 0.1\n"


def go_other_spec(tmp_path, measure: str | None):
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    spec = make_spec(tmp_path, model, extra="[battery]\nprobe_samples = 1\n")
    text = spec.read_text().replace("timeout_s = 5\n", "timeout_s = 5\n" + GO_OTHER_R5C)
    if measure is not None:
        text = text.replace('kind = "rejection-sampling-sft"\n',
                            f'kind = "rejection-sampling-sft"\nmeasure = {measure}\nbest_of_n = 2\n')
    spec.write_text(text)
    return spec


def ledger_rows(run):
    return [json.loads(line) for line in (run / "ledger.jsonl").read_text().splitlines()]


def quiet(*args, **kwargs):
    pass


@pytest.mark.parametrize("move", list(OtherMove))
def test_every_go_other_move_names_the_arm_that_measures_it(move):
    expected = {OtherMove.SFT_EXTERNAL: "sft-external", OtherMove.REJECTION_SAMPLING: RS,
                OtherMove.DPO: "dpo", OtherMove.RL_VERIFIER: "grpo", OtherMove.DO_NOTHING: None}[move]
    assert move.measure_with == MEASURE_WITH[move] == expected
    if expected is not None:  # a comparator the spec can name, and (once measurable) an arm of the registry
        assert ComparatorKind(expected)
        assert expected not in arms.ARMS or arms.ARMS[expected].comparator
    overall = {"kind": "GO-OTHER", "other": move.value, "rule_id": "R5", "measure_with": expected}
    advice = measure_advice(overall)
    verdict = {"overall": overall, "summary": "S."}
    text = refusal(verdict, "run/base/verdict.md")
    assert advice in text and "pass --force" in text
    if expected is None:
        assert "No arm measures" in advice and measures_refused_move(verdict, [k.value for k in ComparatorKind]) is None
    elif expected in {m.value for m in MEASURABLE}:
        assert f'measure = ["{expected}"]' in advice and "run the same command again" in advice
        assert "SSD stays refused" in advice
        assert measures_refused_move(verdict, [expected]) == expected
        assert measures_refused_move(verdict, []) is None
    else:
        assert "cannot run yet" in advice and "declare its numbers" in advice


def test_only_a_go_other_verdict_starts_a_comparator_round():
    for kind in ("INCONCLUSIVE", "GO-SSD", "GO-VERIFIER-AWARE-SSD"):
        assert measures_refused_move({"overall": {"kind": kind, "other": None}}, [RS]) is None
        assert measure_advice({"kind": kind}) is None
    old = {"overall": {"kind": "GO-OTHER", "other": OtherMove.REJECTION_SAMPLING.value}}  # no measure_with yet
    assert measures_refused_move(old, [RS]) == RS


def test_refused_round_names_the_arm_and_the_command(fakes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    result = run_all(check_spec(go_other_spec(tmp_path, None)), run, limit=None, force=False, progress_factory=fakes,
                     say=quiet)
    verdict = json.loads((run / "base" / "verdict.json").read_text())
    assert verdict["overall"]["kind"] == "GO-OTHER" and verdict["overall"]["measure_with"] == RS
    assert result.stopped_after_verdict and not (run / "round1" / "round.json").exists()
    assert f'measure = ["{RS}"]' in result.why and "run the same command again" in result.why
    assert f"`{RS}` arm" in (run / "base" / "verdict.md").read_text()


def test_go_other_measured_runs_the_comparator_alone_to_the_report_and_resumes(fakes, tmp_path, monkeypatch,
                                                                               capsys):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    spec_path = go_other_spec(tmp_path, f'["{RS}"]')
    check = check_spec(spec_path)
    result = run_all(check, run, limit=None, force=False, progress_factory=fakes, say=quiet)
    assert not result.stopped_after_verdict and result.comparator_only == (RS,)
    summary = json.loads((run / "round1" / "round.json").read_text())
    assert summary["comparator_only"] is True and summary["forced"] is False and summary["forced_past"] is None
    assert summary["arms"] == [RS] and summary["precondition"]["kind"] == "GO-OTHER"
    assert summary["precondition"]["measure_with"] == RS and summary["sampling"]["n_samples"] == 0
    assert not (run / "round1" / "samples").exists() and not (run / "round1" / "train-ssd").exists()
    for t in check.spec.ssd.temperatures:  # the same sweep, base and comparator
        assert (run / f"{RS}-T{t:g}" / "metrics.json").exists()
        assert {"base", RS} == set(next(r for r in summary["sweep"] if r["t_eval"] == t)["arms"])
    assert set(summary["deltas"]) == {f"{RS}_vs_base"}  # vs ssd: absent, not an error
    d = summary["deltas"][f"{RS}_vs_base"]["overall"]
    assert d["ci_low"] <= d["value"] <= d["ci_high"] and d["value"] > 0  # the fake fine-tuned model is better
    rows = ledger_rows(run)
    costed = {r["arm"] for r in rows}  # the comparator's own draw, scoring and training are in the ledger
    assert {RS, *summary["arm_records"][RS]["cost_stages"]} <= costed and ("training", RS) in {
        (r["stage"], r["arm"]) for r in rows}
    assert not {"samples", "verify", "ssd", "verifier"} & costed  # no SSD sampling, verification or training
    assert summary["costs"]["arms"][RS]["hours_to_produce"]["device_hours"] > 0
    assert not (run / "round1" / "gate.json").exists()  # no SSD arm seeds round 2
    plan = json.loads((run / "round1" / "promotion.json").read_text())
    assert plan["blocked"] and plan["candidate"] is None and plan["pareto"] is None
    assert "SSD was refused by the precondition verdict GO-OTHER" in plan["blocked_reasons"][0]
    measured = plan["comparator_only"]["measured"]
    assert [m["arm"] for m in measured] == [RS] and measured[0]["delta_vs_base"] == d
    md = result.report_md.read_text()
    assert "SSD was refused by the precondition verdict GO-OTHER" in md
    assert "| base |" in md and f"| {RS} |" in md  # B.6 lists the base and the measured comparator
    assert "GO-OTHER" in result.report_html.read_text()
    assert f"is measured by the `{RS}` arm, which comparator.measure names" in (run / "base" / "verdict.md").read_text()
    views.print_round(summary)  # `selfdistill ssd`'s summary of a round without T_train samples
    assert "samples: none at T_train" in capsys.readouterr().out
    assert cli.main(["gate", str(spec_path), "--run-dir", str(run)]) == 0  # no gate to run: the plan alone
    assert "no round-2 gate: SSD was refused" in capsys.readouterr().out and not (run / "round1" / "gate.json").exists()
    before = ledger_rows(run)
    again = run_all(check, run, limit=None, force=False, progress_factory=fakes, say=quiet)
    assert ledger_rows(run) == before and again.comparator_only == (RS,)  # nothing re-ran
    assert json.loads((run / "round1" / "round.json").read_text())["deltas"] == summary["deltas"]
