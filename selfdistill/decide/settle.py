"""How many problems would settle an INCONCLUSIVE verdict, and whether more samples would help.

A problem-level bootstrap CI has half-width ~ sigma / sqrt(P), sigma^2 = between-problem variance +
mean within-problem (sampling) variance of the per-problem pass@k estimate. Adding problems shrinks
both; adding samples per problem shrinks only the within-problem part, which for pass@k from n >= 2k
samples is usually the smaller one. So: add problems first; add samples only when n is close to k.
"""

from __future__ import annotations

import math

# Smallest |gap - threshold| for which "add problems" is a usable answer, and the largest factor of
# problems worth proposing; outside these the verdict says the gap is not settleable by more data.
SETTLE_MIN_DISTANCE = 0.005  # 0.5 pp
SETTLE_MAX_FACTOR = 25


def problems_to_settle(gap, threshold: float, n_problems: int) -> int | None:
    """Total problems that would likely put the gap CI on one side of the threshold, assuming the
    point estimate holds and the CI shrinks like 1/sqrt(P): ceil(P * (w / |gap - threshold|)^2),
    w = the CI's half facing the threshold (the half-width for a symmetric CI). None when the gap sits
    on the threshold (within SETTLE_MIN_DISTANCE) or the answer exceeds SETTLE_MAX_FACTOR x P."""
    distance = abs(gap.value - threshold)
    if distance < SETTLE_MIN_DISTANCE:
        return None
    width = gap.value - gap.ci_low if gap.value > threshold else gap.ci_high - gap.value
    ratio_sq = (width / distance) ** 2 - 1e-9  # so that (0.04 / 0.01)**2 = 16.000000000000004 gives 16
    needed = max(n_problems + 1, math.ceil(n_problems * ratio_sq))
    return needed if needed <= SETTLE_MAX_FACTOR * n_problems else None


def samples_help(n_samples_per_problem: int | None, k: int) -> str:
    """One sentence on whether more samples per problem would narrow the gap CI."""
    base = (
        "More samples per problem shrink only the within-problem noise of each problem's estimate, "
        "not the problem-to-problem spread that dominates a problem-level CI"
    )
    if n_samples_per_problem is not None and n_samples_per_problem < 2 * k:
        return (
            f"{base}; here n = {n_samples_per_problem} samples per problem is below 2k = {2 * k}, so each "
            f"pass@{k} is close to a single draw and raising n helps too, but add problems first."
        )
    return f"{base}: add problems, not samples."
