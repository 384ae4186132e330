"""The grpo comparator arm's side of the round: its training prompts, its job settings, its reward cost.

    grpo    RL with a verifier: TRL's GRPOTrainer on the pool prompts with tests, each completion rewarded by the
            sandbox (1 passed, 0 not, None infra: train/reward.py), trained in its own process (train/grpo.py)

The arm draws no samples before training: GRPO samples its own rollouts while it trains, from the model it is
training. Its "draw" is the prompts: every pool prompt with tests, built exactly as SSD and evaluation build
them (generate/prompts.build_prompt, chat or plain), each carrying its problem (tests, entry point, prefix) so
the trainer process can build sandbox jobs; the trainer holds no untrusted code, the programs run only in the
sandbox's workers.

    <round>/grpo/stats.json                 prompts, group, steps, completions to be scored
    <round>/train-grpo/{job.json, examples.jsonl (the prompts), rewards.jsonl, train.json, adapter/, merged/}

Ledger: the training job's wall is stage "training", arm "grpo"; the sandbox's reward scoring inside it is
stage "scoring", arm "grpo:rewards" (`record_reward_scoring`, one of the arm's cost stages): the wall the
trainer waited on the sandbox, with the programs' seconds and the workers' CPU seconds beside it. On a CPU-only
run that wait is moved out of the training record (one machine, counted once); on GPUs the training record
keeps it (the GPUs were held, idle, while the sandbox ran on the CPUs) and the scoring record adds the CPU's.
Not here: the trainer (train/grpo.py), the reward (train/reward.py), the registry (ssd/arms.py).
"""

from __future__ import annotations

from selfdistill import layout
from selfdistill.rundir import read_json, write_json_atomic
from selfdistill.ssd import ledger

GRPO = "grpo"


def grpo_prompts(r, pool, progress_factory, say=print) -> tuple[list[dict], None]:
    """The arm's training rows, one per pool prompt with tests, as "samples" carrying their example."""
    from selfdistill.generate.prompts import build_prompt
    from selfdistill.ssd.comparators import stats_path
    from selfdistill.train.reward import problem_record

    c, chat = r.spec.comparator, r.spec.generation.chat
    tested = [p for p in pool.problems if p.tests is not None]
    samples = []
    for p in tested:
        prompt = build_prompt(p, chat)
        example = {"prompt": [dict(m) for m in prompt] if chat else prompt, "task_id": p.task_id,
                   "problem": problem_record(p), "origin": "pool"}
        samples.append({"task_id": p.task_id, "sample_idx": 0, "raw": "", "degenerate": None, "example": example})
    settings = job_settings(r.spec)
    per_step = r.spec.train.batch_size // c.grpo_group
    stats = {"n_prompts": len(tested), "group": c.grpo_group, "steps": c.grpo_steps,
             "prompts_per_step": per_step, "completions_scored": c.grpo_steps * r.spec.train.batch_size,
             "epochs_over_prompts": c.grpo_steps * per_step / len(tested) if tested else None} | settings["grpo"]
    write_json_atomic(stats_path(r.dir, GRPO), stats)
    say(f"{GRPO}: {len(tested)} pool prompts with tests; {c.grpo_steps} steps of {per_step} prompt(s) x "
        f"{c.grpo_group} completions at T={settings['grpo']['temperature']:g}, rewarded by the sandbox")
    return samples, None


def job_settings(spec) -> dict:
    """job.json's "settings" (besides [train]): GRPOConfig's numbers and the sandbox's limits."""
    c, g, s, d = spec.comparator, spec.generation, spec.ssd, spec.diagnostics
    return {
        "grpo": {"group": c.grpo_group, "steps": c.grpo_steps, "beta": c.grpo_beta,
                 "max_new_tokens": c.grpo_max_new_tokens or s.max_new_tokens or g.max_new_tokens,
                 "temperature": c.grpo_temperature if c.grpo_temperature is not None else g.temperature,
                 "top_p": g.top_p, "top_k": g.top_k, "min_p": g.min_p,
                 "use_vllm": c.grpo_use_vllm},
        "reward": {"timeout_s": d.timeout_s, "memory_mb": d.memory_mb, "workers": None},
        "learning_rate": c.grpo_learning_rate or spec.train.lr,  # the rate it runs at, as DPO's settings say it
        "learning_rate_key": "comparator.grpo_learning_rate" if c.grpo_learning_rate else "train.learning_rate",
    }


def record_reward_scoring(r, arm: str, record: dict) -> float:
    """Append the sandbox's reward scoring of a finished job to the ledger (stage "scoring"); return the seconds
    to take out of the training record (the same wall, on a CPU-only run, counted once)."""
    ranks = [record.get("sandbox") or {}]  # rank 0's totals; every other rank scored its own share of rollouts
    ranks += [read_json(path, "a rank's reward scoring")
              for path in sorted(layout.train_dir(r.dir, arm).glob("sandbox.rank*.json"))]
    wait = max(float(x.get("wall_s") or 0.0) for x in ranks)  # the ranks waited side by side

    def total(key: str):
        values = [x.get(key) for x in ranks]
        return None if any(v is None for v in values) else sum(values)

    ledger.append_record(r.run_dir, "scoring", r.label(f"{arm}:rewards"), wait, "cpu", 1,
                         programs=total("programs") or 0, program_s=total("program_s"), cpu_s=total("cpu_s"),
                         infra=total("infra") or 0, ranks=len(ranks),
                         note="the sandbox's reward scoring inside the GRPO training job (every rank's, summed)")
    return wait if record.get("device") == "cpu" else 0.0
