"""The round's summary, round.json: written last by `summarize_round` (the sweep of pass@1 against T_eff, the
paired deltas each arm's record asks for, with CIs overall and per slice, sample statistics, training
records, exports, costs per arm, and each arm's record), read back by `load_round` (schema tag checked).

Not here: running the stages (ssd/distill.py), the arms' records (ssd/arms.py), the delta statistics
(ssd/compare.py).
"""

from __future__ import annotations

from pathlib import Path

from selfdistill import layout
from selfdistill.decide.refuse import forced_past, move_arm
from selfdistill.errors import DataError
from selfdistill.rundir import read_json
from selfdistill.ssd import compare, ledger
from selfdistill.ssd.arms import ARMS, delta_key
from selfdistill.ssd.comparators import stats_path

BEST_DECODE_NOTE = ("the decode-only baseline: the base model at its best T_eval in the sweep (chosen on these same "
                    "problems, so it flatters the base)")


def pass1(metrics: dict) -> dict:
    return metrics["metrics"]["pass@1"]


def summarize_round(r, arms: list[str], evals: dict[tuple[str, float], dict], base_diag: dict,
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
    best_t = max(s.temperatures, key=lambda x: pass1(evals[("base", x)])["value"] or 0.0)
    deltas = {}
    for arm in arms:
        for against, title in ARMS[arm].deltas_against:
            if against == "parent" and r.number == 1 or against in ARMS and against not in arms:
                continue
            baseline = evals[("base", best_t) if against == "best-base-decode" else (against, t)]
            key = delta_key(arm, against)
            deltas[key] = compare.delta(baseline, evals[(arm, t)], slices, slice_source=source, **opts)
            if against == "best-base-decode":
                deltas[key] |= {"base_t_eval": best_t, "note": BEST_DECODE_NOTE}
            deltas[key]["title"] = title
    for i, earlier in enumerate(arms):  # every other pair of trained arms (comparators against each other), paired
        for later in arms[i + 1:]:      # too, so each pair of the Pareto table rests on one paired reading
            if delta_key(later, earlier) in deltas or delta_key(earlier, later) in deltas:
                continue
            key = delta_key(later, earlier)
            deltas[key] = compare.delta(evals[(earlier, t)], evals[(later, t)], slices, slice_source=source, **opts)
            deltas[key]["title"] = f"{later} vs {earlier}, same T_eval"
    records = ledger.read_ledger(r.run_dir)
    costs = {"totals": ledger.totals(records), "arms": {}}
    for arm in arms:
        hours = ledger.arm_hours(records, {r.label(x) for x in {arm, *ARMS[arm].cost_stages}})
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
                         "summary": verdict.get("summary"), "other": verdict["overall"].get("other"),
                         "measure_with": move_arm(verdict["overall"])},
        # SSD refused (GO-OTHER, not forced) and only the move's comparator arm(s) measured (decide/refuse.py)
        "comparator_only": bool(arms) and all(ARMS[a].comparator for a in arms),
        "arms": arms,
        "arm_titles": {a: ARMS[a].title for a in arms},
        "arm_records": {a: ARMS[a].record() for a in arms},
        "arm_samples": {a: read_json(stats_path(r.dir, a), "comparator data stats")
                        for a in arms if ARMS[a].draw},  # a comparator's own data (ssd/comparators.py)
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


def load_round(run_dir: Path, number: int = 1) -> dict:
    path = layout.round_file(run_dir, layout.ROUND_SUMMARY, number)
    if not path.exists():
        raise DataError(f"error: {path} does not exist; run `selfdistill ssd SPEC --run-dir {run_dir}` first")
    return layout.read_record(path, "round")
