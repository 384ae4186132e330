"""The GRPO training job on a tiny Qwen2 model built here: a REAL GRPOTrainer rewarded by the real sandbox,
writing train.json, adapter/, merged/ and rewards.jsonl; a finished or resumed job re-runs no rollout."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

from selfdistill.errors import DataError  # noqa: E402
from selfdistill.generate.prompts import build_prompt  # noqa: E402
from selfdistill.spec import TrainSpec  # noqa: E402
from selfdistill.tasks.problem import AssertTests, Problem  # noqa: E402
from selfdistill.train.finetune import job_record  # noqa: E402
from selfdistill.train.grpo import load_prompts, run_job  # noqa: E402
from selfdistill.train.reward import problem_record  # noqa: E402
from tests.generate.tiny_models import write_tiny_hf  # noqa: E402

# p/0's tests pass whatever the program (reward 1), p/1's need a function the tiny model never writes (reward 0)
PROBLEMS = [Problem("p/0", "Write anything.", AssertTests("assert True\n"), "pool"),
            Problem("p/1", "Write f1(x) returning x.", AssertTests("assert f1(1) == 1\n"), "pool", entry_point="f1")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_hf(tmp_path_factory.mktemp("tiny") / "model")


def grpo_job(tiny: Path, tmp_path: Path, steps: int = 2) -> dict:
    rows = [{"prompt": list(build_prompt(p, True)), "task_id": p.task_id, "problem": problem_record(p)}
            for p in PROBLEMS]
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = TrainSpec(lora_r=4, lora_alpha=8, batch_size=2, per_device_batch_size=2, save_steps=1, learning_rate=1e-3)
    job = job_record(str(tiny), tmp_path / "prompts.jsonl", cfg, tmp_path / "out", chat=True, algorithm="grpo")
    job["settings"] = settings(steps)
    return job


def settings(steps: int = 2) -> dict:
    """job.json's settings as ssd/rl.py writes them: group 2, a few tokens, one sandbox worker."""
    return {"grpo": {"group": 2, "steps": steps, "beta": 0.0, "max_new_tokens": 8, "temperature": 1.0, "top_p": 1.0,
                     "top_k": 0, "min_p": 0.0, "use_vllm": False},
            "reward": {"timeout_s": 5, "memory_mb": 512, "workers": 1}}


def test_a_real_grpo_job_trains_rewards_saves_and_does_not_rerun(tiny, tmp_path):
    from transformers import AutoModelForCausalLM

    job = grpo_job(tiny, tmp_path)
    out = Path(job["out_dir"])
    record = run_job(job)
    assert record["algorithm"] == "grpo" and record["optimizer_steps"] == 2 and record["finite"]
    assert (record["group"], record["steps"], record["completions_per_step"]) == (2, 2, 2)
    assert record["device"] == "cpu" and record["device_count"] == 1 and record["effective_batch"] == 2
    assert len(record["loss_curve"]) == 2 and len(record["reward_curve"]) == 2
    rewards = [json.loads(x) for x in (out / "rewards.jsonl").read_text().splitlines()]
    assert len(rewards) == 2 * 2  # 2 steps x 1 prompt x a group of 2
    assert {r["step"] for r in rewards} == {0, 1} and all(r["status"] != "infra" for r in rewards)
    for r in rewards:  # the reward follows the prompt's tests
        assert r["reward"] == (1.0 if r["task_id"] == "p/0" else 0.0)
    assert record["mean_reward"] == pytest.approx(sum(r["reward"] for r in rewards) / len(rewards))
    sandbox = record["sandbox"]
    assert sandbox["programs"] == 4 and sandbox["infra"] == 0 == record["infra"] and sandbox["wall_s"] > 0
    assert sandbox["isolation"]["mode"] in ("root", "userns", "none")
    assert (out / "adapter" / "adapter_config.json").exists()
    AutoModelForCausalLM.from_pretrained(record["merged"])  # a transformers directory export/eval load
    assert lora_b_max(out) == 0.0  # every group's rewards were equal: no advantage, no update (LoRA B stays 0)

    assert run_job(job) == json.loads((out / "train.json").read_text())  # done: not run again
    (out / "train.json").unlink()  # as if killed after the last checkpoint
    again = run_job(job)
    assert again["resumed_from"].endswith("checkpoint-2") and again["optimizer_steps"] == 2
    assert len((out / "rewards.jsonl").read_text().splitlines()) == 4  # no rollout was drawn or scored again
    assert again["sandbox"]["programs"] == 0


def lora_b_max(out: Path) -> float:
    from safetensors.torch import load_file

    weights = load_file(out / "adapter" / "adapter_model.safetensors")
    return max(float(w.abs().max()) for k, w in weights.items() if "lora_B" in k)


def test_rewards_that_differ_within_a_group_move_the_weights(tiny, tmp_path):
    import shutil

    from tests.ssd.round_fixtures import favour_newlines

    model = favour_newlines(Path(shutil.copytree(tiny, tmp_path / "model")))  # many lines: some parse, some not
    problems = [Problem(f"p/{i}", f"x = {i}\n# ", AssertTests("assert x >= 0\n"), "pool", prefix=f"x = {i}\n# ")
                for i in range(2)]  # base-model continuations: a comment, then whatever the model writes
    (tmp_path / "plain.jsonl").write_text("".join(json.dumps({"prompt": p.prompt, "task_id": p.task_id,
                                                              "problem": problem_record(p)}) + "\n"
                                                  for p in problems))
    cfg = TrainSpec(lora_r=4, lora_alpha=8, batch_size=4, per_device_batch_size=4, save_steps=1, learning_rate=1e-2)
    job = job_record(str(model), tmp_path / "plain.jsonl", cfg, tmp_path / "out", chat=False, algorithm="grpo")
    job["settings"] = settings()
    job["settings"]["grpo"] |= {"group": 4, "max_new_tokens": 4}
    record = run_job(job)
    rewards = [json.loads(x) for x in (tmp_path / "out" / "rewards.jsonl").read_text().splitlines()]
    by_step = {s: {r["reward"] for r in rewards if r["step"] == s} for s in (0, 1)}
    assert any(v == {0.0, 1.0} for v in by_step.values())  # some group had passing and failing programs
    assert 0 < record["mean_reward"] < 1 and record["finite"]
    assert lora_b_max(tmp_path / "out") > 0  # so GRPO's advantage moved the adapter


def test_the_prompts_file_is_checked(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "task_id": "t"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:1: a GRPO prompt needs"):
        load_prompts(bad)
    bad.write_text("")
    with pytest.raises(DataError, match="holds no prompts"):
        load_prompts(bad)


def test_the_job_cli_exits_2_with_one_message(tmp_path):
    job = tmp_path / "job.json"
    record = grpo_job(Path("unused"), tmp_path) | {"examples": str(tmp_path / "missing.jsonl")}
    job.write_text(json.dumps(record, default=str))
    proc = subprocess.run([sys.executable, "-m", "selfdistill.train.grpo", str(job)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "missing.jsonl" in proc.stderr


def test_the_sandbox_starts_before_the_model_and_closes_after(tmp_path, monkeypatch):
    from selfdistill.train import finetune, grpo

    seen = {}

    def fake_build(job, rows, reward):  # where the model would be loaded: the sandbox is already up
        seen["pids"] = pids = reward.pool.worker_pids()
        seen["fresh"] = all(b"selfdistill.execute.worker" in Path(f"/proc/{p}/cmdline").read_bytes() for p in pids)
        return None, None, None

    def fake_run(job, *, load, build, extra):  # finetune's job, without training
        build(job, load(Path(job["examples"])))
        return {"finite": True}

    monkeypatch.setattr(grpo, "build_trainer", fake_build)
    monkeypatch.setattr(finetune, "run_job", fake_run)
    assert run_job(grpo_job(Path("unused"), tmp_path)) == {"finite": True}
    assert seen["pids"] and seen["fresh"]  # live workers, fresh interpreters (not forks of this process)
    assert not any(Path(f"/proc/{p}").exists() for p in seen["pids"])  # closed at the end


def test_a_mostly_infra_batch_stops_the_real_job_with_exit_2(tiny, tmp_path, monkeypatch, capsys):
    from selfdistill.execute import pool as sandbox
    from selfdistill.execute.outcome import Outcome, Status
    from selfdistill.train import grpo

    class BrokenSandbox:  # every worker dies on every job: a harness fault, never the model's
        n_workers, isolation = 1, {"mode": "broken"}

        def __init__(self, workers):
            self.closed = False

        def start(self):
            pass

        def close(self):
            self.closed = True

        def worker_pids(self):
            return []

        def imap(self, jobs):
            return (Outcome(j.job_id, Status.INFRA, "worker died", 0.0) for j in jobs)

    monkeypatch.setattr(sandbox, "SandboxPool", BrokenSandbox)
    job = grpo_job(tiny, tmp_path)
    (tmp_path / "job.json").write_text(json.dumps(job, default=str))
    assert grpo.main([str(tmp_path / "job.json")]) == 2
    err = capsys.readouterr().err
    assert "2 of the 2 programs of GRPO step 0 ended infra" in err and "Traceback" not in err
    assert not (Path(job["out_dir"]) / "train.json").exists()
    rows = [json.loads(x) for x in (Path(job["out_dir"]) / "rewards.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["infra", "infra"] and all(r["reward"] is None for r in rows)
