"""Paired bootstrap CIs for the battery's base -> arm changes, and the rule that reads them.

A probe's number is a statistic over completions, but completions of one prompt are not independent
draws: the unit of resampling is the prompt (a held-out problem; a safety probe prompt for the safety
probes). One (B, U) multiplicity matrix (`metrics.bootstrap.resample_counts`) resamples units for BOTH
models at once, so the CI is for the change itself (paired), whatever the statistic:

  ratio_change      sum(num) / sum(den) per model: a mean over completions (repetition, self-BLEU), a
                    pooled share (distinct-3 within a prompt, comment lines, docstrings, refusals)
  quantile_change   a quantile of per-completion values (median and p95 length), with the resampled
                    completions weighted by their unit's multiplicity (linear interpolation, as np.percentile)
  mean_changes      several per-unit mean differences on the same resample (pass@1 and pass@k)

`Units` maps the aligned samples to their prompts and gives each probe its own seeded stream. The rule
that reads a CI is `result.judge`.
Percentile intervals; with a dozen units (the safety probe set) they under-cover a little.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from selfdistill.battery.result import ChangeKind
from selfdistill.metrics.bootstrap import resample_counts

N_RESAMPLES = 2000
CONFIDENCE = 0.95
_ROWS = 256  # resamples per block for quantiles: bounds memory at rows x completions


@dataclass(frozen=True)
class Change:
    """base -> arm, the signed change and its paired bootstrap CI (None when not computable)."""

    base: float
    arm: float
    change: float
    ci_low: float | None
    ci_high: float | None
    n_units: int


def _change(base, arm, kind: ChangeKind, floor: float):
    if kind is ChangeKind.ABSOLUTE:
        return arm - base
    return (arm - base) / np.maximum(np.abs(base), floor)


def _interval(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def ratio_change(num_b, den_b, num_a, den_a, kind: ChangeKind, floor: float, *, n_resamples: int = N_RESAMPLES,
                 seed: int | np.random.Generator = 0, confidence: float = CONFIDENCE) -> Change | None:
    """sum(num)/sum(den) for base and arm (per-unit arrays aligned on the same units); None when a
    model has nothing to measure (sum(den) = 0)."""
    arrays = [np.asarray(x, dtype=np.float64) for x in (num_b, den_b, num_a, den_a)]
    if arrays[1].sum() <= 0 or arrays[3].sum() <= 0:
        return None
    base, arm = arrays[0].sum() / arrays[1].sum(), arrays[2].sum() / arrays[3].sum()
    w = resample_counts(arrays[0].size, n_resamples, seed).astype(np.float64)
    nb, db, na, da = (w @ x for x in arrays)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = _change(nb / db, na / da, kind, floor)
    low, high = _interval(boot, confidence)
    return Change(float(base), float(arm), float(_change(base, arm, kind, floor)), low, high, arrays[0].size)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> np.ndarray:
    """Per row of integer `weights` (B, N), the q-quantile of `values` (sorted, N) repeated that many
    times: linear interpolation between order statistics, as np.percentile on the expanded sample."""
    cum = np.cumsum(weights, axis=1)
    total = cum[:, -1]
    h = (total - 1) * q
    lo = np.floor(h)
    j_lo = (cum <= lo[:, None]).sum(axis=1)
    j_hi = np.minimum((cum <= (lo + 1)[:, None]).sum(axis=1), values.size - 1)
    return values[j_lo] + (h - lo) * (values[j_hi] - values[j_lo])


def quantile_change(values_b, units_b, values_a, units_a, n_units: int, q: float, floor: float, *,
                    n_resamples: int = N_RESAMPLES, seed: int | np.random.Generator = 0,
                    confidence: float = CONFIDENCE) -> Change | None:
    """Relative change of the q-quantile of per-completion values; `units_*[i]` is completion i's unit."""
    vb, va = np.asarray(values_b, dtype=np.float64), np.asarray(values_a, dtype=np.float64)
    if vb.size == 0 or va.size == 0:
        return None
    base, arm = float(np.quantile(vb, q)), float(np.quantile(va, q))
    ob, oa = np.argsort(vb, kind="stable"), np.argsort(va, kind="stable")
    ub, ua = np.asarray(units_b)[ob], np.asarray(units_a)[oa]
    w = resample_counts(n_units, n_resamples, seed)
    boot = np.empty(w.shape[0])
    for start in range(0, w.shape[0], _ROWS):
        rows = w[start:start + _ROWS]
        qb = _weighted_quantile(vb[ob], rows[:, ub], q)
        qa = _weighted_quantile(va[oa], rows[:, ua], q)
        with np.errstate(divide="ignore", invalid="ignore"):
            boot[start:start + _ROWS] = _change(qb, qa, ChangeKind.RELATIVE, floor)
    low, high = _interval(boot, confidence)
    return Change(base, arm, float(_change(base, arm, ChangeKind.RELATIVE, floor)), low, high, n_units)


def mean_changes(pairs: dict[str, tuple[np.ndarray, np.ndarray]], *, n_resamples: int = N_RESAMPLES,
                 seed: int | np.random.Generator = 0, confidence: float = CONFIDENCE) -> dict[str, Change]:
    """For each name, mean(arm) - mean(base) of per-unit scores on ONE shared resample of the units."""
    first = next(iter(pairs.values()))[0]
    w = resample_counts(len(first), n_resamples, seed).astype(np.float64) / len(first)
    out = {}
    for name, (b, a) in pairs.items():
        b, a = np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64)
        low, high = _interval(w @ (a - b), confidence)
        out[name] = Change(float(b.mean()), float(a.mean()), float((a - b).mean()), low, high, b.size)
    return out


@dataclass(frozen=True)
class Units:
    """What every probe needs for its CI: the aligned samples' prompts (units) and the bootstrap settings."""

    units: list[str]  # sorted task ids of the compared samples
    unit_of: list[int]  # per aligned sample, its index in `units`
    n_resamples: int
    seed: int

    def rng(self, probe: str) -> np.random.Generator:
        """A stream per probe, so adding a probe never moves another probe's CI."""
        return np.random.default_rng([self.seed, zlib.crc32(probe.encode())])

    def opts(self, probe: str) -> dict:
        return {"n_resamples": self.n_resamples, "seed": self.rng(probe)}

    def sums(self, values, positions=None) -> tuple[np.ndarray, np.ndarray]:
        """Per-unit (sum of values, count of values); None values left out."""
        num, den = np.zeros(len(self.units)), np.zeros(len(self.units))
        for i, v in zip(positions if positions is not None else range(len(values)), values, strict=True):
            if v is not None:
                num[self.unit_of[i]] += v
                den[self.unit_of[i]] += 1
        return num, den


def units_of(samples: list[Mapping], n_resamples: int = N_RESAMPLES, seed: int = 0) -> Units:
    """The prompts (task ids) of aligned samples, the CI's resampling units."""
    units = sorted({str(s["task_id"]) for s in samples})
    index = {u: i for i, u in enumerate(units)}
    return Units(units, [index[str(s["task_id"])] for s in samples], n_resamples, seed)
