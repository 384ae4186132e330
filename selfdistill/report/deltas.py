"""Paired pass@1 deltas as the report shows them everywhere: the 95% CI, the slice breakdown, and the
treatment arm's battery status beside each one. No delta is printed without all three.
"""

from __future__ import annotations

from selfdistill.report import fmt
from selfdistill.report.inputs import Run


def _baseline_label(name: str, d: dict, t_eval: float) -> str:
    base = name.split("_vs_")[1]
    if d.get("base_t_eval") is not None:
        return f"base T_eval={d['base_t_eval']:g}"
    return f"{'base' if base.startswith('best') else base} T_eval={t_eval:g}"


def table(run: Run, names: list[str]) -> list[str]:
    deltas, t_eval = run.round["deltas"], run.round["t_eval"]
    names = [n for n in names if n in deltas]
    if not names:
        return ["No paired deltas in round1/round.json.", ""]
    head = ["comparison", "pass@1 % baseline → treatment", "Δ pass@1 overall, 95% CI", "reading",
            *(f"Δ {s}" for s in fmt.SLICES), "battery (treatment arm)"]
    rows = []
    for name in names:
        d = deltas[name]
        arm = fmt.delta_arm(name)
        rows.append([
            f"**{name}**: {d.get('title') or name} ({_baseline_label(name, d, t_eval)})",
            f"{fmt.pct(d.get('baseline_pass_at_1'))} → {fmt.pct(d.get('treatment_pass_at_1'))}",
            fmt.pp(d["overall"], n=True), fmt.reading(d["overall"]), *fmt.slice_cells(d),
            fmt.battery_status(run.battery, arm),
        ])
    lines = fmt.table(head, rows) + [""]
    sources = {deltas[n].get("slice_source") for n in names} - {None}
    if sources:
        lines.append(f"Slices: {'; '.join(sorted(sources))}. Each slice delta is paired on the problems of that "
                     "slice (n per cell); the CIs are problem-level paired bootstraps.")
        methods = sorted({m for n in names for m in (deltas[n].get("slice_method"), deltas[n].get("slice_note")) if m})
        lines += [f"- slices: {m.rstrip('.')}." for m in methods]
    for name in names:
        d = deltas[name]
        dropped = d["overall"].get("n_dropped")
        if dropped:
            lines.append(f"- {name}: {dropped} problem(s) scored in only one of the two arms "
                         "were left out of the pairing.")
        if d.get("note"):
            lines.append(f"- {name}: {d['note']}.")
    return lines + [""]


def line(run: Run, name: str) -> str:
    """One delta in a sentence: overall with CI, each slice with CI, then the battery."""
    d = ((run.round or {}).get("deltas") or {}).get(name)
    if d is None:
        return f"{name}: not in round1/round.json"
    slices = "; ".join(f"{s} {c}" for s, c in zip(fmt.SLICES, fmt.slice_cells(d), strict=True) if c != fmt.NONE)
    return (f"{name} Δ pass@1 {fmt.pp(d['overall'], n=True)} ({fmt.reading(d['overall'])}); "
            f"by slice: {slices or 'none'}; {fmt.battery_status(run.battery, fmt.delta_arm(name))}")
