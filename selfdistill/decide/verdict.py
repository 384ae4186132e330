"""The Precondition Verdict (deliverable A): is SSD the right next training move for this model?

Simple Self-Distillation (arXiv 2604.01193) fine-tunes a code model on its own raw samples. It can
only condense what the model already does sometimes: the measurable precondition is a gap between
pass@k and pass@1 for some small k. `verdict_over_ks` is a pure function of the measured (value,
ci_low, ci_high) triples at every k and a small set of `Rules`; `precondition_verdict` is its one-k
form. The rule table (rows R1-R6, R5 split by the move it names) is in docs/decision-rule.md and every
row is table-tested in tests/decide/test_verdict.py.

What this does not do: read files, compute statistics, or apply a verdict per slice (see
`selfdistill.decide.precondition`). Fractions are 0..1 here; the justification speaks pp.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from typing import NamedTuple

from selfdistill.decide import justify
from selfdistill.decide.ks import BELOW, CLEARS, STRADDLES, GapAtK, only_at_largest, side_of, smallest_clearing
from selfdistill.decide.settle import problems_to_settle
from selfdistill.errors import DataError, SpecError


class VerdictKind(str, Enum):
    GO_SSD = "GO-SSD"
    GO_VERIFIER_AWARE_SSD = "GO-VERIFIER-AWARE-SSD"
    GO_OTHER = "GO-OTHER"
    INCONCLUSIVE = "INCONCLUSIVE"


class OtherMove(str, Enum):
    """The strategy's menu of moves other than SSD (docs/decision-rule.md says which row picks which)."""

    SFT_EXTERNAL = "SFT on curated external data"
    REJECTION_SAMPLING = "verifier-based rejection sampling"
    RL_VERIFIER = "RL with a verifier (GRPO)"
    DPO = "DPO on preference data"
    DO_NOTHING = "do nothing"

    @property
    def measure_with(self) -> str | None:
        """The comparator arm (ssd/arms.py ARMS, spec comparator.measure) that measures this move; None for
        "do nothing" (nothing to train). docs/decision-rule.md "GO-OTHER moves and the arms that measure them"."""
        return MEASURE_WITH[self]


MEASURE_WITH = {  # OtherMove -> the comparator arm that measures it (a ComparatorKind value)
    OtherMove.SFT_EXTERNAL: "sft-external",
    OtherMove.REJECTION_SAMPLING: "rejection-sampling-sft",
    OtherMove.RL_VERIFIER: "grpo",
    OtherMove.DPO: "dpo",
    OtherMove.DO_NOTHING: None,
}


class FailureCost(str, Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Estimate(NamedTuple):
    """A measured fraction and its 95% CI, all 0..1 (a gap may be negative)."""

    value: float
    ci_low: float
    ci_high: float

    @classmethod
    def of(cls, x, name: str, lowest: float = 0.0) -> Estimate:
        """From a (value, ci_low, ci_high) triple or a metrics.json entry; validated."""
        if isinstance(x, Mapping):
            x = (x.get("value"), x.get("ci_low"), x.get("ci_high"))
        try:
            est = cls(*(float(v) for v in x))
        except (TypeError, ValueError):
            raise DataError(f"{name} must be (value, ci_low, ci_high) numbers, got {x!r}") from None
        if not all(math.isfinite(v) and lowest <= v <= 1.0 for v in est):
            raise DataError(f"{name}={tuple(est)} must be fractions in [{lowest:g}, 1] (not pp)")
        if est.ci_low > est.ci_high:
            raise DataError(f"{name} has ci_low={est.ci_low} above ci_high={est.ci_high}")
        return est


@dataclass(frozen=True)
class Rules:
    """Thresholds of the rule table, fractions 0..1. Defaults are documented in docs/decision-rule.md."""

    gap_threshold: float = 0.05  # 5 pp: the smallest pass@k - pass@1 gap worth condensing
    floor: float = 0.05  # pass@k ci_high below this (largest k): the model lacks the knowledge (R1)
    ceiling: float = 0.95  # pass@1 ci_low at or above this: nothing to gain (R2)
    verifier_available: bool = False  # the prompt pool has tests that can filter samples
    failure_cost: FailureCost = FailureCost.MEDIUM  # how costly a regression is
    preference_data: bool = False  # preference pairs exist (the spec's comparator is DPO)
    rl_gpu_hours: float | None = None  # GPU-hours the budget has for sampling + training (None: unknown)
    near_ceiling: float = 0.80  # a consistent model with pass@1 ci_low at or above this: do nothing (R5a)
    rl_min_passk: float = 0.20  # RL needs pass@k ci_low at or above this: rollouts earn reward often (R5b)
    rl_min_gpu_hours: float = 8.0  # RL needs at least this much sampling + training budget (R5b)

    def __post_init__(self) -> None:
        for name in ("gap_threshold", "floor", "ceiling", "near_ceiling", "rl_min_passk"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 < value < 1.0):
                raise SpecError(f"rules.{name}={value!r} must be a fraction strictly between 0 and 1 (5 pp = 0.05)")
        if self.floor >= self.ceiling:
            raise SpecError(f"rules.floor={self.floor} must be below rules.ceiling={self.ceiling}")
        if self.rl_min_gpu_hours < 0 or (self.rl_gpu_hours is not None and self.rl_gpu_hours < 0):
            raise SpecError("rules.rl_gpu_hours and rules.rl_min_gpu_hours must be >= 0 GPU-hours")
        try:
            object.__setattr__(self, "failure_cost", FailureCost(self.failure_cost))
        except ValueError:
            raise SpecError(f"rules.failure_cost={self.failure_cost!r} must be one of: low | medium | high") from None

    def to_json(self) -> dict:
        return {**asdict(self), "failure_cost": self.failure_cost.value}


DEFAULT_RULES = Rules()


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    other: OtherMove | None
    rule_id: str  # the row of the rule table that fired: "R1" .. "R6" (R5a .. R5e)
    justification: str  # one paragraph, pp
    k: int  # the k the verdict rests on (GO: the smallest k at which the gap clears)
    gap: Estimate
    pass1: Estimate
    passk: Estimate
    n_problems: int | None = None  # problems behind the gap CI at k, when known
    problems_needed: int | None = None  # INCONCLUSIVE only: total problems that would likely settle it
    gaps_by_k: tuple[GapAtK, ...] = ()  # the gap with its CI at every k measured, smallest k first
    clearing_k: int | None = None  # the smallest k at which the gap CI clears the threshold
    only_at_largest_k: bool = False  # the gap clears only at the largest k measured: weaker evidence

    def to_json(self) -> dict:
        return {
            "kind": self.kind.value,
            "other": self.other.value if self.other else None,
            "measure_with": self.other.measure_with if self.other else None,  # the arm that measures the move
            "rule_id": self.rule_id,
            "justification": self.justification,
            "k": self.k,
            "gap": self.gap._asdict(),
            "pass1": self.pass1._asdict(),
            "passk": self.passk._asdict(),
            "n_problems": self.n_problems,
            "problems_needed": self.problems_needed,
            "gaps_by_k": [row.to_json() for row in self.gaps_by_k],
            "clearing_k": self.clearing_k,
            "only_at_largest_k": self.only_at_largest_k,
        }


def _consistent(pass1: Estimate, largest: GapAtK, rules: Rules) -> tuple[str, OtherMove]:
    """R5: the gap is below the threshold at every k; which other move the spec and numbers point to."""
    if pass1.ci_low >= rules.near_ceiling:
        return "R5a", OtherMove.DO_NOTHING
    if rules.verifier_available:
        budget = rules.rl_gpu_hours is not None and rules.rl_gpu_hours >= rules.rl_min_gpu_hours
        if budget and largest.passk.ci_low >= rules.rl_min_passk:
            return "R5b", OtherMove.RL_VERIFIER
        return "R5c", OtherMove.REJECTION_SAMPLING
    if rules.preference_data:
        return "R5d", OtherMove.DPO
    return "R5e", OtherMove.SFT_EXTERNAL


def _settling_row(table: tuple[GapAtK, ...], threshold: float) -> tuple[GapAtK, int | None]:
    """R6: the straddling k that the fewest problems would settle (the largest straddling k if none can)."""
    straddling = [row for row in table if row.side == STRADDLES]
    needed = {row.k: problems_to_settle(row.gap, threshold, row.n_problems) if row.n_problems else None
              for row in straddling}
    settleable = [row for row in straddling if needed[row.k] is not None]
    row = min(settleable, key=lambda r: (needed[r.k], r.k)) if settleable else straddling[-1]
    return row, needed[row.k]


def _decide(table: tuple[GapAtK, ...], pass1: Estimate, rules: Rules):
    """The rule table, top row first; the first row that matches fires. Returns (rule_id, kind, other,
    the k row the verdict rests on, problems needed to settle)."""
    largest = table[-1]
    if largest.passk.ci_high < rules.floor:
        return "R1", VerdictKind.GO_OTHER, OtherMove.SFT_EXTERNAL, largest, None
    if pass1.ci_low >= rules.ceiling:
        return "R2", VerdictKind.GO_OTHER, OtherMove.DO_NOTHING, largest, None
    first = smallest_clearing(table)
    if first is not None:
        if rules.verifier_available and rules.failure_cost is FailureCost.HIGH:
            return "R4", VerdictKind.GO_VERIFIER_AWARE_SSD, None, first, None
        return "R3", VerdictKind.GO_SSD, None, first, None
    if all(row.side == BELOW for row in table):
        rule_id, other = _consistent(pass1, largest, rules)
        return rule_id, VerdictKind.GO_OTHER, other, largest, None
    row, needed = _settling_row(table, rules.gap_threshold)
    return "R6", VerdictKind.INCONCLUSIVE, None, row, needed


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise DataError(f"k={k!r}: the precondition compares pass@k with pass@1, so k must be an int >= 2")
    return k


def verdict_over_ks(
    gaps: Mapping[int, object],
    pass1,
    passks: Mapping[int, object],
    rules: Rules = DEFAULT_RULES,
    *,
    n_problems: int | Mapping[int, int] | None = None,
    n_samples_per_problem: int | None = None,
) -> Verdict:
    """The verdict from the gap pass@k - pass@1 and pass@k at every k (`gaps`, `passks`: k -> (value,
    ci_low, ci_high) in 0..1) and `pass1`. `n_problems` (problems behind the gap CI; one number or one
    per k) lets an INCONCLUSIVE verdict say how many problems would settle it; `n_samples_per_problem`
    lets it say whether more samples help."""
    ks = sorted(_check_k(k) for k in gaps)
    if not ks or set(ks) != {_check_k(k) for k in passks}:
        raise DataError(f"the gap and pass@k must be given at the same k >= 2 (gaps at {ks}, pass@k at "
                        f"{sorted(passks)})")
    per_k = n_problems if isinstance(n_problems, Mapping) else {k: n_problems for k in ks}
    for k, n in per_k.items():
        if n is not None and n < 1:
            raise DataError(f"n_problems={n!r} at k={k} must be >= 1 when given")
    pass1 = Estimate.of(pass1, "pass@1")
    table = tuple(
        GapAtK(k, gap, passk, per_k.get(k), side_of(gap, rules.gap_threshold))
        for k in ks
        for gap, passk in [(Estimate.of(gaps[k], f"gap at k={k}", lowest=-1.0), Estimate.of(passks[k], f"pass@{k}"))]
    )
    rule_id, kind, other, row, needed = _decide(table, pass1, rules)
    first = smallest_clearing(table)
    facts = justify.Facts(row.gap, pass1, row.passk, row.k, rules, row.n_problems, n_samples_per_problem, needed,
                          table, first.k if first else None, only_at_largest(table))
    return Verdict(kind, other, rule_id, justify.paragraph(rule_id, facts), row.k, row.gap, pass1, row.passk,
                   row.n_problems, needed, table, first.k if first else None, only_at_largest(table))


def precondition_verdict(
    gap,
    pass1,
    passk,
    k: int,
    rules: Rules = DEFAULT_RULES,
    *,
    n_problems: int | None = None,
    n_samples_per_problem: int | None = None,
) -> Verdict:
    """The verdict at one k: `verdict_over_ks({k: gap}, pass1, {k: passk}, ...)`."""
    _check_k(k)
    return verdict_over_ks({k: gap}, pass1, {k: passk}, rules, n_problems=n_problems,
                           n_samples_per_problem=n_samples_per_problem)


__all__ = ["BELOW", "CLEARS", "MEASURE_WITH", "STRADDLES", "Estimate", "FailureCost", "GapAtK", "OtherMove", "Rules",
           "Verdict", "VerdictKind", "precondition_verdict", "verdict_over_ks"]
