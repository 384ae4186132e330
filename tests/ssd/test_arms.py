"""Arms are data: a new arm that trains by SFT is one registry entry plus its selection function, and the
round plans, trains, summarizes, costs, probes and reports it with no other change. The round's modules
import without a cycle and without private names."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert summary["arm_records"]["first"]["colour"] == "#c44e52"
    assert summary["arm_titles"]["first"] == "first sample per prompt"
    assert summary["deltas"]["first_vs_ssd"]["title"] == "first-sample vs minimal SSD"
    examples = (run / "round1" / "train-first" / "examples.jsonl").read_text().splitlines()
    assert len(examples) == len({json.loads(e)["task_id"] for e in examples}) > 0
    assert json.loads((run / "round1" / "train-first" / "job.json").read_text())["algorithm"] == "sft"
    assert "first" in summary["costs"]["arms"]
    assert "first" in json.loads((run / "round1" / "battery.json").read_text())["arms"]
    assert "first-sample vs minimal SSD" in result.report_md.read_text()


def test_no_module_imports_the_round_entry_points_or_a_private_name():
    """round.py (round 1) and round2.py are entry points: no other ssd/ module imports them (the cycles round
    <-> round2 <-> promotion and round <-> probe are gone); no selfdistill module imports another's private
    name (a `_name`, or a `_module`)."""
    entry = re.compile(r"selfdistill\.ssd\.round2?\b|from selfdistill\.ssd import [\w, ]*\bround2?\b")
    private = re.compile(r"from selfdistill(\.\w+)*\._\w+ import|from selfdistill(\.\w+)* import (\w+, )*_[a-z]\w*")
    package = Path(arms.__file__).parents[1]
    for path in package.rglob("*.py"):
        text = path.read_text()
        assert path.parent.name != "ssd" or path.stem in ("round", "round2") or not entry.search(text), path
        assert not private.search(text), path


@pytest.mark.parametrize("module", ["arms", "distill", "summary", "probe", "gate", "promotion", "round2", "round"])
def test_each_ssd_module_imports_first_in_a_fresh_interpreter(module):
    """An import cycle shows when one of its modules is imported first; here each one is."""
    done = subprocess.run([sys.executable, "-c", f"import selfdistill.ssd.{module}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
