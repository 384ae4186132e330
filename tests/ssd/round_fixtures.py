"""The round tests' inputs: a three-problem held-out set, a five-prompt pool (two with tests that always
pass, so the verifier arm has examples), the spec that runs them, round-2 sources and the CLI runner."""

import json
import subprocess
import sys
from pathlib import Path

HELDOUT = [
    {"task_id": f"h/{name}", "prompt": f"def {name}(x):\n    \"\"\"Return {doc}.\"\"\"\n",
     "prefix": f"def {name}(x):\n    \"\"\"Return {doc}.\"\"\"\n", "entry_point": name,
     "tests": f"def check(candidate):\n    assert candidate(3) == {val}\n", "difficulty": diff}
    for name, doc, val, diff in [("double", "twice x", 6, "easy"), ("square", "x squared", 9, "medium"),
                                 ("cube", "x cubed", 27, "hard")]
]
POOL = [
    {"task_id": f"p/{i}", "prompt": f"Write a function number_{i}() that returns {i} plus one, then explain it.",
     "tests": "assert True\n" if i < 2 else f"assert number_{i}() == {i + 1}\n"}
    for i in range(5)
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def make_spec(tmp_path: Path, model: Path, *, method: str = "lora", extra: str = "") -> Path:
    write_jsonl(tmp_path / "heldout.jsonl", HELDOUT)
    write_jsonl(tmp_path / "pool.jsonl", POOL)
    text = f"""
[model]
name = "tiny"
path = "{model}"
parameters_b = 0.001
license = "Apache-2.0"
context_length = 512

[task]
languages = ["python"]
distribution = "algorithmic"
product_surface = "test"

[heldout]
task = "heldout.jsonl"

[diagnostics]
n = 4
k = [1, 4]
lower_k_reason = "a unit test"
bootstrap_resamples = 200
timeout_s = 5

[budget]
gpu_hours_sampling = 1
gpu_hours_training = 1
gpu_hours_eval = 1
team_size = 1
latency_to_first_signal_hours = 1

[comparator]
kind = "rejection-sampling-sft"

[failure_cost]
level = "medium"
checkpoint_discipline = "kept"
heldout_blocker = true
rollback = "flip"

[generation]
backend = "hf"
chat = true
temperature = 0.8
max_new_tokens = 24
options = {{ batch_size = 8 }}

[pool]
source = "pool.jsonl"
tests_available = true

[ssd]
t_train = 1.6
t_eval = 1.1
t_eval_sweep = [0.8]
max_new_tokens = 32
verifier_arm = "on"

[train]
method = "{method}"
lora_r = 4
lora_alpha = 8
batch_size = 2
save_steps = 1
learning_rate = 0.001
pilot = "a unit test: rank 4 keeps it fast"
{extra}
"""
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "selfdistill", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def favour_newlines(model_dir: Path) -> Path:
    """Point the newline token's output row along the mean printable row, 20x: about half the positions
    then predict a newline, so samples are multi-line text (the degeneracy filter keeps most of them)."""
    import torch
    from transformers import AutoModelForCausalLM

    from tests.generate.tiny_models import _printable

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():
        rows = [b for b in range(256) if _printable(b) and b != 10]
        model.lm_head.weight[10] = model.lm_head.weight[rows].mean(0) * 20
    model.save_pretrained(model_dir)
    return model_dir


def write_round2_sources(tmp_path: Path) -> str:
    """A fresh round-2 pool and slice, declared in the spec's [gate] from the start (sealed before training)."""
    write_jsonl(tmp_path / "pool2.jsonl", [{"task_id": f"q/{i}", "prompt": f"Write a function twice_{i}(x) "
                                            f"returning x times {i}, then explain it.", "tests": "assert True\n"}
                                           for i in range(3)])
    write_jsonl(tmp_path / "fresh.jsonl", [dict(h, task_id=h["task_id"].replace("h/", "f/"),
                                                prompt=h["prompt"].replace("Return", "Give back"),
                                                prefix=h["prefix"].replace("Return", "Give back"))
                                           for h in HELDOUT[:2]])
    return '[gate]\nround2_pool = "pool2.jsonl"\nround2_heldout = "fresh.jsonl"\n'


def rs_spec(tmp_path: Path, measure='["rejection-sampling-sft"]', n=3) -> Path:
    """A fake-model spec (no verifier arm) whose round measures `measure` with best-of-`n` draws."""
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    spec = make_spec(tmp_path, model, extra="[battery]\nprobe_samples = 1\n")
    text = spec.read_text().replace('verifier_arm = "on"', 'verifier_arm = "off"')
    spec.write_text(text.replace('kind = "rejection-sampling-sft"\n',
                                 f'kind = "rejection-sampling-sft"\nmeasure = {measure}\nbest_of_n = {n}\n'))
    return spec
