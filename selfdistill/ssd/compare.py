"""Paired deltas between evaluated arms: treatment pass@1 - baseline pass@1 per problem, problem-level
paired bootstrap (one resample of shared problems for both arms), overall and per difficulty slice.

Slices come from ONE assignment for both arms (`slice_of`, read from the slicing arm's metrics.json), and
never from the outcome they then measure:
  labels / external   the slices are independent of every compared sample: slice deltas use all samples
  cross-fit           the slicing arm's ASSIGN half (even sample_idx) chose each slice; slice deltas are
                      estimated on the ESTIMATE half (odd sample_idx) of BOTH compared arms. Samples share
                      seeds only at equal sample_idx, so this holds even when the slicing arm IS the
                      baseline (T_eval at the diagnostic temperature)
With no true effect, slicing by the baseline's own samples shows a "gain on hard problems" (+6 pp, CI
excluding 0 in most runs, on a Beta(2, 2) population of 164 problems, n = 16); cross-fitting removes it
(tests/ssd/test_compare.py). The overall delta always uses every sample. Each delta carries its slice
source, method and caveat.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from selfdistill.metrics.bootstrap import paired_diff

SLICES = ("easy", "medium", "hard")
OLD_METRICS_NOTE = (
    "a metrics.json lacks the per-problem halves (written by an older selfdistill), so the slice deltas use "
    "all samples of slices chosen from the same samples: selection on the outcome, biased toward a 'gain on "
    "hard problems'; rescore the arms (delete their metrics.json and rerun) for cross-fit slices"
)


@dataclass(frozen=True)
class Slicing:
    """One slice assignment for every compared pair. `cross_fit`: estimate slice deltas on the odd half."""

    by_task: dict[str, str | None]
    source: str
    method: str
    note: str
    cross_fit: bool


def per_problem_pass1(metrics: dict, half: str | None = None) -> dict[str, float] | None:
    """task_id -> c / n from a metrics.json (problems with n = 0 are left out); `half` "assign" or
    "estimate" reads that half's counts (None when the metrics.json has no halves)."""
    out = {}
    for t, p in metrics["per_problem"].items():
        counts = p if half is None else (p.get("halves") or {}).get(half)
        if counts is None:
            return None
        if counts["n"] > 0:
            out[t] = counts["c"] / counts["n"]
    return out


def slice_of(metrics: dict) -> Slicing:
    """The slice assignment recorded in the slicing arm's metrics.json, and how to estimate on it."""
    by_task = {t: p.get("slice") for t, p in metrics["per_problem"].items()}
    source = metrics.get("slice_source") or "none"
    cross_fit = metrics.get("slice_proxy_from") == "cross-fit"
    if cross_fit:
        method = ("cross-fit: slices from the slicing arm's even-indexed samples, "
                  "slice deltas on both arms' odd-indexed samples")
    elif metrics.get("slice_proxy_from") == "external":
        method = "pass rates of a separate base run; slice deltas on all samples"
    elif source == "labels":
        method = "benchmark difficulty labels; slice deltas on all samples"
    else:
        method = "unknown"
    return Slicing(by_task, source, method, metrics.get("slice_note") or "", cross_fit)


def _as_slicing(slices: Slicing | Mapping[str, str | None], slice_source: str | None) -> Slicing:
    if isinstance(slices, Slicing):
        return slices
    return Slicing(dict(slices), slice_source or "given", "given by the caller; slice deltas on all samples", "", False)


def delta(baseline: dict, treatment: dict, slices: Slicing | Mapping[str, str | None], *, n_resamples: int,
          seed: int, slice_source: str | None = None) -> dict:
    """The paired pass@1 delta, overall and per slice (fractions; pp in the rendering). `slices`: a
    `Slicing` from `slice_of`, or a plain task_id -> slice map taken as independent of both arms.
    `slice_source` names where the slices came from (default: the Slicing's own source)."""
    sl = _as_slicing(slices, slice_source)
    base, treat = per_problem_pass1(baseline), per_problem_pass1(treatment)
    overall = paired_diff(base, treat, n_resamples=n_resamples, seed=seed)
    note = sl.note
    if sl.cross_fit:
        base_s, treat_s = per_problem_pass1(baseline, "estimate"), per_problem_pass1(treatment, "estimate")
        if base_s is None or treat_s is None:
            base_s, treat_s, note = base, treat, OLD_METRICS_NOTE
        elif not base_s or not treat_s:
            note += "; no problem has an odd-indexed sample (one sample per problem), so there is no slice delta"
    else:
        base_s, treat_s = base, treat
    out = {
        "overall": overall.to_json(),
        "baseline_pass_at_1": baseline["metrics"]["pass@1"],
        "treatment_pass_at_1": treatment["metrics"]["pass@1"],
        "slice_source": slice_source or sl.source,
        "slice_method": sl.method,
        "slice_note": note,
        "slices": {},
    }
    for level in SLICES:
        ids = {t for t, s in sl.by_task.items() if s == level}
        b = {t: v for t, v in base_s.items() if t in ids}
        tr = {t: v for t, v in treat_s.items() if t in ids}
        if set(b) & set(tr):
            out["slices"][level] = paired_diff(b, tr, n_resamples=n_resamples, seed=seed).to_json()
    return out
