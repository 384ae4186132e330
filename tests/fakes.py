"""A fake generation backend and a fake training job, registered like the real ones (the backends dict,
the training-job runners), so a whole round runs in this process in seconds: no engine, no TRL, no
training subprocess. Generated programs are still scored in the sandbox.

The fake model's skill grows with its generation (the base is 0; the fake job writes its parent's + 1 into
merged/config.json), so a distilled arm answers more held-out samples right than its parent: deltas have a
sign to check. Draws depend on the generation, task, sample and seed only, not on paths: runs repeat.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

from selfdistill.generate.base import GenResult

ANSWERS = {"double": "x * 2", "square": "x * x", "cube": "x ** 3"}  # tests/ssd/round_fixtures.py HELDOUT
BASE_SKILL, SKILL_PER_ROUND = 0.1, 0.45


def _draw(*parts: object) -> float:
    """A deterministic uniform draw in [0, 1) from the parts."""
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _text(prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)


def generation_of(model: str) -> int:
    """How many fake fine-tunings lie behind `model` (0: not a fake job's output)."""
    config = Path(model) / "config.json"
    return json.loads(config.read_text()).get("generation", 0) if config.is_file() else 0


class FakeBackend:
    """Answers held-out functions (right with probability = its skill), pool prompts with multi-line code,
    and anything else (safety probes) with a refusal."""

    name = "fake"

    def __init__(self, model: str, *, chat: bool, batch_size: int = 1, n_ctx: int = 0):
        self.model, self.chat = model, chat
        self.generation = generation_of(model)
        self.skill = min(1.0, BASE_SKILL + SKILL_PER_ROUND * self.generation)
        self.requests: list = []

    def generate(self, requests, params):
        for r in requests:
            self.requests.append(r)
            text = self.answer(_text(r.prompt), r.task_id, r.sample_idx, r.seed)
            yield GenResult(r.task_id, r.sample_idx, r.seed, text, "stop", len(text.split()), 20)

    def answer(self, prompt: str, task_id: str, sample_idx: int, seed: int) -> str:
        if m := re.search(r"def (\w+)\(x\)", prompt):
            right = _draw(self.generation, task_id, sample_idx, seed) < self.skill
            body = ANSWERS.get(m.group(1), "x") if right else "None"
            return f"Here it is:\n```python\ndef {m.group(1)}(x):\n    return {body}\n```\n"
        if m := re.search(r"function flaky_(\d+)\(", prompt):  # right about half the time, per sample
            i, right = int(m.group(1)), _draw(self.generation, task_id, sample_idx, seed, "flaky") < 0.5
            return f"```python\ndef flaky_{i}():\n    return {i + 1 if right else i}\n```\nIt returns {i + 1}.\n"
        if m := re.search(r"function (\w+)_(\d+)\(", prompt):
            name, i = m.groups()
            value = int(i) + 1 if name == "number" else f"x * {i}"
            args = "" if name == "number" else "x"
            return f"```python\ndef {name}_{i}({args}):\n    return {value}\n```\nIt returns {value}.\n"
        return "I can't help with that."

    def describe(self) -> dict:
        return {"engine": "fake", "model": self.model, "skill": self.skill}

    def close(self) -> None:
        pass


def main(argv: list[str]) -> int:
    """The fake training job (`python -m tests.fakes JOB.json` or in-process): reads the job and its examples,
    writes adapter/ (LoRA), merged/ and train.json as the real job does, weights derived from the examples."""
    from selfdistill.rundir import write_json_atomic
    from selfdistill.train.finetune import DONE, load_examples
    from selfdistill.train.preference import load_pairs  # a "dpo" job trains on preference pairs

    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    out = Path(job["out_dir"])
    if (out / DONE).exists():
        return 0
    examples = load_examples(Path(job["examples"])) if job.get("algorithm") not in ("grpo", "dpo") \
        else grpo_rollouts(job, out) if job["algorithm"] == "grpo" else load_pairs(Path(job["examples"]))
    weights = hashlib.sha256(json.dumps([job["model"], examples]).encode()).digest()
    record = {"merged": str(out / "merged")}
    (out / "merged").mkdir(parents=True, exist_ok=True)
    (out / "merged" / "config.json").write_text(
        json.dumps({"fake": True, "parent": job["model"], "generation": generation_of(job["model"]) + 1}))
    (out / "merged" / "model.safetensors").write_bytes(weights)
    if job["train"]["method"] == "lora":
        (out / "adapter").mkdir(exist_ok=True)
        (out / "adapter" / "adapter_config.json").write_text(json.dumps({"r": job["train"]["lora_r"]}))
        (out / "adapter" / "adapter_model.safetensors").write_bytes(weights[:16])
        record["adapter"] = str(out / "adapter")
    losses = [2.0 / (1 + i) for i in range(len(examples))]
    record |= {
        "method": job["train"]["method"], "resumed_from": None, "n_examples": len(examples),
        "optimizer_steps": len(examples), "epochs": job["train"]["epochs"], "train_loss": sum(losses) / len(losses),
        "loss_first": losses[0], "loss_last": losses[-1], "loss_curve": losses, "wall_s": 0.0, "device": "cpu",
        "device_count": 1, "effective_batch": job["train"]["batch_size"], "precision": "fake", "finite": True,
        "job": job,
    }
    if job.get("algorithm") == "grpo":
        record["sandbox"] = json.loads((out / "sandbox.json").read_text())
        record["infra"] = record["sandbox"]["infra"]
    with (out / "train.log").open("a", encoding="utf-8") as log:
        log.write(f"fake training job: {len(examples)} examples\n")
    write_json_atomic(out / DONE, record)
    return 0


def grpo_rollouts(job: dict, out: Path) -> list[dict]:
    """A fake GRPO job's rollouts: the fake model answers each prompt `group` times, and the REAL sandbox reward
    (train/reward.py, a real SandboxPool) scores them into rewards.jsonl; its totals go to sandbox.json."""
    from selfdistill.execute.pool import SandboxPool
    from selfdistill.train.grpo import load_prompts
    from selfdistill.train.reward import SandboxReward

    rows, settings = load_prompts(Path(job["examples"])), job["settings"]
    model = FakeBackend(job["model"], chat=job["chat"])
    prompts = [r["prompt"] for r in rows for _ in range(settings["grpo"]["group"])]
    completions = [model.answer(_text(p), "grpo", i, 0) for i, p in enumerate(prompts)]
    if job["chat"]:
        completions = [[{"role": "assistant", "content": c}] for c in completions]
    with SandboxPool(workers=1) as pool:
        reward = SandboxReward(pool, chat=job["chat"], timeout_s=settings["reward"]["timeout_s"],
                               memory_mb=settings["reward"]["memory_mb"], log_path=out / "rewards.jsonl")
        rewards = reward(prompts, completions, task_id=[r["task_id"] for r in rows for _ in range(
            settings["grpo"]["group"])], problem=[r["problem"] for r in rows for _ in range(settings["grpo"]["group"])])
        (out / "sandbox.json").write_text(json.dumps(reward.sandbox_record()))
    return [{"prompt": p, "completion": completions[i], "reward": rw} for i, (p, rw) in enumerate(
        zip(prompts, rewards, strict=True))]


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
