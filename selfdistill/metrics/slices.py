"""Difficulty slices: which problems go in "hard", "medium", "easy".

Two sources, and the output always says which (`SliceSource`):
  labels                 the benchmark's own difficulty labels (`Problem.difficulty`), used when every
                         problem has one
  base-pass-rate-proxy   the base model's per-problem pass rate r = c / n, binned as
                             hard    r < 1/3
                             medium  1/3 <= r < 2/3
                             easy    r >= 2/3
                         from an external map task_id -> rate (a separate base run) when given,
                         otherwise from the same samples being scored

Caution, proxy from the same samples: choosing a problem's slice by its own outcome is selection on
the outcome. Within-slice pass@1 is biased (hard problems look harder, easy ones easier; regression
to the mean). The slice *gap* is still informative about where SSD could help, but compare arms on a
slice only with slices fixed by a separate base run (`base_pass_rate=`).
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
SAME_SAMPLE_WARNING = (
    "slices are chosen from the same samples' pass rate (selection on the outcome): within-slice "
    "pass@1 is biased, hard slices look harder and easy ones easier; give a separate base run's "
    "per-problem pass rates to fix the slices independently"
)


class SliceSource(str, Enum):
    LABELS = "labels"
    PROXY = "base-pass-rate-proxy"


class ProxyFrom(str, Enum):
    SAME_SAMPLES = "same-samples"
    EXTERNAL = "external"


@dataclass(frozen=True)
class SliceAssignment:
    source: SliceSource
    proxy_from: ProxyFrom | None  # None when source is LABELS
    by_task: dict[str, Difficulty | None]  # None: no slice (no pass rate known)
    note: str  # why this source was chosen, and any caveat; "" when nothing to say


def proxy_slice(pass_rate: float) -> Difficulty:
    """The proxy bin of one base pass rate in [0, 1]."""
    if pass_rate < HARD_BELOW:
        return Difficulty.HARD
    return Difficulty.MEDIUM if pass_rate < EASY_FROM else Difficulty.EASY


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
    n: np.ndarray,
    c: np.ndarray,
    *,
    difficulty: Mapping[str, Difficulty | str | None] | None = None,
    base_pass_rate: Mapping[str, float] | None = None,
) -> SliceAssignment:
    """Labels when every problem has one; otherwise the pass-rate proxy, from `base_pass_rate`
    when given, else from these samples' c / n."""
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
        gap = f"{missing} problem(s) have no base pass rate and are in no slice." if missing else ""
        return SliceAssignment(SliceSource.PROXY, ProxyFrom.EXTERNAL, by_task, (partial + gap).strip())
    by_task = {t: proxy_slice(ci / ni) if ni > 0 else None for t, ni, ci in zip(task_ids, n.tolist(), c.tolist())}
    return SliceAssignment(SliceSource.PROXY, ProxyFrom.SAME_SAMPLES, by_task, partial + SAME_SAMPLE_WARNING)
