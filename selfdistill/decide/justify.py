"""The one-paragraph justification of each rule row, in plain English against the measured numbers.

Every paragraph opens with the SSD hypothesis and the measurement, then says why the row fired and
what to do. Rates are written as %, differences as pp, one decimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfdistill.decide.settle import SETTLE_MAX_FACTOR, SETTLE_MIN_DISTANCE, samples_help


@dataclass(frozen=True)
class Facts:
    gap: Any  # Estimate
    pass1: Any  # Estimate
    passk: Any  # Estimate
    k: int
    rules: Any  # Rules
    n_problems: int | None
    n_samples_per_problem: int | None
    problems_needed: int | None


def pp(x: float) -> str:
    """A fraction as percentage points (or percent), one decimal."""
    return f"{100 * x:.1f}"


def _lead(f: Facts) -> str:
    over = f" over {f.n_problems} problems" if f.n_problems else ""
    return (
        f"SSD bets that the model's correct solutions are already among its samples, so training on its own "
        f"samples can lift pass@1 toward pass@{f.k}. Measured{over}: pass@{f.k} is {pp(f.passk.value)}% vs "
        f"pass@1 {pp(f.pass1.value)}%, a gap of {pp(f.gap.value)} pp [95% CI {pp(f.gap.ci_low)}, "
        f"{pp(f.gap.ci_high)}] against a {pp(f.rules.gap_threshold)} pp threshold."
    )


def _r1(f: Facts) -> str:
    return (
        f"Even with {f.k} tries the model rarely succeeds: pass@{f.k} is at most {pp(f.passk.ci_high)}% "
        f"(CI upper bound below the {pp(f.rules.floor)}% floor), so there are too few correct samples to "
        "condense. It needs new knowledge, not condensation: SFT on external data or retrieval."
    )


def _r2(f: Facts) -> str:
    return (
        f"pass@1 is at least {pp(f.pass1.ci_low)}% (CI lower bound at or above the {pp(f.rules.ceiling)}% "
        "ceiling): there is almost nothing left to gain and any training risks regressions. Do nothing."
    )


def _r3(f: Facts) -> str:
    extra = ""
    if f.rules.verifier_available:
        extra = (
            f" A verifier is available but failure cost is {f.rules.failure_cost.value}, so plain SSD keeps "
            "its no-verifier simplicity; a verifier-filtered arm is optional."
        )
    return (
        "The whole CI is at or above the threshold: the model often reaches a correct solution it does not "
        f"produce first, which is what SSD condenses. Run SSD.{extra}"
    )


def _r4(f: Facts) -> str:
    return (
        "The whole CI is at or above the threshold, the prompt pool has tests and failure cost is high: run "
        "verifier-aware SSD (train only on samples that pass) as a separate arm beside plain SSD. Filtering "
        "trades SSD's no-verifier simplicity for fewer wrong targets."
    )


def _r5(f: Facts) -> str:
    return (
        "The whole CI is below the threshold: the model is consistent, what it solves it solves on the first "
        "try and what it misses it does not know. SSD has little to condense, and RL with a verifier would "
        "only sharpen the same distribution. It needs new knowledge: SFT on external data or retrieval."
    )


def _r6(f: Facts) -> str:
    distance = abs(f.gap.value - f.rules.gap_threshold)
    if f.problems_needed is not None:
        more = f.problems_needed - f.n_problems
        how = (
            f"About {f.problems_needed} problems in total ({more} more than the {f.n_problems} measured) would "
            f"likely narrow the CI past the threshold, {pp(distance)} pp from the estimate, if the gap holds."
        )
    elif distance < SETTLE_MIN_DISTANCE:
        how = (
            f"The estimate sits within {pp(SETTLE_MIN_DISTANCE)} pp of the threshold, so no practical number of "
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
    return f"The CI straddles the threshold, so the data cannot tell yet. {how} {samples_help(f.n_samples_per_problem, f.k)}"


_ROWS = {"R1": _r1, "R2": _r2, "R3": _r3, "R4": _r4, "R5": _r5, "R6": _r6}


def paragraph(rule_id: str, facts: Facts) -> str:
    return f"{_lead(facts)} {_ROWS[rule_id](facts)}"
