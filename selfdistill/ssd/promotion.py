"""The promotion plan (deliverable E), generated from the spec and the round's results.

- candidate: the distilled arm with the highest pass@1 at T_eval, named by its checkpoint id (the sha256
  of the exported adapter or model file, or of the merged directory's weights); none when nothing beat
  the base. Promotion is BLOCKED, with reasons, when: the delta's CI does not exclude a regression and a
  held-out regression blocks promotion (failure_cost.heldout_blocker); the battery alerted (a probe's
  whole CI beyond its tolerance; a watch is listed in `battery_watch` and blocks nothing) or did not
  run; the round was forced or evaluated on a --limit subset; or the spec names a round-2 checkpoint
  whose gate did not pass; or the held-out set is below the strategy's mandatory 200 problems.
- held-out results: pass@1 per arm with CIs and the paired delta with its CI, per slice.
- shadow canary: traffic share and duration by failure cost (low 10% / 7 days, medium 5% / 7 days,
  high 1% / 14 days) unless the spec sets them; the metrics compared between canary and base.
- rollback: a single config flip back to the base checkpoint, kept for a retention window (low 14,
  medium 30, high 90 days unless set), with the spec's own rollback statement.
- telemetry: the fields every request logs so the canary can be compared and rolled back.
"""

from __future__ import annotations

from pathlib import Path

from selfdistill.decide.refuse import a
from selfdistill.rundir import write_json_atomic
from selfdistill.ssd import pareto
from selfdistill.tasks.registry import MIN_HELDOUT
from selfdistill.train.export import checkpoint_id

SCHEMA = "selfdistill.promotion/1"
CANARY = {"low": (0.10, 7), "medium": (0.05, 7), "high": (0.01, 14)}
RETENTION = {"low": 14, "medium": 30, "high": 90}
TELEMETRY = ["model_variant", "checkpoint_id", "request_id", "timestamp", "prompt_sha256", "completion_tokens",
             "latency_ms", "outcome (accepted | edited | rejected | tests passed/failed)", "refusal", "unsafe_pattern"]
METRICS_COMPARED = ["acceptance / tests-pass rate of generated code", "edit distance of accepted completions",
                    "completion length median and p95", "refusal rate", "unsafe-pattern rate (static, battery rules)",
                    "latency p50 / p95", "error rate"]


def plan_promotion(spec, summary: dict, battery: dict | None, gate: dict | None) -> dict:
    level = spec.failure_cost.level.value
    share, days = CANARY[level]
    p = spec.promotion
    t = summary["t_eval"]
    rows = []
    best = None
    for arm in summary["arms"]:
        d = summary["deltas"][f"{arm}_vs_base"]
        rows.append({"arm": arm, "title": summary["arm_titles"][arm], "pass_at_1": d["treatment_pass_at_1"],
                     "base_pass_at_1": d["baseline_pass_at_1"], "delta_vs_base": d["overall"],
                     "slices": d["slices"], "slice_source": d.get("slice_source"),
                     "slice_method": d.get("slice_method"), "slice_note": d.get("slice_note"),
                     "battery_green": (battery or {}).get("arms", {}).get(arm, {}).get("green")})
        if pareto.points_is_comparator(summary, arm):  # a comparator is measured against, never promoted as SSD
            rows[-1]["comparator"] = True
            continue
        if d["overall"]["value"] is not None and d["overall"]["value"] > 0 and (
                best is None or d["overall"]["value"] > best[1]["overall"]["value"]):
            best = (arm, d)
    blocked, caveats = [], []  # a caveat is said beside the plan and blocks nothing
    candidate = None
    only = comparator_only(summary)
    if only is not None:  # SSD was refused; the round measured the GO-OTHER move's comparator, never promoted
        blocked.append(only["refused"])
    elif best is None:
        blocked.append("no distilled arm beat the base on held-out pass@1 at T_eval: keep the base")
    else:
        arm, d = best
        candidate = {"arm": arm, "title": summary["arm_titles"][arm],
                     "checkpoint": checkpoint_id(summary["export"][arm]), "round": 1,
                     "pass_at_1": d["treatment_pass_at_1"], "delta_vs_base": d["overall"], "t_eval": t}
        if d["overall"]["ci_low"] is not None and d["overall"]["ci_low"] <= 0 and spec.failure_cost.heldout_blocker:
            blocked.append(
                f"the {arm} delta's CI [{100 * d['overall']['ci_low']:+.1f}, {100 * d['overall']['ci_high']:+.1f}] pp "
                "does not exclude a held-out regression, and failure_cost.heldout_blocker = true"
            )
        elif d["overall"]["ci_low"] is not None and d["overall"]["ci_low"] <= 0:
            caveats.append(
                f"the {arm} lift's CI [{100 * d['overall']['ci_low']:+.1f}, {100 * d['overall']['ci_high']:+.1f}] pp "
                "includes 0: the candidate is named on a point estimate (failure_cost.heldout_blocker = false lets "
                "it through); only the canary can tell whether it helps"
            )
        arm_battery = (battery or {}).get("arms", {}).get(arm)
        if arm_battery is None:
            blocked.append("the anti-collapse battery has not been run for the candidate (`selfdistill probe`)")
        elif not arm_battery["green"] or arm_battery.get("safety_skipped"):
            alerts = [x["name"] for x in arm_battery["probes"] if x["status"] == "alert"]
            blocked.append("the battery is not green: " + (", ".join(alerts) or "the safety probe was skipped"))
        if arm_battery is not None:  # a watch (point beyond tolerance, CI not) blocks nothing; the plan shows it
            candidate["battery_watch"] = [x["name"] for x in arm_battery["probes"] if x["status"] == "watch"]
    ship = ship_rule(spec, summary, candidate, blocked, caveats)
    if summary.get("forced"):
        past = summary.get("forced_past")
        blocked.append(f"round 1 was forced past {a(past or 'GO-OTHER or INCONCLUSIVE')} precondition verdict "
                       "(--force): treated alike")
    if not summary.get("comparable", True):
        blocked.append(f"round 1 was evaluated on a --limit {summary.get('limit')} subset, not the whole held-out set")
    held = summary.get("heldout") or {}
    if held.get("n_problems") is not None and held["n_problems"] < held.get("min_problems", MIN_HELDOUT):
        blocked.append(f"the held-out set has {held['n_problems']} problems, below the strategy's mandatory "
                       f"{held.get('min_problems', MIN_HELDOUT)}: its CIs under-cover (docs/decision-rule.md)")
    if p.candidate_round > 1 and (gate is None or gate.get("decision") != "ENTER"):
        blocked.append(f"promotion.candidate_round = {p.candidate_round}, but the round-2 gate has not passed")
    return {
        "schema": SCHEMA,
        "candidate": candidate,
        "blocked": bool(blocked),
        "blocked_reasons": blocked,
        "caveats": caveats,
        "heldout_results": rows,
        "pareto": ship,
        "comparator_only": only,
        "canary": {
            "traffic_share": p.canary_share or share,
            "duration": f"{p.canary_days or days} days",
            "mode": "shadow: the candidate answers a copy of the traffic share; users see the base's answer",
            "metrics_compared": METRICS_COMPARED,
            "promote_if": "no compared metric worse than the base beyond the battery's declared tolerances, "
                          "acceptance rate not lower (paired by prompt, 95% CI), over the whole duration",
            "abort_if": "any unsafe-pattern or refusal-rate regression, error rate up, or a held-out re-run "
                        "regression: flip back at once",
        },
        "rollback": {
            "mechanism": "a single config flip: model_variant = base",
            "flag": "selfdistill.model_variant",
            "target": f"base checkpoint {spec.model.name}" + (f" ({spec.model.path})" if spec.model.path else ""),
            "retention_days": p.retention_days or RETENTION[level],
            "declared": spec.failure_cost.rollback,
            "checkpoint_discipline": spec.failure_cost.checkpoint_discipline,
        },
        "telemetry_fields": TELEMETRY,
    }


def ship_rule(spec, summary: dict, candidate: dict | None, blocked: list, caveats: list) -> dict | None:
    """SSD ships only if it Pareto-dominates at least one comparator (measured in this round, or declared and
    labelled so); a comparator that dominates SSD is named as the better move. Appends to blocked/caveats."""
    ssd_arms = [a for a in summary["arms"] if not pareto.points_is_comparator(summary, a)]
    arm = candidate["arm"] if candidate else (ssd_arms[0] if ssd_arms else None)
    if arm is None:
        return None
    comps = pareto.versus(spec, summary, arm)
    wins = [d for d in comps if d["dominates"] == arm]
    losses = [d for d in comps if d["dominates"] == d["comparator"]]
    better = min(losses, key=lambda d: d["pass_at_1_diff"]["value"], default=None)  # the most accurate of them
    unlike = [d for d in comps if d["cost"]["unit"] == pareto.UNLIKE]
    if not comps:
        caveats.append("no comparator has numbers (measure one with comparator.measure, or declare comparator."
                       "pass_at_1 and gpu_hours): the ship rule, SSD Pareto-dominates at least one comparator, "
                       "is unchecked")
    elif len(unlike) == len(comps):  # like no numbers: a CPU run cannot show dominance over declared GPU-hours
        caveats.append("the ship rule is unchecked: SSD ran on CPU and the only comparator is declared in GPU-hours "
                       f"({', '.join(d['comparator'] for d in unlike)}), costs not like for like; measure the "
                       "comparator in the same run (comparator.measure) or run on GPUs")
    elif better is not None:
        blocked.append(f"a comparator Pareto-dominates SSD, so it is the better move: {pareto.describe(better)}")
    elif not wins and candidate is not None:
        blocked.append("SSD Pareto-dominates no comparator: "
                       + "; ".join(f"{pareto.describe(d)}: {d['why']}" for d in comps))
    return {"arm": arm, "versus": comps, "dominates": [d["comparator"] for d in wins],
            "dominated_by": [d["comparator"] for d in losses],
            "better_move": None if better is None else {
                "comparator": better["comparator"], "source": better["comparator_source"],
                "pass_at_1_diff": _flip(better["pass_at_1_diff"]), "cost": better["cost"]}}


def comparator_only(summary: dict) -> dict | None:
    """A comparator-only round (SSD refused by a GO-OTHER verdict whose move comparator.measure names): why SSD
    is not promoted, and each measured comparator against the base (pass@1, the paired delta with its CI, the
    hours that produced it and pass@1 per hour, from round.json). None for any other round."""
    if not summary.get("comparator_only"):
        return None
    pre = summary.get("precondition") or {}
    arms = summary["arms"]
    costs = (summary.get("costs") or {}).get("arms") or {}
    measured = []
    for arm in arms:
        d = summary["deltas"][f"{arm}_vs_base"]
        measured.append({"arm": arm, "title": summary["arm_titles"][arm], "pass_at_1": d["treatment_pass_at_1"],
                         "base_pass_at_1": d["baseline_pass_at_1"], "delta_vs_base": d["overall"],
                         "hours_to_produce": (costs.get(arm) or {}).get("hours_to_produce"),
                         "accuracy_per_hour": (costs.get(arm) or {}).get("accuracy_per_hour")})
    refused = (f"SSD was refused by the precondition verdict {pre.get('kind')} ({pre.get('other')}; rule "
               f"{pre.get('rule_id')}), and that refusal stands: this round measured only the comparator arm(s) "
               f"{', '.join(arms)} against the base (comparator.measure), so there is no SSD checkpoint to promote; "
               "a comparator is reported, never promoted by this plan")
    return {"refused": refused, "verdict": pre.get("kind"), "move": pre.get("other"),
            "measure_with": pre.get("measure_with"), "measured": measured}


def _flip(diff: dict) -> dict:
    """SSD minus comparator -> comparator minus SSD (its CI mirrored)."""
    neg = {k: None if diff[k] is None else -diff[k] for k in ("value", "ci_low", "ci_high")}
    return {"value": neg["value"], "ci_low": neg["ci_high"], "ci_high": neg["ci_low"], "how": diff["how"]}


def promotion_for_run(spec, run_dir: Path) -> dict:
    from selfdistill import layout
    from selfdistill.ssd.summary import load_round

    summary = load_round(run_dir)
    rd = layout.round_dir(run_dir)
    battery = layout.read_record(rd / layout.BATTERY, "battery") if (rd / layout.BATTERY).exists() else None
    gate = layout.read_record(rd / layout.GATE, "gate") if (rd / layout.GATE).exists() else None
    plan = plan_promotion(spec, summary, battery, gate)
    write_json_atomic(rd / layout.PROMOTION, plan)
    return plan
