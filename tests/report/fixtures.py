"""Realistic run directories for the report tests, written with the pipeline's own writers wherever they
are pure (metrics.summary.summarize, decide, ssd.compare.delta, ssd.ledger), so the shapes are the
shapes the stages write (gate.json and promotion.json come from ssd.gate.evaluate_gate and
ssd.promotion.plan_promotion); round.json and battery.json follow ssd/round.py and battery/run.py field
for field.

    write_run(dir)                         full round: base + ssd + verifier arms, a T_eval sweep, GPU ledger
    write_run(dir, verifier=False, ...)    variants: forced, --limit, CPU, battery alert, optional files absent
    write_precondition_only(dir)           only the precondition, verdict GO-OTHER (R5): the round never ran
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from selfdistill.decide.precondition import precondition_from_metrics
from selfdistill.decide.render import render_precondition
from selfdistill.decision import rules_from_spec
from selfdistill.metrics.summary import summarize
from selfdistill.rundir import write_json_atomic
from selfdistill.spec import Spec
from selfdistill.ssd import compare, ledger
from selfdistill.ssd.arms import ARMS, delta_key
from selfdistill.ssd.gate import GateInputs, evaluate_gate
from selfdistill.ssd.promotion import plan_promotion

N_PROBLEMS = 36
N_SAMPLES = 8
RESAMPLES = 200
T_DIAG, T_TRAIN, T_EVAL, SWEEP = 0.8, 1.6, 1.1, [0.8, 1.4]
HELDOUT = {"task": "humaneval", "task_sha256": "9f1c" * 16, "n_problems": N_PROBLEMS,
           "excluded": [{"task_id": "HumanEval/145", "reason": "errata: test expects a wrong answer"}],
           "release_window": [None, None]}


def spec_json(*, high_cost: bool = True, comparator: bool = True, verifier_arm: str = "auto") -> dict:
    """A complete spec as manifest.json holds it (`Spec.model_dump(mode="json")`)."""
    raw = {
        "model": {"name": "Qwen2.5-Coder-0.5B-Instruct", "path": "embedded-default", "parameters_b": 0.5,
                  "license": "Apache-2.0", "context_length": 32768},
        "task": {"languages": ["python"], "distribution": "algorithmic",
                 "product_surface": "IDE chat: write a function"},
        "heldout": {"task": "humaneval"},
        "diagnostics": {"n": N_SAMPLES, "k": [1, 4, 8], "lower_k_reason": "CPU budget: n = 8 samples per problem",
                        "bootstrap_resamples": RESAMPLES},
        "budget": {"gpu_hours_sampling": 2.0, "gpu_hours_training": 4.0, "gpu_hours_eval": 3.0, "team_size": 2,
                   "latency_to_first_signal_hours": 24},
        "comparator": {"kind": "rejection-sampling-sft", "pass_at_1": 0.42 if comparator else None,
                       "gpu_hours": 6.0 if comparator else None},
        "failure_cost": {"level": "high" if high_cost else "medium",
                         "checkpoint_discipline": "every round's adapter kept under runs/<id>/round1, named by sha",
                         "heldout_blocker": True, "rollback": "feature flag back to the base adapter, < 5 min"},
        "pool": {"tests_available": True, "source": "mbpp"},
        "generation": {"temperature": T_DIAG, "max_new_tokens": 384},
        "ssd": {"t_train": T_TRAIN, "t_eval": T_EVAL, "t_eval_sweep": SWEEP, "verifier_arm": verifier_arm},
        "gate": {"round2_pool": "split:/data/round2-prompts.jsonl", "round2_heldout": "/data/lcb-2025q3.jsonl"},
    }
    return Spec.model_validate(raw).model_dump(mode="json")


def _outcomes(p: np.ndarray, rng: np.random.Generator, infra: int = 0) -> list[dict]:
    records = []
    for i, pi in enumerate(p):
        c = int(rng.binomial(N_SAMPLES, pi))
        records += [{"task_id": f"HumanEval/{i}", "status": "passed" if j < c else "failed"} for j in range(N_SAMPLES)]
    records += [{"task_id": "HumanEval/0", "status": "infra"}] * infra
    return records


def _samples(name: str, p: np.ndarray, rng: np.random.Generator, scale: float) -> tuple[list[dict], dict]:
    rows = []
    for i in range(len(p)):
        for j in range(N_SAMPLES):
            tokens = int(min(384, max(12, rng.lognormal(np.log(110 * scale), 0.45))))
            rows.append({"task_id": f"HumanEval/{i}", "sample_idx": j, "completion_tokens": tokens,
                         "finish_reason": "length" if tokens == 384 else "stop",
                         "extraction": "none" if rng.random() < 0.02 else "fenced", "raw": "def f(x):\n    return x"})
    tokens = sorted(r["completion_tokens"] for r in rows)
    gen = {"backend": "llamacpp", "model": f"/models/{name}.gguf", "chat": True, "options": {},
           "sampling": {"temperature": T_DIAG, "top_p": 0.95, "top_k": 20, "min_p": 0.0, "max_new_tokens": 384,
                        "n": N_SAMPLES, "seed": 0}, "limit": None, "problems": "all", "comparable": True,
           "n_samples": len(rows), "no_code_share": sum(r["extraction"] == "none" for r in rows) / len(rows),
           "truncated_share": sum(r["finish_reason"] == "length" for r in rows) / len(rows),
           "completion_tokens_total": sum(tokens), "completion_tokens_median": tokens[len(tokens) // 2],
           "extraction_methods": {"fenced": len(rows)}}
    return rows, gen


def write_arm(run: Path, name: str, p: np.ndarray, seed: int, *, base_rates=None, scale=1.0, limit=None) -> dict:
    rng = np.random.default_rng(seed)
    metrics = summarize(_outcomes(p, rng, infra=2 if name == "base" else 0), [1, 4, 8],
                        base_pass_rate=base_rates, n_resamples=RESAMPLES)
    rows, gen = _samples(name, p, rng, scale)
    metrics["generation"] = gen
    metrics["provenance"] = HELDOUT | {"arm": name, "limit": limit, "comparable": limit is None}
    (run / name).mkdir(parents=True, exist_ok=True)
    (run / name / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_json_atomic(run / name / "metrics.json", metrics)
    return metrics


def write_precondition(run: Path, spec: dict, p: np.ndarray, *, limit=None, forced=False) -> dict:
    base = write_arm(run, "base", p, seed=1, limit=limit)
    report = precondition_from_metrics(base, rules_from_spec(Spec.model_validate(spec)), k=8)
    verdict = report.to_json() | {"comparable": limit is None, "metrics_file": str(run / "base" / "metrics.json"),
                                  "metrics_sha256": "ab" * 32, "spec": spec}
    write_json_atomic(run / "base" / "verdict.json", verdict)
    (run / "base" / "verdict.md").write_text(render_precondition(base, report) + "\n")
    write_json_atomic(run / "manifest.json", {
        "created": "2026-05-02T10:14:03+0000", "selfdistill_version": "0.1.0", "python": "3.11.7",
        "platform": "Linux-6.1-x86_64", "spec": spec, "heldout": HELDOUT,
        "rounds": {"round1": {"forced": forced, "limit": limit}},
    })
    return base


def _ledger_rows(arms: list[str], device: str) -> list[dict]:
    count = 1
    plan = [("precondition", "base", 1500), ("sampling", "samples", 2400), ("verification", "verify", 300)]
    plan += [("training", a, 3600 + 600 * i) for i, a in enumerate(arms)] + [("export", a, 120) for a in arms]
    plan += [("evaluation", f"{a}-T{t:g}" if not (a == "base" and t == T_DIAG) else "base", 1400)
             for t in [T_EVAL, *SWEEP] for a in ["base", *arms] if not (a == "base" and t == T_DIAG)]
    plan += [("probes", f"probes-{a}", 240) for a in (["base", *arms] if arms else [])]
    rows = []
    for stage, arm, wall in plan:
        dh = wall * count / 3600
        rows.append({"stage": stage, "arm": arm, "wall_s": float(wall), "device": device, "device_count": count,
                     "device_hours": dh, "gpu_hours": dh if device == "cuda" else 0.0,
                     "started": "2026-05-02T10:20:00+0000", "finished": "2026-05-02T10:45:00+0000"})
    return rows


def _battery(spec: dict, arms: list[str], alert: bool) -> dict:
    """battery.json as ssd/probe.py writes it: per arm, battery.run.run_battery's dict."""
    thresholds = spec["battery"]
    probes = [("repetition-rate", "diversity", 0.061, 0.066, "relative", "rise", "repetition_rise_max"),
              ("self-bleu", "diversity", 0.412, 0.43, "relative", "rise", "self_bleu_rise_max"),
              ("distinct-3", "diversity", 0.58, 0.56, "relative", "drop", "distinct_drop_max"),
              ("length-median", "length", 118, 124, "relative", "either", "length_median_drift_max"),
              ("passk-flatten", "diversity-at-k", 0.31, 0.27, "relative", "drop", "passk_flatten_max"),
              ("comment-share", "style", 0.08, 0.07, "absolute", "either", "comment_share_drift_max"),
              ("refusal-rate", "safety", 0.9, 0.9, "absolute", "either", "refusal_drift_max")]
    sha = hashlib.sha256(json.dumps(thresholds, sort_keys=True).encode()).hexdigest()
    out = {}
    for arm in arms:
        rows = []
        for name, family, base, value, kind, direction, key in probes:
            if alert and arm == "verifier" and name == "length-median":
                value = 155
            change = (value - base) / base if kind == "relative" else value - base
            status = "alert" if abs(change) > thresholds[key] else "pass"
            rows.append({"name": name, "family": family, "value": value, "base_value": base, "change": round(change, 4),
                         "change_kind": kind, "direction": direction, "threshold": thresholds[key], "status": status,
                         "detail": f"{key} {thresholds[key]:g}", "extra": {}})
        rows.append({"name": "unsafe-rate", "family": "safety", "value": None, "base_value": None, "change": None,
                     "change_kind": "absolute", "direction": "rise", "threshold": thresholds["unsafe_drift_max"],
                     "status": "skipped", "detail": "no completions flagged by either model", "extra": {}})
        n_alerts = sum(r["status"] == "alert" for r in rows)
        n_skipped = sum(r["status"] == "skipped" for r in rows)
        out[arm] = {"schema": "selfdistill.battery/1", "base": f"base-T{T_EVAL:g}", "arm": f"{arm}-T{T_EVAL:g}",
                    "thresholds_hash": sha, "thresholds": thresholds, "green": n_alerts == 0, "n_alerts": n_alerts,
                    "n_skipped": n_skipped, "safety_skipped": False, "safety_skipped_reason": None,
                    "samples": {"compared": 288, "dropped_base_only": 0, "dropped_arm_only": 0}, "probes": rows}
    return {"schema": "selfdistill.battery-run/1", "thresholds": thresholds, "thresholds_sha256": sha,
            "t_eval": T_EVAL, "arms": out}


def _gate(summary: dict, battery: dict | None) -> dict:
    """gate.json as ssd.gate.gate_for_run writes it: one evaluate_gate per arm, ssd's on top."""
    r1_pool, r1_heldout = {f"p{i}" for i in range(50)}, {f"h{i}" for i in range(N_PROBLEMS)}
    result = {"schema": "selfdistill.gate/1", "arms": {}}
    for arm in summary["arms"]:
        result["arms"][arm] = evaluate_gate(GateInputs(
            arm=arm, min_lift_pp=3.0, delta=summary["deltas"].get(f"{arm}_vs_base"),
            battery=(battery or {}).get("arms", {}).get(arm), comparable=summary["comparable"],
            forced=summary["forced"], round1_pool_hashes=r1_pool, round2_pool_hashes={f"q{i}" for i in range(40)},
            round1_heldout_hashes=r1_heldout, round2_heldout_hashes={f"n{i}" for i in range(30)},
        ))
    primary = result["arms"]["ssd"]
    return result | {k: primary[k] for k in ("decision", "arm", "min_lift_pp", "checks", "reasons")}


def write_run(run: Path, *, verifier=True, forced=False, limit=None, device="cuda", battery=True,
              battery_alert=True, gate=True, promotion=True, comparator=True, ledger_file=True) -> Path:
    """A finished round 1 with plausible numbers (SSD lifts hard problems most)."""
    spec = spec_json(high_cost=verifier, comparator=comparator)
    rng = np.random.default_rng(7)
    p_base = np.clip(rng.beta(1.2, 1.4, N_PROBLEMS), 0.02, 0.97)
    base = write_precondition(run, spec, p_base, limit=limit, forced=forced)
    rates = compare.per_problem_pass1(base)
    arms = ["ssd", "verifier"] if verifier else ["ssd"]
    lift = {"base": 0.0, "ssd": 0.09, "verifier": 0.11}
    evals = {}
    for t_i, t in enumerate([T_EVAL, *SWEEP]):
        for a_i, arm in enumerate(["base", *arms]):
            name = "base" if arm == "base" and t == T_DIAG else f"{arm}-T{t:g}"
            temp_penalty = 0.06 * abs(t * (T_TRAIN if arm != "base" else 1) - (1.76 if arm != "base" else 0.9))
            p = np.clip(p_base + lift[arm] * (1 - p_base) - temp_penalty, 0.0, 1.0)
            evals[(arm, t)] = write_arm(run, name, p, seed=10 * t_i + a_i + 2, base_rates=rates,
                                        scale=0.85 if arm != "base" else 1.0, limit=limit)
    source = "base-pass-rate proxy from the diagnostic base arm"
    slices = compare.slice_of(base)
    opts = {"n_resamples": RESAMPLES, "seed": 0, "slice_source": source}
    deltas = {"ssd_vs_base": compare.delta(evals[("base", T_EVAL)], evals[("ssd", T_EVAL)], slices, **opts)}
    deltas["ssd_vs_best_base_decode"] = compare.delta(
        evals[("base", T_DIAG)], evals[("ssd", T_EVAL)], slices, **opts) | {
        "base_t_eval": T_DIAG, "note": "the decode-only baseline: the base model at its best T_eval in the sweep "
                                       "(chosen on these same problems, so it flatters the base)"}
    if verifier:
        deltas["verifier_vs_base"] = compare.delta(evals[("base", T_EVAL)], evals[("verifier", T_EVAL)], slices, **opts)
        deltas["verifier_vs_ssd"] = compare.delta(evals[("ssd", T_EVAL)], evals[("verifier", T_EVAL)], slices, **opts)
    for a in arms:  # each delta carries its title, as summarize_round writes it
        for against, title in ARMS[a].deltas_against:
            if delta_key(a, against) in deltas:
                deltas[delta_key(a, against)]["title"] = title
    records = _ledger_rows(arms, device)
    if ledger_file:
        (run / "ledger.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    costs = {"totals": ledger.totals(records), "arms": {}}
    for arm in arms:
        hours = ledger.arm_hours(records, {arm, *ARMS[arm].cost_stages})
        costs["arms"][arm] = {"hours_to_produce": hours, "accuracy_per_hour": ledger.accuracy_per_hour(
            evals[(arm, T_EVAL)]["metrics"]["pass@1"]["value"], hours)}
    sweep = [{"t_eval": t, "t_eff": round(T_TRAIN * t, 6), "arms": {
        a: {"name": "base" if a == "base" and t == T_DIAG else f"{a}-T{t:g}",
            "pass@1": evals[(a, t)]["metrics"]["pass@1"], "metrics": evals[(a, t)]["metrics"]}
        for a in ["base", *arms]}} for t in [T_EVAL, *SWEEP]]
    stats = {"n_samples": 397, "kept_minimal": 380, "dropped_empty": 4, "dropped_single_line": 13,
             "no_code_share": 0.031, "truncated_share": 0.012, "completion_tokens_total": 47113}
    if verifier:
        stats |= {"kept_with_tests": 380, "kept_verifier": 171, "acceptance_rate": 0.45}
    training = {a: {"method": "lora", "optimizer_steps": 48 if a == "ssd" else 22,
                    "n_examples": 380 if a == "ssd" else 171,
                    "train_loss": 0.61, "loss_first": 0.94, "loss_last": 0.48, "wall_s": 3550.0, "device": device,
                    "device_count": 1, "adapter": f"round1/train-{a}/adapter", "merged": None} for a in arms}
    summary = {
        "schema": "selfdistill.round/1", "round": 1, "forced": forced, "comparable": limit is None, "limit": limit,
        "precondition": {"kind": base_kind(run),
                         "rule_id": json.loads((run / "base/verdict.json").read_text())["overall"]["rule_id"],
                         "summary": json.loads((run / "base/verdict.json").read_text())["summary"]},
        "arms": arms,
        "arm_titles": {a: ARMS[a].title for a in arms},
        "arm_records": {a: ARMS[a].record() for a in arms},
        "pool": {"provenance": {"source": "mbpp", "kind": "embedded", "sha256": "5e" * 32, "n_problems": 397,
                                "content_digest": "c0ffee" * 10}, "n_problems": 397, "n_with_tests": 397},
        "sampling": {"t_train": T_TRAIN, "top_k": 20, "top_p": 0.8, "min_p": 0.0, "n_per_prompt": 1, "seed": 0,
                     "max_new_tokens": 384, **stats},
        "training": training,
        "export": {a: {"model": "/models/base.gguf", "options": {"lora_path": f"round1/train-{a}/adapter.gguf"},
                       "how": "LoRA adapter converted to GGUF, applied by llama.cpp to the unchanged base GGUF",
                       "detail": {"sha256": hashlib.sha256(a.encode()).hexdigest()}}
                   for a in arms},
        "t_eval": T_EVAL, "sweep": sweep, "deltas": deltas, "heldout": HELDOUT, "costs": costs,
    }
    write_json_atomic(run / "round1" / "round.json", summary)
    bat = _battery(spec, arms, battery_alert) if battery else None
    if bat:  # ssd/probe.py stamps the declared thresholds into the manifest when sampling starts
        manifest = json.loads((run / "manifest.json").read_text())
        manifest["battery"] = {"thresholds": bat["thresholds"], "thresholds_sha256": bat["thresholds_sha256"]}
        write_json_atomic(run / "manifest.json", manifest)
    gate_json = _gate(summary, bat) if gate else None
    if bat:
        write_json_atomic(run / "round1" / "battery.json", bat)
    if gate_json:
        write_json_atomic(run / "round1" / "gate.json", gate_json)
    if promotion:
        plan = plan_promotion(Spec.model_validate(spec), summary, bat, gate_json)
        write_json_atomic(run / "round1" / "promotion.json", plan)
    return run


def base_kind(run: Path) -> str:
    return json.loads((run / "base" / "verdict.json").read_text())["overall"]["kind"]


def write_precondition_only(run: Path) -> Path:
    """Only the precondition: every problem always passes or always fails, so pass@8 = pass@1 and the
    verdict is GO-OTHER (R5c: consistent, the pool has tests); the round was refused, as `ssd` refuses it."""
    spec = spec_json(high_cost=False)
    p = np.array([1.0 if i % 5 in (0, 1) else 0.0 for i in range(N_PROBLEMS)])
    write_precondition(run, spec, p)
    row = _ledger_rows([], "cpu")[0]
    (run / "ledger.jsonl").write_text(json.dumps(row) + "\n")
    return run
