"""95% confidence intervals by problem-level bootstrap (percentile intervals).

The unit of resampling is the problem: a benchmark is a sample of problems, and samples within a
problem are not independent draws of "the benchmark". Each resample draws P problem indices with
replacement; the statistic is the mean over problems of a per-problem score (pass@k, or a
per-problem difference). Resamples are drawn as a B x P index matrix in blocks of rows (bounded
memory, no Python loop over single resamples), from a seeded `numpy.random.Generator`.

Entry points:
  bootstrap_mean     one per-problem score -> point estimate (mean over problems) and CI
  bootstrap_gap      pass@k - pass@1 within one arm: the SAME resample for both, so the CI is for the
                     gap itself (equivalently, the bootstrap of per-problem differences)
  paired_diff        treatment - baseline on the problems both arms share (intersected by task id;
                     the problems only one arm has are counted and named, never silently dropped)
  resample_counts    the (B, P) multiplicity matrix itself, for statistics that are not a mean of one
                     per-problem score (ratios of sums, quantiles, several arms at once: the battery)

What this does not do: BCa or studentized intervals; with tens of problems a percentile interval
under-covers a little (see tests/metrics/test_bootstrap.py for the measured coverage).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from selfdistill.errors import DataError

N_RESAMPLES = 10_000
CONFIDENCE = 0.95
_ROUNDOFF = 1e-12
_BLOCK_CELLS = 4_000_000  # index-matrix cells per block: bounds memory at ~32 MB of int64


@dataclass(frozen=True)
class Interval:
    """A point estimate (mean over problems) with its bootstrap CI; fractions 0..1."""

    value: float
    ci_low: float
    ci_high: float
    n_problems: int

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PairedDiff:
    """treatment - baseline on shared problems, plus what was not shared."""

    diff: Interval
    dropped_baseline_only: tuple[str, ...]
    dropped_treatment_only: tuple[str, ...]

    @property
    def n_dropped(self) -> int:
        return len(self.dropped_baseline_only) + len(self.dropped_treatment_only)

    def to_json(self) -> dict:
        return {
            **self.diff.to_json(),
            "n_dropped": self.n_dropped,
            "dropped_baseline_only": list(self.dropped_baseline_only),
            "dropped_treatment_only": list(self.dropped_treatment_only),
        }


def _scores(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(f"{name} must be a 1-D array of per-problem scores, got shape {arr.shape}")
    if arr.size == 0:
        raise DataError(f"{name} is empty: a bootstrap needs at least one problem")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} holds non-finite values (NaN or inf); fix the per-problem scores")
    return arr


def _check_options(n_resamples: int, confidence: float) -> None:
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise DataError(f"n_resamples={n_resamples!r} must be a whole number >= 1")
    if not 0.0 < confidence < 1.0:
        raise DataError(f"confidence={confidence!r} must lie strictly between 0 and 1 (e.g. 0.95)")


def _generator(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def resample_means(x, n_resamples: int = N_RESAMPLES, seed: int | np.random.Generator = 0) -> np.ndarray:
    """The B bootstrap means of per-problem scores `x` (problem-level resampling). Shape (B,)."""
    x = _scores(x, "x")
    rng = _generator(seed)
    n_problems = x.size
    rows = max(1, _BLOCK_CELLS // n_problems)
    means = np.empty(int(n_resamples), dtype=np.float64)
    for start in range(0, int(n_resamples), rows):  # blocks of resamples, not single resamples
        stop = min(start + rows, int(n_resamples))
        idx = rng.integers(0, n_problems, size=(stop - start, n_problems))
        means[start:stop] = x[idx].mean(axis=1)
    return means


def resample_counts(
    n_units: int, n_resamples: int = N_RESAMPLES, seed: int | np.random.Generator = 0
) -> np.ndarray:
    """How often each unit (problem) is drawn in each of B resamples: a (B, n_units) int32 matrix whose
    rows sum to n_units. `counts @ x` is then the resampled sum of any per-unit quantity x, so ratios of
    sums and paired statistics of several arrays share one resample (the battery's CIs use it)."""
    _check_options(n_resamples, CONFIDENCE)
    if n_units < 1:
        raise DataError("a bootstrap needs at least one unit (problem) to resample")
    rng = _generator(seed)
    b = int(n_resamples)
    idx = rng.integers(0, n_units, size=(b, n_units))
    flat = (idx + n_units * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n_units).reshape(b, n_units).astype(np.int32)


def percentile_interval(point: float, means: np.ndarray, n_problems: int, confidence: float) -> Interval:
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    # Summation order can put an all-equal point a hair outside [low, high]; snap round-off only.
    low = point if 0.0 < low - point < _ROUNDOFF else low
    high = point if 0.0 < point - high < _ROUNDOFF else high
    return Interval(float(point), float(low), float(high), int(n_problems))


def bootstrap_mean(
    x, *, n_resamples: int = N_RESAMPLES, seed: int | np.random.Generator = 0, confidence: float = CONFIDENCE
) -> Interval:
    """Mean over problems of per-problem scores `x`, with a percentile bootstrap CI."""
    _check_options(n_resamples, confidence)
    x = _scores(x, "x")
    return percentile_interval(x.mean(), resample_means(x, n_resamples, seed), x.size, confidence)


def bootstrap_gap(
    pass1,
    passk,
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int | np.random.Generator = 0,
    confidence: float = CONFIDENCE,
) -> Interval:
    """pass@k - pass@1 within one arm, per-problem arrays aligned on the same problems. The same
    resampled problems feed both means, so this is the CI of the gap, not two CIs subtracted."""
    a, b = _scores(pass1, "pass1"), _scores(passk, "passk")
    if a.shape != b.shape:
        raise DataError(f"pass1 and passk must cover the same problems, got {a.size} and {b.size} values")
    return bootstrap_mean(b - a, n_resamples=n_resamples, seed=seed, confidence=confidence)


def paired_diff(
    baseline: Mapping[str, float],
    treatment: Mapping[str, float],
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int | np.random.Generator = 0,
    confidence: float = CONFIDENCE,
) -> PairedDiff:
    """treatment - baseline, each a map task_id -> per-problem score (e.g. pass@1). Problems are
    intersected by task id; one resample of shared problem indices is applied to both arms."""
    shared = sorted(set(baseline) & set(treatment))
    if not shared:
        raise DataError(
            f"the two arms share no task ids (baseline has {len(baseline)}, treatment {len(treatment)}); "
            "evaluate both arms on the same problem set"
        )
    base = np.array([baseline[t] for t in shared], dtype=np.float64)
    treat = np.array([treatment[t] for t in shared], dtype=np.float64)
    diff = bootstrap_mean(treat - base, n_resamples=n_resamples, seed=seed, confidence=confidence)
    return PairedDiff(
        diff=diff,
        dropped_baseline_only=tuple(sorted(set(baseline) - set(treatment))),
        dropped_treatment_only=tuple(sorted(set(treatment) - set(baseline))),
    )
