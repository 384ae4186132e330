"""The cost table: wall time, device-hours and GPU-hours per stage (from ledger.jsonl, else from
round.json), spend against the declared budget, accuracy per GPU-hour per arm (per device-hour on a
CPU run, said so), and the Pareto table: every arm of the round (base, SSD arms, measured comparators) and the
declared comparator on (pass@1 with CI, cost), with the dominance of every pair (ssd/pareto.py's own rule).
"""

from __future__ import annotations

from collections.abc import Mapping

from selfdistill.layout import STAGES
from selfdistill.report import fmt
from selfdistill.report.inputs import Run

BUDGET = {  # spec.budget field -> the ledger stages it pays for
    "gpu_hours_sampling": ("sampling", "verification"),
    "gpu_hours_training": ("training", "export"),
    "gpu_hours_eval": ("precondition", "evaluation", "probes"),
}


def stage_totals(run: Run) -> dict[str, dict]:
    if run.ledger is None:
        return dict((((run.round or {}).get("costs") or {}).get("totals") or {}).get("stages") or {})
    out: dict[str, dict] = {}
    for r in run.ledger:
        row = out.setdefault(r["stage"], {"wall_s": 0.0, "device_hours": 0.0, "gpu_hours": 0.0, "runs": 0,
                                          "devices": set()})
        row["wall_s"] += r["wall_s"]
        row["device_hours"] += r["device_hours"]
        row["gpu_hours"] += r["gpu_hours"]
        row["runs"] += 1
        row["devices"].add(f"{r.get('device', '?')} × {r.get('device_count', 1)}")
    order = [s for s in STAGES if s in out] + sorted(set(out) - set(STAGES))
    return {s: out[s] for s in order}


def _gpu_run(stages: Mapping) -> bool:
    return any((row.get("gpu_hours") or 0) > 0 for row in stages.values())


def stage_table(run: Run) -> list[str]:
    stages = stage_totals(run)
    if not stages:
        return ["> **Missing.** Neither ledger.jsonl nor round1/round.json records a cost.", ""]
    rows = [[s, row.get("runs"), fmt.minutes(row["wall_s"]), fmt.hours(row["device_hours"]),
             fmt.hours(row["gpu_hours"]),
             ", ".join(sorted(row.get("devices") or [])) or fmt.NONE] for s, row in stages.items()]
    total = {k: sum(row[k] for row in stages.values()) for k in ("wall_s", "device_hours", "gpu_hours")}
    rows.append(["**total**", sum(row.get("runs") or 0 for row in stages.values()), fmt.minutes(total["wall_s"]),
                 fmt.hours(total["device_hours"]), fmt.hours(total["gpu_hours"]), ""])
    lines = fmt.table(["stage", "runs", "wall (min)", "device-hours", "GPU-hours", "devices"], rows) + [""]
    source = "ledger.jsonl" if run.ledger is not None else "round1/round.json"
    lines.append(f"From {source}; a stage killed and resumed counts every invocation that did work.")
    if not _gpu_run(stages):
        lines.append("This run used no GPU (CPU only): GPU-hours are 0, and accuracy below is per device-hour.")
    return lines + [""]


def budget_table(run: Run) -> list[str]:
    budget, stages = run.spec.get("budget") or {}, stage_totals(run)
    rows = []
    for field, names in BUDGET.items():
        if budget.get(field) is None:
            continue
        spent = sum(stages[s]["gpu_hours"] for s in names if s in stages)
        share = f"{100 * spent / budget[field]:.0f}%" if budget[field] else fmt.NONE
        rows.append([f"budget.{field}", ", ".join(names), fmt.hours(spent), fmt.num(budget[field]), share])
    return fmt.table(["budget", "stages", "GPU-hours spent", "GPU-hours budgeted", "used"], rows) + [""] if rows else []


def arm_pass1(run: Run, arm: str) -> dict | None:
    r = run.round
    row = next((row for row in r["sweep"] if row.get("t_eval") == r["t_eval"]), None)
    return ((row or {}).get("arms", {}).get(arm) or {}).get("pass@1")


def _unit(hours: Mapping) -> tuple[str, float]:
    if (hours.get("gpu_hours") or 0) > 0:
        return "GPU-hour", hours["gpu_hours"]
    return "device-hour (CPU: no GPU-hours)", hours.get("device_hours") or 0.0


def arm_table(run: Run) -> list[str]:
    arms = ((run.round.get("costs") or {}).get("arms")) or {}
    rows = []
    for arm, entry in arms.items():
        h = entry.get("hours_to_produce") or {}
        p1 = arm_pass1(run, arm)
        unit, spent = _unit(h)
        per = 100 * p1["value"] / spent if fmt.is_interval(p1) and p1["value"] is not None and spent > 0 else None
        rows.append([arm, fmt.pct(p1), fmt.minutes(h.get("wall_s")), fmt.hours(h.get("device_hours")),
                     fmt.hours(h.get("gpu_hours")), f"{per:.1f} per {unit}" if per is not None else fmt.NONE])
    if not rows:
        return []
    head = ["arm", f"pass@1 % at T_eval {run.round['t_eval']:g}", "wall to produce (min)", "device-hours",
            "GPU-hours", "pass@1 points (%) per hour"]
    return fmt.table(head, rows) + ["", ("Hours to produce an arm: its share of sampling (and verification for the "
                                    "verifier arm), its training and its export; evaluation is not included."), ""]


def _per_gpu_hour(run: Run, point: Mapping) -> str:
    """pass@1 points (%) per GPU-hour: round.json's accuracy_per_hour for a measured arm (per device-hour,
    said so, on a CPU run); the declared numbers divided for a declared comparator; nothing for the base."""
    if point.get("base"):
        return "— (nothing spent: the starting point)"
    if point["source"] == "declared":
        gpu = point["gpu_hours"]
        return f"{100 * point['pass_at_1']['value'] / gpu:.1f} (declared)" if gpu else fmt.NONE
    per = ((((run.round.get("costs") or {}).get("arms") or {}).get(point["name"]) or {}).get("accuracy_per_hour")
           or {})
    if per.get("per_gpu_hour") is not None:
        return f"{100 * per['per_gpu_hour']:.1f}"
    if per.get("per_device_hour") is not None:
        return f"— (no GPU-hours; {100 * per['per_device_hour']:.1f} per device-hour)"
    return fmt.NONE


def _diff(d: Mapping) -> str:
    diff = d["pass_at_1_diff"]
    ci = f" [{100 * diff['ci_low']:+.1f}, {100 * diff['ci_high']:+.1f}]" if diff["ci_low"] is not None else ""
    return f"{100 * diff['value']:+.1f}{ci} ({diff['how']})"


def _cost(d: Mapping) -> str:
    c = d["cost"]
    if c["arm"] is None or c["comparator"] is None:
        return "a cost is missing"
    return f"{fmt.num(c['arm'])} vs {fmt.num(c['comparator'])} {c['unit']}"


def pareto(run: Run) -> list[str]:
    """Every measured arm of the round (the base, the SSD arms, every measured comparator) and the declared
    comparator, labelled declared, on (pass@1 with its CI, cost), with every pair's dominance: the points and
    relations of ssd/pareto.py (the ship rule's own functions), read from round.json and the recorded spec."""
    from selfdistill.ssd import pareto as rule

    comp = run.spec.get("comparator") or {}
    kind = comp.get("kind") or "not declared"
    lines = [f"**Comparator**: {kind}" + (f"; measured by this round: {', '.join(comp['measure'])}"
                                          if comp.get("measure") else "") + "."]
    try:
        plane = rule.table(comp, run.round)
    except (KeyError, TypeError) as exc:  # a round.json without a field the plane needs: say which, keep going
        return lines + ["", f"> **Missing.** round1/round.json lacks {exc} for the Pareto table.", ""]
    pts, pairs = plane["points"], plane["pairs"]
    wins = {p["name"]: [] for p in pts}
    losses = {p["name"]: [] for p in pts}
    for d in pairs:
        other = d["comparator"] if d["dominates"] == d["arm"] else d["arm"]
        if d["dominates"] != "neither":
            wins[d["dominates"]].append(other)
            losses[other].append(d["dominates"])
    rows = []
    for p in pts:
        source = ("base" if p.get("base") else "declared (measured elsewhere)" if p["source"] == "declared"
                  else "measured, comparator" if p["comparator"] else "measured, SSD")
        rows.append([p["name"], source, fmt.pct(p["pass_at_1"]) if p["source"] == "measured"
                     else f"{100 * p['pass_at_1']['value']:.1f} (declared, no CI)",
                     fmt.hours(p["device_hours"]) if p["device_hours"] is not None else fmt.NONE,
                     fmt.hours(p["gpu_hours"]) + (" (declared)" if p["source"] == "declared" else ""),
                     _per_gpu_hour(run, p), ", ".join(wins[p["name"]]) or fmt.NONE,
                     ", ".join(losses[p["name"]]) or fmt.NONE])
    head = ["arm", "source", f"pass@1 % at T_eval {run.round['t_eval']:g} (95% CI)", "device-hours", "GPU-hours",
            "pass@1 points (%) per GPU-hour", "Pareto-dominates", "dominated by"]
    lines += ["", "#### Pareto: every arm of the round and the declared comparator", "", *fmt.table(head, rows), ""]
    if pairs:
        lines += fmt.table(["pair", "pass@1 difference, pp (95% CI)", "cost", "Pareto", "why"],
                           [[f"{d['arm']} vs {d['comparator']}" + (" (declared)" if d["comparator_source"] ==
                                                                    "declared" else ""),
                             _diff(d), _cost(d),
                             "neither" if d["dominates"] == "neither" else f"**{d['dominates']}** dominates",
                             d["why"]] for d in pairs]) + [""]
    lines.append("X Pareto-dominates Y when X's pass@1 is higher, settled (two arms of this round: the paired "
                 "delta's 95% CI excludes 0, else X's whole CI on one side of the other's point), at no more cost "
                 "(two arms of this run: device-hours of the same run; against a declared comparator: GPU-hours). "
                 "Hours are those that produced the arm (its sampling, scoring, training and export; not "
                 "evaluation); the base costs nothing to produce. Same rule as the promotion plan's ship rule "
                 "(ssd/pareto.py, docs/comparators.md).")
    lines.append("")
    if any(d["cost"]["unit"] == rule.UNLIKE for d in pairs):
        lines += ["This run has device-hours on CPU but no GPU-hours: against the declared comparator's "
                  "GPU-hours its cost is **not like for like**.", ""]
    if any(p["source"] == "declared" for p in pts):
        lines.append("The declared comparator's numbers are as typed into the spec, not measured by this run; "
                     "they compare only if they were measured on the same held-out set with the same decoding.")
    elif comp.get("pass_at_1") is not None and comp.get("gpu_hours") is not None:
        lines.append(f"The declared numbers of {kind} are superseded by its measurement in this round.")
    else:
        lines.append("No declared comparator: the spec gives no `comparator.pass_at_1` and `comparator.gpu_hours` "
                     "(both are needed to place a comparator measured elsewhere).")
    return lines + [""]


def section(run: Run) -> list[str]:
    return [*stage_table(run), *budget_table(run), *arm_table(run), *pareto(run)]
