"""Difficulty slices: which problems go in "hard", "medium", "easy", from data that is NOT then measured.

Sources, and the output always says which (`SliceSource`, `ProxyFrom`):
  labels                 the benchmark's own difficulty labels (`Problem.difficulty`), used when every
                         problem has one
  base-pass-rate-proxy   a base model's per-problem pass rate r = c / n, binned
                             hard    r < 1/3
                             medium  1/3 <= r < 2/3
                             easy    r >= 2/3
                         from one of
                           external   a map task_id -> rate from a separate base run with its own seeds
                           cross-fit  (default) the ASSIGN half of this arm's samples (even sample_idx);
                                      every per-slice number is then estimated on the ESTIMATE half
                                      (odd sample_idx) only

Why cross-fitting: choosing a problem's slice by its own outcome is selection on the outcome. A problem
lands in "hard" partly because it was unlucky in these very samples, so on the same samples the hard
slice looks harder than it is, and any later arm looks like it "gained on hard problems" with no true
effect (regression to the mean: +6 pp with its CI excluding 0 in most runs on a Beta(2, 2) population
of 164 problems, n = 16; tests/ssd/test_compare.py measures it). Samples with different sample_idx have
different seeds (`generate.params.sample_seed`), so the two halves are independent draws, and so is any
other arm's half with the same parity. The price: per-slice numbers rest on n/2 samples per problem,
so a slice has pass@k only for k <= n/2.

Not here: a problem-source proxy (a `source` field mapped to a tier) — no shipped set carries one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from selfdistill.errors import DataError
from selfdistill.tasks.problem import Difficulty

HARD_BELOW = 1 / 3  # pass rate < 1/3 -> hard
EASY_FROM = 2 / 3  # pass rate >= 2/3 -> easy; between -> medium
SLICE_ORDER = (Difficulty.HARD, Difficulty.MEDIUM, Difficulty.EASY)
PROXY_BINS = {
    "hard": "base pass rate < 1/3",
    "medium": "1/3 <= base pass rate < 2/3",
    "easy": "base pass rate >= 2/3",
}
ASSIGN_HALF, ESTIMATE_HALF = 0, 1  # sample_idx parity: even samples assign the slice, odd ones estimate
CROSS_FIT_NOTE = (
    "cross-fit: each problem's slice comes from its even-indexed samples' pass rate and every per-slice "
    "number from its odd-indexed samples only (independent seeds), so no slice is chosen from the outcome it "
    "measures; per-slice numbers rest on half the samples (pass@k only for k <= n/2)"
)
EXTERNAL_NOTE = "slices from a separate base run's pass rates (independent of these samples)"


class SliceSource(str, Enum):
    LABELS = "labels"
    PROXY = "base-pass-rate-proxy"


class ProxyFrom(str, Enum):
    EXTERNAL = "external"
    CROSS_FIT = "cross-fit"


@dataclass(frozen=True)
class SliceAssignment:
    source: SliceSource
    proxy_from: ProxyFrom | None  # None when source is LABELS
    by_task: dict[str, Difficulty | None]  # None: no slice (no pass rate known)
    note: str  # how the slices were made, and any caveat; "" when nothing to say

    @property
    def cross_fit(self) -> bool:
        return self.proxy_from is ProxyFrom.CROSS_FIT


def proxy_slice(pass_rate: float) -> Difficulty:
    """The proxy bin of one base pass rate in [0, 1]."""
    if pass_rate < HARD_BELOW:
        return Difficulty.HARD
    return Difficulty.MEDIUM if pass_rate < EASY_FROM else Difficulty.EASY


def proxy_slices(n: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Vectorized `proxy_slice` over problems: 0 hard, 1 medium, 2 easy, -1 when n = 0."""
    n, c = np.asarray(n, dtype=np.float64), np.asarray(c, dtype=np.float64)
    rate = np.divide(c, n, out=np.zeros_like(c), where=n > 0)
    level = np.where(rate < HARD_BELOW, 0, np.where(rate < EASY_FROM, 1, 2))
    return np.where(n > 0, level, -1)


def _label(task_id: str, value) -> Difficulty | None:
    if value is None or isinstance(value, Difficulty):
        return value
    try:
        return Difficulty(value)
    except ValueError:
        allowed = ", ".join(d.value for d in Difficulty)
        raise DataError(f"difficulty label {value!r} for {task_id} is not one of: {allowed}") from None


def _rate(task_id: str, value) -> float:
    rate = float(value)
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise DataError(f"base pass rate {value!r} for {task_id} must be a fraction in [0, 1]")
    return rate


def assign_slices(
    task_ids: Sequence[str],
    n_assign: np.ndarray,
    c_assign: np.ndarray,
    *,
    difficulty: Mapping[str, Difficulty | str | None] | None = None,
    base_pass_rate: Mapping[str, float] | None = None,
) -> SliceAssignment:
    """Labels when every problem has one; otherwise the pass-rate proxy, from `base_pass_rate` (a
    separate run) when given, else cross-fit from the ASSIGN half's counts (`n_assign`, `c_assign`)."""
    labels = {t: _label(t, (difficulty or {}).get(t)) for t in task_ids}
    n_labelled = sum(v is not None for v in labels.values())
    if task_ids and n_labelled == len(task_ids):
        return SliceAssignment(SliceSource.LABELS, None, labels, "")
    partial = (
        f"{len(task_ids) - n_labelled} of {len(task_ids)} problems lack a difficulty label, so labels are not used. "
        if n_labelled
        else ""
    )
    if base_pass_rate is not None:
        by_task = {t: proxy_slice(_rate(t, base_pass_rate[t])) if t in base_pass_rate else None for t in task_ids}
        missing = sum(v is None for v in by_task.values())
        gap = f" {missing} problem(s) have no base pass rate and are in no slice." if missing else ""
        return SliceAssignment(SliceSource.PROXY, ProxyFrom.EXTERNAL, by_task, partial + EXTERNAL_NOTE + "." + gap)
    levels = proxy_slices(n_assign, c_assign)
    by_task = {t: SLICE_ORDER[lv] if lv >= 0 else None for t, lv in zip(task_ids, levels.tolist(), strict=True)}
    return SliceAssignment(SliceSource.PROXY, ProxyFrom.CROSS_FIT, by_task, partial + CROSS_FIT_NOTE)
