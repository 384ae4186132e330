"""Deliverables D and E in the report: the round-2 gate (gate.json: ENTER or STOP per arm, each check,
the reasons) and the promotion plan (promotion.json: candidate, blockers, held-out results, canary,
rollback, telemetry). Each delta travels with its CI, its slices and its battery status.
"""

from __future__ import annotations

import json

from selfdistill.report import deltas, fmt
from selfdistill.report.header import HEADINGS, not_run
from selfdistill.report.inputs import Run


def _missing(name: str, what: str) -> list[str]:
    return [f"> **Missing.** round1/{name} does not exist: {what}.", ""]


def _arm_gate(run: Run, g: dict, plan: dict) -> list[str]:
    arm = g.get("arm") or "ssd"
    lift = fmt.num(g.get("min_lift_pp", plan.get("min_lift_pp")))
    lines = [(f"**Decision for {arm}: {g['decision']}** (round 1 must lift pass@1 by at least {lift} pp, "
             "CIs not overlapping)."), "", f"Evidence: {deltas.line(run, f'{arm}_vs_base')}.", ""]
    lines += _lift_rules(arm, next((c for c in g["checks"] if c.get("name") == "lift"), {}))
    rows = [[c.get("name"), "pass" if c.get("passed") else "**FAIL**", c.get("detail")] for c in g["checks"]]
    lines += fmt.table(["check", "result", "detail"], rows) + [""]
    return lines + [f"- {r}" for r in g.get("reasons") or []] + [""]


def _lift_rules(arm: str, check: dict) -> list[str]:
    """The lift read two ways, side by side: the strategy's non-overlap rule decides; the paired CI is shown."""
    rules = check.get("rules")
    if not rules:
        return []
    apart, paired = rules["non_overlap"], rules["paired"]
    return [(f"Lift, two readings. **The strategy's rule (decides)**: {arm} pass@1 {fmt.pct(apart['treatment'])} "
             f"vs base {fmt.pct(apart['baseline'])}, the CIs {'do not overlap' if apart['passed'] else 'overlap'}"
             f"{'' if apart['min_lift_met'] else ' and the lift is below the declared minimum'}: "
             f"{'pass' if check.get('passed') else 'fail'}. **The paired delta (shown, does not decide)**: "
             f"{fmt.pp(paired['delta'], n=True)}, its CI {'excludes' if paired['passed'] else 'includes'} 0. "
             "The paired test is the more sensitive reading (same problems, one resample): on 164 problems x 16 "
             "samples it detected a 2 pp lift in about 40-60% of simulated runs (by population), the non-overlap "
             "rule in none."), ""]


def gate_section(run: Run) -> list[str]:
    lines = [f"## {HEADINGS['D']}", ""]
    if run.round is None:
        return lines + not_run(run)
    plan = run.spec.get("gate") or {}
    g = run.gate
    if g is None and run.round.get("comparator_only"):
        lines += ["> **Not run.** No round-2 gate: SSD was refused and this round measured only comparator arms; "
                  "round 2 is seeded by an SSD arm.", ""]
    elif g is None:
        lines += _missing("gate.json", "the round-2 gate has not been evaluated for this round")
    else:
        primary = g.get("arm") or "ssd"
        lines += [f"**Decision: {g['decision']}**: round 2 is seeded by the {primary} arm.", ""]
        lines += _arm_gate(run, g, plan)
        for arm, entry in (g.get("arms") or {}).items():
            if arm != primary:
                lines += [f"### The {arm} arm's own gate", "", *_arm_gate(run, entry, plan)]
    sealed = ((run.manifest or {}).get("gate") or {}).get("sha256")
    lines += [(f"Round 2 as declared: prompt pool `{plan.get('round2_pool') or 'not named (gate.round2_pool)'}`, "
              f"fresh evaluation slice `{plan.get('round2_heldout') or 'not named (gate.round2_heldout)'}`"
              + (f"; the gate's settings were sealed into manifest.json before training (sha256 {sealed[:12]}…)"
                 if sealed else "; manifest.json records no sealed gate settings (a run from an earlier version)")
              + "."), ""]
    return lines


def _value(key: str, v) -> str:
    if fmt.is_interval(v):
        return fmt.pp(v, n=True) if "delta" in key or "_vs_" in key else fmt.pct(v)
    if isinstance(v, float) and key.endswith("share") and 0 <= v <= 1:
        return fmt.share(v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return "; ".join(map(str, v))
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    return fmt.num(v) if isinstance(v, (int, float)) else fmt.cell(v)


def rows_table(rows: list[dict]) -> list[str]:
    """A table from a list of flat records: columns in first-seen order."""
    head: list[str] = []
    for row in rows:
        head += [k for k in row if k not in head]
    return fmt.table(head, [[_value(k, row.get(k)) if k in row else fmt.NONE for k in head] for row in rows])


def heldout_table(run: Run, rows: list[dict]) -> list[str]:
    """promotion.json's per-arm rows: pass@1s, the delta with its slices, the battery beside it."""
    if not all("delta_vs_base" in r for r in rows):
        return rows_table(rows)
    head = ["arm", "base pass@1 %", "arm pass@1 %", "Δ pass@1 vs base", *(f"Δ {s}" for s in fmt.SLICES), "battery"]
    body = [[f"**{r.get('arm')}**: {r.get('title', '')}", fmt.pct(r.get("base_pass_at_1")), fmt.pct(r.get("pass_at_1")),
             fmt.pp(r["delta_vs_base"], n=True), *fmt.slice_cells(r), fmt.battery_status(run.battery, r.get("arm"))]
            for r in rows]
    return fmt.table(head, body)


def _slice_caption(rows: list[dict]) -> list[str]:
    """Where the per-slice cells come from, and their caveat: they travel with the numbers."""
    said = sorted({" ".join(x for x in (r.get("slice_source"), r.get("slice_method")) if x) for r in rows} - {""})
    notes = sorted({r["slice_note"] for r in rows if r.get("slice_note")})
    if not said and not notes:
        return ["Slices: source not recorded (a promotion.json written before slice provenance was kept).", ""]
    return [f"Slices: {'; '.join(said) or 'source not recorded'}." + (f" {' '.join(notes)}" if notes else ""), ""]


def _candidate(run: Run, c: dict | None) -> list[str]:
    if c is None:
        return ["**Candidate**: none; no arm qualifies for promotion.", ""]
    arm = c.get("arm")
    t = f" at T_eval {c['t_eval']:g}" if c.get("t_eval") is not None else ""
    lines = [(f"**Candidate**: arm **{arm}** ({c.get('title') or arm}), round {c.get('round', 1)}, checkpoint "
             f"`{c.get('checkpoint')}`; pass@1{t} {fmt.pct(c.get('pass_at_1'))} %; "
             f"Δ vs base {fmt.pp(c.get('delta_vs_base'), n=True)}; {fmt.battery_status(run.battery, arm)}."), ""]
    if f"{arm}_vs_base" in (run.round.get("deltas") or {}):
        lines += [f"Slice breakdown: {deltas.line(run, f'{arm}_vs_base')}.", ""]
    return lines


def _plan_tables(p: dict) -> list[str]:
    lines = []
    for title, key in (("Canary", "canary"), ("Rollback", "rollback")):
        rows = [(k.replace("_", " "), _value(k, v)) for k, v in (p.get(key) or {}).items()]
        lines += [f"### {title}", "", *(fmt.kv_table(rows) if rows else ["Not stated."]), ""]
    fields = p.get("telemetry_fields") or []
    listed = "Logged per request: " + ", ".join(f"`{f}`" for f in fields) + "." if fields else "No telemetry fields."
    return lines + ["### Telemetry", "", listed, ""]


def ship_rule(ship: dict | None) -> list[str]:
    """promotion.json's Pareto check: the SSD arm against each comparator (measured, or declared and said so)."""
    if not ship or not ship.get("versus"):
        return []
    rows = []
    for d in ship["versus"]:
        diff, cost = d["pass_at_1_diff"], d["cost"]
        ci = (f" [{100 * diff['ci_low']:+.1f}, {100 * diff['ci_high']:+.1f}]" if diff.get("ci_low") is not None
              else " (no paired CI)")
        rows.append([f"{d['comparator']} ({d['comparator_source']})", f"{100 * diff['value']:+.1f}{ci}",
                     f"{fmt.num(cost['arm'])} vs {fmt.num(cost['comparator'])} {cost['unit']}",
                     d["dominates"], d["why"]])
    lines = ["### Ship rule: SSD must Pareto-dominate at least one comparator", "",
             *fmt.table([f"comparator of {ship['arm']}", "SSD minus comparator, pass@1 pp (95% CI)",
                         "cost (SSD vs comparator)", "dominates", "why"], rows), ""]
    move = ship.get("better_move")
    if move:
        lines += [f"**The better move is {move['comparator']}** ({move['source']}): "
                  f"{100 * move['pass_at_1_diff']['value']:+.1f} pp pass@1 over SSD at "
                  f"{fmt.num(move['cost']['comparator'])} {move['cost']['unit']} "
                  f"(SSD: {fmt.num(move['cost']['arm'])}).", ""]
    return lines


def comparator_only(only: dict | None) -> list[str]:
    """promotion.json's comparator-only report: SSD refused, each measured comparator against the base."""
    if not only:
        return []
    rows = []
    for m in only["measured"]:
        h = m.get("hours_to_produce") or {}
        rows.append([m["arm"], fmt.pct(m["base_pass_at_1"]), fmt.pct(m["pass_at_1"]),
                     fmt.pp(m["delta_vs_base"], n=True), fmt.reading(m["delta_vs_base"]),
                     fmt.hours(h.get("device_hours")), fmt.hours(h.get("gpu_hours")),
                     fmt.per_hour(m.get("accuracy_per_hour"))])
    head = ["comparator", "base pass@1 %", "comparator pass@1 %", "Δ pass@1 vs base", "reading", "device-hours",
            "GPU-hours", "pass@1 points (%) per hour"]
    return [f"### The measured move: {only.get('move')} ({only.get('measure_with')})", "",
            *fmt.table(head, rows), "",
            "Measured, not promoted: this plan promotes SSD checkpoints only, and SSD was refused. A lift here "
            "(CI above 0) says the move the verdict named works on this held-out set at this cost.", ""]


def promotion_section(run: Run) -> list[str]:
    lines = [f"## {HEADINGS['E']}", ""]
    if run.round is None:
        return lines + not_run(run)
    p, fc = run.promotion, run.spec.get("failure_cost") or {}
    if p is None:
        lines += _missing("promotion.json", "no promotion plan has been written for this round")
    else:
        lines += _candidate(run, p["candidate"])
        if p["blocked"]:
            reasons = [f"- {r}" for r in p.get("blocked_reasons") or []]
            lines += ["**Blocked.** Promotion must not proceed:", "", *reasons, ""]
        else:
            lines += ["Not blocked: no held-out regression, battery alert or gate failure stands in the way.", ""]
        if p.get("caveats"):
            lines += ["**Caveats** (said beside the plan; they block nothing):", "",
                      *(f"- {c}" for c in p["caveats"]), ""]
        lines += ship_rule(p.get("pareto"))
        lines += comparator_only(p.get("comparator_only"))
        if p.get("heldout_results"):
            lines += ["### Held-out results", "", *heldout_table(run, p["heldout_results"]), ""]
            lines += _slice_caption(p["heldout_results"])
        lines += _plan_tables(p)
    if fc:
        lines += ["### Failure cost as declared", "", *fmt.kv_table([
            ("level", fc.get("level")), ("checkpoint discipline", fc.get("checkpoint_discipline")),
            ("held-out regression blocks promotion", _value("", fc.get("heldout_blocker"))),
            ("rollback", fc.get("rollback"))]), ""]
    return lines
