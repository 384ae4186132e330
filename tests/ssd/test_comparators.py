"""The rejection-sampling-sft comparator arm: best-of-N over the pool prompts with tests, scored in the
sandbox, the distinct passing programs trained on by SFT, evaluated and costed like every arm, resumable."""

import json

import pytest

from selfdistill.checks import check_spec
from selfdistill.errors import SpecError
from selfdistill.pipeline import run_all
from selfdistill.spec import load_spec
from selfdistill.ssd import arms, comparators, ledger
from tests.ssd.round_fixtures import make_spec

RS = "rejection-sampling-sft"


def rs_spec(tmp_path, measure='["rejection-sampling-sft"]', n=3):
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    spec = make_spec(tmp_path, model, extra="[battery]\nprobe_samples = 1\n")
    text = spec.read_text().replace('verifier_arm = "on"', 'verifier_arm = "off"')
    spec.write_text(text.replace('kind = "rejection-sampling-sft"\n',
                                 f'kind = "rejection-sampling-sft"\nmeasure = {measure}\nbest_of_n = {n}\n'))
    return spec


def sample(task, idx, program, degenerate=None):
    return {"task_id": task, "sample_idx": idx, "program": program, "raw": program, "degenerate": degenerate}


def test_distinct_passing_keeps_one_of_each_passing_program_per_prompt():
    samples = [sample("a", 0, "x"), sample("a", 1, "x"), sample("a", 2, "y"), sample("a", 3, "z"),
               sample("b", 0, "x"), sample("b", 1, "w", degenerate="single-line")]
    passed = {("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)}
    kept = comparators.distinct_passing(samples, passed)
    assert [(s["task_id"], s["sample_idx"]) for s in kept] == [("a", 0), ("a", 2), ("b", 0)]
    assert comparators.distinct_passing(samples, None) == []


def test_measure_accepts_only_what_a_round_can_run(tmp_path):
    assert [m.value for m in load_spec(rs_spec(tmp_path)).comparator.measure] == [RS]
    with pytest.raises(SpecError) as err:
        load_spec(rs_spec(tmp_path, measure='["dpo"]'))
    assert "dpo cannot be measured" in str(err.value) and "declare its numbers" in str(err.value)


def test_planned_only_when_measured_and_refused_without_tests(tmp_path):
    spec = load_spec(rs_spec(tmp_path))
    assert arms.planned(spec, "GO-SSD", n_with_tests=3) == ["ssd", RS]
    plain = spec.model_copy(update={"comparator": spec.comparator.model_copy(update={"measure": []})})
    assert arms.planned(plain, "GO-SSD", n_with_tests=3) == ["ssd"]
    with pytest.raises(SpecError, match="has no tests"):
        arms.planned(spec, "GO-SSD", n_with_tests=0)


def test_rejection_sampling_arm_trains_evaluates_costs_and_resumes(fakes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    spec = check_spec(rs_spec(tmp_path))
    result = run_all(spec, run, limit=None, force=True, progress_factory=fakes, say=lambda *a: None)
    summary = json.loads((run / "round1" / "round.json").read_text())
    assert summary["arms"] == ["ssd", RS]
    drawn = [json.loads(x) for x in (run / "round1" / RS / "samples" / "samples.jsonl").read_text().splitlines()]
    assert len(drawn) == 5 * 3  # every pool prompt has tests: best-of-3 each
    stats = summary["arm_samples"][RS]
    assert stats["best_of_n"] == 3 and stats["n_samples"] == 15
    examples = (run / "round1" / f"train-{RS}" / "examples.jsonl").read_text().splitlines()
    assert len(examples) == stats["n_distinct_passing"] <= stats["kept_verifier"]
    assert json.loads((run / "round1" / f"train-{RS}" / "job.json").read_text())["algorithm"] == "sft"
    for t in spec.spec.ssd.temperatures:
        assert (run / f"{RS}-T{t:g}" / "metrics.json").exists()
    assert {f"{RS}_vs_base", f"{RS}_vs_ssd"} <= set(summary["deltas"])
    assert "ci" in json.dumps(summary["deltas"][f"{RS}_vs_ssd"])
    records = ledger.read_ledger(run)
    mine = {(x["stage"], x["arm"]) for x in records}
    assert {("sampling", f"{RS}:samples"), ("scoring", f"{RS}:scoring"), ("training", RS)} <= mine
    assert "scoring" in summary["costs"]["totals"]["stages"]
    expected = ledger.arm_hours(records, {RS, f"{RS}:samples", f"{RS}:scoring"})
    assert summary["costs"]["arms"][RS]["hours_to_produce"] == pytest.approx(expected)
    assert summary["costs"]["arms"][RS]["hours_to_produce"]["wall_s"] > \
        ledger.arm_hours(records, {RS})["wall_s"]  # its draw and scoring count, not only its training
    report = result.report_md.read_text()
    assert "a comparator, not SSD" in report and "rejection-sampling SFT vs minimal SSD" in report

    n_before = len(records)  # run again: nothing finished is redone
    run_all(check_spec(rs_spec(tmp_path)), run, limit=None, force=True, progress_factory=fakes, say=lambda *a: None)
    again = ledger.read_ledger(run)[n_before:]
    assert not [x for x in again if x["arm"].startswith(RS) or x["stage"] in ("sampling", "scoring", "training")]
