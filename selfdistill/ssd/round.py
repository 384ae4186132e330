"""`selfdistill ssd SPEC`: one SSD round, stage by stage, each resumable, each timed into the cost ledger.

    <run>/base/                       the precondition: base model at the diagnostic temperature, and the
                                      verdict (verdict.json); GO-OTHER or INCONCLUSIVE refuses the round unless --force
    <run>/round1/pool.json            the prompt pool: source, provenance, ids, content hashes
    <run>/round1/samples/             T_train samples from the frozen base model (sampling.py)
    <run>/round1/verify/              pool tests run on them (when the pool has tests)
    <run>/round1/train-ssd/           minimal SSD: examples.jsonl, job.json, train.log, train.json,
                                      adapter/ or merged/, the export for the evaluation engine
    <run>/round1/train-verifier/      verifier-aware arm: the same, on passing samples only (its own dir,
                                      never merged into or reported as minimal SSD)
    <run>/base-T<t>/ ssd-T<t>/ verifier-T<t>/   held-out evaluation at each T_eval (same engine,
                                      precision and parameters for every arm; `base` when t equals the
                                      diagnostic temperature)
    <run>/round1/round.json           the round's summary: sweep (pass@1 against T_eff = T_train x T_eval),
                                      paired deltas with CIs overall and per slice, sample statistics,
                                      training records, costs
    <run>/ledger.jsonl                wall time and devices per stage

Killed and run again, every stage continues where it stopped (samples and outcomes are appended as they
finish; training resumes from its last checkpoint; finished arms are read back, not rerun).

Not here: the engines (generate/), fine-tuning (train/finetune.py), export (train/export.py), pools (pool/).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from selfdistill import layout
from selfdistill.decide.refuse import forced_past
from selfdistill.errors import DataError, SelfdistillError, SpecError
from selfdistill.heldout import HeldoutSet
from selfdistill.rundir import read_json, write_json_atomic
from selfdistill.spec import Backend, Spec, TrainMethod, VerifierArm
from selfdistill.ssd import compare, data, ledger, sampling

log = logging.getLogger(__name__)

ROUND = layout.ROUND  # the names live in selfdistill/layout.py
ARM_TITLES = {"ssd": "minimal SSD (raw, unverified samples)", "verifier": "verifier-aware SSD (passing samples only)"}


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


def arm_name(arm: str, t: float, spec: Spec) -> str:
    return layout.arm_dir_name(arm, t, spec.generation.temperature)


def require_local_model(spec: Spec) -> None:
    if spec.generation.backend is Backend.OPENAI:
        raise SpecError(
            "error: generation.backend = 'openai': SSD fine-tunes local weights, and a remote endpoint cannot "
            "serve the distilled model; use llamacpp, hf or vllm with model.path naming local weights"
        )


def load_round_pool(spec: Spec, heldout: HeldoutSet):
    """The prompt pool, checked against the held-out set; and the held-out set without a split's pool ids."""
    from selfdistill.pool import load_pool
    from selfdistill.tasks.errata import Exclusion

    p = spec.pool
    pool = load_pool(p.source, split_fraction=p.split_fraction, seed=p.seed, limit=p.limit,
                     heldout=heldout.problems, heldout_task=spec.heldout.task, ngram=p.ngram,
                     reserved=heldout.reserved_pool_ids)
    if p.tests_available and pool.n_with_tests == 0:
        raise SpecError(
            f"error: pool.tests_available = true but the pool {p.source!r} has no tests; "
            "set it to false (no verifier-aware arm) or use a pool with tests"
        )
    drop = set(pool.exclude_from_heldout)
    if drop:
        kept = [q for q in heldout.problems if q.task_id not in drop]
        excluded = list(heldout.excluded) + [Exclusion(t, "in the SSD prompt pool (split)") for t in sorted(drop)]
        provenance = heldout.provenance | {
            "n_problems": len(kept),
            "excluded": [{"task_id": e.task_id, "reason": e.reason} for e in excluded],
        }
        heldout = replace(heldout, problems=kept, excluded=excluded, provenance=provenance)
    return pool, heldout


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


def stage_device(spec: Spec) -> tuple[str, int]:
    """Where a generation stage runs: llama.cpp here is CPU; hf/vllm on CUDA when it is visible."""
    if spec.generation.backend is Backend.LLAMACPP:
        return "cpu", 1
    try:
        import torch

        if torch.cuda.is_available() and spec.generation.options.get("device", "auto") != "cpu":
            tp = int(spec.generation.options.get("tensor_parallel_size", 1))
            dp = int(spec.generation.options.get("data_parallel_size", 1))
            return "cuda", max(1, tp * dp)
    except ImportError:
        pass
    return "cpu", 1


def evaluate_arm(r: Round, name: str, t: float, model: str, options: dict, progress_factory) -> dict:
    """Evaluate one arm on the held-out set at T_eval = t (resumable); append its cost when it did work."""
    from selfdistill.evaluate import evaluate

    g = r.spec.generation
    spec = r.spec.model_copy(update={
        "generation": g.model_copy(update={"temperature": t, "options": dict(g.options) | options}),
        "model": r.spec.model.model_copy(update={"path": model}),
    })
    done = (r.run_dir / name / "metrics.json").exists()
    device, count = stage_device(r.spec)
    stage = "precondition" if name == "base" else "evaluation"
    with ledger.timed_if(not done, r.run_dir, stage, name, device, count), progress_factory() as progress:
        metrics = evaluate(spec, r.heldout, r.run_dir, name, r.limit, progress)
    if r.force and name != "base":
        metrics["forced"] = True
        write_json_atomic(r.run_dir / name / "metrics.json", metrics)
    return metrics


def precondition(r: Round, progress_factory) -> dict:
    """Evaluate the base model at the diagnostic temperature and decide; refuse on GO-OTHER or INCONCLUSIVE
    (decide/refuse.py) unless forced."""
    from selfdistill.decide.refuse import refusal, refuses
    from selfdistill.decision import decide

    metrics = evaluate_arm(r, "base", r.spec.generation.temperature, r.model, {}, progress_factory)
    decide(r.spec, r.run_dir / layout.BASE / layout.METRICS, r.run_dir / layout.BASE)
    verdict = layout.read_record(r.run_dir / layout.BASE / layout.VERDICT, "verdict")
    kind = verdict["overall"]["kind"]
    if refuses(kind) and not r.force:
        raise RoundRefused(refusal(verdict, str(r.run_dir / layout.BASE / layout.VERDICT_MD)))
    return {"kind": kind, "verdict": verdict, "metrics": metrics}


def planned_arms(spec: Spec, verdict_kind: str, pool) -> list[str]:
    want = spec.ssd.verifier_arm
    verifier = want is VerifierArm.ON or (want is VerifierArm.AUTO and verdict_kind == "GO-VERIFIER-AWARE-SSD")
    if verifier and pool.n_with_tests == 0:
        if want is VerifierArm.ON:
            raise SpecError("error: ssd.verifier_arm = 'on' but the prompt pool has no tests to verify with")
        verifier = False
    return ["ssd", "verifier"] if verifier else ["ssd"]


def train_arm(r: Round, arm: str, pool, samples: list[dict], passed: set | None) -> dict:
    """Write the arm's examples and job, run the training process (resumable), return train.json."""
    from selfdistill.train import jobs
    from selfdistill.train.finetune import DONE, job_record

    arm_dir = layout.train_dir(r.dir, arm)
    if (arm_dir / DONE).exists():
        return read_json(arm_dir / DONE, "training record")
    by_id = {p.task_id: p for p in pool.problems}
    chosen, truncated = data.apply_truncated_policy(data.select(samples, passed if arm == "verifier" else None),
                                                    r.spec.ssd.truncated)
    if not chosen:
        raise DataError(
            f"error: the {arm} arm has no training examples ({len(samples)} samples, none kept"
            + (", none passed the pool's tests" if arm == "verifier" else ": all empty or single-line")
            + (f", {truncated['n_excluded']} cut off at max_new_tokens and excluded (ssd.truncated)"
               if truncated["n_excluded"] else "")
            + "); look at the samples in " + str(r.dir / "samples" / "samples.jsonl")
        )
    examples = [data.example(by_id[s["task_id"]], s, r.spec.generation.chat) for s in chosen]
    t = r.spec.train
    mix = {"anchor_ratio": 0.0, "n_anchor": 0}
    if t.anchor_data and t.anchor_ratio > 0:
        anchor = data.read_anchor(Path(t.anchor_data), r.spec.generation.chat)
        examples, mix = data.mix_anchor(examples, anchor, t.anchor_ratio, t.seed, t.anchor_data)
    data.write_examples(arm_dir / "examples.jsonl", examples)
    job = job_record(r.train_model or r.model, arm_dir / "examples.jsonl", t, arm_dir, chat=r.spec.generation.chat)
    job["mix"] = mix
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


def pass1(metrics: dict) -> dict:
    return metrics["metrics"]["pass@1"]


def summarize_round(r: Round, arms: list[str], evals: dict[tuple[str, float], dict], base_diag: dict,
                    verdict: dict, pool, stats: dict, trains: dict, exports: dict) -> dict:
    s = r.spec.ssd
    opts = {"n_resamples": r.spec.diagnostics.bootstrap_resamples, "seed": r.spec.diagnostics.seed}
    slices = compare.slice_of(base_diag)
    source = base_diag.get("slice_source", "none")
    if source == "base-pass-rate-proxy":  # each delta also carries slice_method (cross-fit) and slice_note
        source = "base-pass-rate proxy from the diagnostic base arm"
    sweep = []
    for t in s.temperatures:
        row = {"t_eval": t, "t_eff": round(s.t_train * t, 6), "arms": {}}
        for arm in ["base", *(["parent"] if r.number > 1 else []), *arms]:
            m = evals[(arm, t)]
            row["arms"][arm] = {"name": r.name(arm, t), "pass@1": pass1(m),
                                "metrics": {k: v for k, v in m["metrics"].items()}}
        sweep.append(row)
    t = s.t_eval
    deltas = {"ssd_vs_base": compare.delta(evals[("base", t)], evals[("ssd", t)], slices, slice_source=source, **opts)}
    best_t = max(s.temperatures, key=lambda x: pass1(evals[("base", x)])["value"] or 0.0)
    deltas["ssd_vs_best_base_decode"] = compare.delta(
        evals[("base", best_t)], evals[("ssd", t)], slices, slice_source=source, **opts
    ) | {"base_t_eval": best_t, "note": "the decode-only baseline: the base model at its best T_eval in the sweep "
         "(chosen on these same problems, so it flatters the base)"}
    if r.number > 1:
        deltas["ssd_vs_parent"] = compare.delta(evals[("parent", t)], evals[("ssd", t)], slices,
                                                slice_source=source, **opts)
    if "verifier" in arms:
        deltas["verifier_vs_base"] = compare.delta(evals[("base", t)], evals[("verifier", t)], slices,
                                                   slice_source=source, **opts)
        deltas["verifier_vs_ssd"] = compare.delta(evals[("ssd", t)], evals[("verifier", t)], slices,
                                                  slice_source=source, **opts)
    records = ledger.read_ledger(r.run_dir)
    costs = {"totals": ledger.totals(records), "arms": {}}
    for arm in arms:
        hours = ledger.arm_hours(records, {r.label(x) for x in {"samples", arm} | ({"verify"} if arm == "verifier" else set())})
        costs["arms"][arm] = {"hours_to_produce": hours,
                              "accuracy_per_hour": ledger.accuracy_per_hour(pass1(evals[(arm, t)])["value"], hours)}
    return {
        "schema": layout.SCHEMAS["round"],
        "round": r.number,
        "lineage": r.lineage,
        "forced": r.force,
        "forced_past": forced_past(verdict["overall"]["kind"], r.force),  # the refusing verdict --force went past
        "comparable": r.limit is None,
        "limit": r.limit,
        "precondition": {"kind": verdict["overall"]["kind"], "rule_id": verdict["overall"].get("rule_id"),
                         "summary": verdict.get("summary")},
        "arms": arms,
        "arm_titles": {a: ARM_TITLES[a] for a in arms},
        "pool": {"provenance": pool.provenance, "n_problems": len(pool.problems), "n_with_tests": pool.n_with_tests},
        "sampling": {"t_train": s.t_train, "top_k": s.top_k, "top_p": s.top_p, "min_p": s.min_p,
                     "n_per_prompt": s.n_per_prompt, "seed": s.seed, "truncated_policy": s.truncated.value,
                     "max_new_tokens": s.max_new_tokens or r.spec.generation.max_new_tokens, **stats},
        "training": {a: {k: v for k, v in trains[a].items() if k not in ("job", "loss_curve")}
                     | {"truncated": trains[a].get("job", {}).get("truncated")} for a in arms},
        "export": exports,
        "t_eval": t,
        "sweep": sweep,
        "deltas": deltas,
        "heldout": r.heldout.provenance,
        "costs": costs,
    }


def run_round(spec: Spec, heldout: HeldoutSet, run_dir: Path, *, limit: int | None, force: bool,
              progress_factory, say=print) -> dict:
    """Run (or resume) the round the spec names (ssd.round); write and return its round.json."""
    from selfdistill.generate.default_model import resolve_model

    require_local_model(spec)
    run_dir = run_dir.resolve()  # records name absolute paths: a training job or an export outlives the cwd
    if spec.ssd.round > 1:
        from selfdistill.ssd.round2 import run_next_round

        return run_next_round(spec, run_dir, limit=limit, force=force, progress_factory=progress_factory, say=say)
    pool, heldout = load_round_pool(spec, heldout)
    r = Round(spec, heldout, run_dir, limit, force, resolve_model(spec.model.path, spec.model.name))
    r.dir.mkdir(parents=True, exist_ok=True)
    write_pool_record(r.dir, pool)
    stamp_manifest(r)

    n_eval = min(limit, len(heldout.problems)) if limit else len(heldout.problems)
    say(f"precondition: base model on {n_eval} held-out problems at T={spec.generation.temperature}"
        + (f" (a seeded subset of {len(heldout.problems)}: not comparable)" if limit else ""))
    pre = precondition(r, progress_factory)
    say(f"precondition verdict: {pre['kind']}" + (" (forced past it)" if forced_past(pre["kind"], force) else ""))
    arms = planned_arms(spec, pre["kind"], pool)
    return distill(r, pool, arms, pre["metrics"], pre["verdict"], progress_factory, say)


def distill(r: Round, pool, arms: list[str], slice_metrics: dict | None, verdict: dict, progress_factory,
            say=print) -> dict:
    """Sampling, filter, verification, training, export, evaluation, summary: the body of any round."""
    from selfdistill.ssd import gate, probe

    spec, run_dir = r.spec, r.run_dir
    probe.declare(spec, run_dir)  # the battery's thresholds and the gate's settings, sealed into the manifest
    gate.declare(spec, run_dir)  # before any training sample is drawn
    sample_model = r.sample_model or r.model
    sample_spec = spec.model_copy(update={"generation": spec.generation.model_copy(
        update={"options": dict(spec.generation.options) | r.sample_options})})
    samples_path = r.dir / "samples" / "samples.jsonl"
    n_expected = len(pool.problems) * spec.ssd.n_per_prompt
    have = len(sampling.read_samples(samples_path)) if samples_path.exists() else 0
    say(f"sampling: {len(pool.problems)} pool prompts x {spec.ssd.n_per_prompt} at T_train={spec.ssd.t_train} "
        f"(top-k {spec.ssd.top_k}, top-p {spec.ssd.top_p}) from {Path(sample_model).name}; "
        f"{have} of {n_expected} already drawn")
    device, count = stage_device(spec)
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
    say(f"samples: {stats['n_samples']} drawn, {stats['kept_minimal']} kept (dropped {stats['dropped_empty']} empty, "
        f"{stats['dropped_single_line']} single-line); no extractable code {100 * stats['no_code_share']:.1f}%"
        + (f"; verifier acceptance {100 * stats['acceptance_rate']:.1f}%" if passed is not None else "")
        + f"; cut off at max_new_tokens {100 * stats['truncated_share']:.1f}% ({spec.ssd.truncated.value})")

    trains, exports, models = {}, {}, {}
    for arm in arms:
        say(f"training the {ARM_TITLES[arm]} arm: {spec.train.method.value}, lr {spec.train.lr:g}, "
            f"{spec.train.epochs:g} epoch(s)")
        trains[arm] = train_arm(r, arm, pool, samples, passed)
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


def stamp_manifest(r: Round) -> None:
    """The run's record (once: the spec as given, not an arm's copy) and this round's own entry."""
    layout.record_run(r.run_dir, r.spec, r.heldout)
    layout.stamp_round(r.run_dir, r.number, forced=r.force, limit=r.limit, spec=r.spec, heldout=r.heldout)


def load_round(run_dir: Path, number: int = 1) -> dict:
    path = layout.round_file(run_dir, layout.ROUND_SUMMARY, number)
    if not path.exists():
        raise DataError(f"error: {path} does not exist; run `selfdistill ssd SPEC --run-dir {run_dir}` first")
    return layout.read_record(path, "round")
