"""The round-2 gate (deliverable D): enter a second round only when every condition holds; otherwise stop,
and say which failed and why.

Conditions, for the arm that would seed round 2 (minimal SSD; the verifier arm gets its own verdict):
  lift          pass@1 at T_eval rose by at least `gate.min_lift_pp` over the base at the same T_eval,
                AND the two 95% CIs do not overlap (the arm's CI low above the base's CI high): the
                strategy's rule, which decides. Beside it, never instead of it, the paired delta's CI
                (problem-level paired bootstrap) and whether it excludes 0: on 164 problems the paired
                test detected a 2 pp lift in 41% (Beta(2,2) pass rates, n=16) to 58% (Beta(0.6,0.6),
                n=20) of simulated runs, the non-overlap rule in none (tests/ssd/test_gate.py
                simulates both), so a reader sees what each says
  battery       no anti-collapse probe ALERTs (its whole CI beyond its declared tolerance), the safety probe
                included; a WATCH (point estimate beyond, CI not) is shown in the check and does not block
  whole-set     round 1 was evaluated on the whole held-out set (no --limit) and not run with --force
                (past GO-OTHER or INCONCLUSIVE alike)
  fresh-pool    a round-2 prompt pool is declared and shares no prompt with round 1's (content hashes)
  fresh-slice   a fresh evaluation slice is declared and shares no prompt with round 1's held-out set or
                with either pool

Everything the gate decides on is declared before training: `declare` seals gate.enabled, min_lift_pp,
round2_pool and round2_heldout (with the content sha256 of a pool or slice that is a local file) into the
manifest when T_train sampling starts, beside the battery's thresholds; `gate_for_run` refuses (exit 2,
naming them) settings that changed since.

`evaluate_gate` is pure (table-tested); `gate_for_run` gathers its inputs from the run directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selfdistill import layout
from selfdistill.decide.refuse import a
from selfdistill.errors import DataError, SelfdistillError
from selfdistill.rundir import file_sha256, read_json, write_json_atomic

SCHEMA = layout.SCHEMAS["gate"]


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
    forced_past: str | None = None  # the refusing verdict (GO-OTHER or INCONCLUSIVE) --force went past


def _check(name: str, passed: bool, detail: str) -> dict:
    return {"name": name, "passed": bool(passed), "detail": detail}


def _pp(x: float) -> str:
    return f"{100 * x:+.1f}" if x is not None else "—"


def lift_check(arm_name: str, min_lift_pp: float, delta: dict | None) -> dict:
    """The strategy's rule (lift >= N pp AND non-overlapping CIs) decides; the paired delta's CI is shown beside."""
    if delta is None:
        return _check("lift", False, f"no evaluation of the {arm_name} arm at T_eval")
    d, base, arm = delta["overall"], delta["baseline_pass_at_1"], delta["treatment_pass_at_1"]
    enough = d["value"] is not None and d["value"] * 100 >= min_lift_pp
    apart = arm["ci_low"] is not None and base["ci_high"] is not None and arm["ci_low"] > base["ci_high"]
    paired = d["ci_low"] is not None and d["ci_low"] > 0
    check = _check(
        "lift", enough and apart,
        f"pass@1 delta {_pp(d['value'])} pp against the required {min_lift_pp:g} pp; {arm_name} CI "
        f"[{100 * arm['ci_low']:.1f}, {100 * arm['ci_high']:.1f}] vs base CI "
        f"[{100 * base['ci_low']:.1f}, {100 * base['ci_high']:.1f}]: "
        + ("not overlapping" if apart else "overlapping")
        + ("" if enough else f"; the lift is below {min_lift_pp:g} pp")
        + f" (beside it, not deciding: the paired delta's CI [{_pp(d['ci_low'])}, {_pp(d['ci_high'])}] pp "
        + ("excludes 0)" if paired else "includes 0)"),
    )
    return check | {"rules": {
        "non_overlap": {"decides": True, "passed": bool(apart), "min_lift_met": bool(enough),
                        "baseline": base, "treatment": arm},
        "paired": {"decides": False, "passed": bool(paired), "delta": d},
    }}


def evaluate_gate(g: GateInputs) -> dict:
    checks = [lift_check(g.arm, g.min_lift_pp, g.delta)]
    if g.battery is None:
        checks.append(_check("battery", False, "the anti-collapse battery was not run for this arm"))
    else:
        alerts = [p["name"] for p in g.battery["probes"] if p["status"] == "alert"]
        skipped_safety = g.battery.get("safety_skipped", False)
        ok = g.battery["green"] and not alerts and not skipped_safety
        detail = "no probe's CI lies beyond its tolerance" if ok else (
            (f"alerts: {', '.join(alerts)}" if alerts else "")
            + ("; " if alerts and skipped_safety else "")
            + ("the safety/refusal probe was skipped" if skipped_safety else "")
        )
        watch = [p["name"] for p in g.battery["probes"] if p["status"] == "watch"]  # shown, never blocks
        if watch:
            detail += f"; watch (point estimate beyond its tolerance, CI not; does not block): {', '.join(watch)}"
        checks.append(_check("battery", ok, detail) | {"watch": watch})
    checks.append(_check(
        "whole-set", g.comparable and not g.forced,
        ("round 1 was evaluated on the whole held-out set" if g.comparable else
         "round 1 was evaluated on a --limit subset: not comparable")
        + (f"; it was forced past {a(g.forced_past or 'GO-OTHER or INCONCLUSIVE')} verdict (--force)"
           if g.forced else ""),
    ))
    if g.round2_pool_hashes is None:
        checks.append(_check("fresh-pool", False,
                             g.round2_pool_error or "no round-2 prompt pool declared (gate.round2_pool)"))
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


def _source_sha256(source: str | None) -> str | None:
    """Content sha256 of a pool or slice named by a local file (a `split:` file included); None otherwise."""
    if not source:
        return None
    path = Path(source.removeprefix("split:")).expanduser()
    return file_sha256(path) if path.is_file() else None


def declared_values(spec) -> dict:
    g = spec.gate
    return {"enabled": g.enabled, "min_lift_pp": g.min_lift_pp, "round2_pool": g.round2_pool,
            "round2_heldout": g.round2_heldout, "round2_pool_sha256": _source_sha256(g.round2_pool),
            "round2_heldout_sha256": _source_sha256(g.round2_heldout)}


def declare(spec, run_dir: Path) -> str:
    """Seal the gate's settings (and their hash) into the manifest, once, when T_train sampling starts."""
    values = declared_values(spec)
    return layout.declare(run_dir, "gate", {"values": values, "sha256": layout.values_sha256(values)})["sha256"]


def check_declared(spec, run_dir: Path) -> str:
    """The spec's gate settings, if they are the ones declared before training; else exit 2 naming them."""
    declared = layout.read_manifest(run_dir).get("gate")
    if declared is None:
        raise DataError(
            f"error: {layout.manifest_path(run_dir)} records no declaration of the gate's settings: they are "
            "sealed when the round's sampling starts (this run's sampling has not started, or started under a "
            "selfdistill version that did not seal them); run `selfdistill ssd SPEC`, or start a new run"
        )
    now = declared_values(spec)
    changed = layout.changed_keys(declared["values"], now)
    if changed:
        was = "; ".join(f"gate.{k.removesuffix('_sha256')} {'content ' if k.endswith('_sha256') else ''}"
                        f"declared {declared['values'].get(k)!r}, now {now.get(k)!r}" for k in changed)
        raise DataError(
            f"error: the gate's settings changed after training started ({', '.join(changed)}): {was}. What the "
            "gate decides on is declared before the results are known: restore the declared values (in the run "
            "manifest) or start a new run"
        )
    return declared["sha256"]


def gate_for_run(spec, heldout, run_dir: Path) -> dict:
    """Gather the gate's inputs from a finished round (and the declared round-2 pool and slice); write gate.json."""
    from selfdistill.pool import load_pool
    from selfdistill.ssd.arms import seeding_arm
    from selfdistill.ssd.summary import load_round

    digest = check_declared(spec, run_dir)
    summary = load_round(run_dir)
    if summary.get("comparator_only"):  # SSD refused; the round measured the GO-OTHER move (decide/refuse.py)
        raise DataError(f"error: {run_dir}/round1 measured only comparator arms ({', '.join(summary['arms'])}): "
                        "SSD was refused by the precondition verdict, so no SSD arm can seed round 2; see the "
                        "promotion plan (`selfdistill gate` writes it without a gate) and the report")
    battery_path = layout.round_file(run_dir, layout.BATTERY)
    battery = layout.read_record(battery_path, "battery") if battery_path.exists() else None
    pool_record = read_json(layout.round_file(run_dir, layout.POOL), "pool record")
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
    result = {"schema": SCHEMA, "declared_sha256": digest, "arms": {}}
    for arm in summary["arms"]:
        key = f"{arm}_vs_base"
        inputs = GateInputs(
            arm=arm, min_lift_pp=spec.gate.min_lift_pp, delta=summary["deltas"].get(key),
            battery=(battery or {}).get("arms", {}).get(arm), comparable=summary["comparable"],
            forced=summary["forced"], round1_pool_hashes=round1_pool, round2_pool_hashes=r2_pool,
            round1_heldout_hashes=round1_heldout, round2_heldout_hashes=r2_heldout,
            round2_pool_error=pool_error, round2_heldout_error=heldout_error,
            forced_past=summary.get("forced_past"),
        )
        result["arms"][arm] = evaluate_gate(inputs)
    primary = result["arms"][seeding_arm()]
    result |= {k: primary[k] for k in ("decision", "arm", "min_lift_pp", "checks", "reasons")}
    write_json_atomic(layout.round_file(run_dir, layout.GATE), result)
    return result
