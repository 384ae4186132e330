"""How often the verdict's 95% CIs cover the truth, measured by simulation (docs/decision-rule.md,
"What the CIs estimate"). `python -m selfdistill.decide.coverage` prints the table that the doc quotes.

Each replicate draws P problems from a known population of per-problem pass rates p (a Beta
distribution), n samples per problem (c ~ Binomial(n, p)), and computes pass@1 and the gap pass@k -
pass@1 with the same problem-level percentile bootstrap as metrics.json (`metrics.bootstrap`). Two
targets are counted:

  population   the mean over the population (E[p]; E[1-(1-p)^k - p]): what the CI claims to estimate,
               the pass rate on problems like these
  fixed set    the mean of the true p over the P problems drawn: "this fixed set"; the problem-level CI
               also carries the problem-sampling spread, so it covers this more often (conservative)

What this does not do: model infra exclusions or slices; it is a check of the interval, not the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selfdistill.metrics.bootstrap import bootstrap_mean
from selfdistill.metrics.passk import pass_at_k


@dataclass(frozen=True)
class Coverage:
    n_problems: int
    replicates: int
    pass1_population: float
    pass1_fixed_set: float
    gap_population: float
    gap_fixed_set: float

    def row(self) -> str:
        return (f"| {self.n_problems} | {self.replicates} | {100 * self.pass1_population:.1f}% | "
                f"{100 * self.pass1_fixed_set:.1f}% | {100 * self.gap_population:.1f}% | "
                f"{100 * self.gap_fixed_set:.1f}% |")


def _truth(p: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    return p, (1 - (1 - p) ** k) - p


def measure(n_problems: int, *, replicates: int = 1000, n: int = 16, k: int = 16, beta=(0.5, 0.7),
            n_resamples: int = 2000, seed: int = 0) -> Coverage:
    """Coverage of the 95% bootstrap CI of pass@1 and of the gap at `k`, over `replicates` draws of
    `n_problems` problems with pass rates ~ Beta(*beta) and `n` samples each."""
    rng = np.random.default_rng(seed)
    big = rng.beta(*beta, size=2_000_000)  # the population means, by Monte Carlo (error ~ 3e-4)
    pop1, popgap = (float(x.mean()) for x in _truth(big, k))
    hits = np.zeros(4, dtype=np.int64)
    for _ in range(replicates):
        p = rng.beta(*beta, size=n_problems)
        c = rng.binomial(n, p)
        fixed1, fixedgap = (float(x.mean()) for x in _truth(p, k))
        ns = np.full(n_problems, n)
        p1 = c / n
        one = bootstrap_mean(p1, n_resamples=n_resamples, seed=rng)
        gap = bootstrap_mean(pass_at_k(ns, c, k) - p1, n_resamples=n_resamples, seed=rng)
        hits += [one.ci_low <= pop1 <= one.ci_high, one.ci_low <= fixed1 <= one.ci_high,
                 gap.ci_low <= popgap <= gap.ci_high, gap.ci_low <= fixedgap <= gap.ci_high]
    return Coverage(n_problems, replicates, *(float(h) / replicates for h in hits))


def main() -> None:
    print("| problems | replicates | pass@1: population | pass@1: fixed set | gap@16: population | gap@16: fixed set |")
    print("|---|---|---|---|---|---|")
    for size in (20, 50, 100, 164, 200):
        print(measure(size, replicates=2000, seed=size).row(), flush=True)


if __name__ == "__main__":
    main()
