"""The distillation of one round, the body every round runs: T_train sampling from the round's sampling model,
verification on the pool's tests, training and export of each arm (ssd/arms.py), evaluation of every arm and
the base at each T_eval, and the round's summary (ssd/summary.py).

    Round       where a round runs and from what: its number, held-out set, base model, the model it samples
                from and the one it fine-tunes (round 2+: the gated parent), its lineage
    distill     sampling -> verification -> training -> export -> evaluation -> round.json

Round 1 (ssd/round.py) and round 2 (ssd/round2.py) decide what to distill and call `distill`; the stage that
runs a round by its number is pipeline.py's. Every stage is resumable and timed into the cost ledger.

Not here: the precondition (ssd/round.py), the gate that opens round 2 (ssd/round2.py), the engines
(generate/), fine-tuning (train/), export (train/export.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from selfdistill import layout
from selfdistill.errors import DataError, SelfdistillError, SpecError
from selfdistill.generate.backends import stage_device
from selfdistill.heldout import HeldoutSet
from selfdistill.rundir import read_json, write_json_atomic
from selfdistill.spec import Backend, Spec, TrainMethod
from selfdistill.ssd import comparators, data, gate, ledger, probe, sampling
from selfdistill.ssd.arms import ARMS
from selfdistill.ssd.summary import summarize_round

log = logging.getLogger(__name__)


SKIPPED = "no SSD arm in this round: every arm draws its own training data"


class RoundRefused(SelfdistillError):
    """The precondition verdict says SSD is not the move; --force overrides (and is stamped)."""


@dataclass(frozen=True)
class Round:
    spec: Spec
    heldout: HeldoutSet
    run_dir: Path
    limit: int | None
    force: bool
    model: str  # the resolved base model (a GGUF path, a transformers directory or a hub id)
    number: int = 1
    sample_model: str | None = None  # round 2+: the parent round's model samples (and is the "parent" arm)
    sample_options: dict = field(default_factory=dict)
    train_model: str | None = None  # round 2+: the parent's merged weights are fine-tuned
    gguf_base: str | None = None  # round 2+: the parent as a GGUF, for llama.cpp's adapter export
    lineage: dict | None = None

    @property
    def dir(self) -> Path:
        return layout.round_dir(self.run_dir, self.number)

    def label(self, name: str) -> str:
        """Ledger and directory names: round 1 keeps the plain names; later rounds are prefixed r<N>-."""
        return layout.stage_label(name, self.number)

    def name(self, arm: str, t: float) -> str:
        return layout.arm_dir_name(arm, t, self.spec.generation.temperature, self.number)


def write_pool_record(round_dir: Path, pool) -> None:
    path = round_dir / layout.POOL
    record = {
        "provenance": pool.provenance,
        "n_problems": len(pool.problems),
        "n_with_tests": pool.n_with_tests,
        "content_hashes": pool.content_hashes(),
    }
    if path.exists():
        old = read_json(path, "pool record")
        if old.get("content_hashes") != record["content_hashes"]:
            raise DataError(
                f"error: {path} records another prompt pool than the spec now gives; its samples cannot be "
                "reused: use a new --run-dir, or restore the pool settings"
            )
        return
    round_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record)


def stamp_manifest(r: Round) -> None:
    """The run's record (once: the spec as given, not an arm's copy) and this round's own entry."""
    layout.record_run(r.run_dir, r.spec, r.heldout)
    layout.stamp_round(r.run_dir, r.number, forced=r.force, limit=r.limit, spec=r.spec, heldout=r.heldout)


def evaluate_arm(r: Round, name: str, t: float, model: str, options: dict, progress_factory) -> dict:
    """Evaluate one arm on the held-out set at T_eval = t (resumable); append its cost when it did work."""
    from selfdistill.evaluate import EvalConfig, evaluate

    g = r.spec.generation
    cfg = EvalConfig.from_spec(r.spec, temperature=t, model=model, options=options)
    done = (r.run_dir / name / "metrics.json").exists()
    device, count = stage_device(g.backend.value, g.options)
    stage = "precondition" if name == "base" else "evaluation"
    with ledger.timed_if(not done, r.run_dir, stage, name, device, count), progress_factory() as progress:
        metrics = evaluate(cfg, r.heldout, r.run_dir, name, r.limit, progress, run_spec=r.spec)
    if r.force and name != "base":
        metrics["forced"] = True
        write_json_atomic(r.run_dir / name / "metrics.json", metrics)
    return metrics


def train_arm(r: Round, arm: str, pool, samples: list[dict], passed: set | None) -> dict:
    """Write the arm's examples and job, run the training process (resumable), return train.json."""
    from selfdistill.train import jobs
    from selfdistill.train.finetune import DONE, job_record

    arm_dir = layout.train_dir(r.dir, arm)
    if (arm_dir / DONE).exists():
        return read_json(arm_dir / DONE, "training record")
    by_id = {p.task_id: p for p in pool.problems}
    spec_arm = ARMS[arm]
    chosen, truncated = data.apply_truncated_policy(spec_arm.select(samples, passed), r.spec.ssd.truncated)
    if not chosen:
        raise DataError(
            f"error: the {arm} arm has no training examples ({len(samples)} samples, none kept"
            + (", none passed the pool's tests" if spec_arm.needs_tests else ": all empty or single-line")
            + (f", {truncated['n_excluded']} cut off at max_new_tokens and excluded (ssd.truncated)"
               if truncated["n_excluded"] else "")
            + "); look at " + (f"what it drew: {comparators.stats_path(r.dir, arm)}" if spec_arm.draw
                               else f"the samples in {r.dir / 'samples' / 'samples.jsonl'}")
        )
    examples = [s["example"] if "example" in s else data.example(by_id[s["task_id"]], s, r.spec.generation.chat)
                for s in chosen]  # a comparator's own pairs come as examples already (sft-external)
    t = r.spec.train
    mix = {"anchor_ratio": 0.0, "n_anchor": 0}
    if t.anchor_data and t.anchor_ratio > 0 and spec_arm.algorithm == "sft":  # anchor pairs are SFT examples
        anchor = data.read_anchor(Path(t.anchor_data), r.spec.generation.chat)
        examples, mix = data.mix_anchor(examples, anchor, t.anchor_ratio, t.seed, t.anchor_data)
    data.write_examples(arm_dir / "examples.jsonl", examples)
    job = job_record(r.train_model or r.model, arm_dir / "examples.jsonl", t, arm_dir, chat=r.spec.generation.chat,
                     algorithm=spec_arm.algorithm)
    job["mix"] = mix
    job["settings"] = spec_arm.job_settings(r.spec) if spec_arm.job_settings else {}  # e.g. DPO's beta
    job["n_samples"] = len(chosen)
    job["truncated"] = truncated  # the declared policy for samples cut off at max_new_tokens, and its counts
    write_json_atomic(arm_dir / "job.json", job)
    log_path = arm_dir / "train.log"
    with ledger.timed(r.run_dir, "training", r.label(arm)) as cost:
        returncode = jobs.run_job(arm_dir / "job.json", t.launcher, log_path)  # the job's algorithm picks its runner
        if returncode != 0 or not (arm_dir / DONE).exists():
            tail = "".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines(True)[-15:]
                           if log_path.exists() else [])
            raise DataError(
                f"error: training the {arm} arm failed (exit {returncode}); the last lines of {log_path}:\n"
                f"{tail}\nfix the cause and run the same command again: training resumes from its last checkpoint"
            )
        record = read_json(arm_dir / DONE, "training record")
        cost["device"], cost["device_count"] = record["device"], record["device_count"]
        if "sandbox" in record:  # rewards scored in the sandbox inside the job (grpo): its own "scoring" record
            from selfdistill.ssd.rl import record_reward_scoring

            cost["moved_s"] = record_reward_scoring(r, arm, record)
    return record


def export_arm(r: Round, arm: str, record: dict) -> tuple[str, dict, dict]:
    """The distilled model as the evaluation engine loads it: (model path, backend options, export record)."""
    arm_dir = layout.train_dir(r.dir, arm)
    path = arm_dir / "export.json"
    if path.exists():
        exp = read_json(path, "export record")
        return exp["model"], exp["options"], exp
    backend = r.spec.generation.backend
    with ledger.timed(r.run_dir, "export", r.label(arm)):
        if backend is Backend.LLAMACPP:
            from selfdistill.train.export import export_lora_arm, export_merged_gguf

            base = Path(r.gguf_base or r.model)
            if base.suffix != ".gguf":
                raise SpecError("error: generation.backend = 'llamacpp' needs a GGUF base model (model.path)")
            if record["method"] == TrainMethod.LORA.value:  # merged GGUF (base speed) unless the adapter is asked for
                exp = export_lora_arm(Path(record["adapter"]), Path(record["merged"]), base, arm_dir)
            else:
                detail = export_merged_gguf(Path(record["merged"]), base, arm_dir / "model.gguf")
                exp = {"model": str(arm_dir / "model.gguf"), "options": {},
                       "how": "fully fine-tuned weights written into a copy of the base GGUF (see precision_changes)",
                       "detail": detail}
        else:
            exp = {"model": record["merged"], "options": {},
                   "how": "transformers directory (LoRA merged into the weights, or the fine-tuned model)"}
    write_json_atomic(path, exp)
    return exp["model"], exp["options"], exp


def distill(r: Round, pool, arms: list[str], slice_metrics: dict | None, verdict: dict, progress_factory,
            say=print) -> dict:
    """Sampling, filter, verification, training, export, evaluation, summary: the body of any round."""
    spec, run_dir = r.spec, r.run_dir
    probe.declare(spec, run_dir)  # the battery's thresholds and the gate's settings, sealed into the manifest
    gate.declare(spec, run_dir)  # before any training sample is drawn
    sample_model = r.sample_model or r.model
    sample_spec = spec.model_copy(update={"generation": spec.generation.model_copy(
        update={"options": dict(spec.generation.options) | r.sample_options})})
    if all(ARMS[a].draw for a in arms):  # comparator arms only (SSD refused, decide/refuse.py): no T_train draw
        samples, passed, stats = [], None, {"n_samples": 0, "skipped": SKIPPED}
        say(f"sampling: skipped ({SKIPPED})")
    else:
        samples_path = r.dir / "samples" / "samples.jsonl"
        n_expected = len(pool.problems) * spec.ssd.n_per_prompt
        have = len(sampling.read_samples(samples_path)) if samples_path.exists() else 0
        say(f"sampling: {len(pool.problems)} pool prompts x {spec.ssd.n_per_prompt} at T_train={spec.ssd.t_train} "
            f"(top-k {spec.ssd.top_k}, top-p {spec.ssd.top_p}) from {Path(sample_model).name}; "
            f"{have} of {n_expected} already drawn")
        device, count = stage_device(spec.generation.backend.value, spec.generation.options)
        with ledger.timed_if(have < n_expected, run_dir, "sampling", r.label("samples"), device, count), \
                progress_factory() as progress:
            sampling.sample_pool(sample_spec, sample_model, pool.problems, r.dir, progress)
        samples = sampling.read_samples(samples_path)

        passed = None
        if pool.n_with_tests:
            verified = (r.dir / "verify" / "metrics.json").exists()
            with ledger.timed_if(not verified, run_dir, "verification", r.label("verify")):
                sampling.verify(spec, pool.problems, samples_path, r.dir)
            passed = sampling.passed_keys(r.dir)
        tested = {p.task_id for p in pool.problems if p.tests is not None}
        stats = sampling.sample_stats(samples, passed, tested)
        sampling.write_stats(r.dir, stats)
        say(f"samples: {stats['n_samples']} drawn, {stats['kept_minimal']} kept "
            f"(dropped {stats['dropped_empty']} empty, {stats['dropped_single_line']} single-line); "
            f"no extractable code {100 * stats['no_code_share']:.1f}%"
            + (f"; verifier acceptance {100 * stats['acceptance_rate']:.1f}%" if passed is not None else "")
            + f"; cut off at max_new_tokens {100 * stats['truncated_share']:.1f}% ({spec.ssd.truncated.value})")

    trains, exports, models = {}, {}, {}
    for arm in arms:
        settings = ARMS[arm].job_settings(spec) if ARMS[arm].job_settings else {}  # DPO/GRPO: their own rate
        say(f"training the {ARMS[arm].title} arm: {ARMS[arm].algorithm}, {spec.train.method.value}, "
            f"lr {settings.get('learning_rate') or spec.train.lr:g}, {spec.train.epochs:g} epoch(s)")
        drawn = ARMS[arm].draw(r, pool, progress_factory, say) if ARMS[arm].draw else (samples, passed)
        trains[arm] = train_arm(r, arm, pool, *drawn)  # a comparator trains on its own data (ssd/comparators.py)
        model, options, exports[arm] = export_arm(r, arm, trains[arm])
        models[arm] = (model, options)
    models["base"] = (r.model, {})
    if r.number > 1:
        models["parent"] = (sample_model, dict(r.sample_options))

    evals: dict[tuple[str, float], dict] = {}
    for t in spec.ssd.temperatures:
        for arm in ["base", *(["parent"] if r.number > 1 else []), *arms]:
            name = r.name(arm, t)
            say(f"evaluating {name} at T_eval={t:g} (T_eff {spec.ssd.t_train * t:.3g})")
            model, options = models[arm]
            evals[(arm, t)] = evaluate_arm(r, name, t, model, options, progress_factory)
    summary = summarize_round(r, arms, evals, slice_metrics or evals[("base", spec.ssd.t_eval)], verdict, pool,
                              stats, trains, exports)
    write_json_atomic(r.dir / layout.ROUND_SUMMARY, summary)
    return summary
