"""Multi-process training through `accelerate launch` with examples/accelerate/ddp-cpu.yaml (2 gloo ranks on
CPU), launches that cannot double-train, launcher config paths, and the GPU-only configs validated.

FSDP and DeepSpeed cannot run here: on CPU accelerate runs plain DDP in place of FSDP, and DeepSpeed is
not installed; their configs are parsed and their keys checked against accelerate's own config class
(scripts/gpu_check.sh runs them on a CUDA machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfdistill.spec import TrainSpec
from selfdistill.train.launch import PACKAGED_CONFIGS, hold_output, resolve_launcher

ROOT = Path(__file__).resolve().parents[2]
DDP_CPU = ROOT / "examples" / "accelerate" / "ddp-cpu.yaml"


def accelerate_launch(*args: str) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(DDP_CPU), *args]


def job_file(tmp_path: Path, model: Path, name: str, **train) -> Path:
    from selfdistill.train.finetune import job_record
    from tests.train.examples import write_examples

    cfg = TrainSpec(**({"method": "full", "learning_rate": 1e-3, "batch_size": 8, "per_device_batch_size": 1,
                        "epochs": 3, "warmup_ratio": 0.0, "scheduler": "constant", "save_steps": 1,
                        "device": "cpu"} | train))
    examples = tmp_path / "ex.jsonl"
    if not examples.exists():
        write_examples(examples, n=8)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(job_record(str(model), examples, cfg, tmp_path / name, chat=True)))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    pytest.importorskip("trl")
    pytest.importorskip("accelerate")
    from tests.generate.tiny_models import write_tiny_hf

    return write_tiny_hf(tmp_path_factory.mktemp("tiny") / "model")


def run(command: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=240, **kw)


# --- two ranks train as one process does ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_ranks_split_the_data_and_reproduce_the_single_process_run(tiny, tmp_path):
    """Every optimizer step covers all 8 examples (batch 8): 1 process x 8 accumulation steps and 2 ranks x 4
    see the same examples per step, so the loss curves must agree to float precision."""
    from transformers import AutoModelForCausalLM

    single = job_file(tmp_path, tiny, "single")
    ddp = job_file(tmp_path, tiny, "ddp")
    probe = run(accelerate_launch(str(ROOT / "tests" / "train" / "ddp_probe.py"), str(ddp), str(tmp_path)))
    assert probe.returncode == 0, probe.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    seen = [set(r["seen"]) for r in ranks]
    assert len(ranks[0]["seen"]) == len(ranks[1]["seen"]) == 4  # one epoch, no example repeated on a rank
    assert not seen[0] & seen[1] and seen[0] | seen[1] == {f"Write f{i}" for i in range(8)}

    done = run(accelerate_launch("-m", "selfdistill.train.finetune", str(ddp)))
    assert done.returncode == 0, done.stderr[-3000:]
    assert run([sys.executable, "-m", "selfdistill.train.finetune", str(single)]).returncode == 0
    one, two = (json.loads((tmp_path / name / "train.json").read_text()) for name in ("single", "ddp"))
    assert (two["device_count"], two["effective_batch"], one["effective_batch"]) == (2, 8, 8)
    assert two["optimizer_steps"] == one["optimizer_steps"] == 3
    assert two["loss_curve"] == pytest.approx(one["loss_curve"], rel=1e-4)
    assert sorted(p.name for p in (tmp_path / "ddp").glob("train.json*")) == ["train.json"]
    AutoModelForCausalLM.from_pretrained(tmp_path / "ddp" / "merged")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_killed_launcher_takes_its_workers_along_and_a_second_launch_is_refused(tiny, tmp_path):
    job = job_file(tmp_path, tiny, "job", epochs=200, save_steps=5)
    out = tmp_path / "job"
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(accelerate_launch("-m", "selfdistill.train.finetune", str(job)), cwd=ROOT,
                             stdout=log, stderr=subprocess.STDOUT)
    workers = wait_for_workers(out, first, tmp_path / "first.log")
    wait_for(lambda: any((out / "checkpoints").glob("checkpoint-*")), "a first checkpoint", first)

    second = run(accelerate_launch("-m", "selfdistill.train.finetune", str(job)))
    assert second.returncode != 0
    assert "another training job is running in" in second.stdout + second.stderr
    assert first.poll() is None  # the first launch is unharmed

    first.send_signal(signal.SIGKILL)
    first.wait()
    wait_for(lambda: not any(alive(pid) for pid in workers), "the orphaned workers to end", None, timeout_s=30)
    assert not (out / "train.json").exists()

    job_short = json.loads(job.read_text())
    job_short["train"]["epochs"] = 12  # the rerun finishes soon: it resumes past the checkpoint it finds
    job.write_text(json.dumps(job_short))
    again = run(accelerate_launch("-m", "selfdistill.train.finetune", str(job)))
    assert again.returncode == 0, again.stderr[-3000:]
    record = json.loads((out / "train.json").read_text())
    assert record["resumed_from"] and record["device_count"] == 2


def wait_for_workers(out: Path, launcher: subprocess.Popen, log: Path) -> list[int]:
    def pids():
        found = []
        for rank in (0, 1):
            try:
                found.append(int((out / "locks" / f"rank{rank}.lock").read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                return None
        return found

    wait_for(lambda: pids() is not None, f"both ranks to lock (log: {log})", launcher)
    return pids()


def wait_for(condition, what: str, proc: subprocess.Popen | None, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the launch ended (exit {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead
        return f.read().split(") ")[1][0] != "Z"


# --- the pieces, fast ---------------------------------------------------------------------------

CHILD = """
import sys, time
from selfdistill.train.launch import die_with_parent
die_with_parent()
print("ready", flush=True)
time.sleep(60)
"""


def test_a_process_that_asked_dies_with_its_parent(tmp_path):
    parent_code = (
        "import subprocess, sys; "
        f"c = subprocess.Popen([sys.executable, '-c', {CHILD!r}], stdout=subprocess.PIPE, text=True); "
        "c.stdout.readline(); print(c.pid, flush=True); import time; time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    child = int(parent.stdout.readline())
    assert alive(child)
    parent.kill()
    parent.wait()
    wait_for(lambda: not alive(child), "the child to end with its parent", None, timeout_s=10)


def test_a_held_output_directory_refuses_another_holder_and_is_released_after(tmp_path):
    probe = ("import sys; from pathlib import Path; from selfdistill.train.launch import hold_output\n"
             "with hold_output(Path(sys.argv[1])): print('held')")
    with hold_output(tmp_path) as lock:
        assert lock.read_text().strip() == str(os.getpid())
        other = run([sys.executable, "-c", probe, str(tmp_path)])
        assert other.returncode != 0 and "another training job is running" in other.stderr
        assert f"pid {os.getpid()}" in other.stderr
    assert run([sys.executable, "-c", probe, str(tmp_path)]).stdout.strip() == "held"


def test_other_ranks_of_one_launch_do_not_refuse_each_other(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    with hold_output(tmp_path):
        monkeypatch.setenv("RANK", "1")
        with hold_output(tmp_path) as lock:
            assert lock.name == "rank1.lock"


def test_launcher_config_paths_are_relative_to_the_spec_then_packaged(tmp_path):
    (tmp_path / "mine.yaml").write_text("distributed_type: MULTI_GPU\n")
    argv = ["accelerate", "launch", "--config_file", "mine.yaml"]
    assert resolve_launcher(argv, tmp_path) == (argv[:3] + [str(tmp_path / "mine.yaml")], [])
    resolved, problems = resolve_launcher(["accelerate", "launch", "--config_file=examples/accelerate/zero3.yaml"],
                                          tmp_path)
    assert resolved[2] == f"--config_file={PACKAGED_CONFIGS / 'zero3.yaml'}" and problems == []
    _, problems = resolve_launcher(["accelerate", "launch", "--config_file", "nowhere.yaml"], tmp_path)
    assert "'nowhere.yaml': no such file" in problems[0] and "ddp-cpu.yaml, fsdp.yaml, zero3.yaml" in problems[0]


def test_a_spec_resolves_its_launcher_config_or_says_what_is_missing(tmp_path):
    from selfdistill.errors import SpecError
    from selfdistill.spec import load_spec

    src = (ROOT / "examples" / "ssd-cpu.toml").read_text(encoding="utf-8")
    if "[train]" not in src:
        pytest.skip("examples/ssd-cpu.toml has no [train] section to extend")
    for name in ("ssd-cpu.toml",):
        shutil.copy(ROOT / "examples" / name, tmp_path / name)
    spec_path = tmp_path / "ssd-cpu.toml"
    launcher = 'launcher = ["accelerate", "launch", "--config_file", "examples/accelerate/ddp-cpu.yaml"]\n'
    spec_path.write_text(src.replace("[train]\n", "[train]\n" + launcher, 1), encoding="utf-8")
    try:
        spec = load_spec(spec_path)
    except SpecError as exc:  # the example names other files relative to examples/: not this test's point
        if "launcher" in str(exc):
            raise
        pytest.skip(f"the copied example needs its neighbours: {exc}")
    assert spec.train.launcher[-1] == str(PACKAGED_CONFIGS / "ddp-cpu.yaml")
    spec_path.write_text(src.replace("[train]\n", "[train]\n" + launcher.replace("ddp-cpu", "nope"), 1))
    with pytest.raises(SpecError, match="train.launcher --config_file 'examples/accelerate/nope.yaml': no such"):
        load_spec(spec_path)


@pytest.mark.parametrize("name, kind",
                         [("ddp-cpu.yaml", "MULTI_GPU"), ("fsdp.yaml", "FSDP"), ("zero3.yaml", "DEEPSPEED")])
def test_the_shipped_accelerate_configs_parse_with_known_keys(name, kind):
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import ClusterConfig

    assert (ROOT / "examples" / "accelerate" / name).resolve() == PACKAGED_CONFIGS / name
    config = ClusterConfig.from_yaml_file(PACKAGED_CONFIGS / name)  # refuses unknown keys
    assert str(getattr(config.distributed_type, "value", config.distributed_type)) == kind and config.num_processes >= 2
    if kind == "MULTI_GPU":
        assert config.use_cpu is True and getattr(config.mixed_precision, "value", config.mixed_precision) == "no"
    if kind == "FSDP":
        fsdp = config.fsdp_config
        assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT"
        assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
        assert getattr(config.mixed_precision, "value", config.mixed_precision) == "bf16"
    if kind == "DEEPSPEED":
        ds = config.deepspeed_config
        assert ds["zero_stage"] == 3 and ds["zero3_save_16bit_model"] is True and ds["zero3_init_flag"] is True
        assert getattr(config.mixed_precision, "value", config.mixed_precision) == "bf16"

