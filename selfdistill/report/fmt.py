"""Text helpers shared by the report's sections: rates as %, deltas as signed pp, 95% CIs in brackets,
Markdown tables with escaped cells, and the battery status that travels with every pass@1 delta.

Fractions 0..1 come in (as every JSON in the run directory holds them); pp appear only here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

NONE = "—"
SLICES = ("easy", "medium", "hard")

SECTION_C_ARM = "verifier"  # deliverable C reports this arm (C. Verifier-Aware Arm Spec); section B every other


def cell(text) -> str:
    return NONE if text is None else str(text).replace("|", "\\|").replace("\n", " ")


def table(head: Sequence[str], rows: Iterable[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def kv_table(rows: Iterable[tuple[str, object]]) -> list[str]:
    return table(["", "value"], [(f"**{k}**", v) for k, v in rows])


def is_interval(x) -> bool:
    return isinstance(x, Mapping) and "value" in x and "ci_low" in x and "ci_high" in x


def pct(x: Mapping | None) -> str:
    """A rate with its CI: `41.2 [36.0, 46.5]` (%)."""
    if not is_interval(x) or x["value"] is None:
        return NONE
    return f"{100 * x['value']:.1f} [{100 * x['ci_low']:.1f}, {100 * x['ci_high']:.1f}]"


def pp(x: Mapping | None, *, n: bool = False) -> str:
    """A delta with its CI: `+4.1 pp [+1.2, +7.0]`, optionally `(n=160)`."""
    if not is_interval(x) or x["value"] is None:
        return NONE
    text = f"{100 * x['value']:+.1f} pp [{100 * x['ci_low']:+.1f}, {100 * x['ci_high']:+.1f}]"
    if n and x.get("n_problems") is not None:
        text += f" (n={x['n_problems']})"
    return text


def share(x: float | None) -> str:
    return NONE if x is None else f"{100 * x:.1f}%"


def num(x, digits: int = 3) -> str:
    if x is None:
        return NONE
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    return f"{x:,}" if isinstance(x, int) else f"{x:.{digits}g}"


def hours(h: float | None) -> str:
    return NONE if h is None else f"{h:.3f}"


def minutes(wall_s: float | None) -> str:
    return NONE if wall_s is None else f"{wall_s / 60:.1f}"


def per_hour(per: Mapping | None) -> str:
    """round.json's accuracy_per_hour as pass@1 points (%) per GPU-hour, or per device-hour on a CPU-only run."""
    per = per or {}
    if per.get("per_gpu_hour") is not None:
        return f"{100 * per['per_gpu_hour']:.1f} per GPU-hour"
    if per.get("per_device_hour") is not None:
        return f"{100 * per['per_device_hour']:.1f} per device-hour (CPU: no GPU-hours)"
    return NONE


def reading(x: Mapping | None) -> str:
    """What a paired delta's CI says: a lift, a drop, or no clear change."""
    if not is_interval(x) or x["value"] is None:
        return NONE
    if x["ci_low"] > 0:
        return "lift (CI above 0)"
    if x["ci_high"] < 0:
        return "drop (CI below 0)"
    return "no clear change (CI spans 0)"


def slice_cells(delta: Mapping) -> list[str]:
    slices = delta.get("slices") or {}
    return [pp(slices.get(level), n=True) for level in SLICES]


def verdict_label(overall: Mapping) -> str:
    other = f": {overall['other']}" if overall.get("other") else ""
    return f"{overall['kind']}{other} ({overall.get('rule_id') or NONE})"


def probe_change(p: Mapping) -> str:
    change, limit, kind = p.get("change"), p.get("threshold"), p.get("change_kind")
    if not isinstance(change, (int, float)) or not isinstance(limit, (int, float)):
        return NONE
    unit = " pp" if kind == "absolute" else "%"
    lo, hi = p.get("ci_low"), p.get("ci_high")
    ci = f" [{100 * lo:+.1f}, {100 * hi:+.1f}]" if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) else ""
    return f"{100 * change:+.1f}{unit}{ci} (limit {100 * limit:.1f}{unit})"


def battery_status(battery: Mapping | None, arm: str) -> str:
    """`battery green (7 probes pass)`, `battery ALERT, 2 alerts: length-median +31.0% [+27.2, +35.1]
    (limit 25.0%); ...` (an alert: the whole 95% CI beyond the limit), each followed by `; watch: ...` (the
    point estimate beyond, the CI not), `battery not green: ...` (nothing measured) or why there is none."""
    if battery is None:
        return "battery not run"
    entry = (battery.get("arms") or {}).get(arm)
    if entry is None:
        return f"battery has no {arm} arm"
    probes = entry.get("probes") or []
    skipped = [p for p in probes if p.get("status") == "skipped"]
    tail = f", {len(skipped)} skipped" if skipped else ""
    if entry.get("safety_skipped"):
        tail += f", safety probes skipped ({entry.get('safety_skipped_reason') or 'no reason recorded'})"
    alerts = [p for p in probes if p.get("status") == "alert"]
    watch = [p for p in probes if p.get("status") == "watch"]
    if watch:  # point estimate beyond its tolerance, CI not: shown, blocks nothing
        tail += "; watch: " + "; ".join(f"{p['name']} {probe_change(p)}" for p in watch)
    n = entry.get("n_alerts", len(alerts))
    if entry.get("green"):
        return f"battery green ({len(probes) - len(skipped) - len(watch)} probes pass{tail})"
    if not n:
        return f"battery not green: no probe measured{tail}"
    listed = "; ".join(f"{p['name']} {probe_change(p)}" for p in alerts) or "see battery.json"
    return f"battery ALERT, {n} alert{'s' if n != 1 else ''}: {listed}{tail}"


def delta_arm(name: str) -> str:
    """The treatment arm of a delta key: `verifier_vs_ssd` -> `verifier`."""
    return name.split("_vs_")[0]


def arm_kind(dir_name: str) -> str:
    """The arm an evaluation directory belongs to: `ssd-T1.1` -> `ssd`, `base` -> `base`."""
    head, sep, tail = dir_name.rpartition("-T")
    return head if sep and tail.replace(".", "", 1).isdigit() else dir_name
