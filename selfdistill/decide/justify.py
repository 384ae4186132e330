"""The one-paragraph justification of each rule row, in plain English against the measured numbers.

Every paragraph opens with the SSD hypothesis and the measurement (the gap at every k measured, and
the k the verdict rests on), then says why the row fired and what to do. Rates are written as %,
differences as pp, one decimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfdistill.decide.ks import describe
from selfdistill.decide.settle import SETTLE_MAX_FACTOR, SETTLE_MIN_DISTANCE, samples_help


@dataclass(frozen=True)
class Facts:
    gap: Any  # Estimate, at the k the verdict rests on
    pass1: Any  # Estimate
    passk: Any  # Estimate, at k
    k: int
    rules: Any  # Rules
    n_problems: int | None
    n_samples_per_problem: int | None
    problems_needed: int | None
    table: tuple = ()  # GapAtK at every k, smallest first
    clearing_k: int | None = None
    only_at_largest_k: bool = False

    @property
    def k_max(self) -> int:
        return self.table[-1].k if self.table else self.k


def pp(x: float) -> str:
    """A fraction as percentage points (or percent), one decimal."""
    return f"{100 * x:.1f}"


def _lead(f: Facts) -> str:
    over = f" over {f.n_problems} problems" if f.n_problems else ""
    text = (
        f"SSD bets that the model's correct solutions are already among its samples, so training on its own "
        f"samples can lift pass@1 toward pass@k for some small k. Measured{over}: pass@{f.k} is {pp(f.passk.value)}% "
        f"vs pass@1 {pp(f.pass1.value)}%, a gap of {pp(f.gap.value)} pp [95% CI {pp(f.gap.ci_low)}, "
        f"{pp(f.gap.ci_high)}] against a {pp(f.rules.gap_threshold)} pp threshold."
    )
    if len(f.table) > 1:
        text += f" At every k measured: {describe(f.table, pp)}."
    return text


def _r1(f: Facts) -> str:
    return (
        f"Even with {f.k} tries the model rarely succeeds: pass@{f.k} is at most {pp(f.passk.ci_high)}% "
        f"(CI upper bound below the {pp(f.rules.floor)}% floor), so there are too few correct samples to "
        "condense, to filter with a verifier, or to reward in RL. It needs new knowledge, not condensation: "
        "SFT on curated external data."
    )


def _r2(f: Facts) -> str:
    return (
        f"pass@1 is at least {pp(f.pass1.ci_low)}% (CI lower bound at or above the {pp(f.rules.ceiling)}% "
        "ceiling): there is almost nothing left to gain and any training risks regressions. Do nothing."
    )


def _clearing(f: Facts) -> str:
    text = (
        f"The gap's whole CI is at or above the threshold first at k = {f.clearing_k}, the smallest k at which it "
        "clears: the model often reaches a correct solution it does not produce first, which is what SSD condenses."
    )
    if f.only_at_largest_k:
        text += (
            f" It clears only at the largest k measured ({f.k_max}), not at any smaller k: weaker evidence than a "
            "gap at small k, since SSD's lift is expected toward pass@k for small k; expect a smaller lift than "
            f"this {pp(f.gap.value)} pp gap."
        )
    return text


def _r3(f: Facts) -> str:
    extra = ""
    if f.rules.verifier_available:
        extra = (
            f" A verifier is available but failure cost is {f.rules.failure_cost.value}, so plain SSD keeps "
            "its no-verifier simplicity; a verifier-filtered arm is optional."
        )
    return f"{_clearing(f)} Run SSD.{extra}"


def _r4(f: Facts) -> str:
    return (
        f"{_clearing(f)} The prompt pool has tests and failure cost is high: run verifier-aware SSD (train only "
        "on samples that pass) as a separate arm beside plain SSD. Filtering trades SSD's no-verifier "
        "simplicity for fewer wrong targets."
    )


def _consistent(f: Facts) -> str:
    return (
        f"The gap's whole CI is below the threshold at every k measured (up to k = {f.k_max}): the model is "
        "consistent, what it solves it mostly solves on the first try, so SSD has little to condense."
    )


def _r5a(f: Facts) -> str:
    return (
        f"{_consistent(f)} pass@1 is at least {pp(f.pass1.ci_low)}% (CI lower bound at or above "
        f"{pp(f.rules.near_ceiling)}%): a consistent model this close to the ceiling has little headroom that "
        "any training move reaches without regression risk. Do nothing."
    )


def _r5b(f: Facts) -> str:
    return (
        f"{_consistent(f)} The prompt pool has tests (a verifier), pass@{f.k_max} is at least "
        f"{pp(f.passk.ci_low)}% (at or above {pp(f.rules.rl_min_passk)}%, so rollouts earn reward often enough "
        f"to learn from) and the budget has {f.rules.rl_gpu_hours:g} GPU-hours for sampling and training (at "
        f"least {f.rules.rl_min_gpu_hours:g}): RL with a verifier (GRPO) rewards only programs that pass and "
        "samples far more than the k measured here. Whether it moves the model past its pass@k or mostly "
        "sharpens it is an empirical question: evaluate it against the base with the same held-out set and gate."
    )


def _r5c(f: Facts) -> str:
    reasons = []
    if f.passk.ci_low < f.rules.rl_min_passk:
        reasons.append(f"pass@{f.k_max} may be as low as {pp(f.passk.ci_low)}% (below {pp(f.rules.rl_min_passk)}%), "
                       "so RL rollouts would rarely earn reward")
    if f.rules.rl_gpu_hours is None or f.rules.rl_gpu_hours < f.rules.rl_min_gpu_hours:
        have = "no declared" if f.rules.rl_gpu_hours is None else f"{f.rules.rl_gpu_hours:g}"
        reasons.append(f"the budget has {have} GPU-hours for sampling and training (RL needs at least "
                       f"{f.rules.rl_min_gpu_hours:g})")
    return (
        f"{_consistent(f)} The prompt pool has tests (a verifier), but {' and '.join(reasons)}: verifier-based "
        "rejection sampling is the cheaper move that uses it (sample the pool many times, keep only programs "
        "that pass, fine-tune on them); unlike SSD it never trains on a wrong target."
    )


def _r5d(f: Facts) -> str:
    return (
        f"{_consistent(f)} The pool has no verifier, but the spec's comparator is DPO, so preference pairs "
        "exist: DPO on them brings a signal the model's own samples lack."
    )


def _r5e(f: Facts) -> str:
    return (
        f"{_consistent(f)} There is no verifier to filter or reward samples and no preference data: it needs "
        "new knowledge, SFT on curated external data."
    )


def _r6(f: Facts) -> str:
    distance = abs(f.gap.value - f.rules.gap_threshold)
    at = f" at k = {f.k}" if len(f.table) > 1 else ""
    if f.problems_needed is not None:
        more = f.problems_needed - f.n_problems
        how = (
            f"About {f.problems_needed} problems in total ({more} more than the {f.n_problems} measured) would "
            f"likely narrow the CI{at} past the threshold, {pp(distance)} pp from the estimate, if the gap holds."
        )
    elif distance < SETTLE_MIN_DISTANCE:
        how = (
            f"The estimate{at} sits within {pp(SETTLE_MIN_DISTANCE)} pp of the threshold, so no practical number of "
            "problems settles it: SSD's expected lift is marginal; decide on cost, or not at all."
        )
    elif f.n_problems is not None:
        how = (
            f"Settling it would take more than {SETTLE_MAX_FACTOR}x the {f.n_problems} problems measured; "
            "treat SSD's expected lift as marginal."
        )
    else:
        halfwidth = (f.gap.ci_high - f.gap.ci_low) / 2
        factor = (halfwidth / distance) ** 2 if distance else float("inf")
        how = f"Settling it would take roughly {factor:.1f}x as many problems as measured (CI width ~ 1/sqrt(P))."
    return (
        "The gap's CI clears the threshold at no k and straddles it at some, so the data cannot tell yet. "
        f"{how} {samples_help(f.n_samples_per_problem, f.k)} The SSD round is not started on an inconclusive "
        "verdict (`--force` overrides it, and every result is then stamped forced)."
    )


_ROWS = {"R1": _r1, "R2": _r2, "R3": _r3, "R4": _r4, "R5a": _r5a, "R5b": _r5b, "R5c": _r5c, "R5d": _r5d,
         "R5e": _r5e, "R6": _r6}


def paragraph(rule_id: str, facts: Facts) -> str:
    return f"{_lead(facts)} {_ROWS[rule_id](facts)}"
