"""Deliverable D reads the lift two ways, side by side (the strategy's non-overlap rule decides; the paired
delta's CI is shown), and says whether the gate's settings were sealed before training."""

import json
import re
import shutil

from selfdistill.report import render_report
from selfdistill.spec import TrainSpec

CI = r"[+-]\d+\.\d pp \[[+-]\d+\.\d, [+-]\d+\.\d\] \(n=\d+\)"


def _gate_md(run) -> str:
    md, _ = render_report(run)
    return md.read_text().split("## D.")[1].split("## E.")[0]


def test_the_gate_section_shows_the_deciding_rule_and_the_paired_ci_beside_it(full_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(full_run, run)
    gate = _gate_md(run)
    lines = [x for x in gate.splitlines() if x.startswith("Lift, two readings.")]
    assert len(lines) == 2  # the primary arm and the verifier arm's own gate
    for line in lines:
        assert "**The strategy's rule (decides)**" in line and "**The paired delta (shown, does not decide)**" in line
        assert re.search(CI + r", its CI (excludes|includes) 0", line)
    assert "manifest.json records no sealed gate settings" in gate
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["gate"] = {"values": {"min_lift_pp": 3.0}, "sha256": "ab12" * 16}
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert "sealed into manifest.json before training (sha256 ab12ab12ab12…)" in _gate_md(run)


def test_the_training_table_says_how_many_samples_were_cut_off_and_what_was_done(full_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(full_run, run)
    summary = json.loads((run / "round1" / "round.json").read_text())
    summary["training"]["ssd"]["truncated"] = {"policy": "train-no-eos", "n_kept": 380, "n_truncated": 5,
                                               "truncated_share": 5 / 380, "n_excluded": 0, "n_trained_without_end": 5}
    (run / "round1" / "round.json").write_text(json.dumps(summary))
    md = render_report(run)[0].read_text()
    row = next(x for x in md.splitlines() if x.startswith("| ssd | sft | lora |"))
    assert "5 of 380 (1.3%), trained without the end token" in row
    assert "not recorded" in next(x for x in md.splitlines() if x.startswith("| verifier | sft | lora |"))


def test_the_training_table_names_each_arms_algorithm_and_its_own_learning_rate(full_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(full_run, run)
    summary = json.loads((run / "round1" / "round.json").read_text())
    summary["training"]["verifier"] |= {"algorithm": "dpo", "learning_rate": 5e-6}  # DPO's own rate, not [train]'s
    (run / "round1" / "round.json").write_text(json.dumps(summary))
    lines = render_report(run)[0].read_text().splitlines()
    sft_lr = TrainSpec.model_validate(json.loads((run / "manifest.json").read_text())["spec"]["train"]).lr
    assert next(x for x in lines if x.startswith("| verifier |")).startswith("| verifier | dpo | lora | 5e-06 |")
    assert next(x for x in lines if x.startswith("| ssd |")).startswith(f"| ssd | sft | lora | {sft_lr:g} |")
