"""Ship means Pareto: SSD against every comparator on (pass@1, cost), from the round's own records.

    points      every measured arm of the round (SSD arms and comparator arms: pass@1 at T_eval with its CI,
                the hours that produced it, from round.json) and the spec's declared comparator when it gives
                pass_at_1 and gpu_hours (labelled "declared": measured elsewhere, not on this held-out set)
    dominance   who Pareto-dominates: higher pass@1 SETTLED (the paired delta's 95% CI excludes 0 when both
                are measured here; else the arm's whole CI on one side of the declared point) at no more cost
    versus      one SSD arm against every comparator: the verdict per comparator, and by how much

Cost: two arms measured in one run compare in device-hours (the same machines); against a declared comparator
the arm's GPU-hours. An arm that ran on CPU has only device-hours: against declared GPU-hours that is not like
for like (UNLIKE), and such a pair dominates nothing either way. Not here: the
promotion rule that reads this (ssd/promotion.py), the report's tables (report/costs.py).
"""

from __future__ import annotations

from selfdistill.ssd.arms import ARMS, delta_key


def points_is_comparator(summary: dict, arm: str) -> bool:
    """From the run's own record of the arm (round.json arm_records), else the registry."""
    record = (summary.get("arm_records") or {}).get(arm) or {}
    return bool(record.get("comparator", arm in ARMS and ARMS[arm].comparator))


def points(spec, summary: dict) -> list[dict]:
    return points_from(spec.comparator.model_dump(mode="json") if spec.comparator else None, summary)


def points_from(comparator: dict | None, summary: dict) -> list[dict]:
    """`points` from the comparator section as a plain dict (the spec recorded in manifest.json: the report)."""
    out = []
    costs = (summary.get("costs") or {}).get("arms") or {}
    for arm in summary["arms"]:
        hours = (costs.get(arm) or {}).get("hours_to_produce") or {}
        out.append({"name": arm, "source": "measured", "comparator": points_is_comparator(summary, arm),
                    "pass_at_1": summary["deltas"][delta_key(arm, "base")]["treatment_pass_at_1"],
                    "device_hours": hours.get("device_hours"), "gpu_hours": hours.get("gpu_hours")})
    c = comparator or {}
    if c.get("pass_at_1") is not None and c.get("gpu_hours") is not None and c.get("kind") not in summary["arms"]:
        out.append({"name": c["kind"], "source": "declared", "comparator": True,
                    "pass_at_1": {"value": c["pass_at_1"], "ci_low": None, "ci_high": None},
                    "device_hours": None, "gpu_hours": c["gpu_hours"]})
    return out


def base_point(summary: dict) -> dict | None:
    """The base model at T_eval as a point of the plane: it costs nothing to produce (it is where every arm starts)."""
    row = next((r for r in summary.get("sweep") or [] if r.get("t_eval") == summary.get("t_eval")), None)
    p1 = ((row or {}).get("arms", {}).get("base") or {}).get("pass@1")
    if p1 is None:
        return None
    return {"name": "base", "source": "measured", "comparator": False, "base": True, "pass_at_1": p1,
            "device_hours": 0.0, "gpu_hours": 0.0}


def table(comparator: dict | None, summary: dict) -> dict:
    """Every point of the round (the base, each measured arm, the declared comparator) and the dominance
    relation of every pair, in table order: what the report's B.6 shows."""
    pts = [p for p in [base_point(summary), *points_from(comparator, summary)] if p is not None]
    pairs = [dominance(a, b, summary) for i, a in enumerate(pts) for b in pts[i + 1:]]
    return {"points": pts, "pairs": pairs}


def _accuracy(a: dict, b: dict, summary: dict) -> tuple[str, dict]:
    """'higher' | 'lower' | 'tied' for a against b, and the difference (pp; with a CI when paired)."""
    deltas = summary.get("deltas") or {}
    if b["source"] == "measured":
        for key, sign in ((delta_key(a["name"], b["name"]), 1), (delta_key(b["name"], a["name"]), -1)):
            if key in deltas:
                o = deltas[key]["overall"]
                lo, hi = sorted((sign * o["ci_low"] + 0.0, sign * o["ci_high"] + 0.0))  # + 0.0: no -0.0 when flipped
                diff = {"value": sign * o["value"] + 0.0, "ci_low": lo, "ci_high": hi, "how": "paired delta, 95% CI"}
                return ("higher" if lo > 0 else "lower" if hi < 0 else "tied"), diff
    p, q = a["pass_at_1"], b["pass_at_1"]
    diff = {"value": p["value"] - q["value"], "ci_low": None, "ci_high": None,
            "how": "the arm's 95% CI against the other's point"}
    if p["ci_low"] is None:  # a declared point is the treatment: use the other's CI, mirrored
        acc, _ = _accuracy(b, a, summary)
        return {"higher": "lower", "lower": "higher"}.get(acc, acc), diff
    return ("higher" if p["ci_low"] > q["value"] else "lower" if p["ci_high"] < q["value"] else "tied"), diff


UNLIKE = "device-hours on CPU against declared GPU-hours: not like for like"


def _costs(a: dict, b: dict) -> tuple[float | None, float | None, str]:
    if a["source"] == b["source"] == "measured":
        return a["device_hours"], b["device_hours"], "device-hours, same run"
    measured = a if a["source"] == "measured" else b
    if measured.get("base"):  # the base costs nothing to produce, in any unit
        return a["gpu_hours"], b["gpu_hours"], "GPU-hours (the base costs nothing to produce)"
    if (measured["gpu_hours"] or 0) > 0:
        return a["gpu_hours"], b["gpu_hours"], "GPU-hours"
    ca = a["device_hours"] if a is measured else a["gpu_hours"]
    cb = b["device_hours"] if b is measured else b["gpu_hours"]
    return ca, cb, UNLIKE


def dominance(a: dict, b: dict, summary: dict) -> dict:
    """Does a dominate b, b dominate a, or neither; with the accuracy difference and both costs."""
    acc, diff = _accuracy(a, b, summary)
    ca, cb, unit = _costs(a, b)
    if ca is None or cb is None:
        verdict, why = "neither", "a cost is missing from the ledger"
    elif unit == UNLIKE and acc != "tied":  # hours in different units decide nothing, either way
        verdict, why = "neither", ("undecided: the costs are not like for like (CPU device-hours against declared "
                                   "GPU-hours); measure the comparator in the same run, or run on GPUs")
    elif acc == "higher" and ca <= cb:
        verdict, why = a["name"], "higher pass@1 (settled) at no more cost"
    elif acc == "lower" and cb <= ca:
        verdict, why = b["name"], "higher pass@1 (settled) at no more cost"
    elif acc == "tied":
        verdict, why = "neither", "pass@1 tied within the 95% CI"
    else:
        verdict, why = "neither", "a trade-off: the more accurate one costs more"
    return {"arm": a["name"], "comparator": b["name"], "comparator_source": b["source"], "dominates": verdict,
            "why": why, "pass_at_1_diff": diff, "cost": {"arm": ca, "comparator": cb, "unit": unit}}


def versus(spec, summary: dict, arm: str) -> list[dict]:
    """The SSD arm `arm` against every comparator with numbers (measured arms first, then the declared one)."""
    pts = points(spec, summary)
    me = next(p for p in pts if p["name"] == arm)
    return [dominance(me, p, summary) for p in pts if p["comparator"]]


def describe(d: dict) -> str:
    diff, cost = d["pass_at_1_diff"], d["cost"]
    ci = (f" [{100 * diff['ci_low']:+.1f}, {100 * diff['ci_high']:+.1f}]" if diff["ci_low"] is not None else "")
    money = (f"{cost['arm']:.3g} vs {cost['comparator']:.3g} {cost['unit']}"
             if cost["arm"] is not None and cost["comparator"] is not None else "cost unknown")
    label = f"{d['comparator']} ({d['comparator_source']})"
    return f"{d['arm']} vs {label}: pass@1 {100 * diff['value']:+.1f} pp{ci} ({diff['how']}), cost {money}"
