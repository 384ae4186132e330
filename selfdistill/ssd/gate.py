"""The round-2 gate (deliverable D): enter a second round only when every condition holds; otherwise stop,
and say which failed and why.

Conditions, for the arm that would seed round 2 (minimal SSD; the verifier arm gets its own verdict):
  lift          pass@1 at T_eval rose by at least `gate.min_lift_pp` over the base at the same T_eval,
                AND the two 95% CIs do not overlap (the arm's CI low above the base's CI high)
  battery       every anti-collapse probe within its declared tolerance, the safety probe included
  whole-set     round 1 was evaluated on the whole held-out set (no --limit) and not forced past GO-OTHER
  fresh-pool    a round-2 prompt pool is declared and shares no prompt with round 1's (content hashes)
  fresh-slice   a fresh evaluation slice is declared and shares no prompt with round 1's held-out set or
                with either pool

`evaluate_gate` is pure (table-tested); `gate_for_run` gathers its inputs from the run directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selfdistill.errors import SelfdistillError
from selfdistill.rundir import read_json, write_json_atomic

SCHEMA = "selfdistill.gate/1"


@dataclass(frozen=True)
class GateInputs:
    arm: str
    min_lift_pp: float
    delta: dict | None  # compare.delta(base@T_eval, arm@T_eval): overall + both pass@1 intervals
    battery: dict | None  # battery.json arms[arm], or None when the battery was not run
    comparable: bool
    forced: bool
    round1_pool_hashes: set[str]
    round2_pool_hashes: set[str] | None  # None: no round-2 pool declared (or it failed to load: see error)
    round1_heldout_hashes: set[str]
    round2_heldout_hashes: set[str] | None
    round2_pool_error: str | None = None
    round2_heldout_error: str | None = None


def _check(name: str, passed: bool, detail: str) -> dict:
    return {"name": name, "passed": bool(passed), "detail": detail}


def _pp(x: float) -> str:
    return f"{100 * x:+.1f}" if x is not None else "—"


def evaluate_gate(g: GateInputs) -> dict:
    checks = []
    if g.delta is None:
        checks.append(_check("lift", False, f"no evaluation of the {g.arm} arm at T_eval"))
    else:
        d, base, arm = g.delta["overall"], g.delta["baseline_pass_at_1"], g.delta["treatment_pass_at_1"]
        enough = d["value"] is not None and d["value"] * 100 >= g.min_lift_pp
        apart = arm["ci_low"] is not None and base["ci_high"] is not None and arm["ci_low"] > base["ci_high"]
        checks.append(_check(
            "lift", enough and apart,
            f"pass@1 delta {_pp(d['value'])} pp [{_pp(d['ci_low'])}, {_pp(d['ci_high'])}] against the required "
            f"{g.min_lift_pp:g} pp; {g.arm} CI [{100 * arm['ci_low']:.1f}, {100 * arm['ci_high']:.1f}] vs base CI "
            f"[{100 * base['ci_low']:.1f}, {100 * base['ci_high']:.1f}]: "
            + ("not overlapping" if apart else "overlapping")
            + ("" if enough else f"; the lift is below {g.min_lift_pp:g} pp"),
        ))
    if g.battery is None:
        checks.append(_check("battery", False, "the anti-collapse battery was not run for this arm"))
    else:
        alerts = [p["name"] for p in g.battery["probes"] if p["status"] == "alert"]
        skipped_safety = g.battery.get("safety_skipped", False)
        ok = g.battery["green"] and not alerts and not skipped_safety
        detail = "every probe within tolerance" if ok else (
            (f"alerts: {', '.join(alerts)}" if alerts else "")
            + ("; " if alerts and skipped_safety else "")
            + ("the safety/refusal probe was skipped" if skipped_safety else "")
        )
        checks.append(_check("battery", ok, detail))
    checks.append(_check(
        "whole-set", g.comparable and not g.forced,
        ("round 1 was evaluated on the whole held-out set" if g.comparable else
         "round 1 was evaluated on a --limit subset: not comparable")
        + ("; it was forced past a GO-OTHER verdict" if g.forced else ""),
    ))
    if g.round2_pool_hashes is None:
        checks.append(_check("fresh-pool", False, g.round2_pool_error or "no round-2 prompt pool declared (gate.round2_pool)"))
    else:
        shared = g.round2_pool_hashes & g.round1_pool_hashes
        checks.append(_check(
            "fresh-pool", not shared and bool(g.round2_pool_hashes),
            f"{len(shared)} of {len(g.round2_pool_hashes)} round-2 prompts also in round 1's pool (by content hash)",
        ))
    if g.round2_heldout_hashes is None:
        checks.append(_check("fresh-slice", False,
                             g.round2_heldout_error or "no fresh evaluation slice declared (gate.round2_heldout)"))
    else:
        seen = g.round1_heldout_hashes | g.round1_pool_hashes | (g.round2_pool_hashes or set())
        shared = g.round2_heldout_hashes & seen
        checks.append(_check(
            "fresh-slice", not shared and bool(g.round2_heldout_hashes),
            f"{len(shared)} of {len(g.round2_heldout_hashes)} problems of the round-2 slice were already used "
            "(round 1's held-out set or a pool)",
        ))
    reasons = [f"{c['name']}: {c['detail']}" for c in checks if not c["passed"]]
    return {
        "schema": SCHEMA,
        "decision": "ENTER" if not reasons else "STOP",
        "arm": g.arm,
        "min_lift_pp": g.min_lift_pp,
        "checks": checks,
        "reasons": reasons,
    }


def _hashes_of(problems) -> set[str]:
    from selfdistill.pool import prompt_hash

    return {prompt_hash(p.prompt) for p in problems}


def gate_for_run(spec, heldout, run_dir: Path) -> dict:
    """Gather the gate's inputs from a finished round (and the declared round-2 pool and slice); write gate.json."""
    from selfdistill.pool import load_pool
    from selfdistill.ssd.round import ROUND, load_round

    summary = load_round(run_dir)
    battery_path = run_dir / ROUND / "battery.json"
    battery = read_json(battery_path, "battery result") if battery_path.exists() else None
    pool_record = read_json(run_dir / ROUND / "pool.json", "pool record")
    round1_pool = set(pool_record["content_hashes"].values())
    round1_heldout = _hashes_of(heldout.problems)
    r2_pool = r2_heldout = None
    pool_error = heldout_error = None
    if spec.gate.round2_pool:
        try:
            r2 = load_pool(spec.gate.round2_pool, seed=spec.pool.seed, heldout=heldout.problems,
                           heldout_task=spec.heldout.task, ngram=spec.pool.ngram)
            r2_pool = set(r2.content_hashes().values())
        except SelfdistillError as exc:
            pool_error = f"the round-2 pool could not be used: {exc}"
    if spec.gate.round2_heldout:
        try:
            from selfdistill.tasks.registry import load_task

            r2_heldout = _hashes_of(load_task(spec.gate.round2_heldout))
        except SelfdistillError as exc:
            heldout_error = f"the round-2 evaluation slice could not be loaded: {exc}"
    result = {"schema": SCHEMA, "arms": {}}
    for arm in summary["arms"]:
        key = f"{arm}_vs_base"
        inputs = GateInputs(
            arm=arm, min_lift_pp=spec.gate.min_lift_pp, delta=summary["deltas"].get(key),
            battery=(battery or {}).get("arms", {}).get(arm), comparable=summary["comparable"],
            forced=summary["forced"], round1_pool_hashes=round1_pool, round2_pool_hashes=r2_pool,
            round1_heldout_hashes=round1_heldout, round2_heldout_hashes=r2_heldout,
            round2_pool_error=pool_error, round2_heldout_error=heldout_error,
        )
        result["arms"][arm] = evaluate_gate(inputs)
    primary = result["arms"]["ssd"]
    result |= {k: primary[k] for k in ("decision", "arm", "min_lift_pp", "checks", "reasons")}
    write_json_atomic(run_dir / ROUND / "gate.json", result)
    return result
