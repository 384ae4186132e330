"""The diversity-at-k probes: does the arm still find, in k samples, what the base found?

Both read the two metrics.json files' `per_problem` counts (n, c), on the problems both arms have with
n >= k (k = the largest k > 1 both report), and pair them problem by problem:

  mode-collapse   Δpass@1 and Δpass@k on ONE resample of those problems. ALERT when pass@1 rose and the
                  whole CI of Δpass@k lies below 0; WATCH when only the point estimates show pass@1 up and
                  pass@k down (that bare pattern shows in 17-20 % of runs with no change at all:
                  tests/battery/test_uncertainty.py)
  passk-flatten   the gain g = pass@k - pass@1 per problem; relative change of its mean, with its CI

Without per-problem counts (a metrics.json from elsewhere) the point estimates are compared with no CI,
so neither probe can be more than a watch. Unbiased per-problem pass@k: `selfdistill.metrics.passk`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from selfdistill.battery import probes as P
from selfdistill.battery import uncertainty as U
from selfdistill.battery.result import ChangeKind, Direction, Family, Measured, ProbeResult, ProbeStatus, judge
from selfdistill.metrics.passk import pass_at_k

ABS, REL, DROP = ChangeKind.ABSOLUTE, ChangeKind.RELATIVE, Direction.DROP


def _per_problem(bm: Mapping, am: Mapping, k: int) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """Problems both metrics.json list with n >= k, and per problem [pass@1, pass@k] for base and arm."""
    bp, ap = bm.get("per_problem") or {}, am.get("per_problem") or {}
    ids = sorted(t for t in set(bp) & set(ap) if bp[t].get("n", 0) >= k and ap[t].get("n", 0) >= k)
    if not ids:
        return None

    def table(pp: Mapping) -> np.ndarray:
        n = np.array([pp[t]["n"] for t in ids])
        c = np.array([pp[t]["c"] for t in ids])
        return np.stack([c / n, pass_at_k(n, c, k, ids)])

    return ids, table(bp), table(ap)


def _ci(i: Mapping) -> str:
    lo, hi = i.get("ci_low"), i.get("ci_high")
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return f"{i['value']:.3f}{ci}"


@dataclass(frozen=True)
class AtK:
    """What both diversity-at-k probes read: k, the four intervals, the paired changes and the gain's."""

    k: int
    b1: Mapping
    a1: Mapping
    bk: Mapping
    ak: Mapping
    d1: U.Change
    dk: U.Change
    flat: U.Change | None
    gb: float | None


def at_k(bm: Mapping, am: Mapping, ctx: U.Units) -> AtK | str:
    """The diversity-at-k inputs of two metrics.json dicts, or why neither probe can run."""
    k = P.largest_common_k(bm, am)
    b1, a1 = P.interval(bm, "pass@1"), P.interval(am, "pass@1")
    if k is None:
        return "base and arm metrics.json share no pass@k with k > 1 and a value (eval.k holds only 1?)"
    if b1 is None or a1 is None:
        return "pass@1 is missing from a metrics.json"
    bk, ak = P.interval(bm, f"pass@{k}"), P.interval(am, f"pass@{k}")
    per = _per_problem(bm, am, k)
    if per is None:  # no per-problem counts: point estimates only, so no CI and at most a watch
        d1 = U.Change(b1["value"], a1["value"], a1["value"] - b1["value"], None, None, 0)
        dk = U.Change(bk["value"], ak["value"], ak["value"] - bk["value"], None, None, 0)
        gb, ga = P.gain(bm, k), P.gain(am, k)
        flat = None if gb is None or ga is None or gb <= 0 else U.Change(gb, ga, (ga - gb) / gb, None, None, 0)
    else:
        _, pb, pa = per
        ch = U.mean_changes({"pass@1": (pb[0], pa[0]), f"pass@{k}": (pb[1], pa[1])}, **ctx.opts("mode-collapse"))
        d1, dk = ch["pass@1"], ch[f"pass@{k}"]
        gb = float((pb[1] - pb[0]).mean())
        flat = None if gb <= 0 else U.ratio_change(pb[1] - pb[0], np.ones(len(per[0])), pa[1] - pa[0],
                                                   np.ones(len(per[0])), REL, 1e-12, **ctx.opts("passk-flatten"))
    return AtK(k, b1, a1, bk, ak, d1, dk, flat, gb)


def mode_collapse(x: AtK | str) -> ProbeResult | Measured:
    """Read by its own rule: ALERT when pass@1 rose and the whole CI of Δpass@k lies below 0."""
    if isinstance(x, str):
        return Measured(None, missing=x)
    d1, dk, k = x.d1, x.dk, x.k
    status = judge(dk.change, dk.ci_low, dk.ci_high, 0.0, DROP) if d1.change > 0 else ProbeStatus.PASS
    ci = lambda c: f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]" if c.ci_low is not None else "(no CI)"  # noqa: E731
    detail = (
        f"paired over {dk.n_units} problems: Δpass@1 {d1.change:+.3f} {ci(d1)}, Δpass@{k} {dk.change:+.3f} {ci(dk)} "
        f"(metrics.json: pass@1 base {_ci(x.b1)} -> arm {_ci(x.a1)}; pass@{k} base {_ci(x.bk)} -> arm {_ci(x.ak)}); "
        f"alert when pass@1 rises while the whole CI of Δpass@{k} lies below 0, watch when only the point estimates "
        "show the pattern"
    )
    extra = {"k": k, "pass@1": {"base": x.b1, "arm": x.a1, "delta": _json(d1)},
             f"pass@{k}": {"base": x.bk, "arm": x.ak, "delta": _json(dk)}}
    return ProbeResult("mode-collapse", Family.DIVERSITY_AT_K, dk.arm, dk.base, dk.change, ABS, DROP, 0.0, status,
                       detail, extra, dk.ci_low, dk.ci_high, dk.n_units, "problem")


def flatten(x: AtK | str) -> Measured:
    """The relative change of the mean gain g = pass@k - pass@1 (none when the base has no gain)."""
    if isinstance(x, str):
        return Measured(None, missing=x)
    if x.flat is None:
        return Measured(None, {"k": x.k},
                        missing=f"the base has no pass@{x.k} - pass@1 gain to flatten (g_base = {x.gb})")
    return Measured(x.flat, {"k": x.k}, what=f"gain g = pass@{x.k} - pass@1")


def _json(c: U.Change) -> dict:
    return {"base": c.base, "arm": c.arm, "change": c.change, "ci_low": c.ci_low, "ci_high": c.ci_high,
            "n_units": c.n_units}
