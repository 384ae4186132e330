"""The round's orchestration in this process, with the fake engine and training job (tests/fakes.py,
registered by the `fakes` fixture): `selfdistill run`'s stages (precondition, sampling, verification,
training, export, evaluation, battery, gate, promotion, report), resume, and round 2 through a passed gate.
Seconds, no TRL, no training subprocess; the real engine and trainer run in test_round.py (marked slow)."""

import json

import pytest

from selfdistill.checks import check_spec
from selfdistill.errors import DataError
from selfdistill.pipeline import run_all, run_ssd_round
from selfdistill.ssd.distill import RoundRefused
from tests.ssd.round_fixtures import make_spec, write_round2_sources

HEADINGS = ["A. Precondition Verdict", "B. SSD Pipeline Spec", "C. Verifier-Aware Arm Spec", "D. Round-2 Gate",
            "E. Promotion Plan"]


def quiet(*args, **kwargs):
    pass


@pytest.fixture
def spec_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return make_spec(tmp_path, model, extra=write_round2_sources(tmp_path) + "[battery]\nprobe_samples = 1\n")


def ledger(run):
    return [json.loads(line)["stage"] for line in (run / "ledger.jsonl").read_text().splitlines()]


def run_forced(spec_path, run, progress):
    return run_all(check_spec(spec_path), run, limit=None, force=True, progress_factory=progress, say=quiet)


def test_every_stage_runs_in_process_to_the_report(fakes, spec_path, tmp_path):
    run = tmp_path / "run"
    result = run_forced(spec_path, run, fakes)
    assert result.stopped_after_verdict is False
    summary = json.loads((run / "round1" / "round.json").read_text())
    assert summary["arms"] == ["ssd", "verifier"] and summary["forced"] is True
    for arm in ("ssd", "verifier"):
        train_dir = run / "round1" / f"train-{arm}"
        assert json.loads((train_dir / "job.json").read_text())["algorithm"] == "sft"
        assert "fake training job" in (train_dir / "train.log").read_text()  # the fake ran, here
        assert summary["export"][arm]["model"] == str(train_dir / "merged")
        gen = json.loads((run / f"{arm}-T1.1" / "generation.json").read_text())
        assert gen["model"] == str(train_dir / "merged")
    # the fake's distilled model answers more held-out samples right: the paired delta shows it, with its CI
    d = summary["deltas"]["ssd_vs_base"]["overall"]
    assert d["value"] > 0 and d["ci_low"] <= d["value"] <= d["ci_high"]
    assert set(json.loads((run / "round1" / "battery.json").read_text())["arms"]) == {"ssd", "verifier"}
    gate = json.loads((run / "round1" / "gate.json").read_text())
    assert gate["decision"] in {"ENTER", "STOP"} and gate["declared_sha256"]
    assert json.loads((run / "round1" / "promotion.json").read_text())
    md = result.report_md.read_text()
    assert [md.index(h) for h in HEADINGS] == sorted(md.index(h) for h in HEADINGS)
    stages = ledger(run)
    assert stages.count("training") == 2 and stages.count("sampling") == 1


def test_a_finished_run_run_again_redoes_nothing(fakes, spec_path, tmp_path):
    run = tmp_path / "run"
    run_forced(spec_path, run, fakes)
    before, summary = ledger(run), json.loads((run / "round1" / "round.json").read_text())
    run_forced(spec_path, run, fakes)
    assert ledger(run) == before  # no stage ran again
    again = json.loads((run / "round1" / "round.json").read_text())
    assert again["deltas"] == summary["deltas"] and again["training"] == summary["training"]


def test_a_failed_training_job_names_its_log(fakes, spec_path, tmp_path, monkeypatch):
    import tests.fakes

    monkeypatch.setattr(tests.fakes, "main", lambda argv: 1)
    with pytest.raises(DataError, match=r"training the ssd arm failed \(exit 1\).*train\.log"):
        run_forced(spec_path, tmp_path / "run", fakes)


def test_round_2_trains_the_gated_parent(fakes, spec_path, tmp_path):
    run = tmp_path / "run"
    run_forced(spec_path, run, fakes)
    round1 = (run / "round1" / "round.json").read_text()
    spec2 = tmp_path / "spec-round2.toml"
    spec2.write_text(spec_path.read_text().replace('verifier_arm = "on"', 'verifier_arm = "off"\nround = 2'))
    report = check_spec(spec2)
    tag = {"schema": "selfdistill.gate/1"}
    stop = tag | {"decision": "STOP", "arm": "ssd", "reasons": ["lift: no"]}
    (run / "round1" / "gate.json").write_text(json.dumps(stop))
    with pytest.raises(RoundRefused, match="lift: no"):
        run_ssd_round(report.spec, report.heldout, run, limit=None, force=True, progress_factory=fakes, say=quiet)
    (run / "round1" / "gate.json").write_text(json.dumps(tag | {"decision": "ENTER", "arm": "ssd", "reasons": []}))
    r2 = run_ssd_round(report.spec, report.heldout, run, limit=None, force=False, progress_factory=fakes, say=quiet)
    merged = str(run / "round1" / "train-ssd" / "merged")
    assert r2["round"] == 2 and r2["lineage"]["parent_weights"] == merged
    assert r2["lineage"]["parent_checkpoint"].startswith("sha256:") and r2["lineage"]["gate_sha256"]
    assert json.loads((run / "round2" / "train-ssd" / "job.json").read_text())["model"] == merged
    assert json.loads((run / "round2" / "samples" / "generation.json").read_text())["model"] == merged
    assert r2["deltas"]["ssd_vs_parent"]["overall"]["value"] > 0  # one more fine-tuning, one more skill step
    assert (run / "round1" / "round.json").read_text() == round1  # round 1 untouched
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["spec"]["ssd"]["round"] == 1 and manifest["rounds"]["round2"]["spec"]["ssd"]["round"] == 2


def test_round_2_trains_the_ssd_arms_only_when_round_1_measured_a_comparator(fakes, spec_path, tmp_path):
    text = spec_path.read_text().replace('kind = "rejection-sampling-sft"\n',
                                         'kind = "rejection-sampling-sft"\nmeasure = ["rejection-sampling-sft"]\n'
                                         'best_of_n = 2\n')
    spec_path.write_text(text)
    run = tmp_path / "run"
    run_forced(spec_path, run, fakes)
    assert "rejection-sampling-sft" in json.loads((run / "round1" / "round.json").read_text())["arms"]
    spec2 = tmp_path / "spec-round2.toml"
    spec2.write_text(text.replace('verifier_arm = "on"', 'verifier_arm = "off"\nround = 2'))
    report = check_spec(spec2)
    gate = {"schema": "selfdistill.gate/1", "decision": "ENTER", "arm": "ssd", "reasons": []}
    (run / "round1" / "gate.json").write_text(json.dumps(gate))
    said = []
    r2 = run_ssd_round(report.spec, report.heldout, run, limit=None, force=False, progress_factory=fakes,
                       say=lambda *a: said.append(" ".join(map(str, a))))
    assert r2["arms"] == ["ssd"]
    assert not (run / "round2" / "train-rejection-sampling-sft").exists()
    assert not (run / "round2" / "best-of-n").exists()
    assert any("SSD arms only" in line and "rejection-sampling-sft" in line for line in said)
