"""Each anti-pattern the strategy forbids is flagged by `check` with its reason; a clean spec passes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from selfdistill.antipatterns import find_antipatterns
from selfdistill.checks import check_spec
from selfdistill.errors import SpecError
from selfdistill.spec import load_spec

QUICKSTART = Path(__file__).parents[1] / "selfdistill" / "data" / "quickstart.toml"

CASES = [
    ("pool-is-heldout", 'source = "mbpp"', 'source = "humaneval"'),
    ("no-pass-at-k", "k = [1, 4, 8, 16]", 'k = [1]\nlower_k_reason = "cheap"'),
    ("rounds-without-gate", "min_lift_pp = 3.0", "min_lift_pp = 3.0\nenabled = false"),
    ("filtered-minimal", "n_per_prompt = 1", 'n_per_prompt = 1\nminimal_filter = ["degeneracy", "tests"]'),
    ("safety-probe-off", "probe_samples = 1", "probe_samples = 1\nsafety_probe = false"),
    ("anchor-above-20", "save_steps = 4", 'save_steps = 4\nanchor_data = "a.jsonl"\nanchor_ratio = 0.3'),
    ("low-rank-lora", "lora_r = 32", "lora_r = 8"),
    ("round2-promotion", "[gate]", "[promotion]\ncandidate_round = 2\n\n[gate]"),
]
EXTRA = {"rounds-without-gate": ("n_per_prompt = 1", "n_per_prompt = 1\nround = 2")}


def write(tmp_path: Path, old: str, new: str, *more: tuple[str, str]) -> Path:
    (tmp_path / "a.jsonl").write_text(json.dumps({"prompt": "p", "completion": "c"}) + "\n")
    text = QUICKSTART.read_text()
    for a, b in [(old, new), *more]:
        assert a in text
        text = text.replace(a, b, 1)
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_the_quickstart_has_no_antipattern():
    assert find_antipatterns(load_spec(QUICKSTART)) == []


@pytest.mark.parametrize(("code", "old", "new"), CASES, ids=[c[0] for c in CASES])
def test_each_antipattern_is_flagged_with_its_reason(tmp_path, code, old, new):
    path = write(tmp_path, old, new, *([EXTRA[code]] if code in EXTRA else []))
    found = find_antipatterns(load_spec(path))
    assert [a.code for a in found] == [code]
    with pytest.raises(SpecError, match=rf"\[{code}\]"):
        check_spec(path)


def test_all_at_once_are_listed_together_and_exit_2(tmp_path):
    path = write(tmp_path, "probe_samples = 1", "probe_samples = 1\nsafety_probe = false",
                 ("lora_r = 32", "lora_r = 4"))
    proc = subprocess.run([sys.executable, "-m", "selfdistill", "check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "2 anti-patterns" in proc.stderr and "[safety-probe-off]" in proc.stderr and "[low-rank-lora]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_pilot_justifies_a_low_rank_and_a_passed_gate_a_round2_candidate(tmp_path):
    path = write(tmp_path, "lora_r = 32", 'lora_r = 8\npilot = "full fine-tune pilot, runs/pilot"')
    assert find_antipatterns(load_spec(path)) == []
    path = write(tmp_path, "[gate]", "[promotion]\ncandidate_round = 2\n\n[gate]")
    run = tmp_path / "run"
    (run / "round1").mkdir(parents=True)
    (run / "round1" / "gate.json").write_text(json.dumps({"decision": "STOP"}))
    assert [a.code for a in find_antipatterns(load_spec(path), run)] == ["round2-promotion"]
    (run / "round1" / "gate.json").write_text(json.dumps({"decision": "ENTER"}))
    assert find_antipatterns(load_spec(path), run) == []
