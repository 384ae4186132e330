"""Arms are data: a new arm that trains by SFT is one registry entry plus its selection function, and the
round plans, trains, summarizes, costs and reports it with no other change; the round's import graph has no
cycle."""

import json
import subprocess
import sys

from selfdistill.checks import check_spec
from selfdistill.pipeline import run_all
from selfdistill.ssd import arms
from tests.ssd.round_fixtures import make_spec


def first_sample_per_prompt(samples, passed):
    """A made-up arm for this test: one kept sample per pool prompt."""
    seen, out = set(), []
    for s in arms.kept(samples, passed):
        if s["task_id"] not in seen:
            seen.add(s["task_id"])
            out.append(s)
    return out


def test_a_new_sft_arm_is_one_registry_entry(fakes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    spec = make_spec(tmp_path, model, extra='[battery]\nprobe_samples = 1\n')
    spec.write_text(spec.read_text().replace('verifier_arm = "on"', 'verifier_arm = "off"'))
    monkeypatch.setitem(arms.ARMS, "first", arms.Arm(
        "first", "first sample per prompt", first_sample_per_prompt, colour="#c44e52",
        deltas_against=(("base", "first-sample SSD vs base"), ("ssd", "first-sample vs minimal SSD"))))
    run = tmp_path / "run"
    result = run_all(check_spec(spec), run, limit=None, force=True, progress_factory=fakes, say=lambda *a: None)
    summary = json.loads((run / "round1" / "round.json").read_text())
    assert summary["arms"] == ["ssd", "first"]
    assert summary["arm_records"]["first"]["colour"] == "#c44e52" and summary["arm_titles"]["first"] == "first sample per prompt"
    assert summary["deltas"]["first_vs_ssd"]["title"] == "first-sample vs minimal SSD"
    examples = (run / "round1" / "train-first" / "examples.jsonl").read_text().splitlines()
    assert len(examples) == len({json.loads(e)["task_id"] for e in examples}) > 0
    assert json.loads((run / "round1" / "train-first" / "job.json").read_text())["algorithm"] == "sft"
    assert "first" in summary["costs"]["arms"] and "first" in json.loads((run / "round1" / "battery.json").read_text())["arms"]
    assert "first-sample vs minimal SSD" in result.report_md.read_text()


def test_the_round_modules_import_each_other_without_a_cycle():
    """Each ssd/ module imports alone, first, in a fresh interpreter (a cycle hidden in a function would
    still pass this; the structure test is that no ssd module imports the round-1 or round-2 module)."""
    code = ("import importlib, sys\n"
            "for m in ['distill', 'summary', 'arms', 'probe', 'gate', 'promotion', 'round2', 'round']:\n"
            "    importlib.import_module('selfdistill.ssd.' + m)\n")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0
    import pathlib
    import re

    ssd = pathlib.Path(arms.__file__).parent
    for path in ssd.glob("*.py"):
        text = path.read_text()
        if path.stem not in ("round", "round2"):
            assert not re.search(r"selfdistill\.ssd\.round2?\b|from selfdistill\.ssd import [\w, ]*\bround2?\b", text), path
        assert not re.search(r"import _\w+|from \S+\._\w+ import|import \S+\._\w+", text), path  # no private names
