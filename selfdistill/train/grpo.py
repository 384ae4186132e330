"""The grpo comparator's training job: TRL's GRPOTrainer, rewarded by the sandbox's verdict on the pool's tests.

    python -m selfdistill.train.grpo JOB.json                          # CPU, or one GPU
    accelerate launch --config_file examples/accelerate/zero3.yaml \\
        -m selfdistill.train.grpo JOB.json                             # multi-GPU (each rank its own sandbox)

The round (ssd/rl.py) writes JOB.json with `algorithm = "grpo"`, the prompts file (one row per pool prompt
with tests: the prompt as SSD and evaluation build it, its task id, and its problem as JSON: tests, entry
point, prefix) and `settings`: the `grpo` and `reward` settings from `[comparator]` and `[diagnostics]`.

Order matters: the sandbox pool starts FIRST, before torch and the model are loaded, so its workers are fresh
interpreters and every program is forked from a worker, never from this process (train/reward.py). It lives
for the whole job and closes at the end, after its CPU time is read.

GRPOConfig: num_generations = grpo_group (completions per prompt, the group whose mean and std normalise the
advantages), max_steps = grpo_steps, beta = grpo_beta (TRL's default 0: no reference model), the rollouts
sampled at grpo_temperature with the product's top-p / top-k / min-p, max_completion_length =
grpo_max_new_tokens; per_device_train_batch_size x processes x gradient accumulation = train.batch_size
completions per optimizer step (= train.batch_size / grpo_group prompts); the rest (LoRA or full, lr schedule,
warm-up, seed, save_steps, precision, device) as the SFT job (train/finetune.py). `grpo_use_vllm` turns on
TRL's colocated vLLM generation (GPUs only). Checkpoints every save_steps; a killed job resumes from the last
one; a finished job (train.json exists) is not run again; one launch per output directory (train/launch.py).

Writes adapter/ (LoRA), merged/, rewards.jsonl (every program's outcome) and train.json (finetune's keys plus
the reward curve, group, steps, infra count and the sandbox's seconds). Not here: the reward (train/reward.py),
which prompts it trains on (ssd/rl.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.rundir import read_jsonl, write_json_atomic
from selfdistill.spec import TrainMethod, TrainSpec
from selfdistill.train.finetune import DONE

PROMPT_COLUMNS = ("prompt", "task_id", "problem")


def load_prompts(path: Path) -> list[dict]:
    """The prompts file: {"prompt", "task_id", "problem"} per row (problem: the reward's record, train/reward.py)."""
    rows = []
    for i, row in read_jsonl(path, "GRPO prompts"):
        if not all(k in row for k in PROMPT_COLUMNS) or not isinstance(row["problem"], dict):
            raise DataError(f"error: {path}:{i}: a GRPO prompt needs 'prompt', 'task_id' and 'problem' (a record)")
        prompt = list(row["prompt"]) if isinstance(row["prompt"], list) else row["prompt"]
        rows.append({"prompt": prompt, "task_id": row["task_id"], "problem": json.dumps(row["problem"])})
    if not rows:
        raise DataError(f"error: {path} holds no prompts; the grpo arm needs pool prompts with tests")
    return rows


def rank_suffix() -> str:
    r = int(os.environ.get("RANK", "0"))
    return "" if r == 0 else f".rank{r}"


def grpo_config(job: dict, cfg: TrainSpec, cuda: bool, dtype):
    import trl

    from selfdistill.train.finetune import base_arguments

    g = job["settings"]["grpo"]
    shared = base_arguments(cfg, Path(job["out_dir"]), cuda, dtype, job["settings"].get("learning_rate") or cfg.lr)
    shared.pop("max_length")  # GRPO caps the completion (max_completion_length), not the example
    return trl.GRPOConfig(
        **shared,
        max_steps=g["steps"],
        num_generations=g["group"],
        max_completion_length=g["max_new_tokens"],
        temperature=g["temperature"],
        top_p=g["top_p"],
        top_k=g["top_k"],
        min_p=g["min_p"] or None,
        beta=g["beta"],
        use_vllm=bool(g.get("use_vllm")),
        **({"vllm_mode": "colocate"} if g.get("use_vllm") else {}),
    )


def build_trainer(job: dict, rows: list[dict], reward):
    import torch
    from datasets import Dataset
    from trl import GRPOTrainer

    from selfdistill.train import finetune

    cfg = TrainSpec.model_validate(job["train"])
    cuda, dtype = finetune.device_and_dtype(cfg)
    args = grpo_config(job, cfg, cuda, dtype)
    net, tokenizer = finetune.load_model_and_tokenizer(job["model"],
                                                       torch.float32 if cfg.method is TrainMethod.FULL else dtype)
    trainer = GRPOTrainer(model=net, reward_funcs=[reward], args=args, train_dataset=Dataset.from_list(rows),
                          processing_class=tokenizer, peft_config=finetune.lora_config(cfg))
    return trainer, cfg, tokenizer


def run_job(job: dict) -> dict:
    """The sandbox first, then finetune's job (resume, save, train.json) with GRPO's trainer and fields."""
    from selfdistill.execute.pool import SandboxPool
    from selfdistill.train import finetune
    from selfdistill.train.reward import REWARDS, SandboxReward

    out = Path(job["out_dir"])
    if (out / DONE).exists():  # finished: no sandbox to start
        return json.loads((out / DONE).read_text(encoding="utf-8"))
    rows = load_prompts(Path(job["examples"]))  # bad input fails here, before any process starts
    r = job["settings"]["reward"]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    pool = SandboxPool(workers=r.get("workers") or max(1, (os.cpu_count() or 1) // world))
    pool.start()  # before the model is loaded: the workers are fresh interpreters, not forks of a model holder
    try:
        reward = SandboxReward(pool, chat=job["chat"], timeout_s=r["timeout_s"], memory_mb=r["memory_mb"],
                               log_path=out / (REWARDS.removesuffix(".jsonl") + rank_suffix() + ".jsonl"))
        record = finetune.run_job(job, load=lambda path: rows, build=lambda j, rows: build_trainer(j, rows, reward),
                                  extra=lambda trainer, rows: grpo_fields(job, trainer, reward))
        if not record:  # not the main process: its share of the rewards is in its own files
            write_json_atomic(out / f"sandbox{rank_suffix()}.json", reward.sandbox_record())
        return record
    finally:
        pool.close()


def grpo_fields(job: dict, trainer, reward) -> dict:
    """train.json's GRPO fields beside finetune's: the reward curve, the group and steps, the sandbox's totals."""
    rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    args, sandbox = trainer.args, reward.sandbox_record()
    return {
        "algorithm": "grpo",
        "epochs": trainer.state.epoch,  # passes over the prompts that max_steps came to
        "reward_curve": rewards,  # mean reward per optimizer step (TRL's logged "reward"; infra left out)
        "reward_first": rewards[0] if rewards else None,
        "reward_last": rewards[-1] if rewards else None,
        "mean_reward": sum(rewards) / len(rewards) if rewards else None,
        "group": args.num_generations,
        "steps": job["settings"]["grpo"]["steps"],
        "beta": args.beta,
        "temperature": args.temperature,
        "max_completion_tokens": args.max_completion_length,
        "use_vllm": args.use_vllm,
        "completions_per_step": args.generation_batch_size,
        "sandbox": sandbox,
        "infra": sandbox["infra"],
    }


def main(argv: list[str] | None = None) -> int:
    from selfdistill.train import finetune

    return finetune.main(argv, run_job, "selfdistill.train.grpo")  # exit 2 with one message on bad input


if __name__ == "__main__":
    raise SystemExit(main())
