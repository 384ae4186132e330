"""The report's figures as PNG bytes (matplotlib, Agg, no pyplot state): pass@k curves with CI bands,
per-difficulty pass@1 deltas with CI error bars, completion-length distributions, pass@1 against T_eff.

Each figure is drawn only from what the run directory holds; a figure with nothing to draw is absent
(its section says why). Without matplotlib (the `report` extra) there are no figures, and the report
says so where each would be. PNGs carry no timestamp, so the same run renders the same bytes.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from selfdistill.report import fmt
from selfdistill.report.inputs import Run

log = logging.getLogger(__name__)

BASE_COLOR, OTHER_COLOR = "#4c72b0", "#8172b3"  # an arm's own colour is in round.json (arm_records)
GROUPS = ("overall", *fmt.SLICES)


@dataclass(frozen=True)
class Plot:
    name: str  # file stem: report-plots/<name>.png
    png: bytes
    alt: str
    caption: str


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float = 7.0, height: float = 3.8):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _color(arm: str, run: Run) -> str:
    kind = fmt.arm_kind(arm)
    records = (run.round or {}).get("arm_records") or {}
    return BASE_COLOR if kind == "base" else (records.get(kind) or {}).get("colour", OTHER_COLOR)


def _battery_short(run: Run, arm: str) -> str:
    status = fmt.battery_status(run.battery, arm)
    return status.split(":")[0].split(" (")[0].replace("battery ALERT, ", "battery: ")


def _passk_series(run: Run) -> list[tuple[str, str, dict]]:
    """(label, arm kind, {k: interval}) for the diagnostic base and each arm at the headline T_eval."""
    series = []
    base = run.arms.get("base")
    # the arm's own record first (its generation.json, copied into metrics.json), then the run's spec
    t_diag = (((base or {}).get("generation") or {}).get("sampling") or {}).get("temperature")
    if t_diag is None:
        t_diag = (run.spec.get("generation") or {}).get("temperature")
    if base:
        label = "base (diagnostic" + (f", T={t_diag:g})" if t_diag is not None else ")")
        series.append((label, "base", base["metrics"]))
    r = run.round
    row = next((row for row in (r or {}).get("sweep", []) if row.get("t_eval") == r["t_eval"]), None)
    for arm, entry in (row or {}).get("arms", {}).items():
        if arm == "base" and entry.get("name") == "base":
            continue  # the same evaluation as the diagnostic base
        series.append((f"{arm} (T_eval={r['t_eval']:g})", arm, entry.get("metrics") or {}))
    return series


def passk_curves(run: Run) -> Plot | None:
    series = _passk_series(run)
    if not series:
        return None
    fig, ax = _figure()
    all_ks: set[int] = set()
    for i, (label, arm, metrics) in enumerate(series):
        pts = sorted((int(k.split("@")[1]), m) for k, m in metrics.items()
                     if k.startswith("pass@") and fmt.is_interval(m) and m["value"] is not None)
        ks = [k for k, _ in pts]
        all_ks.update(ks)
        val = [100 * m["value"] for _, m in pts]
        ax.fill_between(ks, [100 * m["ci_low"] for _, m in pts], [100 * m["ci_high"] for _, m in pts],
                        color=_color(arm, run), alpha=0.15, linewidth=0)
        ax.plot(ks, val, marker="o", color=_color(arm, run), linestyle="--" if i == 0 and len(series) > 1 else "-",
                label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(all_ks), [str(k) for k in sorted(all_ks)])
    ax.minorticks_off()
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k (%)")
    ax.set_title("pass@k with 95% CI bands (problem-level bootstrap)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return Plot("passk", _png(fig), "pass@k against k per arm, with 95% CI bands",
                "pass@k against k (log scale) per arm; shaded bands are 95% CIs.")


def slice_deltas(run: Run) -> Plot | None:
    deltas = (run.round or {}).get("deltas") or {}
    if not deltas:
        return None
    fig, ax = _figure()
    width = 0.8 / len(deltas)
    for i, (name, d) in enumerate(deltas.items()):
        groups = {"overall": d.get("overall"), **(d.get("slices") or {})}
        xs, ys, lo, hi = [], [], [], []
        for g, group in enumerate(GROUPS):
            x = groups.get(group)
            if fmt.is_interval(x) and x["value"] is not None:
                xs.append(g - 0.4 + width * (i + 0.5))
                ys.append(100 * x["value"])
                lo.append(100 * (x["value"] - x["ci_low"]))
                hi.append(100 * (x["ci_high"] - x["value"]))
        arm = fmt.delta_arm(name)
        marker = "s" if "base" in name.split("_vs_")[1] else "D"
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt=marker, capsize=4, color=_color(arm, run),
                    label=f"{name} ({_battery_short(run, arm)})", alpha=0.6 + 0.4 * (i == 0))
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(GROUPS)), GROUPS)
    ax.set_ylabel("Δ pass@1 (pp)")
    ax.set_title(f"paired pass@1 deltas at T_eval={run.round['t_eval']:g}, 95% CI")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    first = next(iter(deltas.values()))
    source = first.get("slice_source") or "unknown"
    method = f" ({first['slice_method']})" if first.get("slice_method") else ""
    return Plot("slice_deltas", _png(fig), "pass@1 deltas per difficulty slice with 95% CI error bars",
                "Paired pass@1 deltas (pp) overall and per difficulty slice; bars are 95% CIs; "
                "each label carries its treatment arm's battery status. "
                f"Slices: {source}{method}.")


def lengths(run: Run) -> Plot | None:
    arms = {name: v for name, v in run.lengths.items() if v}
    if not arms:
        return None
    fig, ax = _figure(height=3.4 + 0.1 * len(arms))
    names = list(arms)
    box = ax.boxplot([arms[n] for n in names], orientation="horizontal", patch_artist=True,
                     tick_labels=[f"{n} (n={len(arms[n])})" for n in names], flierprops={"markersize": 3},
                     medianprops={"color": "black"})
    for patch, name in zip(box["boxes"], names, strict=True):
        patch.set_facecolor(_color(name, run))
        patch.set_alpha(0.5)
    ax.invert_yaxis()
    ax.set_xlabel("completion tokens per sample")
    ax.set_title("completion-length distribution per evaluation arm")
    ax.grid(axis="x", alpha=0.3)
    return Plot("lengths", _png(fig), "completion-length box plots per arm",
                "Completion tokens per sample (samples.jsonl) per evaluation arm: box = quartiles, line = median.")


def teff(run: Run) -> Plot | None:
    sweep = (run.round or {}).get("sweep") or []
    if not sweep:
        return None
    fig, ax = _figure()
    for arm in ["base", *run.round["arms"]]:
        pts = []
        for row in sweep:
            m = (row["arms"].get(arm) or {}).get("pass@1")
            if fmt.is_interval(m) and m["value"] is not None:
                pts.append((row["t_eval"] if arm == "base" else row["t_eff"], m))
        pts.sort(key=lambda p: p[0])
        if pts:
            ax.errorbar([x for x, _ in pts], [100 * m["value"] for _, m in pts],
                        yerr=[[100 * (m["value"] - m["ci_low"]) for _, m in pts],
                              [100 * (m["ci_high"] - m["value"]) for _, m in pts]],
                        marker="o", capsize=4, color=_color(arm, run), label=arm)
    ax.set_xlabel("T_eff (distilled: T_train × T_eval; base: T_eval)")
    ax.set_ylabel("pass@1 (%)")
    ax.set_title(f"pass@1 against T_eff, 95% CI (T_train = {run.round['sampling']['t_train']:g})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return Plot("teff", _png(fig), "pass@1 against effective temperature per arm",
                "pass@1 against the effective temperature per arm; bars are 95% CIs.")


def make_plots(run: Run) -> dict[str, Plot] | None:
    """Every figure the run can support, by name; None when matplotlib is not installed."""
    if not available():
        log.warning("matplotlib is not installed: the report has no plots (pip install 'selfdistill[report]')")
        return None
    plots = {}
    for make in (passk_curves, slice_deltas, lengths, teff):
        plot = make(run)
        if plot is not None:
            plots[plot.name] = plot
    return plots


def markdown(plots: dict[str, Plot] | None, name: str, absent: str) -> list[str]:
    """The figure as a Markdown image (report-plots/<name>.png) and its caption, or why it is absent."""
    if plots is None:
        return ["*Plot omitted: matplotlib is not installed (`pip install 'selfdistill[report]'`).*", ""]
    plot = plots.get(name)
    if plot is None:
        return [f"*No plot: {absent}.*", ""]
    return [f"![{plot.alt}](report-plots/{plot.name}.png)", "", f"*{plot.caption}*", ""]
