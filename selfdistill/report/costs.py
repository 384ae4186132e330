"""The cost table: wall time, device-hours and GPU-hours per stage (from ledger.jsonl, else from
round.json), spend against the declared budget, accuracy per GPU-hour per arm (per device-hour on a
CPU run, said so), and the Pareto comparison with the declared comparator when its numbers are given.
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


def dominance(p1: Mapping, cost: float, comp_p1: float, comp_cost: float) -> str:
    """Who Pareto-dominates on (pass@1, cost). Accuracy counts as settled only when the arm's 95% CI
    excludes the comparator's pass@1; a tie within the CI dominates nothing."""
    if p1["ci_low"] > comp_p1:
        acc = "higher"
    elif p1["ci_high"] < comp_p1:
        acc = "lower"
    else:
        acc = "tied"
    if acc == "higher" and cost <= comp_cost:
        return "the SSD arm dominates (higher pass@1, CI above the comparator's, at no more cost)"
    if acc == "lower" and cost >= comp_cost:
        return "the comparator dominates (higher pass@1 than the arm's whole CI, at no more cost)"
    if acc == "tied":
        cheaper = ("the arm is cheaper" if cost < comp_cost
                   else "the comparator is cheaper" if cost > comp_cost else "equal cost")
        return f"neither: pass@1 is tied within the arm's 95% CI ({cheaper})"
    return f"neither: a trade-off (the arm's pass@1 is {acc}, and it costs {'more' if acc == 'higher' else 'less'})"


def pareto(run: Run) -> list[str]:
    comp = run.spec.get("comparator") or {}
    kind = comp.get("kind") or "not declared"
    lines = [f"**Comparator**: {kind}."]
    measured = [a for a, rec in (run.round.get("arm_records") or {}).items() if rec.get("comparator")]
    if measured:  # measured comparators are arms of the table above; E's ship rule compares them to SSD
        lines += ["", (f"Measured comparator arm(s): {', '.join(measured)}, on the same held-out set, engine and "
                       "ledger; the Pareto check of SSD against each is in E (ship rule).")]
    if comp.get("pass_at_1") is None or comp.get("gpu_hours") is None:
        return lines + ["", ("No Pareto comparison: the spec does not give the comparator's numbers "
                        "(`comparator.pass_at_1` and `comparator.gpu_hours` are both needed)."), ""]
    lines[0] += f" Declared pass@1 {100 * comp['pass_at_1']:.1f}% at {fmt.num(comp['gpu_hours'])} GPU-hours."
    rows = []
    for arm, entry in (((run.round.get("costs") or {}).get("arms")) or {}).items():
        p1 = arm_pass1(run, arm)
        if not fmt.is_interval(p1) or p1["value"] is None:
            continue
        unit, cost = _unit(entry.get("hours_to_produce") or {})
        note = ("" if unit == "GPU-hour"
                else " (device-hours on CPU against the comparator's GPU-hours: not like for like)")
        rows.append([arm, fmt.pct(p1), f"{cost:.3f} {unit.split(' ')[0]}s{note}",
                     dominance(p1, cost, comp["pass_at_1"], comp["gpu_hours"])])
    lines += ["", *fmt.table(["arm", "pass@1 % (95% CI)", "cost to produce", "Pareto"], rows), "",
              ("The comparator's numbers are as declared in the spec, not measured by this run; they compare only "
              "if they were measured on the same held-out set with the same decoding."), ""]
    return lines


def section(run: Run) -> list[str]:
    return [*stage_table(run), *budget_table(run), *arm_table(run), *pareto(run)]
