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
    ("pool-is-heldout", "[pool]\ntests_available = true", '[pool]\ntests_available = true\nsource = "humaneval"'),
    ("no-pass-at-k", "k = [1, 4, 8, 16]", 'k = [1]\nlower_k_reason = "cheap"'),
    ("rounds-without-gate", "[pool]", "[ssd]\nround = 2\n[gate]\nenabled = false\n[pool]"),
    ("filtered-minimal", "[pool]", '[ssd]\nminimal_filter = ["degeneracy", "tests"]\n[pool]'),
    ("safety-probe-off", "[pool]", "[battery]\nsafety_probe = false\n[pool]"),
    ("anchor-above-20", "[pool]", '[train]\nanchor_data = "a.jsonl"\nanchor_ratio = 0.3\n[pool]'),
    ("low-rank-lora", "[pool]", "[train]\nlora_r = 8\n[pool]"),
    ("round2-promotion", "[pool]", "[promotion]\ncandidate_round = 2\n[pool]"),
]


def write(tmp_path: Path, old: str, new: str) -> Path:
    (tmp_path / "a.jsonl").write_text(json.dumps({"prompt": "p", "completion": "c"}) + "\n")
    text = QUICKSTART.read_text()
    assert old in text
    path = tmp_path / "spec.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_the_quickstart_has_no_antipattern():
    assert find_antipatterns(load_spec(QUICKSTART)) == []


@pytest.mark.parametrize(("code", "old", "new"), CASES, ids=[c[0] for c in CASES])
def test_each_antipattern_is_flagged_with_its_reason(tmp_path, code, old, new):
    path = write(tmp_path, old, new)
    found = find_antipatterns(load_spec(path))
    assert [a.code for a in found] == [code]
    with pytest.raises(SpecError, match=rf"\[{code}\]"):
        check_spec(path)


def test_all_at_once_are_listed_together_and_exit_2(tmp_path):
    text = QUICKSTART.read_text().replace("[pool]", "[battery]\nsafety_probe = false\n[train]\nlora_r = 4\n[pool]", 1)
    path = tmp_path / "spec.toml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "selfdistill", "check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "2 anti-patterns" in proc.stderr and "[safety-probe-off]" in proc.stderr and "[low-rank-lora]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_pilot_justifies_a_low_rank_and_a_passed_gate_a_round2_candidate(tmp_path):
    path = write(tmp_path, "[pool]", '[train]\nlora_r = 8\npilot = "full fine-tune pilot, runs/pilot"\n[pool]')
    assert find_antipatterns(load_spec(path)) == []
    path = write(tmp_path, "[pool]", "[promotion]\ncandidate_round = 2\n[pool]")
    run = tmp_path / "run"
    (run / "round1").mkdir(parents=True)
    (run / "round1" / "gate.json").write_text(json.dumps({"decision": "STOP"}))
    assert [a.code for a in find_antipatterns(load_spec(path), run)] == ["round2-promotion"]
    (run / "round1" / "gate.json").write_text(json.dumps({"decision": "ENTER"}))
    assert find_antipatterns(load_spec(path), run) == []
