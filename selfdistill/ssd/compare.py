"""Paired deltas between evaluated arms: treatment pass@1 - baseline pass@1 per problem, problem-level
paired bootstrap (one resample of shared problems for both arms), overall and per difficulty slice.

Slices come from ONE assignment for both arms, so a delta compares the same problems: the labels when the
held-out set has them, else the base-pass-rate proxy computed from the diagnostic `base` arm (a separate
sample set from the T_eval arms whenever T_eval differs from the diagnostic temperature). Each delta says
where its slices came from.
"""

from __future__ import annotations

from selfdistill.metrics.bootstrap import paired_diff


def per_problem_pass1(metrics: dict) -> dict[str, float]:
    """task_id -> c / n from a metrics.json (problems with n = 0 are left out)."""
    return {t: p["c"] / p["n"] for t, p in metrics["per_problem"].items() if p["n"] > 0}


def slice_of(metrics: dict) -> dict[str, str | None]:
    return {t: p.get("slice") for t, p in metrics["per_problem"].items()}


def delta(baseline: dict, treatment: dict, slices: dict[str, str | None], *, n_resamples: int, seed: int,
          slice_source: str) -> dict:
    """The paired pass@1 delta, overall and per slice (fractions; pp in the rendering)."""
    base, treat = per_problem_pass1(baseline), per_problem_pass1(treatment)
    overall = paired_diff(base, treat, n_resamples=n_resamples, seed=seed)
    out = {
        "overall": overall.to_json(),
        "baseline_pass_at_1": baseline["metrics"]["pass@1"],
        "treatment_pass_at_1": treatment["metrics"]["pass@1"],
        "slice_source": slice_source,
        "slices": {},
    }
    for level in ("easy", "medium", "hard"):
        ids = {t for t, s in slices.items() if s == level}
        b = {t: v for t, v in base.items() if t in ids}
        tr = {t: v for t, v in treat.items() if t in ids}
        if set(b) & set(tr):
            out["slices"][level] = paired_diff(b, tr, n_resamples=n_resamples, seed=seed).to_json()
    return out
